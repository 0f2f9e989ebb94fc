#pragma once
// detail::scheduler: the machinery of an event loop, behind the interface that awaiters use.
//
// It owns the ready queue, the timer heap, the io_uring ring, the thread-safe inbox and the
// registry of task states, and runs iterations (run_once). Awaiters, task states and callbacks
// use it to schedule a node, arm a timer, get an SQE and submit it, and cancel an operation;
// event_loop (event_loop.hpp), the public front, derives from it and adds asyncio's loop
// methods, signals, the thread pool, the exception handler and shutdown.
//
// One iteration (run_once):
//   1. submit queued SQEs and reap completions in one io_uring_enter; block only when nothing
//      is ready, and only until the nearest timer (or until another thread calls
//      call_soon_threadsafe);
//   2. move expired timers to the ready queue, earliest first;
//   3. run the batch that is ready now; whatever it schedules runs next iteration.
// When a task suspends on a lock, queue or other primitive as the last step of a batch, and the
// next iteration would do nothing but take the next batch (nothing to submit or collect, not
// stopping), that iteration starts right there and its first task runs by symmetric transfer,
// without the trip back through the loop: a hand-off (see "Hand-off" below; the leaf awaiter's
// switch_away does the transfer). The order of work is the same.
//
// Every completion's user_data is an operation object that lives in the awaiting coroutine
// frame: no allocation per operation and no lookup table. Single-threaded: everything but
// post() and push_from_any_thread() (the inbox, the message gate) must be used on the thread
// that runs the scheduler.

#include <coring/clock.hpp>
#include <coring/config.hpp>
#include <coring/detail/context_map.hpp>
#include <coring/detail/inbox.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/message_gate.hpp>
#include <coring/detail/profiler.hpp>
#include <coring/detail/trace_writer.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/test_access.hpp>
#include <coring/detail/timer_heap.hpp>
#include <coring/errors.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace coring::detail {

class state_base;
struct registry_tag;
class scheduler;

/// The scheduler running in this thread (the running event loop's), or null.
constinit inline thread_local scheduler* t_running_scheduler = nullptr;

inline constexpr char no_running_loop_text[] = "coring::get_running_loop(): no event loop is running in this thread";
/// get_running_loop's std::logic_error. Out of line, so that begin_suspend, which only checks,
/// keeps no registers for building the exception.
[[noreturn]] CORING_NOINLINE inline void throw_no_running_loop() {
    throw std::logic_error(no_running_loop_text);
}

/// The running scheduler, or get_running_loop's std::logic_error.
inline scheduler& running_scheduler() {
    if (t_running_scheduler == nullptr) throw_no_running_loop();
    return *t_running_scheduler;
}

/// What the scheduler reads of loop_options (debug: the initial mode; see debug_mode()).
struct scheduler_options {
    unsigned queue_depth = 256;
    unsigned completion_queue_depth = 0;  // 0: four times queue_depth
    bool debug = false;
    std::chrono::nanoseconds slow_callback_duration = std::chrono::milliseconds(100);
    bool virtual_time = false;
    std::chrono::nanoseconds busy_poll = std::chrono::nanoseconds::zero();
    bool eager_submit = false;
    bool msg_ring = true;  // send to other loops through IORING_OP_MSG_RING where the kernel can
    bool profile = false;  // profile mode (profiler.hpp)
    std::string trace_file;  // tracing to this file (trace_writer.hpp), or none
    std::size_t trace_buffer_bytes = trace_writer::default_buffer_limit;
};

// Aligned to a cache line, so that the members read on every task switch share two of them.
class alignas(64) scheduler {
public:
    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    // ------------------------------------------------------------------ tasks and nodes

    /// The task whose code is running (or is about to suspend), or null inside a callback.
    [[nodiscard]] state_base* current_task_state() const noexcept { return m_current; }
    /// Queues `node` to run on the next run phase.
    void schedule(ready_node& node) noexcept { m_ready.push(&node); }
    /// Any thread: queues a node through the inbox (the loop runs it on its next iteration) and
    /// returns true; false once the loop is closing its inbox, and the node stays the caller's.
    [[nodiscard]] bool push_from_any_thread(ready_node* node) noexcept { return m_inbox.try_push(node); }
    /// Any thread: runs the node on this loop. From this loop's own thread it is queued at once;
    /// from another running loop that can, it travels through the kernel (IORING_OP_MSG_RING:
    /// a CQE on this ring, see "Messages between loops" below); from anywhere else through the
    /// inbox. False once this loop is closing (the node stays the caller's). The one way
    /// run_on and channels reach another loop.
    [[nodiscard]] bool post(ready_node& node) noexcept {
        scheduler* running = t_running_scheduler;
        if (running == this) {
            schedule(node);
            return true;
        }
        if (running != nullptr && running->m_sends_msg_ring && running->send_message(*this, node)) return true;
        return push_from_any_thread(&node);
    }
    /// Whether this loop sends to other loops through IORING_OP_MSG_RING (chosen when it is
    /// made: scheduler_options::msg_ring and a kernel that has the opcode and
    /// IORING_FEAT_CQE_SKIP, 5.18+), or through their inboxes.
    [[nodiscard]] bool sends_msg_ring() const noexcept { return m_sends_msg_ring; }
    [[nodiscard]] std::uint64_t messages_sent() const noexcept { return m_messages_sent; }
    [[nodiscard]] std::uint64_t messages_received() const noexcept { return m_messages_received; }

