#pragma once
// detail::socket_transport: a stream's bytes over a connected socket (the byte_transport of
// plaintext streams; detail/byte_transport.hpp describes the seam), or over one end of a pipe
// (a child process's stdin, stdout or stderr: process.hpp).
//
// Receiving. Where the kernel has provided-buffer rings (5.19) it receives with a multishot recv
// on a buffer ring (io/buffer_ring.hpp): one SQE stays armed; each CQE's chunk is copied into the
// client's buffer and its provided buffer goes back to the ring at once, so a ring shared by
// every connection of a server never stays empty for long, and ENOBUFS (the ring ran dry)
// re-arms as soon as buffers are back. Elsewhere it receives with plain recv straight into the
// client's buffer. While the client has no room the receive is paused (cancelled); chunks already
// on their way stay held back in their provided buffers until the client takes them.
//
// Sending. One send is in flight at a time, of m_sending; send() swaps the client's vector in
// once the previous one is sent, so the kernel never reads memory that is moving.
//
// Pipes. recv and send work on sockets only: on a pipe end the same paths use read and write
// (without a buffer ring), and shutting down the writing direction closes the write end, which
// is how a pipe's reader sees its end. A write end never receives.

#include <coring/detail/byte_transport.hpp>
#include <coring/detail/ring.hpp>
#include <coring/event_loop.hpp>
#include <coring/io/buffer_ring.hpp>

#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <system_error>
#include <utility>
#include <vector>

namespace coring::detail {

/// Invariants:
/// - A chunk is held back only if the client had no room, or chunks were held back already,
///   when it arrived; held-back chunks follow the client's bytes, in order.
/// - After begin_close() nothing is held back and no receive is armed again.
/// - A send is in flight whenever m_sending has bytes after m_send_pos and no send failed.
/// - The descriptor is shut down for writing (m_shut_down) only once nothing is in flight to send.
class socket_transport final : public byte_transport, public multishot_recv_core<socket_transport> {
public:
    /// What the descriptor is: a socket, or the read or write end of a pipe.
    enum class descriptor : unsigned char { socket, pipe_read_end, pipe_write_end };

    /// Takes ownership of `fd`. `ring` null: plain recv of `recv_size` bytes at a time.
    socket_transport(event_loop& loop, int fd, io::buffer_ring_ptr ring, std::size_t recv_size, transport_client& client) noexcept
        : multishot_recv_core(loop, fd, std::move(ring)),
          m_plain_op(this, &on_plain_recv),
          m_send_op(this, &on_send),
          m_client(&client),
          m_recv_size(recv_size == 0 ? 16 * 1024 : recv_size) {}

    socket_transport(const socket_transport&) = delete;
    socket_transport& operator=(const socket_transport&) = delete;
    ~socket_transport() {
        assert(!busy() && m_held.empty());
        if (!m_fd_closed && fd() >= 0) ::close(fd());  // a stream that failed to start (its TLS session)
    }

    // ---- byte_transport
    void receive() override {
        if (m_descriptor == descriptor::pipe_write_end || !wants_data()) return;
        if (has_ring())
            start();
        else
            arm_plain();
    }
    void take_held_back(std::size_t budget) noexcept override;
    [[nodiscard]] std::size_t held_back() const noexcept override {
        std::size_t n = 0;
        for (const held_chunk& c : m_held) n += c.size;
        return n;
    }
    void send(std::vector<std::byte>& data) override;
    [[nodiscard]] std::size_t unsent() const noexcept override { return m_sending.size() - m_send_pos; }
    void shutdown_write() noexcept override {
        m_shutdown_requested = true;
        if (!m_send_in_flight) shut_down();
    }
    void begin_close() noexcept override;
    [[nodiscard]] bool busy() const noexcept override { return active() || m_plain_in_flight || m_send_in_flight; }
    void close() noexcept override {
        assert(!busy());
        if (!m_fd_closed && fd() >= 0) ::close(fd());
        m_fd_closed = true;
    }
    [[nodiscard]] int native_fd() const noexcept override { return m_fd_closed ? -1 : fd(); }
    [[nodiscard]] bool uses_buffer_ring() const noexcept override { return has_ring(); }

