#pragma once
// detaching_ptr<State>: the owner of a state that outlives its handle. Multishot requests
// (io::multishot_accept, io::multishot_recv) keep an SQE armed in the kernel, so their state
// cannot be freed when the handle goes: the handle calls State::detach() instead, which stops the
// request and frees the state now or on the request's last CQE.

#include <utility>

namespace coring::detail {

template <class State>
class detaching_ptr {
public:
    explicit detaching_ptr(State* state) noexcept : m_state(state) {}
    detaching_ptr(detaching_ptr&& other) noexcept : m_state(std::exchange(other.m_state, nullptr)) {}
    detaching_ptr& operator=(detaching_ptr&& other) noexcept {
        if (this != &other) {
            reset();
            m_state = std::exchange(other.m_state, nullptr);
        }
        return *this;
    }
    detaching_ptr(const detaching_ptr&) = delete;
    detaching_ptr& operator=(const detaching_ptr&) = delete;
    ~detaching_ptr() { reset(); }

    /// Null once moved from.
    [[nodiscard]] State* get() const noexcept { return m_state; }

private:
    void reset() noexcept {
        if (m_state != nullptr) std::exchange(m_state, nullptr)->detach();
    }
    State* m_state;
};

}  // namespace coring::detail
