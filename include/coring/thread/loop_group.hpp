#pragma once
// loop_group: one event loop per thread, for programs that use several cores (the model of
// Seastar, glommio and monoio: nothing shared, explicit messages between loops).
//
//   coring::loop_group group({.threads = 4, .pin_threads = true});
//   std::vector<int> counts = group.run([&](std::size_t i) { return serve_shard(i); });
//
// Each thread makes its loop (the ring is single-issuer, so it is created by the thread that
// uses it) and runs it until the group is destroyed. run(make_main) calls make_main(i) on loop i
// and waits, on the calling thread, for every main; the loops go on serving run_on messages and
// channels while other mains still run. The first main to fail cancels the others, and its
// exception is rethrown once they have all finished (gather's rule, with cancellation).
//
// Between loops a task may use run_on (thread/run_on.hpp), channels (thread/channel.hpp) and
// call_soon_threadsafe. Everything else (tasks, handles, streams, locks, queues, events) belongs
// to the loop that made it; in debug mode, an I/O operation or loop method used from another
// thread throws std::logic_error naming both threads.
//
// Signals: the group's threads start with every signal blocked (the mask is set before they
// are spawned), so a process-directed signal goes to a thread outside the group, or, once
// add_signal_handler blocked it in the calling thread too, stays pending for loop 0's signalfd.
// Loop 0 then runs the handler on every loop (a group-wide stop: each loop stops its own
// server or cancels its own main). Threads started elsewhere before must block those signals
// themselves.
//
// Thread-safety: the member functions are for the thread that made the group (not one of its
// loops: run and the destructor wait for the loops). loop(i) may be handed to any thread, for
// run_on, channels and call_soon_threadsafe.

#include <coring/detail/combinator.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>

#include <pthread.h>
#include <sched.h>
#include <signal.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {

struct loop_group_options {
    /// Threads, each with its own loop; 0: std::thread::hardware_concurrency().
    std::size_t threads = 0;
    /// Pins thread i to the i-th CPU the process may run on (modulo their number).
    bool pin_threads = false;
    /// Every loop's options.
    loop_options loop = {};
};

namespace detail {

// One run(make_main): the outcome of every main, and the cancel messages still on their way
// (they refer to this object, so run() returns only once they have all arrived).
struct group_run_base {
    std::mutex mutex;
    std::condition_variable changed;
    std::vector<state_base*> mains;  // entry i: loop i's main while it runs (read on loop i)
    std::vector<bool> finished;
    std::size_t finished_count = 0;
    std::size_t cancels_in_flight = 0;
    std::exception_ptr first_error;
    std::vector<std::exception_ptr> loop_failures;  // entry i: set when loop i failed, before it closed
};

template <class T>
struct group_run : group_run_base {
    std::vector<std::optional<std::conditional_t<std::is_void_v<T>, bool, T>>> values;
};

}  // namespace detail

