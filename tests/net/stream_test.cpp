// Tests of coring/net/stream.hpp: asyncio streams over real sockets on 127.0.0.1.
#include <coring/net/stream.hpp>

#include <coring/io/file.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>
#include <coring/wait_for.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"
#include "support/sockets.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

using coring_test::count_open_fds;
using coring_test::pattern;
using coring_test::recv_all;

// The two ways a stream receives: through a provided-buffer ring, or with plain recv.
coring::stream_options options_for(bool ring) {
    coring::stream_options o;
    o.use_buffer_ring = ring;
    return o;
}

// A connected pair: a stream on the client side, a raw socket on the server side.
struct stream_pair {
    coring::stream_reader reader;
    coring::stream_writer writer;
    coring::socket server;
};

coring::task<stream_pair> connect_pair(coring::stream_options options = {}) {
    coring::socket listener = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", listener.local_address().port(), options);
    auto [conn, peer] = co_await listener.accept();
    co_return stream_pair{std::move(reader), std::move(writer), std::move(conn)};
}

// Sends `parts` as separate TCP segments: a pause after each lets the reader receive it alone.
template <class... Parts>
coring::task<> send_segments(const coring::socket& s, Parts... parts) {
    const std::vector<std::string> segments{std::string(parts)...};
    for (const std::string& segment : segments) {
        co_await s.send_all(segment);
        co_await coring::sleep(2ms);
    }
}

}  // namespace

TEST_CASE("stream - use_buffer_ring chooses how the reader receives", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        CHECK(p.reader.uses_buffer_ring() == use_ring);
    }(ring));
}

TEST_CASE("stream - readline joins a line that arrives in several segments", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await send_segments(p.server, "hel", "lo, wor", "ld\n");
        const std::string line = co_await p.reader.readline();
        CHECK(line == "hello, world\n");
    }(ring));
}

TEST_CASE("stream - readline takes one line at a time from a segment holding several", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await send_segments(p.server, "one\ntwo\nthree\n0123456789HEADER\r\n\r\nbody");
        const std::string one = co_await p.reader.readline();
        const std::string two = co_await p.reader.readline();
        const std::string three = co_await p.reader.readline();
        CHECK(one == "one\n");
        CHECK(two == "two\n");
        CHECK(three == "three\n");
    }(ring));
}

TEST_CASE("stream - readexactly takes its bytes from the front of a longer segment", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await send_segments(p.server, "0123456789HEADER\r\n\r\nbody");
        const std::string ten = co_await p.reader.readexactly(10);
        CHECK(ten == "0123456789");
    }(ring));
}

TEST_CASE("stream - readuntil stops after the separator in a longer segment", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await send_segments(p.server, "HEADER\r\n\r\nbody");
        const std::string head = co_await p.reader.readuntil("\r\n\r\n");
        CHECK(head == "HEADER\r\n\r\n");
    }(ring));
}

TEST_CASE("stream - readuntil finds a multi-byte separator split across segments", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await send_segments(p.server, "body|x\r\n", "\r", "\ntail");
        const std::string until = co_await p.reader.readuntil("\r\n\r\n");
        CHECK(until == "body|x\r\n\r\n");
    }(ring));
}

TEST_CASE("stream - readexactly gathers its bytes across segments", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await send_segments(p.server, "tail", "56", "789");
        const std::string exactly = co_await p.reader.readexactly(9);
        CHECK(exactly == "tail56789");
    }(ring));
}

TEST_CASE("stream - read(0) returns nothing", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await p.server.send_all("abcdef");
        const std::string nothing = co_await p.reader.read(0);
        CHECK(nothing.empty());
    }(ring));
}

TEST_CASE("stream - read(n) returns at most n bytes, not waiting for more", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await p.server.send_all("abcdef");
        const std::string some = co_await p.reader.read(4);
        CHECK(some == "abcd");
        const std::string more = co_await p.reader.read(100);
        CHECK(more == "ef");
        CHECK_FALSE(p.reader.at_eof());
    }(ring));
}

