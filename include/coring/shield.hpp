#pragma once
// shield (asyncio.shield): await a task without passing a cancellation on to it.
//
//   auto h = coring::create_task(save_to_disk(data));
//   co_await coring::shield(h);     // cancelling this task leaves save_to_disk running
//
// Awaiting a task_handle normally forwards a cancel of the awaiting task to the awaited one
// (asyncio's rule). Through shield, the awaiting task is cancelled alone: it stops waiting and
// gets cancelled_error; the shielded task goes on, owned by the loop, and can be awaited again.
// shield takes a handle (or a future), not a task<T>: create the task first, so that it is clear
// who owns it after the waiter gives up.
//
// Thread-safety: awaited by a task on its own loop; every task, handle and awaitable given to it
// must belong to that loop (work for another loop goes through run_on, thread/run_on.hpp).

#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/state.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task_handle.hpp>

#include <coroutine>
#include <type_traits>
#include <utility>

namespace coring {
namespace detail {

template <class Handle>
class shield_awaiter final : public leaf_awaiter<completion_waiter> {
public:
    explicit shield_awaiter(Handle handle) : leaf_awaiter(operations_), m_handle(std::move(handle)) {
        if (!m_handle) throw invalid_state_error("coring::shield: an empty task handle");
    }
    shield_awaiter(shield_awaiter&& other) noexcept : leaf_awaiter(std::move(other)), m_handle(std::move(other.m_handle)) {}

    [[nodiscard]] bool await_ready() const noexcept { return state().done(); }

    // The same checks as awaiting the handle itself (detail::handle_awaiter): waiting on a closed
    // loop's task, or on the awaiting task, would never end.
    bool await_suspend(std::coroutine_handle<> frame) {
        if (state().loop() == nullptr) throw invalid_state_error("coring::shield: awaiting " + state().name() + ", whose event loop is closed");
        if (&state() == detail::running_scheduler().current_task_state()) throw invalid_state_error("coring::shield: " + state().name() + " awaits itself");
        if (!begin_suspend(frame)) return false;
        state().add_waiter(*this);
        arm();
        return true;
    }

    decltype(auto) await_resume() {
        throw_if_cancelled();
        return m_handle.result();
    }

private:
    [[nodiscard]] state_base& state() const noexcept { return *m_handle.native_state(); }

    // Stop waiting; never touch the shielded task.
    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<shield_awaiter*>(static_cast<completion_waiter*>(node));
        if (self->state().done()) return;  // it finished first: the request waits for the next suspension
        self->take_cancel_request();
        self->state().remove_waiter(*self);
        self->mark_cancelled();
        self->wake();
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const shield_awaiter*>(static_cast<const completion_waiter*>(node));
        out.what = "shield(" + self->state().name() + ")";
        out.awaits.push_back(&self->state());
    }

    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::task};

    Handle m_handle;
};

}  // namespace detail

/// Awaits `handle` (task_handle<T> or future<T>) without forwarding a cancellation to it.
template <class Handle>
[[nodiscard]] detail::shield_awaiter<std::remove_cvref_t<Handle>> shield(Handle&& handle) {
    return detail::shield_awaiter<std::remove_cvref_t<Handle>>(std::forward<Handle>(handle));
}

}  // namespace coring
