#pragma once
// as_completed (asyncio.as_completed): the results of a set of tasks in the order they finish.
//
//   for (auto next : coring::as_completed(handles)) {
//       int v = co_await next;        // the earliest result not yet taken (or its exception)
//   }
//
// The range yields one awaitable per distinct task (a task given twice is reported once, as
// asyncio takes a set). Awaiting one waits until a task that has not been reported yet
// finishes, and yields its value (copied: the handles stay yours) or rethrows its exception.
// Awaitables may be awaited at the same time, from several tasks: each finished task goes to
// one of them, in the order they started waiting. With a timeout, an await that would end after it throws timeout_error (the tasks
// keep running, as in asyncio). Cancelling the awaiting task throws cancelled_error and leaves
// the tasks running. The range must outlive the awaitables it hands out (a range-for does that).
//
// Thread-safety: awaited by a task on its own loop; every task, handle and awaitable given to it
// must belong to that loop (work for another loop goes through run_on, thread/run_on.hpp).

#include <coring/clock.hpp>
#include <coring/detail/combinator.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task_handle.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <deque>
#include <iterator>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

namespace coring {
namespace detail {

template <class Handle>
class as_completed_next;

struct as_completed_waiting_tag {};

/// What the range and its awaitables share; lives on the heap so the range can be moved.
///
/// Finished tasks not yet reported wait in m_finished; awaitables that wait for one wait in
/// m_waiting, first come first served. A task that finishes is handed to the first waiting
/// awaitable (its index is written into it), or queued: so each result goes to exactly one
/// awaitable, however many are awaited at once, and a later await cannot take a result that
/// was handed to an earlier one.
template <class Handle>
class as_completed_core {
public:
    as_completed_core(std::vector<Handle> handles, std::optional<clock::time_point> deadline)
        : m_handles(distinct_tasks(std::move(handles), "coring::as_completed")), m_deadline(deadline) {}
    as_completed_core(const as_completed_core&) = delete;
    as_completed_core& operator=(const as_completed_core&) = delete;
    ~as_completed_core() {
        for (std::size_t i = 0; i < m_notifiers.size(); ++i) state(i).remove_waiter(m_notifiers[i]);
    }

    [[nodiscard]] std::size_t size() const noexcept { return m_handles.size(); }

    /// Starts listening (on first use): tasks that already finished are queued in input order.
    void listen() {
        if (!m_notifiers.empty() || m_handles.empty()) return;
        m_notifiers.resize(m_handles.size());
        for (std::size_t i = 0; i < m_handles.size(); ++i) {
            m_notifiers[i].bind(this, i);
            if (state(i).done())
                m_finished.push_back(i);
            else
                state(i).add_waiter(m_notifiers[i]);
        }
    }

    std::vector<Handle> m_handles;  // distinct tasks, in input order
    std::vector<child_notifier<as_completed_core>> m_notifiers;
    std::deque<std::size_t> m_finished;  // finished, not yet handed to an awaitable
    intrusive_list<as_completed_next<Handle>, as_completed_waiting_tag> m_waiting;
    std::optional<clock::time_point> m_deadline;

private:
    friend class child_notifier<as_completed_core>;
    [[nodiscard]] state_base& state(std::size_t i) const noexcept { return *m_handles[i].native_state(); }
    void on_child_finished(std::size_t i) noexcept;
};

/// One element of the range: awaiting it yields the next result in completion order.
template <class Handle>
class as_completed_next final : public deadline_leaf<as_completed_next<Handle>>, public list_hook<as_completed_waiting_tag> {
    using base = deadline_leaf<as_completed_next<Handle>>;
    using waiting_hook = list_hook<as_completed_waiting_tag>;
    friend base;
    friend class as_completed_core<Handle>;

public:
    explicit as_completed_next(as_completed_core<Handle>* core) noexcept : base(operations_), m_core(core) {}
    as_completed_next(as_completed_next&& other) noexcept : base(std::move(other)), waiting_hook(), m_core(other.m_core) {}
    ~as_completed_next() { waiting_hook::unlink(); }  // its task was destroyed while it waited

    [[nodiscard]] bool await_ready() {
        m_core->listen();
        if (m_core->m_finished.empty()) return false;
        m_index = m_core->m_finished.front();
        m_core->m_finished.pop_front();
        return true;
    }

