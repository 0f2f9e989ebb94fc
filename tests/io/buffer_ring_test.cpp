// Tests of coring/io/buffer_ring.hpp: provided-buffer rings and multishot receive.
#include <coring/io/buffer_ring.hpp>
#include <coring/io/multishot_recv.hpp>

#include <coring/net/socket.hpp>
#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>
#include <coring/wait_for.hpp>

#include "support/catch.hpp"
#include "support/test_access.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstddef>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

using coring_test::pattern;

// Restores a testing switch at scope exit, also when a check fails.
struct single_shot_scope {
    explicit single_shot_scope(bool on) { coring_test::test_access::force_single_shot_recv(on); }
    ~single_shot_scope() { coring_test::test_access::force_single_shot_recv(false); }
};

// Receives one chunk; returns a copy of its text (the lease on the buffer ends here), for a
// task that waits in next() while the test cancels it.
coring::task<std::string> next_text(coring::io::multishot_recv& rx) {
    coring::io::received chunk = co_await rx.next();
    co_return std::string(chunk.view());
}

// Receives everything until end of stream, keeping up to `hold` leases at a time (a slow
// consumer that keeps buffers of the ring).
coring::task<std::string> receive_all(coring::io::multishot_recv& rx, std::size_t hold) {
    std::string out;
    std::vector<coring::io::received> held;
    for (;;) {
        coring::io::received chunk = co_await rx.next();
        if (chunk.empty()) break;
        out += chunk.view();
        held.push_back(std::move(chunk));
        if (held.size() >= hold) {
            co_await coring::sleep(1ms);  // let the ring run dry meanwhile
            held.clear();
        }
    }
    co_return out;
}

}  // namespace

TEST_CASE("buffer_ring - the count rounds up to a power of two buffers of the size asked", "[buffer_ring]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::io::buffer_ring::create(5, 100);
        CHECK(a->count() == 8);
        CHECK(a->buffer_size() == 100);
        CHECK(a->available() == 8);
        CHECK(a->data(1) - a->data(0) == 100);
        co_return;
    }());
}

TEST_CASE("buffer_ring - a claimed buffer is unavailable until recycled", "[buffer_ring]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::io::buffer_ring::create(5, 100);
        a->claim(3);
        CHECK(a->available() == 7);
        a->recycle(3);
        CHECK(a->available() == 8);
        co_return;
    }());
}

TEST_CASE("buffer_ring - live rings have distinct group ids; a destroyed ring's id is used again", "[buffer_ring]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::io::buffer_ring::create(5, 100);
        auto b = coring::io::buffer_ring::create(4, 64);
        CHECK(a->group() != b->group());
        const std::uint16_t g = b->group();
        b.reset();
        auto c = coring::io::buffer_ring::create(2, 16);
        CHECK(c->group() == g);
        co_return;
    }());
}

TEST_CASE("buffer_ring - a kernel without buffer rings is an EINVAL system_error", "[buffer_ring]") {
    coring::run([]() -> coring::task<> {
        coring_test::test_access::force_no_buffer_rings(true);
        int code = 0;
        try {
            (void)coring::io::buffer_ring::create(4, 64);
        } catch (const std::system_error& e) {
            code = e.code().value();
        }
        coring_test::test_access::force_no_buffer_rings(false);
        CHECK(code == EINVAL);
        co_return;
    }());
}

TEST_CASE("multishot_recv - one SQE receives every chunk, in order", "[buffer_ring][multishot]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(16, 4096);
        coring::io::multishot_recv rx(b.fd(), ring);
        for (int i = 0; i < 50; ++i) {
            const std::string msg = "message " + std::to_string(i) + "\n";
            co_await a.send_all(msg);
            coring::io::received chunk = co_await rx.next();
            CHECK(chunk.view() == msg);
        }
        CHECK(coring_test::test_access::arm_count(rx) == 1);
    }());
}

TEST_CASE("multishot_recv - the end of the stream is an empty lease", "[buffer_ring][multishot]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(16, 4096);
        coring::io::multishot_recv rx(b.fd(), ring);
        co_await a.send_all("message\n");
        (void)co_await rx.next();
        co_await a.shutdown();
        coring::io::received end = co_await rx.next();
        CHECK(end.empty());
        CHECK(ring->available() == ring->count());  // every lease gave its buffer back
    }());
}

TEST_CASE("multishot_recv - the end is final: next() after it returns the end again, at once", "[buffer_ring][multishot]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(8, 256);
        coring::io::multishot_recv rx(b.fd(), ring);
        auto next_of = [](coring::io::multishot_recv& r) -> coring::task<std::size_t> {
            coring::io::received chunk = co_await r.next();
            co_return chunk.size();
        };
        co_await a.send_all("last");
        co_await a.shutdown();
        co_await coring::sleep(5ms);  // the chunk and the end are queued
        const std::size_t last = co_await coring::wait_for(next_of(rx), 1s);
        CHECK(last == 4);
        for (int i = 0; i < 3; ++i) {
            const auto start = std::chrono::steady_clock::now();
            const std::size_t again = co_await coring::wait_for(next_of(rx), 1s);  // timeout_error if it hangs
            CHECK(again == 0);
            CHECK(coring_test::ms_since(start) < 500);
        }
        CHECK_FALSE(rx.armed());
        CHECK(ring->available() == ring->count());
    }());
}