TEST_CASE("stream - readexactly of more than the reader's limit keeps reading", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        const std::string big = pattern(0, 300'000);
        auto sending = coring::create_task([](const coring::socket& s, const std::string& data) -> coring::task<> { co_await s.send_all(data); }(p.server, big));
        const std::string first_line = co_await p.reader.readexactly(300'000);
        CHECK(first_line == big);
        co_await sending;
    }(ring));
}

TEST_CASE("stream - at EOF, readline returns the partial last line, then nothing", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await p.server.send_all("partial line");
        co_await p.server.shutdown();
        const std::string last = co_await p.reader.readline();
        CHECK(last == "partial line");
        const std::string after = co_await p.reader.readline();
        CHECK(after.empty());
        CHECK(p.reader.at_eof());
        const std::string at_end = co_await p.reader.read(10);
        CHECK(at_end.empty());
    }(ring));
}

TEST_CASE("stream - read() returns everything up to EOF, past the reader's limit", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        const std::string big = pattern(3, 1 << 20);
        auto sender = [](const coring::socket& s, const std::string& data) -> coring::task<> {
            co_await s.send_all(data);
            co_await s.shutdown();
        };
        auto sending = coring::create_task(sender(p.server, big));
        const std::string all = co_await p.reader.read();  // read(-1)
        co_await sending;
        CHECK(all.size() == big.size());
        CHECK(all == big);
        CHECK(p.reader.at_eof());
    }(ring));
}

TEST_CASE("stream - EOF in the middle of readexactly: incomplete_read with the partial bytes", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await p.server.send_all("only seven");
        co_await p.server.shutdown();
        bool thrown = false;
        try {
            (void)co_await p.reader.readexactly(100);
        } catch (const coring::incomplete_read& e) {
            thrown = true;
            CHECK(e.partial() == "only seven");
            CHECK(e.expected() == std::optional<std::size_t>(100));
            CHECK(std::string(e.what()).find("10 bytes read on a total of 100 expected bytes") != std::string::npos);
        }
        CHECK(thrown);
        CHECK(p.reader.at_eof());
    }(ring));
}

TEST_CASE("stream - EOF in the middle of readuntil: incomplete_read with the partial bytes", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await p.server.send_all("no separator here");
        co_await p.server.shutdown();
        bool thrown = false;
        try {
            (void)co_await p.reader.readuntil("\r\n");
        } catch (const coring::incomplete_read& e) {
            thrown = true;
            CHECK(e.partial() == "no separator here");
            CHECK_FALSE(e.expected().has_value());
        }
        CHECK(thrown);
    }(ring));
}

TEST_CASE("stream - the reader's limit: limit_overrun instead of unbounded buffering", "[stream][limit]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        coring::stream_options o = options_for(use_ring);
        o.limit = 1024;
        o.recv_buffer_size = 512;
        stream_pair p = co_await connect_pair(o);
        CHECK(p.reader.limit() == 1024);
        // readuntil: no separator within the limit. The data stays buffered.
        co_await p.server.send_all(std::string(3000, 'x'));
        co_await coring::sleep(5ms);
        std::size_t consumed = 0;
        try {
            (void)co_await p.reader.readuntil("\n");
        } catch (const coring::limit_overrun& e) {
            consumed = e.consumed();
            CHECK(std::string(e.what()).find("Separator is not found, and chunk exceed the limit") != std::string::npos);
        }
        CHECK(consumed >= 1024);
        // Bounded: the reader stopped reading ahead at its limit plus one receive buffer.
        CHECK(p.reader.buffered() >= 1024);
        // (With a buffer ring, chunks that were on their way when the reader paused stay parked in
        // the ring's buffers: bounded by the ring.)
        CHECK(p.reader.buffered() <= 1024 + 512 + (use_ring ? 8 * 512 : 512));
        const std::string head = co_await p.reader.readexactly(3000);  // the data was left in place
        CHECK(head == std::string(3000, 'x'));
        // A separator found past the limit.
        co_await p.server.send_all(std::string(1500, 'y') + "\nnext\n");
        bool found_past = false;
        try {
            (void)co_await p.reader.readuntil("\n");
        } catch (const coring::limit_overrun& e) {
            found_past = std::string(e.what()).find("Separator is found, but chunk is longer than limit") != std::string::npos;
            CHECK(e.consumed() == 1500);
        }
        CHECK(found_past);
        // readline drops the overlong line and throws; the next line reads normally.
        const bool line_overrun = co_await coring_test::throws<coring::limit_overrun>(p.reader.readline());
        CHECK(line_overrun);
        const std::string next = co_await p.reader.readline();
        CHECK(next == "next\n");
        // A line of exactly `limit` bytes before the separator is fine.
        co_await p.server.send_all(std::string(1024, 'z') + "\n");
        const std::string exact = co_await p.reader.readline();
        CHECK(exact.size() == 1025);
    }(ring));
}

