#pragma once
// TLS for streams on OpenSSL 3 (docs/api.md, "TLS"): asyncio's ssl= of open_connection and
// start_server. Link coring::tls (CMake) or coring-tls (pkg-config).
//
//   auto ctx = coring::tls_context::client();           // system trust store, host name checked
//   auto [r, w] = co_await coring::open_connection("example.org", 443, {.tls = ctx});
//   w.write("GET / HTTP/1.0\r\nHost: example.org\r\n\r\n");
//   std::string page = co_await r.read();
//
// How the bytes move. OpenSSL only transforms them, through a BIO over the session's own
// buffers (net/tls_bio.hpp): the ciphertext still travels through the stream's socket transport
// (net/socket_transport.hpp: the loop's io_uring receive and send, buffer rings included).
// Records are decrypted as they arrive, as far as the reader has room (its limit), so read-ahead
// stays bounded; the rest waits, encrypted, in the session's input buffer, and receiving pauses
// while that holds more than a few records. Writes buffered while a send is in flight are
// encrypted together when it completes: many small writes make few records.
//
// Closing sends close_notify after the buffered data. A peer that ends the TCP stream without
// close_notify gives the read in progress incomplete_read (asyncio's rule): the bytes may have
// been cut short by an attacker. A record that cannot be decrypted fails the stream: reads and
// drain() throw tls_error with OpenSSL's reason.
//
// Thread-safety: loop-bound. A TLS stream belongs to the event loop it was made on and is used by
// that loop's tasks; in debug mode, an operation started from another thread throws
// std::logic_error naming both threads. Several cores: one per loop of a loop_group
// (thread/loop_group.hpp). Make a tls_context per loop (examples/http_server.cpp does).

#include <coring/detail/byte_buffer.hpp>
#include <coring/detail/byte_transport.hpp>
#include <coring/detail/wait_queue.hpp>
#include <coring/net/socket_transport.hpp>
#include <coring/net/stream.hpp>
#include <coring/net/tls_bio.hpp>
#include <coring/net/tls_context.hpp>
#include <coring/net/tls_session.hpp>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstring>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

namespace coring {
namespace detail {

/// OpenSSL's reason for the oldest error in this thread's queue (the queue is cleared).
inline std::string openssl_reason(const char* otherwise = "unknown error") {
    const unsigned long e = ERR_get_error();
    ERR_clear_error();
    if (e == 0) return otherwise;
    if (const char* reason = ERR_reason_error_string(e)) return reason;
    char text[256];
    ERR_error_string_n(e, text, sizeof text);
    return text;
}

/// A tls_context's SSL_CTX.
class openssl_engine final : public tls_engine, public std::enable_shared_from_this<openssl_engine> {
public:
    explicit openssl_engine(bool server) : m_server(server) {
        m_ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
        if (m_ctx == nullptr) throw tls_error("SSL_CTX_new: " + openssl_reason());
        SSL_CTX_set_min_proto_version(m_ctx, TLS1_2_VERSION);
        // Renegotiation (TLS 1.2) is refused: a peer that asks for it fails its connection.
        SSL_CTX_set_options(m_ctx, SSL_OP_NO_RENEGOTIATION);
    }
    openssl_engine(const openssl_engine&) = delete;
    openssl_engine& operator=(const openssl_engine&) = delete;
    ~openssl_engine() override { SSL_CTX_free(m_ctx); }

    [[nodiscard]] bool is_server() const noexcept override { return m_server; }
    [[nodiscard]] std::unique_ptr<tls_session> start(socket_transport& socket, transport_client& stream, const std::string& peer_name,
                                                     const std::string& peer_text) override;

