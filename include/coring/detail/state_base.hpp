#pragma once
// The shared state behind task_handle<T> and future<T> (the parts that do not depend on T).
//
//   task_handle<T> ──┐ (refcounted; copies share one state)
//   task_handle<T> ──┼──▶ state<T> ──m_frame (until it starts)──▶ root frame (task<T> body)
//   event_loop ──────┘        │                                        │ awaits task<U> (same
//    (one reference while     │ m_slot (once it runs)                   ▼  chain, same state)
//     the task runs)          └──────────────────────────────────▶ leaf awaiter (sleep, read, ...)
//
// A state created by create_task is also the task's *chain*: every task<T> awaited inside it
// runs under the same state, and the leaf awaiter the chain is suspended in fills m_slot. A
// cancel request sets m_cancel_requested and fires the slot; the leaf decides what happens
// (remove a timer, send IORING_OP_ASYNC_CANCEL, unlink from a waiter list) and resumes the task
// by throwing cancelled_error. A request that finds no slot (the task is running, queued to run,
// or not started) stays pending and is delivered at the next suspension point.

#include <coring/config.hpp>
#include <coring/detail/context_map.hpp>
#include <coring/detail/exception_report.hpp>
#include <coring/detail/frame_pool.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/source_location.hpp>
#include <coring/errors.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

namespace coring {
class event_loop;
}

namespace coring::detail {

/// Something that waits for a state to finish: an awaiting coroutine or a done callback. When the
/// state finishes, each waiter is moved, in the order it registered, to the loop's ready queue.
struct completion_waiter : ready_node {
    using ready_node::ready_node;
};

/// A state's waiters: a FIFO threaded through the waiters' own ready-queue link (a waiter is on
/// a state's list or on the ready queue, never both), circular so that the list is one pointer
/// to its tail. A task rarely has more than a few waiters, so erase() may walk.
class waiter_list {
public:
    [[nodiscard]] bool empty() const noexcept { return m_tail == nullptr; }

    void push_back(completion_waiter& waiter) noexcept {
        if (m_tail == nullptr) {
            waiter.m_next = &waiter;
        } else {
            waiter.m_next = m_tail->m_next;
            m_tail->m_next = &waiter;
        }
        m_tail = &waiter;
    }

    completion_waiter* pop_front() noexcept {
        if (m_tail == nullptr) return nullptr;
        auto* head = static_cast<completion_waiter*>(m_tail->m_next);
        if (head == m_tail)
            m_tail = nullptr;
        else
            m_tail->m_next = head->m_next;
        head->m_next = nullptr;
        return head;
    }

    /// The first waiter for which pred(waiter) is true, or null.
    template <class Pred>
    completion_waiter* find_if(Pred pred) const noexcept {
        if (m_tail == nullptr) return nullptr;
        ready_node* node = m_tail;
        do {
            node = node->m_next;
            if (pred(*static_cast<completion_waiter*>(node))) return static_cast<completion_waiter*>(node);
        } while (node != m_tail);
        return nullptr;
    }

    /// Removes `waiter` if it is on the list; false if it is not.
    bool erase(completion_waiter& waiter) noexcept {
        if (m_tail == nullptr) return false;
        ready_node* prev = m_tail;
        do {
            ready_node* current = prev->m_next;
            if (current == &waiter) {
                if (current == prev) {
                    m_tail = nullptr;
                } else {
                    prev->m_next = current->m_next;
                    if (current == m_tail) m_tail = static_cast<completion_waiter*>(prev);
                }
                current->m_next = nullptr;
                return true;
            }
            prev = current;
        } while (prev != m_tail);
        return false;
    }

private:
    completion_waiter* m_tail = nullptr;
};

struct registry_tag {};

class state_base : public list_hook<registry_tag>, public ready_node {
public:
    enum class status : std::uint8_t { pending, running, finished };

    state_base(const state_base&) = delete;
    state_base& operator=(const state_base&) = delete;

    static void* operator new(std::size_t size) { return frame_pool::allocate(size); }
    static void operator delete(void* block, std::size_t size) noexcept { frame_pool::deallocate(block, size); }

    // --- lifetime: every handle holds a reference, and the loop holds one while a task runs.
    void add_ref() noexcept { ++m_refs; }
    void release() noexcept;

