// echo_server: a TCP echo server, written two ways.
//
// By default it is written on raw coring sockets, the way a hand-tuned io_uring server is: one
// multishot accept for the listener, and per connection one multishot recv into a provided-buffer
// ring shared by all connections (io/buffer_ring.hpp) and one send straight from the buffer the
// kernel filled, which then goes back to the ring. No copy, no allocation per message. With
// --streams it is the asyncio-style server instead: start_server with the handler of asyncio's
// documentation, read / write / drain (net/server.hpp, net/stream.hpp), echoing whatever arrived.
//
// --tls CERT KEY makes the --streams server speak TLS (a server tls_context in
// server_options.stream.tls); the handler does not change. The --streams server closes a
// connection on which nothing moved for 60 s and holds at most 10,000 at once.
//
// It prints "listening on HOST:PORT" once it accepts connections (--port 0 picks a free port),
// and stops cleanly on SIGINT or SIGTERM (exit status 0). --threads N runs either server on N
// event loops, one per thread, each with its own listener on the same port (SO_REUSEPORT:
// the kernel spreads the connections; examples/sharded.hpp), and prints how many connections
// each loop accepted.
//
//   $ ./echo_server --port 8888 &
//   listening on 127.0.0.1:8888
//   $ printf 'hello\n' | nc -N 127.0.0.1 8888
//   hello
//   $ ./echo_server --port 8443 --tls server.pem server.key &
//   $ openssl s_client -connect 127.0.0.1:8443 -CAfile ca.pem -quiet
//
// bench/echo/compare.sh measures both against a C liburing server and Boost.Asio.
#include <coring/coring.hpp>
#include <coring/io/buffer_ring.hpp>
#include <coring/io/multishot_recv.hpp>
#include <coring/net/server.hpp>
#include <coring/net/stream.hpp>
#include <coring/net/tls.hpp>

#include "sharded.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <array>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <span>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct settings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8888;
    bool streams = false;
    std::string tls_cert;  // --tls CERT KEY (with --streams)
    std::string tls_key;
    std::size_t threads = 1;  // --threads N: loops, each on its own thread
};

settings g_settings;
thread_local std::uint64_t t_connections = 0;  // accepted on this loop

// ---------------------------------------------------------------------- raw sockets

// Echoes one connection: each chunk the kernel put in a ring buffer is sent back from that buffer,
// which returns to the ring when `chunk` goes out of scope.
coring::task<> echo_connection(coring::socket conn, coring::io::buffer_ring_ptr ring) {
    try {
        coring::io::multishot_recv receiver(conn.fd(), ring);
        for (;;) {
            coring::io::received chunk = co_await receiver.next();
            if (chunk.empty()) break;  // the client closed its side
            const std::span<const std::byte> data = chunk.data();
            for (std::size_t sent = 0; sent < data.size();) sent += co_await conn.send(data.subspan(sent));
        }
    } catch (const std::system_error&) {
        // ECONNRESET, EPIPE: the client went away; close the connection.
    }
}

// The same with plain recv into a buffer of its own, for kernels without buffer rings (< 5.19).
coring::task<> echo_connection_plain(coring::socket conn) {
    try {
        std::array<std::byte, 16384> buffer;
        for (;;) {
            const std::size_t n = co_await conn.recv(buffer);
            if (n == 0) break;
            co_await conn.send_all(std::span<const std::byte>(buffer).first(n));
        }
    } catch (const std::system_error&) {
    }
}

coring::task<> accept_connections(const coring::socket& listener, coring::io::buffer_ring_ptr ring) {
    coring::io::multishot_accept acceptor = listener.accept_multishot();
    // EMFILE and the like last as long as the clients hold their connections: one line when it
    // starts, one when accepting works again, never one per retry.
    unsigned failures = 0;
    auto since = std::chrono::steady_clock::now();
    for (;;) {
        int fd = -1;
        try {
            fd = co_await acceptor.next();
        } catch (const std::system_error& e) {
            if (failures++ == 0) {
                since = std::chrono::steady_clock::now();
                std::fprintf(stderr, "echo_server: %s; retrying every 100 ms\n", e.what());
            }
        }
        if (fd < 0) {
            co_await coring::sleep(100ms);
            continue;
        }
        if (failures != 0) {
            const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count();
            std::fprintf(stderr, "echo_server: accepting works again after %u failed attempt%s over %lld ms\n", failures, failures == 1 ? "" : "s",
                         static_cast<long long>(ms));
            failures = 0;
        }
        coring::socket conn(fd);
        conn.set_nodelay();
        ++t_connections;
        if (ring)
            coring::create_task(echo_connection(std::move(conn), ring));
        else
            coring::create_task(echo_connection_plain(std::move(conn)));
    }
}

