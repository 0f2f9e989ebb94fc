// Tests of coring/net/tls_bio.hpp: the BIO over a session's two ciphertext buffers, driven
// through OpenSSL's BIO calls as an SSL object drives it, and under a real TLS handshake between
// two SSL objects that talk only through their buffers.
#include <coring/net/tls_bio.hpp>

#include "support/catch.hpp"

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace {

std::string text_of(const std::vector<std::byte>& bytes) { return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size()); }

void put(coring::detail::byte_buffer& buffer, std::string_view text) {
    buffer.make_room(text.size(), 1 << 16);
    std::memcpy(buffer.tail().data(), text.data(), text.size());
    buffer.commit(text.size());
}

/// Moves what `from` wrote to what `to` reads; true if anything moved.
bool carry(coring::detail::tls_cipher_buffers& from, coring::detail::tls_cipher_buffers& to) {
    if (from.outgoing.empty()) return false;
    put(to.incoming, std::string_view(reinterpret_cast<const char*>(from.outgoing.data()), from.outgoing.size()));
    from.outgoing.clear();
    return true;
}

}  // namespace

TEST_CASE("tls_bio - writes append to outgoing; pending counts both buffers", "[tls_bio]") {
    coring::detail::tls_cipher_buffers buffers;
    BIO* bio = buffers.new_bio();
    REQUIRE(bio != nullptr);
    CHECK(BIO_write(bio, "abc", 3) == 3);
    CHECK(BIO_write(bio, "def", 3) == 3);
    CHECK(text_of(buffers.outgoing) == "abcdef");
    CHECK(BIO_wpending(bio) == 6);
    put(buffers.incoming, "12345");
    CHECK(BIO_pending(bio) == 5);
    CHECK(BIO_flush(bio) == 1);
    BIO_free(bio);
}

TEST_CASE("tls_bio - reads take from incoming; empty means retry, not the end", "[tls_bio]") {
    coring::detail::tls_cipher_buffers buffers;
    BIO* bio = buffers.new_bio();
    REQUIRE(bio != nullptr);
    char out[8];
    CHECK(BIO_read(bio, out, sizeof out) == -1);
    CHECK(BIO_should_retry(bio));
    CHECK(BIO_should_read(bio));
    CHECK_FALSE(BIO_eof(bio));
    put(buffers.incoming, "0123456789");
    CHECK(BIO_read(bio, out, 8) == 8);
    CHECK(std::string(out, 8) == "01234567");
    CHECK_FALSE(BIO_should_retry(bio));
    CHECK(BIO_read(bio, out, 8) == 2);
    CHECK(std::string(out, 2) == "89");
    CHECK(buffers.incoming.empty());
    CHECK(BIO_read(bio, out, 8) == -1);
    CHECK(BIO_should_retry(bio));
    BIO_free(bio);
}

TEST_CASE("tls_bio - two SSL objects complete a handshake and exchange bytes through the buffers", "[tls_bio]") {
    // The server needs a key and a certificate: a fresh self-signed P-256 pair (the client does
    // not verify it).
    EVP_PKEY* key = EVP_EC_gen("P-256");
    REQUIRE(key != nullptr);
    X509* cert = X509_new();
    X509_set_version(cert, 2);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>("bio-test"), -1, -1, 0);
    X509_set_issuer_name(cert, X509_get_subject_name(cert));
    REQUIRE(X509_sign(cert, key, EVP_sha256()) > 0);

    SSL_CTX* server_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX* client_ctx = SSL_CTX_new(TLS_client_method());
    REQUIRE(SSL_CTX_use_certificate(server_ctx, cert) == 1);
    REQUIRE(SSL_CTX_use_PrivateKey(server_ctx, key) == 1);
    coring::detail::tls_cipher_buffers server_buffers;
    coring::detail::tls_cipher_buffers client_buffers;
    SSL* server = SSL_new(server_ctx);
    SSL* client = SSL_new(client_ctx);
    BIO* server_bio = server_buffers.new_bio();
    BIO* client_bio = client_buffers.new_bio();
    SSL_set_bio(server, server_bio, server_bio);
    SSL_set_bio(client, client_bio, client_bio);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);

    int client_done = 0;
    int server_done = 0;
    for (int round = 0; round < 10 && (client_done != 1 || server_done != 1); ++round) {
        client_done = SSL_do_handshake(client);
        carry(client_buffers, server_buffers);
        server_done = SSL_do_handshake(server);
        carry(server_buffers, client_buffers);
    }
    REQUIRE(client_done == 1);
    REQUIRE(server_done == 1);
    CHECK(std::string(SSL_get_version(client)) == "TLSv1.3");

    const std::string message(40'000, 'x');  // three records
    REQUIRE(SSL_write(client, message.data(), static_cast<int>(message.size())) == static_cast<int>(message.size()));
    CHECK(client_buffers.outgoing.size() > message.size());  // ciphertext: the records and their overhead
    REQUIRE(carry(client_buffers, server_buffers));
    std::string received;
    char chunk[16384];
    for (int n; (n = SSL_read(server, chunk, sizeof chunk)) > 0;) received.append(chunk, static_cast<std::size_t>(n));
    CHECK(SSL_get_error(server, -1) == SSL_ERROR_WANT_READ);
    CHECK(received == message);
    CHECK(server_buffers.incoming.empty());

    SSL_free(server);
    SSL_free(client);
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
}
