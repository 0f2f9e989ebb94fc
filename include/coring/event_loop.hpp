#pragma once
// event_loop: one per thread; runs tasks and callbacks on io_uring (asyncio's event loop).
//
//   coring::event_loop loop;
//   int v = loop.run_until_complete(compute());   // or simply coring::run(compute())
//
// This is the public front: asyncio's loop methods, signals, the thread pool, the exception
// handler and shutdown. The iteration itself (ready queue, timers, the ring, hand-offs) is
// detail::scheduler's (detail/scheduler.hpp), which awaiters use directly. The loop is
// single-threaded: every member except call_soon_threadsafe must be called on the thread that
// created the loop (the ring is set up with IORING_SETUP_SINGLE_ISSUER where the kernel has it).

#include <coring/clock.hpp>
#include <coring/config.hpp>
#include <coring/detail/callback_node.hpp>
#include <coring/detail/exception_report.hpp>
#include <coring/detail/fd_watcher.hpp>
#include <coring/detail/loop_resources.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/signal_watcher.hpp>
#include <coring/detail/source_location.hpp>
#include <coring/detail/state.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/detail/task_tree.hpp>
#include <coring/detail/test_access.hpp>
#include <coring/detail/timer_callback.hpp>
#include <coring/errors.hpp>
#include <coring/task.hpp>
#include <coring/thread/thread_pool.hpp>  // the loop's thread pool (default_executor)

#include <chrono>
#include <cstdio>
#include <memory>
#include <sstream>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {

template <class T>
class task_handle;
template <class T>
class future;

/// create_task's options (asyncio's create_task(coro, name=..., eager_start=...)):
///   coring::create_task(fetch(url), {.name = "fetch", .eager_start = true});
/// eager_start: the body runs at once, inside create_task, until its first suspension (a
/// body that never suspends is done when create_task returns); otherwise it starts on the next
/// iteration. Trivially destructible, so it may be written inside a co_await expression.
struct task_options {
    std::string_view name = {};
    bool eager_start = false;
};

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
    /// run_on and channel messages from this loop to other loops travel through the kernel
    /// (IORING_OP_MSG_RING: a completion on the target's ring) where it has the opcode and
    /// IORING_FEAT_CQE_SKIP (5.18+); otherwise, or when false, through the target's inbox (a
    /// mutex, and an eventfd write when the target sleeps). loop_stats::msg_ring says which.
    bool msg_ring = true;
    /// Profile mode: each task's steps, run time and waits by kind, and the loop's iterations,
    /// time in the kernel and timer lag are recorded (profile.hpp); the table is printed to
    /// stderr when the loop closes. CORING_PROFILE=1 in the environment turns it on too.
    bool profile = false;
    /// Tracing: a Chrome trace-event file at this path (Perfetto and chrome://tracing open it;
    /// tools/trace_to_svg.py draws it) of every task step, kernel operation, create_task and
    /// wake-up; null for none. CORING_TRACE=path.json in the environment does the same. The
    /// loops of a process share the file, a track each; it is complete JSON after every write.
    /// Borrowed: copied when the loop is made (options() then points to the loop's copy).
    const char* trace_file = nullptr;
    /// Tracing: each loop writes its events to the file whenever this many bytes are buffered.
    std::size_t trace_buffer_bytes = std::size_t{1} << 20;
};

/// Counters of a loop's work, read with event_loop::stats().
struct loop_stats {
    std::uint64_t iterations = 0;                   ///< passes through the loop (run_once)
    std::uint64_t handoffs = 0;                     ///< iterations begun by a hand-off: a task step that ended
                                                    ///< by switching straight to the next one (detail/scheduler.hpp)
    std::uint64_t submissions = 0;                  ///< SQEs prepared (the loop's own included)
    std::uint64_t completions = 0;                  ///< CQEs reaped
    std::chrono::nanoseconds time_in_kernel{};      ///< blocked in io_uring_enter, waiting for work
    std::chrono::nanoseconds time_running{};        ///< running, all else: tasks, callbacks, the loop itself
    std::size_t ready_high_water = 0;               ///< the most callbacks and task steps run in one iteration
    std::size_t live_tasks = 0;                     ///< tasks created and not finished
    std::uint64_t cq_overflows = 0;                 ///< times the completion queue was found full with more completions
                                                    ///< waiting on the kernel's overflow list (all delivered later)
    std::uint64_t cq_dropped = 0;                   ///< CQEs the kernel dropped (its cq.koverflow count): completions lost
    std::uint64_t dropped_completions_reported = 0; ///< reports to the exception handler that io_uring_enter said so
                                                    ///< (EBADR): one for each, or for several seen in one iteration
    bool msg_ring = false;                          ///< messages to other loops go through IORING_OP_MSG_RING
                                                    ///< (chosen when the loop was made), else through their inboxes
    std::uint64_t messages_sent = 0;                ///< run_on and channel messages sent through IORING_OP_MSG_RING
    std::uint64_t messages_received = 0;            ///< and received that way from other loops
};

