#pragma once
// coring::semaphore and coring::bounded_semaphore (asyncio.Semaphore, asyncio.BoundedSemaphore):
// a counter of permits that tasks acquire and release.
//
//   coring::semaphore slots(10);                  // at most 10 downloads at a time
//   {
//       auto permit = co_await slots.scoped_acquire();   // released when the permit goes
//       co_await download(url);
//   }
//   co_await slots.acquire(); ...; slots.release();      // or by hand
//
// Fair, as asyncio's (3.11+): tasks get permits first-in first-out. release() with tasks waiting
// hands the permit straight to the first of them, and the semaphore stays locked() until every
// task it handed a permit to has resumed: a task that releases and acquires again meanwhile
// queues behind them (CPython's test_acquire_fifo_order_2: [1, 2, 3, 4]). A permit released
// meanwhile goes to the next waiter when the last of them resumes. Acquiring while permits are
// left and nobody waits does not suspend.
//
// bounded_semaphore(n) refuses to hold more than n permits: a release() beyond that throws
// std::logic_error (asyncio raises ValueError), which catches unbalanced releases.
//
// Cancellation: a task cancelled while it waits takes nothing; one cancelled after a permit was
// handed to it but before it resumed passes the permit to the next waiter (or back to the
// counter) and throws cancelled_error.
//
// Thread-safety: loop-bound. A semaphore serves the tasks of one event loop; between loops use
// coring::channel (thread/channel.hpp). In debug mode, waking its waiters from another thread, or
// waiting on it from a second loop, is reported with both thread ids, and the process aborts (the
// call cannot throw).

#include <coring/detail/permit_awaiter.hpp>
#include <coring/detail/wait_queue.hpp>
#include <coring/errors.hpp>

#include <coroutine>
#include <cstddef>
#include <limits>
#include <mutex>  // std::adopt_lock_t
#include <stdexcept>
#include <utility>

namespace coring {

class semaphore;
class semaphore_permit;

namespace detail {

inline constexpr char semaphore_name[] = "coring::semaphore";
inline constexpr char semaphore_acquire_text[] = "semaphore.acquire";

/// co_await s.acquire(): resumes the caller holding one permit (see permit_awaiter.hpp).
using acquire_awaiter = permit_awaiter<semaphore, semaphore_name, semaphore_acquire_text>;
/// co_await s.scoped_acquire(): the same, yielding a semaphore_permit.
using scoped_acquire_awaiter = scoped_permit_awaiter<semaphore, semaphore_permit, semaphore_name, semaphore_acquire_text>;

}  // namespace detail

class semaphore {
public:
    /// Throws std::invalid_argument if `permits` is negative.
    explicit semaphore(std::ptrdiff_t permits = 1) : semaphore(permits, std::numeric_limits<std::ptrdiff_t>::max()) {}
    semaphore(const semaphore&) = delete;
    semaphore& operator=(const semaphore&) = delete;
    /// Reports (stderr, and an assertion in debug builds) if tasks still wait on the semaphore.
    ~semaphore() { m_waiters.abandon(m_bound == std::numeric_limits<std::ptrdiff_t>::max() ? detail::semaphore_name : "coring::bounded_semaphore"); }

    /// Awaitable: resumes the caller holding a permit, after every task that asked before it.
    /// Does not suspend while permits are left.
    [[nodiscard]] detail::acquire_awaiter acquire() noexcept { return detail::acquire_awaiter(*this); }

    /// Awaitable: as acquire(), yielding a permit that is released when it is destroyed.
    [[nodiscard]] detail::scoped_acquire_awaiter scoped_acquire() noexcept { return detail::scoped_acquire_awaiter(*this); }

    /// Takes a permit if acquire() would not suspend. Never suspends.
    [[nodiscard]] bool try_acquire() noexcept {
        if (locked()) return false;
        --m_value;
        return true;
    }

