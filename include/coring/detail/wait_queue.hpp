#pragma once
// Waiting on a synchronisation primitive (sync/*.hpp): sync_waiter, the base of every awaiter
// that waits on a mutex, event, condition, semaphore, barrier or queue, and wait_queue, the FIFO
// of such waiters that each primitive owns.
//
//   primitive (mutex, queue, ...)
//     └─ wait_queue: one list, split by m_first_waiting
//          D ⇄ E  │  A ⇄ B ⇄ C
//          granted│  waiting      A, B, C: registered and suspended, served first-in first-out;
//                                 D, E: handed what they waited for (a lock, a permit, an item,
//                                 a wake-up) and queued on the loop to resume; each leaves the
//                                 list when it resumes or is cancelled
//
// Granting the first waiter only moves the split past it. A waiter is linked through its own
// list_hook (no allocation per wait, no atomics: the primitives serve tasks of one loop, on one
// thread) and knows its wait_queue, so it can leave from anywhere in the list. The hook is
// separate from the ready-queue link, so a granted waiter is on the list and on the loop's
// ready queue at once.
//
// Granting never resumes a frame inline: it wakes the waiter through the ready queue
// (docs/internals.md, rule 4), so handing a lock to 100,000 queued tasks one after another runs
// at constant stack depth, one hand-off per loop iteration. A waiter that suspends ends its
// await_suspend with switch_away: the next ready task may run at once, by symmetric transfer
// (detail/scheduler.hpp, "Hand-off"), a bounded number of times in a row.
//
// Cancellation (rules 1 and 2 of docs/internals.md), sync_waiter::cancel_wait for every
// awaiter but the condition's:
//   waiting  -> it unlinks itself and resumes by throwing cancelled_error; it took nothing.
//   granted  -> it passes what it was given (lock, permit, room in a queue, item) to the next
//               waiter and throws cancelled_error; or, where nothing can be passed on, the
//               cancel simply wins (event, barrier).
//
// Destroying a primitive while tasks still wait on it is a bug: abandon() prints a message that
// names the primitive and counts the waiters, asserts in debug builds, and otherwise detaches
// the waiters (they resume with invalid_state_error instead of touching freed memory).

#include <coring/config.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/errors.hpp>

#include <cassert>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

namespace coring::detail {

struct sync_wait_tag {};

class wait_queue;

/// The base of every awaiter that waits on a synchronisation primitive. Derived classes follow
/// the leaf_awaiter protocol, list `{&resume_frame, &Derived::on_cancel}` as their operations,
/// and pass them to suspend_on or register_on.
///
/// Most waits complete without suspending (an item is there, the lock is free), so a waiter is
/// built with only its phase set: its operations, links, task, frame and cancelled flag are
/// written when it suspends, and read only in the phases that follow.
class sync_waiter : public list_hook<sync_wait_tag>, public leaf_awaiter<ready_node> {
public:
    enum class phase : std::uint8_t {
        idle,      // not registered: before await_suspend, after a fast path, or between a
                   // condition's list and its mutex's
        waiting,   // on a wait_queue, after the split
        granted,   // handed what it waited for and queued to resume (before the split)
        orphaned,  // its primitive was destroyed while it waited; it resumes with invalid_state_error
        done,      // suspended once and off the list again: cancelled() says whether a cancel won
    };

    /// Before the awaiter is awaited only (see leaf_awaiter): nothing is linked yet.
    sync_waiter(sync_waiter&&) noexcept : list_hook(no_init), leaf_awaiter(no_init) {}
    sync_waiter& operator=(sync_waiter&&) = delete;
    /// A frame destroyed while suspended must not leave a dangling link behind.
    CORING_ALWAYS_INLINE ~sync_waiter() {
        if (CORING_UNLIKELY(on_queue())) leave_queue();
    }