// One loop's listener (examples/sharded.hpp): with --threads N, N of them share the port.
coring::task<std::uint64_t> serve_raw(sharded::shard& shard) {
    const std::uint16_t port = co_await shard.port();
    const std::vector<coring::address> where = co_await coring::resolve(g_settings.host, port);
    coring::socket listener = co_await coring::socket::open(where.front().family(), SOCK_STREAM, IPPROTO_TCP);
    listener.set_reuse_address();
    if (shard.shares_port()) listener.set_reuse_port();
    listener.bind(where.front());
    listener.listen(SOMAXCONN);
    // Null where no provided-buffer ring can be made (a kernel before 5.19, io_uring_register
    // forbidden by a seccomp profile): plain recv.
    const coring::io::buffer_ring_ptr ring = coring::io::buffer_ring::try_create(256, 4096);
    co_await shard.listening(listener.local_address());
    auto accepting = coring::create_task(accept_connections(listener, ring), "accept");
    auto stopping = shard.on_stop([accepting]() mutable { accepting.cancel(); });
    try {
        co_await accepting;
    } catch (const coring::cancelled_error&) {
        // A signal: stop accepting. Closing the loop then cancels the connections that are left.
    }
    co_return t_connections;
}

// ---------------------------------------------------------------------- streams

coring::task<> echo(coring::stream_reader reader, coring::stream_writer writer) {
    try {
        for (;;) {
            std::string data = co_await reader.read(64 * 1024);  // what arrived, up to 64 KiB
            if (data.empty()) break;                            // the client's end of stream
            writer.write(data);
            co_await writer.drain();
        }
    } catch (const std::system_error&) {
        // The client reset the connection.
    } catch (const coring::incomplete_read&) {
        // Over TLS: the client ended the TCP stream without close_notify.
    } catch (const coring::tls_error&) {
        // Over TLS: a record that could not be decrypted, or an alert from the client.
    }
}

coring::task<std::uint64_t> serve_streams(sharded::shard& shard) {
    coring::server_options options;
    // A client that connects and goes quiet cannot hold a connection for ever, nor can many of
    // them hold every descriptor (both off in the library by default, as in asyncio).
    options.stream.idle_timeout = std::chrono::seconds(60);
    options.max_connections = 10'000;  // per loop
    options.reuse_port = shard.shares_port();
    coring::tls_context tls;
    if (!g_settings.tls_cert.empty()) {
        tls = coring::tls_context::server(g_settings.tls_cert, g_settings.tls_key);
        options.stream.tls = tls;
    }
    auto counted_echo = [](coring::stream_reader reader, coring::stream_writer writer) -> coring::task<> {
        ++t_connections;
        return echo(std::move(reader), std::move(writer));
    };
    const std::uint16_t port = co_await shard.port();
    coring::server srv = co_await coring::start_server(counted_echo, g_settings.host, port, options);
    co_await shard.listening(srv.addresses().front());
    auto stopping = shard.on_stop([&srv] { srv.close(); });
    co_await srv.serve_forever();  // returns once closed: handlers finished, connections closed
    co_return t_connections;
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: echo_server [--host H] [--port P] [--streams] [--tls CERT KEY] [--threads N]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    settings& s = g_settings;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--host" && i + 1 < argc)
            s.host = argv[++i];
        else if (arg == "--port" && i + 1 < argc)
            s.port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
        else if (arg == "--streams")
            s.streams = true;
        else if (arg == "--threads" && i + 1 < argc)
            s.threads = static_cast<std::size_t>(std::atoi(argv[++i]));
        else if (arg == "--tls" && i + 2 < argc) {
            s.tls_cert = argv[++i];
            s.tls_key = argv[++i];
            s.streams = true;  // TLS is a stream transport
        } else
            usage();
    }
    if (s.threads < 1 || s.threads > 1024) usage();
    try {
        const std::vector<std::uint64_t> connections = sharded::run(s.threads, s.port, s.streams ? serve_streams : serve_raw);
        if (connections.size() > 1) std::printf("echo_server: connections per loop: %s\n", sharded::per_loop(connections).c_str());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "echo_server: %s\n", e.what());
        return 1;
    }
    std::printf("echo_server: stopped\n");
    return 0;
}
