#pragma once
// owned_node: a ready_node that calls a member function of the object holding it. For objects
// that send several messages of their own at once (run_on's start and cancel messages, each
// loop's start in a loop_group), where the object cannot itself be each of those nodes.

#include <coring/detail/ready_queue.hpp>

namespace coring::detail {

template <class Owner>
class owned_node final : public ready_node {
public:
    using handler = void (Owner::*)(action) noexcept;

    owned_node(Owner& owner, handler on_run) noexcept : ready_node(operations_), m_owner(&owner), m_handler(on_run) {}
    owned_node(const owned_node&) = delete;
    owned_node& operator=(const owned_node&) = delete;

private:
    static void dispatch(ready_node* node, action what) noexcept {
        auto* self = static_cast<owned_node*>(node);
        (self->m_owner->*self->m_handler)(what);
    }
    static constexpr operations operations_{&dispatch};

    Owner* m_owner;
    handler m_handler;
};

}  // namespace coring::detail
