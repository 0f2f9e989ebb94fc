#pragma once
// task_group (asyncio.TaskGroup): tasks that live and die together.
//
//   coring::task_group group;
//   auto a = group.create_task(fetch(url_a));
//   auto b = group.create_task(fetch(url_b));
//   co_await group.join();          // both finished; or the first failure, rethrown
//
// - The first child that fails (throws anything but cancelled_error) cancels all the others;
//   join() waits until every child has finished and then rethrows that first error, with its
//   own type. Every failure (the first included) stays reachable through errors(), since C++
//   has no ExceptionGroup to throw them together.
// - A child that is cancelled by someone else is not a failure (asyncio's rule).
// - Cancelling the task that awaits join() cancels every child, waits for them, and throws
//   cancelled_error.
// - After join() returns (or throws), the group accepts no new tasks (invalid_state_error).
// - Destroying a group whose children still run is a bug: C++ cannot wait in a destructor, and
//   the children may refer to the scope that is going away. It is reported loudly (through the
//   loop's exception handler, which prints to stderr by default) and the children are cancelled.
//
// with_task_group: asyncio's `async with asyncio.TaskGroup() as tg:` block, where a failing
// child also interrupts the code that created the group.
//
//   auto [a, b] = co_await coring::with_task_group([&](coring::task_group& tg) -> coring::task<std::pair<int, int>> {
//       auto x = tg.create_task(fetch(url_a));
//       auto y = tg.create_task(fetch(url_b));
//       co_return std::pair{co_await x, co_await y};
//   });
//
// The rules of asyncio 3.13's TaskGroup:
// - The body runs in the awaiting task itself (current_task() inside it is the caller's).
// - A failing child cancels the awaiting task (the body's current await throws cancelled_error)
//   and the other children; once all have finished, the group uncancels the task and rethrows
//   the first child error unchanged. The other errors go to the loop's exception handler
//   ("other errors of a task group"), so none is lost (C++ has no ExceptionGroup).
// - A child error wins over a cancel of the awaiting task from outside; that cancel stays
//   pending (cancelling() still counts it) and is delivered at the next suspension point.
// - A body that ends with an error (or is cancelled) cancels the children; the group waits for
//   them, then rethrows the body's error (a child's first error wins over it).
// - Cancelling the awaiting task while the group waits for its children cancels them and goes
//   on waiting; cancelled_error leaves once they have all finished.
// (g++ 12: a lambda written inside the co_await expression must capture by reference only.)
//
// Thread-safety: awaited by a task on its own loop; every task, handle and awaitable given to it
// must belong to that loop (work for another loop goes through run_on, thread/run_on.hpp).

#include <coring/detail/block_body.hpp>
#include <coring/detail/combinator.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/source_location.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {

class task_group;

namespace detail {

/// with_task_group's wait for the children: cancellable, and leaves them alone when cancelled
/// (the group decides what a cancel means).
class task_group_drain final : public leaf_awaiter<ready_node> {
public:
    explicit task_group_drain(task_group& group) noexcept : leaf_awaiter(operations_), m_group(&group) {}
    task_group_drain(task_group_drain&& other) noexcept : leaf_awaiter(std::move(other)), m_group(other.m_group) {}

    [[nodiscard]] bool await_ready() const noexcept;
    bool await_suspend(std::coroutine_handle<> frame);
    void await_resume() const { throw_if_cancelled(); }

private:
    friend class coring::task_group;
    static void on_cancel(ready_node* node) noexcept;
    static void describe(const ready_node* node, await_description& out);
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::task};

    task_group* m_group;
};

/// co_await group.join(): the joiner is the chain's cancellation slot.
class task_group_join final : public leaf_awaiter<ready_node> {
public:
    explicit task_group_join(task_group& group) noexcept : leaf_awaiter(operations_), m_group(&group) {}
    task_group_join(task_group_join&& other) noexcept : leaf_awaiter(std::move(other)), m_group(other.m_group) {}

    [[nodiscard]] bool await_ready() const noexcept;
    void await_suspend(std::coroutine_handle<> frame);
    void await_resume();

private:
    friend class coring::task_group;
    static void on_cancel(ready_node* node) noexcept;
    static void describe(const ready_node* node, await_description& out);
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::task};

    task_group* m_group;
};

}  // namespace detail

class task_group {
public:
    task_group() = default;
    /// A group whose first failing child also cancels `parent` (with_task_group).
    explicit task_group(detail::state_base& parent) noexcept : m_parent(&parent) {}
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;
    ~task_group();

