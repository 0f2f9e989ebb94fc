#pragma once
// Machinery shared by the combinators (gather, wait, wait_for, timeout_at, as_completed,
// shield, task_group):
//
// - await_result_t<A>: what `co_await a` yields;
// - child<T> and adopt(a): the task state a combinator waits for, made from what it was given
//   (a task<T> becomes a created task the combinator owns; a handle or future is shared; any
//   other awaitable is wrapped in a created task);
// - child_notifier: a per-child waiter that runs synchronously when the child finishes (an
//   "immediate" completion waiter), so it is never left on the ready queue and the combinator
//   can unregister it whenever it stops waiting;
// - deadline_leaf: a leaf awaiter whose own ready node doubles as its deadline timer;
// - distinct_tasks: the handles of a wait or as_completed, each task once.
//
// Rule forced by C++ lifetimes (docs/api.md, "Differences from asyncio"): a combinator never returns while a child it owns still
// runs. Children are cancelled and awaited before a combinator throws.

#include <coring/clock.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/source_location.hpp>
#include <coring/detail/state.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/detail/timer_heap.hpp>
#include <coring/errors.hpp>
#include <coring/task.hpp>

#include <algorithm>
#include <chrono>
#include <concepts>
#include <optional>
#include <cstddef>
#include <string>
#include <type_traits>
#include <unordered_set>
#include <utility>
#include <vector>

namespace coring {
template <class T>
class task_handle;
template <class T>
class future;
}  // namespace coring

namespace coring::detail {

// ---------------------------------------------------------------------- awaitable traits

template <class A>
concept has_member_co_await = requires(A&& a) { static_cast<A&&>(a).operator co_await(); };

template <class A>
decltype(auto) get_awaiter(A&& a) {
    if constexpr (has_member_co_await<A>)
        return static_cast<A&&>(a).operator co_await();
    else
        return static_cast<A&&>(a);
}

/// The type `co_await std::declval<A>()` yields.
template <class A>
using await_result_t = decltype(std::declval<std::remove_reference_t<decltype(get_awaiter(std::declval<A>()))>&>().await_resume());

template <class T>
struct is_task : std::false_type {};
template <class T>
struct is_task<task<T>> : std::true_type {};
template <class T>
struct is_handle : std::false_type {};
template <class T>
struct is_handle<task_handle<T>> : std::true_type {};
template <class T>
struct is_handle<future<T>> : std::true_type {};

template <class A>
struct child_type {
    using type = await_result_t<A>;
};
template <class T>
struct child_type<task<T>> {
    using type = T;
};
template <class T>
struct child_type<task_handle<T>> {
    using type = T;
};
template <class T>
struct child_type<future<T>> {
    using type = T;
};
/// What a child made from A produces (task<T>, task_handle<T>, future<T>: T; any awaitable: its result).
template <class A>
using child_t = typename child_type<std::remove_cvref_t<A>>::type;

// ---------------------------------------------------------------------- children

/// A task state a combinator waits for, with a reference held. `owned` children were created by
/// the combinator: it alone may take their value, and it must see them finish.
template <class T>
class child {
public:
    struct adopt_reference_t {};
    child() noexcept = default;
    /// Shares `s` (takes a reference).
    child(state<T>* s, bool owned) noexcept : m_state(s), m_owned(owned) { m_state->add_ref(); }
    /// Takes over a reference the caller already holds.
    child(adopt_reference_t, state<T>* s, bool owned) noexcept : m_state(s), m_owned(owned) {}
    child(const child&) = delete;
    child& operator=(const child&) = delete;
    child(child&& other) noexcept : m_state(std::exchange(other.m_state, nullptr)), m_owned(other.m_owned) {}
    child& operator=(child&& other) noexcept {
        if (this != &other) {
            reset();
            m_state = std::exchange(other.m_state, nullptr);
            m_owned = other.m_owned;
        }
        return *this;
    }
    ~child() { reset(); }

    [[nodiscard]] explicit operator bool() const noexcept { return m_state != nullptr; }
    /// Created by the combinator (from a task<T> or another awaitable), not shared.
    [[nodiscard]] bool owned() const noexcept { return m_owned; }
    [[nodiscard]] state<T>& get() const noexcept { return *m_state; }
    [[nodiscard]] state<T>* operator->() const noexcept { return m_state; }