TEST_CASE("stream - open_connection to a closed port: ECONNREFUSED naming the address", "[stream][errors]") {
    coring::run([]() -> coring::task<> {
        // A port that was just free: bind, read the port, close.
        std::uint16_t port = 0;
        {
            coring::socket s = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
            port = s.local_address().port();
        }
        int code = 0;
        std::string what;
        try {
            (void)co_await coring::open_connection("127.0.0.1", port);
        } catch (const std::system_error& e) {
            code = e.code().value();
            what = e.what();
        }
        CHECK(code == ECONNREFUSED);
        CHECK(what.find("connect(127.0.0.1:" + std::to_string(port) + ")") != std::string::npos);
    }());
}

TEST_CASE("stream - open_unix_connection to a missing path: ENOENT naming the path", "[stream][errors]") {
    coring::run([]() -> coring::task<> {
        int code = 0;
        std::string what;
        try {
            (void)co_await coring::open_unix_connection("/nonexistent/coring.sock");
        } catch (const std::system_error& e) {
            code = e.code().value();
            what = e.what();
        }
        CHECK(code == ENOENT);
        CHECK(what.find("unix:/nonexistent/coring.sock") != std::string::npos);
    }());
}

TEST_CASE("stream - cancelling a task blocked in a read: prompt, and the bytes it saw stay buffered", "[stream][cancel]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        co_await p.server.send_all("partial ");
        auto reader = [](coring::stream_reader& r) -> coring::task<std::string> { co_return co_await r.readline(); };
        auto h = coring::create_task(reader(p.reader));
        co_await coring::sleep(5ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 1000);
        co_await p.server.send_all("line\n");
        const std::string line = co_await p.reader.readline();
        CHECK(line == "partial line\n");
    }(ring));
}

TEST_CASE("stream - a read timed out by wait_for leaves the stream usable", "[stream][cancel]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        const bool timed_out = co_await coring_test::throws<coring::timeout_error>(coring::wait_for(p.reader.readexactly(4), 10ms));
        CHECK(timed_out);
        co_await p.server.send_all("abcd");
        const std::string four = co_await p.reader.readexactly(4);
        CHECK(four == "abcd");
    }(ring));
}

TEST_CASE("stream - two tasks reading at once is an invalid_state_error", "[stream]") {
    coring::run([]() -> coring::task<> {
        stream_pair p = co_await connect_pair();
        auto reader = [](coring::stream_reader& r) -> coring::task<std::string> { co_return co_await r.readline(); };
        auto first = coring::create_task(reader(p.reader));
        co_await coring::sleep(1ms);
        const bool rejected = co_await coring_test::throws<coring::invalid_state_error>(p.reader.readline());
        CHECK(rejected);
        co_await p.server.send_all("x\n");
        const std::string line = co_await first;
        CHECK(line == "x\n");
    }());
}

