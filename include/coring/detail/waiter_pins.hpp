#pragma once
// How the state behind a multishot handle (io::multishot_accept, io::multishot_recv) outlives
// the handle while a suspended waiter still points at it. The handle's detach() hands every
// waiter State::detached_result (its await_resume throws invalid_state_error); the state frees
// itself only once its kernel request has ended and no waiter is pinned.
//
//   class my_state : public pinned_by_waiters<my_state> {
//       void free_if_unused() noexcept { if (m_detached && !active() && !pinned()) delete this; }
//   };
//   class my_waiter { ... state_pin<my_state> m_pin; };  // m_pin.pin(*state) in await_suspend

#include <climits>
#include <cstddef>

namespace coring::detail {

/// The base of such a state (CRTP): counts the waiters pinned to it; unpinning the last one
/// calls State::free_if_unused().
template <class State>
class pinned_by_waiters {
public:
    /// What detach() hands a waiter: next() on a handle destroyed while it was awaited.
    static constexpr int detached_result = INT_MIN;

    void pin() noexcept { ++m_pins; }
    void unpin() noexcept {
        --m_pins;
        static_cast<State*>(this)->free_if_unused();
    }

protected:
    [[nodiscard]] bool pinned() const noexcept { return m_pins != 0; }

private:
    std::size_t m_pins = 0;  // suspended waiters that point here
};

/// A waiter's pin on its state, released when the waiter is destroyed (its frame resumed or was
/// destroyed). A moved waiter (before it is awaited) starts unpinned.
template <class State>
class state_pin {
public:
    state_pin() noexcept = default;
    state_pin(const state_pin&) = delete;
    state_pin& operator=(const state_pin&) = delete;
    ~state_pin() {
        if (m_state != nullptr) m_state->unpin();
    }

    void pin(State& state) noexcept {
        state.pin();
        m_state = &state;
    }

private:
    State* m_state = nullptr;
};

}  // namespace coring::detail