class loop_group {
public:
    explicit loop_group(loop_group_options options = {}) : m_options(std::move(options)) {
        std::size_t n = m_options.threads != 0 ? m_options.threads : std::max(1u, std::thread::hardware_concurrency());
        m_loops.assign(n, nullptr);
        m_errors.assign(n, nullptr);
        m_failures.assign(n, nullptr);
        sigset_t all;
        sigset_t previous;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &previous);  // inherited by the threads
        try {
            for (std::size_t i = 0; i < n; ++i) m_threads.emplace_back([this, i] { thread_main(i); });
        } catch (...) {
            pthread_sigmask(SIG_SETMASK, &previous, nullptr);
            shut_down();
            throw;
        }
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
        {
            std::unique_lock lock(m_mutex);
            m_changed.wait(lock, [&] { return m_started == m_threads.size(); });
        }
        for (std::exception_ptr& error : m_errors) {
            if (error) {
                std::exception_ptr first = error;  // the first loop that could not be made
                shut_down();
                std::rethrow_exception(first);
            }
        }
    }
    loop_group(const loop_group&) = delete;
    loop_group& operator=(const loop_group&) = delete;

    /// Stops every loop, closes it (its remaining tasks are cancelled) and joins its thread.
    ~loop_group() { shut_down(); }

    [[nodiscard]] std::size_t size() const noexcept { return m_loops.size(); }
    /// Loop i (i < size()), for run_on, channels and call_soon_threadsafe from any thread.
    [[nodiscard]] event_loop& loop(std::size_t i) const {
        if (i >= m_loops.size()) throw std::out_of_range("coring::loop_group::loop: index " + std::to_string(i) + " of " + std::to_string(m_loops.size()));
        return *m_loops[i];
    }

    /// Runs make_main(i), a coring::task<T>, on every loop i and waits for all of them. Returns
    /// their values in index order (a std::vector<T>; nothing for task<void>). The first main
    /// to throw cancels the others, and its exception is rethrown once all have finished.
    /// make_main is called on every loop's thread, concurrently. Call run from a thread that
    /// is not one of the group's. A loop that failed (its run_forever threw: the ring broke)
    /// counts as a main that threw that exception, now or in a later run.
    template <class MakeMain>
    auto run(MakeMain make_main) {
        using main_task = std::invoke_result_t<MakeMain&, std::size_t>;
        static_assert(detail::is_task<main_task>::value, "coring::loop_group::run: make_main(i) must return a coring::task<T>");
        using T = typename main_task::value_type;
        static_assert(!std::is_reference_v<T>, "coring::loop_group::run: a main cannot return a reference");
        const std::size_t n = size();
        detail::group_run<T> state;
        state.mains.assign(n, nullptr);
        state.finished.assign(n, false);
        state.loop_failures.assign(n, nullptr);
        state.values.resize(n);
        {
            std::lock_guard lock(m_mutex);
            m_current_run = &state;
        }
        for (std::size_t i = 0; i < n; ++i) {
            std::exception_ptr failure;
            {
                std::lock_guard lock(m_mutex);
                failure = m_failures[i];
            }
            if (!failure) {
                try {
                    m_loops[i]->call_soon_threadsafe([this, &state, &make_main, i] { start_main<T>(state, make_main, i); });
                    continue;
                } catch (...) {
                    failure = std::current_exception();  // the loop failed meanwhile (or no memory)
                }
            }
            main_finished(state, i, failure);
        }
        std::unique_lock lock(state.mutex);
        state.changed.wait(lock, [&] { return state.finished_count == n && state.cancels_in_flight == 0; });
        lock.unlock();
        {
            std::lock_guard group_lock(m_mutex);
            m_current_run = nullptr;
        }
        if (state.first_error) std::rethrow_exception(state.first_error);
        if constexpr (!std::is_void_v<T>) {
            std::vector<T> values;
            values.reserve(n);
            for (auto& value : state.values) values.push_back(std::move(*value));
            return values;
        }
    }

    /// Runs handler() on every loop, each on its own thread, whenever `sig` arrives. Blocks
    /// `sig` in the calling thread; loop 0 reads it through its signalfd. Replaces an earlier
    /// handler of the same signal; the errors are event_loop::add_signal_handler's.
    void add_signal_handler(int sig, std::function<void()> handler) {
        sigset_t one;
        sigemptyset(&one);
        if (sigaddset(&one, sig) != 0) throw std::invalid_argument("coring::loop_group::add_signal_handler: invalid signal " + std::to_string(sig));
        pthread_sigmask(SIG_BLOCK, &one, nullptr);
        auto shared = std::make_shared<std::function<void()>>(std::move(handler));
        on_loop_zero([this, sig, shared] {
            m_loops[0]->add_signal_handler(sig, [this, shared] {
                for (event_loop* loop : m_loops) loop->call_soon_threadsafe([shared] { (*shared)(); });
            });
        });
    }

    /// Removes the group's handler of `sig`; false if there was none. The signal stays blocked
    /// in the thread that added it.
    bool remove_signal_handler(int sig) {
        bool removed = false;
        on_loop_zero([this, sig, &removed] { removed = m_loops[0]->remove_signal_handler(sig); });
        return removed;
    }