    // --- observers
    [[nodiscard]] bool is_task() const noexcept { return m_is_task; }
    [[nodiscard]] status current_status() const noexcept { return m_status; }
    [[nodiscard]] bool done() const noexcept { return m_status == status::finished; }
    [[nodiscard]] bool cancelled() const noexcept { return done() && m_cancelled; }
    /// Finished by throwing (cancellation included).
    [[nodiscard]] bool failed() const noexcept { return done() && m_exception != nullptr; }
    /// The scheduler of the loop it belongs to; null once that loop is closed.
    [[nodiscard]] scheduler* loop() const noexcept { return m_loop; }
    [[nodiscard]] std::uint64_t id() const noexcept { return m_id; }
    [[nodiscard]] std::string name() const;
    /// The name without allocating (tracing writes one per step): a default name ("Task-<id>",
    /// "Future") is written into `scratch`; a custom one is viewed where it is kept.
    using name_scratch = std::array<char, 32>;
    [[nodiscard]] std::string_view name_view(name_scratch& scratch) const noexcept;
    void set_name(std::string name);
    [[nodiscard]] bool has_custom_name() const noexcept { return m_extras != nullptr && !m_extras->name.empty(); }
    /// Profile mode and tracing: where the task is (allocated on first use); null if it could
    /// not be allocated. With `p`, its group in `p` is found too.
    profile_mark* mark(profiler* p) noexcept;
    /// For dumps: the leaf awaiter a started task is suspended in, or null (running, queued to
    /// resume, or suspended in something that cannot be cancelled).
    [[nodiscard]] const ready_node* suspended_in() const noexcept { return m_status == status::running ? m_slot : nullptr; }
    [[nodiscard]] const source_location& creation_site() const noexcept { return m_site; }

    // --- the task's context (context_var.hpp): a copy of its creator's, taken by the constructor
    /// The map the task's code reads (null: nothing set).
    [[nodiscard]] context_map* context() const noexcept { return m_extras != nullptr ? m_extras->context.map : nullptr; }
    /// The slot that set() and reset() replace the map in.
    [[nodiscard]] context_slot& writable_context() {
        if (!m_extras) m_extras = std::make_unique<extras>();
        return m_extras->context;
    }

    /// Cancels a future at once; asks a task to stop. False when already finished. Each request
    /// counts (cancelling()); `message` becomes the cancelled_error's message (asyncio's
    /// cancel(msg): the latest request's message wins, none clears it).
    bool request_cancel(std::string_view message = {}) noexcept;
    /// asyncio's Task.cancelling(): cancel requests not yet withdrawn by uncancel().
    [[nodiscard]] std::uint32_t cancelling() const noexcept { return static_cast<std::uint32_t>(m_cancelling); }
    /// asyncio's Task.uncancel(): withdraws one request; at zero, a request not yet delivered is
    /// dropped too (asyncio 3.13). Returns the count left.
    std::uint32_t uncancel() noexcept {
        if (m_cancelling > 0 && --m_cancelling == 0) m_cancel_requested = false;
        return static_cast<std::uint32_t>(m_cancelling);
    }
    /// The message of the latest cancel request ("" if none).
    [[nodiscard]] std::string cancel_message() const { return m_extras != nullptr ? m_extras->cancel_message : std::string(); }
    /// A cancelled_error carrying cancel_message().
    [[nodiscard]] cancelled_error make_cancelled_error() const { return cancelled_error(cancel_message()); }

    // --- retrieval (marks the outcome as retrieved, so it is not reported as lost)
    /// Throws invalid_state_error if not finished and cancelled_error if cancelled.
    [[nodiscard]] std::exception_ptr exception();
    /// Throws what the task threw, cancelled_error if cancelled, invalid_state_error if not finished.
    void rethrow_if_failed();
    /// Marks the outcome as retrieved without looking at it (a combinator reported it, or chose
    /// to report another failure instead), so that dropping the state does not report it.
    void mark_retrieved() noexcept { m_retrieved = true; }
    /// The exception it finished with (null if none), without marking it retrieved or throwing.
    [[nodiscard]] const std::exception_ptr& stored_exception() const noexcept { return m_exception; }

    // --- waiters
    void add_waiter(completion_waiter& waiter) noexcept { m_waiters.push_back(waiter); }
    /// False if `waiter` was not waiting (it has been woken already).
    bool remove_waiter(completion_waiter& waiter) noexcept { return m_waiters.erase(waiter); }
    /// The first waiter for which pred(waiter) is true, or null.
    template <class Pred>
    [[nodiscard]] completion_waiter* find_waiter(Pred pred) const noexcept {
        return m_waiters.find_if(pred);
    }

