#pragma once
// Child coroutines for the tests of combinators and task handles (gather, wait, wait_for,
// as_completed, shield, task_group, task_handle): each ends a known way at a known time, so a
// test can tell from the result and the elapsed time which child the combinator waited for.

#include <coring/coring.hpp>

#include <chrono>

namespace coring_test {

/// Sleeps `d`, then returns `v`.
inline coring::task<int> value_after(std::chrono::milliseconds d, int v) {
    co_await coring::sleep(d);
    co_return v;
}

/// Sleeps `d`, then throws an E made of `args`. The exception is made here, not passed in:
/// callers often write this call inside a co_await expression, where g++ 12 mishandles
/// temporaries that have destructors.
template <class E, class... Args>
coring::task<int> throws_after(std::chrono::milliseconds d, Args... args) {
    co_await coring::sleep(d);
    throw E(args...);
}

/// Never ends by itself: only cancellation stops it.
inline coring::task<> forever() {
    for (;;) co_await coring::sleep(std::chrono::hours(1));
}

}  // namespace coring_test
