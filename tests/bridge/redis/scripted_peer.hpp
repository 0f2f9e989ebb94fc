#pragma once
// scripted_peer: the server's end of a Redis connection, played by the test itself: a listening
// socket on 127.0.0.1, the connection it accepts, the bytes the client sent, and replies written
// as the test scripts them. The bridge's unit tests use it where they need no redis-server, only
// a peer that answers (or fails) exactly when and how the test says.

#include <coring/io/readiness.hpp>
#include <coring/task.hpp>

#include "support/catch.hpp"
#include "support/raw_listener.hpp"

#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace coring_test {

struct scripted_peer {
    raw_listener listener;
    int fd = -1;  // the accepted connection

    scripted_peer() = default;
    scripted_peer(const scripted_peer&) = delete;
    scripted_peer& operator=(const scripted_peer&) = delete;
    ~scripted_peer() { close(); }

    [[nodiscard]] std::uint16_t port() const { return ntohs(listener.addr.sin_port); }

    /// Takes the client's connection: call it once connect() has returned, when the connection
    /// waits in the backlog (so this does not block the loop).
    void accept() {
        fd = ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        REQUIRE(fd >= 0);
    }

    /// What the client sends next, `n` bytes of it (fewer if it closes first).
    coring::task<std::string> receive(std::size_t n) {
        std::string got;
        char buffer[4096];
        while (got.size() < n) {
            (void)co_await coring::wait_readable(fd);
            const ssize_t r = ::recv(fd, buffer, std::min(sizeof buffer, n - got.size()), 0);
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            if (r <= 0) break;
            got.append(buffer, static_cast<std::size_t>(r));
        }
        co_return got;
    }

    /// Writes `bytes` to the client (small enough for the socket's buffer).
    void send(std::string_view bytes) const { REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size())); }

    /// Closes the connection, as a server that goes away.
    void close() {
        if (fd >= 0) ::close(fd);
        fd = -1;
    }
};

}  // namespace coring_test