    /// Resumes `frame`, which belongs to `task`, with `task` as the current task.
    void resume(state_base* task, std::coroutine_handle<> frame) noexcept {
        m_current = task;
        m_step_frame = frame;
        if (CORING_UNLIKELY(m_instrumented))
            instrumented_step(task, frame);
        else
            frame.resume();
        m_current = nullptr;
        m_step_frame = nullptr;
    }
    /// Runs `start`, a new task's first step, now, inside whatever runs (an eager task: it runs
    /// until its first suspension). The running task and step are put back afterwards, and no
    /// hand-off may start the next batch from inside it.
    void run_eagerly(ready_node& start) noexcept {
        state_base* const task = m_current;
        const std::coroutine_handle<> frame = m_step_frame;
        const unsigned handoffs = m_handoffs_left;
        m_handoffs_left = 0;
        start.run();
        m_current = task;
        m_step_frame = frame;
        m_handoffs_left = handoffs;
    }
    /// Runs f() as a callback: no current task, exceptions reported to the handler. `context`
    /// (a reference the callback hands over, or null) is the context f runs in: the one its
    /// creator had (see t_context); a copy, so what f sets ends with it.
    template <class F>
    void run_callback(F& f, context_map* context = nullptr) noexcept;

    /// Reports to the loop's exception handler (event_loop::call_exception_handler).
    virtual void call_exception_handler(const exception_context& context) noexcept = 0;

    // ------------------------------------------------------------------ time and timers

    /// The loop's clock: clock::now(), or the virtual time on a loop with virtual_time.
    [[nodiscard]] clock::time_point time() const noexcept { return m_options.virtual_time ? m_virtual_now : clock::now(); }
    void add_timer(timer_node& node, clock::time_point deadline) { m_timers.push(node, deadline); }
    void remove_timer(timer_node& node) noexcept { m_timers.erase(node); }
    /// The deadline of a timer that is in the heap (node.scheduled()).
    [[nodiscard]] clock::time_point timer_deadline(const timer_node& node) const noexcept { return m_timers.deadline_of(node); }

    // ------------------------------------------------------------------ the ring

    /// A free SQE; pair it with submit() once prepared. Every SQE the loop's users and the
    /// loop's own tasks prepare comes from here.
    [[nodiscard]] io_uring_sqe* get_sqe() {
        check_thread("an I/O operation");
        return m_ring.get_sqe();
    }
    /// Marks a prepared SQE as `op`'s and counts it in flight. The SQE goes to the kernel on the
    /// next iteration (or sooner, when the submission queue fills up).
    void submit(io_uring_sqe* sqe, io_completion& op) noexcept {
        io_uring_sqe_set_data(sqe, &op);
        ++m_user_ops_in_flight;
        if (CORING_UNLIKELY(m_instrumented) && m_trace != nullptr) trace_submit(sqe->opcode, op);
        if (CORING_UNLIKELY(m_options.eager_submit)) m_ring.submit_now();  // errors resurface on the loop's next submit
    }
    /// Makes room for `n` SQEs that must reach the kernel together (ring::make_room).
    void make_room(unsigned n) { m_ring.make_room(n); }
    /// Asks the kernel to cancel `op` (IORING_OP_ASYNC_CANCEL). `op` still completes with its own
    /// CQE, which tells whether it was cancelled or finished first.
    void cancel_io(io_completion& op) {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_cancel(sqe, &op, 0);
        io_uring_sqe_set_data64(sqe, 0);
        // The cancel request's own CQE carries nothing we need once it succeeded.
        if (m_ring.has_feature(IORING_FEAT_CQE_SKIP)) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    }
    [[nodiscard]] std::size_t user_ops_in_flight() const noexcept { return m_user_ops_in_flight; }
    /// The IORING_SETUP_* flags the kernel accepted.
    [[nodiscard]] unsigned ring_setup_flags() const noexcept { return m_ring.setup_flags(); }
    /// The underlying ring, for operations coring does not wrap. Completions of SQEs you submit
    /// yourself must carry user_data 0 (ignored) or a detail::io_completion. An SQE prepared
    /// here and not submitted goes to the kernel with the loop's next iteration.
    [[nodiscard]] io_uring* native_ring() noexcept { return m_ring.native(); }

