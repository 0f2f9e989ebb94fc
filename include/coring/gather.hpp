#pragma once
// gather (asyncio.gather): run several awaitables concurrently and collect their results in
// argument order.
//
//   auto [page, count] = co_await coring::gather(fetch(url), count_rows());   // std::tuple
//   std::vector<int> all = co_await coring::gather(std::move(tasks));          // from a vector
//   auto outcomes = co_await coring::gather(coring::return_exceptions, a(), b());  // result<T>s
//
// Arguments: task<T> (moved in; gather creates and owns the task), task_handle<T> or future<T>
// (waited on), or any other awaitable (wrapped in a task gather owns). A void result is
// std::monostate in the tuple.
//
// Fail fast (without return_exceptions): the first child that fails (throws, or is cancelled)
// makes gather cancel every child still running, *wait until they have all finished*, and then
// rethrow that first failure. asyncio leaves the others running; C++ cannot, because their
// frames may refer to the caller's locals (docs/api.md, "Differences from asyncio"). Failures of the others are marked seen.
// With return_exceptions, gather waits for every child and reports each outcome as a result<T>.
// Cancelling the task that awaits gather cancels every child, waits for them, and throws
// cancelled_error. gather() of nothing, or of an empty vector, completes at once.
//
// Thread-safety: awaited by a task on its own loop; every task, handle and awaitable given to it
// must belong to that loop (work for another loop goes through run_on, thread/run_on.hpp).

#include <coring/detail/combinator.hpp>
#include <coring/detail/source_location.hpp>
#include <coring/errors.hpp>
#include <coring/result.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>

#include <array>
#include <coroutine>
#include <cstddef>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

namespace coring {

/// Tag: gather(return_exceptions, ...) reports each child's outcome instead of failing fast.
struct return_exceptions_t {
    explicit return_exceptions_t() = default;
};
inline constexpr return_exceptions_t return_exceptions{};

namespace detail {

/// void results appear as std::monostate.
template <class T>
using gathered_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

template <class T>
gathered_t<T> take_gathered(child<T>& c) {
    if constexpr (std::is_void_v<T>) {
        c.take();
        return std::monostate{};
    } else {
        return c.take();
    }
}

template <class T>
result<T> take_result(child<T>& c) {
    try {
        if constexpr (std::is_void_v<T>) {
            c.take();
            return result<T>(std::in_place);
        } else {
            return result<T>(std::in_place, c.take());
        }
    } catch (...) {
        return result<T>(std::current_exception());
    }
}

/// The waiting shared by both forms of gather. Derived keeps the children and provides
/// child_count() and child_state(i); this class keeps one notifier per child.
template <class Derived>
class gather_core : public leaf_awaiter<ready_node> {
    friend class child_notifier<gather_core>;

public:
    static constexpr std::size_t no_failure = static_cast<std::size_t>(-1);

    [[nodiscard]] bool await_ready() const noexcept {
        const Derived& self = derived();
        for (std::size_t i = 0; i < self.child_count(); ++i)
            if (!self.child_state(i).done()) return false;
        return true;
    }

    // Always suspends: await_ready found a child running, so a notifier is registered below,
    // and from then on the last child to finish is what resumes the gather (leaf_awaiter.hpp,
    // "registered means suspended"). Cancelling children here may finish some at once (a
    // future is cancelled on the spot), and the last of them queues the wake-up before this
    // returns.
    void await_suspend(std::coroutine_handle<> frame) {
        Derived& self = derived();
        const bool cancel_pending = !begin_suspend(frame);
        m_notifiers.reserve(self.child_count());
        for (std::size_t i = 0; i < self.child_count(); ++i) {
            state_base& s = self.child_state(i);
            m_notifiers.emplace_back(this, i);
            if (s.done()) {
                note_outcome(i);
            } else {
                s.add_waiter(m_notifiers.back());  // reserved: the address stays put
                ++m_running;
            }
        }
        if (cancel_pending) {
            m_outer_cancelled = true;
            cancel_running();
        } else if (m_fail_fast && m_first_failure != no_failure) {
            cancel_running();
        }
        if (m_running != 0) arm();  // otherwise already woken: a cancel waits for the next suspension
    }

protected:
    explicit gather_core(bool fail_fast) noexcept : leaf_awaiter(operations_), m_fail_fast(fail_fast) {}
    gather_core(gather_core&& other) noexcept : leaf_awaiter(std::move(other)), m_fail_fast(other.m_fail_fast) {}

