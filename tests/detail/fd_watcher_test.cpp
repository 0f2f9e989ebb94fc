// Tests of coring/detail/fd_watcher.hpp through the loop's add_reader / add_writer /
// remove_reader / remove_writer (asyncio's readiness callbacks), on pipes, a socket pair and an
// eventfd.
#include <coring/detail/fd_watcher.hpp>

#include <coring/event_loop.hpp>
#include <coring/run.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// A non-blocking pipe, closed at the end of the scope (the ends still open).
struct pipe_pair {
    int read_end = -1;
    int write_end = -1;
    pipe_pair() {
        int fds[2];
        REQUIRE(::pipe2(fds, O_NONBLOCK | O_CLOEXEC) == 0);
        read_end = fds[0];
        write_end = fds[1];
    }
    pipe_pair(const pipe_pair&) = delete;
    pipe_pair& operator=(const pipe_pair&) = delete;
    ~pipe_pair() {
        if (read_end >= 0) ::close(read_end);
        if (write_end >= 0) ::close(write_end);
    }
};

void write_text(int fd, const std::string& text) { REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size())); }

/// Reads what is there (non-blocking).
std::string read_available(int fd) {
    std::string out;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) out.append(buffer, static_cast<std::size_t>(n));
    return out;
}

}  // namespace

TEST_CASE("fd_watcher - add_reader runs the callback once a pipe is readable, again while bytes remain", "[fd_watcher]") {
    coring::run([]() -> coring::task<> {
        pipe_pair p;
        coring::event_loop& loop = coring::get_running_loop();
        int calls = 0;
        std::string got;
        loop.add_reader(p.read_end, [&] {
            // Level-triggered: the first two calls leave the byte unread, so the callback runs again.
            if (++calls >= 3) got += read_available(p.read_end);
        });
        co_await coring::sleep(30ms);
        CHECK(calls == 0);  // nothing to read yet
        write_text(p.write_end, "x");
        co_await coring::sleep(30ms);
        CHECK(calls == 3);  // then nothing is left to read: it waits for more
        CHECK(got == "x");
        write_text(p.write_end, "yz");
        co_await coring::sleep(30ms);
        CHECK(calls == 4);
        CHECK(got == "xyz");
        CHECK(loop.remove_reader(p.read_end));
        CHECK_FALSE(loop.remove_reader(p.read_end));
        write_text(p.write_end, "unseen");
        co_await coring::sleep(30ms);
        CHECK(calls == 4);
    }());
}

TEST_CASE("fd_watcher - add_writer on a socket: not while its buffer is full, again once the peer reads", "[fd_watcher]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) == 0);
        const std::string block(65536, 'b');
        std::size_t filled = 0;
        for (ssize_t n; (n = ::write(fds[0], block.data(), block.size())) > 0;) filled += static_cast<std::size_t>(n);
        REQUIRE(errno == EAGAIN);
        coring::event_loop& loop = coring::get_running_loop();
        int calls = 0;
        loop.add_writer(fds[0], [&] {
            ++calls;
            CHECK(loop.remove_writer(fds[0]));  // a callback may end its own registration
        });
        co_await coring::sleep(30ms);
        CHECK(calls == 0);
        std::size_t drained = 0;
        char buffer[65536];
        for (ssize_t n; (n = ::read(fds[1], buffer, sizeof buffer)) > 0;) drained += static_cast<std::size_t>(n);
        CHECK(drained == filled);
        co_await coring::sleep(30ms);
        CHECK(calls == 1);
        ::close(fds[0]);
        ::close(fds[1]);
    }());
}

TEST_CASE("fd_watcher - an eventfd's reader sees each write", "[fd_watcher]") {
    coring::run([]() -> coring::task<> {
        const int efd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        REQUIRE(efd >= 0);
        std::vector<std::uint64_t> seen;
        coring::get_running_loop().add_reader(efd, [&] {
            std::uint64_t value = 0;
            if (::read(efd, &value, sizeof value) == sizeof value) seen.push_back(value);
        });
        for (const std::uint64_t value : {3u, 5u, 7u}) {
            REQUIRE(::write(efd, &value, sizeof value) == sizeof value);
            co_await coring::sleep(20ms);
        }
        CHECK(seen == std::vector<std::uint64_t>{3, 5, 7});
        CHECK(coring::get_running_loop().remove_reader(efd));
        ::close(efd);
    }());
}

