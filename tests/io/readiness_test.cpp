// Tests of coring/io/readiness.hpp: wait_readable and wait_writable on pipes and a socket pair,
// their cancellation, and descriptors closed or never open.
#include <coring/io/readiness.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <memory>
#include <string>
#include <system_error>

using namespace std::chrono_literals;

namespace {

struct pipe_fds {
    int read_end = -1;
    int write_end = -1;
    pipe_fds() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    pipe_fds(const pipe_fds&) = delete;
    pipe_fds& operator=(const pipe_fds&) = delete;
    ~pipe_fds() {
        if (read_end >= 0) ::close(read_end);
        if (write_end >= 0) ::close(write_end);
    }
};

coring::task<> write_later(int fd, std::chrono::milliseconds delay) {
    co_await coring::sleep(delay);
    REQUIRE(::write(fd, "x", 1) == 1);
}

coring::task<unsigned> readable(int fd) { co_return co_await coring::wait_readable(fd); }

}  // namespace

TEST_CASE("readiness - wait_readable returns once the pipe has a byte, with POLLIN", "[readiness]") {
    coring::run([]() -> coring::task<> {
        pipe_fds p;
        auto writer = coring::create_task(write_later(p.write_end, 40ms));
        const auto start = std::chrono::steady_clock::now();
        const unsigned events = co_await coring::wait_readable(p.read_end);
        CHECK(coring_test::ms_since(start) >= 30);
        CHECK((events & POLLIN) != 0);
        char c = 0;
        CHECK(::read(p.read_end, &c, 1) == 1);
        co_await writer;
    }());
}

TEST_CASE("readiness - a closed write end counts as ready: POLLHUP", "[readiness]") {
    coring::run([]() -> coring::task<> {
        pipe_fds p;
        ::close(p.write_end);
        p.write_end = -1;
        const unsigned events = co_await coring::wait_readable(p.read_end);
        CHECK((events & POLLHUP) != 0);
    }());
}

TEST_CASE("readiness - wait_writable waits while the socket's buffer is full", "[readiness]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        const std::string block(65536, 'b');
        while (::write(fds[0], block.data(), block.size()) > 0) {
        }
        REQUIRE(errno == EAGAIN);
        auto waiting = coring::create_task([](int fd) -> coring::task<unsigned> { co_return co_await coring::wait_writable(fd); }(fds[0]));
        co_await coring::sleep(30ms);
        CHECK_FALSE(waiting.done());
        char buffer[65536];
        while (::read(fds[1], buffer, sizeof buffer) > 0) {
        }
        const unsigned events = co_await waiting;
        CHECK((events & POLLOUT) != 0);
        ::close(fds[0]);
        ::close(fds[1]);
    }());
}

TEST_CASE("readiness - cancelling a wait resumes the task promptly", "[readiness][cancel]") {
    coring::run([]() -> coring::task<> {
        pipe_fds p;
        auto waiting = coring::create_task(readable(p.read_end));
        co_await coring::sleep(20ms);
        const coring_test::cancel_outcome outcome = co_await coring_test::cancel_and_await(std::move(waiting));
        CHECK(outcome.by_cancelled_error);
        CHECK(outcome.ms_after_cancel < 500);
    }());
}

TEST_CASE("readiness - a descriptor closed during the wait: its number's next owner does not wake the task", "[readiness]") {
    coring::run([]() -> coring::task<> {
        auto old_pipe = std::make_unique<pipe_fds>();
        const int number = old_pipe->read_end;
        auto waiting = coring::create_task(readable(number));
        co_await coring::sleep(10ms);
        ::close(old_pipe->read_end);
        old_pipe->read_end = -1;
        pipe_fds stranger;
        REQUIRE(stranger.read_end == number);
        REQUIRE(::write(stranger.write_end, "x", 1) == 1);
        co_await coring::sleep(50ms);
        CHECK_FALSE(waiting.done());
        const coring_test::cancel_outcome outcome = co_await coring_test::cancel_and_await(std::move(waiting));
        CHECK(outcome.by_cancelled_error);
    }());
}

TEST_CASE("readiness - a descriptor that is not open: std::system_error with EBADF", "[readiness]") {
    coring::run([]() -> coring::task<> {
        int code = 0;
        try {
            (void)co_await coring::wait_readable(-1);
        } catch (const std::system_error& e) {
            code = e.code().value();
        }
        CHECK(code == EBADF);
    }());
}
