#pragma once
// event_loop: one per thread; runs tasks and callbacks on io_uring (asyncio's event loop).
//
//   coring::event_loop loop;
//   int v = loop.run_until_complete(compute());   // or simply coring::run(compute())
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
// without the trip back through the loop: a hand-off (see below). The order of work is the same.
//
// Every completion's user_data is an operation object that lives in the awaiting coroutine frame:
// no allocation per operation and no lookup table. The loop is single-threaded: every member
// except call_soon_threadsafe must be called on the thread that created the loop (the ring is set
// up with IORING_SETUP_SINGLE_ISSUER where the kernel has it).

#include <coring/clock.hpp>
#include <coring/config.hpp>
#include <coring/detail/frame_pool.hpp>
#include <coring/detail/inbox.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/signal_watcher.hpp>
#include <coring/detail/state.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/detail/test_access.hpp>
#include <coring/detail/timer_callback.hpp>
#include <coring/detail/timer_heap.hpp>
#include <coring/errors.hpp>
#include <coring/task.hpp>
#include <coring/thread/thread_pool.hpp>  // the loop's thread pool (default_executor)

#include <cxxabi.h>

#include <chrono>
#include <coroutine>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <optional>
#include <memory>
#include <coring/detail/source_location.hpp>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <typeinfo>
#include <utility>
#include <vector>

namespace coring {

template <class T>
class task_handle;
template <class T>
class future;
class event_loop;

/// Settings of an event loop; an aggregate, so `loop_options{.queue_depth = 1024}` works.
struct loop_options {
    /// Submission queue entries of the ring.
    unsigned queue_depth = 256;
    /// Debug mode: slow callbacks are reported, and more (see debug.hpp). CORING_DEBUG=1 in the
    /// environment turns it on too.
    bool debug = false;
    /// In debug mode, a callback or task step that holds the loop longer than this is reported.
    std::chrono::nanoseconds slow_callback_duration = std::chrono::milliseconds(100);
    /// Virtual time: when nothing is ready and no I/O is in flight, the clock jumps to the next
    /// timer instead of waiting for it; while I/O is in flight it runs at real speed.
    bool virtual_time = false;
    /// Completion queue entries; 0 means four times queue_depth.
    unsigned completion_queue_depth = 0;
    /// When nothing is ready but I/O is in flight, poll the kernel for completions this long
    /// before going to sleep in it: lower latency for I/O-bound loads (fio's io_uring engine
    /// never sleeps at all) at the price of CPU spent spinning. 0 (the default): sleep at once.
    std::chrono::nanoseconds busy_poll = std::chrono::nanoseconds::zero();
    /// Hand every operation to the kernel the moment it is prepared (one io_uring_enter per
    /// operation) instead of once per loop iteration for all of them. With busy_poll, this is
    /// fio's io_uring policy: the lowest latency for a device-bound load, at the cost of a system
    /// call per operation. Off by default: batching is cheaper for network servers.
    bool eager_submit = false;
};

/// Counters of a loop's work, read with event_loop::stats().
struct loop_stats {
    std::uint64_t iterations = 0;                   ///< passes through the loop (run_once)
    std::uint64_t handoffs = 0;                     ///< iterations begun by a hand-off: a task step that ended
                                                    ///< by switching straight to the next one (event_loop.hpp)
    std::uint64_t submissions = 0;                  ///< SQEs prepared (the loop's own included)
    std::uint64_t completions = 0;                  ///< CQEs reaped
    std::chrono::nanoseconds time_in_kernel{};      ///< blocked in io_uring_enter, waiting for work
    std::chrono::nanoseconds time_running{};        ///< running, all else: tasks, callbacks, the loop itself
    std::size_t ready_high_water = 0;               ///< the most callbacks and task steps run in one iteration
    std::size_t live_tasks = 0;                     ///< tasks created and not finished
};

/// What the loop's exception handler receives (asyncio's context dict).
struct exception_context {
    std::string message;
    std::exception_ptr exception;
    /// The task concerned ("Task-3"), or empty.
    std::string task_name;
    /// Where that task was created, when known.
    source_location task_site{};
};

/// The loop running in this thread, or throws std::logic_error.
[[nodiscard]] event_loop& get_running_loop();

namespace detail {

constinit inline thread_local event_loop* t_running_loop = nullptr;

inline constexpr char no_running_loop_text[] = "coring::get_running_loop(): no event loop is running in this thread";
/// get_running_loop's std::logic_error.
[[noreturn]] void throw_no_running_loop();

/// A callable queued by call_soon (Pooled) or call_soon_threadsafe (allocated by another thread,
/// so it bypasses the thread-local pool).
template <class F, bool Pooled>
class callback_node;

/// "std::runtime_error: boom" for an exception_ptr, for reports.
inline std::string describe_exception(const std::exception_ptr& error) {
    if (!error) return "(none)";
    auto demangled = [](const std::type_info& type) {
        int status = 0;
        std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
        return status == 0 && name ? std::string(name.get()) : std::string(type.name());
    };
    try {
        std::rethrow_exception(error);
    } catch (const cancelled_error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return demangled(typeid(e)) + ": " + e.what();
    } catch (...) {
        const std::type_info* type = abi::__cxa_current_exception_type();
        return type ? demangled(*type) : std::string("unknown exception");
    }
}

}  // namespace detail

class event_loop {
public:
    using exception_handler = std::function<void(event_loop&, const exception_context&)>;

