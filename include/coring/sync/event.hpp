#pragma once
// coring::event (asyncio.Event): a flag that tasks wait for.
//
//   coring::event ready;
//   ...  co_await ready.wait();     // suspends until ready.set(), returns at once if it is set
//   ...  ready.set();               // wakes every waiter (on the next loop iteration), FIFO
//
// set() wakes every task that waits at that moment; each resumes on the next loop iteration even
// if clear() is called in between (asyncio's rule). Tasks that call wait() after clear() wait
// for the next set().
//
// Cancellation: a waiter cancelled before or after its wake-up resumes by throwing
// cancelled_error; the wake-up is not consumed, so nobody else loses anything.
//
// Thread-safety: loop-bound. An event serves the tasks of one event loop; between loops use
// coring::channel (thread/channel.hpp). In debug mode, waking its waiters from another thread, or
// waiting on it from a second loop, is reported with both thread ids, and the process aborts (the
// call cannot throw).

#include <coring/detail/wait_queue.hpp>

namespace coring {

class event {
public:
    event() noexcept = default;
    event(const event&) = delete;
    event& operator=(const event&) = delete;
    /// Reports (stderr, and an assertion in debug builds) if tasks still wait on the event.
    ~event() { m_waiters.abandon("coring::event"); }

    /// Awaitable: resumes the caller once the event is set (at once if it is set now).
    [[nodiscard]] detail::flag_awaiter wait() noexcept { return detail::flag_awaiter(m_waiters, m_set, "coring::event", "event.wait"); }

    /// Sets the flag and wakes every waiting task, in the order they started waiting. They
    /// resume on the loop's next iteration. Setting a set event does nothing.
    void set() noexcept {
        if (m_set) return;
        m_set = true;
        m_waiters.grant_all();
    }

    /// Resets the flag; later wait()s suspend until the next set().
    void clear() noexcept { m_set = false; }

    [[nodiscard]] bool is_set() const noexcept { return m_set; }

private:
    detail::wait_queue m_waiters;  // empty while m_set
    bool m_set = false;
};

}  // namespace coring
