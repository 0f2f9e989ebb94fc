#pragma once
// task<T>: a lazy coroutine that produces a T (asyncio's `async def f() -> T`).
//
//   coring::task<int> answer() { co_await coring::sleep(1ms); co_return 42; }
//   coring::task<> main_task() { int v = co_await answer(); }
//
// - Lazy: the body starts when the task is awaited or handed to create_task.
// - Move-only; awaiting it once yields the T or rethrows what the body threw. Awaiting it a
//   second time throws invalid_state_error.
// - Frames come from a per-thread size-class pool (detail/frame_pool.hpp).
//
// Awaiting does not grow the stack, whatever the compiler does with symmetric transfer
// (g++ 12 does not turn it into a tail call at -O0 or under ASan, GCC PR 100897):
//
//   parent: co_await child  ──▶ task_awaiter::await_suspend resumes the child itself
//     child finishes without suspending: its final awaiter sees no continuation and returns
//       to the awaiter, which returns false: the parent goes on without ever suspending, so a
//       loop of a million such awaits runs at constant stack depth;
//     child suspends first: the awaiter records the parent as the continuation; when the loop
//       later resumes the child and it finishes, the final awaiter transfers to the parent. The
//       stack then holds at most one frame per level of nesting, never one per iteration.
//
// A task that is the body of create_task (a "root") finishes differently: its final awaiter
// hands the result to the task's shared state and destroys the frame.
//
// Thread-safety: a task<T> belongs to the thread that created it (its frame comes from that
// thread's pool, detail/frame_pool.hpp) and runs on that thread's loop. To run work on another
// loop, let that loop create the task: run_on(loop, make_task) calls make_task there.

#include <coring/config.hpp>
#include <coring/detail/frame_pool.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/detail/task_outcome.hpp>
#include <coring/errors.hpp>

#include <concepts>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <type_traits>
#include <utility>

namespace coring {

template <class T = void>
class task;

namespace detail {

class promise_base {
public:
    struct final_awaiter {
        [[nodiscard]] bool await_ready() const noexcept { return false; }

        template <class Promise>
        std::coroutine_handle<> await_suspend(std::coroutine_handle<Promise> frame) noexcept {
            const std::uintptr_t next = frame.promise().m_next;
            if (next == 0) return std::noop_coroutine();  // finished inline: back to task_awaiter::await_suspend
            if ((next & root_tag) == 0) return std::coroutine_handle<>::from_address(reinterpret_cast<void*>(next));
            finish_root(reinterpret_cast<state_base*>(next & ~root_tag), frame);  // destroys the frame
            return std::noop_coroutine();
        }

        void await_resume() const noexcept {}
    };

    [[nodiscard]] std::suspend_always initial_suspend() const noexcept { return {}; }
    [[nodiscard]] final_awaiter final_suspend() const noexcept { return {}; }

    // Out of line on purpose: inlined (the compiler devirtualizes it) it would give every task's
    // resume function a stack frame, and the inline-completion path is the hot one.
    static CORING_NOINLINE void finish_root(state_base* root, std::coroutine_handle<> frame) noexcept { root->finish_root(frame); }

    static void* operator new(std::size_t size) { return frame_pool::allocate(size); }
    static void operator delete(void* block, std::size_t size) noexcept { frame_pool::deallocate(block, size); }

    /// Awaited task: resume `awaiting` when finished (set only once the task has suspended).
    void set_continuation(std::coroutine_handle<> awaiting) noexcept { m_next = reinterpret_cast<std::uintptr_t>(awaiting.address()); }
    /// Body of create_task: hand the outcome to `root` when finished.
    void set_root(state_base* root) noexcept { m_next = reinterpret_cast<std::uintptr_t>(root) | root_tag; }

private:
    static constexpr std::uintptr_t root_tag = 1;  // frames and states are at least 8-byte aligned
    // What happens at the final suspend point, in one word to keep frames small: 0 while the
    // task runs inline (its awaiter is still on the stack), the awaiting coroutine's address,
    // or the address of the create_task state whose body this is, tagged with root_tag.
    std::uintptr_t m_next = 0;
};

template <class T>
class task_promise final : public promise_base {
public:
    task<T> get_return_object() noexcept;
    void unhandled_exception() noexcept { m_outcome.set_error(std::current_exception()); }