    /// Creates the ring. Throws std::system_error naming cause and remedy when io_uring is
    /// unavailable (EPERM: kernel.io_uring_disabled or a seccomp profile; ENOSYS).
    explicit event_loop(loop_options options = {});

    /// Closes the loop if close() was not called (see close()).
    ~event_loop();

    event_loop(const event_loop&) = delete;
    event_loop& operator=(const event_loop&) = delete;

    // ------------------------------------------------------------------ running

    /// Runs `main` as a task until it finishes; returns its value or rethrows its exception.
    /// Tasks still pending afterwards stay pending (asyncio's rule). Throws std::runtime_error if
    /// stop() ends the loop first.
    template <class T>
    T run_until_complete(task<T> main, source_location site = source_location::current());

    /// Runs until stop() is called.
    void run_forever();

    /// Finishes the current iteration, then makes run_forever / run_until_complete return. Called
    /// before the loop runs, it lets exactly one iteration run.
    void stop() noexcept {
        m_stopping = true;
        m_handoffs_left = 0;  // the iteration ends with its batch
    }

    [[nodiscard]] bool is_running() const noexcept { return m_running; }
    [[nodiscard]] bool is_closed() const noexcept { return m_closed; }

    /// Shuts down: cancels every task that has not finished and runs the loop until they have
    /// (once each, as asyncio.run does: a task that swallows the cancellation and never finishes
    /// keeps close() waiting), drops callbacks that are still queued, waits for the loop's own
    /// kernel operations, destroys every frame and closes the ring. Idempotent. The kernel's
    /// teardown of the ring may interrupt the thread's next blocking system call once (EINTR
    /// from a socket call with a timeout or from epoll_wait; see run.hpp).
    void close();

    // ------------------------------------------------------------------ time and callbacks

    /// The loop's clock: clock::now(), or the virtual time on a loop with virtual_time.
    [[nodiscard]] clock::time_point time() const noexcept {
        return m_options.virtual_time ? m_virtual_now : clock::now();
    }

    /// Runs f() on the next iteration. Exceptions from f go to the exception handler. Throws
    /// std::logic_error once the loop is closed (as do call_later and call_at).
    template <class F>
    void call_soon(F&& f);

    /// Runs f() once `delay` has passed; the handle can cancel it.
    template <class Rep, class Period, class F>
    timer_handle call_later(std::chrono::duration<Rep, Period> delay, F&& f);

    /// Runs f() at `when` on the loop's clock; the handle can cancel it.
    template <class F>
    timer_handle call_at(clock::time_point when, F&& f);

    /// The one member that may be called from any thread: queues f() and wakes the loop if it
    /// is blocked in the kernel. Throws std::logic_error once the loop is closed.
    template <class F>
    void call_soon_threadsafe(F&& f);

    // ------------------------------------------------------------------ tasks

    /// Schedules `body` to start on the next iteration (not inline) and returns its handle. The
    /// task belongs to the loop until it finishes: dropping every handle neither cancels nor
    /// destroys it.
    template <class T>
    task_handle<T> create_task(task<T> body, std::string_view name = {}, source_location site = source_location::current());

    /// create_task for coring's own combinators: the new state with one reference for the caller.
    template <class T>
    detail::state<T>* create_task_state(task<T> body, std::string_view name, const source_location& site);

    /// A future bound to this loop (asyncio's loop.create_future()).
    template <class T = void>
    future<T> create_future();

    // ------------------------------------------------------------------ signals

    /// Runs `handler` on the loop whenever `sig` arrives (through a signalfd). The signal is
    /// blocked in this thread. Replaces an earlier handler of the same signal. Throws
    /// std::invalid_argument for SIGKILL, SIGSTOP or a number out of range.
    void add_signal_handler(int sig, std::function<void()> handler) {
        check_thread("add_signal_handler");
        m_handoffs_left = 0;  // its read goes out with the next iteration (see Hand-off)
        m_signals.add(sig, std::move(handler), m_ring);
    }

    /// Removes the handler and unblocks the signal if the loop blocked it. False if there was none.
    bool remove_signal_handler(int sig) {
        check_thread("remove_signal_handler");
        return m_signals.remove(sig);
    }

    // ------------------------------------------------------------------ errors

    /// Receives unretrieved task exceptions and exceptions thrown by callbacks. An empty
    /// handler restores the default, which prints to stderr.
    void set_exception_handler(exception_handler handler) { m_exception_handler = std::move(handler); }
    [[nodiscard]] const exception_handler& get_exception_handler() const noexcept { return m_exception_handler; }
    void call_exception_handler(const exception_context& context) noexcept;
    static void default_exception_handler(const exception_context& context) noexcept;

    // ------------------------------------------------------------------ introspection