    /// A ready_node::operations::describe for the task dump: the operation's name, and whether
    /// it was already granted (queued to resume).
    template <const char* What>
    static void describe_as(const ready_node* node, await_description& out) {
        describe_waiter(node, What, out);
    }

protected:
    sync_waiter() noexcept : list_hook(no_init), leaf_awaiter(no_init) {}

    /// The awaiter of type Derived whose ready node is `node` (for on_cancel).
    template <class Derived>
    static Derived& from_node(ready_node* node) noexcept {
        return static_cast<Derived&>(static_cast<sync_waiter&>(static_cast<leaf_awaiter<ready_node>&>(*node)));
    }
    template <class Derived>
    static const Derived& from_node(const ready_node* node) noexcept {
        return static_cast<const Derived&>(static_cast<const sync_waiter&>(static_cast<const leaf_awaiter<ready_node>&>(*node)));
    }

    /// describe_as with the text given at run time (for awaiters shared by several operations).
    static void describe_waiter(const ready_node* node, const char* what, await_description& out) {
        out.what = what;
        if (from_node<sync_waiter>(node).m_phase == phase::granted) out.what += " (granted, about to resume)";
    }

    /// await_suspend of a waiter that queues on `waiters`: registers it at the back, with `ops`
    /// (the derived awaiter's operations) as its node's, and makes it the task's cancellation
    /// slot, then switches to what runs next (switch_away). If a cancel request was pending, it
    /// returns `frame`: the frame resumes at once, registered nowhere, and await_resume throws
    /// cancelled_error.
    CORING_ALWAYS_INLINE std::coroutine_handle<> suspend_on(wait_queue& waiters, std::coroutine_handle<> frame, const operations& ops) {
        if (!register_on(waiters, frame, ops)) return frame;
        return switch_away(frame);
    }
    /// suspend_on's first half, for awaiters with more to do once registered: false if a cancel
    /// request was pending (return `frame`); true when registered (finish with switch_away).
    bool register_on(wait_queue& waiters, std::coroutine_handle<> frame, const operations& ops);

    /// The first step of await_resume: nothing after a fast path; otherwise it leaves the list,
    /// then throws invalid_state_error if the primitive was destroyed meanwhile, or
    /// cancelled_error if a cancel won.
    void finish_wait(const char* primitive) {
        if (m_phase == phase::idle) return;
        if (m_phase == phase::granted && !m_cancelled) {  // the usual way back from a suspension
            list_hook::unlink_linked();                    // granted ones are before the split
            m_phase = phase::done;
            return;
        }
        finish_suspended_wait(primitive);
    }

    CORING_NOINLINE void finish_suspended_wait(const char* primitive) {
        leave_queue();
        if (m_phase == phase::orphaned) [[unlikely]]
            throw_orphaned(primitive);
        throw_if_cancelled();
    }

    [[noreturn]] static void throw_orphaned(const char* primitive) {
        throw invalid_state_error(std::string("coring: the ") + primitive + " this task waited on was destroyed while it waited");
    }

    /// True while it is linked on its wait_queue (waiting or granted).
    [[nodiscard]] bool on_queue() const noexcept { return m_phase == phase::waiting || m_phase == phase::granted; }
    /// Takes the waiter off its wait_queue if it is on one: it is done.
    void leave_queue() noexcept;

    /// What a cancel request does to a waiter (its on_cancel), by phase:
    ///   waiting   it leaves the queue having taken nothing and resumes by throwing
    ///             cancelled_error;
    ///   granted   the cancel wins: it leaves the list (it is already queued to resume, and must
    ///             no longer refer to the primitive), then pass_on() hands what it was given to
    ///             the next waiter (a lock, a permit, room in a queue, an item; nothing for a
    ///             wake-up, which is not consumed);
    ///   otherwise (orphaned) the request stays pending; it resumes with invalid_state_error.
    template <class PassOn>
    void cancel_wait(PassOn&& pass_on) noexcept {
        if (!on_queue()) return;
        const bool was_waiting = m_phase == phase::waiting;
        leave_queue();
        take_cancel_request();
        mark_cancelled();
        if (was_waiting)
            wake();
        else
            pass_on();
    }
    void cancel_wait() noexcept {
        cancel_wait([] {});
    }