    /// For the derived destructor, while the children still exist: a gather destroyed before
    /// its children finished (its task was destroyed at shutdown) stops listening to them.
    void detach_from_children() noexcept {
        if (m_running == 0) return;
        Derived& self = derived();
        for (std::size_t i = 0; i < m_notifiers.size(); ++i) self.child_state(i).remove_waiter(m_notifiers[i]);
    }

    /// Rethrows what ends the gather, if anything: cancellation of the gatherer, or the first
    /// failure when failing fast. Every other failure was marked seen as it was noted.
    void rethrow_if_failed() {
        Derived& self = derived();
        // await_ready found every child done, so await_suspend (which notes outcomes and makes
        // one notifier per child) never ran: note them now.
        if (m_notifiers.empty())
            for (std::size_t i = 0; i < self.child_count(); ++i) note_outcome(i);
        if (m_first_failure == no_failure) {
            if (m_outer_cancelled) this->throw_cancelled();
            return;
        }
        state_base& first = self.child_state(m_first_failure);
        if (m_outer_cancelled) {
            if (m_fail_fast) first.mark_retrieved();  // cancelled_error replaces it
            this->throw_cancelled();
        }
        if (m_fail_fast) first.rethrow_if_failed();
    }

private:
    Derived& derived() noexcept { return static_cast<Derived&>(*this); }
    const Derived& derived() const noexcept { return static_cast<const Derived&>(*this); }

    /// Records child i's outcome. A failure is marked seen here, except the first one when
    /// failing fast: that one is rethrown (which marks it). With return_exceptions every outcome
    /// is handed to the caller in a result<T>.
    void note_outcome(std::size_t i) noexcept {
        state_base& s = derived().child_state(i);
        if (!s.failed()) return;
        if (m_first_failure == no_failure) {
            m_first_failure = i;
            if (m_fail_fast) return;
        }
        s.mark_retrieved();
    }

    void cancel_running() noexcept {
        Derived& self = derived();
        for (std::size_t i = 0; i < self.child_count(); ++i) self.child_state(i).request_cancel();
    }

    // Runs inside the child's finish(): records, cancels siblings, wakes — never resumes.
    void on_child_finished(std::size_t i) noexcept {
        const bool first = m_first_failure == no_failure;
        note_outcome(i);
        if (m_fail_fast && first && m_first_failure != no_failure) cancel_running();
        if (--m_running == 0) wake();
    }

    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<gather_core*>(node);
        if (self->m_running == 0) return;  // finished first: the request waits for the next suspension
        self->take_cancel_request();
        self->m_outer_cancelled = true;
        self->arm();
        self->cancel_running();
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const gather_core*>(node);
        const Derived& d = self->derived();
        out.what = "gather of " + std::to_string(d.child_count());
        if (self->m_outer_cancelled || (self->m_fail_fast && self->m_first_failure != no_failure)) out.what += " (cancelling its children)";
        for (std::size_t i = 0; i < d.child_count(); ++i)
            if (!d.child_state(i).done()) out.awaits.push_back(&d.child_state(i));
    }

    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::task};

    std::vector<child_notifier<gather_core>> m_notifiers;
    std::size_t m_running = 0;
    std::size_t m_first_failure = no_failure;
    bool m_fail_fast;
    bool m_outer_cancelled = false;
};

/// gather(a, b, ...): a tuple of children.
template <bool ReturnExceptions, class... Ts>
class gather_tuple final : public gather_core<gather_tuple<ReturnExceptions, Ts...>> {
    using core = gather_core<gather_tuple>;
    friend core;

public:
    using value_type = std::conditional_t<ReturnExceptions, std::tuple<result<Ts>...>, std::tuple<gathered_t<Ts>...>>;

    explicit gather_tuple(child<Ts>... children) : core(!ReturnExceptions), m_children(std::move(children)...) {
        std::size_t i = 0;
        std::apply([&](auto&... c) { ((m_states[i++] = &c.get()), ...); }, m_children);
    }
    gather_tuple(gather_tuple&& other) noexcept : core(std::move(other)), m_children(std::move(other.m_children)), m_states(other.m_states) {}
    ~gather_tuple() { this->detach_from_children(); }

    value_type await_resume() {
        this->rethrow_if_failed();
        return std::apply(
            [](auto&... c) {
                if constexpr (ReturnExceptions)
                    return value_type(take_result(c)...);
                else
                    return value_type(take_gathered(c)...);
            },
            m_children);
    }

private:
    [[nodiscard]] std::size_t child_count() const noexcept { return sizeof...(Ts); }
    [[nodiscard]] state_base& child_state(std::size_t i) const noexcept { return *m_states[i]; }