TEST_CASE("stream - drain waits for the low-water mark while a small SO_SNDBUF takes the data in parts", "[stream][drain]") {
    coring::run([]() -> coring::task<> {
        stream_pair p = co_await connect_pair();
        const int small = 4096;
        ::setsockopt(p.writer.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        // The receiver's buffer keeps its default: shrinking both ends of a loopback connection
        // makes TCP crawl on zero-window probes (tens of seconds for 2 MiB).
        const std::string data = pattern(11, 2 << 20);
        p.writer.write(data);  // never blocks
        CHECK(p.writer.buffered() > 64 * 1024);
        auto drainer = [](coring::stream_writer& w) -> coring::task<> { co_await w.drain(); };
        auto draining = coring::create_task(drainer(p.writer));
        co_await coring::sleep(20ms);
        CHECK_FALSE(draining.done());  // nobody reads: the kernel took only part of it
        CHECK(p.writer.buffered() > 16 * 1024);
        auto receiving = coring::create_task(recv_all(p.server));
        co_await draining;
        CHECK(p.writer.buffered() <= 16 * 1024);
        p.writer.close();
        co_await p.writer.wait_closed();
        const std::string got = co_await receiving;
        CHECK(got.size() == data.size());
        CHECK(got == data);
    }());
}

TEST_CASE("stream - drain below the high-water mark returns at once", "[stream][drain]") {
    coring::run([]() -> coring::task<> {
        stream_pair q = co_await connect_pair();
        q.writer.write("small");
        auto quick = q.writer.drain();
        CHECK(quick.await_ready());
    }());
}

TEST_CASE("stream - a peer that resets the connection mid-write: drain throws a clear error", "[stream][errors]") {
    coring::run([]() -> coring::task<> {
        stream_pair p = co_await connect_pair();
        const int small = 4096;
        ::setsockopt(p.writer.native_handle(), SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
        const std::string peer = p.writer.peer_address().to_string();
        p.writer.write(pattern(0, 1 << 20));
        co_await coring::sleep(5ms);
        const ::linger abort_on_close{1, 0};
        ::setsockopt(p.server.fd(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
        p.server = coring::socket();  // RST
        int code = 0;
        std::string what;
        try {
            co_await p.writer.drain();
        } catch (const std::system_error& e) {
            code = e.code().value();
            what = e.what();
        }
        CHECK((code == ECONNRESET || code == EPIPE));
        CHECK(what.find("send to " + peer) != std::string::npos);
        p.writer.write("dropped");  // after a failed send: dropped, no throw
        // The reader reports the reset too, once.
        int read_code = 0;
        try {
            (void)co_await p.reader.read(10);
        } catch (const std::system_error& e) {
            read_code = e.code().value();
        }
        CHECK((read_code == ECONNRESET || read_code == 0));
    }());
}

TEST_CASE("stream - the writer's addresses are the peer's, seen from the other side", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        CHECK(p.writer.peer_address() == p.server.local_address());
        CHECK(p.writer.local_address() == p.server.peer_address());
    }(ring));
}

TEST_CASE("stream - write_eof sends FIN after the data written before it", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        CHECK(p.writer.can_write_eof());
        p.writer.write("request");
        p.writer.write_eof();
        const std::string request = co_await recv_all(p.server);  // ends: FIN arrived
        CHECK(request == "request");
    }(ring));
}

TEST_CASE("stream - a write after write_eof is an invalid_state_error", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        p.writer.write_eof();
        const bool after_eof = co_await coring_test::throws<coring::invalid_state_error>([](coring::stream_writer& w) -> coring::task<> {
            w.write("more");
            co_return;
        }(p.writer));
        CHECK(after_eof);
    }(ring));
}

TEST_CASE("stream - the reader still reads after write_eof", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        stream_pair p = co_await connect_pair(options_for(use_ring));
        p.writer.write_eof();
        co_await p.server.send_all("response");
        co_await p.server.shutdown();
        const std::string response = co_await p.reader.read();
        CHECK(response == "response");
    }(ring));
}

TEST_CASE("stream - close, then wait_closed, frees the descriptor", "[stream]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        const int fds_before = count_open_fds();
        {
            stream_pair p = co_await connect_pair(options_for(use_ring));
            CHECK_FALSE(p.writer.is_closing());
            p.writer.close();
            CHECK(p.writer.is_closing());
            co_await p.writer.wait_closed();
            CHECK(p.writer.native_handle() == -1);
        }
        CHECK(count_open_fds() == fds_before);
    }(ring));
}

