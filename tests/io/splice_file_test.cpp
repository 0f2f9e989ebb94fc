// Tests of coring/io/splice_file.hpp: a file's bytes into a socket through the kernel, in order,
// with an offset and a count; errors of either side.
#include <coring/io/splice_file.hpp>

#include <coring/io/file.hpp>
#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/thread/to_thread.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <string>
#include <system_error>
#include <utility>

namespace {

// A connected pair of stream sockets: [0] is written to, [1] read from.
struct socket_pair {
    int fds[2] = {-1, -1};
    socket_pair() {
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) throw std::system_error(errno, std::generic_category(), "socketpair");
    }
    socket_pair(const socket_pair&) = delete;
    socket_pair& operator=(const socket_pair&) = delete;
    ~socket_pair() {
        for (int fd : fds)
            if (fd >= 0) ::close(fd);
    }
};

// Reads `fd` on a thread of the pool until its end.
coring::task<std::string> read_in_background(int fd) {
    co_return co_await coring::to_thread([fd] { return coring_test::read_until_eof(fd); });
}

}  // namespace

TEST_CASE("splice_file - a file's bytes arrive in order: whole, from an offset, a count", "[io][splice_file]") {
    coring::run([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        constexpr std::size_t size = (5 << 20) + 123;  // several pipe-fulls and a bit
        co_await coring::write_file(dir.file("f"), coring_test::pattern(0, size));
        coring::file f = co_await coring::file::open(dir.file("f"));
        socket_pair pair;
        auto reading = coring::create_task(read_in_background(pair.fds[1]));
        const coring::detail::splice_result whole = co_await coring::detail::splice_file(f.fd(), 0, std::nullopt, pair.fds[0]);
        const coring::detail::splice_result part = co_await coring::detail::splice_file(f.fd(), 1000, 70'000, pair.fds[0]);
        const coring::detail::splice_result past = co_await coring::detail::splice_file(f.fd(), size, 10, pair.fds[0]);
        ::shutdown(pair.fds[0], SHUT_WR);
        const std::string got = co_await reading;
        CHECK(whole.sent == size);
        CHECK(whole.output_error == 0);
        CHECK(part.sent == 70'000);
        CHECK(past.sent == 0);
        CHECK(got == coring_test::pattern(0, size) + coring_test::pattern(1000, 70'000));
        co_await f.close();
    }());
}

TEST_CASE("splice_file - an output that is gone ends the transfer with its errno, returned", "[io][splice_file]") {
    // No SIGPIPE is ignored here: the splice runs in the kernel's io_uring workers, and a closed
    // output must not end the program (see io/splice_file.hpp).
    coring::run([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        co_await coring::write_file(dir.file("f"), coring_test::pattern(0, 4 << 20));
        coring::file f = co_await coring::file::open(dir.file("f"));
        socket_pair pair;
        ::close(std::exchange(pair.fds[1], -1));
        const coring::detail::splice_result r = co_await coring::detail::splice_file(f.fd(), 0, std::nullopt, pair.fds[0]);
        CHECK(r.sent == 0);
        CHECK(r.output_error == EPIPE);
        co_await f.close();
    }());
}

TEST_CASE("splice_file - a file that cannot be read: std::system_error with its errno", "[io][splice_file]") {
    coring::run([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        co_await coring::write_file(dir.file("f"), "data");
        coring::file write_only = co_await coring::file::open(dir.file("f"), O_WRONLY);
        socket_pair pair;
        int error = 0;
        try {
            (void)co_await coring::detail::splice_file(write_only.fd(), 0, std::nullopt, pair.fds[0]);
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
        CHECK(error == EBADF);
        co_await write_only.close();
    }());
}