    /// From now on, another client gets the bytes (a TLS session sits between the socket and the
    /// stream).
    void set_client(transport_client& client) noexcept { m_client = &client; }
    /// The descriptor is a pipe end: read and write instead of recv and send. Before the first
    /// receive(), and only for a transport made without a buffer ring.
    void use_pipe(descriptor end) noexcept {
        assert(!has_ring() && end != descriptor::socket);
        m_descriptor = end;
    }
    /// Bytes per plain recv (or the size of the ring's buffers).
    [[nodiscard]] std::size_t receive_size() const noexcept { return m_recv_size; }

    // ---- multishot_recv_core's interface
    void on_chunk(std::uint16_t bid, std::size_t size) noexcept;
    void on_end(int result) noexcept;
    [[nodiscard]] bool wants_data() const noexcept { return !m_receive_stopped && m_held.empty() && m_client->receive_room() > 0; }
    void on_idle() noexcept { m_client->settle(); }

private:
    /// A kernel operation of the transport other than the multishot receive.
    struct op final : io_completion {
        op(socket_transport* owner, function complete) noexcept : io_completion(complete), m_owner(owner) {}
        socket_transport* m_owner;
    };
    struct held_chunk {
        std::uint16_t bid;
        std::size_t size;
    };

    /// Copies a provided buffer into the client's buffer. False: out of memory.
    bool deliver(std::uint16_t bid, std::size_t size) noexcept;
    void arm_plain();
    void send_rest();
    void shut_down() noexcept {
        if (m_shut_down) return;
        m_shut_down = true;
        if (m_descriptor == descriptor::socket) {
            ::shutdown(fd(), SHUT_WR);
        } else if (!m_fd_closed) {
            ::close(fd());  // a pipe's reader sees its end when the last write end closes
            m_fd_closed = true;
        }
    }

    static void on_plain_recv(io_completion* base, int result, unsigned flags) noexcept;
    static void on_send(io_completion* base, int result, unsigned flags) noexcept;