    bool await_suspend(std::coroutine_handle<> frame) {
        if (!this->begin_suspend(frame)) return false;  // nothing registered yet
        if (m_core->m_deadline) {
            if (*m_core->m_deadline <= this->loop().time()) {
                m_timed_out = true;
                return false;
            }
            this->start_deadline(*m_core->m_deadline);
        }
        m_core->m_waiting.push_back(*this);
        this->arm();
        return true;
    }

    decltype(auto) await_resume() {
        this->throw_if_cancelled();
        if (m_timed_out) throw timeout_error("coring::as_completed: the timeout passed before the next task finished");
        return m_core->m_handles[m_index].result();
    }

private:
    static constexpr std::size_t no_index = static_cast<std::size_t>(-1);

    [[nodiscard]] bool finished() const noexcept { return m_timed_out || m_index != no_index || this->cancelled(); }

    void on_deadline() noexcept {
        m_timed_out = true;
        waiting_hook::unlink();
        this->wake_now();
    }

    /// The core hands this awaitable (already taken off m_waiting) the task at `index`.
    void hand(std::size_t index) noexcept {
        m_index = index;
        this->wake_now();
    }

    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<as_completed_next*>(static_cast<timer_node*>(node));
        // Handed a result, or timed out: that outcome is on its way, and the request waits for
        // the next suspension point.
        if (!self->waiting_hook::linked()) return;
        self->take_cancel_request();
        self->mark_cancelled();
        self->waiting_hook::unlink();
        self->wake_now();
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const as_completed_next*>(static_cast<const timer_node*>(node));
        out.what = "as_completed of " + std::to_string(self->m_core->size());
        for (const Handle& h : self->m_core->m_handles)
            if (!h.native_state()->done()) out.awaits.push_back(h.native_state());
    }

    static constexpr ready_node::operations operations_{&base::on_ready, &on_cancel, false, &describe, ::coring::detail::wait_kind::task};

    as_completed_core<Handle>* m_core;
    std::size_t m_index = no_index;  // the task handed to this awaitable
    bool m_timed_out = false;
};

template <class Handle>
void as_completed_core<Handle>::on_child_finished(std::size_t i) noexcept {
    if (as_completed_next<Handle>* first = m_waiting.pop_front())
        first->hand(i);
    else
        m_finished.push_back(i);
}

template <class Handle>
class as_completed_range {
public:
    class iterator {
    public:
        using value_type = as_completed_next<Handle>;
        using difference_type = std::ptrdiff_t;
        iterator() noexcept = default;
        iterator(as_completed_core<Handle>* core, std::size_t position) noexcept : m_core(core), m_position(position) {}
        value_type operator*() const noexcept { return value_type(m_core); }
        iterator& operator++() noexcept {
            ++m_position;
            return *this;
        }
        iterator operator++(int) noexcept {
            iterator before = *this;
            ++m_position;
            return before;
        }
        friend bool operator==(const iterator& a, const iterator& b) noexcept { return a.m_position == b.m_position; }

    private:
        as_completed_core<Handle>* m_core = nullptr;
        std::size_t m_position = 0;
    };

    as_completed_range(std::vector<Handle> handles, std::optional<clock::time_point> deadline)
        : m_core(std::make_unique<as_completed_core<Handle>>(std::move(handles), deadline)) {}

    [[nodiscard]] iterator begin() const noexcept { return iterator(m_core.get(), 0); }
    [[nodiscard]] iterator end() const noexcept { return iterator(m_core.get(), m_core->size()); }
    [[nodiscard]] std::size_t size() const noexcept { return m_core->size(); }

private:
    std::unique_ptr<as_completed_core<Handle>> m_core;
};

}  // namespace detail

/// The tasks' results in completion order (task_handle<T>, future<T> or any_task_handle).
template <class Handle>
[[nodiscard]] detail::as_completed_range<Handle> as_completed(std::vector<Handle> handles) {
    return detail::as_completed_range<Handle>(std::move(handles), std::nullopt);
}

/// The same; an await that would end after `timeout` throws timeout_error.
template <class Handle, class Rep, class Period>
[[nodiscard]] detail::as_completed_range<Handle> as_completed(std::vector<Handle> handles, std::chrono::duration<Rep, Period> timeout) {
    return detail::as_completed_range<Handle>(std::move(handles), detail::deadline_after(timeout));
}

}  // namespace coring
