// echo_asio_tls: Boost.Asio's coroutine TLS echo server, the baseline of bench/tls/compare.sh
// (bench/echo/echo_asio.cpp over asio::ssl::stream<tcp::socket>): one single-threaded
// io_context; per connection async_handshake(server), then async_read_some into a buffer and
// async_write of what came, until the client's close_notify, answered by async_shutdown.
//
//   echo_asio_tls [--port P] --cert CERT --key KEY
//       prints "listening on 127.0.0.1:P"; SIGINT/SIGTERM stop it.
//
// The ssl::context is configured as coring's server context (tls_context::server in
// include/coring/net/tls.hpp), so that both servers negotiate the same thing with the same
// client and do the same work per handshake:
// - TLS_server_method with TLS 1.2 as the minimum version and no maximum: TLS 1.3 is
//   negotiated. (Asio's context::tls_server would allow TLS 1.0.)
// - SSL_OP_NO_RENEGOTIATION, as coring sets.
// - Cipher suites, groups, the server session cache and session tickets are OpenSSL's defaults,
//   as coring leaves them: each full TLS 1.3 handshake sends OpenSSL's default two (stateless)
//   session tickets on both servers. The client never offers a session, so none is resumed.
// - No client certificate is asked for (Asio's default verify_none; coring's server does not
//   either).
// What stays Asio's own: its context sets SSL_OP_NO_COMPRESSION (OpenSSL 3's default anyway), and
// each stream sets SSL_MODE_ENABLE_PARTIAL_WRITE, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER and
// SSL_MODE_RELEASE_BUFFERS (OpenSSL's record buffers are freed when idle) and moves ciphertext
// through a BIO pair of 17 KiB buffers; coring uses one BIO over its own buffers
// (include/coring/net/tls_bio.hpp).
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <openssl/ssl.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>

namespace asio = boost::asio;
namespace ssl = asio::ssl;
using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(ssl::stream<tcp::socket> stream) {
    try {
        co_await stream.async_handshake(ssl::stream_base::server, asio::use_awaitable);
        // 16 KiB, the largest plaintext of one TLS record (2^14 bytes): Asio's async_read_some
        // is one SSL_read, which returns at most one record, so a record of the benchmark's
        // largest message (16,384 bytes, one SSL_write by the client) comes in one read and goes
        // back in one write. A larger buffer would change nothing; a smaller one would cut a
        // record in two reads and two writes, which coring's reader (64 KiB limit) does not.
        std::array<char, 16 * 1024> data;
        for (;;) {
            boost::system::error_code ec;
            const std::size_t n = co_await stream.async_read_some(asio::buffer(data), asio::redirect_error(asio::use_awaitable, ec));
            if (ec == asio::error::eof) {
                // The client's close_notify: answer with ours, as coring's stream does when its
                // handler returns and the writer closes.
                co_await stream.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
                break;
            }
            if (ec) break;  // reset, or ended without close_notify (ssl::error::stream_truncated)
            co_await asio::async_write(stream, asio::buffer(data.data(), n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // the handshake failed, or the client went away
    }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, ssl::context& context) {
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(), echo(ssl::stream<tcp::socket>(std::move(socket), context)), asio::detached);
    }
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: echo_asio_tls [--port P] --cert CERT --key KEY\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    unsigned short port = 8443;
    std::string cert, key;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc)
            port = static_cast<unsigned short>(std::atoi(argv[++i]));
        else if (std::strcmp(argv[i], "--cert") == 0 && i + 1 < argc)
            cert = argv[++i];
        else if (std::strcmp(argv[i], "--key") == 0 && i + 1 < argc)
            key = argv[++i];
        else
            usage();
    }
    if (cert.empty() || key.empty()) usage();
    try {
        ssl::context tls(ssl::context::tls_server);
        SSL_CTX_set_min_proto_version(tls.native_handle(), TLS1_2_VERSION);
        SSL_CTX_set_options(tls.native_handle(), SSL_OP_NO_RENEGOTIATION);
        tls.use_certificate_chain_file(cert);
        tls.use_private_key_file(key, ssl::context::pem);

        asio::io_context context(1);
        tcp::acceptor acceptor(context, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
        std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
        std::fflush(stdout);
        asio::signal_set signals(context, SIGINT, SIGTERM);
        signals.async_wait([&](auto, auto) { context.stop(); });
        asio::co_spawn(context, listen(acceptor, tls), asio::detached);
        context.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_asio_tls: %s\n", e.what());
        return 1;
    }
    std::printf("echo_asio_tls: stopped\n");
    return 0;
}