    // ------------------------------------------------------------------ hand-off

    /// For the await_suspend of an awaiter whose frame has registered for its wake-up
    /// (leaf_awaiter::switch_away): when `suspending` ends the iteration's last step and the
    /// loop would do nothing before the next batch but take it, the next iteration starts here
    /// and its first node is returned, taken off the batch; null otherwise (return to the loop).
    CORING_ALWAYS_INLINE ready_node* start_next_batch_after(std::coroutine_handle<> suspending) noexcept {
        if (suspending == m_step_frame && m_batch == nullptr) return hand_off();
        return nullptr;
    }
    /// After start_next_batch_after returned `first`: the loop runs the batch from `first` on.
    void run_handed_batch(ready_node* first) noexcept {
        end_batch();
        m_batch = first;
    }
    /// After start_next_batch_after returned `first`, a node that resumes `frame` of `task`:
    /// `first` is run here, by symmetric transfer to `frame`, as resume() would run it.
    CORING_ALWAYS_INLINE void enter_handed_step(ready_node* first, state_base* task, std::coroutine_handle<> frame) noexcept {
        end_batch(1);  // `first` runs now
        m_batch = first->m_next;
        m_current = task;
        m_step_frame = frame;
    }

    // ------------------------------------------------------------------ task registry

    /// Closed: the ring is gone, and nothing can be scheduled any more.
    [[nodiscard]] bool is_closed() const noexcept { return m_closed; }
    [[nodiscard]] std::size_t unfinished_tasks() const noexcept { return m_unfinished_tasks; }
    /// Calls f(detail::state_base&) for every live task and future of this loop.
    template <class F>
    void for_each_state(F&& f) {
        m_states.for_each(f);
    }

    [[nodiscard]] bool debug_mode() const noexcept { return m_debug; }
    /// Debug, profile or trace mode: steps go through instrumented_step. Read first by the
    /// hooks on hot paths (it shares a cache line with what every step reads).
    [[nodiscard]] bool instrumented() const noexcept { return m_instrumented; }
    /// Tracing (loop_options::trace_file, CORING_TRACE): this loop's writer, or null.
    [[nodiscard]] trace_writer* tracer() noexcept { return m_trace.get(); }
    /// Tracing: `task` was created, or is being woken (trace_writer.hpp's flows); nothing
    /// without a trace file. Called only when instrumented(), so the hot paths test one flag.
    void trace_created(state_base& task) noexcept;
    void trace_wake(state_base* task) noexcept;

    /// Profile mode's recorder, or null (loop_options::profile, CORING_PROFILE; profile.hpp).
    /// Its counters of the loop are brought up to date first.
    [[nodiscard]] std::shared_ptr<profiler> profile_data() noexcept {
        if (m_profiler) m_profiler->set_loop_counters(m_iterations, m_time_in_kernel);
        return m_profiler;
    }
    /// The thread that created the scheduler or last ran it.
    [[nodiscard]] std::thread::id owner_thread() const noexcept { return m_thread.load(std::memory_order_relaxed); }
    /// In debug mode, throws std::logic_error when called from a thread other than the loop's.
    void check_thread(const char* what) const {
        if (CORING_UNLIKELY(m_debug) && std::this_thread::get_id() != m_thread.load(std::memory_order_relaxed)) report_wrong_thread(what);
    }

protected:
    explicit scheduler(const scheduler_options& options)
        : m_debug(options.debug),
          m_instrumented(options.debug || options.profile || !options.trace_file.empty()),
          m_options(options),
          m_ring(options.queue_depth == 0 ? 1 : options.queue_depth,
                 options.completion_queue_depth != 0 ? options.completion_queue_depth : 4 * (options.queue_depth == 0 ? 1 : options.queue_depth)),
          m_virtual_now(clock::now()),
          m_thread(std::this_thread::get_id()) {
        if (options.profile) m_profiler = std::make_shared<profiler>();
        if (!options.trace_file.empty()) m_trace = std::make_unique<trace_writer>(trace_file::open(options.trace_file), options.trace_buffer_bytes);
        m_inbox.arm(m_ring);
        m_sends_msg_ring = options.msg_ring && m_ring.has_feature(IORING_FEAT_CQE_SKIP) && m_ring.supports(IORING_OP_MSG_RING);
    }
    virtual ~scheduler() = default;

    /// Reports a task step (task null: a callback) that held the loop longer than
    /// slow_callback_duration, in debug mode.
    virtual void report_slow_step(const state_base* task, clock::duration took) noexcept = 0;