    phase m_phase = phase::idle;
    wait_queue* m_wait_queue;  // while waiting or granted: the queue it is linked on

    friend class wait_queue;
};

/// A primitive's waiters: FIFO, O(1) push, grant, pop and removal, no allocation.
class wait_queue {
public:
    wait_queue() noexcept = default;
    wait_queue(const wait_queue&) = delete;
    wait_queue& operator=(const wait_queue&) = delete;
    /// The owner calls abandon() first (its destructor knows its own name).
    ~wait_queue() = default;

    /// True if no waiter is waiting (granted ones may still be queued to resume).
    [[nodiscard]] bool empty() const noexcept { return m_first_waiting == nullptr; }
    /// True if no waiter is waiting or granted.
    [[nodiscard]] bool idle() const noexcept { return m_list.empty(); }
    /// Waiters still waiting. O(n): for reports and observers, not hot paths.
    [[nodiscard]] std::size_t waiting_count() noexcept { return count(m_first_waiting, nullptr); }
    /// Waiters granted and not yet resumed. O(n).
    [[nodiscard]] std::size_t granted_count() noexcept { return count(m_list.front(), m_first_waiting); }

    /// Registers `waiter` (on no list) at the back.
    void push_back(sync_waiter& waiter) noexcept {
        if (sync_waiter* first = m_list.front(); first != nullptr) check_same_loop(*first, waiter);
        waiter.m_phase = sync_waiter::phase::waiting;
        waiter.m_wait_queue = this;
        m_list.insert_before(nullptr, waiter);
        if (m_first_waiting == nullptr) m_first_waiting = &waiter;
    }

    /// The waiter that has waited longest, or null.
    template <class Waiter = sync_waiter>
    [[nodiscard]] Waiter* front() noexcept {
        return static_cast<Waiter*>(m_first_waiting);
    }

    /// Grants `waiter`, the first waiting one or one on no list: it joins the granted ones and
    /// is queued to resume on the loop's next run phase. It stays on the list until it resumes.
    void grant(sync_waiter& waiter) noexcept {
        check_waking_thread(waiter);
        if (&waiter == m_first_waiting) {
            m_first_waiting = m_list.next(waiter);  // the split moves past it
        } else {
            assert(waiter.m_phase != sync_waiter::phase::waiting && waiter.m_phase != sync_waiter::phase::granted);
            m_list.insert_before(m_first_waiting, waiter);
            waiter.m_wait_queue = this;
        }
        waiter.m_phase = sync_waiter::phase::granted;
        waiter.wake();
    }

    /// Grants every waiter, first to last, calling prepare(waiter) on each just before.
    template <class Waiter = sync_waiter, class Prepare>
    void grant_all(Prepare&& prepare) noexcept {
        while (Waiter* waiter = front<Waiter>()) {
            prepare(*waiter);
            grant(*waiter);
        }
    }
    /// Grants every waiter, first to last.
    void grant_all() noexcept {
        while (sync_waiter* waiter = front()) grant(*waiter);
    }

    /// Takes the first waiter off the list without granting it (the caller moves it on).
    sync_waiter* pop_front() noexcept {
        sync_waiter* waiter = m_first_waiting;
        if (waiter != nullptr) {
            erase(*waiter);
            waiter->m_phase = sync_waiter::phase::idle;
        }
        return waiter;
    }

    /// Waiters waiting or granted and not yet resumed. O(n).
    [[nodiscard]] std::size_t pending_count() noexcept { return count(m_list.front(), nullptr); }

    /// For the owner's destructor. With waiters left (a bug): reports it, asserts in debug
    /// builds, and orphans them (see orphan_all).
    void abandon(const char* primitive) noexcept { abandon_all(primitive, {this}); }