    /// The outcome for the combinator's caller: the value (moved out of an owned child, copied
    /// from a shared one), or the child's exception rethrown.
    T take() {
        if constexpr (std::is_void_v<T> || std::is_reference_v<T>)
            return m_state->get_for_caller();
        else if (m_owned)
            return m_state->take_value();
        else
            return m_state->get_for_caller();
    }

private:
    void reset() noexcept {
        if (m_state != nullptr) std::exchange(m_state, nullptr)->release();
    }
    state<T>* m_state = nullptr;
    bool m_owned = false;
};

template <class A>
task<await_result_t<A>> await_in_task(A awaitable) {
    co_return co_await std::move(awaitable);
}

/// The child a combinator waits for, made from what it was given.
template <class A>
child<child_t<A>> adopt(A&& a, const source_location& site) {
    using plain = std::remove_cvref_t<A>;
    using T = child_t<A>;
    if constexpr (is_task<plain>::value) {
        static_assert(std::is_rvalue_reference_v<A&&>, "coring: pass a task<T> to a combinator with std::move (it takes ownership)");
        return child<T>(typename child<T>::adopt_reference_t{}, create_task_state(running_scheduler(), std::move(a), {}, site), true);
    } else if constexpr (is_handle<plain>::value) {
        if (!a) throw invalid_state_error("coring: a combinator was given an empty task handle or future");
        return child<T>(static_cast<state<T>*>(a.native_state()), false);
    } else {
        static_assert(std::is_move_constructible_v<plain>, "coring: a combinator stores the awaitable it is given; it must be movable");
        return child<T>(typename child<T>::adopt_reference_t{}, create_task_state(running_scheduler(), await_in_task<plain>(std::move(a)), {}, site),
                        true);
    }
}

/// The handles of a wait or as_completed, each task once, in input order (asyncio takes a
/// set). Throws invalid_state_error, naming `who`, for an empty handle.
template <class Handle>
std::vector<Handle> distinct_tasks(std::vector<Handle> handles, const char* who) {
    for (const Handle& h : handles)
        if (!h) throw invalid_state_error(std::string(who) + ": an empty task handle in the set");
    // A few handles (the usual wait): compare pairs, allocating nothing.
    constexpr std::size_t few = 16;
    if (handles.size() <= few) {
        bool repeated = false;
        for (std::size_t i = 1; i < handles.size() && !repeated; ++i)
            for (std::size_t j = 0; j < i && !repeated; ++j) repeated = handles[i].native_state() == handles[j].native_state();
        if (!repeated) return handles;
    }
    std::vector<const state_base*> sorted;
    sorted.reserve(handles.size());
    for (const Handle& h : handles) sorted.push_back(h.native_state());
    std::sort(sorted.begin(), sorted.end());
    if (std::adjacent_find(sorted.begin(), sorted.end()) == sorted.end()) return handles;  // the usual case
    std::unordered_set<const state_base*> seen;
    std::vector<Handle> distinct;
    for (Handle& h : handles)
        if (seen.insert(h.native_state()).second) distinct.push_back(std::move(h));
    return distinct;
}

// ---------------------------------------------------------------------- notifiers

/// A completion waiter that tells its owner, synchronously, that child `index` finished.
/// Owner::on_child_finished(std::size_t) must not resume a frame (it wakes a leaf instead).
template <class Owner>
class child_notifier final : public completion_waiter {
public:
    child_notifier() noexcept : completion_waiter(operations_) {}
    child_notifier(Owner* owner, std::size_t index) noexcept : completion_waiter(operations_), m_owner(owner), m_index(index) {}

    void bind(Owner* owner, std::size_t index) noexcept {
        m_owner = owner;
        m_index = index;
    }

private:
    static void notify(ready_node* node, action what) noexcept {
        auto* self = static_cast<child_notifier*>(static_cast<completion_waiter*>(node));
        if (what == action::run) self->m_owner->on_child_finished(self->m_index);
    }
    static constexpr operations operations_{&notify, nullptr, /*immediate=*/true};

    Owner* m_owner = nullptr;
    std::size_t m_index = 0;
};

// ---------------------------------------------------------------------- deadlines

// The deadline of a combinator's timeout on the running loop's clock; a timeout too large for
// the clock (clock.hpp's deadline_after saturates to time_point::max()) is no timeout at all.
template <class Rep, class Period>
std::optional<clock::time_point> deadline_after(std::chrono::duration<Rep, Period> timeout) {
    const clock::time_point deadline = deadline_after(running_scheduler().time(), timeout);
    if (deadline == clock::time_point::max()) return std::nullopt;
    return deadline;
}

/// A leaf awaiter whose ready node is also its deadline timer, so it is never in two places:
/// in the timer heap, on the ready queue, or idle. When the node runs, Derived::finished()
/// decides: resume the frame, or (the deadline passed first) Derived::on_deadline(), which
/// typically cancels children and waits on.
///
/// Derived provides: bool finished() const noexcept; void on_deadline() noexcept;
/// static void on_cancel(ready_node*) noexcept; and lists {&on_ready, &Derived::on_cancel}.
template <class Derived>
class deadline_leaf : public leaf_awaiter<timer_node> {
protected:
    using leaf_awaiter::leaf_awaiter;

    void start_deadline(clock::time_point deadline) {
        loop().add_timer(*this, deadline);
        m_place = place::timer;
    }

    /// Resume soon: takes the node out of the heap if it is there, and queues it unless the
    /// timer already queued it (its run then sees finished()).
    void wake_now() noexcept {
        if (m_place == place::timer) {
            if (!scheduled()) return;  // fired: already on the ready queue
            loop().remove_timer(*this);
        } else if (m_place == place::queued) {
            return;
        }
        m_place = place::queued;
        loop().schedule(*this);
    }

    static void on_ready(ready_node* node, action what) noexcept {
        auto* self = static_cast<Derived*>(static_cast<timer_node*>(node));
        if (what == action::discard) return;
        self->m_place = place::idle;
        if (self->finished())
            resume_frame(node, what);
        else
            self->on_deadline();
    }

private:
    enum class place : unsigned char { idle, timer, queued };
    place m_place = place::idle;
};

}  // namespace coring::detail
