#pragma once
// Socket helpers of the net tests.

#include <coring/net/socket.hpp>

#include <array>
#include <cstddef>
#include <string>

namespace coring_test {

/// Receives until the peer shuts down its side; returns everything received.
inline coring::task<std::string> recv_all(const coring::socket& s) {
    std::string out;
    std::array<std::byte, 65536> buf;
    for (;;) {
        const std::size_t n = co_await s.recv(buf);
        if (n == 0) break;
        out.append(reinterpret_cast<const char*>(buf.data()), n);
    }
    co_return out;
}

}  // namespace coring_test
