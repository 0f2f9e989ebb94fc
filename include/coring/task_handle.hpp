#pragma once
// create_task, task_handle<T>, future<T>, any_task_handle, current_task, all_tasks
// (asyncio's create_task, Task, Future, current_task, all_tasks).
//
//   auto h = coring::create_task(fetch(url), "fetch");   // starts on the next loop iteration
//   ...
//   std::string page = co_await h;                        // any number of times, from any task
//
// Handles are copyable and share one state. The loop owns a created task until it finishes:
// dropping every handle neither cancels nor destroys it. An exception that nobody retrieves (by
// awaiting, result() or exception()) is reported to the loop's exception handler when the last
// reference goes away, like asyncio's "Task exception was never retrieved".
//
// co_await h and h.result() return a copy of the value; when T cannot be copied (a
// std::unique_ptr, say) the value is moved out by the first retrieval and later retrievals throw
// invalid_state_error. A cancelled task rethrows cancelled_error.
//
// Cancelling a task that awaits a handle cancels the awaited task or future as well, and then
// waits for it (asyncio's rule; use shield() to protect it). A cancel that is pending when the
// task starts to await (it cancelled itself) is forwarded the same way. In a waiting cycle (A
// awaits B, B awaits A), where that wait would never end, the cancelled task stops waiting
// instead.
//
// As in asyncio: a task cancelled while it runs (by itself, say) that returns without reaching
// another suspension point ends cancelled, its value dropped, since cancel() returned true; one
// that throws ends with its exception. cancel() on a task that already finished returns false
// and counts its failure, if any, as seen: it is not reported as never retrieved.
//
// Thread-safety: loop-bound. Task handles and futures are copied, awaited, cancelled and destroyed
// on their task's loop only (their reference count is not atomic); a task on another loop gets a
// result through run_on or a channel.

#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/state.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <concepts>
#include <coroutine>
#include <exception>
#include <coring/detail/source_location.hpp>
#include <string>
#include <cstdint>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {

namespace detail {

/// The result type of an any_task_handle await: only success or failure.
struct erased_result {};

/// Constructs a handle that refers to nothing (every handle type has this constructor).
struct empty_handle_t {
    explicit empty_handle_t() = default;
};

/// co_await on a handle: waits in the state's waiter list, resumes through the ready queue.
template <class T>
class handle_awaiter final : public leaf_awaiter<completion_waiter> {
public:
    explicit handle_awaiter(state_base* awaited) noexcept : leaf_awaiter(operations_), m_awaited(awaited) {}
    handle_awaiter(handle_awaiter&& other) noexcept : leaf_awaiter(std::move(other)), m_awaited(other.m_awaited) {}
    ~handle_awaiter() {
        if (m_holds_reference) m_awaited->release();
    }

    [[nodiscard]] bool await_ready() const {
        if (m_awaited == nullptr) throw invalid_state_error("coring: awaiting an empty task handle");
        return m_awaited->done();
    }

    // Always suspends once registered: the awaited state's end wakes this node. A cancel
    // request pending on the awaiting task is forwarded like one that arrives while suspended
    // (asyncio: a task cancelled while running cancels the future it then awaits), so it is
    // forwarded after registering: a future cancelled on the spot then wakes this node.
    void await_suspend(std::coroutine_handle<> frame) {
        if (m_awaited->loop() == nullptr) throw invalid_state_error("coring: awaiting " + m_awaited->name() + ", whose event loop is closed");
        if (m_awaited == loop().current_task_state()) throw invalid_state_error("coring: " + m_awaited->name() + " awaits itself");
        const bool cancel_pending = !begin_suspend(frame);
        m_awaited->add_ref();
        m_holds_reference = true;
        m_awaited->add_waiter(*this);  // the state wakes us (schedules this node) when it finishes
        if (cancel_pending) {
            m_cancelled = false;  // delivered by forwarding it: the awaited outcome becomes ours
            forward_cancel();
        } else {
            arm();
        }
    }

    decltype(auto) await_resume() {
        throw_if_cancelled();
        if constexpr (std::is_same_v<T, erased_result>)
            m_awaited->rethrow_if_failed();
        else
            return static_cast<state<T>*>(m_awaited)->get_for_caller();
    }

private:
    // asyncio's rule: cancelling a task that awaits another task (or a future) cancels that one
    // too, and keeps waiting for it: its outcome, cancelled or not, becomes ours.
    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<handle_awaiter*>(static_cast<completion_waiter*>(node));
        // Already finished and about to wake us: the request stays pending and is delivered at
        // the awaiting task's next suspension point.
        if (self->m_awaited->done()) return;
        self->take_cancel_request();
        self->forward_cancel();
    }

