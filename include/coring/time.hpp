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

#include <coring/clock.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/detail/timer_callback.hpp>
#include <coring/detail/timer_heap.hpp>
#include <coring/event_loop.hpp>

#include <chrono>
#include <coroutine>

namespace coring {

namespace detail {

// Lives in the sleeping frame, so it is kept small: 100,000 sleeping tasks cost what their
// frames and states cost. The deadline is only needed until the timer is set, and the frame
// only after that, so they share storage.
class sleep_awaiter final : public timer_node {
public:
    explicit sleep_awaiter(clock::time_point deadline, bool yield_only) noexcept
        : timer_node(operations_), m_deadline(deadline), m_yield_only(yield_only) {}
    sleep_awaiter(const sleep_awaiter&) = delete;
    sleep_awaiter& operator=(const sleep_awaiter&) = delete;

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    bool await_suspend(std::coroutine_handle<> awaiting) {
        event_loop& loop = get_running_loop();
        m_task = loop.current_task_state();
        if (m_task != nullptr && m_task->take_cancel_request()) {
            m_cancelled = true;
            return false;
        }
        const clock::time_point deadline = m_deadline;
        if (m_yield_only || deadline <= loop.time())
            loop.schedule(*this);
        else
            loop.add_timer(*this, deadline);
        m_frame = awaiting;  // from here on m_deadline is gone
        if (m_task != nullptr) m_task->arm_cancel(*this);
        return true;
    }

    void await_resume() const {
        if (m_cancelled) throw cancelled_error{};
    }

private:
    static void wake(ready_node* node, action what) noexcept {
        auto* self = static_cast<sleep_awaiter*>(static_cast<timer_node*>(node));
        if (what == action::discard) return;
        if (self->m_task != nullptr) self->m_task->disarm_cancel(*self);
        t_running_loop->resume(self->m_task, self->m_frame);
    }

    static void cancel(ready_node* node) noexcept {
        auto* self = static_cast<sleep_awaiter*>(static_cast<timer_node*>(node));
        self->m_task->take_cancel_request();
        self->m_cancelled = true;
        if (self->scheduled()) {
            event_loop& loop = *self->m_task->loop();
            loop.remove_timer(*self);
            loop.schedule(*self);
        }
        // Otherwise it is already on the ready queue and throws when it runs.
    }

    static constexpr operations operations_{&wake, &cancel};

    union {
        clock::time_point m_deadline;      // until await_suspend
        std::coroutine_handle<> m_frame;   // after
    };
    state_base* m_task = nullptr;
    bool m_yield_only;
    bool m_cancelled = false;
};

}  // namespace detail

/// Suspends the calling task until `deadline` on the loop's clock. A deadline that has passed
/// yields once.
[[nodiscard]] inline detail::sleep_awaiter sleep_until(clock::time_point deadline) noexcept {
    return detail::sleep_awaiter(deadline, false);
}

/// Suspends the calling task for `delay` (rounded up to the clock's tick). Zero or negative
/// yields to the loop once.
template <class Rep, class Period>
[[nodiscard]] detail::sleep_awaiter sleep(std::chrono::duration<Rep, Period> delay) {
    if (delay <= delay.zero()) return detail::sleep_awaiter(clock::time_point{}, true);
    return detail::sleep_awaiter(get_running_loop().time() + std::chrono::ceil<clock::duration>(delay), false);
}

}  // namespace coring
