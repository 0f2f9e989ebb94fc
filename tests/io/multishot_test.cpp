// Tests of the multishot operations (io::multishot_accept in coring/io/ops.hpp, io::multishot_recv
// in coring/io/buffer_ring.hpp): what happens to a task awaiting next() when the handle goes.
#include <coring/io/buffer_ring.hpp>
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

using namespace std::chrono_literals;

namespace {

using coring_test::count_open_fds;

using listener = coring_test::raw_listener;

coring::task<int> accept_one(coring::io::multishot_accept& a) { co_return co_await a.next(); }

coring::task<std::string> recv_one(coring::io::multishot_recv& r) {
    coring::io::received chunk = co_await r.next();
    co_return std::string(chunk.view());
}

}  // namespace

TEST_CASE("multishot accept - destroying the handle wakes every waiter with invalid_state_error", "[io][net][multishot]") {
    const std::size_t frames_before = coring_test::live_frames();
    const int fds_before = count_open_fds();
    coring::run([]() -> coring::task<> {
        listener l;
        std::optional<coring::io::multishot_accept> acceptor(std::in_place, l.fd);
        auto h1 = coring::create_task(accept_one(*acceptor));
        auto h2 = coring::create_task(accept_one(*acceptor));
        co_await coring::sleep(2ms);  // both wait in next(); the SQE is armed
        REQUIRE(acceptor->armed());
        acceptor.reset();
        const bool threw1 = co_await coring_test::throws<coring::invalid_state_error>(h1);
        const bool threw2 = co_await coring_test::throws<coring::invalid_state_error>(h2);
        CHECK(threw1);
        CHECK(threw2);
        const int c = l.connect_client();  // nobody accepts it any more
        co_await coring::sleep(5ms);       // the cancel's CQE frees the state
        CHECK(coring::get_running_loop().user_ops_in_flight() == 0);
        ::close(c);
    }());
    CHECK(coring_test::live_frames() == frames_before);
    CHECK(count_open_fds() == fds_before);
}

TEST_CASE("multishot accept - a connection handed over before the handle went is still delivered", "[io][net][multishot]") {
    const int fds_before = count_open_fds();
    coring::run([]() -> coring::task<> {
        listener l;
        std::optional<coring::io::multishot_accept> acceptor(std::in_place, l.fd);
        auto h = coring::create_task(accept_one(*acceptor));
        co_await coring::sleep(2ms);
        // The next iteration reaps the connection's CQE (handing it to h) before it runs its
        // ready callbacks: the handle is destroyed between the hand-off and h's resumption.
        const int c = l.connect_client();
        coring::get_running_loop().call_soon([&acceptor] { acceptor.reset(); });
        const int s = co_await h;
        CHECK(s >= 0);
        co_await coring::sleep(5ms);
        CHECK(coring::get_running_loop().user_ops_in_flight() == 0);
        ::close(s);
        ::close(c);
    }());
    CHECK(count_open_fds() == fds_before);
}

TEST_CASE("multishot accept - a handed connection cancelled after the handle went is closed", "[io][net][multishot][cancel]") {
    const int fds_before = count_open_fds();
    coring::run([]() -> coring::task<> {
        listener l;
        std::optional<coring::io::multishot_accept> acceptor(std::in_place, l.fd);
        auto h = coring::create_task(accept_one(*acceptor));
        co_await coring::sleep(2ms);
        const int c = l.connect_client();
        coring::get_running_loop().call_soon([&acceptor, h]() mutable {
            acceptor.reset();
            h.cancel();  // the cancel wins: the descriptor it was handed is closed, not leaked
        });
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(cancelled);
        co_await coring::sleep(5ms);
        CHECK(coring::get_running_loop().user_ops_in_flight() == 0);
        ::close(c);
    }());
    CHECK(count_open_fds() == fds_before);
}

TEST_CASE("multishot_recv - destroying the handle wakes the waiter with invalid_state_error", "[buffer_ring][multishot]") {
    const std::size_t frames_before = coring_test::live_frames();
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(8, 64);
        std::optional<coring::io::multishot_recv> rx(std::in_place, b.fd(), ring);
        auto h = coring::create_task(recv_one(*rx));
        co_await coring::sleep(2ms);  // h waits in next(); the receive is armed
        REQUIRE(rx->armed());
        rx.reset();
        const bool threw = co_await coring_test::throws<coring::invalid_state_error>(h);
        CHECK(threw);
        co_await a.send_all("late");  // nobody receives it any more
        co_await coring::sleep(5ms);  // the cancel's CQE frees the state
        CHECK(coring::get_running_loop().user_ops_in_flight() == 0);
        CHECK(ring->available() == ring->count());
    }());
    CHECK(coring_test::live_frames() == frames_before);
}

TEST_CASE("multishot_recv - a chunk handed over before the handle went is still delivered", "[buffer_ring][multishot]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(8, 64);
        std::optional<coring::io::multishot_recv> rx(std::in_place, b.fd(), ring);
        auto h = coring::create_task(recv_one(*rx));
        co_await coring::sleep(2ms);
        REQUIRE(::send(a.fd(), "handed", 6, MSG_NOSIGNAL) == 6);
        coring::get_running_loop().call_soon([&rx] { rx.reset(); });
        const std::string got = co_await h;
        CHECK(got == "handed");
        co_await coring::sleep(5ms);
        CHECK(coring::get_running_loop().user_ops_in_flight() == 0);
        CHECK(ring->available() == ring->count());
    }());
}

TEST_CASE("multishot_recv - a handed chunk cancelled after the handle went goes back to the ring", "[buffer_ring][multishot][cancel]") {
    coring::run([]() -> coring::task<> {
        auto [a, b] = coring::socket::pair();
        auto ring = coring::io::buffer_ring::create(8, 64);
        std::optional<coring::io::multishot_recv> rx(std::in_place, b.fd(), ring);
        auto h = coring::create_task(recv_one(*rx));
        co_await coring::sleep(2ms);
        REQUIRE(::send(a.fd(), "handed", 6, MSG_NOSIGNAL) == 6);
        coring::get_running_loop().call_soon([&rx, h]() mutable {
            rx.reset();
            h.cancel();
        });
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(cancelled);
        co_await coring::sleep(5ms);
        CHECK(coring::get_running_loop().user_ops_in_flight() == 0);
        CHECK(ring->available() == ring->count());
    }());
}
