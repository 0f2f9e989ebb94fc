#pragma once
// The loop's timers: a 4-ary min-heap of (deadline, node). Deadlines sit in the heap array so a
// comparison does not chase a pointer; the node keeps its index so a cancelled timer is removed
// in O(log n). Timers with equal deadlines fire in the order they were added (sequence number),
// which matters on virtual time where many deadlines coincide. Sequence numbers are 32 bits and
// compared modulo 2^32, which orders two equal deadlines correctly unless more than 2^31 timers
// were set between them.
//
// A timer_node is also a ready_node: when it expires the loop moves it to the ready queue.

#include <coring/detail/ready_queue.hpp>

#include <cassert>
#include <chrono>
#include <cstdint>
#include <utility>
#include <vector>

namespace coring::detail {

struct timer_node : ready_node {
    using ready_node::ready_node;
    static constexpr std::uint32_t not_scheduled = ~std::uint32_t{0};

    [[nodiscard]] bool scheduled() const noexcept { return m_heap_index != not_scheduled; }

    std::uint32_t m_seq = 0;
    std::uint32_t m_heap_index = not_scheduled;
};

class timer_heap {
public:
    using time_point = std::chrono::steady_clock::time_point;
    using duration = std::chrono::steady_clock::duration;

    [[nodiscard]] bool empty() const noexcept { return m_heap.empty(); }
    [[nodiscard]] std::size_t size() const noexcept { return m_heap.size(); }

    /// Precondition: !empty().
    [[nodiscard]] time_point next_deadline() const noexcept { return time_point(duration(m_heap.front().deadline)); }

    void push(timer_node& node, time_point deadline) {
        assert(!node.scheduled());
        node.m_seq = m_next_seq++;
        m_heap.push_back(entry{deadline.time_since_epoch().count(), &node});
        sift_up(m_heap.size() - 1);
    }

    void erase(timer_node& node) noexcept {
        assert(node.scheduled());
        const std::size_t i = node.m_heap_index;
        node.m_heap_index = timer_node::not_scheduled;
        const std::size_t last = m_heap.size() - 1;
        if (i != last) {
            m_heap[i] = m_heap[last];
            m_heap.pop_back();
            place(i);
            if (i > 0 && less(m_heap[i], m_heap[parent(i)]))
                sift_up(i);
            else
                sift_down(i);
        } else {
            m_heap.pop_back();
        }
        release_memory_if_idle();
    }

    /// The deadline of a scheduled timer.
    [[nodiscard]] time_point deadline_of(const timer_node& node) const noexcept {
        return time_point(duration(m_heap[node.m_heap_index].deadline));
    }

    /// Removes and returns the earliest timer if its deadline is at or before `now`.
    timer_node* pop_expired(time_point now) noexcept {
        if (m_heap.empty() || m_heap.front().deadline > now.time_since_epoch().count()) return nullptr;
        return pop();
    }

    /// Removes and returns the earliest timer, or nullptr.
    timer_node* pop() noexcept {
        if (m_heap.empty()) return nullptr;
        timer_node* node = m_heap.front().node;
        erase(*node);
        return node;
    }

private:
    struct entry {
        duration::rep deadline;
        timer_node* node;
    };

    static constexpr std::size_t arity = 4;
    static std::size_t parent(std::size_t i) noexcept { return (i - 1) / arity; }

    static bool less(const entry& a, const entry& b) noexcept {
        return a.deadline < b.deadline ||
               (a.deadline == b.deadline && static_cast<std::int32_t>(a.node->m_seq - b.node->m_seq) < 0);
    }

    void place(std::size_t i) noexcept { m_heap[i].node->m_heap_index = static_cast<std::uint32_t>(i); }

    void sift_up(std::size_t i) noexcept {
        entry moving = m_heap[i];
        while (i > 0) {
            const std::size_t p = parent(i);
            if (!less(moving, m_heap[p])) break;
            m_heap[i] = m_heap[p];
            place(i);
            i = p;
        }
        m_heap[i] = moving;
        place(i);
    }

    void sift_down(std::size_t i) noexcept {
        const std::size_t n = m_heap.size();
        entry moving = m_heap[i];
        for (;;) {
            const std::size_t first = i * arity + 1;
            if (first >= n) break;
            std::size_t best = first;
            const std::size_t end = first + arity < n ? first + arity : n;
            for (std::size_t c = first + 1; c < end; ++c)
                if (less(m_heap[c], m_heap[best])) best = c;
            if (!less(m_heap[best], moving)) break;
            m_heap[i] = m_heap[best];
            place(i);
            i = best;
        }
        m_heap[i] = moving;
        place(i);
    }

    // A burst of timers must not pin its peak memory for the life of the loop.
    void release_memory_if_idle() noexcept {
        if (m_heap.empty() && m_heap.capacity() > 4096) std::vector<entry>().swap(m_heap);
    }

    std::vector<entry> m_heap;
    std::uint32_t m_next_seq = 0;
};

}  // namespace coring::detail
