// Tests of coring/io/ops.hpp: the awaitable io_uring operations, link timeouts, multishot accept.
#include <coring/io/ops.hpp>

#include <coring/io/multishot_accept.hpp>
#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/bytes.hpp"
#include "support/catch.hpp"
#include "support/test_access.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"
#include "support/raw_listener.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

using coring_test::bytes;
using coring_test::count_open_fds;
using coring_test::temp_dir;
using coring_test::text;

// A with_timeout test's safety net: should the recv reach the kernel without its linked
// timeout (the pair split), the timeout never fires; this writer then ends the recv after 2 s,
// so the test fails instead of hanging.
coring::task<> end_recv_after_2s(int peer_fd) {
    co_await coring::sleep(2s);
    REQUIRE(::write(peer_fd, "x", 1) == 1);
}

}  // namespace

TEST_CASE("io ops - nop completes", "[io]") {
    coring::run([]() -> coring::task<> {
        co_await coring::io::nop();
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);
    }());
}

TEST_CASE("io ops - what write puts into a pipe, read takes out", "[io]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const std::string msg = "hello, ring";
        const std::size_t written = co_await coring::io::write(fds[1], bytes(msg));
        CHECK(written == msg.size());
        std::array<std::byte, 64> buf{};
        const std::size_t n = co_await coring::io::read(fds[0], buf);
        CHECK(std::string(reinterpret_cast<const char*>(buf.data()), n) == msg);
        ::close(fds[1]);
        ::close(fds[0]);
    }());
}

TEST_CASE("io ops - read at end of file returns 0", "[io]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        ::close(fds[1]);
        std::array<std::byte, 64> buf{};
        const std::size_t at_eof = co_await coring::io::read(fds[0], buf);
        CHECK(at_eof == 0);
        ::close(fds[0]);
    }());
}

TEST_CASE("io ops - poll waits for readiness", "[io]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        auto writer = [](int fd) -> coring::task<> {
            co_await coring::sleep(10ms);
            REQUIRE(::write(fd, "x", 1) == 1);
        };
        auto w = coring::create_task(writer(fds[1]));
        const unsigned events = co_await coring::io::poll(fds[0], POLLIN);
        CHECK((events & POLLIN) != 0);
        co_await w;
        ::close(fds[0]);
        ::close(fds[1]);
    }());
}

TEST_CASE("io ops - a failed operation throws system_error with its errno, naming the operation", "[io]") {
    coring::run([]() -> coring::task<> {
        std::array<std::byte, 8> buf{};
        try {
            (void)co_await coring::io::read(-1, buf);
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EBADF);
            CHECK(std::string(e.what()).find("read(fd -1)") == 0);
        }
    }());
}

TEST_CASE("io ops - a write to a pipe without a reader throws EPIPE", "[io]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        ::close(fds[0]);
        try {
            (void)co_await coring::io::write(fds[1], bytes("x"));  // no reader: EPIPE (SIGPIPE is ignored below)
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EPIPE);
        }
        ::close(fds[1]);
    }());
}

TEST_CASE("io ops - offsets: read_at and write_at a file", "[io]") {
    coring::run([]() -> coring::task<> {
        char path[] = "/tmp/coring_ops_XXXXXX";
        const int fd = ::mkstemp(path);
        REQUIRE(fd >= 0);
        ::unlink(path);
        const std::size_t w1 = co_await coring::io::write(fd, bytes("0123456789"), 0);
        const std::size_t w2 = co_await coring::io::write(fd, bytes("ab"), 4);
        std::array<std::byte, 4> buf{};
        const std::size_t r = co_await coring::io::read(fd, buf, 3);
        CHECK(w1 == 10);
        CHECK(w2 == 2);
        CHECK(r == 4);
        CHECK(std::memcmp(buf.data(), "3ab6", 4) == 0);
        ::close(fd);
    }());
}