    [[nodiscard]] SSL_CTX* ctx() const noexcept { return m_ctx; }
    [[nodiscard]] bool verifies() const noexcept { return m_verify; }
    void set_verify(bool verify) noexcept {
        m_verify = verify;
        // A server asks for no client certificate (asyncio's server contexts do not either).
        if (!m_server) SSL_CTX_set_verify(m_ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    }
    void set_alpn(std::vector<unsigned char> wire) {
        m_alpn = std::move(wire);
        if (m_server) {
            SSL_CTX_set_alpn_select_cb(m_ctx, &select_alpn, this);
        } else if (SSL_CTX_set_alpn_protos(m_ctx, m_alpn.data(), static_cast<unsigned>(m_alpn.size())) != 0) {
            throw tls_error("set_alpn_protocols: " + openssl_reason());
        }
    }

private:
    /// The server's choice: its first protocol that the client offers; none in common: no ALPN.
    static int select_alpn(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in, unsigned in_len, void* arg) {
        auto* self = static_cast<openssl_engine*>(arg);
        unsigned char* chosen = nullptr;
        if (SSL_select_next_proto(&chosen, out_len, self->m_alpn.data(), static_cast<unsigned>(self->m_alpn.size()), in, in_len) !=
            OPENSSL_NPN_NEGOTIATED)
            return SSL_TLSEXT_ERR_NOACK;
        *out = chosen;
        return SSL_TLSEXT_ERR_OK;
    }

    SSL_CTX* m_ctx = nullptr;
    std::vector<unsigned char> m_alpn;  // wire format: length-prefixed names
    bool m_server;
    bool m_verify = true;
};

/// A TLS session over a stream's socket.
///
/// Invariants: the handshake starts with the first receive(); until it is over, send() takes
/// nothing (the writer keeps its bytes) and nothing reaches the stream. Once it failed, the
/// stream's reader and writer have been told EPROTO and the session moves no more bytes.
/// Ciphertext to send goes from the output buffer to the socket only while no socket send is in
/// flight; close_notify follows the last bytes the writer handed over.
class openssl_session final : public tls_session, public transport_client {
public:
    openssl_session(std::shared_ptr<openssl_engine> engine, socket_transport& socket, transport_client& stream, std::string peer_name,
                    std::string peer_text)
        : m_engine(std::move(engine)), m_socket(&socket), m_stream(&stream), m_peer_name(std::move(peer_name)), m_peer_text(std::move(peer_text)) {
        m_ssl = SSL_new(m_engine->ctx());
        BIO* bio = m_cipher.new_bio();
        if (m_ssl == nullptr || bio == nullptr) {
            BIO_free(bio);
            SSL_free(m_ssl);
            throw tls_error("SSL_new: " + openssl_reason());
        }
        SSL_set_bio(m_ssl, bio, bio);  // the SSL owns it now, for reading and writing
        if (m_engine->is_server()) {
            SSL_set_accept_state(m_ssl);
        } else {
            SSL_set_connect_state(m_ssl);
            configure_peer_check();
        }
        m_socket->set_client(*this);
    }
    openssl_session(const openssl_session&) = delete;
    openssl_session& operator=(const openssl_session&) = delete;
    ~openssl_session() override {
        m_handshake_waiters.abandon("coring TLS handshake");
        SSL_free(m_ssl);
    }

    // ---- tls_session
    [[nodiscard]] const bool& handshake_over() const noexcept override { return m_handshake_over; }
    wait_queue& handshake_waiters() noexcept override { return m_handshake_waiters; }
    void check_handshake() const override {
        if (m_failure) throw *m_failure;
    }
    [[nodiscard]] const tls_info* info() const noexcept override { return m_handshake_over && !m_failure ? &m_info : nullptr; }

    // ---- byte_transport (the stream's side: plaintext)
    void receive() override {
        if (!m_started) {
            m_started = true;
            advance_handshake();
            return;
        }
        if (m_handshake_over && !m_failure && m_stream->receive_room() > 0) m_socket->receive();
    }
    void take_held_back(std::size_t budget) noexcept override {
        // The reader asks for `budget` bytes, which may be past its usual room (a read to the end,
        // a readexactly longer than the limit): the socket's take_held_back takes as much.
        if (m_handshake_over && !m_failure) decrypt(budget, room_rule::budget_only);
    }
    [[nodiscard]] std::size_t held_back() const noexcept override {
        return static_cast<std::size_t>(SSL_pending(m_ssl)) + m_cipher.incoming.size();
    }
    void send(std::vector<std::byte>& data) override {
        if (!m_handshake_over || m_failure || m_socket->unsent() > 0) return;  // the writer keeps its bytes meanwhile
        if (!data.empty()) {
            if (m_notify_sent) return;  // nothing goes after close_notify
            ERR_clear_error();
            if (SSL_write(m_ssl, data.data(), static_cast<int>(std::min<std::size_t>(data.size(), INT_MAX))) <= 0) {
                fail(EPROTO);
                return;
            }
            data.clear();
        } else if (m_close_requested || m_shutdown_requested) {
            send_close_notify();  // everything the writer had is out
        }
        flush();
    }
    [[nodiscard]] std::size_t unsent() const noexcept override { return m_socket->unsent() + m_cipher.outgoing.size(); }
    void shutdown_write() noexcept override {
        m_shutdown_requested = true;
        if (m_socket->unsent() == 0) after_sent();
    }
    void begin_close() noexcept override {
        m_close_requested = true;
        m_socket->begin_close();
        if (m_socket->unsent() == 0) after_sent();
    }
    [[nodiscard]] bool busy() const noexcept override { return m_socket->busy(); }
    void close() noexcept override { m_socket->close(); }
    [[nodiscard]] int native_fd() const noexcept override { return m_socket->native_fd(); }
    [[nodiscard]] bool uses_buffer_ring() const noexcept override { return m_socket->uses_buffer_ring(); }
    [[nodiscard]] std::exception_ptr failure() const noexcept override {
        if (!m_failure) return nullptr;
        try {
            return std::make_exception_ptr(*m_failure);
        } catch (...) {
            return std::current_exception();
        }
    }