/// The loop running in this thread, or throws std::logic_error.
[[nodiscard]] event_loop& get_running_loop();

namespace detail {
/// The scheduler underneath a loop: for the library's awaiters and I/O states.
[[nodiscard]] scheduler& scheduler_of(event_loop& loop) noexcept;
}  // namespace detail

/// The loop is a detail::scheduler (detail/scheduler.hpp) underneath; that base is private, so
/// a user sees asyncio's loop methods only. The library's awaiters reach the scheduler through
/// detail::scheduler_of(loop) or leaf_awaiter::loop().
class event_loop : private detail::scheduler {
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
    void run_forever() {
        run_until([] { return false; });
    }

    /// Finishes the current iteration, then makes run_forever / run_until_complete return. Called
    /// before the loop runs, it lets exactly one iteration run.
    void stop() noexcept { request_stop(); }

    [[nodiscard]] bool is_running() const noexcept { return m_running; }
    // is_closed() comes from detail::scheduler.

    /// Shuts down: cancels every task that has not finished and runs the loop until they have
    /// (once each, as asyncio.run does: a task that swallows the cancellation and never finishes
    /// keeps close() waiting), drops callbacks that are still queued, waits for the loop's own
    /// kernel operations, destroys every frame and closes the ring. Idempotent. The kernel's
    /// teardown of the ring may interrupt the thread's next blocking system call once (EINTR
    /// from a socket call with a timeout or from epoll_wait; see run.hpp).
    void close();

    // ------------------------------------------------------------------ time and callbacks
    // time() (the loop's clock: clock::now(), or the virtual time) comes from detail::scheduler.

    /// Runs f() on the next iteration. Exceptions from f go to the exception handler. Throws
    /// std::logic_error once the loop is closed (as do call_later and call_at). f runs in a
    /// copy of the caller's context (context_var.hpp), as do the callbacks of call_later,
    /// call_at and call_soon_threadsafe.
    template <class F>
    void call_soon(F&& f) {
        check_thread("call_soon");
        if (m_closed) throw std::logic_error("coring: call_soon on a closed event loop");
        if (CORING_UNLIKELY(detail::t_contexts_used))
            schedule(*new detail::callback_node<std::decay_t<F>, true, true>(*this, std::forward<F>(f)));
        else
            schedule(*new detail::callback_node<std::decay_t<F>, true>(*this, std::forward<F>(f)));
    }

    /// Runs f() once `delay` has passed; the handle can cancel it.
    template <class Rep, class Period, class F>
    timer_handle call_later(std::chrono::duration<Rep, Period> delay, F&& f) {
        return call_at(detail::deadline_after(time(), delay), std::forward<F>(f));
    }

    /// Runs f() at `when` on the loop's clock; the handle can cancel it.
    template <class F>
    timer_handle call_at(clock::time_point when, F&& f);

    /// The one member that may be called from any thread: queues f() and wakes the loop if it
    /// is blocked in the kernel. Throws std::logic_error once the loop is closed (from the
    /// moment its close() stops taking messages).
    template <class F>
    void call_soon_threadsafe(F&& f) {
        detail::ready_node* node;
        if (detail::t_contexts_used)  // this thread's: the calling code's context
            node = new detail::callback_node<std::decay_t<F>, false, true>(*this, std::forward<F>(f));
        else
            node = new detail::callback_node<std::decay_t<F>, false>(*this, std::forward<F>(f));
        if (!push_from_any_thread(node)) {
            node->run(detail::ready_node::action::discard);  // deletes it
            throw std::logic_error("coring: call_soon_threadsafe on a closed event loop");
        }
    }

    // ------------------------------------------------------------------ tasks