    /// abandon() for an owner with several queues (a queue's getters, putters and joiners): one
    /// report that counts the waiters of all of them.
    static void abandon_all(const char* primitive, std::initializer_list<wait_queue*> queues) noexcept {
        std::size_t pending = 0;
        for (wait_queue* q : queues) pending += q->pending_count();
        if (pending == 0) return;
        report_destroyed_while_waited_on(primitive, pending);
        for (wait_queue* q : queues) q->orphan_all();
    }

    /// Detaches every waiter so that none refers to the primitive again: those still waiting
    /// are woken, and they and the granted ones (already queued) resume with
    /// invalid_state_error. For a destructor, after the report.
    void orphan_all() noexcept {
        while (sync_waiter* waiter = m_list.front()) {
            const bool was_waiting = waiter->m_phase == sync_waiter::phase::waiting;
            erase(*waiter);
            waiter->m_phase = sync_waiter::phase::orphaned;
            // Without a task and outside the loop there is nobody to wake it; it stays suspended.
            if (was_waiting && (waiter->task() != nullptr || t_running_scheduler != nullptr)) waiter->wake();
        }
    }

    /// Prints the report on stderr (always) and fails an assertion (in debug builds).
    static void report_destroyed_while_waited_on(const char* primitive, std::size_t waiters) noexcept {
        std::fprintf(stderr,
                     "coring: error: a %s was destroyed while %zu task%s still waited on it. This is a bug: "
                     "destroy a synchronisation primitive only after every task that waits on it has finished. "
                     "The waiting tasks resume with coring::invalid_state_error.\n",
                     primitive, waiters, waiters == 1 ? "" : "s");
        std::fflush(stderr);
        assert(false && "a coring synchronisation primitive was destroyed while tasks still waited on it");
    }

private:
    friend class sync_waiter;

    // Debug mode: a primitive belongs to the loop its tasks wait on. Waking one of them from
    // another thread (set(), put(), release(), notify() called there), or waiting on it from
    // another loop, races with that loop. These calls cannot throw, and going on would corrupt
    // the loop: reported with both thread ids, then abort.
    static void check_waking_thread(sync_waiter& waiter) noexcept {
        scheduler& loop = waiter.loop();
        if (CORING_UNLIKELY(loop.debug_mode()) && std::this_thread::get_id() != loop.owner_thread())
            report_wrong_thread(loop, "woke a task that waits on a coring primitive (set, put, release, notify, ...)");
    }
    static void check_same_loop(sync_waiter& first, sync_waiter& waiter) noexcept {
        scheduler& loop = first.loop();
        if (CORING_UNLIKELY(loop.debug_mode()) && &waiter.loop() != &loop)
            report_wrong_thread(loop, "waited on a coring primitive that tasks of another event loop wait on");
    }
    [[noreturn]] static void report_wrong_thread(const scheduler& loop, const char* what) noexcept {
        std::ostringstream text;
        text << "coring: error: thread " << std::this_thread::get_id() << " " << what << ", but those tasks belong to the event loop of thread "
             << loop.owner_thread()
             << " (debug mode check). Only run_on, channels and call_soon_threadsafe may cross loops.\n";
        std::fputs(text.str().c_str(), stderr);
        std::fflush(stderr);
        std::abort();
    }

    /// Unlinks `waiter`, which is on this list, moving the split if it was the first waiting.
    void erase(sync_waiter& waiter) noexcept {
        if (&waiter == m_first_waiting) m_first_waiting = m_list.next(waiter);
        waiter.list_hook::unlink_linked();  // its phase says from now on that it is off the list
    }

    /// Waiters from `first` up to `end` (null: the end of the list).
    std::size_t count(sync_waiter* first, const sync_waiter* end) noexcept {
        std::size_t n = 0;
        for (sync_waiter* w = first; w != end; w = m_list.next(*w)) ++n;
        return n;
    }

