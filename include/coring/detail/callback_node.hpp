#pragma once
// A callable queued to run once on the loop: call_soon's (drawn from the frame pool) and
// call_soon_threadsafe's (allocated by another thread, so it bypasses the thread-local pool).
// It carries the context its creator had (null: none set) and runs in it.

#include <coring/detail/context_map.hpp>
#include <coring/detail/frame_pool.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/scheduler.hpp>

#include <cstddef>
#include <new>
#include <utility>

namespace coring::detail {

template <class F, bool Pooled>
class callback_node final : public ready_node {
public:
    template <class G>
    callback_node(scheduler& loop, context_map* context, G&& function)
        : ready_node(operations_), m_loop(&loop), m_function(std::forward<G>(function)), m_context(context_ref::share(context)) {}

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
    static void fire(ready_node* node, action what) noexcept {
        auto* self = static_cast<callback_node*>(node);
        if (what == action::run) self->m_loop->run_callback(self->m_function, self->m_context.detach());
        delete self;
    }
    static constexpr operations operations_{&fire};

    scheduler* m_loop;
    F m_function;
    context_ref m_context;
};

}  // namespace coring::detail
