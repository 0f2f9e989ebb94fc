#pragma once
// coring::run (asyncio.run): a new loop runs `main` to completion, then shuts down; and
// coring::runner (asyncio.Runner): several runs on one loop.
//
//   int main() { return coring::run(amain()); }
//
// After `main` finishes (or throws) the loop cancels every task that is still pending, runs
// until they have finished their cleanup, destroys every frame and closes the ring; then run()
// returns main's value or rethrows its exception. Calling run() from inside a running loop
// throws std::logic_error, as asyncio.run does.
//
// After the ring closes, the kernel finishes tearing it down in the background and then
// interrupts the thread's blocking system call of that moment, as a signal would. Calls that the
// kernel restarts do not notice; those it does not restart fail once with EINTR: recv/send on a
// socket with SO_RCVTIMEO/SO_SNDTIMEO, epoll_wait. Retry them on EINTR, as POSIX asks anyway.
//
// Thread-safety: coring::run makes a loop on the calling thread, which must not be running
// another; several threads may each run their own (thread/loop_group.hpp does this for a group).

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>

#include <coring/detail/source_location.hpp>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace coring {

template <class T>
T run(task<T> main, loop_options options = {}, source_location site = source_location::current()) {
    if (detail::t_running_scheduler != nullptr) throw std::logic_error("coring::run() cannot be called while an event loop is running in this thread");
    event_loop loop(options);
    try {
        if constexpr (std::is_void_v<T>) {
            loop.run_until_complete(std::move(main), site);
            loop.close();
        } else {
            T result = loop.run_until_complete(std::move(main), site);
            loop.close();
            return result;  // implicitly moved
        }
    } catch (...) {
        // main threw (or close did): shut down anyway, and let main's error through.
        try {
            loop.close();
        } catch (...) {
            event_loop::default_exception_handler({"error while closing the event loop", std::current_exception(), {}, {}});
        }
        throw;
    }
}

/// asyncio.Runner: several run() calls on one loop, closed at the end of the runner's scope.
///
///   coring::runner r;
///   r.run(connect());        // the tasks it started and left running stay on the loop...
///   r.run(serve());          // ...and go on running while the next run() runs
///   // ~runner: the pending tasks are cancelled and finish their cleanup, then the loop closes
///
/// run(main) runs the loop until `main` finishes and returns its value or rethrows its
/// exception, as run_until_complete. close() (or the destructor) cancels what is still pending,
/// waits for its cleanup and closes the loop; run() after close() throws invalid_state_error, and
/// run() inside a running loop std::logic_error, as asyncio.Runner does.
class runner {
public:
    explicit runner(loop_options options = {}) : m_loop(options) {}
    runner(const runner&) = delete;
    runner& operator=(const runner&) = delete;
    ~runner() {
        try {
            close();
        } catch (...) {
            event_loop::default_exception_handler({"error while closing the runner's event loop", std::current_exception(), {}, {}});
        }
    }

    template <class T>
    T run(task<T> main, source_location site = source_location::current()) {
        if (m_closed) throw invalid_state_error("coring::runner: run() after close()");
        if (detail::t_running_scheduler != nullptr) throw std::logic_error("coring::runner::run() cannot be called while an event loop is running in this thread");
        return m_loop.run_until_complete(std::move(main), site);
    }

    /// Cancels the pending tasks, waits for their cleanup, closes the loop. Idempotent.
    void close() {
        if (m_closed) return;
        m_closed = true;
        m_loop.close();
    }

    /// The runner's loop (asyncio's Runner.get_loop()).
    [[nodiscard]] event_loop& get_loop() noexcept { return m_loop; }

private:
    event_loop m_loop;
    bool m_closed = false;
};

}  // namespace coring
