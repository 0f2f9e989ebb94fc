#pragma once
// coring::mutex (asyncio.Lock): mutual exclusion between tasks of one loop, across suspension
// points.
//
//   coring::mutex m;
//   {
//       auto guard = co_await m.scoped_lock();   // unlocks when the guard goes out of scope
//       co_await write_both_halves();            // no other task holds m meanwhile
//   }
//   co_await m.lock(); ...; m.unlock();          // or by hand
//
// Fair, as asyncio's Lock: tasks get the lock first-in first-out. unlock() with tasks waiting
// hands the lock straight to the first of them (it stays locked in between), so a task that
// calls lock() or try_lock() meanwhile cannot barge in. Locking a free mutex does not suspend.
//
// Cancellation: a task cancelled while it waits takes nothing with it. A task cancelled after
// the lock was handed to it but before it resumed passes the lock on to the next waiter (or
// unlocks) and throws cancelled_error. Either way `co_await m.lock()` either returns with the
// lock held or throws without it.
//
// Not a thread mutex: no atomics, for tasks of one loop. Any task may unlock (asyncio's rule:
// the lock has no owner). Destroying a mutex while tasks wait on it is a bug that is reported
// on stderr and asserted in debug builds.
//
// Thread-safety: loop-bound. A mutex serves the tasks of one event loop; between loops use
// coring::channel (thread/channel.hpp). In debug mode, waking its waiters from another thread, or
// waiting on it from a second loop, is reported with both thread ids, and the process aborts (the
// call cannot throw).

#include <coring/detail/permit_awaiter.hpp>
#include <coring/detail/wait_queue.hpp>
#include <coring/errors.hpp>

#include <cassert>
#include <coroutine>
#include <mutex>  // std::adopt_lock_t
#include <utility>

namespace coring {

class mutex;
class mutex_guard;
class condition;

namespace detail {

inline constexpr char mutex_name[] = "coring::mutex";
inline constexpr char mutex_lock_text[] = "mutex.lock";

class condition_wait_awaiter;

/// co_await m.lock(): resumes the caller holding the lock (see permit_awaiter.hpp).
using lock_awaiter = permit_awaiter<mutex, mutex_name, mutex_lock_text>;
/// co_await m.scoped_lock(): the same, yielding a mutex_guard.
using scoped_lock_awaiter = scoped_permit_awaiter<mutex, mutex_guard, mutex_name, mutex_lock_text>;

}  // namespace detail

class mutex {
public:
    mutex() noexcept = default;
    mutex(const mutex&) = delete;
    mutex& operator=(const mutex&) = delete;
    /// Reports (stderr, and an assertion in debug builds) if tasks still wait on the mutex.
    ~mutex() { m_waiters.abandon(detail::mutex_name); }

    /// Awaitable: resumes the caller holding the lock, after every task that asked before it.
    /// Does not suspend when the mutex is free.
    [[nodiscard]] detail::lock_awaiter lock() noexcept { return detail::lock_awaiter(*this); }

    /// Awaitable: as lock(), yielding a guard that unlocks when it is destroyed.
    [[nodiscard]] detail::scoped_lock_awaiter scoped_lock() noexcept { return detail::scoped_lock_awaiter(*this); }

    /// Takes the lock if it is free (and nobody is being handed it). Never suspends.
    [[nodiscard]] bool try_lock() noexcept {
        if (m_locked) return false;
        m_locked = true;
        return true;
    }

    /// Hands the lock to the first waiting task (which resumes on the next loop iteration), or
    /// unlocks. Throws invalid_state_error if the mutex is not locked.
    void unlock() {
        if (!m_locked) throw invalid_state_error("coring: mutex::unlock() called on a mutex that is not locked");
        release_to_next();
    }

    /// True while a task holds the lock or is being handed it.
    [[nodiscard]] bool locked() const noexcept { return m_locked; }

private:
    friend detail::lock_awaiter;
    friend detail::condition_wait_awaiter;
    friend class mutex_guard;

    bool try_take() noexcept { return try_lock(); }

    // Invariant: tasks wait only while m_locked; a waiter that is granted the lock owns it
    // (m_locked stays true through the hand-off).
    void release_to_next() noexcept {
        if (detail::sync_waiter* next = m_waiters.front())
            m_waiters.grant(*next);
        else
            m_locked = false;
    }

    /// For a condition wait: takes the lock for `waiter` now (waking it), or queues it.
    void acquire_for(detail::sync_waiter& waiter) noexcept {
        if (!m_locked) {
            m_locked = true;
            m_waiters.grant(waiter);
        } else {
            m_waiters.push_back(waiter);
        }
    }

    detail::wait_queue m_waiters;
    bool m_locked = false;
};

/// Owns a locked mutex and unlocks it when destroyed (std::unique_lock's role). Movable; a
/// moved-from or released guard owns nothing.
class [[nodiscard]] mutex_guard {
public:
    mutex_guard() noexcept = default;
    /// Adopts a lock the caller holds: `if (m.try_lock()) { mutex_guard g(m, std::adopt_lock); }`.
    mutex_guard(mutex& m, std::adopt_lock_t) noexcept : m_mutex(&m) {}
    mutex_guard(mutex_guard&& other) noexcept : m_mutex(std::exchange(other.m_mutex, nullptr)) {}
    mutex_guard& operator=(mutex_guard&& other) noexcept {
        if (this != &other) {
            reset();
            m_mutex = std::exchange(other.m_mutex, nullptr);
        }
        return *this;
    }
    mutex_guard(const mutex_guard&) = delete;
    mutex_guard& operator=(const mutex_guard&) = delete;
    ~mutex_guard() { reset(); }

    /// Unlocks early. Throws invalid_state_error if the guard owns nothing.
    void unlock() {
        if (m_mutex == nullptr) throw invalid_state_error("coring: mutex_guard::unlock() on a guard that owns no lock");
        std::exchange(m_mutex, nullptr)->unlock();
    }

    [[nodiscard]] bool owns_lock() const noexcept { return m_mutex != nullptr; }
    explicit operator bool() const noexcept { return owns_lock(); }

    /// The mutex this guard locks, or null.
    [[nodiscard]] coring::mutex* owner() const noexcept { return m_mutex; }

    /// Stops owning the lock without unlocking it; returns the mutex (the caller unlocks it).
    coring::mutex* release() noexcept { return std::exchange(m_mutex, nullptr); }

private:
    void reset() noexcept {
        if (coring::mutex* m = std::exchange(m_mutex, nullptr)) {
            assert(m->m_locked && "a mutex_guard's mutex was unlocked behind its back");
            if (m->m_locked) m->release_to_next();
        }
    }

    coring::mutex* m_mutex = nullptr;
};

}  // namespace coring
