#pragma once
// with_timeout and with_timeout_at: asyncio's `async with asyncio.timeout(d) as cm:` block.
//
//   int n = co_await coring::with_timeout(2s, [&](coring::timeout_scope& cm) -> coring::task<int> {
//       auto header = co_await reader.readline();
//       cm.reschedule(coring::get_running_loop().time() + 10s);  // the body may move its deadline
//       co_return co_await read_body(reader, header);
//   });   // past the deadline: timeout_error
//
// The body runs in the awaiting task itself (current_task() inside it is the caller's), as an
// `async with` block does. At the deadline the scope cancels that task, so the body's current
// await throws cancelled_error; when the body then ends with that cancellation, the scope
// withdraws its request (uncancel) and throws timeout_error instead. As asyncio (3.11+):
// - a body that catches the cancellation and returns normally returns its value (expired() is
//   true);
// - any other error of the body passes through unchanged;
// - a cancel from outside, or an outer scope's expiry, is never turned into this scope's
//   timeout: the cancel counts (task_handle::cancelling) tell them apart, so a scope converts
//   only when its own request was the last one left;
// - reschedule(clock::time_point::max()) (and a duration of nanoseconds::max()) means no
//   deadline; a deadline in the past expires on the next loop iteration; reschedule after the
//   expiry throws invalid_state_error.
// The body is a callable taking timeout_scope& and returning task<T>, called once; its result
// is with_timeout's. (g++ 12: a lambda written inside the co_await expression must capture by
// reference only, [&]; name a lambda that captures by value before the co_await.)
//
// Thread-safety: awaited by a task on its own loop; every task, handle and awaitable given to it
// must belong to that loop (work for another loop goes through run_on, thread/run_on.hpp).

#include <coring/clock.hpp>
#include <coring/detail/block_body.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>

namespace coring {

template <class Body>
auto with_timeout_at(clock::time_point when, Body body);

/// The deadline of one with_timeout block (asyncio's Timeout object).
class timeout_scope {
public:
    timeout_scope(const timeout_scope&) = delete;
    timeout_scope& operator=(const timeout_scope&) = delete;
    ~timeout_scope() { m_timer.cancel(); }

    /// The deadline; clock::time_point::max() when there is none.
    [[nodiscard]] clock::time_point when() const noexcept { return m_when; }

    /// Moves the deadline (max(): none). Throws invalid_state_error once the deadline has passed
    /// or the block has ended.
    void reschedule(clock::time_point when) {
        if (m_phase != phase::entered)
            throw invalid_state_error(m_phase == phase::exited ? "coring::timeout_scope: reschedule after the block ended"
                                                               : "coring::timeout_scope: reschedule after the deadline passed");
        m_timer.cancel();
        m_timer = timer_handle();
        m_when = when;
        if (when != clock::time_point::max()) m_timer = m_loop->call_at(when, [this] { expire(); });
    }

    /// True once the deadline has passed (whether or not the body then ended by it).
    [[nodiscard]] bool expired() const noexcept { return m_phase == phase::expiring || m_phase == phase::expired; }

private:
    template <class Body>
    friend auto with_timeout_at(clock::time_point when, Body body);

    enum class phase : std::uint8_t { entered, expiring, expired, exited };

    timeout_scope(event_loop& loop, detail::state_base& task, clock::time_point when)
        : m_loop(&loop), m_task(&task), m_cancelling_at_entry(task.cancelling()) {
        reschedule(when);
    }

    void expire() noexcept {
        m_phase = phase::expiring;
        m_task->request_cancel();
    }

    /// The block ended with `error` (null: normally). Throws timeout_error when the body ended
    /// with the cancellation this scope requested and nobody else's is left.
    void exit(const std::exception_ptr& error) {
        m_timer.cancel();
        if (m_phase != phase::expiring) {
            m_phase = phase::exited;
            return;
        }
        m_phase = phase::expired;
        if (m_task->uncancel() <= m_cancelling_at_entry && detail::is_cancellation(error))
            throw timeout_error("coring::with_timeout: the deadline passed");
    }

    event_loop* m_loop;
    detail::state_base* m_task;
    timer_handle m_timer;
    clock::time_point m_when = clock::time_point::max();
    std::uint32_t m_cancelling_at_entry;
    phase m_phase = phase::entered;
};

/// Runs `body(scope)` in the awaiting task with the deadline `when` (asyncio.timeout_at).
template <class Body>
auto with_timeout_at(clock::time_point when, Body body) {
    using T = detail::body_result_t<Body, timeout_scope>;
    return [](clock::time_point deadline, Body b) -> task<T> {
        event_loop& loop = get_running_loop();
        timeout_scope scope(loop, detail::running_task_state("with_timeout"), deadline);
        std::exception_ptr error;
        if constexpr (std::is_void_v<T>) {
            try {
                co_await b(scope);
            } catch (...) {
                error = std::current_exception();
            }
            scope.exit(error);
            if (error) std::rethrow_exception(error);
        } else {
            std::optional<T> value;
            try {
                value.emplace(co_await b(scope));
            } catch (...) {
                error = std::current_exception();
            }
            scope.exit(error);
            if (error) std::rethrow_exception(error);
            co_return std::move(*value);
        }
    }(when, std::move(body));
}

/// Runs `body(scope)` in the awaiting task with a deadline `delay` from now (asyncio.timeout);
/// nanoseconds::max() (or any delay past the clock's range): no deadline.
template <class Rep, class Period, class Body>
auto with_timeout(std::chrono::duration<Rep, Period> delay, Body body) {
    const clock::time_point now = get_running_loop().time();
    // Compared in floating point: converting hours::max() to the clock's nanoseconds overflows.
    const bool past_the_range = std::chrono::duration<double>(delay) >= std::chrono::duration<double>(clock::time_point::max() - now);
    const clock::time_point when =
        past_the_range ? clock::time_point::max() : now + std::chrono::duration_cast<clock::duration>(std::max(delay, decltype(delay)::zero()));
    return with_timeout_at(when, std::move(body));
}

}  // namespace coring
