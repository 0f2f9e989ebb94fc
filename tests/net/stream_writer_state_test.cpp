// Tests of coring/net/stream_writer_state.hpp on its own, over a fake transport
// (tests/support/fake_transport.hpp): what is handed to the transport and when, the water
// marks, a failed send, write_eof and close. tests/net/stream_test.cpp tests the same through
// real sockets.
#include <coring/net/stream_writer_state.hpp>

#include "support/catch.hpp"
#include "support/fake_transport.hpp"

#include <cerrno>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

using coring::detail::writer_state;

namespace {

/// A writer with water marks high / low over a fake transport.
struct writer_fixture {
    writer_fixture(std::size_t high = 10, std::size_t low = 4) : writer(transport, peer, high, low) { transport.writer = &writer; }
    void write(std::string_view s) { writer.write(std::as_bytes(std::span(s.data(), s.size()))); }
    coring_test::fake_transport transport;
    coring::detail::stream_peer peer{coring::address::parse("127.0.0.1", 5000), {}};
    writer_state writer;
};

}  // namespace

TEST_CASE("writer_state - a write with no send in flight goes to the transport at once", "[net][writer_state]") {
    writer_fixture f;
    f.write("hello");
    CHECK(f.transport.in_flight == "hello");
    CHECK(f.writer.buffered() == 5);
}

TEST_CASE("writer_state - writes during a send wait, and go together when it completes", "[net][writer_state]") {
    writer_fixture f(100, 10);
    f.write("one,");
    f.write("two,");
    f.write("three");
    CHECK(f.transport.in_flight == "one,");
    CHECK(f.writer.buffered() == 13);
    f.transport.complete_send(4);
    CHECK(f.transport.in_flight == "two,three");  // one send for both
    f.transport.complete_send(9);
    CHECK(f.transport.sent == "one,two,three");
    CHECK(f.writer.buffered() == 0);
}

TEST_CASE("writer_state - above the high-water mark it is not writable until down to the low one", "[net][writer_state]") {
    writer_fixture f(10, 4);
    f.write("0123456789");
    CHECK(f.writer.writable());  // at the mark, not above it
    f.write("a");
    CHECK_FALSE(f.writer.writable());
    f.transport.complete_send(5);  // 6 left: above low water
    CHECK_FALSE(f.writer.writable());
    f.transport.complete_send(2);  // 4 left
    CHECK(f.writer.writable());
}

TEST_CASE("writer_state - a failed send drops what is buffered and is reported with errno and peer", "[net][writer_state]") {
    writer_fixture f(5, 2);
    f.write("abc");
    f.write("defgh");
    CHECK_FALSE(f.writer.writable());
    f.transport.fail_send(EPIPE);
    CHECK(f.writer.error() == EPIPE);
    CHECK(f.writer.buffered() == 0);
    CHECK(f.writer.writable());  // drain returns, and throws
    f.write("more");             // dropped
    CHECK(f.transport.in_flight.empty());
    try {
        f.writer.throw_error();
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == EPIPE);
        CHECK(std::string(e.what()).find("send to 127.0.0.1:5000") != std::string::npos);
    }
}

TEST_CASE("writer_state - write_eof shuts the transport down once, and later writes are refused", "[net][writer_state]") {
    writer_fixture f;
    f.write("last");
    f.writer.write_eof();
    f.writer.write_eof();
    CHECK(f.transport.shutdown_calls == 1);
    CHECK_THROWS_AS(f.write("x"), coring::invalid_state_error);
    CHECK(f.transport.in_flight == "last");  // what was written before still goes
}

TEST_CASE("writer_state - after close, write is refused and write_eof does nothing", "[net][writer_state]") {
    writer_fixture f;
    f.writer.close();
    CHECK_THROWS_AS(f.write("x"), coring::invalid_state_error);
    f.writer.write_eof();
    CHECK(f.transport.shutdown_calls == 0);
}

TEST_CASE("writer_state - once the descriptor is closed it is writable, whatever was buffered", "[net][writer_state]") {
    writer_fixture f(4, 2);
    f.write("0123456789");
    CHECK_FALSE(f.writer.writable());
    f.writer.close();
    f.writer.closed();
    CHECK(f.writer.writable());
}