    [[nodiscard]] const loop_options& options() const noexcept { return m_options; }
    [[nodiscard]] bool get_debug() const noexcept { return m_options.debug; }
    void set_debug(bool enabled) noexcept {
        m_options.debug = enabled;
        m_handoffs_left = 0;  // debug mode times every step (see Hand-off)
    }
    /// What the loop has done so far.
    [[nodiscard]] loop_stats stats() const noexcept;
    /// The IORING_SETUP_* flags the kernel accepted.
    [[nodiscard]] unsigned ring_setup_flags() const noexcept { return m_ring.setup_flags(); }
    /// The underlying ring, for operations coring does not wrap. Completions of SQEs you submit
    /// yourself must carry user_data 0 (ignored) or a detail::io_completion. An SQE prepared
    /// here and not submitted goes to the kernel with the loop's next poll; get_sqe() makes
    /// that the next iteration.
    [[nodiscard]] io_uring* native_ring() noexcept { return m_ring.native(); }

    // ------------------------------------------------------------------ machinery
    // Used by awaitables and the other coring headers; not a stable interface.

    /// The task whose code is running (or is about to suspend), or null inside a callback.
    [[nodiscard]] detail::state_base* current_task_state() const noexcept { return m_current; }
    void schedule(detail::ready_node& node) noexcept { m_ready.push(&node); }
    /// Resumes `frame`, which belongs to `task`, with `task` as the current task.
    void resume(detail::state_base* task, std::coroutine_handle<> frame) noexcept {
        m_current = task;
        m_step_frame = frame;
        if (CORING_UNLIKELY(m_options.debug))
            timed_step(task, [frame] { frame.resume(); });
        else
            frame.resume();
        m_current = nullptr;
        m_step_frame = nullptr;
    }
    /// For the await_suspend of an awaiter whose frame has registered for its wake-up: the
    /// frame to transfer to, or std::noop_coroutine() to return to the loop. When `suspending`
    /// ends the iteration's last step and the loop would do nothing before the next batch but
    /// take it, the next iteration starts here and its first task step runs at once by symmetric
    /// transfer (see "Hand-off" below: the order of work is the loop's own).
    CORING_ALWAYS_INLINE std::coroutine_handle<> next_frame_after(std::coroutine_handle<> suspending) noexcept {
        if (suspending == m_step_frame && m_batch == nullptr) return hand_off();
        return std::noop_coroutine();
    }
    /// Runs f() as a callback: no current task, exceptions reported to the handler.
    template <class F>
    void run_callback(F& f) noexcept;

    void add_timer(detail::timer_node& node, clock::time_point deadline) { m_timers.push(node, deadline); }
    void remove_timer(detail::timer_node& node) noexcept { m_timers.erase(node); }
    /// The deadline of a timer that is in the heap (node.scheduled()).
    [[nodiscard]] clock::time_point timer_deadline(const detail::timer_node& node) const noexcept { return m_timers.deadline_of(node); }

    /// A free SQE; pair it with submit() once prepared. Every SQE the loop's users and the
    /// loop's own tasks prepare comes from here.
    [[nodiscard]] io_uring_sqe* get_sqe() {
        check_thread("an I/O operation");
        m_handoffs_left = 0;  // the next iteration submits it, and polls for its completion (see Hand-off)
        return m_ring.get_sqe();
    }

    /// In debug mode, throws std::logic_error when called from a thread other than the loop's.
    void check_thread(const char* what) const {
        if (CORING_UNLIKELY(m_options.debug) && std::this_thread::get_id() != m_thread) report_wrong_thread(what);
    }
    /// Marks a prepared SQE as `op`'s and counts it in flight. The SQE goes to the kernel on the
    /// next iteration (or sooner, when the submission queue fills up).
    void submit(io_uring_sqe* sqe, detail::io_completion& op) noexcept {
        io_uring_sqe_set_data(sqe, &op);
        ++m_user_ops_in_flight;  // (get_sqe, where the SQE came from, stopped the hand-offs)
        if (CORING_UNLIKELY(m_options.eager_submit)) io_uring_submit(m_ring.native());  // errors resurface on the loop's next submit
    }
    /// Asks the kernel to cancel `op` (IORING_OP_ASYNC_CANCEL). `op` still completes with its own
    /// CQE, which tells whether it was cancelled or finished first.
    void cancel_io(detail::io_completion& op);
    [[nodiscard]] std::size_t user_ops_in_flight() const noexcept { return m_user_ops_in_flight; }

    /// The loop's thread pool (asyncio's default executor), created on first use: to_thread and
    /// resolve run blocking calls there. close() joins it once every task has finished.
    [[nodiscard]] thread_pool& default_executor() {
        if (!m_thread_pool) m_thread_pool = std::make_unique<thread_pool>();
        return *m_thread_pool;
    }
    [[nodiscard]] std::size_t unfinished_tasks() const noexcept { return m_unfinished_tasks; }

    /// Calls f(detail::state_base&) for every live task and future of this loop.
    template <class F>
    void for_each_state(F&& f) {
        m_states.for_each(f);
    }

private:
    friend class detail::state_base;
    friend class detail::signal_watcher;
    friend struct detail::test_access;

    class running_scope;

    // Debug mode: runs one task step or callback and reports it when it held the loop longer
    // than slow_callback_duration.
    template <class F>
    void timed_step(detail::state_base* task, F&& step) noexcept;
    [[noreturn]] void report_wrong_thread(const char* what) const;
    void report_pending_at_close();

