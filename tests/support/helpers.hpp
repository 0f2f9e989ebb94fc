#pragma once
// Shared helpers for coring's tests.

#include <coring/coring.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <vector>

namespace coring_test {

using namespace std::chrono_literals;

/// Frames and task states alive in this thread (coroutine frames, states, pooled callbacks).
inline std::size_t live_frames() { return coring::detail::frame_pool::live_blocks(); }

/// Milliseconds elapsed since `start` on the steady clock.
inline double ms_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
}

/// A loop on virtual time: for tests about the order of events, not about time.
inline constexpr coring::loop_options virtual_clock{.virtual_time = true};

/// Collects the exception handler's reports of a loop.
struct captured_reports {
    std::vector<coring::exception_context> reports;
    void install(coring::event_loop& loop) {
        loop.set_exception_handler([this](coring::event_loop&, const coring::exception_context& c) { reports.push_back(c); });
    }
};

}  // namespace coring_test

namespace coring_test {

/// True if awaiting `awaitable` throws E; any other exception propagates.
///
/// Never write co_await inside a Catch2 macro: g++ 12 evaluates the co_await more than once
/// there. Await into a local (or through this helper) and check the local.
template <class E, class Awaitable>
coring::task<bool> throws(Awaitable awaitable) {
    try {
        co_await std::move(awaitable);
    } catch (const E&) {
        co_return true;
    }
    co_return false;
}

/// How a cancelled task ended: with cancelled_error or not, and how long after cancel().
struct cancel_outcome {
    bool by_cancelled_error;
    double ms_after_cancel;
};

/// Cancels `h` and awaits its end. The tests of operations that block (recv, accept, read,
/// to_thread) check both fields: the cancellation reached the operation, and promptly.
template <class Handle>
coring::task<cancel_outcome> cancel_and_await(Handle h) {
    const auto start = std::chrono::steady_clock::now();
    h.cancel();
    const bool by_cancelled_error = co_await throws<coring::cancelled_error>(h);
    co_return cancel_outcome{by_cancelled_error, ms_since(start)};
}

}  // namespace coring_test