TEST_CASE("stream - dropping both handles closes the connection after the buffered data", "[stream]") {
    coring::run([]() -> coring::task<> {
        const int fds_before = count_open_fds();
        coring::socket listener = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
        const std::string data = pattern(5, 500'000);
        {
            auto [reader, writer] = co_await coring::open_connection("127.0.0.1", listener.local_address().port());
            writer.write(data);
        }
        auto [conn, peer] = co_await listener.accept();
        const std::string got = co_await recv_all(conn);  // everything, then EOF
        CHECK(got == data);
        conn = coring::socket();
        listener = coring::socket();
        co_await coring::sleep(2ms);
        CHECK(count_open_fds() == fds_before);
    }());
}

TEST_CASE("stream - Unix-domain streams", "[stream][unix]") {
    coring::run([]() -> coring::task<> {
        char dir_template[] = "/tmp/coring_stream_XXXXXX";
        REQUIRE(::mkdtemp(dir_template) != nullptr);
        const std::string path = std::string(dir_template) + "/s.sock";
        {
            coring::socket listener = co_await coring::socket::open_listener(coring::address::unix_path(path));
            auto [reader, writer] = co_await coring::open_unix_connection(path);
            auto [conn, peer] = co_await listener.accept();
            writer.write("ping\n");
            co_await writer.drain();
            std::array<std::byte, 16> buf{};
            const std::size_t n = co_await conn.recv(buf);
            CHECK(std::string(reinterpret_cast<const char*>(buf.data()), n) == "ping\n");
            co_await conn.send_all("pong\n");
            const std::string line = co_await reader.readline();
            CHECK(line == "pong\n");
            writer.close();
            co_await writer.wait_closed();
        }
        ::unlink(path.c_str());
        ::rmdir(dir_template);
    }());
}

TEST_CASE("stream - the reader reads ahead only up to its limit while nobody reads", "[stream][limit]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        coring::stream_options o = options_for(use_ring);
        o.limit = 4096;
        o.recv_buffer_size = 1024;
        stream_pair p = co_await connect_pair(o);
        const int kernel_buffer = 65536;  // keep the kernel from buffering the whole megabyte
        ::setsockopt(p.server.fd(), SOL_SOCKET, SO_SNDBUF, &kernel_buffer, sizeof kernel_buffer);
        ::setsockopt(p.writer.native_handle(), SOL_SOCKET, SO_RCVBUF, &kernel_buffer, sizeof kernel_buffer);
        const std::string data = pattern(1, 1 << 20);
        auto sender = [](const coring::socket& s, const std::string& d) -> coring::task<> {
            co_await s.send_all(d);
            co_await s.shutdown();
        };
        auto sending = coring::create_task(sender(p.server, data));
        co_await coring::sleep(20ms);
        CHECK_FALSE(sending.done());  // the reader paused: the kernel's buffers filled up
        const std::size_t bound = 4096 + 1024 + (use_ring ? 8 * 1024 : 1024);
        CHECK(p.reader.buffered() <= bound);
        std::string got;
        for (;;) {
            std::string chunk = co_await p.reader.read(3000);
            if (chunk.empty()) break;
            CHECK(p.reader.buffered() <= bound);
            got += chunk;
        }
        co_await sending;
        CHECK(got == data);
    }(ring));
}

// ------------------------------------------------------------------------- sendfile

namespace {

// A file of `n` pattern bytes in `dir`, opened for reading.
coring::task<coring::file> pattern_file(const coring_test::temp_dir& dir, std::size_t n) {
    const std::string path = dir.file("data.bin");
    co_await coring::write_file(path, pattern(0, n));
    co_return co_await coring::file::open(path);
}

}  // namespace

