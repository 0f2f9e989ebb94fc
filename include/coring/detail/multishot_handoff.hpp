#pragma once
// detail::multishot_handoff and detail::multishot_waiter: how the results of a multishot kernel
// request (io::multishot_accept's descriptors, io::multishot_recv's chunks) reach the tasks that
// await next(). Each result goes to the first waiting task, or is queued until a next() takes
// it. A waiter that was handed a result and then cancelled before it ran gives it back here: to
// the next waiter, or to the front of the queue, so nothing is lost and the order is kept.
//
// State (CRTP) derives from multishot_handoff<State, Item> and provides:
//   void discard(Item&) noexcept;             // a result nobody will take: close the
//                                             // descriptor, give the buffer back to its ring
//   static bool is_final(const Item&) noexcept;  // true for a result that every later next()
//                                             // gets again (so it is never queued)
//   void free_if_unused() noexcept;           // called when the last pinned waiter goes

#include <coring/detail/circular_buffer.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/waiter_pins.hpp>

#include <cassert>
#include <cstddef>
#include <utility>

namespace coring::detail {

struct multishot_waiter_tag;
template <class State, class Item>
class multishot_waiter;

/// Invariants: while a waiter waits, the queue is empty (a result goes to the first waiter);
/// once detached, nothing is queued and no waiter waits.
template <class State, class Item>
class multishot_handoff : public pinned_by_waiters<State> {
public:
    using waiter = multishot_waiter<State, Item>;

    multishot_handoff() = default;
    multishot_handoff(const multishot_handoff&) = delete;
    multishot_handoff& operator=(const multishot_handoff&) = delete;

    /// A result came: to the first waiter, else to the back of the queue. False: it could not
    /// be queued (out of memory) and was discarded.
    bool deliver(Item item) noexcept {
        if (hand_to_first(item)) return true;
        try {
            m_queue.push_back(Item(item));
        } catch (...) {
            self().discard(item);
            return false;
        }
        return true;
    }
    /// Hands `item` to the first waiter; false if nobody waits.
    bool hand_to_first(Item item) noexcept {
        waiter* w = m_waiters.pop_front();
        if (w == nullptr) return false;
        w->hand(std::move(item));
        return true;
    }
    /// The one place for a result handed to a waiter that was cancelled before it ran.
    void give_back(Item item) noexcept {
        if (State::is_final(item)) return;  // every next() gets it again anyway
        if (m_detached) {
            self().discard(item);
            return;
        }
        if (hand_to_first(item)) return;
        try {
            m_queue.push_front(Item(item));
        } catch (...) {
            self().discard(item);  // out of memory: the result is lost
        }
    }

    [[nodiscard]] bool has_queued() const noexcept { return !m_queue.empty(); }
    Item pop_queued() noexcept { return m_queue.pop_front(); }
    [[nodiscard]] std::size_t queued() const noexcept { return m_queue.size(); }
    [[nodiscard]] bool has_waiters() const noexcept { return !m_waiters.empty(); }
    void add_waiter(waiter& w) noexcept { m_waiters.push_back(w); }
    void remove_waiter(waiter& w) noexcept { m_waiters.erase(w); }

    /// The handle goes away: the queued results are discarded and every waiter is handed
    /// `detached` (its await_resume throws).
    void detach_waiters(Item detached) noexcept {
        m_detached = true;
        while (!m_queue.empty()) {
            Item item = m_queue.pop_front();
            self().discard(item);
        }
        while (waiter* w = m_waiters.pop_front()) w->hand(detached);
    }
    [[nodiscard]] bool detached() const noexcept { return m_detached; }

protected:
    // A state frees itself only after detach_waiters(), which emptied the queue.
    ~multishot_handoff() { assert(m_queue.empty() && m_waiters.empty()); }

private:
    State& self() noexcept { return static_cast<State&>(*this); }

    circular_buffer<Item> m_queue;
    intrusive_list<waiter, multishot_waiter_tag> m_waiters;
    bool m_detached = false;
};

/// The part of a next() awaiter that waits for a handed result. The derived awaiter supplies
/// await_ready / await_suspend / await_resume and its operations table, with on_cancel below.
template <class State, class Item>
class multishot_waiter : public leaf_awaiter<ready_node>, public list_hook<multishot_waiter_tag> {
public:
    /// The state hands this waiter `item` and schedules it.
    void hand(Item item) noexcept {
        m_item = std::move(item);
        m_handed = true;
        wake();
    }

protected:
    multishot_waiter(const operations& ops, State* state) noexcept : leaf_awaiter(ops), m_state(state) {}
    multishot_waiter(multishot_waiter&& other) noexcept : leaf_awaiter(std::move(other)), m_state(other.m_state) {}

    /// Waits for the next result (after begin_suspend): pins the state while suspended.
    void wait_for_result() noexcept {
        m_state->add_waiter(*this);
        m_pin.pin(*m_state);
    }

    /// A cancel wins and takes nothing: a result already handed goes back to the state.
    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<multishot_waiter*>(node);
        self->take_cancel_request();
        self->mark_cancelled();
        if (self->m_handed) {
            self->m_handed = false;
            self->m_state->give_back(std::move(self->m_item));  // already scheduled: it throws when it runs
        } else {
            self->m_state->remove_waiter(*self);
            self->wake();
        }
    }

    State* m_state;
    Item m_item{};
    bool m_handed = false;  // a result was handed over and the frame is queued to resume
    state_pin<State> m_pin;  // keeps the state alive while this is suspended
};

}  // namespace coring::detail