TEST_CASE("multishot_recv - a chunk handed to a waiter cancelled before it ran goes back to the queue", "[buffer_ring][multishot][cancel]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(8, 256);
        coring::io::multishot_recv rx(b.fd(), ring);
        auto h = coring::create_task(next_text(rx));
        co_await coring::sleep(2ms);  // h waits in next(); the receive is armed
        // The bytes are in the socket now, so the next iteration reaps their CQE (which hands the
        // chunk to h and schedules it) before it runs its ready callbacks, the cancel first.
        REQUIRE(::send(a.fd(), "handed", 6, MSG_NOSIGNAL) == 6);
        std::size_t queued_before = 99;
        std::size_t queued_after = 99;
        coring::get_running_loop().call_soon([&rx, &queued_before, &queued_after, h]() mutable {
            queued_before = rx.queued();
            h.cancel();
            queued_after = rx.queued();
        });
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(cancelled);
        CHECK(queued_before == 0);  // handed to h, not queued
        CHECK(queued_after == 1);   // the cancel put it back
        coring::io::received chunk = co_await rx.next();
        CHECK(chunk.view() == "handed");  // nothing lost
        chunk.release();
        CHECK(ring->available() == ring->count());
    }());
}

TEST_CASE("multishot_recv - ENOBUFS: a tiny ring runs dry, re-arms on recycle, loses and duplicates nothing", "[buffer_ring][multishot][enobufs]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(2, 64);
        coring::io::multishot_recv rx(b.fd(), ring, 64);
        const std::string burst = pattern(0, 200'000);
        auto sender = [](const coring::socket& s, const std::string& data) -> coring::task<> {
            co_await s.send_all(data);
            co_await s.shutdown();
        };
        auto sending = coring::create_task(sender(a, burst));
        const std::string got = co_await receive_all(rx, 2);
        co_await sending;
        CHECK(got.size() == burst.size());
        CHECK(got == burst);
        CHECK(ring->enobufs_count() > 0);
        CHECK(ring->available() == ring->count());
    }());
}

TEST_CASE("multishot_recv - a ring shared by several receivers that run it dry", "[buffer_ring][multishot][enobufs]") {
    coring::run([]() -> coring::task<> {
        auto ring = coring::io::buffer_ring::create(4, 128);
        constexpr int streams = 8;
        std::vector<std::pair<coring::socket, coring::socket>> pairs;
        for (int i = 0; i < streams; ++i) pairs.push_back(coring::socket::pair());
        auto one = [](coring::socket& tx, coring::socket& rx_socket, coring::io::buffer_ring_ptr r, std::size_t seed) -> coring::task<bool> {
            coring::io::multishot_recv rx(rx_socket.fd(), r);
            const std::string data = pattern(seed, 50'000);
            auto sender = [](const coring::socket& s, const std::string& d) -> coring::task<> {
                co_await s.send_all(d);
                co_await s.shutdown();
            };
            auto sending = coring::create_task(sender(tx, data));
            const std::string got = co_await receive_all(rx, 1);
            co_await sending;
            co_return got == data;
        };
        std::vector<coring::task_handle<bool>> all;
        for (std::size_t i = 0; i < pairs.size(); ++i) all.push_back(coring::create_task(one(pairs[i].first, pairs[i].second, ring, i * 1000)));
        for (auto& h : all) {
            const bool ok = co_await h;
            CHECK(ok);
        }
        CHECK(ring->available() == ring->count());
    }());
}

TEST_CASE("multishot_recv - re-arms when the kernel ends the request", "[buffer_ring][multishot]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(8, 256);
        coring::io::multishot_recv rx(b.fd(), ring);
        co_await a.send_all("one");
        coring::io::received first = co_await rx.next();
        CHECK(first.view() == "one");
        CHECK(rx.armed());
        coring_test::test_access::interrupt(rx);
        co_await coring::sleep(5ms);
        CHECK(coring_test::test_access::arm_count(rx) == 2);
        co_await a.send_all("two");
        coring::io::received second = co_await rx.next();
        CHECK(second.view() == "two");
    }());
}

namespace {

// Arms `rx` (max_queued 4, on a ring of 8-byte buffers) with a first chunk, then sends `data`,
// 100 chunks' worth, while nobody awaits: 4 chunks, plus those the kernel delivered before the
// cancel landed, are queued; the rest waits in the socket.
coring::task<> send_while_nobody_awaits(const coring::socket& a, coring::io::multishot_recv& rx, const std::string& data) {
    co_await a.send_all("12345678");
    coring::io::received first = co_await rx.next();
    first.release();
    co_await a.send_all(data);
    co_await coring::sleep(10ms);
}

}  // namespace

