#pragma once
// coring::barrier (asyncio.Barrier): a rendezvous of a fixed number of tasks.
//
//   coring::barrier b(3);
//   // in each of three tasks:
//   std::size_t index = co_await b.wait();   // resumes once all three have arrived
//   if (index == 0) elect_leader();
//
// wait() suspends until `parties` tasks are waiting, then releases them all: the last to
// arrive returns at once, the others resume on the next loop iteration. Each gets its arrival
// index in that cycle: 0 for the first, parties - 1 for the one that completed it. The barrier
// can be used again (it is cyclic).
//
// As asyncio's barrier, it has four states:
//   filling    tasks arrive and wait;
//   draining   the cycle was released and its tasks have not all resumed yet: a task that
//              arrives meanwhile waits until the last of them has left, then joins the next
//              cycle (so a fast task cannot overtake the cycle it just left);
//   resetting  reset() was called while tasks were in the barrier: those tasks throw
//              broken_barrier_error as they resume, and new arrivals wait until they have left;
//   broken     abort() was called: every task in the barrier or waiting to enter it, and every
//              later wait(), throws broken_barrier_error, until reset().
// A reset or abort while the barrier drains breaks the released tasks that have not resumed
// yet, as in asyncio. A task waiting to enter joins the next cycle when its turn on the loop
// comes, not at the moment the barrier empties, again as in asyncio.
//
// Cancellation: a task cancelled while it waits leaves the barrier (it no longer counts as
// arrived). One cancelled after the barrier released it, but before it resumed, throws
// cancelled_error (asyncio does the same); the barrier has already released the others.
//
// Difference from asyncio: indices are assigned when the barrier is released, in arrival order
// among the tasks still waiting, so they stay 0 .. parties - 1 even after a waiter was
// cancelled (asyncio can hand out the same index twice then). reset() and abort() are plain
// functions (asyncio's are coroutines that take the barrier's internal lock).
//
// Thread-safety: loop-bound. A barrier serves the tasks of one event loop; between loops use
// coring::channel (thread/channel.hpp). In debug mode, waking its waiters from another thread, or
// waiting on it from a second loop, is reported with both thread ids, and the process aborts (the
// call cannot throw).

#include <coring/detail/wait_queue.hpp>
#include <coring/errors.hpp>

#include <coroutine>
#include <cstddef>
#include <stdexcept>
#include <utility>

namespace coring {

class barrier;

namespace detail {

inline constexpr char barrier_wait_text[] = "barrier.wait";

/// co_await b.wait(): yields the arrival index. Movable before it is awaited.
///
/// A suspended awaiter is on one of the barrier's two queues:
///   m_waiters  arrived in the filling cycle (it counts towards the parties), then granted when
///              the cycle is released, reset or aborted; it leaves the barrier when it resumes;
///   m_blocked  arrived while the barrier drained or reset; granted when the barrier empties,
///              with entering_operations_: when its turn on the loop comes it tries to enter
///              again (joins the filling cycle, completes it, or waits on).
class barrier_awaiter final : public sync_waiter {
public:
    explicit barrier_awaiter(barrier& b) noexcept : m_barrier(&b) {}
    barrier_awaiter(barrier_awaiter&& other) noexcept : sync_waiter(std::move(other)), m_barrier(other.m_barrier) {}

    /// The last arrival releases the barrier and does not suspend; so does any arrival at a
    /// broken barrier (await_resume throws).
    [[nodiscard]] bool await_ready() noexcept;
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> frame);
    std::size_t await_resume();

private:
    friend class coring::barrier;

    /// Tries to enter the filling cycle: true if it completed the cycle (it resumes at once
    /// with the last index), false if it now waits in it.
    bool enter_filling() noexcept;

    static void on_cancel(ready_node* node) noexcept;
    static void on_entering_run(ready_node* node, action what) noexcept;
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe_as<barrier_wait_text>, ::coring::detail::wait_kind::lock};
    static constexpr operations entering_operations_{&on_entering_run, &on_cancel, false, &describe_as<barrier_wait_text>, ::coring::detail::wait_kind::lock};

    barrier* m_barrier;
    std::size_t m_index = 0;
    bool m_inside = false;  // counted in the barrier (on m_waiters): it leaves when it resumes
    bool m_broken = false;  // await_resume throws broken_barrier_error
};

}  // namespace detail

class barrier {
public:
    /// Throws std::invalid_argument if `parties` is zero.
    explicit barrier(std::size_t parties) : m_parties(parties) {
        if (parties == 0) throw std::invalid_argument("coring: a barrier needs at least one party");
    }
    barrier(const barrier&) = delete;
    barrier& operator=(const barrier&) = delete;
    /// Reports (stderr, and an assertion in debug builds) if tasks still wait on the barrier.
    ~barrier() { detail::wait_queue::abandon_all("coring::barrier", {&m_waiters, &m_blocked}); }

    /// Awaitable: waits until `parties()` tasks wait, then yields this task's arrival index.
    /// Throws broken_barrier_error if the barrier is or becomes broken, or is reset meanwhile.
    [[nodiscard]] detail::barrier_awaiter wait() noexcept { return detail::barrier_awaiter(*this); }

