#pragma once
// stack_span: how far apart on the stack waiters ran once resumed, for the "[stack]" tests.
// Hand-offs that resumed the next waiter inline would nest one call inside the other, and
// spread these points over megabytes (or overflow the stack); resumed from the loop's ready
// queue, every waiter runs at about the same depth.

#include <algorithm>
#include <cstdint>

namespace coring_test {

/// Where on the stack the caller runs: the address of this function's frame. Not inlined, so
/// that it is a real call at the caller's depth.
[[gnu::noinline]] inline std::uintptr_t stack_position() noexcept { return reinterpret_cast<std::uintptr_t>(__builtin_frame_address(0)); }

struct stack_span {
    /// Far more than a few loop iterations' frames, far less than 100,000 nested hand-offs.
    static constexpr std::uintptr_t flat_limit = 64 * 1024;

    std::uintptr_t lowest = UINTPTR_MAX;
    std::uintptr_t highest = 0;

    /// Records the caller's depth; call it in each waiter right after it resumed.
    void note() noexcept {
        const std::uintptr_t here = stack_position();
        lowest = std::min(lowest, here);
        highest = std::max(highest, here);
    }
    [[nodiscard]] std::uintptr_t bytes() const noexcept { return highest >= lowest ? highest - lowest : 0; }
};

}  // namespace coring_test