    // Runs iterations until done() holds after one (true), or until stop() (done()'s value).
    // done() must change only when a task or future finishes (see Hand-off).
    template <class Done>
    bool run_until(Done&& done) {
        t_last_profile = m_profiler;  // this loop's profile, or none: the last loop run here decides
        struct sync_profile {
            scheduler& self;
            ~sync_profile() {
                if (self.m_profiler) self.m_profiler->set_loop_counters(self.m_iterations, self.m_time_in_kernel);
            }
        } sync{*this};
        while (!done()) {
            run_once();
            if (m_stopping) {
                m_stopping = false;
                return done();
            }
        }
        return true;
    }
    void run_once();
    /// Finishes the current iteration, then makes run_until return.
    void request_stop() noexcept {
        m_stopping = true;
        ++m_loop_events;  // (see Hand-off)
    }
    void set_debug_mode(bool enabled) noexcept {
        m_debug = enabled;
        m_instrumented = m_debug || m_profiler != nullptr || m_trace != nullptr;
        ++m_loop_events;
    }

    /// The thread that runs the scheduler (run_until calls it from the running thread).
    void adopt_thread() noexcept { m_thread.store(std::this_thread::get_id(), std::memory_order_relaxed); }

    // Shutdown, in event_loop::close's order.
    /// Drops every queued node, expired or not, and what other threads pushed, without running it.
    void discard_leftovers() noexcept;
    /// Waits for the inbox's poll, the operations in flight and `internal` (the loop's other own
    /// operation, `armed` while in flight) to complete, after disarming the inbox.
    template <class Armed>
    void wait_for_internal_operations(Armed&& armed) {
        m_inbox.disarm(m_ring);
        while (armed() || m_inbox.armed() || m_user_ops_in_flight > 0) {
            m_ring.submit_and_wait();
            drain_completions();
        }
    }
    void close_ring() {
        m_ring.close();
        m_closed = true;
    }
    [[nodiscard]] ring& owned_ring() noexcept { return m_ring; }

    // Counters for event_loop::stats().
    [[nodiscard]] std::uint64_t iterations() const noexcept { return m_iterations; }
    [[nodiscard]] std::uint64_t handoffs() const noexcept { return m_iterations - m_run_once_iterations; }
    [[nodiscard]] std::size_t ready_high_water() const noexcept { return m_ready_high_water; }
    [[nodiscard]] std::chrono::nanoseconds time_in_kernel() const noexcept { return m_time_in_kernel; }
    [[nodiscard]] std::uint64_t lost_completion_reports() const noexcept { return m_lost_completion_reports; }
    [[nodiscard]] const ring& owned_ring() const noexcept { return m_ring; }

private:
    friend class state_base;
    friend struct test_access;

    // A task's step in debug, profile or trace mode: timed (debug: reported when slow), recorded
    // (profile), written out (trace). Defined in state_base.hpp, beside the task state it reads.
    void instrumented_step(state_base* task, std::coroutine_handle<> frame) noexcept;
    // Tracing: an event is written, or (out of memory) left out.
    template <class F>
    void trace_event(F&& write) noexcept {
        try {
            write();
        } catch (...) {
        }
    }
    // Tracing: a kernel operation submitted and completed (async slices named by opcode).
    CORING_NOINLINE void trace_submit(unsigned opcode, io_completion& op) noexcept {
        op.m_trace_opcode = static_cast<std::uint8_t>(opcode);
        trace_event([&] { m_trace->operation_begins(reinterpret_cast<std::uintptr_t>(&op), io_opcode_name(static_cast<int>(opcode)), clock::now()); });
    }
    CORING_NOINLINE void trace_complete(io_completion& op, int result) noexcept {
        trace_event([&] {
            m_trace->operation_ends(reinterpret_cast<std::uintptr_t>(&op), io_opcode_name(op.m_trace_opcode), result, clock::now());
        });
    }

    // Out of line: inlined into resume(), its registers would be saved on every step, debug
    // mode or not (sleep(0) measured 6 instructions more).
    template <class F>
    CORING_NOINLINE void timed_step(state_base* task, F&& step) noexcept {
        const clock::time_point start = clock::now();
        step();
        const clock::duration took = clock::now() - start;
        if (took > m_options.slow_callback_duration) report_slow_step(task, took);
    }
    [[noreturn]] void report_wrong_thread(const char* what) const {
        std::ostringstream text;
        text << "coring: " << what << " on an event loop from thread " << std::this_thread::get_id() << ", but the loop belongs to thread "
             << owner_thread()
             << " (debug mode check); only call_soon_threadsafe, run_on and channels may be used from another thread";
        throw std::logic_error(text.str());
    }

