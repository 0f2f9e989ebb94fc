#pragma once
// A callable queued to run once on the loop: call_soon's (drawn from the frame pool) and
// call_soon_threadsafe's (allocated by another thread, so it bypasses the thread-local pool).
//
// With `Captures`, the node carries its creator's context (context_var.hpp) and the callable
// runs in it. The schedulers pick that kind only on a thread that has seen a context
// (t_contexts_used): a program that never sets a variable queues nodes without the field and
// runs them without installing anything.

#include <coring/detail/context_map.hpp>
#include <coring/detail/frame_pool.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/state_base.hpp>

#include <cstddef>
#include <new>
#include <type_traits>
#include <utility>

namespace coring::detail {

template <class F, bool Pooled, bool Captures = false>
class callback_node final : public ready_node {
public:
    /// With `Captures`, the callable will run in a copy of the calling code's context.
    template <class G>
    callback_node(scheduler& loop, G&& function)
        : ready_node(operations_), m_loop(&loop), m_function(std::forward<G>(function)), m_context(initial_context()) {}

    static void* operator new(std::size_t size) {
        if constexpr (Pooled)
            return frame_pool::allocate(size);
        else
            return ::operator new(size);
    }
    static void operator delete(void* block, std::size_t size) noexcept {
        if constexpr (Pooled)
            frame_pool::deallocate(block, size);
        else
            ::operator delete(block);
    }

private:
    struct no_context {};
    using context_field = std::conditional_t<Captures, context_map*, no_context>;

    static context_field initial_context() noexcept {
        if constexpr (Captures)
            return capture_context();
        else
            return {};
    }

    static void fire(ready_node* node, action what) noexcept {
        auto* self = static_cast<callback_node*>(node);
        if constexpr (Captures) {
            if (what == action::run)
                self->m_loop->run_callback(self->m_function, self->m_context);  // which takes the reference
            else if (self->m_context != nullptr)
                context_slot::release(self->m_context);
        } else if (what == action::run) {
            self->m_loop->run_callback(self->m_function);
        }
        delete self;
    }
    static constexpr operations operations_{&fire};

    scheduler* m_loop;
    F m_function;
    // One reference, until fire(); a raw pointer (no destructor check), taken last, once nothing
    // can throw any more.
    [[no_unique_address]] context_field m_context;
};

}  // namespace coring::detail
