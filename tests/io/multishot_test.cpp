// Tests of the multishot operations (io::multishot_accept in coring/io/ops.hpp, io::multishot_recv
// in coring/io/buffer_ring.hpp): what happens to a task awaiting next() when the handle goes.
#include <coring/io/buffer_ring.hpp>
#include <coring/io/multishot_accept.hpp>
#include <coring/io/multishot_recv.hpp>
#include <coring/io/ops.hpp>

#include <coring/net/socket.hpp>
#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"
#include "support/raw_listener.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>

using namespace std::chrono_literals;

namespace {

using coring_test::count_open_fds;

using listener = coring_test::raw_listener;

coring::task<int> accept_one(coring::io::multishot_accept& a) { co_return co_await a.next(); }

coring::task<std::string> recv_one(coring::io::multishot_recv& r) {
    coring::io::received chunk = co_await r.next();
    co_return std::string(chunk.view());
}

// A listening socket, a multishot_accept on it and a task waiting in next() (once the caller has
// let it run). Members go in reverse order: the task, the handle, then the listener.
struct waiting_acceptor {
    listener l;
    std::optional<coring::io::multishot_accept> acceptor{std::in_place, l.fd};
    coring::task_handle<int> waiter = coring::create_task(accept_one(*acceptor));
};

// A connected pair, a multishot_recv on its second socket and a task waiting in next().
struct waiting_receiver {
    std::pair<coring::socket, coring::socket> sockets = coring::socket::pair();
    coring::io::buffer_ring_ptr ring = coring::io::buffer_ring::create(8, 64);
    std::optional<coring::io::multishot_recv> rx{std::in_place, sockets.second.fd(), ring};
    coring::task_handle<std::string> waiter = coring::create_task(recv_one(*rx));
};

// After the handle went: its cancel's CQE ends the kernel request and frees the state.
coring::task<> request_ended() {
    co_await coring::sleep(5ms);
    CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);
}

}  // namespace

TEST_CASE("multishot accept - destroying the handle wakes every waiter with invalid_state_error", "[io][net][multishot]") {
    const std::size_t frames_before = coring_test::live_frames();
    const int fds_before = count_open_fds();
    coring::run([]() -> coring::task<> {
        waiting_acceptor w;
        auto second = coring::create_task(accept_one(*w.acceptor));
        co_await coring::sleep(2ms);  // both wait in next(); the SQE is armed
        REQUIRE(w.acceptor->armed());
        w.acceptor.reset();
        const bool threw1 = co_await coring_test::throws<coring::invalid_state_error>(w.waiter);
        const bool threw2 = co_await coring_test::throws<coring::invalid_state_error>(second);
        CHECK(threw1);
        CHECK(threw2);
        const int c = w.l.connect_client();  // nobody accepts it any more
        co_await request_ended();
        ::close(c);
    }());
    CHECK(coring_test::live_frames() == frames_before);
    CHECK(count_open_fds() == fds_before);
}

TEST_CASE("multishot accept - a connection handed over before the handle went is still delivered", "[io][net][multishot]") {
    const int fds_before = count_open_fds();
    coring::run([]() -> coring::task<> {
        waiting_acceptor w;
        co_await coring::sleep(2ms);
        // The next iteration reaps the connection's CQE (handing it to the waiter) before it runs
        // its ready callbacks: the handle is destroyed between the hand-off and the resumption.
        const int c = w.l.connect_client();
        coring::get_running_loop().call_soon([&w] { w.acceptor.reset(); });
        const int s = co_await w.waiter;
        CHECK(s >= 0);
        co_await request_ended();
        ::close(s);
        ::close(c);
    }());
    CHECK(count_open_fds() == fds_before);
}

TEST_CASE("multishot accept - a handed connection cancelled after the handle went is closed", "[io][net][multishot][cancel]") {
    const int fds_before = count_open_fds();
    coring::run([]() -> coring::task<> {
        waiting_acceptor w;
        co_await coring::sleep(2ms);
        const int c = w.l.connect_client();
        coring::get_running_loop().call_soon([&w] {
            w.acceptor.reset();
            w.waiter.cancel();  // the cancel wins: the descriptor it was handed is closed, not leaked
        });
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(w.waiter);
        CHECK(cancelled);
        co_await request_ended();
        ::close(c);
    }());
    CHECK(count_open_fds() == fds_before);
}

TEST_CASE("multishot_recv - destroying the handle wakes the waiter with invalid_state_error", "[buffer_ring][multishot]") {
    const std::size_t frames_before = coring_test::live_frames();
    coring::run([]() -> coring::task<> {
        waiting_receiver w;
        co_await coring::sleep(2ms);  // the task waits in next(); the receive is armed
        REQUIRE(w.rx->armed());
        w.rx.reset();
        const bool threw = co_await coring_test::throws<coring::invalid_state_error>(w.waiter);
        CHECK(threw);
        co_await w.sockets.first.send_all("late");  // nobody receives it any more
        co_await request_ended();
        CHECK(w.ring->available() == w.ring->count());
    }());
    CHECK(coring_test::live_frames() == frames_before);
}

TEST_CASE("multishot_recv - a chunk handed over before the handle went is still delivered", "[buffer_ring][multishot]") {
    coring::run([]() -> coring::task<> {
        waiting_receiver w;
        co_await coring::sleep(2ms);
        REQUIRE(::send(w.sockets.first.fd(), "handed", 6, MSG_NOSIGNAL) == 6);
        coring::get_running_loop().call_soon([&w] { w.rx.reset(); });
        const std::string got = co_await w.waiter;
        CHECK(got == "handed");
        co_await request_ended();
        CHECK(w.ring->available() == w.ring->count());
    }());
}

TEST_CASE("multishot_recv - a handed chunk cancelled after the handle went goes back to the ring", "[buffer_ring][multishot][cancel]") {
    coring::run([]() -> coring::task<> {
        waiting_receiver w;
        co_await coring::sleep(2ms);
        REQUIRE(::send(w.sockets.first.fd(), "handed", 6, MSG_NOSIGNAL) == 6);
        coring::get_running_loop().call_soon([&w] {
            w.rx.reset();
            w.waiter.cancel();  // the cancel wins: the chunk goes back to the ring
        });
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(w.waiter);
        CHECK(cancelled);
        co_await request_ended();
        CHECK(w.ring->available() == w.ring->count());
    }());
}
