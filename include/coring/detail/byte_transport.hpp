#pragma once
// detail::byte_transport and detail::transport_client: the seam between a stream's reader and
// writer states and what carries their bytes. Today the socket (net/socket_transport.hpp); a TLS
// session over the socket is another transport: it is the socket transport's client and the
// stream's transport at once.
//
//   stream_state (a transport_client) ── byte_transport& ──▶ socket_transport ──▶ io_uring
//        ▲                                                          │
//        └──────────── receive_space / received / sent / settle ◀───┘

#include <cstddef>
#include <exception>
#include <span>
#include <vector>

namespace coring::detail {

/// What a transport asks of the connection above it. Every call comes from a completion handler
/// or from a call into the transport, on the loop's thread.
class transport_client {
public:
    /// How many more received bytes the client wants now. 0 pauses receiving: bytes that arrive
    /// anyway are held back by the transport until take_held_back().
    [[nodiscard]] virtual std::size_t receive_room() const noexcept = 0;
    /// Room for at least `n` received bytes at the end of the client's buffer. It stays where it is
    /// until received() (the client moves its bytes only in this call). Throws std::bad_alloc.
    virtual std::span<std::byte> receive_space(std::size_t n) = 0;
    /// `n` bytes were written at the start of the last receive_space().
    virtual void received(std::size_t n) noexcept = 0;
    /// Receiving ended for good: 0 at the end of the stream, `truncated` when the stream ended
    /// without the end its protocol announces (TLS: no close_notify), else the errno.
    virtual void receive_ended(int error) noexcept = 0;
    static constexpr int truncated = -1;
    /// Bytes given to byte_transport::send() went out (error 0; the send may still be in flight
    /// for the rest), or sending failed for good and the unsent bytes were dropped.
    virtual void sent(int error) noexcept = 0;
    /// The last call of every completion handler: the client may finish a close, or free itself
    /// (and the transport with it) once nothing is in flight.
    virtual void settle() noexcept = 0;

protected:
    ~transport_client() = default;
};

/// A connected byte stream in both directions.
class byte_transport {
public:
    /// Arms receiving if the client has room and no receive is armed. Throws std::system_error
    /// if the ring has no SQE to give.
    virtual void receive() = 0;
    /// Bytes that arrived while the client had no room: moves them to the client, in order, for
    /// as long as it has taken fewer than `budget` of them.
    virtual void take_held_back(std::size_t budget) noexcept = 0;
    /// Bytes received and held back, not yet in the client's buffer.
    [[nodiscard]] virtual std::size_t held_back() const noexcept = 0;

    /// Starts sending `data` unless a send is in flight (then it does nothing: the client calls
    /// again from sent()). It may take the vector's storage: `data` comes back empty.
    virtual void send(std::vector<std::byte>& data) = 0;
    /// Bytes given to send() and not yet sent.
    [[nodiscard]] virtual std::size_t unsent() const noexcept = 0;
    /// Ends the sending direction (TCP's FIN) once everything given to send() is sent.
    virtual void shutdown_write() noexcept = 0;

    /// The stream closes: receiving stops for good (held-back bytes are dropped, an armed receive
    /// is cancelled) and the transport sends what ends its session (TLS: close_notify). The
    /// stream calls close() once busy() is false.
    virtual void begin_close() noexcept = 0;
    /// A kernel operation is still in flight: the transport may not be closed or destroyed.
    [[nodiscard]] virtual bool busy() const noexcept = 0;
    /// Closes the descriptor. Only once busy() is false; once.
    virtual void close() noexcept = 0;

    [[nodiscard]] virtual int native_fd() const noexcept = 0;
    [[nodiscard]] virtual bool uses_buffer_ring() const noexcept = 0;
    /// What made the transport fail, when an errno says too little (TLS: tls_error with
    /// OpenSSL's reason); null otherwise. Reads and drain() throw it instead of the errno.
    [[nodiscard]] virtual std::exception_ptr failure() const noexcept { return nullptr; }

protected:
    ~byte_transport() = default;
};

}  // namespace coring::detail
