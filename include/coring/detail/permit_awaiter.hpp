#pragma once
// permit_awaiter: waiting for one unit of something a primitive hands to one waiter at a time,
// first-in first-out: the lock of a mutex (mutex.hpp), a permit of a semaphore (semaphore.hpp).
//
// The primitive (Owner) gives its permit awaiters, as friends:
//   bool try_take() noexcept         takes a unit now if one is free (await_ready; never suspends)
//   wait_queue m_waiters             where waiters queue while nothing is free
//   void release_to_next() noexcept  hands a unit to the first waiter, or gives it back
//   void after_acquire() noexcept    (optional) runs once a waiter has its unit
// A waiter that is granted a unit owns it from that moment (the unit never passes through the
// owner's counter or flag). Cancelled while it waits, it takes nothing; cancelled after the
// grant but before it resumed, it passes the unit on and the cancel wins.
//
// scoped_permit_awaiter yields a Guard that owns the unit (mutex_guard, semaphore_permit); the
// Guard adopts it through a constructor Guard(Owner&, std::adopt_lock_t).

#include <coring/detail/wait_queue.hpp>

#include <coroutine>
#include <mutex>  // std::adopt_lock
#include <utility>

namespace coring::detail {

/// co_await owner.lock() / acquire(). `Name` names the owner in errors ("coring::mutex"),
/// `What` the operation in the task dump ("mutex.lock"). Movable before it is awaited.
template <class Owner, const char* Name, const char* What>
class permit_awaiter : public sync_waiter {
public:
    explicit permit_awaiter(Owner& owner) noexcept : m_owner(&owner) {}
    permit_awaiter(permit_awaiter&& other) noexcept : sync_waiter(std::move(other)), m_owner(other.m_owner) {}

    /// Takes a free unit without suspending.
    [[nodiscard]] bool await_ready() const noexcept { return m_owner->try_take(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> frame) { return suspend_on(m_owner->m_waiters, frame, operations_); }
    void await_resume() {
        finish_wait(Name);
        // An owner that keeps units while granted waiters have not resumed (the semaphore, as
        // asyncio's) hands what it kept to the next waiter now.
        if constexpr (requires(Owner& o) { o.after_acquire(); }) m_owner->after_acquire();
    }

protected:
    static void on_cancel(ready_node* node) noexcept {
        auto& self = from_node<permit_awaiter>(node);
        // Handed a unit in this iteration but not resumed yet: it goes to the next waiter.
        self.cancel_wait([&self] { self.m_owner->release_to_next(); });
    }
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe_as<What>, ::coring::detail::wait_kind::lock};

    Owner* m_owner;
};

/// co_await owner.scoped_lock() / scoped_acquire(): the same, yielding a Guard that owns the unit.
template <class Owner, class Guard, const char* Name, const char* What>
class scoped_permit_awaiter final : public permit_awaiter<Owner, Name, What> {
    using base = permit_awaiter<Owner, Name, What>;

public:
    using base::base;
    scoped_permit_awaiter(scoped_permit_awaiter&&) noexcept = default;

    [[nodiscard]] Guard await_resume() {
        base::await_resume();
        return Guard(*this->m_owner, std::adopt_lock);
    }
};

}  // namespace coring::detail