    /// Breaks the barrier: the tasks in it or waiting to enter it, and later wait()s, throw
    /// broken_barrier_error until reset().
    void abort() noexcept {
        m_state = state::broken;
        m_waiters.grant_all();
        m_blocked.grant_all();  // they find the barrier broken when they run
    }

    /// Returns the barrier to the filling state. Tasks still in it (waiting, or released and
    /// not yet resumed) throw broken_barrier_error, and new arrivals wait until they have left.
    void reset() noexcept {
        if (m_inside == 0) {
            m_state = state::filling;
            return;
        }
        m_state = state::resetting;
        m_waiters.grant_all();
    }

    [[nodiscard]] std::size_t parties() const noexcept { return m_parties; }
    /// Tasks waiting in the filling cycle (0 while the barrier drains, resets or is broken).
    [[nodiscard]] std::size_t n_waiting() const noexcept { return m_state == state::filling ? m_inside : 0; }
    [[nodiscard]] bool broken() const noexcept { return m_state == state::broken; }

private:
    friend class detail::barrier_awaiter;

    enum class state : unsigned char { filling, draining, resetting, broken };

    /// Releases the filling cycle: its waiters get their indices, first arrival first. Returns
    /// the index of the arrival that completed it.
    std::size_t release_cycle() noexcept {
        std::size_t index = 0;
        m_waiters.grant_all<detail::barrier_awaiter>([&index](detail::barrier_awaiter& w) noexcept { w.m_index = index++; });
        if (m_inside > 0) m_state = state::draining;
        return index;
    }

    /// One task has left the barrier (resumed or cancelled): when it was the last, the drain
    /// or reset is over and the tasks waiting to enter try again, each on its turn.
    void leave() noexcept {
        if (--m_inside > 0 || (m_state != state::draining && m_state != state::resetting)) return;
        m_state = state::filling;
        m_blocked.grant_all();
    }

    detail::wait_queue m_waiters;  // the filling cycle's tasks, then the released ones
    detail::wait_queue m_blocked;  // arrivals waiting for a drain or a reset to end
    std::size_t m_parties;
    std::size_t m_inside = 0;  // tasks on m_waiters (asyncio's _count), kept to avoid a walk
    state m_state = state::filling;
};

// ---------------------------------------------------------------------- implementation

inline bool detail::barrier_awaiter::await_ready() noexcept {
    barrier& b = *m_barrier;
    if (b.m_state == barrier::state::broken) {
        m_broken = true;
        return true;
    }
    if (b.m_state != barrier::state::filling || b.m_inside + 1 < b.m_parties) return false;
    m_index = b.release_cycle();  // the last arrival
    return true;
}

inline std::coroutine_handle<> detail::barrier_awaiter::await_suspend(std::coroutine_handle<> frame) {
    barrier& b = *m_barrier;
    if (b.m_state != barrier::state::filling) {
        if (!register_on(b.m_blocked, frame, entering_operations_)) return frame;
        return switch_away(frame);
    }
    if (!register_on(b.m_waiters, frame, operations_)) return frame;
    m_inside = true;
    ++b.m_inside;
    return switch_away(frame);
}

inline bool detail::barrier_awaiter::enter_filling() noexcept {
    barrier& b = *m_barrier;
    if (b.m_inside + 1 == b.m_parties) {
        m_index = b.release_cycle();
        return true;
    }
    m_ops = &operations_;
    b.m_waiters.push_back(*this);
    m_inside = true;
    ++b.m_inside;
    return false;
}

inline std::size_t detail::barrier_awaiter::await_resume() {
    finish_wait("coring::barrier");
    if (m_inside) {
        // Released, reset or aborted: asyncio's barrier decides by its state as the task leaves.
        barrier& b = *m_barrier;
        if (b.m_state == barrier::state::resetting || b.m_state == barrier::state::broken) m_broken = true;
        b.leave();
    }
    if (m_broken) throw broken_barrier_error();
    return m_index;
}

inline void detail::barrier_awaiter::on_entering_run(ready_node* node, action what) noexcept {
    auto& self = from_node<barrier_awaiter>(node);
    if (what == action::discard || self.m_cancelled || !self.on_queue()) {
        self.m_ops = &operations_;
        resume_frame(node, what);  // cancelled, or orphaned: await_resume throws
        return;
    }
    barrier& b = *self.m_barrier;
    self.leave_queue();  // off m_blocked
    switch (b.m_state) {
        case barrier::state::broken:
            self.m_broken = true;
            break;
        case barrier::state::draining:
        case barrier::state::resetting:
            b.m_blocked.push_back(self);  // the barrier filled and drains again: wait on
            return;
        case barrier::state::filling:
            if (!self.enter_filling()) return;
            break;
    }
    self.m_ops = &operations_;
    resume_frame(node, what);
}

inline void detail::barrier_awaiter::on_cancel(ready_node* node) noexcept {
    auto& self = from_node<barrier_awaiter>(node);
    const bool counted = self.m_inside && self.on_queue();
    self.cancel_wait();  // released already: the cancel wins, nothing to pass on
    if (counted) {
        self.m_inside = false;
        self.m_barrier->leave();
    }
}

}  // namespace coring