// Writing to a pipe without a reader raises SIGPIPE before EPIPE is returned.
static const bool sigpipe_ignored = [] { return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();

// ====================================================================== the remaining operations

using listener = coring_test::raw_listener;

TEST_CASE("io ops - readv and writev scatter and gather", "[io]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string path = dir.file("v");
        const int fd = co_await coring::io::openat(AT_FDCWD, path.c_str(), O_RDWR | O_CREAT, 0600);
        std::string a = "hello, ", b = "vectored ", c = "world";
        const ::iovec out[] = {{a.data(), a.size()}, {b.data(), b.size()}, {c.data(), c.size()}};
        const std::size_t written = co_await coring::io::writev(fd, out, 0);
        CHECK(written == a.size() + b.size() + c.size());
        char x[7], y[9], z[16];
        const ::iovec in[] = {{x, sizeof x}, {y, sizeof y}, {z, sizeof z}};
        const std::size_t n = co_await coring::io::readv(fd, in, 0);
        CHECK(n == written);
        CHECK(std::string(x, 7) == "hello, ");
        CHECK(std::string(y, 9) == "vectored ");
        CHECK(std::string(z, 5) == "world");
        co_await coring::io::close(fd);
    }());
}

namespace {

/// Creates `path` with mode 0640 through openat and writes twelve bytes to it; returns the descriptor.
coring::task<int> open_twelve_byte_file(const std::string& path) {
    const int fd = co_await coring::io::openat(AT_FDCWD, path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0640);
    const std::size_t n = co_await coring::io::write(fd, bytes("twelve bytes"), 0);
    CHECK(n == 12);
    co_return fd;
}

}  // namespace

TEST_CASE("io ops - openat opens with O_CLOEXEC", "[io]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const int fd = co_await open_twelve_byte_file(dir.file("data"));
        CHECK(fd >= 0);
        CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        co_await coring::io::close(fd);
    }());
}

TEST_CASE("io ops - fsync, plain and IORING_FSYNC_DATASYNC, succeeds on a written file", "[io]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const int fd = co_await open_twelve_byte_file(dir.file("data"));
        const bool fsync_threw = co_await coring_test::throws<std::system_error>(coring::io::fsync(fd));
        const bool fdatasync_threw = co_await coring_test::throws<std::system_error>(coring::io::fsync(fd, IORING_FSYNC_DATASYNC));
        CHECK_FALSE(fsync_threw);
        CHECK_FALSE(fdatasync_threw);
        co_await coring::io::close(fd);
    }());
}

TEST_CASE("io ops - statx of a path reports its size and mode", "[io]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string path = dir.file("data");
        const int fd = co_await open_twelve_byte_file(path);
        struct ::statx st {};
        co_await coring::io::statx(AT_FDCWD, path.c_str(), 0, STATX_SIZE | STATX_MODE, &st);
        CHECK(st.stx_size == 12);
        CHECK((st.stx_mode & 0777) == 0640);
        co_await coring::io::close(fd);
    }());
}

TEST_CASE("io ops - statx of a descriptor with AT_EMPTY_PATH reports its file", "[io]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const int fd = co_await open_twelve_byte_file(dir.file("data"));
        struct ::statx by_fd {};
        co_await coring::io::statx(fd, "", AT_EMPTY_PATH, STATX_SIZE, &by_fd);
        CHECK(by_fd.stx_size == 12);
        co_await coring::io::close(fd);
    }());
}

TEST_CASE("io ops - close closes the descriptor", "[io]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const int before = count_open_fds();
        const int fd = co_await open_twelve_byte_file(dir.file("data"));
        co_await coring::io::close(fd);
        CHECK(::fcntl(fd, F_GETFD) == -1);  // really closed
        CHECK(count_open_fds() == before);
    }());
}

TEST_CASE("io ops - openat of a missing path: ENOENT naming the path", "[io]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string missing = dir.file("no/such/file");
        try {
            (void)co_await coring::io::openat(AT_FDCWD, missing.c_str(), O_RDONLY);
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == ENOENT);
            CHECK(e.code().category() == std::system_category());
            CHECK(std::string(e.what()).find("open(\"" + missing + "\")") == 0);
        }
    }());
}

TEST_CASE("io ops - statx of a missing path: ENOENT", "[io]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string missing = dir.file("no/such/file");
        struct ::statx st {};
        try {
            co_await coring::io::statx(AT_FDCWD, missing.c_str(), 0, STATX_SIZE, &st);
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == ENOENT);
        }
    }());
}