    /// Schedules `body` to start on the next iteration (not inline) and returns its handle. The
    /// task belongs to the loop until it finishes: dropping every handle neither cancels nor
    /// destroys it. (Defined in task_handle.hpp.)
    template <class T>
    task_handle<T> create_task(task<T> body, std::string_view name = {}, source_location site = source_location::current());
    /// create_task with options: `{.name = "fetch", .eager_start = true}` (see task_options).
    template <class T>
    task_handle<T> create_task(task<T> body, task_options options, source_location site = source_location::current());

    /// create_task for coring's own combinators: the new state with one reference for the caller.
    template <class T>
    detail::state<T>* create_task_state(task<T> body, std::string_view name, const source_location& site, bool eager = false);

    /// A future bound to this loop (asyncio's loop.create_future()). (Defined in task_handle.hpp.)
    template <class T = void>
    future<T> create_future();

    // ------------------------------------------------------------------ signals

    /// Runs `handler` on the loop whenever `sig` arrives (through a signalfd). The signal is
    /// blocked in this thread. Replaces an earlier handler of the same signal. Throws
    /// std::invalid_argument for SIGKILL, SIGSTOP or a number out of range.
    void add_signal_handler(int sig, std::function<void()> handler) {
        check_thread("add_signal_handler");
        m_signals.add(sig, std::move(handler), owned_ring());
    }

    /// Removes the handler and unblocks the signal if the loop blocked it. False if there was none.
    bool remove_signal_handler(int sig) {
        check_thread("remove_signal_handler");
        return m_signals.remove(sig);
    }

    // ------------------------------------------------------------------ readiness

    /// Runs `callback` on the loop each time `fd` is readable, until remove_reader(fd)
    /// (asyncio's loop.add_reader; level-triggered: it runs again on the next iteration while
    /// unread bytes remain). Replaces an earlier reader of `fd`. Throws std::system_error (EBADF)
    /// if `fd` is not open. This is how a C library that exposes its descriptor (libcurl,
    /// hiredis, libpq) runs on the loop; a task waits once with co_await wait_readable(fd).
    void add_reader(int fd, std::function<void()> callback) {
        check_thread("add_reader");
        m_fd_watcher.add(fd, POLLIN, std::move(callback), owned_ring());
    }
    /// Ends the reader of `fd`: its callback does not run again. False if there was none.
    bool remove_reader(int fd) {
        check_thread("remove_reader");
        return m_fd_watcher.remove(fd, POLLIN);
    }
    /// As add_reader, for `fd` being writable (asyncio's loop.add_writer).
    void add_writer(int fd, std::function<void()> callback) {
        check_thread("add_writer");
        m_fd_watcher.add(fd, POLLOUT, std::move(callback), owned_ring());
    }
    /// Ends the writer of `fd`. False if there was none.
    bool remove_writer(int fd) {
        check_thread("remove_writer");
        return m_fd_watcher.remove(fd, POLLOUT);
    }

    // ------------------------------------------------------------------ errors

    /// Receives unretrieved task exceptions and exceptions thrown by callbacks. An empty
    /// handler restores the default, which prints to stderr.
    void set_exception_handler(exception_handler handler) { m_exception_handler = std::move(handler); }
    [[nodiscard]] const exception_handler& get_exception_handler() const noexcept { return m_exception_handler; }
    void call_exception_handler(const exception_context& context) noexcept override;
    static void default_exception_handler(const exception_context& context) noexcept { detail::print_report(context); }

    // ------------------------------------------------------------------ introspection

    [[nodiscard]] const loop_options& options() const noexcept { return m_loop_options; }
    [[nodiscard]] bool get_debug() const noexcept { return debug_mode(); }
    void set_debug(bool enabled) noexcept {
        m_loop_options.debug = enabled;
        set_debug_mode(enabled);
    }
    /// What the loop has done so far.
    [[nodiscard]] loop_stats stats() const noexcept;

    /// Objects that libraries keep once per loop (coring::http's default client): destroyed by
    /// close() once every task has finished (detail/loop_resources.hpp).
    [[nodiscard]] detail::loop_resources& resources() noexcept { return m_resources; }

    /// The loop's thread pool (asyncio's default executor), created on first use: to_thread and
    /// resolve run blocking calls there. close() joins it once every task has finished.
    [[nodiscard]] thread_pool& default_executor() {
        if (!m_thread_pool) m_thread_pool = std::make_unique<thread_pool>();
        return *m_thread_pool;
    }