    // Forwards the awaiting task's cancel (already taken) to the awaited state, registered as
    // its waiter. Forward before re-arming: in a waiting cycle (A awaits B, B awaits A) the
    // request comes back to this task, finds no slot and stays pending, so forwarding stops
    // there.
    void forward_cancel() noexcept {
        m_awaited->request_cancel(task()->cancel_message());
        if (task()->cancel_requested() && m_awaited->remove_waiter(*this)) {
            // It came back: nobody in the cycle can finish by waiting, so this task stops
            // waiting and ends cancelled, and the others then see it finish (a loop closing on
            // a deadlock would otherwise wait for ever).
            take_cancel_request();
            mark_cancelled();
            wake();
            return;
        }
        arm();  // a second cancel is forwarded again
    }
    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const handle_awaiter*>(static_cast<const completion_waiter*>(node));
        out.what = "task " + self->m_awaited->name();
        out.awaits.push_back(self->m_awaited);
    }
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::task};

    state_base* m_awaited;
    bool m_holds_reference = false;
};

/// What every done callback shares: the operations that tell it apart from other waiters of a
/// state, and the id that add_done_callback returned, for remove_done_callback.
class done_callback_base : public completion_waiter {
public:
    [[nodiscard]] static bool is_done_callback(const completion_waiter& waiter) noexcept { return waiter.m_ops == &operations_; }
    [[nodiscard]] std::uint64_t id() const noexcept { return m_id; }
    /// Runs the callback (or, discarded, does not) and deletes this.
    virtual void fire(action what) noexcept = 0;

protected:
    done_callback_base() noexcept : completion_waiter(operations_), m_id(++t_last_id) {}
    virtual ~done_callback_base() = default;

private:
    static void dispatch(ready_node* node, action what) noexcept { static_cast<done_callback_base*>(static_cast<completion_waiter*>(node))->fire(what); }
    static constexpr operations operations_{&dispatch};
    // Ids are unique in the thread, so one that names a callback run long ago matches no other.
    static constinit inline thread_local std::uint64_t t_last_id = 0;

    std::uint64_t m_id;
};

/// A done callback: holds a reference to the state until it has run. It runs in a copy of the
/// context of the code that added it (asyncio's add_done_callback copies it too).
template <class Handle, class F>
class done_callback final : public done_callback_base {
public:
    template <class G>
    done_callback(state_base* s, G&& function) : m_state(s), m_function(std::forward<G>(function)), m_context(context_ref::adopt(capture_context())) {
        m_state->add_ref();
    }

    static void* operator new(std::size_t size) { return frame_pool::allocate(size); }
    static void operator delete(void* block, std::size_t size) noexcept { frame_pool::deallocate(block, size); }

    void fire(action what) noexcept override {
        if (what == action::run && m_state->loop() != nullptr) {
            Handle handle = Handle::from_state(m_state);
            auto call = [&] {
                if constexpr (std::is_invocable_v<F&, const Handle&>)
                    m_function(handle);
                else
                    m_function();
            };
            m_state->loop()->run_callback(call, m_context.detach());
        }
        m_state->release();
        delete this;
    }

private:
    state_base* m_state;
    F m_function;
    context_ref m_context;
};

/// What task_handle<T>, future<T> and any_task_handle share.
template <class Derived, class T>
class handle_base {
public:
    handle_base() noexcept = default;
    handle_base(const handle_base& other) noexcept : m_state(other.m_state) {
        if (m_state != nullptr) m_state->add_ref();
    }
    handle_base(handle_base&& other) noexcept : m_state(std::exchange(other.m_state, nullptr)) {}
    handle_base& operator=(const handle_base& other) noexcept {
        handle_base copy(other);
        std::swap(m_state, copy.m_state);
        return *this;
    }
    handle_base& operator=(handle_base&& other) noexcept {
        handle_base moved(std::move(other));
        std::swap(m_state, moved.m_state);
        return *this;
    }
    ~handle_base() {
        if (m_state != nullptr) m_state->release();
    }