    // Hand-off (start_next_batch_after): the start of the next iteration, run from inside the
    // suspending step when run_once would do nothing between the two batches but take the
    // ready queue (and the inbox and expired timers, which the hand-off takes as it does).
    // The first node of the new batch, if it resumes a frame, is readied as resume() readies
    // it and transferred to (leaf_awaiter::switch_away); otherwise the loop runs the batch. So
    // the order of work, the iteration count and the batches are the loop's own.
    //
    // Whether it may happen is decided by hand_off and count_handoffs alone, from the state of
    // the scheduler (nothing else resets a budget):
    //   - something is ready (checked at each hand-off);
    //   - nothing is left to submit and no operation is in flight (run_once would poll): no
    //     SQE was prepared since the batch began, however it was prepared (the ring's tail has
    //     not moved; checked at each hand-off), and none was pending or in flight then
    //     (counted at the first hand-off);
    //   - no loop event since the batch began (m_loop_events: a state finished, which may
    //     have made run_until's condition true; stop(); set_debug()); checked at each hand-off;
    //   - the loop is not stopping, and not in debug mode (run_once times each step): counted;
    //   - no forced poll falls due (poll_if_needed's count): counted;
    //   - at most max_handoffs in a row per run_once: where the compiler does not make
    //     symmetric transfer a tail call (g++ 12 at -O0, ASan), each one nests a frame.
    // The counted conditions become m_handoffs_left at the iteration's first hand-off
    // (run_once leaves it "not counted", so that an iteration without one pays nothing).
    static constexpr unsigned max_handoffs = 32;
    static constexpr unsigned handoffs_not_counted = ~0u;
    // The usual case (counted, nothing new since the batch began, nothing arrived from other
    // threads or the timer heap) makes no call, so it needs no stack frame.
    CORING_ALWAYS_INLINE ready_node* hand_off() noexcept {
        ready_node* first = m_ready.front();
        if (first == nullptr) return nullptr;  // the iteration would wait
        // One test for "counted, and some left": 0 and handoffs_not_counted both wrap past it.
        if (CORING_UNLIKELY(m_handoffs_left - 1 >= max_handoffs || changed_since_batch_began() || m_inbox.has_items() || !m_timers.empty()))
            return hand_off_counting_arrivals(first);
        --m_handoffs_left;
        return start_handed_batch(first);
    }
    [[nodiscard]] bool changed_since_batch_began() const noexcept {
        return m_ring.sq_tail() != m_sq_tail_before_batch || m_loop_events != m_loop_events_before_batch;
    }
    // hand_off's other cases: something changed, the iteration's first hand-off (counts the
    // budget), or arrivals to take (inbox, expired timers) before the batch starts.
    CORING_NOINLINE ready_node* hand_off_counting_arrivals(ready_node* first) noexcept {
        if (changed_since_batch_began()) return nullptr;
        if (m_handoffs_left == 0 || (m_handoffs_left == handoffs_not_counted && count_handoffs() == 0)) return nullptr;
        --m_handoffs_left;
        take_arrivals();  // queued after `first`, as in run_once
        return start_handed_batch(first);
    }
    // The batch that ran ends, and the one that starts with `first` (the rest of the ready
    // queue) begins.
    CORING_ALWAYS_INLINE ready_node* start_handed_batch(ready_node* first) noexcept {
        ++m_iterations;   // (the hand-offs are the iterations run_once did not count)
        m_ready.clear();  // the new batch: `first` and the nodes linked after it
        return first;
    }
    // The first hand-off since run_once: sets and returns m_handoffs_left.
    CORING_NOINLINE unsigned count_handoffs() noexcept {
        const std::uint64_t since_poll = m_iterations - m_last_poll_iteration;
        if (m_instrumented || m_stopping || m_user_ops_in_flight > 0 || m_ring.has_unsubmitted() || since_poll + 1 >= poll_every)
            return m_handoffs_left = 0;
        return m_handoffs_left = static_cast<unsigned>(std::min<std::uint64_t>(max_handoffs, poll_every - 1 - since_poll));
    }
    // Between two batches, in run_once and in a hand-off: what arrived from other threads, then
    // the expired timers, join the ready queue.
    void take_arrivals() {
        if (m_inbox.has_items()) take_inbox();
        if (!m_timers.empty()) expire_timers();
    }
    // The batch that ran is done: the high-water mark takes its size, and the count restarts
    // (at 1 when a hand-off runs the next batch's first node itself).
    void end_batch(std::size_t ran_in_next = 0) noexcept {
        if (m_ran_in_batch > m_ready_high_water) m_ready_high_water = m_ran_in_batch;
        m_ran_in_batch = ran_in_next;
    }
    // The slower parts of an iteration, kept out of line so that run_once stays small.
    void poll_io(bool may_block);
    // Something is ready, so the loop does not wait: it enters the kernel only when there is
    // something to submit or collect. The loop's own operations (signals; cross-thread wake-ups
    // are seen through the inbox's flag anyway) are collected every few thousand busy
    // iterations. Inline, so that a busy iteration with nothing in flight makes no call, and
    // it reads no memory shared with the kernel (see ring::has_unsubmitted).
    static constexpr unsigned poll_every = 4096;  // busy iterations
    void poll_if_needed() {
        if (m_ring.has_unsubmitted() || m_user_ops_in_flight > 0 || m_iterations - m_last_poll_iteration >= poll_every) poll_now();
    }
    void poll_now();
    void take_inbox();
    void expire_timers();
    // Every entry into the kernel is followed by this, so a loss the kernel reported (EBADR)
    // reaches the exception handler in the same iteration, or in the next one when it was
    // reported by a submit made elsewhere (a full SQ, eager_submit).
    unsigned drain_completions() {
        const unsigned handled = m_ring.drain([this](io_completion* op, int result, unsigned flags) {
            if (CORING_UNLIKELY((reinterpret_cast<std::uintptr_t>(op) & message_tags) != 0))
                return on_message_completion(reinterpret_cast<std::uintptr_t>(op), result);
            if ((flags & IORING_CQE_F_MORE) == 0 && !op->m_internal) --m_user_ops_in_flight;
            if (CORING_UNLIKELY(m_instrumented) && m_trace != nullptr && !op->m_internal) trace_complete(*op, result);
            op->m_complete(op, result, flags);
        });
        if (CORING_UNLIKELY(m_ring.has_lost_completions())) report_lost_completions();
        return handled;
    }
    void report_lost_completions() noexcept;

