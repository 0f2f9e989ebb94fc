#pragma once
// leaf_awaiter: the base of every awaiter that suspends a task on something that happens later
// (a timer, a kernel operation, a task handle, a queue, a lock, ...). It carries the protocol
// that makes cancellation work the same way everywhere:
//
//   bool await_suspend(std::coroutine_handle<> frame) {
//       if (!begin_suspend(frame)) return false;  // a cancel request was pending: resume at once,
//                                                 // and await_resume throws cancelled_error
//       ...register for the wake-up (timer heap, waiter list, SQE)...
//       arm();                                    // become the task's cancellation slot
//       return true;
//   }
//   when the awaited thing happens:  wake();       // resume through the ready queue
//   Derived::on_cancel(ready_node*):               // a cancel request while suspended; decide:
//       take_cancel_request(), undo the registration, mark_cancelled(), wake()
//       -- or leave the request pending when the wake-up already won and cannot be undone
//   await_resume():  throw_if_cancelled(); return the result;
//
// Registered means suspended: await_suspend may return false (resume at once) only before it
// has registered for a wake-up. Once registered, the wake-up alone resumes the frame, so an
// await_suspend that can be woken while it registers (a combinator whose cancel finishes a
// future on the spot, which runs its notifier) returns void, or true. Returning false after a
// wake-up was queued would resume the frame twice: once now, and once from the ready queue,
// possibly after the frame is gone.
//
// The node resumes the frame with its task as the loop's current task, after disarming the
// slot: a cancel request that arrives once the frame runs again waits for its next suspension.
// An awaiter whose await_suspend returns a handle ends with switch_away(frame): when the loop
// allows it, the next ready task then runs at once (scheduler.hpp, "Hand-off").
// Derived classes list `{&resume_frame, &Derived::on_cancel}` as their ready_node operations.
//
// The loop is found through the task (or, for a coroutine that is not a task, the running
// loop), so an awaiter costs 16 bytes plus its node: 100,000 sleeping tasks keep this small.

#include <coring/config.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/errors.hpp>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <string>

namespace coring::detail {

/// "+1.500 s" or "-0.020 s": a time relative to the loop's now, for await descriptions.
inline std::string format_offset(std::chrono::nanoseconds offset) {
    char text[48];
    std::snprintf(text, sizeof text, "%+.3f s", std::chrono::duration<double>(offset).count());
    return text;
}

template <class Node = ready_node>
class leaf_awaiter : public Node {
public:
    /// Awaiters may be moved before they are awaited (combinators such as wait_for store the
    /// awaitable they are given), never after.
    leaf_awaiter(leaf_awaiter&& other) noexcept : Node(other), m_task(nullptr), m_scratch(other.m_scratch), m_cancelled(false) {}
    leaf_awaiter(const leaf_awaiter&) = delete;
    leaf_awaiter& operator=(const leaf_awaiter&) = delete;
    leaf_awaiter& operator=(leaf_awaiter&&) = delete;

protected:
    explicit leaf_awaiter(const ready_node::operations& ops) noexcept : Node(ops), m_task(nullptr), m_frame(), m_cancelled(false) {}
    /// For awaiters that usually complete without suspending (sync_waiter): the operations, the
    /// task, the frame and the cancelled flag stay unset until the awaiter suspends, so the
    /// caller must not read them (nor cancelled()) before; it sets m_cancelled before
    /// begin_suspend, and m_ops once registered.
    explicit leaf_awaiter(no_init_t) noexcept : Node(no_init) {}

    /// Records the task and frame. False if the task had a pending cancel request, which is
    /// thereby delivered (cancelled() is now true): a simple leaf returns false from
    /// await_suspend and throws in await_resume; a combinator that owns children cancels them
    /// and still suspends until they have finished.
    bool begin_suspend(std::coroutine_handle<> frame);

    /// Becomes the task's cancellation slot (call once registered for the wake-up).
    void arm() noexcept {
        if (m_task != nullptr) m_task->arm_cancel(*this);
    }

    /// The end of an await_suspend that returns a handle, once registered and armed: the frame
    /// that runs next (scheduler::start_next_batch_after), or the loop.
    std::coroutine_handle<> switch_away(std::coroutine_handle<> frame) noexcept;

    /// Schedules the frame to resume on the loop's next run phase.
    void wake() noexcept;