    template <class U = T>
        requires std::constructible_from<T, U&&>
    void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
        m_outcome.set_value(std::forward<U>(value));
    }

    T take_result() { return m_outcome.take(); }
    task_outcome<T> m_outcome;
};

template <class T>
class task_promise<T&> final : public promise_base {
public:
    task<T&> get_return_object() noexcept;
    void unhandled_exception() noexcept { m_outcome.set_error(std::current_exception()); }
    void return_value(T& value) noexcept { m_outcome.set_value(value); }
    T& take_result() { return m_outcome.take(); }
    task_outcome<T&> m_outcome;
};

template <>
class task_promise<void> final : public promise_base {
public:
    task<void> get_return_object() noexcept;
    void unhandled_exception() noexcept { m_outcome.set_error(std::current_exception()); }
    void return_void() noexcept { m_outcome.set_value(); }
    void take_result() { m_outcome.take(); }
    task_outcome<void> m_outcome;
};

template <class T>
class task_awaiter {
public:
    explicit task_awaiter(std::coroutine_handle<task_promise<T>> child) noexcept : m_child(child) {}

    // An empty task, or one that already ran to the end, goes straight to await_resume, which
    // reports the misuse.
    [[nodiscard]] bool await_ready() const noexcept { return !m_child || m_child.done(); }

    bool await_suspend(std::coroutine_handle<> parent) noexcept {
        m_child.resume();
        if (m_child.done()) return false;  // finished inline: resume the parent right here
        m_child.promise().set_continuation(parent);
        return true;
    }

    decltype(auto) await_resume() {
        if (!m_child) throw invalid_state_error("coring: awaiting an empty task (moved from, or handed to create_task)");
        return m_child.promise().take_result();
    }

private:
    std::coroutine_handle<task_promise<T>> m_child;
};

}  // namespace detail

template <class T>
class [[nodiscard]] task {
public:
    using promise_type = detail::task_promise<T>;
    using value_type = T;

    task() noexcept = default;
    explicit task(std::coroutine_handle<promise_type> frame) noexcept : m_frame(frame) {}
    task(task&& other) noexcept : m_frame(std::exchange(other.m_frame, {})) {}
    task& operator=(task&& other) noexcept {
        if (this != &other) {
            destroy();
            m_frame = std::exchange(other.m_frame, {});
        }
        return *this;
    }
    task(const task&) = delete;
    task& operator=(const task&) = delete;
    ~task() { destroy(); }

    /// False for a default-constructed or moved-from task.
    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_frame); }
    /// True once the body has run to the end.
    [[nodiscard]] bool done() const noexcept { return m_frame && m_frame.done(); }

    detail::task_awaiter<T> operator co_await() & noexcept { return detail::task_awaiter<T>(m_frame); }
    detail::task_awaiter<T> operator co_await() && noexcept { return detail::task_awaiter<T>(m_frame); }

    /// Gives up ownership of the frame (create_task takes it this way).
    [[nodiscard]] std::coroutine_handle<promise_type> release() noexcept { return std::exchange(m_frame, {}); }

private:
    void destroy() noexcept {
        if (m_frame) m_frame.destroy();
    }
    std::coroutine_handle<promise_type> m_frame;
};

namespace detail {
template <class T>
task<T> task_promise<T>::get_return_object() noexcept {
    return task<T>(std::coroutine_handle<task_promise>::from_promise(*this));
}
template <class T>
task<T&> task_promise<T&>::get_return_object() noexcept {
    return task<T&>(std::coroutine_handle<task_promise>::from_promise(*this));
}
inline task<void> task_promise<void>::get_return_object() noexcept {
    return task<void>(std::coroutine_handle<task_promise>::from_promise(*this));
}
}  // namespace detail

}  // namespace coring