    /// Starts `body` as a child of the group (on the next loop iteration). Throws
    /// invalid_state_error once the group has been joined or is cancelling its children after
    /// a failure (asyncio: "TaskGroup is shutting down").
    template <class T>
    task_handle<T> create_task(task<T> body, std::string_view name = {}, source_location site = source_location::current()) {
        if (m_joined) throw invalid_state_error("coring::task_group: create_task after join()");
        if (m_aborting) throw invalid_state_error("coring::task_group: create_task while the group is cancelling its children");
        task_handle<T> handle = get_running_loop().create_task(std::move(body), name, site);
        auto& c = m_children.emplace_back(std::make_unique<member>());
        c->state = handle.native_state();
        c->state->add_ref();
        c->notifier.bind(this, m_children.size() - 1);
        c->state->add_waiter(c->notifier);
        ++m_running;
        return handle;
    }

    /// Waits for every child; rethrows the first failure. Await it once.
    [[nodiscard]] detail::task_group_join join() noexcept { return detail::task_group_join(*this); }

    /// Every child failure so far, in the order they happened (the first is what join threw).
    [[nodiscard]] const std::vector<std::exception_ptr>& errors() const noexcept { return m_errors; }

    /// Children that have not finished.
    [[nodiscard]] std::size_t running() const noexcept { return m_running; }
    [[nodiscard]] std::size_t size() const noexcept { return m_children.size(); }

    /// with_task_group's end of the block: cancels the children if the body failed, waits for
    /// them, settles the awaiting task's cancel count and rethrows what the rules say.
    task<> exit_scope(std::exception_ptr body_error);

private:
    friend class detail::task_group_join;
    friend class detail::task_group_drain;
    friend class detail::child_notifier<task_group>;

    struct member {
        detail::state_base* state = nullptr;
        detail::child_notifier<task_group> notifier;
        ~member() {
            if (state != nullptr) state->release();
        }
    };

    // Runs inside the child's finish(): records, cancels the others, wakes the joiner.
    void on_child_finished(std::size_t index) noexcept {
        detail::state_base& s = *m_children[index]->state;
        if (s.failed() && !s.cancelled()) {
            m_errors.push_back(s.stored_exception());
            s.mark_retrieved();  // reported through errors() and join()
            if (m_parent != nullptr && !m_aborting && !m_parent_cancel_requested && !m_parent->done()) {
                // Interrupt whatever the block's body awaits (asyncio's TaskGroup._on_task_done).
                abort();
                m_parent_cancel_requested = true;
                m_parent->request_cancel();
            } else if (!m_aborting) {
                abort();
            }
        }
        if (--m_running == 0) {
            if (m_joiner != nullptr) std::exchange(m_joiner, nullptr)->wake();
            if (m_drainer != nullptr) std::exchange(m_drainer, nullptr)->wake();
        }
    }

    void abort() noexcept {
        m_aborting = true;
        for (auto& c : m_children)
            if (!c->state->done()) c->state->request_cancel();
    }

    std::vector<std::unique_ptr<member>> m_children;  // stable addresses: notifiers are linked into states
    std::vector<std::exception_ptr> m_errors;
    std::size_t m_running = 0;
    detail::task_group_join* m_joiner = nullptr;
    detail::task_group_drain* m_drainer = nullptr;
    detail::state_base* m_parent = nullptr;  // with_task_group's awaiting task
    bool m_parent_cancel_requested = false;   // a child failure cancelled m_parent
    bool m_aborting = false;
    bool m_joined = false;
    bool m_cancelled = false;
};

// ---------------------------------------------------------------------- implementation

inline task_group::~task_group() {
    if (m_running == 0) return;
    detail::scheduler* loop = nullptr;
    for (auto& c : m_children) {
        if (c->state->done()) continue;
        c->state->remove_waiter(c->notifier);
        loop = c->state->loop();
        c->state->request_cancel();
    }
    exception_context report{"task_group destroyed while " + std::to_string(m_running) +
                                 " of its children still run; they were cancelled, but may still use what the group's scope "
                                 "owned. Await join() before the group goes out of scope.",
                             nullptr,
                             {},
                             {}};
    if (loop != nullptr)
        loop->call_exception_handler(report);
    else
        event_loop::default_exception_handler(report);
}