TEST_CASE("io ops - socket, connect, accept, send, recv, shutdown over TCP", "[io][net]") {
    coring::run([]() -> coring::task<> {
        listener l;
        const int client = co_await coring::io::socket(AF_INET, SOCK_STREAM);
        CHECK((::fcntl(client, F_GETFD) & FD_CLOEXEC) != 0);
        co_await coring::io::connect(client, reinterpret_cast<const sockaddr*>(&l.addr), sizeof l.addr);
        sockaddr_in peer{};
        socklen_t peer_len = sizeof peer;
        const int server = co_await coring::io::accept(l.fd, reinterpret_cast<sockaddr*>(&peer), &peer_len);
        CHECK(peer.sin_family == AF_INET);
        CHECK(peer.sin_addr.s_addr == htonl(INADDR_LOOPBACK));
        const std::size_t sent = co_await coring::io::send(client, bytes("ping"));
        CHECK(sent == 4);
        std::array<std::byte, 16> buf{};
        const std::size_t got = co_await coring::io::recv(server, buf);
        CHECK(text(std::span(buf).first(got)) == "ping");
        co_await coring::io::shutdown(client, SHUT_WR);
        const std::size_t eof = co_await coring::io::recv(server, buf);
        CHECK(eof == 0);
        co_await coring::io::close(client);
        co_await coring::io::close(server);
    }());
}

TEST_CASE("io ops - recv of a 4 GiB buffer is clamped to 32 bits, not wrapped to 0 (a false end of stream)", "[io][net]") {
    coring::run([]() -> coring::task<> {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        REQUIRE(::write(sv[1], "hello", 5) == 5);
        // The kernel writes only what arrived (5 bytes), so the span may claim more than the
        // array holds; its size, 2^32, is what a 32-bit length would truncate to 0.
        std::array<std::byte, 16> storage{};
        const std::span<std::byte> huge(storage.data(), std::size_t{1} << 32);
        const std::size_t n = co_await coring::io::recv(sv[0], huge);
        CHECK(n == 5);
        CHECK(text(std::span(storage).first(5)) == "hello");
        ::close(sv[0]);
        ::close(sv[1]);
    }());
}

TEST_CASE("io ops - connect to a closed port: ECONNREFUSED with its errno", "[io][net]") {
    coring::run([]() -> coring::task<> {
        sockaddr_in addr{};
        {
            listener l;  // take a free port, then close it: nobody listens there now
            addr = l.addr;
        }
        const int fd = co_await coring::io::socket(AF_INET, SOCK_STREAM);
        try {
            co_await coring::io::connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof addr);
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == ECONNREFUSED);
            CHECK(std::string(e.what()).find("connect(fd ") == 0);
        }
        co_await coring::io::close(fd);
    }());
}

TEST_CASE("io ops - recvmsg and sendmsg carry UDP datagrams and addresses", "[io][net]") {
    coring::run([]() -> coring::task<> {
        const int a = co_await coring::io::socket(AF_INET, SOCK_DGRAM);
        const int b = co_await coring::io::socket(AF_INET, SOCK_DGRAM);
        sockaddr_in addr_a{}, addr_b{};
        for (auto [fd, addr] : {std::pair{a, &addr_a}, std::pair{b, &addr_b}}) {
            addr->sin_family = AF_INET;
            addr->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(addr), sizeof *addr) == 0);
            socklen_t len = sizeof *addr;
            REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(addr), &len) == 0);
        }
        std::string payload = "datagram";
        ::iovec out_iov{payload.data(), payload.size()};
        ::msghdr out{};
        out.msg_name = &addr_b;
        out.msg_namelen = sizeof addr_b;
        out.msg_iov = &out_iov;
        out.msg_iovlen = 1;
        const std::size_t sent = co_await coring::io::sendmsg(a, &out);
        CHECK(sent == payload.size());
        char buf[32];
        sockaddr_in from{};
        ::iovec in_iov{buf, sizeof buf};
        ::msghdr in{};
        in.msg_name = &from;
        in.msg_namelen = sizeof from;
        in.msg_iov = &in_iov;
        in.msg_iovlen = 1;
        const std::size_t got = co_await coring::io::recvmsg(b, &in);
        CHECK(std::string(buf, got) == "datagram");
        CHECK(from.sin_port == addr_a.sin_port);
        co_await coring::io::close(a);
        co_await coring::io::close(b);
    }());
}