TEST_CASE("stream - sendfile sends the file in order between what was written before and after", "[stream][sendfile]") {
    coring::run([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        constexpr std::size_t size = 8 << 20;
        coring::file f = co_await pattern_file(dir, size);
        stream_pair p = co_await connect_pair();
        auto receiving = coring::create_task(recv_all(p.server));
        p.writer.write("HEAD\n");
        const std::uint64_t sent = co_await p.writer.sendfile(f);
        p.writer.write("TAIL\n");
        p.writer.close();
        co_await p.writer.wait_closed();
        const std::string got = co_await receiving;
        CHECK(sent == size);
        REQUIRE(got.size() == size + 10);
        CHECK(got.substr(0, 5) == "HEAD\n");
        CHECK(got.substr(5, size) == pattern(0, size));
        CHECK(got.substr(5 + size) == "TAIL\n");
    }());
}

TEST_CASE("stream - sendfile of a part: offset and count; a count past the end sends up to it", "[stream][sendfile]") {
    coring::run([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        constexpr std::size_t size = 3 << 20;
        coring::file f = co_await pattern_file(dir, size);
        stream_pair p = co_await connect_pair();
        auto receiving = coring::create_task(recv_all(p.server));
        const std::uint64_t middle = co_await p.writer.sendfile(f, 1'000'001, 1'500'000);
        const std::uint64_t tail = co_await p.writer.sendfile(f, size - 10, 1'000);
        const std::uint64_t past_end = co_await p.writer.sendfile(f, size + 5);
        p.writer.close();
        const std::string got = co_await receiving;
        CHECK(middle == 1'500'000);
        CHECK(tail == 10);
        CHECK(past_end == 0);
        CHECK(got == pattern(1'000'001, 1'500'000) + pattern(size - 10, 10));
    }());
}

TEST_CASE("stream - sendfile: misuse is refused with a clear error", "[stream][sendfile]") {
    coring::run([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        // Larger than what the kernel buffers (socket buffers and the splice pipe): with nobody
        // reading yet, the sendfile has to wait. (Shrinking the receiver's buffer instead would
        // make TCP crawl through a window it already advertised.)
        constexpr std::uint64_t size = 64 << 20;
        coring::file f = co_await pattern_file(dir, size);
        stream_pair p = co_await connect_pair();
        const bool zero_count = co_await coring_test::throws<std::invalid_argument>(p.writer.sendfile(f, 0, 0));
        CHECK(zero_count);
        coring::file closed;
        const bool closed_file = co_await coring_test::throws<std::invalid_argument>(p.writer.sendfile(closed));
        CHECK(closed_file);
        auto sending = coring::create_task(p.writer.sendfile(f));
        co_await coring::sleep(5ms);
        REQUIRE_FALSE(sending.done());
        CHECK_THROWS_AS(p.writer.write("x"), coring::invalid_state_error);  // asyncio: RuntimeError
        const bool second = co_await coring_test::throws<coring::invalid_state_error>(p.writer.sendfile(f));
        CHECK(second);
        auto receiving = coring::create_task(recv_all(p.server));
        const std::uint64_t sent = co_await sending;
        CHECK(sent == size);
        p.writer.write("after");  // allowed again
        p.writer.close();
        const std::string got = co_await receiving;
        CHECK(got.size() == size + 5);
        CHECK(got.substr(size) == "after");
    }());
}

TEST_CASE("stream - sendfile to a peer that resets: the stream's send error, and the process lives", "[stream][sendfile]") {
    coring::run([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        coring::file f = co_await pattern_file(dir, 32 << 20);
        stream_pair p = co_await connect_pair();
        auto sending = coring::create_task(p.writer.sendfile(f));
        std::array<std::byte, 1000> some{};
        (void)co_await p.server.recv(some);  // the transfer has begun
        const linger reset{1, 0};            // close with RST
        ::setsockopt(p.server.fd(), SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
        p.server = coring::socket();
        int error = 0;
        std::string message;
        try {
            (void)co_await sending;
        } catch (const std::system_error& e) {
            error = e.code().value();
            message = e.what();
        }
        CHECK((error == ECONNRESET || error == EPIPE));
        CHECK(message.find("send to 127.0.0.1:") != std::string::npos);
        const bool drain_fails = co_await coring_test::throws<std::system_error>(p.writer.drain());
        CHECK(drain_fails);  // the stream has failed, as after any failed send
    }());
}

TEST_CASE("stream - cancelling sendfile: prompt, and no descriptor left behind", "[stream][sendfile][cancel]") {
    coring::run([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        coring::file f = co_await pattern_file(dir, 64 << 20);  // more than the kernel buffers
        const int fds_before = count_open_fds();
        {
            stream_pair p = co_await connect_pair();
            auto sending = coring::create_task(p.writer.sendfile(f));  // nobody reads: it waits for room
            co_await coring::sleep(20ms);
            REQUIRE_FALSE(sending.done());
            const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(sending);
            CHECK(ended.by_cancelled_error);
            CHECK(ended.ms_after_cancel < 1000);
            p.writer.close();
            co_await p.writer.wait_closed();
        }
        for (int i = 0; i < 1000 && count_open_fds() != fds_before; ++i) co_await coring::sleep(1ms);
        CHECK(count_open_fds() == fds_before);  // the splice pipe and the socket are closed
    }());
}

TEST_CASE("stream - closing the stream during sendfile: the descriptor stays open until it ends", "[stream][sendfile]") {
    coring::run([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        constexpr std::size_t size = 4 << 20;
        coring::file f = co_await pattern_file(dir, size);
        stream_pair p = co_await connect_pair();
        auto sending = coring::create_task(p.writer.sendfile(f));
        co_await coring::sleep(5ms);
        p.writer.close();  // the splices still use the socket: it closes once they are done
        CHECK(p.writer.native_handle() >= 0);
        const std::string got = co_await recv_all(p.server);
        const std::uint64_t sent = co_await sending;
        co_await p.writer.wait_closed();
        CHECK(sent == size);
        CHECK(got == pattern(0, size));
    }());
}

// ---------------------------------------------------------------------- timeouts

TEST_CASE("stream - read_timeout: a read waiting too long throws timeout_error and takes nothing", "[stream][timeout]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    coring::run([](bool use_ring) -> coring::task<> {
        coring::stream_options o = options_for(use_ring);
        o.read_timeout = 100ms;
        stream_pair p = co_await connect_pair(o);
        co_await p.server.send_all("partial ");
        const auto start = std::chrono::steady_clock::now();
        std::string message;
        try {
            (void)co_await p.reader.readline();
        } catch (const coring::timeout_error& e) {
            message = e.what();
        }
        const double waited = coring_test::ms_since(start);
        CHECK(message.find("readline from 127.0.0.1:") != std::string::npos);
        CHECK(message.find("100 ms (stream_options::read_timeout)") != std::string::npos);
        CHECK(waited >= 95);
        CHECK(waited < 2000);
        // Nothing was taken, the stream is usable, and each read has its own 100 ms.
        co_await p.server.send_all("line\n");
        const std::string line = co_await p.reader.readline();
        CHECK(line == "partial line\n");
        auto late = [](const coring::socket& s) -> coring::task<> {
            co_await coring::sleep(60ms);
            co_await s.send_all("ab");
            co_await coring::sleep(60ms);
            co_await s.send_all("cd");
        };
        auto sending = coring::create_task(late(p.server));
        const std::string first = co_await p.reader.readexactly(2);  // 60 ms: in time
        const std::string second = co_await p.reader.readexactly(2);  // 60 ms more: in time
        co_await sending;
        CHECK(first + second == "abcd");
    }(ring));
}

