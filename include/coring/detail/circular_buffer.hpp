#pragma once
// circular_buffer<T>: a growable FIFO in one power-of-two array, for coring::queue.
//
// push_back, push_front and pop_front are a few instructions and allocate only when the buffer
// grows (it doubles, and never shrinks): a queue that a producer and a consumer keep near some
// size allocates nothing in its steady state, where std::deque allocates and frees a block every
// few hundred bytes that pass through it.
//
// Invariants: m_capacity is 0 or a power of two; the items are the m_size slots that start at
// index m_head, wrapping around; every other slot holds no object.

#include <cstddef>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace coring::detail {

template <class T>
class circular_buffer {
    static_assert(std::is_nothrow_move_constructible_v<T>, "circular_buffer moves items when it grows");

public:
    circular_buffer() noexcept = default;
    circular_buffer(circular_buffer&& other) noexcept
        : m_items(std::exchange(other.m_items, nullptr)),
          m_capacity(std::exchange(other.m_capacity, 0)),
          m_mask(std::exchange(other.m_mask, 0)),
          m_head(std::exchange(other.m_head, 0)),
          m_size(std::exchange(other.m_size, 0)) {}
    circular_buffer(const circular_buffer&) = delete;
    circular_buffer& operator=(const circular_buffer&) = delete;
    circular_buffer& operator=(circular_buffer&&) = delete;
    ~circular_buffer() {
        while (m_size > 0) (void)pop_front();
        if (m_items != nullptr) std::allocator<T>().deallocate(m_items, m_capacity);
    }

    [[nodiscard]] std::size_t size() const noexcept { return m_size; }
    [[nodiscard]] bool empty() const noexcept { return m_size == 0; }

    /// True if the next push_back or push_front does not allocate.
    [[nodiscard]] bool has_room() const noexcept { return m_size != m_capacity; }

    /// Appends `item`. Strong guarantee: if growing fails (std::bad_alloc), nothing changed and
    /// `item` was not moved from.
    void push_back(T&& item) {
        if (!has_room()) grow();
        push_back_in_room(std::move(item));
    }

    /// push_back when has_room(): it makes no call.
    void push_back_in_room(T&& item) noexcept {
        std::construct_at(slot(m_head + m_size), std::move(item));
        ++m_size;
    }

    /// Prepends `item` (it leaves first). Same guarantee as push_back.
    void push_front(T&& item) {
        if (!has_room()) grow();
        const std::size_t head = (m_head - 1) & m_mask;
        std::construct_at(slot(head), std::move(item));
        m_head = head;
        ++m_size;
    }

    /// Removes and returns the first item. The buffer must not be empty.
    T pop_front() noexcept {
        T* first = slot(m_head);
        T item = std::move(*first);
        std::destroy_at(first);
        m_head = (m_head + 1) & m_mask;
        --m_size;
        return item;
    }

private:
    T* slot(std::size_t index) const noexcept { return m_items + (index & m_mask); }

    void grow() {
        const std::size_t capacity = m_capacity == 0 ? 8 : m_capacity * 2;
        T* items = std::allocator<T>().allocate(capacity);  // the only step that can throw
        for (std::size_t i = 0; i < m_size; ++i) {
            T* from = slot(m_head + i);
            std::construct_at(items + i, std::move(*from));
            std::destroy_at(from);
        }
        if (m_items != nullptr) std::allocator<T>().deallocate(m_items, m_capacity);
        m_items = items;
        m_capacity = capacity;
        m_mask = capacity - 1;
        m_head = 0;
    }

    T* m_items = nullptr;
    std::size_t m_capacity = 0;
    std::size_t m_mask = 0;  // m_capacity - 1 once allocated: slot() is one AND
    std::size_t m_head = 0;
    std::size_t m_size = 0;
};

}  // namespace coring::detail
