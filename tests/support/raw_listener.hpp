#pragma once
// raw_listener: a listening TCP socket on 127.0.0.1 with a kernel-chosen port, made with plain
// system calls, for tests whose subject is what comes after it (accept, connect, recv ops).

#include "support/catch.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

namespace coring_test {

struct raw_listener {
    int fd = -1;
    sockaddr_in addr{};

    raw_listener() {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(fd >= 0);
        addr.sin_family = AF_INET;
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr.sin_port = 0;
        REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
        REQUIRE(::listen(fd, 64) == 0);
        socklen_t len = sizeof addr;
        REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0);
    }
    raw_listener(const raw_listener&) = delete;
    raw_listener& operator=(const raw_listener&) = delete;
    ~raw_listener() { ::close(fd); }

    /// A blocking client connection (completes against the backlog, no accept needed).
    [[nodiscard]] int connect_client() const {
        const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        REQUIRE(c >= 0);
        REQUIRE(::connect(c, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) == 0);
        return c;
    }
};

}  // namespace coring_test
