// Tests of coring/net/socket.hpp: TCP, UDP and Unix-domain sockets on io_uring.
#include <coring/net/socket.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/bytes.hpp"
#include "support/catch.hpp"
#include "support/test_access.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"
#include "support/sockets.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

using coring_test::count_open_fds;
using coring_test::recv_all;
using coring_test::temp_dir;
using coring_test::text;

}  // namespace

TEST_CASE("socket - TCP: listen on port 0, connect, accept, echo, shutdown, close", "[socket]") {
    coring::run([]() -> coring::task<> {
        const int fds_before = count_open_fds();
        {
            coring::socket listener = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
            const coring::address local = listener.local_address();
            CHECK(local.host() == "127.0.0.1");
            CHECK(local.port() != 0);
            CHECK(listener.get_option(SOL_SOCKET, SO_REUSEADDR) != 0);
            CHECK(listener.family() == AF_INET);
            CHECK(listener.type() == SOCK_STREAM);

            auto client_side = [](coring::address to) -> coring::task<std::string> {
                coring::socket c = co_await coring::socket::connect_to(to);
                CHECK(c.get_option(IPPROTO_TCP, TCP_NODELAY) != 0);
                CHECK(c.peer_address() == to);
                co_await c.send_all("hello, server");
                co_await c.shutdown();  // FIN: the server's recv yields 0
                std::string reply = co_await recv_all(c);
                co_await c.close();
                co_return reply;
            };
            auto client = coring::create_task(client_side(local));

            auto [conn, peer] = co_await listener.accept();
            CHECK(conn.is_open());
            CHECK((::fcntl(conn.fd(), F_GETFD) & FD_CLOEXEC) != 0);
            CHECK(peer.host() == "127.0.0.1");
            CHECK(peer == conn.peer_address());
            const std::string got = co_await recv_all(conn);
            CHECK(got == "hello, server");
            const std::size_t sent = co_await conn.send("hello, client");
            CHECK(sent == 13);
            co_await conn.close();
            const std::string reply = co_await client;
            CHECK(reply == "hello, client");
            co_await listener.close();
        }
        CHECK(count_open_fds() == fds_before);
    }());
}

TEST_CASE("socket - connect to a closed port: ECONNREFUSED, errno and address in the message", "[socket]") {
    coring::run([]() -> coring::task<> {
        coring::address closed;
        {
            coring::socket l = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
            closed = l.local_address();
        }
        try {
            (void)co_await coring::socket::connect_to(closed);
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::error_code(ECONNREFUSED, std::system_category()));
            CHECK(std::string(e.what()).find("connect(" + closed.to_string() + ")") == 0);
        }
    }());
}

TEST_CASE("socket - bind errors name the address", "[socket]") {
    coring::run([]() -> coring::task<> {
        coring::socket a = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
        coring::socket b = co_await coring::socket::tcp();
        try {
            b.bind(a.local_address());  // in use, and no SO_REUSEPORT
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EADDRINUSE);
            CHECK(std::string(e.what()).find("bind(" + a.local_address().to_string() + ")") == 0);
        }
    }());
}

TEST_CASE("socket - options a server needs", "[socket]") {
    coring::run([]() -> coring::task<> {
        coring::socket s = co_await coring::socket::tcp();
        s.set_reuse_address();
        s.set_reuse_port();
        s.set_nodelay();
        s.set_keepalive();
        CHECK(s.get_option(SOL_SOCKET, SO_REUSEADDR) != 0);
        CHECK(s.get_option(SOL_SOCKET, SO_REUSEPORT) != 0);
        CHECK(s.get_option(IPPROTO_TCP, TCP_NODELAY) != 0);
        CHECK(s.get_option(SOL_SOCKET, SO_KEEPALIVE) != 0);
        s.set_nodelay(false);
        CHECK(s.get_option(IPPROTO_TCP, TCP_NODELAY) == 0);
        const bool threw = [&] {
            try {
                s.set_option(SOL_SOCKET, 99999, 1);
            } catch (const std::system_error&) {
                return true;
            }
            return false;
        }();
        CHECK(threw);
    }());
}