    // ---- transport_client (the socket's side: ciphertext)
    [[nodiscard]] std::size_t receive_room() const noexcept override {
        if (m_failure || m_close_requested) return 0;
        const std::size_t pending = m_cipher.incoming.size();
        if (pending >= max_pending_ciphertext) return 0;
        if (m_handshake_over && m_stream->receive_room() == 0) return 0;  // the reader is full: pause
        return max_pending_ciphertext - pending;
    }
    std::span<std::byte> receive_space(std::size_t n) override {
        m_cipher.incoming.make_room(n, max_pending_ciphertext);
        return m_cipher.incoming.tail();
    }
    void received(std::size_t n) noexcept override {
        m_cipher.incoming.commit(n);
        if (m_pulling) return;
        if (!m_handshake_over)
            advance_handshake_noexcept();
        else if (!m_failure)
            decrypt(SIZE_MAX);
    }
    void receive_ended(int error) noexcept override {
        m_peer_ended = true;
        m_peer_error = error;
        if (!m_handshake_over)
            fail_handshake(error != 0 ? std::string("the connection failed during the handshake: ") + std::strerror(error)
                                      : std::string("the peer closed the connection during the handshake"));
        else if (!m_failure)
            decrypt(SIZE_MAX);  // the end follows the bytes still to decrypt
    }
    void sent(int error) noexcept override {
        if (error != 0) {
            if (!m_handshake_over) fail_handshake(std::string("send failed during the handshake: ") + std::strerror(error));
            m_stream->sent(error);
            return;
        }
        after_sent();
    }
    void settle() noexcept override { m_stream->settle(); }

private:
    /// Ciphertext kept in the input buffer before receiving pauses: a few full records.
    static constexpr std::size_t max_pending_ciphertext = 64 * 1024;

    void configure_peer_check() {
        if (!m_engine->verifies() || m_peer_name.empty()) return;
        in6_addr ip6{};
        in_addr ip4{};
        const bool is_ip = inet_pton(AF_INET, m_peer_name.c_str(), &ip4) == 1 || inet_pton(AF_INET6, m_peer_name.c_str(), &ip6) == 1;
        if (is_ip) {
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(m_ssl), m_peer_name.c_str());
        } else {
            SSL_set_tlsext_host_name(m_ssl, m_peer_name.c_str());  // SNI
            SSL_set1_host(m_ssl, m_peer_name.c_str());
        }
    }

    void advance_handshake_noexcept() noexcept {
        try {
            advance_handshake();
        } catch (const std::system_error& e) {
            fail_handshake(std::string("no submission queue entry: ") + e.what());
        } catch (...) {
            fail_handshake("out of memory");
        }
    }

    void advance_handshake() {
        ERR_clear_error();
        const int r = SSL_do_handshake(m_ssl);
        flush();
        if (r == 1) {
            handshake_done();
            return;
        }
        const int e = SSL_get_error(m_ssl, r);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (m_peer_ended) {
                fail_handshake("the peer closed the connection during the handshake");
                return;
            }
            m_socket->receive();
            return;
        }
        fail_handshake(handshake_error());
    }

    /// What failed, from the verify result or OpenSSL's error queue.
    std::string handshake_error() {
        const long verify = SSL_get_verify_result(m_ssl);
        if (verify != X509_V_OK) {
            ERR_clear_error();
            m_verify_result = verify;
            return "certificate verify failed for " + (m_peer_name.empty() ? m_peer_text : m_peer_name) + ": " +
                   X509_verify_cert_error_string(verify);
        }
        return openssl_reason("the handshake failed");
    }

