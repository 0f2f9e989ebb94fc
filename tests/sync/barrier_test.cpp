// Tests of coring/sync/barrier.hpp: arrival indices, cycles, abort, reset, cancellation, and a
// barrier of 100,000 parties.
#include <coring/sync/barrier.hpp>

#include <coring/task_handle.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "sync/stack_span.hpp"

#include <algorithm>
#include <deque>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;

static_assert(!std::is_copy_constructible_v<coring::barrier> && !std::is_move_constructible_v<coring::barrier>);

namespace {

// Waits `rounds` times; records "<id>:<index>" each time, or "<id>:broken".
coring::task<> party(coring::barrier& b, std::vector<std::string>& log, int id, int rounds = 1) {
    for (int r = 0; r < rounds; ++r) {
        try {
            const std::size_t index = co_await b.wait();
            log.push_back(std::to_string(id) + ":" + std::to_string(index));
        } catch (const coring::broken_barrier_error&) {
            log.push_back(std::to_string(id) + ":broken");
        }
    }
}

}  // namespace

TEST_CASE("barrier - releases all parties at once, with their arrival indices", "[barrier]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(3);
        CHECK(b.parties() == 3);
        std::vector<std::string> log;
        auto p0 = coring::create_task(party(b, log, 0));
        auto p1 = coring::create_task(party(b, log, 1));
        co_await coring::sleep(5ms);
        CHECK(log.empty());
        CHECK(b.n_waiting() == 2);
        const std::size_t mine = co_await b.wait();  // the last arrival: returns at once
        CHECK(mine == 2);
        CHECK(log.empty());
        CHECK(b.n_waiting() == 0);
        co_await p0;
        co_await p1;
        CHECK(log == std::vector<std::string>{"0:0", "1:1"});
        CHECK_FALSE(b.broken());
    }());
}

TEST_CASE("barrier - is cyclic", "[barrier]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(3);
        std::vector<std::string> log;
        auto p0 = coring::create_task(party(b, log, 0, 3));
        auto p1 = coring::create_task(party(b, log, 1, 3));
        auto p2 = coring::create_task(party(b, log, 2, 3));
        co_await p0;
        co_await p1;
        co_await p2;
        // Each cycle releases the three parties, each with its own index of 0, 1, 2 (who is
        // which depends on the order they came back in).
        REQUIRE(log.size() == 9);
        for (int round = 0; round < 3; ++round) {
            std::vector<char> ids;
            std::vector<char> indices;
            for (int i = 0; i < 3; ++i) {
                ids.push_back(log[round * 3 + i][0]);
                indices.push_back(log[round * 3 + i][2]);
            }
            std::sort(ids.begin(), ids.end());
            std::sort(indices.begin(), indices.end());
            CHECK(ids == std::vector<char>{'0', '1', '2'});
            CHECK(indices == std::vector<char>{'0', '1', '2'});
        }
    }());
}

TEST_CASE("barrier - a barrier of one never waits", "[barrier]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(1);
        for (int i = 0; i < 3; ++i) {
            const std::size_t index = co_await b.wait();
            CHECK(index == 0);
        }
    }());
}

TEST_CASE("barrier - a barrier of no parties is an invalid_argument", "[barrier]") {
    CHECK_THROWS_AS(coring::barrier(0), std::invalid_argument);
}

TEST_CASE("barrier - abort breaks the barrier for the parties waiting on it", "[barrier]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(3);
        std::vector<std::string> log;
        auto p0 = coring::create_task(party(b, log, 0));
        co_await coring::sleep(0s);
        b.abort();
        CHECK(b.broken());
        co_await p0;
        CHECK(log == std::vector<std::string>{"0:broken"});
    }());
}

TEST_CASE("barrier - after abort, a new wait throws broken_barrier_error", "[barrier]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(3);
        b.abort();
        const bool later_throws = co_await coring_test::throws<coring::broken_barrier_error>(b.wait());
        CHECK(later_throws);
    }());
}

TEST_CASE("barrier - reset mends an aborted barrier", "[barrier]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(3);
        std::vector<std::string> log;
        b.abort();
        b.reset();
        CHECK_FALSE(b.broken());
        auto p1 = coring::create_task(party(b, log, 1));
        auto p2 = coring::create_task(party(b, log, 2));
        co_await coring::sleep(0s);
        const std::size_t mine = co_await b.wait();
        CHECK(mine == 2);
        co_await p1;
        co_await p2;
        CHECK(log == std::vector<std::string>{"1:0", "2:1"});
    }());
}

TEST_CASE("barrier - reset breaks the current waiters and leaves the barrier usable", "[barrier]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(2);
        std::vector<std::string> log;
        auto p0 = coring::create_task(party(b, log, 0, 2));
        co_await coring::sleep(0s);
        b.reset();
        CHECK_FALSE(b.broken());
        CHECK(b.n_waiting() == 0);
        co_await coring::sleep(0s);  // p0 saw broken and waits again
        const std::size_t mine = co_await b.wait();
        CHECK(mine == 1);
        co_await p0;
        CHECK(log == std::vector<std::string>{"0:broken", "0:0"});
    }());
}

