#pragma once
// detail::byte_buffer: the growable byte buffer a stream's reader keeps what it received in.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace coring::detail {

/// The bytes [m_begin, m_end) of one allocation. It moves its bytes only in make_room(), so a
/// receive into tail() stays valid until it completes as long as nobody calls make_room()
/// meanwhile.
class byte_buffer {
public:
    [[nodiscard]] std::size_t size() const noexcept { return m_end - m_begin; }
    [[nodiscard]] bool empty() const noexcept { return m_end == m_begin; }
    [[nodiscard]] const char* data() const noexcept { return reinterpret_cast<const char*>(m_data.get()) + m_begin; }
    [[nodiscard]] std::string_view view() const noexcept { return {data(), size()}; }

    void consume(std::size_t n) noexcept { m_begin += n; }
    std::string take(std::size_t n) {
        std::string out(data(), n);
        consume(n);
        return out;
    }

    /// Makes room for `n` more bytes at the tail: moves the bytes to the front, or grows.
    /// `keep_at_most` bounds the memory kept when the buffer is empty (a large read is over).
    void make_room(std::size_t n, std::size_t keep_at_most) {
        if (m_begin == m_end) {
            m_begin = m_end = 0;
            if (m_capacity > keep_at_most && n <= keep_at_most) {
                m_data.reset();
                m_capacity = 0;
            }
        }
        if (m_capacity - m_end >= n) return;
        const std::size_t used = size();
        if (m_capacity - used >= n && m_begin >= used) {  // moving is cheaper than growing
            std::memmove(m_data.get(), m_data.get() + m_begin, used);
            m_begin = 0;
            m_end = used;
            return;
        }
        std::size_t capacity = std::max<std::size_t>(m_capacity * 2, 1024);
        while (capacity < used + n) capacity *= 2;
        std::unique_ptr<std::byte[]> grown(new std::byte[capacity]);
        if (used > 0) std::memcpy(grown.get(), m_data.get() + m_begin, used);
        m_data = std::move(grown);
        m_capacity = capacity;
        m_begin = 0;
        m_end = used;
    }
    /// The free bytes at the tail (after make_room).
    [[nodiscard]] std::span<std::byte> tail() noexcept { return {m_data.get() + m_end, m_capacity - m_end}; }
    /// `n` bytes were written at the start of tail().
    void commit(std::size_t n) noexcept { m_end += n; }

private:
    std::unique_ptr<std::byte[]> m_data;
    std::size_t m_capacity = 0;
    std::size_t m_begin = 0;
    std::size_t m_end = 0;
};

}  // namespace coring::detail