TEST_CASE("socket - send_all moves megabytes through short sends", "[socket]") {
    coring::run([]() -> coring::task<> {
        coring::socket listener = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
        std::string big(8 << 20, '\0');
        for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 7);
        auto sender = [](coring::address to, const std::string& data) -> coring::task<> {
            coring::socket c = co_await coring::socket::connect_to(to);
            co_await c.send_all(data);
            co_await c.shutdown();
        };
        auto h = coring::create_task(sender(listener.local_address(), big));
        auto accepted = co_await listener.accept();
        const std::string got = co_await recv_all(accepted.connection);
        co_await h;
        CHECK(got.size() == big.size());
        CHECK(got == big);
    }());
}

TEST_CASE("socket - IPv6 loopback", "[socket]") {
    coring::run([]() -> coring::task<> {
        coring::socket listener;
        try {
            listener = co_await coring::socket::open_listener(coring::address::loopback_ipv6(0));
        } catch (const std::system_error&) {
            co_return;  // no IPv6 on this machine
        }
        auto client = [](coring::address to) -> coring::task<> {
            coring::socket c = co_await coring::socket::connect_to(to);
            co_await c.send_all("v6");
        };
        auto h = coring::create_task(client(listener.local_address()));
        auto [conn, peer] = co_await listener.accept();
        CHECK(peer.is_ipv6());
        CHECK(peer.host() == "::1");
        const std::string got = co_await recv_all(conn);
        CHECK(got == "v6");
        co_await h;
    }());
}

TEST_CASE("socket - UDP: send_to and recv_from carry datagrams and their senders both ways", "[socket][udp]") {
    coring::run([]() -> coring::task<> {
        coring::socket server = co_await coring::socket::udp();
        server.bind(coring::address::loopback_ipv4(0));
        coring::socket client = co_await coring::socket::udp();
        client.bind(coring::address::loopback_ipv4(0));
        const std::size_t sent = co_await client.send_to("question", server.local_address());
        CHECK(sent == 8);
        std::array<std::byte, 64> buf{};
        auto [size, sender, truncated] = co_await server.recv_from(buf);
        CHECK(text(std::span(buf).first(size)) == "question");
        CHECK(sender == client.local_address());
        CHECK_FALSE(truncated);
        (void)co_await server.send_to("answer", sender);
        auto reply = co_await client.recv_from(buf);
        CHECK(text(std::span(buf).first(reply.size)) == "answer");
        CHECK(reply.sender == server.local_address());
    }());
}

TEST_CASE("socket - UDP: a datagram longer than the buffer is cut, and recv_from says so", "[socket][udp]") {
    coring::run([]() -> coring::task<> {
        coring::socket server = co_await coring::socket::udp();
        server.bind(coring::address::loopback_ipv4(0));
        coring::socket client = co_await coring::socket::udp();
        client.bind(coring::address::loopback_ipv4(0));
        (void)co_await client.send_to("0123456789", server.local_address());
        std::array<std::byte, 4> small{};
        auto cut = co_await server.recv_from(small);
        CHECK(cut.size == 4);
        CHECK(cut.truncated);
    }());
}

TEST_CASE("socket - Unix-domain stream round trip", "[socket][unix]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const auto path = coring::address::unix_path(dir.path + "/stream.sock");
        coring::socket listener = co_await coring::socket::open_listener(path);
        CHECK(listener.local_address() == path);
        auto client = [](coring::address to) -> coring::task<std::string> {
            coring::socket c = co_await coring::socket::connect_to(to);
            co_await c.send_all("over unix");
            co_await c.shutdown();
            co_return co_await recv_all(c);
        };
        auto h = coring::create_task(client(path));
        auto [conn, peer] = co_await listener.accept();
        CHECK(peer.is_unix());
        const std::string got = co_await recv_all(conn);
        CHECK(got == "over unix");
        co_await conn.send_all("back");
        co_await conn.close();
        const std::string back = co_await h;
        CHECK(back == "back");
    }());
}

TEST_CASE("socket - Unix-domain datagram round trip", "[socket][unix]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const auto a_path = coring::address::unix_path(dir.path + "/a.dgram");
        const auto b_path = coring::address::unix_path(dir.path + "/b.dgram");
        coring::socket a = co_await coring::socket::unix_datagram();
        coring::socket b = co_await coring::socket::unix_datagram();
        a.bind(a_path);
        b.bind(b_path);
        (void)co_await a.send_to("dgram", b_path);
        std::array<std::byte, 16> buf{};
        auto d = co_await b.recv_from(buf);
        CHECK(text(std::span(buf).first(d.size)) == "dgram");
        CHECK(d.sender == a_path);
    }());
}

