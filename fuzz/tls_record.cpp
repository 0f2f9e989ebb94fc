// Fuzzes the TLS record path of a server-side stream (net/tls.hpp) with a real loop over a
// socketpair: the input is what a hostile peer sends, cut into chunks of a size the input
// chooses, then the peer's FIN.
//
//   mode 0: the bytes come where the ClientHello belongs (the handshake's records).
//   mode 1: an in-process OpenSSL client completes the handshake and sends "hello" in a
//           record of its own; then the bytes come raw, as records that follow.
//
// The server must read "hello" intact (mode 1), then fail its read with tls_error, or with
// incomplete_read when the peer's end came without close_notify; never anything else, never a
// clean end (the bytes hold no valid close_notify), never a hang (10 s) or a leak.
#include <coring/gather.hpp>
#include <coring/net/socket.hpp>
#include <coring/net/stream.hpp>
#include <coring/net/tls.hpp>
#include <coring/run.hpp>
#include <coring/task.hpp>
#include <coring/time.hpp>
#include <coring/wait_for.hpp>

#include <fuzzer/FuzzedDataProvider.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "check.hpp"
#include "support/tls_certs.hpp"

#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

const coring::tls_context& server_context() {
    static const coring_test::tls_certs certs;  // made once per process with the openssl tool
    static const coring::tls_context ctx = coring::tls_context::server(certs.server_cert, certs.server_key);
    return ctx;
}

SSL_CTX* client_ctx() {
    static SSL_CTX* const ctx = [] {
        SSL_CTX* c = SSL_CTX_new(TLS_client_method());
        FUZZ_CHECK(c != nullptr);
        SSL_CTX_set_verify(c, SSL_VERIFY_NONE, nullptr);
        return c;
    }();
    return ctx;
}

enum class outcome { none, clean_end, tls_error, incomplete_read, other };

struct server_result {
    std::string read;  // the plaintext the server read before its read failed
    outcome how = outcome::none;
    std::string what;
};

coring::task<> serve(coring::socket connection, server_result& result) {
    coring::stream_options options;
    options.tls = server_context();
    options.tls_handshake_timeout = 5s;
    std::optional<std::pair<coring::stream_reader, coring::stream_writer>> streams;
    try {
        streams.emplace(co_await coring::detail::open_stream(std::move(connection), coring::address{}, options));
        for (;;) {
            const std::string bytes = co_await streams->first.read(4096);
            if (bytes.empty()) {
                result.how = outcome::clean_end;
                break;
            }
            result.read += bytes;
        }
    } catch (const coring::tls_error& e) {
        result.how = outcome::tls_error;
        result.what = e.what();
    } catch (const coring::incomplete_read& e) {
        result.how = outcome::incomplete_read;
        result.what = e.what();
    } catch (const std::exception& e) {
        result.how = outcome::other;
        result.what = e.what();
    }
    if (streams) {
        streams->second.close();
        co_await streams->second.wait_closed();
    }
}

/// An OpenSSL client over memory BIOs, its records carried by `s`.
struct tls_client {
    SSL* ssl = SSL_new(client_ctx());
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    tls_client() {
        FUZZ_CHECK(ssl != nullptr && in != nullptr && out != nullptr);
        SSL_set_bio(ssl, in, out);  // the SSL owns both
        SSL_set_connect_state(ssl);
    }
    tls_client(const tls_client&) = delete;
    tls_client& operator=(const tls_client&) = delete;
    ~tls_client() { SSL_free(ssl); }

    std::string pending_output() const {
        std::string bytes;
        char buffer[4096];
        for (int n; (n = BIO_read(out, buffer, sizeof buffer)) > 0;) bytes.append(buffer, static_cast<std::size_t>(n));
        return bytes;
    }
};

/// The hostile peer: (mode 1) a handshake and "hello", then `raw` in chunks of `chunk` bytes,
/// then FIN; then it reads whatever the server sends until the server closes.
coring::task<> peer(coring::socket s, bool handshake, std::string raw, std::size_t chunk) {
    try {
        if (handshake) {
            tls_client client;
            std::vector<std::byte> buffer(16 * 1024);
            for (;;) {
                const int r = SSL_do_handshake(client.ssl);
                const std::string output = client.pending_output();
                co_await s.send_all(output);
                if (r == 1) break;
                FUZZ_CHECK(SSL_get_error(client.ssl, r) == SSL_ERROR_WANT_READ);
                const std::size_t n = co_await s.recv(buffer);
                FUZZ_CHECK(n > 0);
                BIO_write(client.in, buffer.data(), static_cast<int>(n));
            }
            FUZZ_CHECK(SSL_write(client.ssl, "hello", 5) == 5);
            const std::string record = client.pending_output();
            co_await s.send_all(record);
        }
        for (std::size_t at = 0; at < raw.size(); at += chunk) {
            co_await s.send_all(std::string_view(raw).substr(at, chunk));
            co_await coring::sleep(0ms);  // the server may take each chunk on its own
        }
        co_await s.shutdown(SHUT_WR);
        std::vector<std::byte> sink(16 * 1024);
        while (co_await s.recv(sink) > 0) {
        }
    } catch (const std::system_error&) {
        // The server reset the connection: it is the server's outcome that counts.
    }
    co_await s.close();
}

coring::task<> exchange(bool handshake, std::string raw, std::size_t chunk, server_result& result) {
    auto [server_end, peer_end] = coring::socket::pair();
    co_await coring::gather(serve(std::move(server_end), result), peer(std::move(peer_end), handshake, std::move(raw), chunk));
}

coring::task<> exchange_within(std::chrono::seconds limit, bool handshake, std::string raw, std::size_t chunk, server_result& result) {
    co_await coring::wait_for(exchange(handshake, std::move(raw), chunk, result), limit);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
    (void)server_context();  // the certificates, before the first input is timed
    return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const bool handshake = in.ConsumeIntegralInRange<int>(0, 1) == 1;
    const std::size_t chunk = in.ConsumeIntegralInRange<std::size_t>(1, 4096);
    std::string raw = in.ConsumeRemainingBytesAsString();
    server_result result;
    try {
        coring::run(exchange_within(10s, handshake, std::move(raw), chunk, result));
    } catch (const coring::timeout_error&) {
        std::fprintf(stderr, "tls_record: the exchange hung\n");
        std::abort();
    }
    if (result.how == outcome::other || result.how == outcome::none || result.how == outcome::clean_end)
        std::fprintf(stderr, "tls_record: outcome %d: %s (read \"%s\")\n", static_cast<int>(result.how), result.what.c_str(), result.read.c_str());
    FUZZ_CHECK(result.how == outcome::tls_error || result.how == outcome::incomplete_read);
    if (handshake) {
        FUZZ_CHECK(result.read == "hello");
    } else {
        FUZZ_CHECK(result.read.empty() && result.how == outcome::tls_error);  // no handshake can complete
    }
    ERR_clear_error();
    return 0;
}
