#pragma once
// coring::run (asyncio.run): a new loop runs `main` to completion, then shuts down.
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

}  // namespace coring
