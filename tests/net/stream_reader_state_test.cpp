// Tests of coring/net/stream_reader_state.hpp on its own, over a fake transport
// (tests/support/fake_transport.hpp): how far the reader reads ahead, when a waiting read is
// woken, held-back bytes, the end of the stream and errors, and what each kind of read takes.
// tests/net/stream_test.cpp tests the same through real sockets.
#include <coring/net/stream_reader_state.hpp>

#include <coring/net/stream_peer.hpp>

#include "support/catch.hpp"
#include "support/fake_transport.hpp"

#include <cerrno>
#include <exception>
#include <stdexcept>
#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

using coring::detail::read_request;
using coring::detail::reader_state;
using kind = read_request::kind;

namespace {

/// A reader with limit `limit` over a fake transport, as a stream's connection holds one.
struct reader_fixture {
    explicit reader_fixture(std::size_t limit = 10) : reader(transport, peer, limit, 4) { transport.reader = &reader; }
    coring_test::fake_transport transport;
    coring::detail::stream_peer peer{coring::address::parse("127.0.0.1", 5000), {}};
    reader_state reader;
};

/// A read whose wake-ups are counted instead of resuming a frame.
struct counted_read : read_request {
    counted_read(kind k, std::size_t n, std::string_view separator = {}) : read_request(k, n, separator, &count) {}
    static void count(read_request* r) noexcept { ++static_cast<counted_read*>(r)->wakes; }
    int wakes = 0;
};

}  // namespace

TEST_CASE("reader_state - room is the limit while no read waits", "[net][reader_state]") {
    reader_fixture f(10);
    CHECK(f.reader.room() == 10);
    f.transport.arrive("abcd");
    CHECK(f.reader.room() == 6);
    f.transport.arrive("efghijkl");
    CHECK(f.reader.room() == 0);  // past the limit: receiving pauses
}

TEST_CASE("reader_state - a waiting read that needs more than the limit widens the room", "[net][reader_state]") {
    reader_fixture f(10);
    counted_read r(kind::exactly, 25);
    f.reader.wait(r);
    CHECK(f.transport.receive_calls == 1);
    CHECK(f.reader.room() == 25);
    f.transport.arrive(std::string(12, 'x'));
    CHECK(f.reader.room() == 13);
    CHECK(r.wakes == 0);
}

TEST_CASE("reader_state - a waiting read is woken once, when the bytes satisfy it", "[net][reader_state]") {
    reader_fixture f;
    counted_read r(kind::exactly, 5);
    f.reader.wait(r);
    f.transport.arrive("abc");
    CHECK(r.wakes == 0);
    CHECK(f.reader.waiting() == &r);
    f.transport.arrive("de");
    CHECK(r.wakes == 1);
    CHECK(f.reader.waiting() == nullptr);  // unregistered as it is woken
    f.transport.arrive("f");
    CHECK(r.wakes == 1);
    CHECK(r.extract(f.reader) == "abcde");
    CHECK(f.reader.buffered() == 1);
}

TEST_CASE("reader_state - a readline waits for the separator, found across arrivals", "[net][reader_state]") {
    reader_fixture f(64);
    counted_read r(kind::line, 0, "\n");
    f.reader.wait(r);
    f.transport.arrive("hel");
    f.transport.arrive("lo");
    CHECK(r.wakes == 0);
    f.transport.arrive("\nrest");
    CHECK(r.wakes == 1);
    CHECK(r.extract(f.reader) == "hello\n");
    CHECK(f.reader.input().view() == "rest");
}

TEST_CASE("reader_state - a read that cannot be armed is not left waiting", "[net][reader_state]") {
    reader_fixture f;
    f.transport.receive_error = EBUSY;
    counted_read r(kind::some, 10);
    CHECK_THROWS_AS(f.reader.wait(r), std::system_error);
    CHECK(f.reader.waiting() == nullptr);
}

TEST_CASE("reader_state - prepare takes held-back chunks as far as the read may need", "[net][reader_state]") {
    reader_fixture f(10);
    for (int i = 0; i < 4; ++i) f.transport.held.push_back(std::string(8, static_cast<char>('a' + i)));
    counted_read small(kind::some, 100);
    f.reader.prepare(small);  // up to the limit: two chunks reach 16 >= 10
    CHECK(f.reader.input().size() == 16);
    CHECK(f.transport.held.size() == 2);
    CHECK(f.reader.buffered() == 32);  // held-back bytes count as buffered
    counted_read large(kind::exactly, 30);
    f.reader.prepare(large);  // up to 30: the rest
    CHECK(f.reader.input().size() == 32);
    CHECK(f.transport.held.empty());
    CHECK(f.reader.input().view().substr(0, 9) == "aaaaaaaab");  // in the order they arrived
}

TEST_CASE("reader_state - after a read consumed, held-back bytes move in and receiving resumes", "[net][reader_state]") {
    reader_fixture f(10);
    f.transport.arrive("0123456789");
    f.transport.held.push_back("abc");
    counted_read r(kind::some, 6);
    CHECK(r.extract(f.reader) == "012345");
    f.reader.after_consume();
    CHECK(f.reader.input().view() == "6789abc");
    CHECK(f.transport.receive_calls == 1);
}

TEST_CASE("reader_state - a receive that cannot be re-armed ends the stream with its errno", "[net][reader_state]") {
    reader_fixture f;
    f.transport.receive_error = ENOMEM;
    f.reader.after_consume();
    CHECK(f.reader.error() == ENOMEM);
    CHECK(f.reader.room() == 0);
}