    // Messages between loops. A message is a ready_node of another loop's awaiter (run_on,
    // channel). The sender prepares IORING_OP_MSG_RING on its own ring: the target's CQE
    // carries the node's address tagged `message_arrived`, and the target schedules the node.
    // The sender's SQE is marked IOSQE_CQE_SKIP_SUCCESS, so it sees a CQE only if the send
    // failed (the target's completion queue could not take it): tagged `message_failed`, and
    // the node goes through the target's inbox instead. While in flight a node is on no queue,
    // so its m_next carries the target for that case. Nodes are 8-aligned: the low bits are
    // free, and an operation's user_data never has them.
    static constexpr std::uintptr_t message_arrived = 1;
    static constexpr std::uintptr_t message_failed = 2;
    static constexpr std::uintptr_t message_tags = 3;
    bool send_message(scheduler& target, ready_node& node) noexcept;
    void on_message_completion(std::uintptr_t tagged, int result) noexcept;

    // Spins on the ring, from `start`, for up to busy_poll: true once there is work.
    bool busy_poll_found_work(clock::time_point start, std::optional<clock::duration> until_next_timer);

    // Read or written on every task switch: the two cache lines after the vtable pointer.
    ready_queue m_ready;
    // The rest of the iteration's batch: its first node, linked through m_next. (One pointer
    // taken from m_ready.front(), not a copy of the queue: a 16-byte copy right after push's
    // 8-byte stores cannot be store-forwarded, and stalled every iteration.)
    ready_node* m_batch = nullptr;
    state_base* m_current = nullptr;
    std::coroutine_handle<> m_step_frame;  // the frame the running step resumed (null between steps)
    unsigned m_handoffs_left = 0;
    unsigned m_sq_tail_before_batch = 0;  // hand-off: the ring's SQ tail when the batch began
    std::uint64_t m_loop_events = 0;      // states finished, stop(), set_debug(): ever (see Hand-off)
    std::uint64_t m_loop_events_before_batch = 0;
    bool m_stopping = false;
    bool m_debug;  // debug mode, read on every step (m_options.debug is only where it started)
    bool m_instrumented;  // debug, profile or trace mode: steps go through instrumented_step
    std::size_t m_ran_in_batch = 0;
    std::uint64_t m_iterations = 0;           // run_once's and the hand-offs'
    std::uint64_t m_run_once_iterations = 0;  // m_iterations less the hand-offs
    std::uint64_t m_last_poll_iteration = 0;  // the iteration that last entered the kernel
    std::size_t m_user_ops_in_flight = 0;

protected:
    scheduler_options m_options;

private:
    std::size_t m_ready_high_water = 0;
    timer_heap m_timers;
    ring m_ring;
    // The rest.
    inbox m_inbox;
    clock::time_point m_virtual_now{};
    std::chrono::nanoseconds m_time_in_kernel{};
    std::uint64_t m_lost_completion_reports = 0;  // reports of EBADR made to the exception handler
    message_gate m_gate;  // other loops addressing this ring (message_gate.hpp)
    bool m_sends_msg_ring = false;
    std::uint64_t m_messages_sent = 0;
    std::uint64_t m_messages_received = 0;
    std::shared_ptr<profiler> m_profiler;  // profile mode's recorder, else null
    std::unique_ptr<trace_writer> m_trace;  // tracing's writer, else null
    clock::duration m_nested_step_time{};  // profile mode: steps run inside the current one (eager tasks)
    // Atomic: a wrong-thread report reads it from the other thread, and a loop may be run by a
    // thread other than the one that made it.
    std::atomic<std::thread::id> m_thread;

protected:
    // The registry of task states (state_base registers itself, and counts unfinished tasks).
    intrusive_list<state_base, registry_tag> m_states;
    std::size_t m_unfinished_tasks = 0;
    std::uint64_t m_next_task_id = 1;
    bool m_closed = false;
};