    intrusive_list<sync_waiter, sync_wait_tag> m_list;  // granted ones first, then waiting ones
    sync_waiter* m_first_waiting = nullptr;             // the split: null if none waits
};

CORING_NOINLINE inline void sync_waiter::leave_queue() noexcept {
    if (on_queue()) {
        m_wait_queue->erase(*this);
        m_phase = phase::done;
    }
}

CORING_ALWAYS_INLINE bool sync_waiter::register_on(wait_queue& waiters, std::coroutine_handle<> frame, const operations& ops) {
    m_cancelled = false;
    if (!begin_suspend(frame)) {
        m_phase = phase::done;
        return false;
    }
    m_ops = &ops;  // from here on it can be woken or cancelled
    waiters.push_back(*this);
    arm();
    return true;
}

/// Waits until its wait_queue grants it, carrying nothing: event::wait() and queue::join().
/// Readiness is checked when the awaiter is awaited: true means there is nothing to wait for.
/// It is either a flag (`ready`, read through a reference) or a predicate over its owner, for
/// an owner whose readiness is computed (queue::join: no item left unfinished), so that the
/// owner does not keep a flag in step with the state it mirrors.
///
/// `primitive` names the owner in the error thrown if it is destroyed meanwhile
/// ("coring::event"); `what` names the operation in the task dump ("event.wait"); `kind` the
/// wait in the profile (an event is a lock's kind of wait, a queue's join a queue's).
class flag_awaiter final : public sync_waiter {
public:
    using readiness = bool (*)(const void* owner) noexcept;

    flag_awaiter(wait_queue& waiters, readiness ready, const void* owner, const char* primitive, const char* what,
                 wait_kind kind = wait_kind::lock) noexcept
        : m_waiters(&waiters), m_ready(ready), m_owner(owner), m_primitive(primitive), m_what(what), m_kind(kind) {}
    flag_awaiter(wait_queue& waiters, const bool& ready, const char* primitive, const char* what, wait_kind kind = wait_kind::lock) noexcept
        : flag_awaiter(waiters, &read_flag, &ready, primitive, what, kind) {}
    flag_awaiter(flag_awaiter&& other) noexcept
        : sync_waiter(std::move(other)),
          m_waiters(other.m_waiters),
          m_ready(other.m_ready),
          m_owner(other.m_owner),
          m_primitive(other.m_primitive),
          m_what(other.m_what),
          m_kind(other.m_kind) {}

    [[nodiscard]] bool await_ready() const noexcept { return m_ready(m_owner); }

    std::coroutine_handle<> await_suspend(std::coroutine_handle<> frame) {
        return suspend_on(*m_waiters, frame, operations_for(m_kind));
    }

    void await_resume() { finish_wait(m_primitive); }

private:
    static bool read_flag(const void* flag) noexcept { return *static_cast<const bool*>(flag); }

    // A wake-up is not consumed by the one who receives it, so a cancel after the wake-up wins
    // too: nothing is lost by it (asyncio does the same).
    static void on_cancel(ready_node* node) noexcept { from_node<flag_awaiter>(node).cancel_wait(); }
    static void describe(const ready_node* node, await_description& out) {
        describe_waiter(node, from_node<flag_awaiter>(node).m_what, out);
    }
    template <wait_kind Kind>
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, Kind};
    static const operations& operations_for(wait_kind kind) noexcept {
        switch (kind) {
            case wait_kind::other: return operations_<wait_kind::other>;
            case wait_kind::io: return operations_<wait_kind::io>;
            case wait_kind::timer: return operations_<wait_kind::timer>;
            case wait_kind::queue: return operations_<wait_kind::queue>;
            case wait_kind::task: return operations_<wait_kind::task>;
            case wait_kind::thread: return operations_<wait_kind::thread>;
            case wait_kind::lock: break;
        }
        return operations_<wait_kind::lock>;
    }

    wait_queue* m_waiters;
    readiness m_ready;
    const void* m_owner;
    const char* m_primitive;
    const char* m_what;
    wait_kind m_kind;
};

}  // namespace coring::detail