    op m_plain_op;
    op m_send_op;
    transport_client* m_client;
    std::vector<held_chunk> m_held;
    std::vector<std::byte> m_sending;
    std::size_t m_send_pos = 0;
    std::size_t m_recv_size;
    bool m_plain_in_flight = false;  // a plain recv into the client's buffer
    bool m_send_in_flight = false;
    bool m_send_failed = false;
    bool m_receive_stopped = false;
    bool m_shutdown_requested = false;
    bool m_shut_down = false;
    bool m_fd_closed = false;
    descriptor m_descriptor = descriptor::socket;
};

// ---------------------------------------------------------------------- receiving

inline bool socket_transport::deliver(std::uint16_t bid, std::size_t size) noexcept {
    try {
        const std::span<std::byte> space = m_client->receive_space(size);
        std::memcpy(space.data(), ring().data(bid), size);
    } catch (...) {
        return false;
    }
    ring().recycle(bid);
    m_client->received(size);
    return true;
}

inline void socket_transport::take_held_back(std::size_t budget) noexcept {
    std::size_t moved = 0;
    std::size_t bytes = 0;
    while (moved < m_held.size() && bytes < budget) {
        const held_chunk c = m_held[moved];
        if (!deliver(c.bid, c.size)) break;  // out of memory: the rest stays held back
        bytes += c.size;
        ++moved;
    }
    m_held.erase(m_held.begin(), m_held.begin() + static_cast<std::ptrdiff_t>(moved));
}

inline void socket_transport::on_chunk(std::uint16_t bid, std::size_t size) noexcept {
    if (m_receive_stopped) {
        ring().recycle(bid);  // closing: nobody reads any more
        return;
    }
    if (m_held.empty() && m_client->receive_room() > 0 && deliver(bid, size)) {
        if (!wants_data()) stop();  // the client is full: pause until it takes its bytes
        return;
    }
    try {
        m_held.push_back(held_chunk{bid, size});
    } catch (...) {
        ring().recycle(bid);
        m_client->receive_ended(ENOMEM);  // the chunk is lost: fail the stream rather than corrupt it
    }
    stop();
}

inline void socket_transport::on_end(int result) noexcept {
    if (result == 0)
        m_client->receive_ended(0);
    else if (!m_receive_stopped)
        m_client->receive_ended(-result);
}

inline void socket_transport::arm_plain() {
    if (m_plain_in_flight) return;
    const std::span<std::byte> space = m_client->receive_space(m_recv_size);
    io_uring_sqe* sqe = loop().get_sqe();
    const std::size_t length = std::min(space.size(), m_recv_size);
    if (m_descriptor == descriptor::socket)
        io_uring_prep_recv(sqe, fd(), space.data(), length, 0);
    else
        io_uring_prep_read(sqe, fd(), space.data(), static_cast<unsigned>(length), static_cast<std::uint64_t>(-1));  // -1: the current position
    loop().submit(sqe, m_plain_op);
    m_plain_in_flight = true;
}

inline void socket_transport::on_plain_recv(io_completion* base, int result, unsigned) noexcept {
    socket_transport* self = static_cast<op*>(base)->m_owner;
    self->m_plain_in_flight = false;
    if (result > 0) {
        self->m_client->received(static_cast<std::size_t>(result));
    } else if (result == 0) {
        self->m_client->receive_ended(0);
    } else if (result != -ECANCELED && result != -EINTR && !self->m_receive_stopped) {
        self->m_client->receive_ended(-result);
    }
    try {
        self->receive();  // on, unless the client is full, at the end or closing
    } catch (const std::system_error& e) {
        self->m_client->receive_ended(e.code().value());
    } catch (...) {
        self->m_client->receive_ended(ENOMEM);
    }
    self->m_client->settle();
}

inline void socket_transport::begin_close() noexcept {
    if (m_receive_stopped) return;
    m_receive_stopped = true;
    if (has_ring()) {
        stop();
    } else if (m_plain_in_flight) {
        try {
            loop().cancel_io(m_plain_op);
        } catch (...) {
            // No SQE: the recv ends with the connection.
        }
    }
    for (const held_chunk& c : m_held) ring().recycle(c.bid);
    m_held.clear();
}

// ---------------------------------------------------------------------- sending

inline void socket_transport::send(std::vector<std::byte>& data) {
    if (m_send_in_flight || m_send_failed) return;
    if (m_send_pos == m_sending.size()) {
        // The two vectors take turns, so steady sending allocates nothing.
        m_sending.clear();
        m_send_pos = 0;
        std::swap(m_sending, data);
    }
    if (!m_sending.empty()) send_rest();
}

inline void socket_transport::send_rest() {
    io_uring_sqe* sqe = loop().get_sqe();
    const std::size_t length = m_sending.size() - m_send_pos;
    if (m_descriptor == descriptor::socket)
        io_uring_prep_send(sqe, fd(), m_sending.data() + m_send_pos, length, MSG_NOSIGNAL);
    else
        io_uring_prep_write(sqe, fd(), m_sending.data() + m_send_pos, static_cast<unsigned>(std::min<std::size_t>(length, 1U << 30)),
                            static_cast<std::uint64_t>(-1));
    loop().submit(sqe, m_send_op);
    m_send_in_flight = true;
}

inline void socket_transport::on_send(io_completion* base, int result, unsigned) noexcept {
    socket_transport* self = static_cast<op*>(base)->m_owner;
    self->m_send_in_flight = false;
    int error = result < 0 && result != -EINTR ? -result : 0;
    if (result > 0) self->m_send_pos += static_cast<std::size_t>(result);
    if (error == 0 && self->m_send_pos < self->m_sending.size()) {
        try {
            self->send_rest();  // a partial send: the rest of the same bytes first
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
    }
    if (error != 0) {
        self->m_send_failed = true;
        self->m_sending.clear();
        self->m_send_pos = 0;
    }
    self->m_client->sent(error);  // the client hands over what it buffered meanwhile
    if (!self->m_send_in_flight && self->m_shutdown_requested) self->shut_down();
    self->m_client->settle();
}

}  // namespace coring::detail