    void handshake_done() {
        m_info.m_version = SSL_get_version(m_ssl);
        m_info.m_cipher = SSL_get_cipher_name(m_ssl);
        const unsigned char* alpn = nullptr;
        unsigned alpn_len = 0;
        SSL_get0_alpn_selected(m_ssl, &alpn, &alpn_len);
        m_info.m_alpn.assign(reinterpret_cast<const char*>(alpn), alpn != nullptr ? alpn_len : 0);
        if (X509* cert = SSL_get1_peer_certificate(m_ssl)) {
            char subject[512];
            X509_NAME_oneline(X509_get_subject_name(cert), subject, sizeof subject);
            m_info.m_peer_subject = subject;
            X509_free(cert);
        }
        m_handshake_over = true;
        m_handshake_waiters.grant_all();
        after_sent();  // the writer may hand over what it wrote meanwhile
        decrypt(SIZE_MAX);  // application data that came with the last handshake message
    }

    void fail_handshake(std::string what) noexcept {
        try {
            m_failure.emplace("handshake with " + m_peer_text + ": " + what, m_verify_result);
        } catch (...) {
            // Out of memory: the failure is reported without its text.
        }
        if (!m_failure) m_failure.emplace(std::string(), std::nullopt);
        m_handshake_over = true;
        m_handshake_waiters.grant_all();
        m_stream->receive_ended(EPROTO);
        m_stream->sent(EPROTO);
    }

    /// A record could not be decrypted or encrypted: the stream fails.
    void fail(int error) noexcept {
        if (m_failure) return;
        try {
            m_failure.emplace("connection with " + m_peer_text + ": " + openssl_reason(), std::nullopt);
        } catch (...) {
            m_failure.emplace(std::string(), std::nullopt);
        }
        m_stream->receive_ended(error);
        m_stream->sent(error);
    }

    /// How far decrypt() may fill the stream: up to its receive_room() (what arrives on its own),
    /// or up to the budget a read asked for (take_held_back).
    enum class room_rule { stream_room, budget_only };

    /// Decrypts into the stream, taking at most `budget` bytes (pulling in the ciphertext the
    /// socket held back while there was no room); then the end of the stream if it came and
    /// nothing is left; then receives on if the stream wants more.
    void decrypt(std::size_t budget, room_rule rule = room_rule::stream_room) noexcept {
        std::size_t taken = 0;
        ERR_clear_error();  // once: a read that succeeds or wants more adds no error to clear
        for (;;) {
            bool needs_input = false;
            while (taken < budget) {
                const std::size_t room = rule == room_rule::budget_only ? budget - taken : std::min(m_stream->receive_room(), budget - taken);
                if (room == 0) break;
                std::span<std::byte> space;
                try {
                    space = m_stream->receive_space(std::min<std::size_t>(room, 16 * 1024));
                } catch (...) {
                    fail(ENOMEM);
                    return;
                }
                const int n = SSL_read(m_ssl, space.data(), static_cast<int>(std::min({space.size(), room, std::size_t{INT_MAX}})));
                if (n > 0) {
                    m_stream->received(static_cast<std::size_t>(n));
                    taken += static_cast<std::size_t>(n);
                    continue;
                }
                const int e = SSL_get_error(m_ssl, n);
                if (e == SSL_ERROR_ZERO_RETURN) {  // close_notify: a clean end
                    end_stream(0);
                    return;
                }
                if (e != SSL_ERROR_WANT_READ) {
                    fail(EPROTO);
                    return;
                }
                needs_input = true;  // a record is incomplete
                break;
            }
            const std::size_t held = m_socket->held_back();
            if (!needs_input || held == 0) break;
            m_pulling = true;  // received() only stores: this loop decrypts
            m_socket->take_held_back(max_pending_ciphertext);
            m_pulling = false;
            if (m_socket->held_back() == held) break;  // nothing moved (out of memory)
        }
        flush_noexcept();  // reading may have produced output (a key update's answer)
        if (m_peer_ended && SSL_pending(m_ssl) == 0 && m_cipher.incoming.empty()) {
            end_stream(m_peer_error != 0 ? m_peer_error : transport_client::truncated);  // no close_notify came
            return;
        }
        if (m_stream->receive_room() > 0) {
            try {
                m_socket->receive();
            } catch (const std::system_error& e) {
                m_stream->receive_ended(e.code().value());
            } catch (...) {
                m_stream->receive_ended(ENOMEM);
            }
        }
    }

    void end_stream(int error) noexcept {
        if (m_ended) return;
        m_ended = true;
        m_stream->receive_ended(error);
    }

    /// The socket sent all it had: more ciphertext, or the writer's next bytes, or close_notify.
    void after_sent() noexcept {
        flush_noexcept();
        if (m_socket->unsent() > 0 || !m_handshake_over) return;
        m_stream->sent(0);  // the writer hands over what it buffered: send()
        if (m_socket->unsent() == 0 && (m_close_requested || m_shutdown_requested) && !m_failure) {
            send_close_notify();
            flush_noexcept();
        }
    }

