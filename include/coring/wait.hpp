#pragma once
// wait (asyncio.wait): wait for a set of tasks until a condition holds, without taking them over.
//
//   auto [done, pending] = co_await coring::wait(handles, coring::return_when::first_completed, 2s);
//
// return_when::first_completed: as soon as one has finished; first_exception: as soon as one
// has finished by throwing (a cancellation does not count), or all have finished;
// all_completed (the default): when all have finished. With a timeout, wait returns what has
// finished when it passes; it never raises timeout_error and never cancels what is pending (the
// tasks belong to the loop and to you). An empty set is a std::invalid_argument, as asyncio's
// ValueError. Cancelling the waiting task stops the wait (cancelled_error) and leaves the tasks
// running, as in asyncio.
//
// Thread-safety: awaited by a task on its own loop; every task, handle and awaitable given to it
// must belong to that loop (work for another loop goes through run_on, thread/run_on.hpp).

#include <coring/clock.hpp>
#include <coring/detail/combinator.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task_handle.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace coring {

enum class return_when { first_completed, first_exception, all_completed };

/// What wait() yields: the handles that finished and those still running, each in input order,
/// each task once (asyncio returns sets: a task given twice appears once).
template <class Handle>
struct wait_result {
    std::vector<Handle> done;
    std::vector<Handle> pending;
};

namespace detail {

template <class Handle>
class wait_awaiter final : public deadline_leaf<wait_awaiter<Handle>> {
    using base = deadline_leaf<wait_awaiter<Handle>>;
    friend base;
    friend class child_notifier<wait_awaiter>;

public:
    wait_awaiter(std::vector<Handle> handles, return_when when, std::optional<clock::time_point> deadline)
        : base(operations_), m_handles(distinct_tasks(std::move(handles), "coring::wait")), m_when(when), m_deadline(deadline) {
        if (m_handles.empty()) throw std::invalid_argument("coring::wait: the set of tasks to wait for is empty");
    }
    wait_awaiter(wait_awaiter&& other) noexcept
        : base(std::move(other)), m_handles(std::move(other.m_handles)), m_when(other.m_when), m_deadline(other.m_deadline) {}
    ~wait_awaiter() { stop_listening(); }

    [[nodiscard]] bool await_ready() const noexcept { return condition_met(); }

    bool await_suspend(std::coroutine_handle<> frame) {
        if (!this->begin_suspend(frame)) return false;  // owns nothing: a pending cancel just throws
        if (m_deadline && *m_deadline <= this->loop().time()) {
            stop_listening();  // the timeout already passed: return what is done, registering nothing
            return false;
        }
        // await_ready found the condition unmet, and nothing finished since (this task runs):
        // from here on, each finishing child alone decides.
        m_notifiers.resize(m_handles.size());
        for (std::size_t i = 0; i < m_handles.size(); ++i) {
            m_notifiers[i].bind(this, i);
            if (!state(i).done()) {
                state(i).add_waiter(m_notifiers[i]);
                ++m_unfinished;
            }
        }
        if (m_deadline) this->start_deadline(*m_deadline);
        this->arm();
        return true;
    }

    wait_result<Handle> await_resume() {
        this->throw_if_cancelled();
        wait_result<Handle> r;
        for (Handle& h : m_handles) (h.done() ? r.done : r.pending).push_back(std::move(h));
        return r;
    }

private:
    [[nodiscard]] state_base& state(std::size_t i) const noexcept { return *m_handles[i].native_state(); }

    [[nodiscard]] bool condition_met() const noexcept {
        bool all = true;
        for (std::size_t i = 0; i < m_handles.size(); ++i) {
            const state_base& s = state(i);
            if (!s.done()) {
                all = false;
                continue;
            }
            if (m_when == return_when::first_completed) return true;
            if (m_when == return_when::first_exception && s.failed() && !s.cancelled()) return true;
        }
        return all;
    }

    void stop_listening() noexcept {
        if (m_listening_stopped) return;
        m_listening_stopped = true;
        for (std::size_t i = 0; i < m_notifiers.size(); ++i) state(i).remove_waiter(m_notifiers[i]);
    }

    [[nodiscard]] bool finished() const noexcept { return m_listening_stopped; }

    // O(1): decided from the child that finished and the count of those still running.
    void on_child_finished(std::size_t i) noexcept {
        if (m_listening_stopped) return;
        const bool last = --m_unfinished == 0;
        bool met = last;
        if (m_when == return_when::first_completed) {
            met = true;
        } else if (m_when == return_when::first_exception) {
            const state_base& s = state(i);
            met = last || (s.failed() && !s.cancelled());
        }
        if (!met) return;
        stop_listening();
        this->wake_now();
    }

    void on_deadline() noexcept {  // the timeout passed: return what is done
        stop_listening();
        this->wake_now();
    }

    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<wait_awaiter*>(static_cast<timer_node*>(node));
        if (self->m_listening_stopped) return;  // finished first: the request waits for the next suspension
        self->take_cancel_request();
        self->mark_cancelled();
        self->stop_listening();
        self->wake_now();
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const wait_awaiter*>(static_cast<const timer_node*>(node));
        const char* when = self->m_when == return_when::first_completed  ? "first_completed"
                           : self->m_when == return_when::first_exception ? "first_exception"
                                                                          : "all_completed";
        out.what = std::string("wait(") + when + ") of " + std::to_string(self->m_handles.size());
        for (std::size_t i = 0; i < self->m_handles.size(); ++i)
            if (!self->state(i).done()) out.awaits.push_back(&self->state(i));
    }

    static constexpr ready_node::operations operations_{&base::on_ready, &on_cancel, false, &describe, ::coring::detail::wait_kind::task};

    std::vector<Handle> m_handles;
    std::vector<child_notifier<wait_awaiter>> m_notifiers;
    return_when m_when;
    std::optional<clock::time_point> m_deadline;
    std::size_t m_unfinished = 0;  // children with a notifier registered that have not finished
    bool m_listening_stopped = false;
};

}  // namespace detail

/// Waits until `when` holds for `handles` (task_handle<T>, future<T> or any_task_handle).
template <class Handle>
[[nodiscard]] detail::wait_awaiter<Handle> wait(std::vector<Handle> handles, return_when when = return_when::all_completed) {
    return detail::wait_awaiter<Handle>(std::move(handles), when, std::nullopt);
}

/// The same, returning whatever holds once `timeout` has passed (never throws timeout_error).
template <class Handle, class Rep, class Period>
[[nodiscard]] detail::wait_awaiter<Handle> wait(std::vector<Handle> handles, return_when when, std::chrono::duration<Rep, Period> timeout) {
    return detail::wait_awaiter<Handle>(std::move(handles), when, detail::deadline_after(timeout));
}

}  // namespace coring
