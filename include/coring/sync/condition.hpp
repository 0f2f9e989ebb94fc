#pragma once
// coring::condition (asyncio.Condition): tasks wait, with a mutex held, until another task
// notifies them.
//
//   coring::mutex m;
//   coring::condition ready;
//   std::deque<job> jobs;
//
//   auto guard = co_await m.scoped_lock();                             // consumer
//   co_await ready.wait(guard, [&] { return !jobs.empty(); });
//   job j = std::move(jobs.front()); jobs.pop_front();
//
//   auto guard = co_await m.scoped_lock();                             // producer
//   jobs.push_back(j);
//   ready.notify_one();
//
// wait(guard) unlocks the guard's mutex, waits for a notification and locks the mutex again
// before it returns, so the guard owns the lock whenever the caller runs. Notifications wake
// waiters first-in first-out; a notification with nobody waiting is not remembered. As in
// asyncio, a notified waiter runs on the next iteration and takes the lock then if it is free
// (else it queues for it): after notify(n) and the notifier's unlock, the n waiters each take
// and release the lock in turn within that one iteration.
//
// Unlike asyncio's Condition, a condition is not tied to one mutex: wait(guard) uses the guard's
// (every task that waits at the same time must use the same mutex), and notify may be called
// with or without the lock held (on one thread there is no race for the lock to prevent).
// wait(guard, pred) returns nothing (asyncio's wait_for(predicate) returns the predicate's last,
// true, value); it is a task, so it costs a (pooled) frame per call.
//
// Cancellation: wait(guard) always returns or throws with the lock held again. A waiter that is
// cancelled before it is notified stops waiting, re-acquires the lock (waiting for it if
// another task holds it) and then throws cancelled_error. One that is cancelled after it was
// notified, but before it resumed, passes the notification to the next waiter, re-acquires the
// lock and throws cancelled_error. No notification is lost; none is delivered twice.
//
// Thread-safety: loop-bound. A condition serves the tasks of one event loop; between loops use
// coring::channel (thread/channel.hpp). In debug mode, waking its waiters from another thread, or
// waiting on it from a second loop, is reported with both thread ids, and the process aborts (the
// call cannot throw).

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/wait_queue.hpp>
#include <coring/errors.hpp>
#include <coring/sync/mutex.hpp>
#include <coring/task.hpp>

#include <coroutine>
#include <cstddef>
#include <limits>
#include <utility>

namespace coring {

class condition;

namespace detail {

inline constexpr char condition_wait_text[] = "condition.wait";

struct condition_notified_tag {};

/// co_await c.wait(guard). Movable before it is awaited.
///
/// One awaiter, on one list at a time through the sync_waiter hook:
///   awaiting a notification   on the condition's wait_queue
///   notified                  on no list: its node is on the loop's ready queue, with the
///                             operations of notified_operations_, and tries the lock when run
///   re-acquiring the lock     on the mutex's wait_queue (waiting, then granted), after a
///                             notification that found the lock taken, or straight after a
///                             cancel
/// While notified and not yet resumed it is also on the condition's notified list (a second
/// hook), so that a cancel can pass the notification on, and so that a condition destroyed
/// meanwhile can detach it.
class condition_wait_awaiter final : public sync_waiter, public list_hook<condition_notified_tag> {
    using notified_hook = list_hook<condition_notified_tag>;

public:
    condition_wait_awaiter(condition& c, mutex_guard& guard) noexcept : m_condition(&c), m_guard(&guard) {}
    condition_wait_awaiter(condition_wait_awaiter&& other) noexcept
        : sync_waiter(std::move(other)), notified_hook(), m_condition(other.m_condition), m_guard(other.m_guard) {}
    ~condition_wait_awaiter() { notified_hook::unlink(); }

    /// Throws invalid_state_error if the guard does not own a lock (asyncio's RuntimeError).
    [[nodiscard]] bool await_ready() const {
        if (!m_guard->owns_lock()) throw invalid_state_error("coring: condition::wait() needs a guard that owns its mutex");
        return false;
    }

    std::coroutine_handle<> await_suspend(std::coroutine_handle<> frame);
    void await_resume();

private:
    friend class coring::condition;

    /// Moves on to re-acquiring the lock: takes it now (and is woken) or queues for it.
    void reacquire() noexcept {
        m_reacquiring = true;
        m_guard->owner()->acquire_for(*this);
    }

    /// notify(): the waiter runs on the next iteration and tries the lock then.
    void wake_notified() noexcept {
        m_ops = &notified_operations_;
        wake();
    }

    static void on_cancel(ready_node* node) noexcept;
    /// The notified waiter's turn on the ready queue: it resumes at once if the lock is free
    /// (taking it), else queues for it, as asyncio's wait does with `await self.acquire()`.
    static void on_notified_run(ready_node* node, action what) noexcept;
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe_as<condition_wait_text>, ::coring::detail::wait_kind::lock};
    static constexpr operations notified_operations_{&on_notified_run, &on_cancel, false, &describe_as<condition_wait_text>, ::coring::detail::wait_kind::lock};

    condition* m_condition;
    mutex_guard* m_guard;
    bool m_reacquiring = false;  // off the condition's list, on the mutex's
};

}  // namespace detail