    void send_close_notify() noexcept {
        if (m_notify_sent || m_failure) return;
        m_notify_sent = true;
        ERR_clear_error();
        SSL_shutdown(m_ssl);
        ERR_clear_error();
    }

    /// Moves the output buffer's ciphertext to the socket, unless a socket send is in flight.
    void flush() {
        if (m_cipher.outgoing.empty() || m_socket->unsent() > 0) return;
        m_socket->send(m_cipher.outgoing);  // takes the bytes (and leaves an empty vector)
    }
    void flush_noexcept() noexcept {
        try {
            flush();
        } catch (const std::system_error& e) {
            m_stream->sent(e.code().value());
        }
    }

    std::shared_ptr<openssl_engine> m_engine;
    socket_transport* m_socket;
    transport_client* m_stream;
    SSL* m_ssl = nullptr;
    tls_cipher_buffers m_cipher;  // what m_ssl's BIO reads and writes
    std::string m_peer_name;
    std::string m_peer_text;
    tls_info m_info;
    wait_queue m_handshake_waiters;
    std::optional<tls_error> m_failure;
    std::optional<long> m_verify_result;
    int m_peer_error = 0;
    bool m_started = false;
    bool m_pulling = false;  // decrypt() is taking the socket's held-back ciphertext
    bool m_handshake_over = false;
    bool m_peer_ended = false;  // the socket's receive ended (the peer's FIN, or an error)
    bool m_ended = false;       // the stream was told of its end
    bool m_close_requested = false;
    bool m_shutdown_requested = false;
    bool m_notify_sent = false;
};

inline std::unique_ptr<tls_session> openssl_engine::start(socket_transport& socket, transport_client& stream, const std::string& peer_name,
                                                          const std::string& peer_text) {
    return std::make_unique<openssl_session>(shared_from_this(), socket, stream, peer_name, peer_text);
}

}  // namespace detail

// ---------------------------------------------------------------------- tls_context

inline tls_context tls_context::client() {
    auto engine = std::make_shared<detail::openssl_engine>(false);
    if (SSL_CTX_set_default_verify_paths(engine->ctx()) != 1) throw tls_error("the system trust store: " + detail::openssl_reason());
    engine->set_verify(true);
    return tls_context(std::move(engine));
}

inline tls_context tls_context::server(const std::string& cert_chain_file, const std::string& private_key_file) {
    auto engine = std::make_shared<detail::openssl_engine>(true);
    if (SSL_CTX_use_certificate_chain_file(engine->ctx(), cert_chain_file.c_str()) != 1)
        throw tls_error("certificate chain " + cert_chain_file + ": " + detail::openssl_reason());
    if (SSL_CTX_use_PrivateKey_file(engine->ctx(), private_key_file.c_str(), SSL_FILETYPE_PEM) != 1)
        throw tls_error("private key " + private_key_file + ": " + detail::openssl_reason());
    if (SSL_CTX_check_private_key(engine->ctx()) != 1)
        throw tls_error("private key " + private_key_file + " does not match " + cert_chain_file + ": " + detail::openssl_reason());
    return tls_context(std::move(engine));
}

inline void tls_context::load_verify_locations(const std::string& cafile) {
    auto* engine = static_cast<detail::openssl_engine*>(m_engine.get());
    if (engine == nullptr) throw invalid_state_error("coring: load_verify_locations on an empty tls_context");
    if (SSL_CTX_load_verify_locations(engine->ctx(), cafile.c_str(), nullptr) != 1) throw tls_error("CA file " + cafile + ": " + detail::openssl_reason());
}

inline void tls_context::set_alpn_protocols(const std::vector<std::string>& protocols) {
    auto* engine = static_cast<detail::openssl_engine*>(m_engine.get());
    if (engine == nullptr) throw invalid_state_error("coring: set_alpn_protocols on an empty tls_context");
    std::vector<unsigned char> wire;
    for (const std::string& p : protocols) {
        if (p.empty() || p.size() > 255) throw std::invalid_argument("coring: an ALPN protocol name has 1 to 255 bytes: \"" + p + "\"");
        wire.push_back(static_cast<unsigned char>(p.size()));
        wire.insert(wire.end(), p.begin(), p.end());
    }
    engine->set_alpn(std::move(wire));
}

inline void tls_context::set_verify(bool verify) {
    auto* engine = static_cast<detail::openssl_engine*>(m_engine.get());
    if (engine == nullptr) throw invalid_state_error("coring: set_verify on an empty tls_context");
    engine->set_verify(verify);
}

}  // namespace coring
