#pragma once
// run_on: runs a task on another event loop (another thread's) and resumes the caller on its own
// loop with the value or the exception.
//
//   int n = co_await coring::run_on(group.loop(1), [&] { return count_rows(shard); });
//
// make_task is called on the target loop, and the task it returns runs there, as a task of that
// loop; the caller suspends meanwhile. Everything the task touches lives on the target loop;
// what it returns is moved into the caller's frame and read on the caller's loop.
//
//   caller's loop                              target loop
//   await_suspend ── start message ──────────▶ create_task(drive): co_await make_task()
//   on_cancel ────── cancel message ─────────▶ remote task.cancel(msg)
//   resume_frame ◀── the awaiter itself ────── last of the two releases (refs)
//
// The messages are nodes inside the awaiter, posted through the target's inbox
// (scheduler::post), so the caller's frame holds everything and nothing is allocated per call
// besides the remote task. Two of them may be outstanding on the target (the running task and a
// cancel message); m_refs counts them, and whichever finishes last sends the awaiter home. The
// remote state (m_remote, m_remote_done) is touched on the target's thread alone.
//
// Cancellation follows asyncio's rule for a task awaiting another task: cancelling the caller
// cancels the remote task (with the same message) and waits for it; the remote outcome becomes
// the caller's, so a remote task that catches the cancellation and returns a value returns it
// to the caller. No frame outlives its loop: a target loop that closes with the task in flight
// cancels it (its close() cancels every task), and the caller gets cancelled_error; a message
// that arrives at a loop already closed is refused, and the caller gets std::logic_error.
//
// Thread-safety: run_on may be awaited on any loop, naming any open loop, including its own.

#include <coring/detail/combinator.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/owned_node.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/detail/value_slot.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>

#include <atomic>
#include <coroutine>
#include <exception>
#include <functional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace coring {

namespace detail {

template <class T, class MakeTask>
class run_on_awaiter final : public leaf_awaiter<ready_node> {
public:
    run_on_awaiter(event_loop& target, MakeTask make)
        : leaf_awaiter(operations_), m_target_loop(&target), m_target(&scheduler_of(target)), m_make(std::move(make)) {}
    /// Before it is awaited only (leaf_awaiter's rule).
    run_on_awaiter(run_on_awaiter&& other) noexcept(std::is_nothrow_move_constructible_v<MakeTask>)
        : leaf_awaiter(std::move(other)), m_target_loop(other.m_target_loop), m_target(other.m_target), m_make(std::move(other.m_make)) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    bool await_suspend(std::coroutine_handle<> frame) {
        if (!begin_suspend(frame)) return false;  // a pending cancel: the task never starts
        m_home = &loop();
        m_refs.store(1, std::memory_order_relaxed);
        if (!m_target->post(m_start)) throw std::logic_error("coring::run_on: the target event loop is closed");
        arm();
        return true;
    }

    T await_resume() {
        throw_if_cancelled();
        if (m_error) std::rethrow_exception(m_error);
        if constexpr (std::is_void_v<T>)
            return;
        else if constexpr (std::is_reference_v<T>)
            return m_value.get();
        else
            return std::move(m_value.get());
    }

private:
    // ---- target loop

    void on_start(action what) noexcept {
        if (what == action::discard) {
            finish(std::make_exception_ptr(std::logic_error("coring::run_on: the target event loop closed before the task started")));
            return;
        }
        try {
            // Not eager: drive starts on a later iteration, so nothing has released the awaiter
            // yet. The loop keeps the task alive until it finishes, handle or not.
            task_handle<void> remote = m_target_loop->create_task(drive(outcome_guard(this)), "run_on");
            m_remote = remote.native_state();
            if (m_cancel_arrived_first) m_remote->request_cancel(m_cancel_message);
        } catch (...) {
            finish(std::current_exception());  // the loop is closing (create_task refuses), or out of memory
        }
    }

    // Held by drive's frame. A task cancelled before its first step never runs its body (asyncio's
    // rule): its frame is destroyed, and with it this guard, which tells the awaiter.
    class outcome_guard {
    public:
        explicit outcome_guard(run_on_awaiter* self) noexcept : m_self(self) {}
        outcome_guard(outcome_guard&& other) noexcept : m_self(std::exchange(other.m_self, nullptr)) {}
        outcome_guard(const outcome_guard&) = delete;
        outcome_guard& operator=(const outcome_guard&) = delete;
        ~outcome_guard() {
            if (m_self != nullptr) m_self->finish(std::make_exception_ptr(cancelled_error(m_self->m_cancel_message)));
        }
        [[nodiscard]] run_on_awaiter& awaiter() const noexcept { return *m_self; }
        /// The outcome; the awaiter may be gone once this returns.
        void done(std::exception_ptr error) noexcept { std::exchange(m_self, nullptr)->finish(std::move(error)); }

