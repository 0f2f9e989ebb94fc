#pragma once
// detail::writer_state: the writing half of a stream (net/stream.hpp). write() buffers and never
// blocks; a send is in flight whenever bytes are buffered. Once the buffered amount went above
// the high-water mark, drain() waits until it is down to the low-water mark.

#include <coring/detail/byte_transport.hpp>
#include <coring/detail/wait_queue.hpp>
#include <coring/errors.hpp>
#include <coring/net/stream_peer.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <exception>
#include <span>
#include <system_error>
#include <vector>

namespace coring::detail {

/// Invariants: m_pending holds what write() buffered while the transport was sending; it is
/// handed over each time the transport reports progress. m_writable is false exactly while the
/// buffered amount went above high water and has not yet come down to low water (and no send
/// failed, and the stream is not closed).
class writer_state {
public:
    writer_state(byte_transport& transport, const stream_peer& peer, std::size_t high_water, std::size_t low_water) noexcept
        : m_transport(&transport), m_peer(&peer), m_high(high_water), m_low(std::min(low_water, high_water)) {}
    writer_state(const writer_state&) = delete;
    writer_state& operator=(const writer_state&) = delete;
    ~writer_state() { m_drain_waiters.abandon("coring::stream_writer (drain)"); }

    void write(std::span<const std::byte> data) {
        if (m_closing) throw invalid_state_error("coring: write() on a stream_writer after close()");
        if (m_eof_requested) throw invalid_state_error("coring: write() on a stream_writer after write_eof()");
        if (m_sendfile) throw invalid_state_error("coring: write() on a stream_writer while sendfile() is in progress");
        append(data);
    }
    /// write() without its checks: for sendfile's own chunks, where no kernel path exists.
    void append(std::span<const std::byte> data) {
        if (m_error != 0 || data.empty()) return;
        m_pending.insert(m_pending.end(), data.begin(), data.end());
        m_transport->send(m_pending);
        update_writable();
    }
    /// A sendfile owns the sending direction while it runs: write() is refused meanwhile, as
    /// asyncio refuses it ("sendfile is in progress").
    void set_sendfile_in_progress(bool on) noexcept { m_sendfile = on; }
    [[nodiscard]] bool sendfile_in_progress() const noexcept { return m_sendfile; }
    void write_eof() noexcept {
        if (m_closing || m_eof_requested) return;
        m_eof_requested = true;
        m_transport->shutdown_write();
    }
    [[nodiscard]] std::size_t buffered() const noexcept { return m_pending.size() + m_transport->unsent(); }
    [[nodiscard]] int error() const noexcept { return m_error; }
    [[noreturn]] void throw_error() const {
        if (std::exception_ptr failure = m_transport->failure()) std::rethrow_exception(failure);
        throw_errno(m_error, m_peer->sending());
    }
    /// From now on the bytes go through `transport` (start_tls; nothing is buffered then).
    void set_transport(byte_transport& transport) noexcept { m_transport = &transport; }
    [[nodiscard]] std::size_t high_water() const noexcept { return m_high; }
    [[nodiscard]] std::size_t low_water() const noexcept { return m_low; }
    void set_limits(std::size_t high, std::size_t low) noexcept {
        m_high = high;
        m_low = std::min(low, high);
        update_writable();
    }
    wait_queue& drain_waiters() noexcept { return m_drain_waiters; }
    [[nodiscard]] const bool& writable() const noexcept { return m_writable; }

    // ---- from the connection
    /// The transport sent bytes, or failed for good.
    void sent(int error) noexcept {
        if (error == 0 && m_error == 0) {
            try {
                m_transport->send(m_pending);
            } catch (const std::system_error& e) {
                error = e.code().value();
            }
        }
        if (error != 0 && m_error == 0) {
            m_error = error;
            m_pending.clear();  // a failed stream drops what was buffered
        }
        update_writable();
    }
    /// close() was called: no more writes.
    void close() noexcept { m_closing = true; }
    /// The descriptor is closed: drain() returns.
    void closed() noexcept {
        m_closed = true;
        update_writable();
    }

private:
    void update_writable() noexcept {
        if (m_writable) {
            if (buffered() > m_high && m_error == 0 && !m_closed) m_writable = false;
        } else if (buffered() <= m_low || m_error != 0 || m_closed) {
            m_writable = true;
            m_drain_waiters.grant_all();
        }
    }

    byte_transport* m_transport;
    const stream_peer* m_peer;
    std::vector<std::byte> m_pending;
    std::size_t m_high;
    std::size_t m_low;
    wait_queue m_drain_waiters;
    int m_error = 0;
    bool m_writable = true;
    bool m_eof_requested = false;  // write_eof() called
    bool m_closing = false;        // close() called
    bool m_closed = false;         // the descriptor is closed
    bool m_sendfile = false;       // a sendfile() runs
};

}  // namespace coring::detail
