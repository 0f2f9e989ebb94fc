#pragma once
// coring::clock, the clock of every deadline in coring.
//
// It is std::chrono::steady_clock. A loop on virtual time (loop_options::virtual_time) keeps its
// own reading of the same clock that moves only when the loop jumps to the next timer: read the
// loop's time with event_loop::time(), not clock::now(), when a program may run on virtual time.

#include <algorithm>
#include <chrono>

namespace coring {

using clock = std::chrono::steady_clock;

namespace detail {

/// now + d rounded up to the clock's tick, saturating: a delay too large for the clock (say
/// std::chrono::hours(3'000'000), which overflows nanoseconds) gives time_point::max(), never,
/// instead of wrapping round into the past; a hugely negative one gives time_point::min().
template <class Rep, class Period>
[[nodiscard]] constexpr clock::time_point deadline_after(clock::time_point now, std::chrono::duration<Rep, Period> d) noexcept {
    // Compared in long double seconds, which neither overflow nor round an int64 count of
    // nanoseconds on the platforms io_uring runs on.
    using seconds = std::chrono::duration<long double>;
    const seconds requested = d;
    const seconds since_epoch = now.time_since_epoch();
    const seconds longest = clock::duration::max();
    const seconds shortest = clock::duration::min();
    if (requested >= std::min(longest - since_epoch, longest)) return clock::time_point::max();
    if (requested <= std::max(shortest - since_epoch, shortest)) return clock::time_point::min();
    return now + std::chrono::ceil<clock::duration>(d);
}

}  // namespace detail

}  // namespace coring