TEST_CASE("fd_watcher - a second add_reader replaces the first: only the new callback runs", "[fd_watcher]") {
    coring::run([]() -> coring::task<> {
        pipe_pair p;
        coring::event_loop& loop = coring::get_running_loop();
        int first = 0;
        int second = 0;
        loop.add_reader(p.read_end, [&] { ++first; });
        loop.add_reader(p.read_end, [&] {
            ++second;
            (void)read_available(p.read_end);
        });
        write_text(p.write_end, "data");
        co_await coring::sleep(30ms);
        CHECK(first == 0);
        CHECK(second == 1);
        CHECK(loop.remove_reader(p.read_end));
    }());
}

TEST_CASE("fd_watcher - a descriptor closed while registered: whoever reuses its number is not woken", "[fd_watcher]") {
    coring::run([]() -> coring::task<> {
        coring::event_loop& loop = coring::get_running_loop();
        auto old_pipe = std::make_unique<pipe_pair>();
        const int number = old_pipe->read_end;
        int stale_calls = 0;
        loop.add_reader(number, [&] { ++stale_calls; });
        ::close(old_pipe->read_end);  // without remove_reader
        old_pipe->read_end = -1;
        pipe_pair stranger;  // takes the lowest free number: the one just closed
        REQUIRE(stranger.read_end == number);
        write_text(stranger.write_end, "for the stranger");
        co_await coring::sleep(50ms);
        CHECK(stale_calls == 0);
        CHECK(loop.remove_reader(number));  // the stale registration was still there
        std::string got;
        loop.add_reader(stranger.read_end, [&] { got = read_available(stranger.read_end); });
        co_await coring::sleep(30ms);
        CHECK(got == "for the stranger");
        CHECK(loop.remove_reader(stranger.read_end));
    }());
}

TEST_CASE("fd_watcher - a callback that throws is reported; the reader stays registered", "[fd_watcher]") {
    coring::event_loop loop;
    coring_test::captured_reports reports;
    reports.install(loop);
    pipe_pair p;
    int calls = 0;
    loop.run_until_complete([](coring::event_loop& l, pipe_pair& pipe, int& n) -> coring::task<> {
        l.add_reader(pipe.read_end, [&] {
            if (++n == 1) throw std::runtime_error("reader failed");
            (void)read_available(pipe.read_end);
        });
        write_text(pipe.write_end, "x");
        co_await coring::sleep(30ms);
        CHECK(l.remove_reader(pipe.read_end));
    }(loop, p, calls));
    CHECK(calls == 2);
    REQUIRE(reports.reports.size() == 1);
    CHECK(reports.reports[0].exception != nullptr);
}

TEST_CASE("fd_watcher - the loop closes with readers and writers still registered", "[fd_watcher][shutdown]") {
    pipe_pair p;
    const std::size_t frames_before = coring_test::live_frames();
    {
        coring::event_loop loop;
        loop.run_until_complete([](pipe_pair& pipe) -> coring::task<> {
            coring::get_running_loop().add_reader(pipe.read_end, [] {});
            coring::get_running_loop().add_writer(pipe.write_end, [] {});  // ready at once, and queued again and again
            co_await coring::sleep(10ms);
        }(p));
        loop.close();  // cancels the polls and waits for them (ASan: nothing leaks)
    }
    CHECK(coring_test::live_frames() == frames_before);
}

// The kernel answers a poll removal with EALREADY when the poll's wake-up is on its way (in
// the ring's deferred task work); if the event is gone by the time that work runs, the one-shot
// poll is armed again. The removal must be sent again, or close() waits for that poll forever.
TEST_CASE("fd_watcher - a reader removed while its wake-up is on the way: the loop still closes", "[fd_watcher][shutdown]") {
    for (int round = 0; round < 20; ++round) {
        int ends[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ends) == 0);
        int calls = 0;
        {
            coring::event_loop loop;
            loop.run_until_complete([](int watched, int peer, int& n) -> coring::task<> {
                coring::event_loop& l = coring::get_running_loop();
                l.add_reader(watched, [&n] { ++n; });
                co_await coring::sleep(1ms);  // the poll is in the kernel
                write_text(peer, "x");        // wakes it: its completion waits for the loop
                CHECK(read_available(watched) == "x");
                CHECK(l.remove_reader(watched));
                co_await coring::sleep(1ms);
            }(ends[0], ends[1], calls));
            loop.close();  // returns only once the poll has ended
        }
        CHECK(calls == 0);
        ::close(ends[0]);
        ::close(ends[1]);
    }
}

TEST_CASE("fd_watcher - add_reader on a descriptor that is not open: EBADF", "[fd_watcher]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        ::close(fds[0]);
        ::close(fds[1]);
        int code = 0;
        try {
            coring::get_running_loop().add_reader(fds[0], [] {});
        } catch (const std::system_error& e) {
            code = e.code().value();
        }
        CHECK(code == EBADF);
        CHECK_FALSE(coring::get_running_loop().remove_reader(fds[0]));
        co_return;
    }());
}