TEST_CASE("io ops - socket falls back to the system call where IORING_OP_SOCKET is missing", "[io][net]") {
    coring::run([]() -> coring::task<> {
        coring::event_loop& loop = coring::get_running_loop();
        coring_test::test_access::force_socket_fallback(true);
        const std::uint64_t submissions_before = loop.stats().submissions;
        const int fd = co_await coring::io::socket(AF_INET, SOCK_DGRAM);
        const std::uint64_t submissions_after = loop.stats().submissions;
        coring_test::test_access::force_socket_fallback(false);
        CHECK(submissions_after == submissions_before);  // the system call, no SQE
        CHECK(fd >= 0);
        CHECK((::fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
        int type = 0;
        socklen_t len = sizeof type;
        REQUIRE(::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0);
        CHECK(type == SOCK_DGRAM);
        co_await coring::io::close(fd);
        // An invalid request fails the same way on both paths.
        coring_test::test_access::force_socket_fallback(true);
        const bool fallback_threw = co_await coring_test::throws<std::system_error>(coring::io::socket(12345, SOCK_STREAM));
        coring_test::test_access::force_socket_fallback(false);
        const bool ring_threw = co_await coring_test::throws<std::system_error>(coring::io::socket(12345, SOCK_STREAM));
        CHECK(fallback_threw);
        CHECK(ring_threw);
    }());
}

TEST_CASE("io ops - close is never lost to a cancel request", "[io][cancel]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        auto closer = [](int fd, bool& next_threw) -> coring::task<> {
            coring::current_task().cancel();  // pending before the close is awaited
            co_await coring::io::close(fd);   // still closes, and does not throw
            try {
                co_await coring::sleep(0s);
            } catch (const coring::cancelled_error&) {
                next_threw = true;  // the request was kept for the next suspension point
                throw;
            }
        };
        bool next_threw = false;
        auto h = coring::create_task(closer(fds[0], next_threw));
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(cancelled);
        CHECK(next_threw);
        CHECK(::fcntl(fds[0], F_GETFD) == -1);
        ::close(fds[1]);
    }());
}

// ---------------------------------------------------------------------- cancellation in the kernel

TEST_CASE("io ops - cancelling a task blocked in recv: prompt, and the buffer is not written after", "[io][net][cancel]") {
    coring::run([]() -> coring::task<> {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        std::array<std::byte, 16> buffer{};
        buffer.fill(std::byte{0x5a});
        auto reader = [](int fd, std::span<std::byte> buf) -> coring::task<std::size_t> { co_return co_await coring::io::recv(fd, buf); };
        auto h = coring::create_task(reader(sv[0], buffer));
        co_await coring::sleep(5ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 1000);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);
        REQUIRE(::write(sv[1], "late", 4) == 4);
        co_await coring::sleep(5ms);
        CHECK(buffer[0] == std::byte{0x5a});  // the kernel did not write into it
        char back[4];
        CHECK(::recv(sv[0], back, 4, MSG_DONTWAIT) == 4);  // the data waited in the socket
        ::close(sv[0]);
        ::close(sv[1]);
    }());
}

TEST_CASE("io ops - cancelling a task blocked in accept leaves the next connection in the backlog", "[io][net][cancel]") {
    coring::run([]() -> coring::task<> {
        listener l;
        auto acceptor = [](int fd) -> coring::task<int> { co_return co_await coring::io::accept(fd); };
        auto h = coring::create_task(acceptor(l.fd));
        co_await coring::sleep(5ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 1000);
        const int client = l.connect_client();
        const int conn = co_await coring::io::accept(l.fd);  // the connection was not taken by the cancelled accept
        CHECK(conn >= 0);
        co_await coring::io::close(conn);
        ::close(client);
    }());
}

// ---------------------------------------------------------------------- link timeouts