    // --- the chain's cancellation slot (tasks only): the ready node of the leaf awaiter the
    // task is suspended in, whose operations include `cancel`.
    void arm_cancel(ready_node& leaf) noexcept { m_slot = &leaf; }
    void disarm_cancel(ready_node& leaf) noexcept {
        if (m_slot == &leaf) m_slot = nullptr;  // a leaf exists only once the task runs
    }
    [[nodiscard]] bool cancel_requested() const noexcept { return m_cancel_requested; }
    /// Consumes a pending cancel request: true if there was one (the caller now delivers it).
    bool take_cancel_request() noexcept {
        const bool requested = m_cancel_requested;
        m_cancel_requested = false;
        return requested;
    }
    /// A request that lost the race to a completion is delivered at the next suspension point.
    void restore_cancel_request() noexcept { m_cancel_requested = true; }
    /// For a task that has not started: a cancel request no longer keeps its body from running;
    /// the body starts and the request is delivered at its first suspension point (wait_for
    /// runs its coroutine that way, as asyncio 3.12 runs it inside the waiting task).
    void start_even_if_cancelled() noexcept { m_starts_when_cancelled = true; }

    // --- completion
    /// Marks the state finished (the value, if any, is already stored), wakes the waiters and,
    /// for a task, drops the loop's reference.
    void finish(std::exception_ptr error) noexcept;
    /// Called from the final suspend point of the root frame: takes its result, destroys it.
    virtual void finish_root(std::coroutine_handle<> frame) noexcept = 0;

protected:
    state_base(scheduler& loop, bool is_task, std::string_view name, const source_location& site);
    virtual ~state_base();
    // Out of line: a program that never sets a context_var does not pay for it in create_task.
    void inherit_context(const state_base* creator);

    // The ready_node base starts the root frame (create_task schedules it).
    static void step(ready_node* node, ready_node::action what) noexcept;
    static constexpr ready_node::operations start_operations{&step};

    scheduler* m_loop;
    std::exception_ptr m_exception;
    waiter_list m_waiters;
    // Before the task starts, its root frame; once it runs, the chain's cancellation slot. One
    // word for both keeps 100,000 sleeping tasks small.
    union {
        std::coroutine_handle<> m_frame;
        ready_node* m_slot;
    };
    // The task's number and its cancel count share a word: the count costs the state no size.
    std::uint64_t m_id : 48 = 0;
    std::uint64_t m_cancelling : 16 = 0;
    // What few tasks have, allocated on first use: a name of their own, a cancel message, a
    // context (a program that never sets a context_var has none, so create_task copies nothing).
    struct extras {
        std::string name;  // empty: the default name "Task-<id>"
        std::string cancel_message;
        context_slot context;
        profile_mark profile;  // profile mode: the task's group and current wait (profiler.hpp)

        extras() = default;
        extras(std::string n, std::string message) : name(std::move(n)), cancel_message(std::move(message)) {}
        extras(const extras&) = delete;
        extras& operator=(const extras&) = delete;
        ~extras() { context.clear(); }
    };
    std::unique_ptr<extras> m_extras;
    source_location m_site;
    std::uint32_t m_refs = 1;
    status m_status = status::pending;
    bool m_is_task : 1;
    bool m_cancelled : 1 = false;
    bool m_cancel_requested : 1 = false;
    bool m_retrieved : 1 = false;
    bool m_starts_when_cancelled : 1 = false;