TEST_CASE("barrier - a party cancelled while waiting no longer counts as arrived", "[barrier][cancel]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(3);
        std::vector<std::string> log;
        auto p0 = coring::create_task(party(b, log, 0));
        auto p1 = coring::create_task(party(b, log, 1));
        co_await coring::sleep(0s);
        CHECK(b.n_waiting() == 2);
        p0.cancel();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(p0);
        CHECK(cancelled);
        CHECK(b.n_waiting() == 1);
        auto p2 = coring::create_task(party(b, log, 2));
        co_await coring::sleep(0s);
        CHECK(log.empty());  // two of three: still waiting
        const std::size_t mine = co_await b.wait();
        CHECK(mine == 2);  // indices stay 0 .. parties - 1 despite the departure
        co_await p1;
        co_await p2;
        CHECK(log == std::vector<std::string>{"1:0", "2:1"});
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("barrier - a party cancelled after the release throws cancelled_error; the others pass", "[barrier][cancel]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(3);
        std::vector<std::string> log;
        auto p0 = coring::create_task(party(b, log, 0));
        auto p1 = coring::create_task(party(b, log, 1));
        co_await coring::sleep(0s);
        const std::size_t mine = co_await b.wait();
        CHECK(mine == 2);
        p0.cancel();  // released, not resumed yet
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(p0);
        CHECK(cancelled);
        co_await p1;
        CHECK(log == std::vector<std::string>{"1:1"});
        CHECK(b.n_waiting() == 0);
    }());
}

TEST_CASE("barrier - an arrival while the barrier drains joins the next cycle", "[barrier]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(2);
        std::vector<std::string> log;
        auto p0 = coring::create_task(party(b, log, 0));
        co_await coring::sleep(0s);
        const std::size_t mine = co_await b.wait();  // releases p0, which has not resumed yet
        CHECK(mine == 1);
        // Arrives while p0 is still leaving: held outside, it does not complete a cycle with
        // p0's departure, and n_waiting() does not count it.
        auto p1 = coring::create_task(party(b, log, 1), {.eager_start = true});
        CHECK(b.n_waiting() == 0);
        co_await p0;
        CHECK(log == std::vector<std::string>{"0:0"});
        co_await coring::sleep(0s);  // p1 enters the new cycle on its turn
        CHECK(b.n_waiting() == 1);
        const std::size_t again = co_await b.wait();
        CHECK(again == 1);
        co_await p1;
        CHECK(log == std::vector<std::string>{"0:0", "1:0"});
    }());
}

TEST_CASE("barrier - arrivals held during the drain: cancelled, or broken by an abort", "[barrier][cancel]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::barrier b(2);
        std::vector<std::string> log;
        auto p0 = coring::create_task(party(b, log, 0));
        co_await coring::sleep(0s);
        (void)co_await b.wait();  // releases p0, which has not resumed yet
        auto held = coring::create_task(party(b, log, 1), {.eager_start = true});
        auto aborted = coring::create_task(party(b, log, 2), {.eager_start = true});
        held.cancel();
        // An abort while p0 is still leaving breaks it too (asyncio's draining rule), and the
        // arrival held outside.
        b.abort();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(held);
        CHECK(cancelled);
        co_await p0;
        co_await aborted;
        CHECK(log == std::vector<std::string>{"0:broken", "2:broken"});
        b.reset();
        CHECK_FALSE(b.broken());
        auto p3 = coring::create_task(party(b, log, 3));
        auto p4 = coring::create_task(party(b, log, 4));
        co_await p3;
        co_await p4;
        CHECK(log == std::vector<std::string>{"0:broken", "2:broken", "4:1", "3:0"});  // the last arrival first
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("barrier - 100,000 parties are released without growing the stack", "[barrier][stack]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        constexpr std::size_t n = 100'000;
        coring::barrier b(n);
        std::size_t expected = 0;
        bool in_order = true;
        coring_test::stack_span span;
        auto wait_one = [](coring::barrier& bar, std::size_t& exp, bool& ordered, coring_test::stack_span& sp) -> coring::task<> {
            const std::size_t index = co_await bar.wait();
            sp.note();
            if (index != exp) ordered = false;
            ++exp;
        };
        std::vector<coring::task_handle<>> tasks;
        tasks.reserve(n - 1);
        for (std::size_t i = 0; i + 1 < n; ++i) tasks.push_back(coring::create_task(wait_one(b, expected, in_order, span)));
        co_await coring::sleep(0s);
        CHECK(b.n_waiting() == n - 1);
        const std::size_t mine = co_await b.wait();
        CHECK(mine == n - 1);
        CHECK(expected == 0);  // the last arrival released the others without resuming any inline
        for (auto& t : tasks) co_await t;
        CHECK(expected == n - 1);
        CHECK(in_order);
        CHECK(span.bytes() < coring_test::stack_span::flat_limit);

        // A relay of two-party barriers: each task, once released from its barrier, arrives
        // last at the next one and so releases the next task. Were a release resumed inline,
        // the 100,000 hand-offs would nest.
        std::deque<coring::barrier> barriers;
        for (std::size_t i = 0; i < n; ++i) barriers.emplace_back(2);
        coring_test::stack_span relay_span;
        std::size_t relayed = 0;
        auto relay_one = [](coring::barrier& own, coring::barrier* next, std::size_t& count, coring_test::stack_span& sp) -> coring::task<> {
            (void)co_await own.wait();
            sp.note();
            ++count;
            if (next != nullptr) (void)co_await next->wait();  // the last arrival: does not suspend
        };
        tasks.clear();
        for (std::size_t i = 0; i < n; ++i)
            tasks.push_back(coring::create_task(relay_one(barriers[i], i + 1 < n ? &barriers[i + 1] : nullptr, relayed, relay_span)));
        co_await coring::sleep(0s);
        (void)co_await barriers[0].wait();
        for (auto& t : tasks) co_await t;
        CHECK(relayed == n);
        CHECK(relay_span.bytes() < coring_test::stack_span::flat_limit);
    }());
    CHECK(live_frames() == frames_before);
}