    // The scheduler's public face: asyncio's loop.time(), is_closed(), and the raw ring.
    using detail::scheduler::is_closed;
    using detail::scheduler::native_ring;
    using detail::scheduler::ring_setup_flags;
    using detail::scheduler::time;

private:
    friend struct detail::test_access;
    friend detail::scheduler& detail::scheduler_of(event_loop& loop) noexcept;
    friend event_loop& get_running_loop();

    class running_scope;

    static detail::scheduler_options scheduler_options_of(const loop_options& options);
    void report_slow_step(const detail::state_base* task, clock::duration took) noexcept override;
    void report_pending_at_close();
    template <class Done>
    bool run_until(Done&& done);
    void cancel_remaining_tasks();

    loop_options m_loop_options;
    detail::signal_watcher m_signals{*this};
    detail::fd_watcher m_fd_watcher{*this};
    exception_handler m_exception_handler;
    std::chrono::nanoseconds m_time_ran_before{};  // elapsed in earlier runs
    clock::time_point m_running_since{};           // start of the current run, while running
    bool m_running = false;
    std::unique_ptr<thread_pool> m_thread_pool;  // null until default_executor() is first used
    detail::loop_resources m_resources;
};

// ====================================================================== implementation

class event_loop::running_scope {
public:
    explicit running_scope(event_loop& loop) : m_loop(loop) {
        if (loop.m_closed) throw std::logic_error("coring: the event loop is closed");
        if (loop.m_running) throw std::logic_error("coring: the event loop is already running");
        if (detail::t_running_scheduler != nullptr) throw std::logic_error("coring: another event loop is already running in this thread");
        loop.check_thread("running the loop");
        detail::t_running_scheduler = &loop;
        loop.m_running = true;
        loop.adopt_thread();
        loop.m_running_since = clock::now();
        // While the loop runs, t_context is the running callback's context (see run_callback);
        // the thread's own waits here and comes back when the run ends.
        m_thread_context = std::exchange(detail::t_context, {});
    }
    running_scope(const running_scope&) = delete;
    running_scope& operator=(const running_scope&) = delete;
    ~running_scope() {
        detail::t_context.clear();
        detail::t_context = m_thread_context;
        m_loop.m_time_ran_before += clock::now() - m_loop.m_running_since;
        m_loop.m_running = false;
        detail::t_running_scheduler = nullptr;
    }

private:
    event_loop& m_loop;
    detail::context_slot m_thread_context;
};

inline detail::scheduler_options event_loop::scheduler_options_of(const loop_options& options) {
    detail::scheduler_options s;
    s.queue_depth = options.queue_depth;
    s.completion_queue_depth = options.completion_queue_depth;
    s.debug = options.debug;
    if (const char* env = std::getenv("CORING_DEBUG"); env != nullptr && *env != '\0' && std::string_view(env) != "0") s.debug = true;
    s.slow_callback_duration = options.slow_callback_duration;
    s.virtual_time = options.virtual_time;
    s.busy_poll = options.busy_poll;
    s.eager_submit = options.eager_submit;
    s.msg_ring = options.msg_ring;
    s.profile = options.profile;
    if (options.trace_file != nullptr) s.trace_file = options.trace_file;
    if (const char* env = std::getenv("CORING_TRACE"); env != nullptr && *env != '\0') s.trace_file = env;
    s.trace_buffer_bytes = options.trace_buffer_bytes;
    if (const char* env = std::getenv("CORING_PROFILE"); env != nullptr && *env != '\0' && std::string_view(env) != "0") s.profile = true;
    return s;
}

inline event_loop::event_loop(loop_options options) : scheduler(scheduler_options_of(options)), m_loop_options(options) {
    m_loop_options.debug = debug_mode();  // CORING_DEBUG
    m_loop_options.profile = profile_data() != nullptr;  // CORING_PROFILE
    m_loop_options.trace_file = tracer() != nullptr ? m_options.trace_file.c_str() : nullptr;  // the loop's copy (or CORING_TRACE)
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
    return scheduler::run_until(std::forward<Done>(done));
}

template <class T>
T event_loop::run_until_complete(task<T> main, source_location site) {
    detail::state<T>* state = create_task_state(std::move(main), {}, site);
    struct release_on_exit {
        detail::state<T>* s;
        ~release_on_exit() { s->release(); }
    } guard{state};
    if (!run_until([&] { return state->done(); }))
        throw std::runtime_error("coring: run_until_complete: the event loop was stopped before the task finished");
    return state->get_for_caller();
}