TEST_CASE("io ops - with_timeout: a link timeout that fires throws timeout_error", "[io][timeout]") {
    coring::run([]() -> coring::task<> {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        std::array<std::byte, 8> buf{};
        buf.fill(std::byte{1});
        const auto start = std::chrono::steady_clock::now();
        try {
            (void)co_await coring::io::with_timeout(coring::io::recv(sv[0], buf), 20ms);
            FAIL("no exception");
        } catch (const coring::timeout_error& e) {
            CHECK(std::string(e.what()).find("recv(fd ") == 0);
        }
        const double took = coring_test::ms_since(start);
        CHECK(took >= 15);
        CHECK(took < 2000);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);
        // Not written after: data sent now stays in the socket.
        REQUIRE(::write(sv[1], "x", 1) == 1);
        co_await coring::sleep(2ms);
        CHECK(buf[0] == std::byte{1});
        // An operation that completes first returns normally, and its timeout never fires.
        const std::size_t n = co_await coring::io::with_timeout(coring::io::recv(sv[0], buf), 10s);
        CHECK(n == 1);
        CHECK(buf[0] == std::byte{'x'});
        ::close(sv[0]);
        ::close(sv[1]);
    }());
}

TEST_CASE("io ops - with_timeout: completes before the timeout, later ops unaffected", "[io][timeout]") {
    coring::run([]() -> coring::task<> {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        auto writer = [](int fd) -> coring::task<> {
            co_await coring::sleep(10ms);
            REQUIRE(::write(fd, "abc", 3) == 3);
        };
        auto w = coring::create_task(writer(sv[1]));
        std::array<std::byte, 8> buf{};
        const std::size_t n = co_await coring::io::with_timeout(coring::io::recv(sv[0], buf), 5s);
        CHECK(n == 3);
        co_await w;
        // Many linked pairs in a row (exercises SQ-full handling on a small ring too).
        for (int i = 0; i < 100; ++i) co_await coring::io::with_timeout(coring::io::nop(), 1s);
        ::close(sv[0]);
        ::close(sv[1]);
    }());
}

TEST_CASE("io ops - with_timeout on a tiny ring keeps the linked pair together", "[io][timeout]") {
    coring::run(
        []() -> coring::task<> {
            int sv[2];
            REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
            auto rescue = coring::create_task(end_recv_after_2s(sv[1]));
            // Other tasks keep the small queue busy while the pair is in flight.
            auto nops = [](int n) -> coring::task<> {
                for (int i = 0; i < n; ++i) co_await coring::io::nop();
            };
            std::vector<coring::task_handle<>> hs;
            for (int i = 0; i < 5; ++i) hs.push_back(coring::create_task(nops(10)));
            // Fill the submission queue to one free slot (NOPs whose CQEs are ignored): the pair
            // needs two, so it must submit what is queued first.
            io_uring* ring = coring::get_running_loop().native_ring();
            while (io_uring_sq_space_left(ring) > 1) {
                io_uring_sqe* sqe = io_uring_get_sqe(ring);
                io_uring_prep_nop(sqe);
                io_uring_sqe_set_data64(sqe, 0);
            }
            REQUIRE(io_uring_sq_space_left(ring) == 1);
            std::array<std::byte, 8> buf{};
            const auto start = std::chrono::steady_clock::now();
            const bool timed_out = co_await coring_test::throws<coring::timeout_error>(coring::io::with_timeout(coring::io::recv(sv[0], buf), 10ms));
            CHECK(timed_out);
            CHECK(coring_test::ms_since(start) < 1000);
            for (auto& h : hs) co_await h;
            rescue.cancel();
            (void)co_await coring_test::throws<coring::cancelled_error>(rescue);
            ::close(sv[0]);
            ::close(sv[1]);
        }(),
        coring::loop_options{.queue_depth = 2});
}

