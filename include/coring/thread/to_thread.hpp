#pragma once
// to_thread (asyncio.to_thread): runs a blocking call on the loop's thread pool and yields its
// value, or rethrows its exception, in the awaiting task.
//
//   std::string text = co_await coring::to_thread(slow_parse, std::ref(input), 42);
//
// The callable and its arguments are decay-copied into the awaiter (std::thread's rule: wrap
// in std::ref to pass a reference), which lives in the awaiting frame together with the result:
// no allocation on the way there. The worker hands the result back through
// loop.call_soon_threadsafe, and the task resumes through the ready queue.
//
//   awaiting task ──submit(awaiter)──▶ thread_pool ──worker: f(args...) into the awaiter
//        ▲                                                     │ call_soon_threadsafe
//        └──────────── wake() (ready queue) ◀── loop thread ◀──┘
//
// Cancellation: a thread cannot be stopped (asyncio's to_thread cannot stop it either). A call
// still queued is taken back and the task resumes at once with cancelled_error. A call that is
// running is waited for, because its arguments and result live in the awaiting frame; then the
// task resumes with cancelled_error and the result (or exception) is discarded. A result that
// came back before the cancel request wins: it is returned and the request stays pending for the
// next suspension point.
//
// The loop's close() waits for tasks, so a call that never returns keeps close() waiting.
//
// f runs in a copy of the awaiting task's context (context_var.hpp), as asyncio's to_thread
// runs it in contextvars.copy_context(): it sees the task's variables, and what it sets stays on
// the pool thread and ends with the call.

#include <coring/detail/context_map.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/detail/value_slot.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/thread/thread_pool.hpp>

#include <coroutine>
#include <exception>
#include <functional>
#include <tuple>
#include <type_traits>
#include <utility>

namespace coring {

namespace detail {

template <class R, class F, class... Args>
class to_thread_awaiter final : public leaf_awaiter<ready_node>, private pool_work {
public:
    template <class G, class... A>
    explicit to_thread_awaiter(G&& f, A&&... args)
        : leaf_awaiter(operations_), pool_work(&run_on_worker), m_function(std::forward<G>(f)), m_args(std::forward<A>(args)...) {}
    /// Before it is awaited only (leaf_awaiter's rule).
    to_thread_awaiter(to_thread_awaiter&& other) noexcept(std::is_nothrow_move_constructible_v<F> && (std::is_nothrow_move_constructible_v<Args> && ...))
        : leaf_awaiter(std::move(other)), pool_work(&run_on_worker), m_function(std::move(other.m_function)), m_args(std::move(other.m_args)) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    bool await_suspend(std::coroutine_handle<> frame) {
        if (!begin_suspend(frame)) return false;  // a pending cancel: the call never starts
        m_loop = &get_running_loop();  // the task's loop: it suspends while running
        m_pool = &m_loop->default_executor();
        m_context = context_ref::adopt(capture_context());  // the awaiting task's
        m_pool->submit(*this);
        arm();
        return true;
    }

    R await_resume() {
        throw_if_cancelled();
        if (m_error) std::rethrow_exception(m_error);
        if constexpr (std::is_void_v<R>)
            return;
        else if constexpr (std::is_reference_v<R>)
            return m_value.get();
        else
            return std::move(m_value.get());
    }

private:
    // Worker thread. Nothing here touches the awaiter after call_soon_threadsafe: from then on
    // the loop thread may resume the frame and destroy it.
    static void run_on_worker(pool_work* base) noexcept {
        auto* self = static_cast<to_thread_awaiter*>(base);
        // The pool thread's slot holds the task's context for the call, then what it had.
        const context_slot outside = std::exchange(t_context, context_slot{self->m_context.detach(), 0});
        if (t_context.map != nullptr) t_contexts_used = true;  // so that what the call schedules copies it
        try {
            if constexpr (std::is_void_v<R>) {
                std::apply([&](auto&... args) { std::invoke(std::move(self->m_function), std::move(args)...); }, self->m_args);
                self->m_value.emplace();
            } else {
                self->m_value.emplace(std::apply([&](auto&... args) -> R { return std::invoke(std::move(self->m_function), std::move(args)...); }, self->m_args));
            }
        } catch (...) {
            self->m_error = std::current_exception();
        }
        t_context.clear();
        t_context = outside;
        // The loop cannot be closed meanwhile: close() waits for this task, which waits for us.
        self->m_loop->call_soon_threadsafe([self] { self->on_finished(); });
    }

    // Loop thread.
    void on_finished() noexcept {
        m_finished = true;
        wake();
    }

    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<to_thread_awaiter*>(node);
        if (self->m_finished) return;  // the result is back and the frame queued: the result wins
        self->take_cancel_request();
        self->mark_cancelled();
        if (self->m_pool->try_cancel(*self)) self->wake();  // never started: resume now
        // Otherwise it runs: on_finished wakes the frame, and await_resume throws.
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const to_thread_awaiter*>(node);
        out.what = self->m_finished ? "to_thread (finished, about to resume)" : self->cancelled() ? "to_thread (cancelled, waiting for the call to return)" : "to_thread";
    }

    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::thread};

    F m_function;
    std::tuple<Args...> m_args;
    value_slot<R> m_value;      // written by the worker, read after on_finished
    std::exception_ptr m_error;  // likewise
    event_loop* m_loop = nullptr;
    thread_pool* m_pool = nullptr;
    context_ref m_context;  // the task's, until the worker takes it
    bool m_finished = false;  // loop thread: the result came back
};

}  // namespace detail

/// Runs f(args...) on the loop's thread pool; co_await yields its value or rethrows what it
/// threw. Arguments are copied or moved in (std::ref passes a reference). See the top of this
/// header for what cancellation can and cannot do.
template <class F, class... Args>
[[nodiscard]] auto to_thread(F&& f, Args&&... args) {
    using result = std::invoke_result_t<std::decay_t<F>&&, std::decay_t<Args>&&...>;
    return detail::to_thread_awaiter<result, std::decay_t<F>, std::decay_t<Args>...>(std::forward<F>(f), std::forward<Args>(args)...);
}

}  // namespace coring