private:
    void thread_main(std::size_t i) noexcept {
        std::optional<event_loop> loop;
        try {
            if (m_options.pin_threads) pin_to_cpu(i);
            loop.emplace(m_options.loop);
        } catch (...) {
            m_errors[i] = std::current_exception();
        }
        {
            std::lock_guard lock(m_mutex);
            m_loops[i] = loop ? &*loop : nullptr;
            ++m_started;
        }
        m_changed.notify_all();
        if (!loop) return;
        std::exception_ptr failure;
        try {
            loop->run_forever();  // until shut_down's stop
        } catch (...) {
            failure = std::current_exception();  // the ring failed (io_uring_enter): the loop is done
        }
        if (failure) {
            // Said before closing: the main that close() cancels ends with the loop's failure,
            // and a run starting meanwhile does not post to this loop.
            std::lock_guard lock(m_mutex);
            m_failures[i] = failure;
            if (m_current_run != nullptr) {
                std::lock_guard run_lock(m_current_run->mutex);
                m_current_run->loop_failures[i] = failure;
            }
        }
        try {
            loop->close();
        } catch (...) {
            if (!failure) failure = std::current_exception();
        }
        if (failure) loop_failed(i, failure);
    }

    // Loop i's thread, its loop closed after a failure: the main it was running, if close()
    // did not end it, ends with that failure; the loop object stays (closed, refusing messages
    // with std::logic_error) until shut_down, so loop(i) references stay valid.
    void loop_failed(std::size_t i, std::exception_ptr failure) noexcept {
        std::unique_lock lock(m_mutex);
        m_failures[i] = failure;
        if (m_current_run != nullptr) main_finished(*m_current_run, i, failure, true);
        m_changed.wait(lock, [&] { return m_shutting_down; });
    }

    void pin_to_cpu(std::size_t i) {
        cpu_set_t allowed;
        CPU_ZERO(&allowed);
        if (sched_getaffinity(0, sizeof allowed, &allowed) != 0) detail::throw_errno(errno, "coring::loop_group: sched_getaffinity");
        std::vector<int> cpus;
        for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
            if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
        if (cpus.empty()) return;
        cpu_set_t mine;
        CPU_ZERO(&mine);
        CPU_SET(cpus[i % cpus.size()], &mine);
        if (int error = pthread_setaffinity_np(pthread_self(), sizeof mine, &mine); error != 0)
            detail::throw_errno(error, "coring::loop_group: pinning thread " + std::to_string(i) + " to CPU " + std::to_string(cpus[i % cpus.size()]));
    }

    void shut_down() noexcept {
        {
            std::unique_lock lock(m_mutex);
            m_changed.wait(lock, [&] { return m_started == m_threads.size(); });
        }
        for (event_loop* loop : m_loops) {
            if (loop == nullptr) continue;
            try {
                loop->call_soon_threadsafe([loop] { loop->stop(); });
            } catch (...) {
                // Failed and closed: its thread waits for m_shutting_down.
            }
        }
        {
            // After the stops: a failed loop's thread destroys its loop once it sees this.
            std::lock_guard lock(m_mutex);
            m_shutting_down = true;
        }
        m_changed.notify_all();
        for (std::thread& thread : m_threads)
            if (thread.joinable()) thread.join();
    }

    // Runs f on loop 0 and waits for it; rethrows what it threw.
    template <class F>
    void on_loop_zero(F f) {
        std::promise<void> done;
        m_loops[0]->call_soon_threadsafe([&] {
            try {
                f();
                done.set_value();
            } catch (...) {
                done.set_exception(std::current_exception());
            }
        });
        done.get_future().get();
    }

    // Loop i's thread: starts its main, unless another main has failed already.
    template <class T, class MakeMain>
    void start_main(detail::group_run<T>& state, MakeMain& make_main, std::size_t i) noexcept {
        {
            std::lock_guard lock(state.mutex);
            if (state.first_error) {
                state.finished[i] = true;
                ++state.finished_count;
                state.changed.notify_all();
                return;
            }
        }
        try {
            task_handle<void> main = m_loops[i]->create_task(drive_main<T>(this, state, make_main, i), "loop_group main " + std::to_string(i));
            std::lock_guard lock(state.mutex);
            state.mains[i] = main.native_state();  // drive_main starts on a later iteration
        } catch (...) {
            std::exception_ptr error = std::current_exception();
            main_finished(state, i, error);
        }
    }

    template <class T, class MakeMain>
    static coring::task<void> drive_main(loop_group* self, detail::group_run<T>& state, MakeMain& make_main, std::size_t i) {
        std::exception_ptr error;
        try {
            if constexpr (std::is_void_v<T>) {
                co_await make_main(i);
                state.values[i].emplace(true);
            } else {
                state.values[i].emplace(co_await make_main(i));
            }
        } catch (...) {
            error = std::current_exception();
        }
        self->main_finished(state, i, error);
    }

    // Loop i's thread (or run's, for a loop that failed before). The first failure sends every
    // other running main a cancel. A main on a failed loop counts as finished once the loop
    // has closed (loop_failed), with the loop's failure, not the cancellation closing gave it.
    // `error` is released before the mutex is: run() may return as soon as it is unlocked, and
    // the exception object must not lose its last reference on this thread after that.
    void main_finished(detail::group_run_base& state, std::size_t i, std::exception_ptr& error, bool loop_closed_after_failure = false) noexcept {
        std::lock_guard lock(state.mutex);
        struct release_under_lock {
            std::exception_ptr& held;
            ~release_under_lock() { held = nullptr; }
        } release{error};
        if (state.finished[i]) return;
        if (state.loop_failures[i] && !loop_closed_after_failure) {
            state.mains[i] = nullptr;  // ended by the closing; loop_failed counts it
            return;
        }
        state.mains[i] = nullptr;
        state.finished[i] = true;
        ++state.finished_count;
        if (error && !state.first_error) {
            state.first_error = error;
            for (std::size_t j = 0; j < m_loops.size(); ++j) {
                if (state.finished[j]) continue;
                try {
                    m_loops[j]->call_soon_threadsafe([&state, j] {
                        detail::state_base* main;
                        {
                            std::lock_guard inner(state.mutex);
                            main = state.mains[j];
                        }
                        // Outside the mutex: a cancel may finish the main on the spot. Valid
                        // until then: the loop holds a running task, and this is its thread.
                        if (main != nullptr) main->request_cancel();
                        std::lock_guard inner(state.mutex);
                        --state.cancels_in_flight;
                        state.changed.notify_all();
                    });
                    ++state.cancels_in_flight;
                } catch (...) {
                    // Out of memory: that main runs to its end.
                }
            }
        }
        state.changed.notify_all();
    }

    loop_group_options m_options;
    std::vector<std::thread> m_threads;
    std::vector<event_loop*> m_loops;             // written once by each thread before m_started counts it
    std::vector<std::exception_ptr> m_errors;     // likewise
    std::mutex m_mutex;                           // guards what follows
    std::condition_variable m_changed;
    std::size_t m_started = 0;
    std::vector<std::exception_ptr> m_failures;   // entry i: why loop i failed, once it did
    detail::group_run_base* m_current_run = nullptr;
    bool m_shutting_down = false;
};

}  // namespace coring