TEST_CASE("stream - read_timeout: a cancelled read is cancelled, and its timer does not fire later", "[stream][timeout][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::stream_options o;
        o.read_timeout = 50ms;
        stream_pair p = co_await connect_pair(o);
        auto reader = [](coring::stream_reader& r) -> coring::task<std::string> { co_return co_await r.readline(); };
        auto h = coring::create_task(reader(p.reader));
        co_await coring::sleep(10ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        co_await coring::sleep(80ms);  // past the cancelled read's deadline
        auto h2 = coring::create_task(reader(p.reader));
        co_await coring::sleep(20ms);
        co_await p.server.send_all("x\n");
        const std::string line = co_await h2;
        CHECK(line == "x\n");
    }());
}

TEST_CASE("stream - read_timeout: data in time wins, the stream outlives the timer", "[stream][timeout]") {
    const std::size_t frames = coring_test::live_frames();
    coring::run([]() -> coring::task<> {
        coring::stream_options o;
        o.read_timeout = 30ms;
        for (int i = 0; i < 20; ++i) {
            stream_pair p = co_await connect_pair(o);
            co_await p.server.send_all("y\n");
            const std::string line = co_await p.reader.readline();
            CHECK(line == "y\n");
            // The stream closes while a read waits with its timer armed: the read sees the end.
            auto reader = [](coring::stream_reader& r) -> coring::task<std::string> { co_return co_await r.readline(); };
            auto h = coring::create_task(reader(p.reader));
            co_await coring::sleep(1ms);
            p.writer.close();
            const std::string end = co_await h;
            CHECK(end.empty());
        }
        co_await coring::sleep(40ms);  // past every deadline: no timer touches a freed stream
    }());
    CHECK(coring_test::live_frames() == frames);
}

