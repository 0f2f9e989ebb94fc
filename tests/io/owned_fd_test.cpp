// Tests of coring/io/owned_fd.hpp: the descriptor ownership that file and socket share.
#include <coring/io/owned_fd.hpp>

#include <coring/run.hpp>

#include "support/catch.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

namespace {

// A fresh descriptor, and whether a descriptor number is open in this process.
int open_null() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }
bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1; }

}  // namespace

TEST_CASE("owned_fd - the destructor closes the descriptor", "[owned_fd]") {
    const int fd = open_null();
    REQUIRE(fd >= 0);
    {
        coring::detail::owned_fd owner(fd);
        CHECK(owner.get() == fd);
        CHECK(is_open(fd));
    }
    CHECK_FALSE(is_open(fd));
}

TEST_CASE("owned_fd - a move transfers ownership", "[owned_fd]") {
    const int a = open_null();
    REQUIRE(a >= 0);
    coring::detail::owned_fd first(a);
    coring::detail::owned_fd second(std::move(first));
    CHECK_FALSE(first.is_open());  // NOLINT(bugprone-use-after-move): moved-from state is specified
    CHECK(second.get() == a);
}

TEST_CASE("owned_fd - move assignment closes the descriptor it replaces", "[owned_fd]") {
    const int a = open_null();
    const int b = open_null();
    REQUIRE(a >= 0);
    REQUIRE(b >= 0);
    coring::detail::owned_fd second(a);
    coring::detail::owned_fd third(b);
    third = std::move(second);
    CHECK_FALSE(is_open(b));
    CHECK(third.get() == a);
    CHECK(is_open(a));
}

TEST_CASE("owned_fd - release gives the descriptor up without closing it", "[owned_fd]") {
    const int fd = open_null();
    REQUIRE(fd >= 0);
    {
        coring::detail::owned_fd owner(fd);
        CHECK(owner.release() == fd);
        CHECK_FALSE(owner.is_open());
    }
    CHECK(is_open(fd));
    ::close(fd);
}

TEST_CASE("owned_fd - close() through the kernel takes the descriptor when the await begins", "[owned_fd][io]") {
    coring::run([]() -> coring::task<> {
        const int fd = open_null();
        REQUIRE(fd >= 0);
        coring::detail::owned_fd owner(fd);
        {
            auto never_awaited = owner.close();  // not awaited: the owner keeps the descriptor
            (void)never_awaited;
        }
        CHECK(owner.is_open());
        CHECK(is_open(fd));
        co_await owner.close();
        CHECK_FALSE(owner.is_open());
        CHECK_FALSE(is_open(fd));
        co_await owner.close();  // already closed: nothing to do, no error
    }());
}
