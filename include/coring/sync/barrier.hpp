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
// is then empty and can be used again (it is cyclic).
//
// abort() breaks the barrier: every waiter, and every later wait(), throws
// broken_barrier_error, until reset(). reset() makes the current waiters throw
// broken_barrier_error and returns the barrier to its empty, unbroken state.
//
// Cancellation: a task cancelled while it waits leaves the barrier (it no longer counts as
// arrived). One cancelled after the barrier released it, but before it resumed, throws
// cancelled_error (asyncio does the same); the barrier has already released the others.
//
// Differences from asyncio: the barrier is released in one step (there is no "draining" state
// in which new arrivals wait for the previous cycle's tasks to leave: on one thread they have
// already been released). Indices are assigned when the barrier is released, in arrival order
// among the tasks still waiting, so they stay 0 .. parties - 1 even after a waiter was
// cancelled (asyncio can hand out the same index twice then).

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

    static void on_cancel(ready_node* node) noexcept;
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe_as<barrier_wait_text>};

    barrier* m_barrier;
    std::size_t m_index = 0;
    bool m_broken = false;  // released by abort() or reset(): await_resume throws broken_barrier_error
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
    ~barrier() { m_waiters.abandon("coring::barrier"); }

    /// Awaitable: waits until `parties()` tasks wait, then yields this task's arrival index.
    /// Throws broken_barrier_error if the barrier is or becomes broken, or is reset meanwhile.
    [[nodiscard]] detail::barrier_awaiter wait() noexcept { return detail::barrier_awaiter(*this); }

    /// Breaks the barrier: current waiters and later wait()s throw broken_barrier_error until
    /// reset().
    void abort() noexcept {
        m_broken = true;
        release_broken();
    }

    /// Returns the barrier to its empty, unbroken state; current waiters throw
    /// broken_barrier_error.
    void reset() noexcept {
        release_broken();
        m_broken = false;
    }

    [[nodiscard]] std::size_t parties() const noexcept { return m_parties; }
    /// Tasks waiting in the current cycle.
    [[nodiscard]] std::size_t n_waiting() const noexcept { return m_waiting; }
    [[nodiscard]] bool broken() const noexcept { return m_broken; }

private:
    friend class detail::barrier_awaiter;

    void release_broken() noexcept {
        m_waiters.grant_all<detail::barrier_awaiter>([](detail::barrier_awaiter& w) noexcept { w.m_broken = true; });
        m_waiting = 0;
    }

    detail::wait_queue m_waiters;
    std::size_t m_parties;
    std::size_t m_waiting = 0;  // the length of m_waiters' waiting list, kept to avoid a walk
    bool m_broken = false;
};

// ---------------------------------------------------------------------- implementation

inline bool detail::barrier_awaiter::await_ready() noexcept {
    barrier& b = *m_barrier;
    if (b.m_broken) {
        m_broken = true;
        return true;
    }
    if (b.m_waiting + 1 < b.m_parties) return false;
    // The last arrival: release the cycle, first arrival first.
    std::size_t index = 0;
    b.m_waiters.grant_all<barrier_awaiter>([&index](barrier_awaiter& w) noexcept { w.m_index = index++; });
    b.m_waiting = 0;
    m_index = index;
    return true;
}

inline std::coroutine_handle<> detail::barrier_awaiter::await_suspend(std::coroutine_handle<> frame) {
    if (!register_on(m_barrier->m_waiters, frame, operations_)) return frame;
    ++m_barrier->m_waiting;
    return switch_away(frame);
}

inline std::size_t detail::barrier_awaiter::await_resume() {
    finish_wait("coring::barrier");
    if (m_broken) throw broken_barrier_error();
    return m_index;
}

inline void detail::barrier_awaiter::on_cancel(ready_node* node) noexcept {
    auto& self = from_node<barrier_awaiter>(node);
    if (self.m_phase == phase::waiting) --self.m_barrier->m_waiting;
    self.cancel_wait();  // released already: nothing to pass on
}

}  // namespace coring