    private:
        run_on_awaiter* m_self;
    };

    // A coroutine of its own rather than the user's task, so that the outcome is captured and
    // sent home from the target loop whatever the task does.
    static coring::task<void> drive(outcome_guard guard) {
        run_on_awaiter& self = guard.awaiter();
        std::exception_ptr error;
        try {
            if constexpr (std::is_void_v<T>)
                co_await std::invoke(self.m_make);
            else
                self.m_value.emplace(co_await std::invoke(self.m_make));
        } catch (...) {
            error = std::current_exception();
        }
        guard.done(std::move(error));
    }

    void finish(std::exception_ptr error) noexcept {
        m_error = std::move(error);
        m_remote = nullptr;
        m_remote_done = true;
        release();
    }

    void on_cancel_message(action what) noexcept {
        if (what == action::run && !m_remote_done) {
            if (m_remote != nullptr)
                m_remote->request_cancel(m_cancel_message);
            else
                m_cancel_arrived_first = true;  // messages that fell back to the inbox may overtake
        }
        release();
    }

    // Any thread: the last of the outstanding messages sends the awaiter home, where it resumes
    // the caller (resume_frame). The home loop is open: it cannot close while the caller waits.
    void release() noexcept {
        if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) (void)m_home->post(*this);
    }

    // ---- caller's loop

    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<run_on_awaiter*>(node);
        if (self->m_cancel_sent) {  // one forwarded request at a time; this one stays with the caller
            self->take_cancel_request();
            return;
        }
        // The remote task still running holds a reference: take one for the cancel message. At
        // zero the outcome is already on its way home and wins; the request stays pending for
        // the caller's next suspension point.
        int refs = self->m_refs.load(std::memory_order_acquire);
        do {
            if (refs == 0) return;
        } while (!self->m_refs.compare_exchange_weak(refs, refs + 1, std::memory_order_acq_rel, std::memory_order_acquire));
        self->take_cancel_request();
        self->m_cancel_sent = true;
        try {
            self->m_cancel_message = self->task() != nullptr ? self->task()->cancel_message() : std::string();
        } catch (...) {
            // Out of memory for the message: the cancel goes without it.
        }
        if (!self->m_target->post(self->m_cancel)) self->release();  // closing: it cancels the task itself
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const run_on_awaiter*>(node);
        out.what = self->m_cancel_sent ? "run_on another loop (cancelled, waiting for the remote task)" : "run_on another loop";
    }

    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::thread};

    event_loop* m_target_loop;
    scheduler* m_target;  // the same loop, seen as a scheduler
    scheduler* m_home = nullptr;
    MakeTask m_make;
    std::atomic<int> m_refs{0};
    owned_node<run_on_awaiter> m_start{*this, &run_on_awaiter::on_start};
    owned_node<run_on_awaiter> m_cancel{*this, &run_on_awaiter::on_cancel_message};
    std::string m_cancel_message;    // written before the cancel message is posted
    bool m_cancel_sent = false;      // caller's loop
    state_base* m_remote = nullptr;  // target loop: the running task, until it finishes
    bool m_remote_done = false;      // target loop
    bool m_cancel_arrived_first = false;  // target loop: the cancel message overtook the start
    value_slot<T> m_value;           // written on the target, read at home after release
    std::exception_ptr m_error;      // likewise
};

}  // namespace detail

/// co_await run_on(loop, make_task): calls make_task() on `loop` (any open loop: another
/// thread's, or this one) and runs the task it returns there; yields its value or rethrows its
/// exception on the awaiting loop. make_task is moved into the awaiter and must return a
/// coring::task<T>. Cancelling the awaiting task cancels the remote one and waits for it.
template <class MakeTask>
[[nodiscard]] auto run_on(event_loop& loop, MakeTask make_task) {
    using remote_task = std::invoke_result_t<MakeTask&>;
    static_assert(detail::is_task<remote_task>::value, "coring::run_on: make_task must return a coring::task<T>");
    return detail::run_on_awaiter<typename remote_task::value_type, MakeTask>(loop, std::move(make_task));
}

}  // namespace coring