TEST_CASE("socket - a Unix-domain listener on an abstract name needs no file", "[socket][unix]") {
    coring::run([]() -> coring::task<> {
        const auto abstract = coring::address::unix_path(std::string("\0coring-test-", 13) + std::to_string(::getpid()));
        coring::socket l2 = co_await coring::socket::open_listener(abstract);
        CHECK(l2.local_address().to_string().find("unix:@coring-test-") == 0);
    }());
}

TEST_CASE("socket - pair() gives two connected sockets", "[socket][unix]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        (void)co_await a.send("ping");
        std::array<std::byte, 8> buf{};
        const std::size_t n = co_await b.recv(buf);
        CHECK(text(std::span(buf).first(n)) == "ping");
    }());
}

TEST_CASE("socket - cancelling a task blocked in recv: prompt, buffer not written after", "[socket][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::socket listener = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
        coring::socket client = co_await coring::socket::connect_to(listener.local_address());
        auto [conn, peer] = co_await listener.accept();
        std::array<std::byte, 32> buffer{};
        buffer.fill(std::byte{0x5a});
        auto reader = [](const coring::socket& s, std::span<std::byte> buf) -> coring::task<std::size_t> { co_return co_await s.recv(buf); };
        auto h = coring::create_task(reader(conn, buffer));
        co_await coring::sleep(5ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 1000);
        co_await client.send_all("after the cancel");
        co_await coring::sleep(5ms);
        CHECK(buffer[0] == std::byte{0x5a});  // not written after
        std::array<std::byte, 32> other{};
        const std::size_t n = co_await conn.recv(other);
        CHECK(text(std::span(other).first(n)) == "after the cancel");  // nothing was lost
    }());
}

TEST_CASE("socket - cancelling a task blocked in accept: prompt, no connection lost", "[socket][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::socket listener = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
        auto acceptor = [](const coring::socket& l) -> coring::task<> { (void)co_await l.accept(); };
        auto h = coring::create_task(acceptor(listener));
        co_await coring::sleep(5ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 1000);
        coring::socket client = co_await coring::socket::connect_to(listener.local_address());
        auto [conn, peer] = co_await listener.accept();
        CHECK(peer == client.local_address());
    }());
}

TEST_CASE("socket - recv with a link timeout", "[socket][timeout]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        std::array<std::byte, 8> buf{};
        const bool timed_out = co_await coring_test::throws<coring::timeout_error>(coring::io::with_timeout(a.recv(buf), 10ms));
        CHECK(timed_out);
        coring::socket l = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
        const bool accept_timed_out = co_await coring_test::throws<coring::timeout_error>(coring::io::with_timeout(l.accept(), 10ms));
        CHECK(accept_timed_out);
        // Nothing was accepted and lost: a client connecting now is accepted normally.
        coring::socket c = co_await coring::socket::connect_to(l.local_address());
        auto [conn, peer] = co_await l.accept();
        CHECK(peer == c.local_address());
    }());
}

TEST_CASE("socket - accept_multishot hands out connections as sockets", "[socket][multishot]") {
    coring::run([]() -> coring::task<> {
        const int fds_before = count_open_fds();
        {
            coring::socket listener = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
            auto acceptor = listener.accept_multishot();
            std::vector<coring::socket> clients;
            for (int i = 0; i < 10; ++i) clients.push_back(co_await coring::socket::connect_to(listener.local_address()));
            for (int i = 0; i < 10; ++i) {
                coring::socket conn(co_await acceptor.next());
                co_await clients[static_cast<std::size_t>(i)].send_all("x");
                std::array<std::byte, 1> b{};
                const std::size_t n = co_await conn.recv(b);
                CHECK(n == 1);
            }
            CHECK(coring_test::test_access::arm_count(acceptor) == 1);
        }
        co_await coring::sleep(5ms);  // the acceptor's cancel completes
        CHECK(count_open_fds() == fds_before);
    }());
}
