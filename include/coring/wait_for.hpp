#pragma once
// wait_for and timeout_at (asyncio.wait_for, asyncio.timeout_at).
//
//   std::string page = co_await coring::wait_for(fetch(url), 5s);
//   auto item = co_await coring::timeout_at(deadline, queue.get());
//
// The awaitable runs as a child: a task<T> (moved in) becomes a created task, a task_handle or
// future is waited on, and any other awaitable (queue.get(), an I/O operation, ...) is moved
// into a created task. When the deadline passes first, the child is cancelled and awaited
// until it has finished its cleanup (C++ lifetimes: it may refer to the caller's locals), and
// then timeout_error is thrown. Exactly as asyncio:
//   - a child that swallows the cancellation and returns a value: that value is returned;
//   - a cancel of the awaiting task is forwarded to the child and comes out as cancelled_error,
//     never as timeout_error, even if the deadline passed too;
//   - nested timeouts: only the one that expired raises timeout_error (the inner one sees its
//     child cancelled from outside and lets cancelled_error through);
//   - an awaitable that already finished is returned at once, even with a zero timeout;
//   - a zero or negative timeout on something unfinished cancels it and raises timeout_error
//     (a task<T> or awaitable given to wait_for then never starts);
//   - a cancel of the awaiting task reaches a task<T> or awaitable given to wait_for even
//     before its first step: it starts, and gets cancelled_error at its first suspension point
//     (asyncio 3.12 runs the coroutine inside the waiting task, so it has always started).
// Like asyncio.wait_for on a Task, a task_handle that times out is cancelled (use shield() to
// protect it). The child is a separate task, so current_task() inside it is the child's.
//
// Thread-safety: awaited by a task on its own loop; every task, handle and awaitable given to it
// must belong to that loop (work for another loop goes through run_on, thread/run_on.hpp).

#include <coring/clock.hpp>
#include <coring/detail/combinator.hpp>
#include <coring/detail/source_location.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>

#include <chrono>
#include <coroutine>
#include <optional>
#include <utility>

namespace coring {
namespace detail {

template <class T>
class timed_await final : public deadline_leaf<timed_await<T>> {
    using base = deadline_leaf<timed_await<T>>;
    friend base;
    friend class child_notifier<timed_await>;

public:
    timed_await(child<T> awaited, std::optional<clock::time_point> deadline) noexcept
        : base(operations_), m_child(std::move(awaited)), m_deadline(deadline), m_notifier(this, 0) {}
    timed_await(timed_await&& other) noexcept
        : base(std::move(other)), m_child(std::move(other.m_child)), m_deadline(other.m_deadline), m_notifier(this, 0) {}
    ~timed_await() {
        if (m_child) m_child->remove_waiter(m_notifier);  // destroyed without being awaited (or moved from)
    }

    [[nodiscard]] bool await_ready() const noexcept { return m_child->done(); }

    // Always suspends: the child is unfinished (await_ready), and once the notifier is
    // registered the child's end is what resumes this awaiter, even when forwarding a cancel
    // finishes it at once (a future).
    void await_suspend(std::coroutine_handle<> frame) {
        const bool cancel_pending = !this->begin_suspend(frame);
        m_child->add_waiter(m_notifier);
        if (cancel_pending) {
            m_outer_cancelled = true;  // delivered here: forward it and wait for the child
            forward_outer_cancel();
        } else if (m_deadline) {
            if (*m_deadline <= this->loop().time())
                on_deadline();
            else
                this->start_deadline(*m_deadline);
        }
        this->arm();
    }

    T await_resume() {
        if (m_child->cancelled()) {
            if (m_timed_out && !m_outer_cancelled) throw timeout_error();
            this->throw_cancelled();
        }
        return m_child.take();  // the value (also after a timeout the child swallowed) or its exception
    }

private:
    [[nodiscard]] bool finished() const noexcept { return m_child->done(); }

    void on_deadline() noexcept {
        if (m_child->done()) return;
        m_timed_out = true;
        m_child->request_cancel();
    }

    void on_child_finished(std::size_t) noexcept { this->wake_now(); }

    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<timed_await*>(static_cast<timer_node*>(node));
        if (self->m_child->done()) return;  // finished first: the request waits for the next suspension
        self->take_cancel_request();
        self->m_outer_cancelled = true;
        self->arm();  // a second cancel is forwarded too
        self->forward_outer_cancel();
    }

    // asyncio 3.12 runs wait_for's coroutine inside the waiting task, so a cancel of that task
    // reaches a coroutine that has already started: a child created here starts even when the
    // cancel comes first, and gets it at its first suspension point. (A timeout that passed
    // before it started cancels it unstarted, as asyncio's wait_for(coro, 0) never starts it.)
    void forward_outer_cancel() noexcept {
        if (m_child.owned()) m_child->start_even_if_cancelled();
        m_child->request_cancel();
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const timed_await*>(static_cast<const timer_node*>(node));
        out.what = "wait_for " + self->m_child->name();
        if (self->m_timed_out)
            out.what += " (timed out, cancelling it)";
        else if (self->m_deadline)
            out.what += " until " + format_offset(*self->m_deadline - self->loop().time());
        out.awaits.push_back(&self->m_child.get());
    }

    static constexpr ready_node::operations operations_{&base::on_ready, &on_cancel, false, &describe, ::coring::detail::wait_kind::task};

    child<T> m_child;
    std::optional<clock::time_point> m_deadline;
    child_notifier<timed_await> m_notifier;
    bool m_timed_out = false;
    bool m_outer_cancelled = false;
};

}  // namespace detail

/// Awaits `awaitable` for at most `timeout`; see the header comment for every edge case.
template <class Awaitable, class Rep, class Period>
[[nodiscard]] detail::timed_await<detail::child_t<Awaitable>> wait_for(Awaitable&& awaitable, std::chrono::duration<Rep, Period> timeout,
                                                                      source_location site = source_location::current()) {
    auto deadline = detail::deadline_after(timeout);
    return detail::timed_await<detail::child_t<Awaitable>>(detail::adopt(std::forward<Awaitable>(awaitable), site), deadline);
}

/// Awaits `awaitable` until `deadline` on the loop's clock; see the header comment.
template <class Awaitable>
[[nodiscard]] detail::timed_await<detail::child_t<Awaitable>> timeout_at(clock::time_point deadline, Awaitable&& awaitable,
                                                                        source_location site = source_location::current()) {
    return detail::timed_await<detail::child_t<Awaitable>>(detail::adopt(std::forward<Awaitable>(awaitable), site), deadline);
}

}  // namespace coring