class condition {
public:
    condition() noexcept = default;
    condition(const condition&) = delete;
    condition& operator=(const condition&) = delete;
    /// Reports (stderr, and an assertion in debug builds) if tasks still wait on the condition.
    ~condition();

    /// Awaitable: unlocks the guard's mutex, waits for notify_one() / notify_all(), locks the
    /// mutex again and returns. Throws invalid_state_error if the guard owns no lock.
    [[nodiscard]] detail::condition_wait_awaiter wait(mutex_guard& guard) noexcept { return detail::condition_wait_awaiter(*this, guard); }

    /// Waits until pred() is true (asyncio's wait_for(predicate)): checks it first, then after
    /// every wake-up, always with the lock held. Returns with the lock held.
    template <class Predicate>
    [[nodiscard]] task<> wait(mutex_guard& guard, Predicate pred) {
        while (!pred()) co_await wait(guard);
    }

    /// Wakes the task that has waited longest, if any.
    void notify_one() noexcept { notify(1); }
    /// Wakes every waiting task.
    void notify_all() noexcept { notify(std::numeric_limits<std::size_t>::max()); }
    /// Wakes up to `n` waiting tasks, longest-waiting first (asyncio's notify(n)). Each runs on
    /// the next iteration and resumes once it has the lock again.
    void notify(std::size_t n) noexcept {
        for (; n > 0; --n) {
            auto* waiter = static_cast<detail::condition_wait_awaiter*>(m_waiters.pop_front());
            if (waiter == nullptr) break;
            m_notified.push_back(*waiter);  // holds a notification while linked there
            waiter->wake_notified();
        }
    }

private:
    friend class detail::condition_wait_awaiter;

    detail::wait_queue m_waiters;  // awaiting a notification (never granted: they move to the mutex)
    detail::intrusive_list<detail::condition_wait_awaiter, detail::condition_notified_tag> m_notified;  // notified, not resumed
};

// ---------------------------------------------------------------------- implementation

inline condition::~condition() {
    const std::size_t waiting = m_waiters.waiting_count() + m_notified.size();
    if (waiting == 0) return;
    detail::wait_queue::report_destroyed_while_waited_on("coring::condition", waiting);
    // Notified waiters need only the mutex now: they forget this condition and carry on.
    while (m_notified.pop_front() != nullptr) {
    }
    // The others resume with invalid_state_error, their guards owning nothing (they released
    // the lock when they started waiting). They do not take the lock again: the mutex may be
    // gone too.
    m_waiters.orphan_all();
}

inline std::coroutine_handle<> detail::condition_wait_awaiter::await_suspend(std::coroutine_handle<> frame) {
    // A pending cancel is delivered here, before the lock is released: the caller keeps it.
    if (!register_on(m_condition->m_waiters, frame, operations_)) return frame;
    m_guard->owner()->release_to_next();  // the guard keeps its mutex: the lock comes back before we resume
    return switch_away(frame);
}

inline void detail::condition_wait_awaiter::await_resume() {
    notified_hook::unlink();
    leave_queue();
    if (m_phase == phase::orphaned) [[unlikely]] {
        // The condition (or, while this waited to re-acquire the lock, the mutex) was destroyed:
        // the lock is not held, so the guard must not unlock it.
        (void)m_guard->release();
        throw_orphaned(m_reacquiring ? "coring::mutex" : "coring::condition");
    }
    throw_if_cancelled();
}

inline void detail::condition_wait_awaiter::on_notified_run(ready_node* node, action what) noexcept {
    auto& self = from_node<condition_wait_awaiter>(node);
    self.m_ops = &operations_;
    self.m_reacquiring = true;
    mutex& m = *self.m_guard->owner();
    if (what == action::run && !m.m_locked) {
        m.m_locked = true;
        resume_frame(node, what);
        return;
    }
    if (what == action::discard) {
        resume_frame(node, what);  // the loop is closing: nothing to lock
        return;
    }
    m.m_waiters.push_back(self);  // granted by the unlock that frees it; then resumed as usual
}

inline void detail::condition_wait_awaiter::on_cancel(ready_node* node) noexcept {
    auto& self = from_node<condition_wait_awaiter>(node);
    if (self.m_phase == phase::orphaned) return;  // the request stays pending
    self.take_cancel_request();
    self.mark_cancelled();
    if (self.m_ops == &notified_operations_) {
        // Notified and on the ready queue: the notification goes to the next waiter; this one
        // still takes the lock when it runs, then throws.
        if (self.notified_hook::linked()) {
            self.notified_hook::unlink();
            self.m_condition->notify(1);
        }
    } else if (!self.m_reacquiring) {
        // Still awaiting a notification: stop, and take the lock back before throwing.
        self.leave_queue();
        self.m_phase = phase::idle;
        self.reacquire();
    } else if (self.notified_hook::linked()) {
        // Notified but not resumed: the notification goes to the next waiter.
        self.notified_hook::unlink();
        self.m_condition->notify(1);
    }
    // Not re-armed: the lock is re-acquired whatever happens, and a further cancel request
    // stays pending for the task's next suspension point.
}

}  // namespace coring