    friend class coring::event_loop;  // close() detaches the states that outlive the loop
};

/// The task running in this thread (on the loop running here), or null: in a callback, outside
/// any loop, on a pool thread.
[[nodiscard]] inline state_base* running_task() noexcept {
    const scheduler* loop = t_running_scheduler;
    return loop != nullptr ? loop->current_task_state() : nullptr;
}

/// The map of the context that code running as `task` reads (null: nothing set), or with no
/// task, the thread's (see t_context).
[[nodiscard]] inline context_map* context_of(const state_base* task) noexcept { return task != nullptr ? task->context() : t_context.map; }

/// The map of the context that the code running in this thread reads.
[[nodiscard]] inline context_map* current_context() noexcept { return context_of(running_task()); }

/// A new reference to the context of the code running in this thread, for a callback or a
/// to_thread call to run in; null if it is empty.
[[nodiscard]] inline context_map* capture_context() noexcept {
    if (CORING_LIKELY(!t_contexts_used)) return nullptr;
    context_map* map = current_context();
    if (map != nullptr) map->add_ref();
    return map;
}

/// The slot that set() and reset() replace the current map in.
[[nodiscard]] inline context_slot& current_context_slot() {
    t_contexts_used = true;
    if (state_base* task = running_task()) return task->writable_context();
    release_thread_context_at_exit();
    return t_context;
}

/// True if `error` holds a cancelled_error.
inline bool is_cancellation(const std::exception_ptr& error) noexcept {
    if (!error) return false;
    try {
        std::rethrow_exception(error);
    } catch (const cancelled_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

inline std::string state_base::name() const {
    name_scratch scratch;
    return std::string(name_view(scratch));
}

inline std::string_view state_base::name_view(name_scratch& scratch) const noexcept {
    if (has_custom_name()) return m_extras->name;
    if (!m_is_task) return "Future";
    constexpr std::string_view prefix = "Task-";
    std::copy(prefix.begin(), prefix.end(), scratch.begin());
    const auto end = std::to_chars(scratch.data() + prefix.size(), scratch.data() + scratch.size(), static_cast<std::uint64_t>(m_id)).ptr;
    return {scratch.data(), static_cast<std::size_t>(end - scratch.data())};
}

inline void state_base::set_name(std::string name) {
    if (!m_extras) {
        if (name.empty()) return;
        m_extras = std::make_unique<extras>();
    }
    m_extras->name = std::move(name);
    m_extras->profile.group = nullptr;  // profile mode: counted under the new name from now on
}

inline std::exception_ptr state_base::exception() {
    if (!done()) throw invalid_state_error("coring: exception() called on a " + name() + " that has not finished");
    m_retrieved = true;
    if (m_cancelled) std::rethrow_exception(m_exception);  // the cancelled_error, with its message
    return m_exception;
}

inline void state_base::rethrow_if_failed() {
    if (!done()) throw invalid_state_error("coring: result() called on a " + name() + " that has not finished");
    m_retrieved = true;
    if (m_exception) std::rethrow_exception(m_exception);
}

inline state_base::state_base(scheduler& loop, bool is_task, std::string_view name, const source_location& site)
    : ready_node(start_operations), m_loop(&loop), m_frame(), m_site(site), m_is_task(is_task) {
    if (!name.empty()) m_extras = std::make_unique<extras>(std::string(name), std::string());
    if (is_task) {
        // asyncio's Task copies contextvars.copy_context(): the creator's context, the running
        // task's or else the thread's (a callback's, or main's before the loop runs).
        if (CORING_UNLIKELY(t_contexts_used)) inherit_context(loop.m_current);
        m_id = loop.m_next_task_id++;
        ++loop.m_unfinished_tasks;
    }
    loop.m_states.push_back(*this);
}

CORING_NOINLINE inline void state_base::inherit_context(const state_base* creator) {
    context_map* creators = context_of(creator);
    if (creators == nullptr) return;
    writable_context().map = creators;
    creators->add_ref();
}

inline state_base::~state_base() {
    static_cast<list_hook<registry_tag>&>(*this).unlink();
    // Done callbacks of a future that never finished: free them without running them.
    while (completion_waiter* waiter = m_waiters.pop_front()) waiter->run(ready_node::action::discard);
}

inline void state_base::step(ready_node* node, action what) noexcept {
    auto* self = static_cast<state_base*>(node);
    if ((self->m_cancel_requested && !self->m_starts_when_cancelled) || what == action::discard) {
        // Cancelled before it started: the body never runs (asyncio does the same).
        self->m_cancel_requested = false;
        self->m_frame.destroy();
        self->m_frame = {};
        self->finish(std::make_exception_ptr(self->make_cancelled_error()));
        return;
    }
    const std::coroutine_handle<> frame = self->m_frame;
    self->m_slot = nullptr;  // the union's other member from now on
    self->m_status = status::running;
    self->m_loop->resume(self, frame);
}

inline profile_mark* state_base::mark(profiler* p) noexcept {
    try {
        if (!m_extras) m_extras = std::make_unique<extras>();
        profile_mark& mark = m_extras->profile;
        if (p != nullptr && mark.group == nullptr) {
            mark.group = &p->group(has_custom_name() ? m_extras->name : profile_group_name(m_site.function_name(), m_site.file_name(), m_site.line()));
            ++mark.group->tasks;
        }
        return &mark;
    } catch (...) {
        return nullptr;  // out of memory: this step goes unrecorded
    }
}

// The task is held for the step: one that finishes in it may otherwise be destroyed inside it
// (finish() drops the loop's reference), and the step's end still reads it.
CORING_NOINLINE inline void scheduler::instrumented_step(state_base* task, std::coroutine_handle<> frame) noexcept {
    if (task != nullptr) task->add_ref();
    profile_mark* mark = task != nullptr && (m_profiler || m_trace) ? task->mark(m_profiler.get()) : nullptr;
    const clock::time_point start = clock::now();
    if (mark != nullptr && m_profiler) m_profiler->step_begins(*mark, m_options.virtual_time ? m_virtual_now : start);
    if (mark != nullptr && m_trace && mark->flow != 0) {
        trace_event([&] { m_trace->flow_finishes(mark->flow_kind, mark->flow, start); });
        mark->flow = 0;
    }
    const clock::duration nested_before = m_nested_step_time;
    m_nested_step_time = clock::duration::zero();
    frame.resume();
    const clock::time_point end = clock::now();
    const clock::duration took = end - start;
    if (mark != nullptr && m_profiler)
        m_profiler->step_ends(*mark, took - m_nested_step_time, m_options.virtual_time ? m_virtual_now : end, task->suspended_in(), task->done());
    if (m_trace) {
        trace_event([&] {
            state_base::name_scratch scratch;
            m_trace->step(task != nullptr ? task->name_view(scratch) : std::string_view("(coroutine)"), task != nullptr ? task->id() : 0, start, took);
        });
    }
    m_nested_step_time = nested_before + took;
    if (m_debug && took > m_options.slow_callback_duration) report_slow_step(task, took);
    if (task != nullptr) task->release();
}

// A task made in a step of this loop: a flow from that step to the task's first one. (Made
// by a callback or before the loop runs, it gets none: a flow needs a slice to start from.)
CORING_NOINLINE inline void scheduler::trace_created(state_base& task) noexcept {
    if (!m_trace || m_current == nullptr) return;
    profile_mark* mark = task.mark(nullptr);
    if (mark == nullptr) return;
    trace_event([&] {
        mark->flow = m_trace->file_next_flow();
        mark->flow_kind = "create_task";
        m_trace->flow_starts("create_task", mark->flow, clock::now());
    });
}

// A task woken from inside a step: a flow from that step to the woken task's next one. (Woken
// by a completion or a timer, outside any step, it gets none: the kernel operation's slice,
// or the time, says why it runs.)
CORING_NOINLINE inline void scheduler::trace_wake(state_base* task) noexcept {
    if (!m_trace || task == nullptr || m_current == nullptr || task == m_current) return;
    profile_mark* mark = task->mark(nullptr);
    if (mark == nullptr) return;
    trace_event([&] {
        mark->flow = m_trace->file_next_flow();
        mark->flow_kind = "wake";
        m_trace->flow_starts("wake", mark->flow, clock::now());
    });
}

inline bool state_base::request_cancel(std::string_view message) noexcept {
    if (done()) return false;
    if (m_cancelling < 0xffff) ++m_cancelling;
    try {
        if (m_extras)
            m_extras->cancel_message.assign(message);
        else if (!message.empty())
            m_extras = std::make_unique<extras>(std::string(), std::string(message));
    } catch (...) {
        // Out of memory: the cancellation goes on without its message.
    }
    if (!m_is_task) {
        finish(std::make_exception_ptr(make_cancelled_error()));
        return true;
    }
    m_cancel_requested = true;
    if (m_status == status::running) {
        if (ready_node* leaf = std::exchange(m_slot, nullptr)) leaf->cancel();
    }
    return true;
}

inline void state_base::finish(std::exception_ptr error) noexcept {
    m_exception = std::move(error);
    m_cancelled = is_cancellation(m_exception);
    m_status = status::finished;
    m_slot = nullptr;
    m_cancel_requested = false;
    if (m_loop != nullptr) {
        ++m_loop->m_loop_events;  // run_until may be done (see scheduler.hpp, "Hand-off")
        if (m_is_task) --m_loop->m_unfinished_tasks;
        while (completion_waiter* waiter = m_waiters.pop_front()) {
            if (waiter->m_ops->immediate)
                waiter->run();
            else
                m_loop->schedule(*waiter);
        }
    }
    if (m_is_task) release();  // the loop's reference: may destroy *this
}

inline void state_base::release() noexcept {
    if (--m_refs != 0) return;
    if (done() && m_exception && !m_retrieved && !m_cancelled) {
        exception_context context{m_is_task ? "Task exception was never retrieved" : "Future exception was never retrieved",
                                  m_exception, name(), m_site};
        if (m_loop != nullptr)
            m_loop->call_exception_handler(context);
        else
            print_report(context);
    }
    delete this;
}

}  // namespace coring::detail