    /// False for a default-constructed or moved-from handle.
    [[nodiscard]] explicit operator bool() const noexcept { return m_state != nullptr; }

    [[nodiscard]] bool done() const { return checked().done(); }
    [[nodiscard]] bool cancelled() const { return checked().cancelled(); }

    /// Requests cancellation (see docs/api.md, "Cancellation"). False if already done; then, as in
    /// asyncio, the failure it ended with counts as seen and is not reported as never retrieved.
    /// `message` becomes the cancelled_error's message() (asyncio's cancel(msg)).
    bool cancel(std::string_view message = {}) {
        state_base& s = checked();
        if (s.done()) {
            s.mark_retrieved();
            return false;
        }
        return s.request_cancel(message);
    }

    /// asyncio's Task.cancelling(): the cancel requests made and not withdrawn by uncancel().
    [[nodiscard]] std::uint32_t cancelling() const { return checked().cancelling(); }

    /// asyncio's Task.uncancel(): withdraws one cancel request and returns how many are left.
    /// At zero, a request not yet delivered is dropped too (asyncio 3.13). For code that handles
    /// a cancellation it caused itself (a timeout, a task group), so that an outside cancel
    /// still counts.
    std::uint32_t uncancel() { return checked().uncancel(); }

    /// Rethrows the failure, or returns the value. Throws invalid_state_error if not done.
    decltype(auto) result() const {
        if constexpr (std::is_same_v<T, erased_result>)
            checked().rethrow_if_failed();
        else
            return static_cast<state<T>&>(checked()).get_for_caller();
    }

    /// The exception the task or future ended with (null on success). Throws cancelled_error if
    /// it was cancelled, invalid_state_error if it is not done.
    [[nodiscard]] std::exception_ptr exception() const { return checked().exception(); }

    /// Calls f(handle) or f() on the loop once done (at once, on the next iteration, if already
    /// done). Returns an id for remove_done_callback.
    template <class F>
    std::uint64_t add_done_callback(F&& f) {
        state_base& s = checked();
        auto* node = new done_callback<Derived, std::decay_t<F>>(&s, std::forward<F>(f));
        const std::uint64_t id = node->id();
        if (s.done()) {
            if (s.loop() == nullptr) {
                delete_unrun(node);
                throw invalid_state_error("coring: add_done_callback on " + s.name() + ", whose event loop is closed");
            }
            s.loop()->schedule(*node);
        } else {
            s.add_waiter(*node);
        }
        return id;
    }

    /// Removes the done callback that add_done_callback returned `id` for, so that it never
    /// runs. False if it is not waiting any more: it ran, or is already queued to run (as
    /// asyncio's remove_done_callback, which cannot take back a scheduled callback either).
    bool remove_done_callback(std::uint64_t id) {
        state_base& s = checked();
        completion_waiter* found = s.find_waiter([id](const completion_waiter& w) {
            return done_callback_base::is_done_callback(w) && static_cast<const done_callback_base&>(w).id() == id;
        });
        if (found == nullptr) return false;
        s.remove_waiter(*found);
        static_cast<done_callback_base*>(found)->fire(ready_node::action::discard);
        return true;
    }

    /// "Task-<n>" unless a name was given. Futures are called "Future".
    [[nodiscard]] std::string name() const { return checked().name(); }
    void set_name(std::string name) { checked().set_name(std::move(name)); }
    /// Where create_task was called.
    [[nodiscard]] const source_location& creation_site() const { return checked().creation_site(); }

    handle_awaiter<T> operator co_await() const noexcept { return handle_awaiter<T>(m_state); }

    [[nodiscard]] state_base* native_state() const noexcept { return m_state; }

    friend bool operator==(const handle_base& a, const handle_base& b) noexcept { return a.m_state == b.m_state; }

    /// A new handle that shares `s` (takes a reference).
    static Derived from_state(state_base* s) noexcept {
        Derived handle{empty_handle_t{}};
        handle.adopt(s);
        s->add_ref();
        return handle;
    }

protected:
    explicit handle_base(state_base* adopted) noexcept : m_state(adopted) {}
    void adopt(state_base* s) noexcept { m_state = s; }

    state_base& checked() const {
        if (m_state == nullptr) throw invalid_state_error("coring: use of an empty task handle");
        return *m_state;
    }

    state_base* m_state = nullptr;

private:
    template <class Node>
    static void delete_unrun(Node* node) noexcept {
        node->run(ready_node::action::discard);
    }
};

}  // namespace detail

