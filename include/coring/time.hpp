#pragma once
// sleep, sleep_until (asyncio.sleep), the clock, and timer_handle (from call_later / call_at).
//
//   co_await coring::sleep(100ms);
//   co_await coring::sleep_until(loop.time() + 1s);
//   co_await coring::sleep(0s);      // yields to the loop once, as asyncio.sleep(0) does
//
// Timers live in the loop's user-space heap: a sleep costs no system call and no allocation
// (the timer node lives in the awaiting frame), and the loop waits in the kernel only until the
// nearest deadline. Cancelling a sleeping task removes its timer and resumes it with
// cancelled_error; a cancel that arrives after the timer fired but before the task resumed
// still wins (the sleep throws), since no result is lost by it.
//
// Thread-safety: sleeps and timers are loop-bound: awaited by a task on its own loop, they wake on
// that loop.

#include <coring/clock.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/detail/timer_callback.hpp>
#include <coring/detail/timer_heap.hpp>
#include <coring/event_loop.hpp>

#include <chrono>
#include <coroutine>

namespace coring {

namespace detail {

// Lives in the sleeping frame, so it is kept small: 100,000 sleeping tasks cost what their
// frames and states cost. The deadline waits in the base's scratch word until the timer is set.
class sleep_awaiter final : public leaf_awaiter<timer_node> {
public:
    explicit sleep_awaiter(clock::time_point deadline, bool yield_only) noexcept
        : leaf_awaiter(operations_), m_yield_only(yield_only) {
        m_scratch = deadline.time_since_epoch().count();
    }

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    bool await_suspend(std::coroutine_handle<> frame) {
        const clock::time_point deadline{clock::duration(m_scratch)};
        if (!begin_suspend(frame)) return false;
        scheduler& loop = this->loop();
        if (m_yield_only || deadline <= loop.time())
            loop.schedule(*this);
        else
            loop.add_timer(*this, deadline);
        arm();
        return true;
    }

    void await_resume() const { throw_if_cancelled(); }

private:
    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<sleep_awaiter*>(static_cast<timer_node*>(node));
        self->take_cancel_request();
        self->mark_cancelled();
        if (self->scheduled()) {
            self->loop().remove_timer(*self);
            self->wake();
        }
        // Otherwise the timer fired and the frame is queued to resume: it throws when it runs.
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const sleep_awaiter*>(static_cast<const timer_node*>(node));
        if (!self->scheduled()) {
            out.what = self->m_yield_only ? "sleep(0)" : "sleep (expired, about to resume)";
            return;
        }
        const scheduler& loop = self->loop();
        out.what = "sleep until " + format_offset(loop.timer_deadline(*self) - loop.time());
    }

    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::timer};

    bool m_yield_only;
};

}  // namespace detail

/// Suspends the calling task until `deadline` on the loop's clock. A deadline that has passed
/// yields once.
[[nodiscard]] inline detail::sleep_awaiter sleep_until(clock::time_point deadline) noexcept {
    return detail::sleep_awaiter(deadline, false);
}

/// Suspends the calling task for `delay` (rounded up to the clock's tick; a delay too long for
/// the clock sleeps until cancelled). Zero or negative yields to the loop once.
template <class Rep, class Period>
[[nodiscard]] detail::sleep_awaiter sleep(std::chrono::duration<Rep, Period> delay) {
    if (delay <= delay.zero()) return detail::sleep_awaiter(clock::time_point{}, true);
    return detail::sleep_awaiter(detail::deadline_after(get_running_loop().time(), delay), false);
}

}  // namespace coring