// ---------------------------------------------------------------------- implementation

template <class F>
void scheduler::run_callback(F& f, context_map* context) noexcept {
    m_current = nullptr;
    // t_context is empty between callbacks while the loop runs (the loop keeps the thread's own
    // aside), so the callback's context goes in without a save, and anything in the slot
    // afterwards (the context it brought, or what it set) ends with the callback.
    if (CORING_UNLIKELY(context != nullptr)) {
        t_context.map = context;
        t_contexts_used = true;  // it may come from another thread
    }
    auto call = [&] {
        try {
            f();
        } catch (...) {
            call_exception_handler({"exception in a callback", std::current_exception(), {}, {}});
        }
    };
    if (CORING_UNLIKELY(m_debug))
        timed_step(nullptr, call);
    else
        call();
    if (CORING_UNLIKELY(t_contexts_used) && t_context.in_use()) t_context.clear();
}

inline void scheduler::run_once() {
    ++m_iterations;
    ++m_run_once_iterations;
    if (!m_ready.empty() && !m_stopping)
        poll_if_needed();
    else
        poll_io(!m_stopping);
    take_arrivals();
    m_batch = m_ready.front();
    m_ready.clear();
    m_handoffs_left = handoffs_not_counted;  // counted at the first hand-off, if there is one
    m_loop_events_before_batch = m_loop_events;
    m_sq_tail_before_batch = m_ring.sq_tail();
    while (ready_node* node = m_batch) {
        m_batch = node->m_next;
        ++m_ran_in_batch;
        node->run();
    }
    end_batch();
}

CORING_NOINLINE inline void scheduler::take_inbox() {
    ready_queue arrived = m_inbox.take();
    while (ready_node* node = arrived.pop()) m_ready.push(node);
}

CORING_NOINLINE inline void scheduler::expire_timers() {
    const clock::time_point now = time();
    if (CORING_UNLIKELY(m_profiler != nullptr)) {
        while (!m_timers.empty() && m_timers.next_deadline() <= now) {
            m_profiler->timer_fired(now - m_timers.next_deadline());
            m_ready.push(m_timers.pop());
        }
        return;
    }
    while (timer_node* expired = m_timers.pop_expired(now)) m_ready.push(expired);
}

CORING_NOINLINE inline void scheduler::poll_now() {
    m_last_poll_iteration = m_iterations;
    m_ring.submit_and_poll();
    drain_completions();
}

CORING_NOINLINE inline void scheduler::poll_io(bool may_block) {
    if (!may_block) return poll_if_needed();
    // One reading of the real clock serves the timer, the busy poll and the kernel-time
    // accounting (on virtual time the timers run on m_virtual_now, the wait on this clock).
    clock::time_point now = clock::now();
    std::optional<clock::duration> until_next_timer;
    if (!m_timers.empty()) {
        until_next_timer = m_timers.next_deadline() - (m_options.virtual_time ? m_virtual_now : now);
        if (*until_next_timer <= clock::duration::zero()) return poll_if_needed();
    }
    // Virtual time: nothing to run and nothing in flight but timers, so nothing can happen
    // before the next deadline: jump there instead of waiting.
    if (until_next_timer && m_options.virtual_time && m_user_ops_in_flight == 0 && m_ring.pending_submissions() == 0 && !m_inbox.has_items()) {
        m_virtual_now = m_timers.next_deadline();
        return poll_if_needed();
    }
    if (m_options.busy_poll > clock::duration::zero() && m_user_ops_in_flight > 0) {
        if (busy_poll_found_work(now, until_next_timer)) return;
        // The spin was part of the wait: the kernel waits only for the rest of it.
        const clock::time_point after = clock::now();
        if (until_next_timer) {
            const clock::duration spun = std::min(after - now, *until_next_timer);
            *until_next_timer -= spun;
            if (m_options.virtual_time) m_virtual_now += spun;
            if (*until_next_timer <= clock::duration::zero()) return poll_if_needed();
        }
        now = after;
    }
    if (!m_inbox.prepare_to_sleep()) return poll_if_needed();
    const clock::time_point before = now;
    if (until_next_timer)
        m_ring.submit_and_wait(std::chrono::ceil<std::chrono::nanoseconds>(*until_next_timer));
    else
        m_ring.submit_and_wait();
    const clock::duration waited = clock::now() - before;
    m_time_in_kernel += waited;
    // On virtual time the clock runs at real speed while the loop waits for I/O.
    if (m_options.virtual_time) m_virtual_now += until_next_timer ? std::min(waited, *until_next_timer) : waited;
    m_inbox.woke();
    m_last_poll_iteration = m_iterations;
    drain_completions();
}