template <class T>
detail::state<T>* event_loop::create_task_state(task<T> body, std::string_view name, const source_location& site, bool eager) {
    return detail::create_task_state(*this, std::move(body), name, site, eager);
}

template <class F>
timer_handle event_loop::call_at(clock::time_point when, F&& f) {
    check_thread("call_at / call_later");
    if (m_closed) throw std::logic_error("coring: call_at / call_later on a closed event loop");
    using node = detail::timer_callback<std::decay_t<F>>;
    auto* timer = new node(*this, when, detail::capture_context(), std::forward<F>(f));
    try {
        add_timer(*timer, when);
    } catch (...) {
        timer->release();
        throw;
    }
    return timer_handle(timer);
}

inline loop_stats event_loop::stats() const noexcept {
    loop_stats s;
    s.iterations = iterations();
    s.submissions = owned_ring().sqes_prepared();
    s.completions = owned_ring().cqes_reaped();
    s.time_in_kernel = time_in_kernel();
    const clock::duration ran = m_time_ran_before + (m_running ? clock::now() - m_running_since : clock::duration::zero());
    s.time_running = ran > s.time_in_kernel ? ran - s.time_in_kernel : clock::duration::zero();
    s.ready_high_water = ready_high_water();
    s.handoffs = handoffs();
    s.live_tasks = m_unfinished_tasks;
    s.cq_overflows = owned_ring().cq_overflows();
    s.cq_dropped = owned_ring().cq_dropped();
    s.dropped_completions_reported = lost_completion_reports();
    s.msg_ring = sends_msg_ring();
    s.messages_sent = messages_sent();
    s.messages_received = messages_received();
    return s;
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

inline void event_loop::report_slow_step(const detail::state_base* task, clock::duration took) noexcept {
    char seconds[32];
    std::snprintf(seconds, sizeof seconds, "%.3f", std::chrono::duration<double>(took).count());
    exception_context report;
    try {
        if (task != nullptr) {
            report.message = "Executing " + task->name() + " took " + seconds + " seconds";
            report.task_name = task->name();
            report.task_site = task->creation_site();
        } else {
            report.message = std::string("Executing a callback took ") + seconds + " seconds";
        }
    } catch (...) {
        return;  // out of memory for the words: the step was slow, and nothing is lost
    }
    call_exception_handler(report);
}

inline void event_loop::report_pending_at_close() {
    std::string tree;
    try {
        tree = detail::format_task_tree(*this);
    } catch (...) {
    }
    call_exception_handler({"closing the event loop with " + std::to_string(m_unfinished_tasks) +
                                " unfinished task(s), which will be cancelled; what each one awaits:\n" + tree,
                            nullptr,
                            {},
                            {}});
}

inline void event_loop::close() {
    if (m_closed) return;
    if (m_running) throw std::logic_error("coring: close() called on a running event loop");
    check_thread("close");
    if (debug_mode() && m_unfinished_tasks > 0) report_pending_at_close();
    cancel_remaining_tasks();
    // No task waits for a worker any more: join the pool before the inbox the workers report to
    // is emptied (a late report is discarded with the other leftovers).
    if (m_thread_pool) m_thread_pool->shutdown();
    // Every task has finished: nothing uses them, and they may still remove their descriptors.
    m_resources.clear();
    discard_leftovers();
    m_signals.remove_all();
    m_signals.disarm(owned_ring());
    m_fd_watcher.remove_all();
    wait_for_internal_operations([this] { return m_signals.armed() || m_fd_watcher.polling(); });
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
    close_ring();
    if (detail::trace_writer* trace = tracer()) {
        try {
            trace->flush();
        } catch (...) {
        }
    }
    if (const std::shared_ptr<detail::profiler> profile = profile_data()) {
        try {
            std::ostringstream report;
            detail::write_profile_report(report, *profile, 20);
            std::fputs(report.str().c_str(), stderr);
        } catch (...) {
            // Out of memory for the table: the profile stays readable with profile_entries().
        }
    }
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

inline detail::scheduler& detail::scheduler_of(event_loop& loop) noexcept { return loop; }

inline event_loop& get_running_loop() {
    if (detail::t_running_scheduler == nullptr) throw std::logic_error(detail::no_running_loop_text);
    return static_cast<event_loop&>(*detail::t_running_scheduler);
}

}  // namespace coring