    /// Returns a permit: hands it to the first waiting task (which resumes on the next loop
    /// iteration) or adds it to the counter. A bounded_semaphore throws std::logic_error when
    /// that would make it hold more permits than it started with.
    void release() {
        if (m_value >= m_bound)  // waiters exist only while m_value == 0, so this is asyncio's check
            throw std::logic_error("coring: bounded_semaphore::release() called more times than acquire()");
        release_to_next();
    }

    /// Permits left.
    [[nodiscard]] std::ptrdiff_t value() const noexcept { return m_value; }
    /// True if acquire() would suspend: no permit left, or tasks waiting or handed a permit and
    /// not yet resumed (asyncio's locked()).
    [[nodiscard]] bool locked() const noexcept { return m_value == 0 || !m_waiters.idle(); }

protected:
    semaphore(std::ptrdiff_t permits, std::ptrdiff_t bound) : m_value(permits), m_bound(bound) {
        if (permits < 0) throw std::invalid_argument("coring: a semaphore's initial value must be zero or more");
    }

private:
    friend detail::acquire_awaiter;
    friend class semaphore_permit;

    bool try_take() noexcept { return try_acquire(); }

    /// A waiter resumed with its permit: a permit released while it was on its way goes to the
    /// next waiter (asyncio's acquire: "if self._value > 0: self._wake_up_next()").
    void after_acquire() noexcept {
        if (m_value == 0) return;
        if (detail::sync_waiter* next = m_waiters.front()) {
            --m_value;
            m_waiters.grant(*next);
        }
    }

    // Invariants: tasks wait while m_value == 0, or while granted waiters have not resumed (and
    // the last of them to resume hands m_value on); a permit handed to a waiter never passes
    // through m_value.
    void release_to_next() noexcept {
        if (detail::sync_waiter* next = m_waiters.front())
            m_waiters.grant(*next);
        else
            ++m_value;
    }

    detail::wait_queue m_waiters;
    std::ptrdiff_t m_value;
    std::ptrdiff_t m_bound;  // max() for an unbounded semaphore
};

/// A semaphore whose release() throws std::logic_error beyond its initial value.
class bounded_semaphore : public semaphore {
public:
    /// Throws std::invalid_argument if `permits` is negative.
    explicit bounded_semaphore(std::ptrdiff_t permits = 1) : semaphore(permits, permits) {}
};

/// Owns one permit of a semaphore and releases it when destroyed. Movable; a moved-from or
/// released permit owns nothing.
class [[nodiscard]] semaphore_permit {
public:
    semaphore_permit() noexcept = default;
    /// Adopts a permit the caller holds: `if (s.try_acquire()) { semaphore_permit p(s); }`.
    explicit semaphore_permit(semaphore& s) noexcept : m_semaphore(&s) {}
    /// The same, spelled as mutex_guard's adoption.
    semaphore_permit(semaphore& s, std::adopt_lock_t) noexcept : m_semaphore(&s) {}
    semaphore_permit(semaphore_permit&& other) noexcept : m_semaphore(std::exchange(other.m_semaphore, nullptr)) {}
    semaphore_permit& operator=(semaphore_permit&& other) noexcept {
        if (this != &other) {
            reset();
            m_semaphore = std::exchange(other.m_semaphore, nullptr);
        }
        return *this;
    }
    semaphore_permit(const semaphore_permit&) = delete;
    semaphore_permit& operator=(const semaphore_permit&) = delete;
    ~semaphore_permit() { reset(); }

    /// Releases the permit early. Throws invalid_state_error if it owns none.
    void release() {
        if (m_semaphore == nullptr) throw invalid_state_error("coring: semaphore_permit::release() on a permit that owns nothing");
        reset();
    }

    [[nodiscard]] bool owns_permit() const noexcept { return m_semaphore != nullptr; }
    explicit operator bool() const noexcept { return owns_permit(); }

private:
    // A permit that is held cannot overflow a bounded semaphore, so no check here (a destructor
    // must not throw).
    void reset() noexcept {
        if (semaphore* s = std::exchange(m_semaphore, nullptr)) s->release_to_next();
    }

    semaphore* m_semaphore = nullptr;
};

}  // namespace coring
