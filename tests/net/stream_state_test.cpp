// Tests of coring/net/stream_state.hpp on its own: the connection state behind a stream's
// handles, over one end of a real socketpair, without stream_reader / stream_writer. What its
// invariants promise: a close waits for the data in flight, the descriptor is closed and the
// close listener told exactly once, and the last reference going closes the connection.
// tests/net/stream_test.cpp tests the same connections through the public handles.
#include <coring/net/stream_state.hpp>

#include <coring/coring.hpp>

#include "support/catch.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <string>

using namespace std::chrono_literals;
using coring::detail::ref_ptr;
using coring::detail::stream_state;

namespace {

/// Counts the times it is told that the descriptor closed.
struct counting_listener : coring::detail::stream_close_listener {
    counting_listener() : stream_close_listener([](stream_close_listener* self) noexcept { ++static_cast<counting_listener*>(self)->told; }) {}
    int told = 0;
};

/// A state over `fd`, reading ahead, told to `listener`.
ref_ptr<stream_state> state_over(int fd, counting_listener& listener) {
    auto state = ref_ptr<stream_state>::adopt(
        new stream_state(coring::get_running_loop(), coring::socket(fd), coring::address(), coring::stream_options{}, nullptr, &listener));
    state->start_reading();
    return state;
}

/// Everything the peer end receives until EOF (a blocking read: the state's end is closed by
/// then, or the test fails on its timeout).
std::string read_to_eof(int fd) {
    std::string got;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) got.append(buffer, static_cast<std::size_t>(n));
    return got;
}

/// Loop iterations until the listener is told (at most about a second).
coring::task<> until_told(const counting_listener& listener) {
    for (int i = 0; i < 1000 && listener.told == 0; ++i) co_await coring::sleep(1ms);
}

coring::task<> close_after_write(int fd, int peer_fd) {
    counting_listener listener;
    ref_ptr<stream_state> state = state_over(fd, listener);
    const std::string data(100'000, 'x');  // more than one send may take
    state->writer().write(std::as_bytes(std::span(data.data(), data.size())));
    state->close();
    // The send is in flight: the descriptor stays open until it completes.
    CHECK(state->is_closing());
    CHECK(listener.told == 0);
    CHECK(state->native_fd() == fd);
    // The peer reads while the loop sends; the loop runs until the close completes.
    std::string received;
    while (listener.told == 0) {
        co_await coring::sleep(1ms);
        char buffer[65536];
        const ssize_t n = ::recv(peer_fd, buffer, sizeof buffer, MSG_DONTWAIT);
        if (n > 0) received.append(buffer, static_cast<std::size_t>(n));
    }
    received += read_to_eof(peer_fd);
    CHECK(received == data);
    CHECK(listener.told == 1);
    CHECK(state->native_fd() == -1);
    state->close();  // idempotent: nothing more to tell
    co_await coring::sleep(1ms);
    CHECK(listener.told == 1);
}

coring::task<> last_reference_closes(int fd, int peer_fd) {
    counting_listener listener;
    {
        ref_ptr<stream_state> state = state_over(fd, listener);
        CHECK(::send(peer_fd, "ab", 2, 0) == 2);
        co_await coring::sleep(5ms);
        CHECK(state->reader().buffered() == 2);  // read ahead, though nobody asked
    }  // the only reference goes: the connection closes, with its read-ahead in flight
    co_await until_told(listener);
    CHECK(listener.told == 1);
    CHECK(read_to_eof(peer_fd).empty());
}

}  // namespace

TEST_CASE("stream_state - close waits for the data in flight, then closes and tells the listener once", "[net][stream_state]") {
    int ends[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0);
    coring::run(close_after_write(ends[0], ends[1]));
    ::close(ends[1]);
}

TEST_CASE("stream_state - the last reference going closes the connection", "[net][stream_state]") {
    int ends[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) == 0);
    coring::run(last_reference_closes(ends[0], ends[1]));
    ::close(ends[1]);
}