inline task<> task_group::exit_scope(std::exception_ptr body_error) {
    std::exception_ptr propagate;  // the cancellation that leaves the block, if any
    if (body_error) {
        if (detail::is_cancellation(body_error)) propagate = body_error;
        if (!m_aborting) abort();
    }
    while (m_running > 0) {
        std::exception_ptr cancel;
        try {
            co_await detail::task_group_drain(*this);
        } catch (const cancelled_error&) {
            cancel = std::current_exception();
        }
        if (cancel && !m_aborting) {  // cancelled from outside while waiting: stop the children
            propagate = cancel;
            abort();
        }
    }
    m_joined = true;  // no new children from now on
    if (m_parent_cancel_requested && m_parent->uncancel() == 0) propagate = nullptr;  // only ours was left
    if (propagate && m_errors.empty()) std::rethrow_exception(propagate);
    if (body_error && !detail::is_cancellation(body_error)) m_errors.push_back(body_error);
    if (m_errors.empty()) co_return;
    if (m_parent->cancelling() > 0) {
        // Cancelled from outside too: the error wins, and the cancel stays pending, its count kept.
        m_parent->uncancel();
        m_parent->request_cancel();
    }
    for (std::size_t i = 1; i < m_errors.size(); ++i)
        m_parent->loop()->call_exception_handler({"other errors of a task group (the first was rethrown)", m_errors[i], m_parent->name(), {}});
    std::rethrow_exception(m_errors.front());
}

/// Runs `body(group)` in the awaiting task as asyncio's `async with TaskGroup() as tg:` block
/// (the rules are at the top of this header); returns the body's result.
template <class Body>
auto with_task_group(Body body) {
    using T = detail::body_result_t<Body, task_group>;
    return [](Body b) -> task<T> {
        task_group group(detail::running_task_state("with_task_group"));
        std::exception_ptr error;
        if constexpr (std::is_void_v<T>) {
            try {
                co_await b(group);
            } catch (...) {
                error = std::current_exception();
            }
            co_await group.exit_scope(error);
        } else {
            std::optional<T> value;
            try {
                value.emplace(co_await b(group));
            } catch (...) {
                error = std::current_exception();
            }
            co_await group.exit_scope(error);
            if (!value) std::rethrow_exception(error);  // a cancellation the group did not rethrow: no value to return
            co_return std::move(*value);
        }
    }(std::move(body));
}

namespace detail {

inline bool task_group_drain::await_ready() const noexcept { return m_group->m_running == 0; }

inline bool task_group_drain::await_suspend(std::coroutine_handle<> frame) {
    if (!begin_suspend(frame)) return false;  // a pending cancel: await_resume throws it
    m_group->m_drainer = this;
    arm();
    return true;
}

inline void task_group_drain::on_cancel(ready_node* node) noexcept {
    auto* self = static_cast<task_group_drain*>(node);
    if (self->m_group->m_running == 0) return;  // finished first: the request waits for the next suspension
    self->take_cancel_request();
    self->mark_cancelled();
    self->m_group->m_drainer = nullptr;
    self->wake();
}

inline void task_group_drain::describe(const ready_node* node, await_description& out) {
    const auto* self = static_cast<const task_group_drain*>(node);
    out.what = "with_task_group waiting for " + std::to_string(self->m_group->m_running) + " children";
    for (const auto& c : self->m_group->m_children)
        if (!c->state->done()) out.awaits.push_back(c->state);
}

inline bool task_group_join::await_ready() const noexcept { return m_group->m_running == 0 && !m_group->m_joined; }

// Always suspends: await_ready found children running (a joined group throws here instead),
// and the last of them to finish wakes the joiner. The joiner is recorded before a pending
// cancel is forwarded, so a child that finishes at once still wakes it.
inline void task_group_join::await_suspend(std::coroutine_handle<> frame) {
    if (m_group->m_joined) throw invalid_state_error("coring::task_group: join() awaited twice");
    const bool cancel_pending = !begin_suspend(frame);
    m_group->m_joiner = this;
    if (cancel_pending) {
        m_group->m_cancelled = true;
        m_group->abort();
    }
    if (m_group->m_joiner != nullptr) arm();  // otherwise already woken
}

inline void task_group_join::await_resume() {
    m_group->m_joined = true;
    if (m_group->m_cancelled) throw_cancelled();
    if (!m_group->m_errors.empty()) std::rethrow_exception(m_group->m_errors.front());
}

inline void task_group_join::on_cancel(ready_node* node) noexcept {
    auto* self = static_cast<task_group_join*>(node);
    if (self->m_group->m_running == 0) return;  // finished first: the request waits for the next suspension
    self->take_cancel_request();
    self->m_group->m_cancelled = true;
    self->arm();
    self->m_group->abort();
}

inline void task_group_join::describe(const ready_node* node, await_description& out) {
    const auto* self = static_cast<const task_group_join*>(node);
    out.what = "task_group.join of " + std::to_string(self->m_group->m_children.size());
    if (self->m_group->m_aborting) out.what += " (cancelling its children)";
    for (const auto& c : self->m_group->m_children)
        if (!c->state->done()) out.awaits.push_back(c->state);
}

}  // namespace detail

}  // namespace coring