// The kernel had to drop CQEs (its overflow list could not grow) and said so once, with EBADR.
// The operations they belonged to never learn their result; nothing tells which ones they are,
// so the loop cannot wake them. It goes on with everything else and says so: one report for
// the EBADRs seen since the last one (in practice, one each).
CORING_NOINLINE inline void scheduler::report_lost_completions() noexcept {
    const unsigned times = m_ring.take_lost_completions();
    ++m_lost_completion_reports;
    exception_context report;
    try {
        report.message = "coring: completions were lost: the kernel dropped " + std::to_string(m_ring.cq_dropped()) +
                         " CQE(s) so far (io_uring_enter failed with EBADR" + (times > 1 ? ", " + std::to_string(times) + " times" : std::string()) +
                         "): the completion queue overflowed and the kernel could not keep the surplus. The operations whose "
                         "completions were dropped will never resume. Raise loop_options.completion_queue_depth or keep fewer "
                         "operations in flight";
        report.exception = std::make_exception_ptr(std::system_error(EBADR, std::system_category(), "io_uring_enter"));
    } catch (...) {
        // Out of memory for the words: the report goes out without them.
    }
    call_exception_handler(report);
}

inline bool scheduler::busy_poll_found_work(clock::time_point start, std::optional<clock::duration> until_next_timer) {
    clock::duration budget = m_options.busy_poll;
    if (until_next_timer && *until_next_timer < budget) budget = *until_next_timer;
    do {
        m_ring.submit_and_poll();
        if (drain_completions() > 0 || m_inbox.has_items()) return true;
    } while (clock::now() - start < budget);
    return false;
}

inline void scheduler::discard_leftovers() noexcept {
    using action = ready_node::action;
    // What other loops send from now on is refused, not lost here: the inbox refuses it, and
    // the gate turns senders to the inbox. Messages already sent through the kernel are
    // collected (with DEFER_TASKRUN they arrive when this thread enters the kernel) and
    // discarded with the rest.
    m_inbox.close();
    m_gate.shut();
    try {
        m_ring.submit_and_poll();
        drain_completions();
    } catch (...) {
        // The ring is unusable: nothing more can arrive through it.
    }
    while (ready_node* node = m_ready.pop()) node->run(action::discard);
    while (timer_node* timer = m_timers.pop()) timer->run(action::discard);
    ready_queue arrived = m_inbox.take();
    while (ready_node* node = arrived.pop()) node->run(action::discard);
}

CORING_NOINLINE inline bool scheduler::send_message(scheduler& target, ready_node& node) noexcept {
    if (!target.m_gate.enter()) return false;  // closing: the inbox says so
    io_uring_sqe* sqe;
    try {
        sqe = m_ring.get_sqe();
    } catch (...) {
        target.m_gate.leave();
        return false;  // nothing was prepared: the inbox carries it
    }
    io_uring_prep_msg_ring(sqe, target.m_ring.fd(), 0, reinterpret_cast<std::uintptr_t>(&node) | message_arrived, 0);
    io_uring_sqe_set_data64(sqe, reinterpret_cast<std::uintptr_t>(&node) | message_failed);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    node.m_next = reinterpret_cast<ready_node*>(&target);  // read back only if the send fails
    CORING_TSAN_RELEASE(&node);
    try {
        // Submitted now, not with the iteration: the gate must stay open until the kernel
        // holds its reference to the target ring, and a loop that stops after this step
        // would otherwise keep the target from closing.
        m_ring.submit_all();
    } catch (...) {
        // This ring is unusable; the SQE may have gone or not, and the inbox must not carry
        // the node a second time.
    }
    target.m_gate.leave();
    ++m_messages_sent;
    return true;
}

CORING_NOINLINE inline void scheduler::on_message_completion(std::uintptr_t tagged, int result) noexcept {
    auto* node = reinterpret_cast<ready_node*>(tagged & ~message_tags);
    if ((tagged & message_tags) == message_arrived) {
        CORING_TSAN_ACQUIRE(node);
        ++m_messages_received;
        schedule(*node);
        return;
    }
    (void)result;  // a failed send (-EOVERFLOW, -ENOMEM, -EOWNERDEAD): the inbox takes it
    auto* target = reinterpret_cast<scheduler*>(node->m_next);
    if (!target->push_from_any_thread(node)) node->run(ready_node::action::discard);  // the target closed meanwhile
}

}  // namespace coring::detail
