// Tests of coring/io/ops.hpp: the awaitable io_uring operations.
#include <coring/io/ops.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

namespace {
std::span<const std::byte> bytes(const std::string& s) { return std::as_bytes(std::span(s.data(), s.size())); }
}  // namespace

TEST_CASE("io ops - nop, write and read through a pipe", "[io]") {
    coring::run([]() -> coring::task<> {
        co_await coring::io::nop();
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        const std::string msg = "hello, ring";
        const std::size_t written = co_await coring::io::write(fds[1], bytes(msg));
        CHECK(written == msg.size());
        std::array<std::byte, 64> buf{};
        const std::size_t n = co_await coring::io::read(fds[0], buf);
        CHECK(std::string(reinterpret_cast<const char*>(buf.data()), n) == msg);
        ::close(fds[1]);
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

TEST_CASE("io ops - errors carry the errno and the operation", "[io]") {
    coring::run([]() -> coring::task<> {
        std::array<std::byte, 8> buf{};
        try {
            (void)co_await coring::io::read(-1, buf);
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EBADF);
            CHECK(std::string(e.what()).find("read(fd -1)") == 0);
        }
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