TEST_CASE("io ops - with_timeout with eager_submit: the pair is submitted together", "[io][timeout]") {
    coring::run(
        []() -> coring::task<> {
            int sv[2];
            REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
            auto rescue = coring::create_task(end_recv_after_2s(sv[1]));
            std::array<std::byte, 8> buf{};
            const auto start = std::chrono::steady_clock::now();
            const bool timed_out = co_await coring_test::throws<coring::timeout_error>(coring::io::with_timeout(coring::io::recv(sv[0], buf), 20ms));
            const double took = coring_test::ms_since(start);
            CHECK(timed_out);
            CHECK(took >= 15);
            CHECK(took < 1000);
            CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);
            rescue.cancel();
            (void)co_await coring_test::throws<coring::cancelled_error>(rescue);
            ::close(sv[0]);
            ::close(sv[1]);
        }(),
        coring::loop_options{.eager_submit = true});
}

TEST_CASE("io ops - with_timeout: cancelling the task still gives cancelled_error", "[io][timeout][cancel]") {
    coring::run([]() -> coring::task<> {
        int sv[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        std::array<std::byte, 8> buf{};
        auto reader = [](int fd, std::span<std::byte> b) -> coring::task<std::size_t> {
            co_return co_await coring::io::with_timeout(coring::io::recv(fd, b), 10s);
        };
        auto h = coring::create_task(reader(sv[0], buf));
        co_await coring::sleep(5ms);
        h.cancel();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(cancelled);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);
        ::close(sv[0]);
        ::close(sv[1]);
    }());
}

// ---------------------------------------------------------------------- multishot accept

TEST_CASE("io ops - multishot accept: one SQE serves many connections", "[io][net][multishot]") {
    coring::run([]() -> coring::task<> {
        listener l;
        coring::io::multishot_accept acceptor(l.fd);
        std::vector<int> clients;
        auto first = coring::create_task([](coring::io::multishot_accept& a) -> coring::task<int> { co_return co_await a.next(); }(acceptor));
        co_await coring::sleep(2ms);
        for (int i = 0; i < 5; ++i) clients.push_back(l.connect_client());
        const int c0 = co_await first;
        CHECK(c0 >= 0);
        std::vector<int> conns{c0};
        for (int i = 1; i < 5; ++i) conns.push_back(co_await acceptor.next());
        CHECK(coring_test::test_access::arm_count(acceptor) == 1);  // one SQE for all five
        CHECK(acceptor.armed());
        for (int c : conns) {
            CHECK(c >= 0);
            CHECK((::fcntl(c, F_GETFD) & FD_CLOEXEC) != 0);
            ::close(c);
        }
        for (int c : clients) ::close(c);
    }());
}

TEST_CASE("io ops - multishot accept re-arms when the kernel ends the request", "[io][net][multishot]") {
    coring::run([]() -> coring::task<> {
        listener l;
        coring::io::multishot_accept acceptor(l.fd);
        const int c1 = l.connect_client();
        const int s1 = co_await acceptor.next();
        CHECK(coring_test::test_access::arm_count(acceptor) == 1);
        coring_test::test_access::interrupt(acceptor);  // the kernel ends multishot requests like this (CQ overflow)
        co_await coring::sleep(5ms);
        CHECK(coring_test::test_access::arm_count(acceptor) == 2);  // re-armed on the CQE without IORING_CQE_F_MORE
        CHECK(acceptor.armed());
        const int c2 = l.connect_client();
        const int s2 = co_await acceptor.next();
        CHECK(s2 >= 0);
        for (int fd : {c1, s1, c2, s2}) ::close(fd);
    }());
}

namespace {

/// Arms `acceptor` with a first connection (accepted and closed), then makes `more` connections
/// while nobody awaits next(); every client descriptor goes into `clients`.
coring::task<> connect_while_nobody_awaits(listener& l, coring::io::multishot_accept& acceptor, int more, std::vector<int>& clients) {
    clients.push_back(l.connect_client());
    const int s0 = co_await acceptor.next();  // arms it
    ::close(s0);
    // One at a time, so the loop sees each completion before the next connection (CQEs
    // already in the completion queue when the bound is reached are kept, not dropped).
    for (int i = 0; i < more; ++i) {
        clients.push_back(l.connect_client());
        co_await coring::sleep(2ms);
    }
}

}  // namespace