    /// For on_cancel: consumes the task's request (it is being delivered here).
    void take_cancel_request() noexcept { m_task->take_cancel_request(); }
    void mark_cancelled() noexcept { m_cancelled = true; }
    [[nodiscard]] bool cancelled() const noexcept { return m_cancelled; }
    void throw_if_cancelled() const {
        if (m_cancelled) throw_cancelled();
    }
    /// Throws the cancelled_error of the awaiting task's cancellation, with its message.
    [[noreturn]] void throw_cancelled() const {
        if (m_task != nullptr) throw m_task->make_cancelled_error();
        throw cancelled_error{};
    }

    [[nodiscard]] state_base* task() const noexcept { return m_task; }
    /// The scheduler this awaiter suspends on (valid from begin_suspend on).
    [[nodiscard]] scheduler& loop() const noexcept { return m_task != nullptr ? *m_task->loop() : *t_running_scheduler; }

    static void resume_frame(ready_node* node, ready_node::action what) noexcept;

    state_base* m_task;
    union {
        std::coroutine_handle<> m_frame;  // once begin_suspend succeeded
        std::int64_t m_scratch;           // before that: free for the derived awaiter (sleep keeps its deadline here)
    };
    bool m_cancelled;

private:
    template <class>
    friend class leaf_awaiter;
    /// What resume_frame does before it resumes: disarms the slot. Returns the task, and the
    /// frame in `frame`.
    static state_base* ready_to_resume(ready_node& node, std::coroutine_handle<>& frame) noexcept {
        auto& self = static_cast<leaf_awaiter&>(static_cast<Node&>(node));
        if (self.m_task != nullptr) self.m_task->disarm_cancel(self);
        frame = self.m_frame;
        return self.m_task;
    }
};

// Always inlined: every suspension runs it, and out of line it costs a call around a handful
// of loads and stores (measured in the queue ping-pong benchmark).
template <class Node>
CORING_ALWAYS_INLINE bool leaf_awaiter<Node>::begin_suspend(std::coroutine_handle<> frame) {
    scheduler* running = t_running_scheduler;
    if (CORING_UNLIKELY(running == nullptr)) throw_no_running_loop();  // get_running_loop's error
    m_task = running->current_task_state();
    // m_frame is stored after the branch, on each path: stored next to m_task, g++ packs the
    // two into a vector store that costs more instructions than it saves.
    if (m_task != nullptr && CORING_UNLIKELY(m_task->cancel_requested())) {
        m_frame = frame;
        (void)m_task->take_cancel_request();
        m_cancelled = true;
        return false;
    }
    m_frame = frame;
    return true;
}

// The leaf's half of the hand-off: the scheduler decides whether the next iteration starts
// here and takes its first node; when that node resumes a frame (it is a leaf awaiter's node,
// of the kind whose run is resume_frame), it is readied here as resume_frame readies it, and
// the suspending frame transfers to it. Otherwise the loop runs the batch.
template <class Node>
CORING_ALWAYS_INLINE std::coroutine_handle<> leaf_awaiter<Node>::switch_away(std::coroutine_handle<> frame) noexcept {
    scheduler& running = *t_running_scheduler;  // the task's: it suspends while running
    ready_node* first = running.start_next_batch_after(frame);
    if (first == nullptr) return std::noop_coroutine();
    if (first->m_ops->run != &leaf_awaiter<ready_node>::resume_frame) {
        running.run_handed_batch(first);
        return std::noop_coroutine();
    }
    std::coroutine_handle<> next;
    state_base* task = leaf_awaiter<ready_node>::ready_to_resume(*first, next);
    running.enter_handed_step(first, task, next);
    return next;
}

// Always inlined: it is on every wake-up's path, and the tracing hook must not make g++ call it.
template <class Node>
CORING_ALWAYS_INLINE void leaf_awaiter<Node>::wake() noexcept {
    scheduler& l = loop();
    if (CORING_UNLIKELY(l.instrumented())) l.trace_wake(m_task);
    l.schedule(*this);
}

template <class Node>
void leaf_awaiter<Node>::resume_frame(ready_node* node, ready_node::action what) noexcept {
    if (what == ready_node::action::discard) return;
    std::coroutine_handle<> frame;
    state_base* task = ready_to_resume(*node, frame);
    t_running_scheduler->resume(task, frame);  // nodes run only inside the running loop
}

}  // namespace coring::detail
