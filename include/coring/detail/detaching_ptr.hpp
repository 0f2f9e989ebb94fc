#pragma once
// detaching_ptr<State>: the owner of a state that outlives its handle. Multishot requests
// (io::multishot_accept, io::multishot_recv) keep an SQE armed in the kernel, so their state
// cannot be freed when the handle goes: the handle calls State::detach() instead, which stops the
// request and frees the state now or on the request's last CQE.

#include <memory>

namespace coring::detail {

struct detach_deleter {
    template <class State>
    void operator()(State* state) const noexcept {
        state->detach();
    }
};

/// Moves; null once moved from; detaches the state when destroyed.
template <class State>
using detaching_ptr = std::unique_ptr<State, detach_deleter>;

}  // namespace coring::detail
