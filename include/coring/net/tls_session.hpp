#pragma once
// detail::tls_session and detail::tls_engine, without OpenSSL's headers: a stream holds a TLS
// session as its byte_transport (detail/byte_transport.hpp), over its socket transport. The
// OpenSSL implementation is in net/tls.hpp.

#include <coring/detail/byte_transport.hpp>
#include <coring/detail/wait_queue.hpp>
#include <coring/net/tls_context.hpp>

#include <memory>
#include <string>

namespace coring::detail {

class socket_transport;

/// A TLS session: the stream's transport, and the socket transport's client.
class tls_session : public byte_transport {
public:
    virtual ~tls_session() = default;
    /// True once the handshake is over, whether it succeeded or failed.
    [[nodiscard]] virtual const bool& handshake_over() const noexcept = 0;
    /// Tasks waiting for the handshake; granted when it is over.
    virtual wait_queue& handshake_waiters() noexcept = 0;
    /// Throws the handshake's tls_error if it failed.
    virtual void check_handshake() const = 0;
    /// What the handshake agreed on; null until it succeeded.
    [[nodiscard]] virtual const tls_info* info() const noexcept = 0;
};

/// What a tls_context holds: it starts sessions.
class tls_engine {
public:
    virtual ~tls_engine() = default;
    [[nodiscard]] virtual bool is_server() const noexcept = 0;
    /// A session over `socket`, whose client it becomes, for the connection `stream`.
    /// `peer_name` is the host name (or address) to verify on the client side; `peer_text` names
    /// the peer in error messages. The handshake starts with the session's first receive().
    [[nodiscard]] virtual std::unique_ptr<tls_session> start(socket_transport& socket, transport_client& stream, const std::string& peer_name,
                                                             const std::string& peer_text) = 0;
};

}  // namespace coring::detail

namespace coring {
inline bool tls_context::is_server() const noexcept { return m_engine && m_engine->is_server(); }
}  // namespace coring