    // Runs iterations until done() holds after one (true), or until stop() (done()'s value).
    // done() must change only when a task or future finishes (see Hand-off).
    template <class Done>
    bool run_until(Done&& done);
    void run_once();
    // Hand-off (next_frame_after): the start of the next iteration, run from inside the
    // suspending step when run_once would do nothing between the two batches but take the
    // ready queue (and the inbox and expired timers, which the hand-off takes as it does).
    // The first node of the new batch, if it resumes a frame, is readied as resume() readies
    // it and returned; otherwise the loop runs the batch. So the order of work, the iteration
    // count and the batches are the loop's own. What allows it, kept in m_handoffs_left so
    // that the check is one load (run_once leaves it "not counted", and the first hand-off
    // of the iteration counts it, so that an iteration without one pays nothing):
    //   - something is ready (checked at each hand-off);
    //   - nothing is left to submit and no operation is in flight (the iteration would poll):
    //     counted (SQEs prepared before the batch, such as the inbox's re-arm), and get_sqe(),
    //     which every operation and cancel_io() take their SQE from, zeroes it, as does
    //     add_signal_handler() (the signal read's SQE comes from the ring);
    //   - the loop is not stopping: counted, and stop() zeroes it;
    //   - run_until is not done: its condition depends only on states finishing, and
    //     state_base::finish zeroes it;
    //   - no forced poll falls due (poll_if_needed's count);
    //   - debug mode is off: it times each step from run_once;
    //   - at most max_handoffs in a row per run_once: where the compiler does not make
    //     symmetric transfer a tail call (g++ 12 at -O0, ASan), each one nests a frame.
    static constexpr unsigned max_handoffs = 32;
    static constexpr unsigned handoffs_not_counted = ~0u;
    std::coroutine_handle<> hand_off() noexcept;
    // hand_off's other cases: the iteration's first hand-off (counts the budget), or arrivals
    // to take (inbox, expired timers) before the batch starts.
    std::coroutine_handle<> hand_off_counting_arrivals(detail::ready_node* first) noexcept;
    // The end of a hand-off: the batch that ran ends, and the one that starts with `first`
    // (the rest of the ready queue) begins; its first frame, or the loop.
    std::coroutine_handle<> start_handed_batch(detail::ready_node* first) noexcept;
    // The first hand-off since run_once: sets and returns m_handoffs_left.
    CORING_NOINLINE unsigned count_handoffs() noexcept {
        const std::uint64_t since_poll = m_iterations - m_last_poll_iteration;
        if (m_options.debug || m_stopping || m_user_ops_in_flight > 0 || m_ring.has_unsubmitted() || since_poll + 1 >= poll_every)
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
    // The slower parts of an iteration, kept out of line (see their definitions) so that
    // run_once stays small.
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
    unsigned drain_completions() {
        return m_ring.drain([this](detail::io_completion* op, int result, unsigned flags) {
            if ((flags & IORING_CQE_F_MORE) == 0 && !op->m_internal) --m_user_ops_in_flight;
            op->m_complete(op, result, flags);
        });
    }
    // Spins on the ring, from `start`, for up to loop_options::busy_poll: true once there is work.
    bool busy_poll_found_work(clock::time_point start, std::optional<clock::duration> until_next_timer);
    void cancel_remaining_tasks();
    void discard_leftovers() noexcept;
    void stop_internal_operations();

    loop_options m_options;
    // Read or written on every task switch: kept together, in two cache lines after the options.
    detail::ready_queue m_ready;
    // The rest of the iteration's batch: its first node, linked through m_next. (One pointer
    // taken from m_ready.front(), not a copy of the queue: a 16-byte copy right after push's
    // 8-byte stores cannot be store-forwarded, and stalled every iteration.)
    detail::ready_node* m_batch = nullptr;
    detail::state_base* m_current = nullptr;
    std::coroutine_handle<> m_step_frame;  // the frame the running step resumed (null between steps)
    unsigned m_handoffs_left = 0;
    bool m_stopping = false;
    std::size_t m_ran_in_batch = 0;
    std::size_t m_ready_high_water = 0;
    std::uint64_t m_iterations = 0;           // run_once's and the hand-offs'
    std::uint64_t m_run_once_iterations = 0;  // m_iterations less the hand-offs
    std::uint64_t m_last_poll_iteration = 0;  // the iteration that last entered the kernel
    std::size_t m_user_ops_in_flight = 0;
    detail::timer_heap m_timers;
    detail::ring m_ring;
    // The rest.
    detail::intrusive_list<detail::state_base, detail::registry_tag> m_states;
    detail::inbox m_inbox;
    detail::signal_watcher m_signals{*this};
    exception_handler m_exception_handler;
    clock::time_point m_virtual_now{};
    std::chrono::nanoseconds m_time_in_kernel{};
    std::chrono::nanoseconds m_time_ran_before{};  // elapsed in earlier runs
    clock::time_point m_running_since{};           // start of the current run, while running
    std::size_t m_unfinished_tasks = 0;
    std::uint64_t m_next_task_id = 1;
    std::thread::id m_thread;
    bool m_running = false;
    bool m_closed = false;
    std::unique_ptr<thread_pool> m_thread_pool;  // null until default_executor() is first used
};

// ====================================================================== implementation

namespace detail {

template <class F, bool Pooled>
class callback_node final : public ready_node {
public:
    template <class G>
    callback_node(event_loop& loop, G&& function) : ready_node(operations_), m_loop(&loop), m_function(std::forward<G>(function)) {}