TEST_CASE("stream - idle_timeout: a silent peer is cut off with ETIMEDOUT, and the socket closes", "[stream][timeout]") {
    const bool ring = GENERATE(true, false);
    CAPTURE(ring);
    const int fds_before = count_open_fds();
    coring::run([](bool use_ring) -> coring::task<> {
        coring::stream_options o = options_for(use_ring);
        o.idle_timeout = 100ms;
        stream_pair p = co_await connect_pair(o);
        // Activity pushes the deadline: 5 lines 50 ms apart keep the stream alive for 250 ms.
        for (int i = 0; i < 5; ++i) {
            co_await coring::sleep(50ms);
            co_await p.server.send_all("tick\n");
            const std::string line = co_await p.reader.readline();
            CHECK(line == "tick\n");
        }
        const auto start = std::chrono::steady_clock::now();
        int error = 0;
        try {
            (void)co_await p.reader.readline();
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
        const double waited = coring_test::ms_since(start);
        CHECK(error == ETIMEDOUT);
        CHECK(waited >= 90);
        CHECK(waited < 2000);
        // The writer failed too, and the peer sees the connection end.
        const bool drain_failed = co_await coring_test::throws<std::system_error>(p.writer.drain());
        CHECK(drain_failed);
        char byte = 0;
        const std::size_t n = co_await p.server.recv(std::as_writable_bytes(std::span(&byte, 1)));
        CHECK(n == 0);
        co_await p.writer.wait_closed();
        CHECK(p.writer.native_handle() == -1);
    }(ring));
    CHECK(count_open_fds() == fds_before);
}

TEST_CASE("stream - idle_timeout: a peer that stops reading cannot hold a drain for ever", "[stream][timeout]") {
    coring::run([]() -> coring::task<> {
        coring::stream_options o;
        o.idle_timeout = 200ms;
        stream_pair p = co_await connect_pair(o);
        const std::string chunk(1 << 20, 'z');
        int error = 0;
        const auto start = std::chrono::steady_clock::now();
        try {
            for (int i = 0; i < 64; ++i) {  // 64 MiB: far more than the kernel's buffers
                p.writer.write(chunk);
                co_await p.writer.drain();
            }
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
        CHECK(error == ETIMEDOUT);
        CHECK(coring_test::ms_since(start) < 5000);
        p.writer.close();
        co_await p.writer.wait_closed();
    }());
}

TEST_CASE("stream - idle_timeout: dropping the handles closes at once, not at the timer", "[stream][timeout]") {
    const int fds_before = count_open_fds();
    coring::run([]() -> coring::task<> {
        coring::stream_options o;
        o.idle_timeout = 60s;
        stream_pair p = co_await connect_pair(o);
        const auto start = std::chrono::steady_clock::now();
        p.reader = coring::stream_reader();
        p.writer = coring::stream_writer();
        char byte = 0;
        const std::size_t n = co_await p.server.recv(std::as_writable_bytes(std::span(&byte, 1)));
        CHECK(n == 0);  // the peer sees the end now
        CHECK(coring_test::ms_since(start) < 1000);
    }());
    CHECK(count_open_fds() == fds_before);  // and the loop's close did not find the state alive
}