    std::tuple<child<Ts>...> m_children;
    std::array<state_base*, sizeof...(Ts)> m_states{};
};

/// gather(vector): a vector of children of one type.
template <bool ReturnExceptions, class T>
class gather_vector final : public gather_core<gather_vector<ReturnExceptions, T>> {
    using core = gather_core<gather_vector>;
    friend core;

public:
    using value_type = std::vector<std::conditional_t<ReturnExceptions, result<T>, gathered_t<T>>>;

    explicit gather_vector(std::vector<child<T>> children) : core(!ReturnExceptions), m_children(std::move(children)) {}
    gather_vector(gather_vector&& other) noexcept : core(std::move(other)), m_children(std::move(other.m_children)) {}
    ~gather_vector() { this->detach_from_children(); }

    value_type await_resume() {
        this->rethrow_if_failed();
        value_type results;
        results.reserve(m_children.size());
        for (auto& c : m_children) {
            if constexpr (ReturnExceptions)
                results.push_back(take_result(c));
            else
                results.push_back(take_gathered(c));
        }
        return results;
    }

private:
    [[nodiscard]] std::size_t child_count() const noexcept { return m_children.size(); }
    [[nodiscard]] state_base& child_state(std::size_t i) const noexcept { return m_children[i].get(); }

    std::vector<child<T>> m_children;
};

template <class T>
struct is_vector_of_children : std::false_type {};
template <class T>
struct is_vector_of_children<std::vector<task<T>>> : std::true_type {
    using element = T;
};
template <class T>
struct is_vector_of_children<std::vector<task_handle<T>>> : std::true_type {
    using element = T;
};
template <class T>
struct is_vector_of_children<std::vector<future<T>>> : std::true_type {
    using element = T;
};

template <bool ReturnExceptions, class Vector>
auto gather_from_vector(Vector&& items, const source_location& site) {
    using T = typename is_vector_of_children<std::remove_cvref_t<Vector>>::element;
    // The tasks are moved out of the vector: make that visible at the call site.
    static_assert(!is_task<typename std::remove_cvref_t<Vector>::value_type>::value || std::is_rvalue_reference_v<Vector&&>,
                  "coring: pass a std::vector<task<T>> to gather with std::move (it takes ownership of the tasks)");
    std::vector<child<T>> children;
    children.reserve(items.size());
    for (auto& item : items) {
        if constexpr (is_task<std::remove_cvref_t<decltype(item)>>::value)
            children.push_back(adopt(std::move(item), site));
        else
            children.push_back(adopt(item, site));
    }
    return gather_vector<ReturnExceptions, T>(std::move(children));
}

}  // namespace detail

/// Runs every argument concurrently; yields a std::tuple of their results in argument order.
template <class... Awaitables>
    requires(!(detail::is_vector_of_children<std::remove_cvref_t<Awaitables>>::value || ...))
[[nodiscard]] auto gather(Awaitables&&... awaitables) {
    // A parameter pack admits no defaulted site parameter after it, so the children carry no
    // creation site (dumps show them under the gathering task instead).
    [[maybe_unused]] const source_location site{};
    // Braces: the children are created (and so start) left to right, as asyncio creates them.
    return detail::gather_tuple<false, detail::child_t<Awaitables>...>{detail::adopt(std::forward<Awaitables>(awaitables), site)...};
}

/// As gather(...), but each element is a result<T> holding the value or the exception.
template <class... Awaitables>
    requires(!(detail::is_vector_of_children<std::remove_cvref_t<Awaitables>>::value || ...))
[[nodiscard]] auto gather(return_exceptions_t, Awaitables&&... awaitables) {
    [[maybe_unused]] const source_location site{};
    return detail::gather_tuple<true, detail::child_t<Awaitables>...>{detail::adopt(std::forward<Awaitables>(awaitables), site)...};
}

/// Runs every task (moved in) or waits for every handle of the vector; yields a std::vector of
/// results in the vector's order.
template <class Vector>
    requires detail::is_vector_of_children<std::remove_cvref_t<Vector>>::value
[[nodiscard]] auto gather(Vector&& items, source_location site = source_location::current()) {
    return detail::gather_from_vector<false>(std::forward<Vector>(items), site);
}

template <class Vector>
    requires detail::is_vector_of_children<std::remove_cvref_t<Vector>>::value
[[nodiscard]] auto gather(return_exceptions_t, Vector&& items, source_location site = source_location::current()) {
    return detail::gather_from_vector<true>(std::forward<Vector>(items), site);
}

}  // namespace coring