/// A task created with create_task (asyncio's Task).
template <class T = void>
class task_handle : public detail::handle_base<task_handle<T>, T> {
    using base = detail::handle_base<task_handle<T>, T>;

public:
    using value_type = T;
    task_handle() noexcept = default;
    explicit task_handle(detail::empty_handle_t) noexcept {}

private:
    explicit task_handle(detail::state<T>* adopted) noexcept : base(adopted) {}
    friend class event_loop;
    friend base;
};

/// A task of any result type: what current_task() and all_tasks() return. Awaiting it waits for
/// the task and rethrows its failure, without its value.
class any_task_handle : public detail::handle_base<any_task_handle, detail::erased_result> {
    using base = detail::handle_base<any_task_handle, detail::erased_result>;

public:
    any_task_handle() noexcept = default;
    explicit any_task_handle(detail::empty_handle_t) noexcept {}
    template <class T>
    any_task_handle(const task_handle<T>& handle) noexcept {  // NOLINT: implicit on purpose
        if (handle) {
            m_state = handle.native_state();
            m_state->add_ref();
        }
    }
    [[nodiscard]] std::uint64_t id() const { return checked().id(); }

private:
    friend base;
};

/// A placeholder completed by hand (asyncio's Future): set_result, set_exception, cancel, await.
template <class T = void>
class future : public detail::handle_base<future<T>, T> {
    using base = detail::handle_base<future<T>, T>;

public:
    using value_type = T;

    /// A pending future on the running loop (throws std::logic_error if none runs).
    future() : future(get_running_loop()) {}
    explicit future(event_loop& loop) : base(new detail::state<T>(detail::scheduler_of(loop))) {}
    /// A handle that refers to no future.
    explicit future(detail::empty_handle_t) noexcept {}

    /// Completes the future; its waiters resume on the next iteration. Throws
    /// invalid_state_error if it is already done.
    template <class... Args>
        requires(std::is_void_v<T> ? sizeof...(Args) == 0 : std::is_constructible_v<T, Args&&...>)
    void set_result(Args&&... args) {
        typed().set_value(std::forward<Args>(args)...);
    }

    void set_exception(std::exception_ptr error) { typed().set_exception(std::move(error)); }

    template <class E>
        requires(!std::is_same_v<std::decay_t<E>, std::exception_ptr>)
    void set_exception(E&& error) {
        typed().set_exception(std::make_exception_ptr(std::forward<E>(error)));
    }

private:
    detail::state<T>& typed() const { return static_cast<detail::state<T>&>(this->checked()); }
    friend base;
};

// ---------------------------------------------------------------------- free functions

/// Schedules `body` on the running loop (see event_loop::create_task).
template <class T>
task_handle<T> create_task(task<T> body, std::string_view name = {}, source_location site = source_location::current()) {
    return get_running_loop().create_task(std::move(body), name, site);
}
/// As above, with options: `coring::create_task(t(), {.name = "t", .eager_start = true})`.
template <class T>
task_handle<T> create_task(task<T> body, task_options options, source_location site = source_location::current()) {
    return get_running_loop().create_task(std::move(body), options, site);
}

/// The task running now; an empty handle inside a callback. Throws std::logic_error when no
/// loop runs in this thread.
[[nodiscard]] inline any_task_handle current_task() {
    detail::state_base* s = detail::running_scheduler().current_task_state();
    return s != nullptr ? any_task_handle::from_state(s) : any_task_handle{};
}

/// The tasks of the running loop that have not finished, oldest first.
[[nodiscard]] inline std::vector<any_task_handle> all_tasks() {
    std::vector<any_task_handle> tasks;
    detail::running_scheduler().for_each_state([&](detail::state_base& s) {
        if (s.is_task() && !s.done()) tasks.push_back(any_task_handle::from_state(&s));
    });
    return tasks;
}

template <class T>
task_handle<T> event_loop::create_task(task<T> body, std::string_view name, source_location site) {
    return task_handle<T>(create_task_state(std::move(body), name, site));
}

template <class T>
task_handle<T> event_loop::create_task(task<T> body, task_options options, source_location site) {
    return task_handle<T>(create_task_state(std::move(body), options.name, site, options.eager_start));
}

template <class T>
future<T> event_loop::create_future() {
    return future<T>(*this);
}

}  // namespace coring