    static void* operator new(std::size_t size) {
        if constexpr (Pooled)
            return frame_pool::allocate(size);
        else
            return ::operator new(size);
    }
    static void operator delete(void* block, std::size_t size) noexcept {
        if constexpr (Pooled)
            frame_pool::deallocate(block, size);
        else
            ::operator delete(block);
    }

private:
    static void fire(ready_node* node, action what) noexcept {
        auto* self = static_cast<callback_node*>(node);
        if (what == action::run) self->m_loop->run_callback(self->m_function);
        delete self;
    }
    static constexpr operations operations_{&fire};

    event_loop* m_loop;
    F m_function;
};

}  // namespace detail

class event_loop::running_scope {
public:
    explicit running_scope(event_loop& loop) : m_loop(loop) {
        if (loop.m_closed) throw std::logic_error("coring: the event loop is closed");
        if (loop.m_running) throw std::logic_error("coring: the event loop is already running");
        if (detail::t_running_loop != nullptr) throw std::logic_error("coring: another event loop is already running in this thread");
        loop.check_thread("running the loop");
        detail::t_running_loop = &loop;
        loop.m_running = true;
        loop.m_thread = std::this_thread::get_id();
        loop.m_running_since = clock::now();
    }
    running_scope(const running_scope&) = delete;
    running_scope& operator=(const running_scope&) = delete;
    ~running_scope() {
        m_loop.m_time_ran_before += clock::now() - m_loop.m_running_since;
        m_loop.m_running = false;
        detail::t_running_loop = nullptr;
    }

private:
    event_loop& m_loop;
};

inline event_loop::event_loop(loop_options options)
    : m_options(options),
      m_ring(options.queue_depth == 0 ? 1 : options.queue_depth,
             options.completion_queue_depth != 0 ? options.completion_queue_depth : 4 * (options.queue_depth == 0 ? 1 : options.queue_depth)) {
    if (const char* env = std::getenv("CORING_DEBUG"); env != nullptr && *env != '\0' && std::string_view(env) != "0") m_options.debug = true;
    m_virtual_now = clock::now();
    m_thread = std::this_thread::get_id();
    m_inbox.arm(m_ring);
}

inline event_loop::~event_loop() {
    if (m_running) {
        std::fputs("coring: fatal: an event_loop was destroyed while it was running\n", stderr);
        std::terminate();
    }
    try {
        close();
    } catch (...) {
        default_exception_handler({"error while closing the event loop", std::current_exception(), {}, {}});
    }
}

template <class Done>
bool event_loop::run_until(Done&& done) {
    running_scope scope(*this);
    while (!done()) {
        run_once();
        if (m_stopping) {
            m_stopping = false;
            return done();
        }
    }
    return true;
}

template <class T>
T event_loop::run_until_complete(task<T> main, source_location site) {
    task_handle<T> handle = create_task(std::move(main), {}, site);
    if (!run_until([&] { return handle.done(); }))
        throw std::runtime_error("coring: run_until_complete: the event loop was stopped before the task finished");
    return handle.result();
}

inline void event_loop::run_forever() {
    run_until([] { return false; });
}

inline void event_loop::run_once() {
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
    while (detail::ready_node* node = m_batch) {
        m_batch = node->m_next;
        ++m_ran_in_batch;
        node->run();
    }
    end_batch();
}

// Everything run_once does between two batches when something is ready, in the same order,
// and nothing it would not do: see the declaration. The usual case (the budget is counted, and
// nothing arrived from other threads or the timer heap) makes no call, so it needs no stack
// frame; the rest goes through hand_off_counting_arrivals.
CORING_ALWAYS_INLINE std::coroutine_handle<> event_loop::hand_off() noexcept {
    detail::ready_node* first = m_ready.front();
    if (first == nullptr) return std::noop_coroutine();  // the iteration would wait
    // One test for "counted, and some left": 0 and handoffs_not_counted both wrap past it.
    if (CORING_UNLIKELY(m_handoffs_left - 1 >= max_handoffs || m_inbox.has_items() || !m_timers.empty()))
        return hand_off_counting_arrivals(first);
    --m_handoffs_left;
    return start_handed_batch(first);
}

CORING_NOINLINE inline std::coroutine_handle<> event_loop::hand_off_counting_arrivals(detail::ready_node* first) noexcept {
    if (m_handoffs_left == 0 || (m_handoffs_left == handoffs_not_counted && count_handoffs() == 0)) return std::noop_coroutine();
    --m_handoffs_left;
    take_arrivals();  // queued after `first`, as in run_once
    return start_handed_batch(first);
}

CORING_ALWAYS_INLINE std::coroutine_handle<> event_loop::start_handed_batch(detail::ready_node* first) noexcept {
    ++m_iterations;  // (the hand-offs are the iterations run_once did not count)
    m_ready.clear();  // the new batch: `first` and the nodes linked after it
    if (!detail::leaf_awaiter<>::resumes_frame(*first)) {  // the loop runs it
        end_batch();
        m_batch = first;
        return std::noop_coroutine();
    }
    end_batch(1);  // `first` runs now
    m_batch = first->m_next;
    m_current = detail::leaf_awaiter<>::ready_to_resume(*first, m_step_frame);
    return m_step_frame;
}

CORING_NOINLINE inline void event_loop::take_inbox() {
    detail::ready_queue arrived = m_inbox.take();
    while (detail::ready_node* node = arrived.pop()) m_ready.push(node);
}

CORING_NOINLINE inline void event_loop::expire_timers() {
    const clock::time_point now = time();
    while (detail::timer_node* expired = m_timers.pop_expired(now)) m_ready.push(expired);
}

CORING_NOINLINE inline void event_loop::poll_now() {
    m_last_poll_iteration = m_iterations;
    m_ring.submit_and_poll();
    drain_completions();
}

CORING_NOINLINE inline void event_loop::poll_io(bool may_block) {
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

inline bool event_loop::busy_poll_found_work(clock::time_point start, std::optional<clock::duration> until_next_timer) {
    clock::duration budget = m_options.busy_poll;
    if (until_next_timer && *until_next_timer < budget) budget = *until_next_timer;
    do {
        m_ring.submit_and_poll();
        if (drain_completions() > 0 || m_inbox.has_items()) return true;
    } while (clock::now() - start < budget);
    return false;
}

inline loop_stats event_loop::stats() const noexcept {
    loop_stats s;
    s.iterations = m_iterations;
    s.submissions = m_ring.sqes_prepared();
    s.completions = m_ring.cqes_reaped();
    s.time_in_kernel = m_time_in_kernel;
    const clock::duration ran = m_time_ran_before + (m_running ? clock::now() - m_running_since : clock::duration::zero());
    s.time_running = ran > m_time_in_kernel ? ran - m_time_in_kernel : clock::duration::zero();
    s.ready_high_water = m_ready_high_water;
    s.handoffs = m_iterations - m_run_once_iterations;
    s.live_tasks = m_unfinished_tasks;
    return s;
}

template <class F>
void event_loop::timed_step(detail::state_base* task, F&& step) noexcept {
    const clock::time_point start = clock::now();
    step();
    const clock::duration took = clock::now() - start;
    if (took <= m_options.slow_callback_duration) return;
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3f", std::chrono::duration<double>(took).count());
    exception_context report;
    if (task != nullptr) {
        report.message = "Executing " + task->name() + " took " + seconds + " seconds";
        report.task_name = task->name();
        report.task_site = task->creation_site();
    } else {
        report.message = std::string("Executing a callback took ") + seconds + " seconds";
    }
    call_exception_handler(report);
}

inline void event_loop::report_wrong_thread(const char* what) const {
    throw std::logic_error(std::string("coring: ") + what +
                           " on an event loop from a thread other than the loop's own (debug mode check); only call_soon_threadsafe may be "
                           "called from another thread");
}

inline void event_loop::cancel_io(detail::io_completion& op) {
    io_uring_sqe* sqe = get_sqe();
    io_uring_prep_cancel(sqe, &op, 0);
    io_uring_sqe_set_data64(sqe, 0);
    // The cancel request's own CQE carries nothing we need once it succeeded.
    if (m_ring.has_feature(IORING_FEAT_CQE_SKIP)) sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

template <class F>
void event_loop::call_soon(F&& f) {
    check_thread("call_soon");
    if (m_closed) throw std::logic_error("coring: call_soon on a closed event loop");
    using node = detail::callback_node<std::decay_t<F>, true>;
    m_ready.push(new node(*this, std::forward<F>(f)));
}

template <class Rep, class Period, class F>
timer_handle event_loop::call_later(std::chrono::duration<Rep, Period> delay, F&& f) {
    return call_at(detail::deadline_after(time(), delay), std::forward<F>(f));
}

template <class F>
timer_handle event_loop::call_at(clock::time_point when, F&& f) {
    check_thread("call_at / call_later");
    if (m_closed) throw std::logic_error("coring: call_at / call_later on a closed event loop");
    using node = detail::timer_callback<std::decay_t<F>>;
    auto* timer = new node(*this, when, std::forward<F>(f));
    try {
        m_timers.push(*timer, when);
    } catch (...) {
        timer->release();
        throw;
    }
    return timer_handle(timer);
}

template <class F>
void event_loop::call_soon_threadsafe(F&& f) {
    if (m_closed) throw std::logic_error("coring: call_soon_threadsafe on a closed event loop");
    using node = detail::callback_node<std::decay_t<F>, false>;
    m_inbox.push(new node(*this, std::forward<F>(f)));
}

template <class F>
void event_loop::run_callback(F& f) noexcept {
    m_current = nullptr;
    auto call = [&] {
        try {
            f();
        } catch (...) {
            call_exception_handler({"exception in a callback", std::current_exception(), {}, {}});
        }
    };
    if (CORING_UNLIKELY(m_options.debug))
        timed_step(nullptr, call);
    else
        call();
}

inline void event_loop::call_exception_handler(const exception_context& context) noexcept {
    if (!m_exception_handler) return default_exception_handler(context);
    try {
        m_exception_handler(*this, context);
    } catch (...) {
        default_exception_handler({"the exception handler threw", std::current_exception(), {}, {}});
        default_exception_handler(context);
    }
}

inline void event_loop::default_exception_handler(const exception_context& context) noexcept {
    try {
        std::string text = "coring: " + context.message + "\n";
        if (!context.task_name.empty()) {
            text += "  task: " + context.task_name;
            if (context.task_site.line() != 0)
                text += std::string(" (created at ") + context.task_site.file_name() + ":" + std::to_string(context.task_site.line()) + ")";
            text += "\n";
        }
        if (context.exception) text += "  exception: " + detail::describe_exception(context.exception) + "\n";
        std::fputs(text.c_str(), stderr);
    } catch (...) {
        std::fputs("coring: an error was reported but could not be formatted\n", stderr);
    }
}

inline void event_loop::close() {
    if (m_closed) return;
    if (m_running) throw std::logic_error("coring: close() called on a running event loop");
    check_thread("close");
    if (m_options.debug && m_unfinished_tasks > 0) report_pending_at_close();
    cancel_remaining_tasks();
    // No task waits for a worker any more: join the pool before the inbox the workers report to
    // is emptied (a late report is discarded with the other leftovers).
    if (m_thread_pool) m_thread_pool->shutdown();
    discard_leftovers();
    stop_internal_operations();
    // A future that never finished holds its done callbacks, and they hold the future: drop
    // them without running them (asyncio drops them with the loop too).
    std::vector<detail::state_base*> unfinished;
    m_states.for_each([&](detail::state_base& state) {
        if (!state.done()) {
            state.add_ref();
            unfinished.push_back(&state);
        }
    });
    for (detail::state_base* state : unfinished) {
        while (detail::completion_waiter* waiter = state->m_waiters.pop_front()) waiter->run(detail::ready_node::action::discard);
    }
    for (detail::state_base* state : unfinished) state->release();
    // Futures and finished tasks that handles still refer to outlive the loop, detached from it.
    m_states.for_each([](detail::state_base& state) {
        state.m_loop = nullptr;
        static_cast<detail::list_hook<detail::registry_tag>&>(state).unlink();
    });
    m_ring.close();
    m_closed = true;
}

inline void event_loop::cancel_remaining_tasks() {
    // Rounds, because tasks may create tasks while they clean up: each round cancels the tasks
    // that have not been cancelled yet and waits for them.
    while (m_unfinished_tasks > 0) {
        std::vector<detail::state_base*> victims;
        m_states.for_each([&](detail::state_base& state) {
            if (state.is_task() && !state.done()) {
                state.add_ref();
                victims.push_back(&state);
            }
        });
        struct release_all {
            std::vector<detail::state_base*>& states;
            ~release_all() {
                for (auto* s : states) s->release();
            }
        } guard{victims};
        for (auto* s : victims) s->request_cancel();
        std::size_t first_unfinished = 0;
        run_until([&] {
            while (first_unfinished < victims.size() && victims[first_unfinished]->done()) ++first_unfinished;
            return first_unfinished == victims.size();
        });
    }
}

inline void event_loop::discard_leftovers() noexcept {
    using action = detail::ready_node::action;
    while (detail::ready_node* node = m_ready.pop()) node->run(action::discard);
    while (detail::timer_node* timer = m_timers.pop()) timer->run(action::discard);
    detail::ready_queue arrived = m_inbox.take();
    while (detail::ready_node* node = arrived.pop()) node->run(action::discard);
}

inline void event_loop::stop_internal_operations() {
    m_signals.remove_all();
    m_signals.disarm(m_ring);
    m_inbox.disarm(m_ring);
    while (m_signals.armed() || m_inbox.armed() || m_user_ops_in_flight > 0) {
        m_ring.submit_and_wait();
        drain_completions();
    }
}

// Out of line, so that begin_suspend, which only checks, keeps no registers for building the
// exception. (get_running_loop throws inline: callers such as sleep() then keep their
// prologue off the path that does not need the loop.)
[[noreturn]] CORING_NOINLINE inline void detail::throw_no_running_loop() {
    throw std::logic_error(no_running_loop_text);
}

inline event_loop& get_running_loop() {
    if (detail::t_running_loop == nullptr) throw std::logic_error(detail::no_running_loop_text);
    return *detail::t_running_loop;
}

// ---------------------------------------------------------------------- leaf awaiters

// Always inlined: every suspension runs it, and out of line it costs a call around a handful
// of loads and stores (measured in the queue ping-pong benchmark).
template <class Node>
CORING_ALWAYS_INLINE bool detail::leaf_awaiter<Node>::begin_suspend(std::coroutine_handle<> frame) {
    event_loop* running = t_running_loop;
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

template <class Node>
CORING_ALWAYS_INLINE std::coroutine_handle<> detail::leaf_awaiter<Node>::switch_away(std::coroutine_handle<> frame) noexcept {
    return t_running_loop->next_frame_after(frame);  // the task's loop: it suspends while running
}

template <class Node>
event_loop& detail::leaf_awaiter<Node>::loop() const noexcept {
    return m_task != nullptr ? *m_task->loop() : *t_running_loop;
}

template <class Node>
void detail::leaf_awaiter<Node>::wake() noexcept {
    loop().schedule(*this);
}

template <class Node>
void detail::leaf_awaiter<Node>::resume_frame(ready_node* node, ready_node::action what) noexcept {
    if (what == ready_node::action::discard) return;
    std::coroutine_handle<> frame;
    state_base* task = ready_to_resume(*node, frame);
    t_running_loop->resume(task, frame);  // nodes run only inside the running loop
}

// ---------------------------------------------------------------------- timer callbacks

inline void detail::timer_callback_base::fire(ready_node* node, action what) noexcept {
    auto* self = static_cast<timer_callback_base*>(node);
    if (what == action::run && !self->m_cancelled) self->m_loop->run_callback(*self);
    self->m_finished = true;
    self->release();  // the loop's reference
}

inline void timer_handle::cancel() noexcept {
    if (m_timer == nullptr || m_timer->m_cancelled || m_timer->m_finished) return;
    m_timer->m_cancelled = true;
    if (m_timer->scheduled()) {
        // Still in the heap: take it out now. (Expired and queued: fire() skips it.)
        m_timer->m_loop->remove_timer(*m_timer);
        m_timer->m_finished = true;
        m_timer->release();
    }
}

// ---------------------------------------------------------------------- signals

inline void detail::signal_watcher::on_read(io_completion* base, int result, unsigned) noexcept {
    auto* self = static_cast<signal_watcher*>(base);
    self->m_armed = false;
    if (result == static_cast<int>(sizeof(signalfd_siginfo))) {
        const int sig = static_cast<int>(self->m_info.ssi_signo);
        if (auto it = self->find(sig); it != self->m_handlers.end()) {
            try {
                self->m_loop->call_soon(it->second);
            } catch (...) {
                self->m_loop->call_exception_handler({"could not queue the handler of signal " + std::to_string(sig), std::current_exception(), {}, {}});
            }
        }
    }
    if (!self->m_closing && result != -ECANCELED) {
        try {
            self->arm(*self->m_ring);
        } catch (...) {
            self->m_loop->call_exception_handler({"could not re-arm the signal reader", std::current_exception(), {}, {}});
        }
    }
}

// ---------------------------------------------------------------------- task states

inline detail::state_base::state_base(event_loop& loop, bool is_task, std::string_view name, const source_location& site)
    : ready_node(start_operations), m_loop(&loop), m_frame(), m_site(site), m_is_task(is_task) {
    if (!name.empty()) m_name = std::make_unique<std::string>(name);
    if (is_task) {
        m_id = loop.m_next_task_id++;
        ++loop.m_unfinished_tasks;
    }
    loop.m_states.push_back(*this);
}

inline detail::state_base::~state_base() {
    static_cast<list_hook<registry_tag>&>(*this).unlink();
    // Done callbacks of a future that never finished: free them without running them.
    while (completion_waiter* waiter = m_waiters.pop_front()) waiter->run(ready_node::action::discard);
}

inline void detail::state_base::step(ready_node* node, action what) noexcept {
    auto* self = static_cast<state_base*>(node);
    if ((self->m_cancel_requested && !self->m_starts_when_cancelled) || what == action::discard) {
        // Cancelled before it started: the body never runs (asyncio does the same).
        self->m_cancel_requested = false;
        self->m_frame.destroy();
        self->m_frame = {};
        self->finish(std::make_exception_ptr(cancelled_error{}));
        return;
    }
    const std::coroutine_handle<> frame = self->m_frame;
    self->m_slot = nullptr;  // the union's other member from now on
    self->m_status = status::running;
    self->m_loop->resume(self, frame);
}

inline bool detail::state_base::request_cancel() noexcept {
    if (done()) return false;
    if (!m_is_task) {
        finish(std::make_exception_ptr(cancelled_error{}));
        return true;
    }
    m_cancel_requested = true;
    if (m_status == status::running) {
        if (ready_node* leaf = std::exchange(m_slot, nullptr)) leaf->cancel();
    }
    return true;
}

inline void detail::state_base::finish(std::exception_ptr error) noexcept {
    m_exception = std::move(error);
    m_cancelled = is_cancellation(m_exception);
    m_status = status::finished;
    m_slot = nullptr;
    m_cancel_requested = false;
    if (m_loop != nullptr) {
        m_loop->m_handoffs_left = 0;  // run_until may be done: the iteration ends with its batch
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

inline void detail::state_base::release() noexcept {
    if (--m_refs != 0) return;
    if (done() && m_exception && !m_retrieved && !m_cancelled) {
        exception_context context{m_is_task ? "Task exception was never retrieved" : "Future exception was never retrieved",
                                  m_exception, name(), m_site};
        if (m_loop != nullptr)
            m_loop->call_exception_handler(context);
        else
            event_loop::default_exception_handler(context);
    }
    delete this;
}

}  // namespace coring

#include <coring/task_handle.hpp>
#include <coring/detail/task_tree.hpp>