TEST_CASE("reader_state - the end of the stream wakes a waiting read and stops receiving", "[net][reader_state]") {
    reader_fixture f;
    counted_read r(kind::exactly, 5);
    f.reader.wait(r);
    f.transport.arrive("ab");
    f.reader.ended(0);
    CHECK(r.wakes == 1);
    CHECK(f.reader.eof());
    CHECK_FALSE(f.reader.at_eof());  // two bytes are still to be read
    CHECK(f.reader.room() == 0);
    try {
        (void)r.extract(f.reader);
        FAIL("no incomplete_read");
    } catch (const coring::incomplete_read& e) {
        CHECK(e.partial() == "ab");
        CHECK(e.expected() == 5u);
    }
    CHECK(f.reader.at_eof());
}

TEST_CASE("reader_state - a receive error is thrown with its errno and the peer, once the buffer is read", "[net][reader_state]") {
    reader_fixture f;
    f.transport.arrive("xy");
    f.reader.ended(ECONNRESET);
    counted_read first(kind::some, 10);
    CHECK(first.extract(f.reader) == "xy");  // buffered bytes first
    counted_read second(kind::some, 10);
    try {
        (void)second.extract(f.reader);
        FAIL("no system_error");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == ECONNRESET);
        CHECK(std::string(e.what()).find("recv from 127.0.0.1:5000") != std::string::npos);
    }
}

TEST_CASE("reader_state - close makes reads see the end of the stream", "[net][reader_state]") {
    reader_fixture f;
    counted_read r(kind::some, 10);
    f.reader.wait(r);
    f.reader.close();
    CHECK(r.wakes == 1);
    CHECK(r.extract(f.reader).empty());
    CHECK(f.reader.at_eof());
}

TEST_CASE("reader_state - readuntil past the limit: limit_overrun, and the bytes stay buffered", "[net][reader_state]") {
    reader_fixture f(4);
    f.transport.arrive("abcdefg|");
    counted_read r(kind::until, 0, "|");
    CHECK(r.ready(f.reader));
    CHECK_THROWS_AS(r.extract(f.reader), coring::limit_overrun);
    CHECK(f.reader.input().view() == "abcdefg|");
}

TEST_CASE("reader_state - readline past the limit: limit_overrun, and the line is dropped", "[net][reader_state]") {
    reader_fixture f(4);
    f.transport.arrive("abcdefg\nnext\n");
    counted_read r(kind::line, 0, "\n");
    CHECK_THROWS_AS(r.extract(f.reader), coring::limit_overrun);
    CHECK(f.reader.input().view() == "next\n");
}

TEST_CASE("reader_state - a truncated end: read() to EOF throws incomplete_read with the bytes", "[net][reader_state]") {
    reader_fixture f;
    f.transport.arrive("cut sho");
    f.reader.ended(coring::detail::transport_client::truncated);
    CHECK(f.reader.eof());
    counted_read r(kind::all, 0);
    try {
        (void)r.extract(f.reader);
        FAIL("no incomplete_read");
    } catch (const coring::incomplete_read& e) {
        CHECK(e.partial() == "cut sho");
        CHECK_FALSE(e.expected().has_value());
    }
}

TEST_CASE("reader_state - a truncated end: read(n) returns the buffered bytes first, then throws", "[net][reader_state]") {
    reader_fixture f;
    f.transport.arrive("abc");
    f.reader.ended(coring::detail::transport_client::truncated);
    counted_read first(kind::some, 10);
    CHECK(first.extract(f.reader) == "abc");
    counted_read second(kind::some, 10);
    CHECK_THROWS_AS(second.extract(f.reader), coring::incomplete_read);
}

TEST_CASE("reader_state - a truncated end: readline's partial line is an incomplete_read", "[net][reader_state]") {
    reader_fixture f(64);
    f.transport.arrive("no newline");
    f.reader.ended(coring::detail::transport_client::truncated);
    counted_read r(kind::line, 0, "\n");
    CHECK_THROWS_AS(r.extract(f.reader), coring::incomplete_read);
}

TEST_CASE("reader_state - a transport's own failure is thrown instead of the errno", "[net][reader_state]") {
    reader_fixture f;
    f.transport.failure_reason = std::make_exception_ptr(std::runtime_error("bad record mac"));
    f.reader.ended(EPROTO);
    counted_read r(kind::some, 10);
    try {
        (void)r.extract(f.reader);
        FAIL("nothing thrown");
    } catch (const std::runtime_error& e) {
        CHECK(std::string(e.what()) == "bad record mac");
    }
}

TEST_CASE("stream_peer - errors name a socket's peer address, or a pipe in words", "[net][stream_peer]") {
    const coring::detail::stream_peer socket_peer{coring::address::parse("127.0.0.1", 5000), {}};
    CHECK(socket_peer.receiving() == "recv from 127.0.0.1:5000");
    CHECK(socket_peer.sending() == "send to 127.0.0.1:5000");
    CHECK(socket_peer.to_string() == "127.0.0.1:5000");
    const coring::detail::stream_peer pipe{{}, "the stdout pipe of process 42"};
    CHECK(pipe.receiving() == "read from the stdout pipe of process 42");
    CHECK(pipe.sending() == "write to the stdout pipe of process 42");
    CHECK(pipe.to_string() == "the stdout pipe of process 42");
}
