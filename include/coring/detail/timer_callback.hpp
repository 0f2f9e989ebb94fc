#pragma once
// Callbacks scheduled with call_later / call_at, and the timer_handle that can cancel them.
//
// A timer_callback is shared by the loop (while it is scheduled or queued to run) and by every
// timer_handle copy; it is freed when the last of them lets go. Dropping every handle does not
// cancel the callback (asyncio's TimerHandle behaves the same). The callback runs in the
// context its creator had (context_var.hpp).

#include <coring/clock.hpp>
#include <coring/detail/context_map.hpp>
#include <coring/detail/frame_pool.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/timer_heap.hpp>

#include <cstdint>
#include <utility>

namespace coring {
class event_loop;
class timer_handle;

namespace detail {

class timer_callback_base : public timer_node {
public:
    timer_callback_base(const timer_callback_base&) = delete;
    timer_callback_base& operator=(const timer_callback_base&) = delete;

    static void* operator new(std::size_t size) { return frame_pool::allocate(size); }
    static void operator delete(void* block, std::size_t size) noexcept { frame_pool::deallocate(block, size); }

    void add_ref() noexcept { ++m_refs; }
    void release() noexcept {
        if (--m_refs == 0) delete this;
    }

protected:
    timer_callback_base(scheduler& loop, clock::time_point when, context_map* context) noexcept
        : timer_node(operations_), m_loop(&loop), m_when(when), m_context(context_ref::adopt(context)) {}
    virtual ~timer_callback_base() = default;
    virtual void invoke() = 0;

private:
    void operator()() { invoke(); }  // run by scheduler::run_callback

    static void fire(ready_node* node, action what) noexcept {
        auto* self = static_cast<timer_callback_base*>(node);
        if (what == action::run && !self->m_cancelled) self->m_loop->run_callback(*self, self->m_context.detach());
        self->m_finished = true;
        self->release();  // the loop's reference
    }
    static constexpr operations operations_{&fire};

    scheduler* m_loop;
    clock::time_point m_when;
    context_ref m_context;     // the creator's (adopted); handed to run_callback when it runs
    std::uint32_t m_refs = 1;  // the loop's reference
    bool m_cancelled = false;
    bool m_finished = false;  // ran, or was dropped when the loop closed

    friend class coring::timer_handle;
    friend class scheduler;  // run_callback calls it
};

template <class F>
class timer_callback final : public timer_callback_base {
public:
    template <class G>
    timer_callback(scheduler& loop, clock::time_point when, context_map* context, G&& function)
        : timer_callback_base(loop, when, context), m_function(std::forward<G>(function)) {}

private:
    void invoke() override { m_function(); }
    F m_function;
};

}  // namespace detail

/// Returned by call_later / call_at. Copies refer to the same scheduled callback.
class timer_handle {
public:
    timer_handle() noexcept = default;
    explicit timer_handle(detail::timer_callback_base* timer) noexcept : m_timer(timer) {
        if (m_timer != nullptr) m_timer->add_ref();
    }
    timer_handle(const timer_handle& other) noexcept : timer_handle(other.m_timer) {}
    timer_handle(timer_handle&& other) noexcept : m_timer(std::exchange(other.m_timer, nullptr)) {}
    timer_handle& operator=(timer_handle other) noexcept {
        std::swap(m_timer, other.m_timer);
        return *this;
    }
    ~timer_handle() {
        if (m_timer != nullptr) m_timer->release();
    }

    /// Stops the callback from running. No effect once it has run.
    void cancel() noexcept {
        if (m_timer == nullptr || m_timer->m_cancelled || m_timer->m_finished) return;
        m_timer->m_cancelled = true;
        if (m_timer->scheduled()) {
            // Still in the heap: take it out now. (Expired and queued: fire() skips it.)
            m_timer->m_loop->remove_timer(*m_timer);
            m_timer->m_finished = true;
            m_timer->release();
        }
    }
    [[nodiscard]] bool cancelled() const noexcept { return m_timer != nullptr && m_timer->m_cancelled; }
    /// The time the callback is (or was) due, on the loop's clock.
    [[nodiscard]] clock::time_point when() const noexcept { return m_timer ? m_timer->m_when : clock::time_point{}; }
    [[nodiscard]] explicit operator bool() const noexcept { return m_timer != nullptr; }

private:
    detail::timer_callback_base* m_timer = nullptr;
};

}  // namespace coring