TEST_CASE("io ops - multishot accept queues up to max_queued while nobody awaits, then stops", "[io][net][multishot]") {
    coring::run([]() -> coring::task<> {
        listener l;
        std::vector<int> clients;
        {
            coring::io::multishot_accept acceptor(l.fd, /*max_queued=*/2);
            co_await connect_while_nobody_awaits(l, acceptor, 6, clients);
            // The bound; one more if a connection raced the cancel (made in the same
            // iteration as the completion that filled the queue, before the cancel's submission).
            CHECK(acceptor.queued() >= 2);
            CHECK(acceptor.queued() <= 3);
            CHECK_FALSE(acceptor.armed());   // stopped: the backlog holds the rest
        }
        co_await coring::sleep(5ms);  // the cancel's CQE frees the state
        for (int c : clients) ::close(c);
    }());
}

TEST_CASE("io ops - multishot accept re-arms when its full queue is drained", "[io][net][multishot]") {
    coring::run([]() -> coring::task<> {
        listener l;
        std::vector<int> clients;
        {
            coring::io::multishot_accept acceptor(l.fd, /*max_queued=*/2);
            co_await connect_while_nobody_awaits(l, acceptor, 6, clients);
            const unsigned arms = coring_test::test_access::arm_count(acceptor);
            for (int i = 0; i < 6; ++i) {  // the queued ones, then the backlog's
                const int s = co_await acceptor.next();
                CHECK(s >= 0);
                ::close(s);
            }
            CHECK(coring_test::test_access::arm_count(acceptor) > arms);  // re-armed once there was room
        }
        co_await coring::sleep(5ms);  // the cancel's CQE frees the state
        for (int c : clients) ::close(c);
    }());
}

TEST_CASE("io ops - destroying a multishot accept closes its queued connections", "[io][net][multishot]") {
    coring::run([]() -> coring::task<> {
        listener l;
        const int fds_before = count_open_fds();
        std::vector<int> clients;
        {
            coring::io::multishot_accept acceptor(l.fd, /*max_queued=*/2);
            co_await connect_while_nobody_awaits(l, acceptor, 2, clients);
            co_await coring::sleep(10ms);
            CHECK(acceptor.queued() == 2);
        }
        co_await coring::sleep(5ms);  // the cancel's CQE frees the state
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);
        for (int c : clients) ::close(c);
        CHECK(count_open_fds() == fds_before);
    }());
}

TEST_CASE("io ops - cancelling next() takes no connection", "[io][net][multishot][cancel]") {
    coring::run([]() -> coring::task<> {
        listener l;
        coring::io::multishot_accept acceptor(l.fd);
        auto waiter = [](coring::io::multishot_accept& a) -> coring::task<int> { co_return co_await a.next(); };
        // Cancelled while waiting: resumes at once; a later connection is queued for others.
        auto h = coring::create_task(waiter(acceptor));
        co_await coring::sleep(2ms);
        h.cancel();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(cancelled);
        const int c1 = l.connect_client();
        co_await coring::sleep(5ms);
        CHECK(acceptor.queued() == 1);
        const int s1 = co_await acceptor.next();
        CHECK(s1 >= 0);
        // Cancelled after the connection was handed over but before the waiter ran (the cancel
        // runs first in the iteration whose completions hand it over): the connection goes back
        // to the queue and the cancel wins.
        auto h2 = coring::create_task(waiter(acceptor));
        co_await coring::sleep(2ms);
        const int c2 = l.connect_client();
        coring::get_running_loop().call_soon([h2]() mutable { h2.cancel(); });
        const bool cancelled2 = co_await coring_test::throws<coring::cancelled_error>(h2);
        CHECK(cancelled2);
        const int s2 = co_await acceptor.next();  // nothing was lost
        CHECK(s2 >= 0);
        for (int fd : {c1, s1, c2, s2}) ::close(fd);
    }());
}

TEST_CASE("io ops - a multishot accept error is thrown by next(), which pauses the acceptor", "[io][net][multishot]") {
    coring::run([]() -> coring::task<> {
        // Not a listening socket: accept fails with EINVAL (after the one-shot retry).
        const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        coring::io::multishot_accept acceptor(fd);
        try {
            (void)co_await acceptor.next();
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EINVAL);
            CHECK(std::string(e.what()).find("accept(fd ") == 0);
        }
        CHECK_FALSE(acceptor.armed());  // paused until the next next()
        ::close(fd);
    }());
}
