#pragma once
// coring::tls_context, tls_info and tls_error without OpenSSL's headers: stream_options names a
// context, and a program that never includes <coring/net/tls.hpp> needs no libssl. The
// context's functions are defined in net/tls.hpp (docs/api.md, "TLS"), which links OpenSSL
// (CMake: coring::tls).
//
// Thread-safety: make a tls_context on each loop that uses it (examples/http_server.cpp does).

#include <cstddef>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace coring {

/// ssl.SSLError and ssl.SSLCertVerificationError: a handshake or a record failed. what() carries
/// OpenSSL's reason and, for a failed verification, the verify result and the host name:
/// "coring::tls_error: handshake with 127.0.0.1:8443: certificate verify failed for localhost:
/// self-signed certificate".
class tls_error : public std::runtime_error {
public:
    explicit tls_error(const std::string& what, std::optional<long> verify_result = std::nullopt)
        : std::runtime_error("coring::tls_error: " + what), m_verify_result(verify_result) {}
    /// OpenSSL's X509_V_ERR_* code when the peer's certificate was refused.
    [[nodiscard]] std::optional<long> verify_result() const noexcept { return m_verify_result; }

private:
    std::optional<long> m_verify_result;
};

/// What a TLS connection agreed on (asyncio's get_extra_info("ssl_object")).
struct tls_info {
    std::string m_version;       // "TLSv1.3"
    std::string m_cipher;        // "TLS_AES_256_GCM_SHA384"
    std::string m_alpn;          // the protocol both ends chose, or ""
    std::string m_peer_subject;  // "CN=localhost", or "" when the peer sent no certificate

    [[nodiscard]] const std::string& version() const noexcept { return m_version; }
    [[nodiscard]] const std::string& cipher() const noexcept { return m_cipher; }
    [[nodiscard]] const std::string& alpn() const noexcept { return m_alpn; }
    [[nodiscard]] const std::string& peer_subject() const noexcept { return m_peer_subject; }
};

namespace detail {
class tls_engine;
}  // namespace detail

/// A TLS configuration shared by many connections (an SSL_CTX). Copies share it. An empty
/// context (default-constructed) means plaintext.
class tls_context {
public:
    tls_context() noexcept = default;

    /// ssl.create_default_context(): the system's trust store, the peer's certificate verified
    /// and its host name checked, TLS 1.2 or newer.
    [[nodiscard]] static tls_context client();
    /// A server context with the certificate chain and private key of the given PEM files.
    /// Throws tls_error naming the file and OpenSSL's reason.
    [[nodiscard]] static tls_context server(const std::string& cert_chain_file, const std::string& private_key_file);

    /// Trusts the CA certificates in `cafile` (PEM) as well.
    void load_verify_locations(const std::string& cafile);
    /// The ALPN protocols to offer (client) or accept (server), in order of preference.
    void set_alpn_protocols(const std::vector<std::string>& protocols);
    /// set_verify(false): no verification of the peer's certificate or host name. Only for
    /// tests and private networks, where it is asked for by name.
    void set_verify(bool verify);

    [[nodiscard]] bool is_server() const noexcept;
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(m_engine); }
    [[nodiscard]] detail::tls_engine* engine() const noexcept { return m_engine.get(); }

private:
    explicit tls_context(std::shared_ptr<detail::tls_engine> engine) noexcept : m_engine(std::move(engine)) {}
    std::shared_ptr<detail::tls_engine> m_engine;
};

/// A tls_context borrowed by an options struct (stream_options::tls): `{.tls = ctx}`. A connection
/// that starts takes its own share of the context, so the context must live only until then
/// (open_connection: until its task starts; start_server keeps a share for its connections).
///
/// Why not the context itself: options structs are aggregates, and g++ 12 destroys an aggregate
/// temporary twice inside a co_await expression (docs/internals.md, "g++ 12 traps"), so their
/// members must be trivially destructible.
class tls_context_ref {
public:
    tls_context_ref() noexcept = default;
    tls_context_ref(const tls_context& context) noexcept : m_context(&context) {}  // NOLINT: implicit, for {.tls = ctx}

    [[nodiscard]] explicit operator bool() const noexcept { return m_context != nullptr && static_cast<bool>(*m_context); }
    [[nodiscard]] const tls_context& operator*() const noexcept { return *m_context; }
    [[nodiscard]] const tls_context* operator->() const noexcept { return m_context; }

private:
    const tls_context* m_context = nullptr;
};

}  // namespace coring