TEST_CASE("multishot_recv - queues up to its bound while nobody awaits, then stops receiving", "[buffer_ring][multishot]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(64, 8);
        coring::io::multishot_recv rx(b.fd(), ring, 4);
        const std::string data = pattern(0, 800);
        co_await send_while_nobody_awaits(a, rx, data);
        CHECK(rx.queued() >= 4);
        CHECK(rx.queued() < 100);
        CHECK_FALSE(rx.armed());
    }());
}

TEST_CASE("multishot_recv - re-arms once its full queue is drained, losing nothing", "[buffer_ring][multishot]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(64, 8);
        coring::io::multishot_recv rx(b.fd(), ring, 4);
        const std::string data = pattern(0, 800);
        co_await send_while_nobody_awaits(a, rx, data);
        std::string got;
        while (got.size() < data.size()) {
            coring::io::received chunk = co_await rx.next();
            got += chunk.view();
        }
        CHECK(got == data);
        CHECK(coring_test::test_access::arm_count(rx) >= 2);
    }());
}

TEST_CASE("multishot_recv - cancelling next(): prompt, nothing taken", "[buffer_ring][multishot][cancel]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(8, 256);
        coring::io::multishot_recv rx(b.fd(), ring);
        auto h = coring::create_task(next_text(rx));
        co_await coring::sleep(5ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 1000);
        co_await a.send_all("after the cancel");
        coring::io::received chunk = co_await rx.next();
        CHECK(chunk.view() == "after the cancel");  // nothing lost
    }());
}

TEST_CASE("multishot_recv - a reset connection is a system_error with ECONNRESET", "[buffer_ring][multishot]") {
    coring::run([]() -> coring::task<> {
        coring::socket listener = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
        coring::socket client = co_await coring::socket::connect_to(listener.local_address());
        auto [conn, peer] = co_await listener.accept();
        auto ring = coring::io::buffer_ring::create(8, 256);
        coring::io::multishot_recv rx(conn.fd(), ring);
        const ::linger abort_on_close{1, 0};
        ::setsockopt(client.fd(), SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
        client = coring::socket();  // closes with RST
        int code = 0;
        std::string what;
        try {
            (void)co_await rx.next();
        } catch (const std::system_error& e) {
            code = e.code().value();
            what = e.what();
        }
        CHECK(code == ECONNRESET);
        CHECK(what.find("recv(fd ") != std::string::npos);
        int again = 0;
        try {
            (void)co_await coring::wait_for(
                [](coring::io::multishot_recv& r) -> coring::task<> {
                    (void)co_await r.next();
                }(rx),
                1s);
        } catch (const std::system_error& e) {
            again = e.code().value();
        }
        CHECK(again == ECONNRESET);  // the error is final: thrown again, at once
    }());
}

TEST_CASE("multishot_recv - single shots where the kernel has no multishot recv", "[buffer_ring][multishot]") {
    single_shot_scope scope(true);
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        // Room for every chunk that can be queued or held at once: the ring never runs dry, so
        // every re-arm is a single shot's.
        auto ring = coring::io::buffer_ring::create(64, 32);
        coring::io::multishot_recv rx(b.fd(), ring);
        const std::string data = pattern(7, 10'000);
        auto sender = [](const coring::socket& s, const std::string& d) -> coring::task<> {
            co_await s.send_all(d);
            co_await s.shutdown();
        };
        auto sending = coring::create_task(sender(a, data));
        std::string got;
        unsigned chunks = 0;
        for (;;) {
            coring::io::received chunk = co_await rx.next();
            if (chunk.empty()) break;
            got += chunk.view();
            ++chunks;
        }
        co_await sending;
        CHECK(got == data);
        CHECK(ring->enobufs_count() == 0);
        CHECK(chunks >= data.size() / 32);
        CHECK(coring_test::test_access::arm_count(rx) >= chunks);  // one SQE per chunk (a multishot recv takes a few for all)
    }());
}

TEST_CASE("multishot_recv - destroying the handle gives queued buffers back and frees everything", "[buffer_ring][multishot]") {
    const std::size_t frames_before = coring_test::live_frames();
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(8, 16);
        {
            coring::io::multishot_recv rx(b.fd(), ring);
            co_await a.send_all("x");
            coring::io::received first = co_await rx.next();
            co_await a.send_all(pattern(0, 64));
            co_await coring::sleep(5ms);
            CHECK(rx.queued() > 0);
        }
        co_await coring::sleep(5ms);  // the cancel's CQE
        CHECK(ring->available() == ring->count());
    }());
    CHECK(coring_test::live_frames() == frames_before);
}
