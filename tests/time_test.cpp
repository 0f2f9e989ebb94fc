// Tests of coring/time.hpp and coring/clock.hpp: sleep, sleep_until, timer order and accuracy.
#include <coring/clock.hpp>
#include <coring/time.hpp>

#include <coring/io/ops.hpp>
#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/wait_for.hpp>

#include <unistd.h>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <algorithm>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;
using coring_test::ms_since;

static_assert(std::is_same_v<coring::clock, std::chrono::steady_clock>);

TEST_CASE("sleep - sleeps about as long as asked", "[time]") {
    coring::run([]() -> coring::task<> {
        for (auto d : {1ms, 20ms, 50ms}) {
            const auto start = std::chrono::steady_clock::now();
            co_await coring::sleep(d);
            const double elapsed = ms_since(start);
            CHECK(elapsed >= std::chrono::duration<double, std::milli>(d).count());
            CHECK(elapsed < std::chrono::duration<double, std::milli>(d).count() + 40.0);  // slack for a loaded machine
        }
    }());
}

TEST_CASE("sleep - sleep_until a deadline on the loop's clock", "[time]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        const auto deadline = loop.time() + 30ms;
        co_await coring::sleep_until(deadline);
        CHECK(loop.time() >= deadline);
        CHECK(loop.time() < deadline + 40ms);

        // A deadline in the past yields once and returns.
        const auto start = std::chrono::steady_clock::now();
        co_await coring::sleep_until(loop.time() - 1h);
        CHECK(ms_since(start) < 20.0);
    }());
}

TEST_CASE("sleep - sleep(0) yields to the loop exactly once", "[time]") {
    std::vector<std::string> order;
    coring::run([](std::vector<std::string>& log) -> coring::task<> {
        auto worker = [](std::vector<std::string>& l, std::string name) -> coring::task<> {
            for (int i = 0; i < 3; ++i) {
                l.push_back(name + std::to_string(i));
                co_await coring::sleep(0s);
            }
        };
        auto a = coring::create_task(worker(log, "a"));
        auto b = coring::create_task(worker(log, "b"));
        co_await a;
        co_await b;
    }(order));
    CHECK(order == std::vector<std::string>{"a0", "b0", "a1", "b1", "a2", "b2"});
}

TEST_CASE("sleep - negative durations yield like sleep(0)", "[time]") {
    coring::run([]() -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        co_await coring::sleep(-5s);
        CHECK(ms_since(start) < 20.0);
    }());
}

TEST_CASE("sleep - timers fire in deadline order, ties in the order they were set", "[time]") {
    std::vector<int> fired;
    coring::run([](std::vector<int>& out) -> coring::task<> {
        auto sleeper = [](std::vector<int>& o, int id, std::chrono::milliseconds d) -> coring::task<> {
            co_await coring::sleep(d);
            o.push_back(id);
        };
        std::vector<coring::task_handle<>> hs;
        // Deliberately created out of deadline order.
        const int delays[] = {30, 10, 20, 0, 10, 30, 5};
        for (int i = 0; i < 7; ++i) hs.push_back(coring::create_task(sleeper(out, i, std::chrono::milliseconds(delays[i]))));
        for (auto& h : hs) co_await h;
    }(fired));
    REQUIRE(fired.size() == 7);
    CHECK(fired == std::vector<int>{3, 6, 1, 4, 2, 0, 5});
}

TEST_CASE("sleep - call_at callbacks with equal deadlines run in insertion order", "[time]") {
    std::vector<int> order;
    coring::run([](std::vector<int>& out) -> coring::task<> {
        auto& loop = coring::get_running_loop();
        const auto when = loop.time() + 5ms;
        for (int i = 0; i < 50; ++i) loop.call_at(when, [&out, i] { out.push_back(i); });
        co_await coring::sleep(20ms);
    }(order));
    REQUIRE(order.size() == 50);
    CHECK(std::is_sorted(order.begin(), order.end()));
}

TEST_CASE("sleep - 100,000 concurrent sleeping tasks all wake, in deadline order", "[time][scale]") {
    const auto frames_before = live_frames();
    std::vector<int> wake_order;
    const auto start = std::chrono::steady_clock::now();
    coring::run([](std::vector<int>& order) -> coring::task<> {
        constexpr int n = 100'000;
        order.reserve(n);
        auto sleeper = [](std::vector<int>& o, int id, std::chrono::microseconds d) -> coring::task<> {
            co_await coring::sleep(d);
            o.push_back(id);
        };
        std::vector<coring::task_handle<>> handles;
        handles.reserve(n);
        std::mt19937 rng(42);
        std::uniform_int_distribution<int> us(0, 50'000);
        std::vector<std::pair<int, int>> expected;
        for (int i = 0; i < n; ++i) {
            const int d = us(rng);
            handles.push_back(coring::create_task(sleeper(order, i, std::chrono::microseconds(d))));
        }
        for (auto& h : handles) co_await h;
        CHECK(order.size() == static_cast<std::size_t>(n));
    }(wake_order));
    CHECK(ms_since(start) < 30'000.0);
    // Every id exactly once.
    std::vector<int> sorted = wake_order;
    std::sort(sorted.begin(), sorted.end());
    bool each_once = true;
    for (std::size_t i = 0; i < sorted.size(); ++i) each_once = each_once && sorted[i] == static_cast<int>(i);
    CHECK(each_once);
    CHECK(live_frames() == frames_before);
}

TEST_CASE("sleep - a sleep is cancelled promptly and its timer removed", "[time][cancel]") {
    coring::run([]() -> coring::task<> {
        bool cancelled = false;
        auto sleeper = [](bool& flag) -> coring::task<> {
            try {
                co_await coring::sleep(10s);
            } catch (const coring::cancelled_error&) {
                flag = true;
                throw;
            }
        };
        auto h = coring::create_task(sleeper(cancelled));
        co_await coring::sleep(5ms);
        const auto start = std::chrono::steady_clock::now();
        CHECK(h.cancel());
        bool threw = false;
        try {
            co_await h;
        } catch (const coring::cancelled_error&) {
            threw = true;
        }
        CHECK(threw);
        CHECK(cancelled);
        CHECK(h.cancelled());
        CHECK(ms_since(start) < 50.0);
    }());
}

TEST_CASE("sleep - a cancel after the timer fired but before the task resumed still wins", "[time][cancel]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        const auto deadline = loop.time() + 20ms;
        bool sleep_threw = false;
        auto sleeper = [](bool& threw, coring::clock::time_point until) -> coring::task<> {
            try {
                co_await coring::sleep_until(until);
            } catch (const coring::cancelled_error&) {
                threw = true;
                throw;
            }
        };
        auto h = coring::create_task(sleeper(sleep_threw, deadline));
        // Hold the loop past the deadline, so that the next iteration moves both the cancelling
        // callback (due first) and the sleeper's timer to the ready queue in one batch: the
        // cancel then runs while the sleeper is queued to resume.
        loop.call_at(deadline - 2ms, [] {
            const auto until = std::chrono::steady_clock::now() + 5ms;
            while (std::chrono::steady_clock::now() < until) {
            }
        });
        loop.call_at(deadline - 1ms, [h]() mutable { CHECK(h.cancel()); });
        bool threw = false;
        try {
            co_await h;
        } catch (const coring::cancelled_error&) {
            threw = true;
        }
        CHECK(threw);
        CHECK(sleep_threw);
        CHECK(h.cancelled());
    }());
}

TEST_CASE("sleep - awaiting outside a running loop throws logic_error", "[time]") {
    CHECK_THROWS_AS(coring::sleep(1ms), std::logic_error);
}

// ------------------------------------------------------------------------- virtual time

TEST_CASE("virtual time - 10,000 tasks sleeping up to an hour finish in order, in well under a second", "[time][virtual]") {
    std::vector<std::pair<long, int>> wakes;  // (virtual ms since start, id)
    const auto real_start = std::chrono::steady_clock::now();
    coring::run(
        [](std::vector<std::pair<long, int>>& out) -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto start = loop.time();
            std::mt19937 rng(7);
            std::uniform_int_distribution<long> ms(0, 3'600'000);
            std::vector<coring::task_handle<>> hs;
            std::vector<long> planned;
            for (int i = 0; i < 10'000; ++i) {
                planned.push_back(ms(rng));
                auto body = [](std::vector<std::pair<long, int>>& o, int id, long delay, coring::clock::time_point t0) -> coring::task<> {
                    co_await coring::sleep(std::chrono::milliseconds(delay));
                    const auto now = coring::get_running_loop().time();
                    o.emplace_back(std::chrono::duration_cast<std::chrono::milliseconds>(now - t0).count(), id);
                    CHECK(now - t0 == std::chrono::milliseconds(delay));  // exactly on time
                };
                hs.push_back(coring::create_task(body(out, i, planned.back(), start)));
            }
            for (auto& h : hs) co_await h;
            CHECK(loop.time() - start <= 1h);
        }(wakes),
        coring::loop_options{.virtual_time = true});
    CHECK(ms_since(real_start) < 1000.0);
    REQUIRE(wakes.size() == 10'000);
    CHECK(std::is_sorted(wakes.begin(), wakes.end(), [](const auto& a, const auto& b) { return a.first < b.first; }));
}

TEST_CASE("virtual time - wait_for times out at the virtual instant of its timeout", "[time][virtual]") {
    const auto real_start = std::chrono::steady_clock::now();
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            bool timed_out = false;
            try {
                co_await coring::wait_for(coring::sleep(2h), 30min);
            } catch (const coring::timeout_error&) {
                timed_out = true;
            }
            CHECK(timed_out);
            CHECK(loop.time() - t0 == 30min);
        }(),
        coring::loop_options{.virtual_time = true});
    CHECK(ms_since(real_start) < 1000.0);
}

TEST_CASE("virtual time - timeout_at times out at its virtual deadline", "[time][virtual]") {
    const auto real_start = std::chrono::steady_clock::now();
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto deadline = loop.time() + 45s;
            const bool at_deadline = co_await coring_test::throws<coring::timeout_error>(coring::timeout_at(deadline, coring::sleep(1h)));
            CHECK(at_deadline);
            CHECK(loop.time() == deadline);
        }(),
        coring::loop_options{.virtual_time = true});
    CHECK(ms_since(real_start) < 1000.0);
}

TEST_CASE("virtual time - call_later callbacks run at their virtual instants, in deadline order", "[time][virtual]") {
    const auto real_start = std::chrono::steady_clock::now();
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            std::vector<std::chrono::seconds> fired;
            loop.call_later(10s, [&] { fired.push_back(std::chrono::duration_cast<std::chrono::seconds>(loop.time() - t0)); });
            loop.call_later(5s, [&] { fired.push_back(std::chrono::duration_cast<std::chrono::seconds>(loop.time() - t0)); });
            co_await coring::sleep(1min);
            CHECK(fired == std::vector<std::chrono::seconds>{5s, 10s});
        }(),
        coring::loop_options{.virtual_time = true});
    CHECK(ms_since(real_start) < 1000.0);
}

TEST_CASE("virtual time - with I/O in flight the clock runs at real speed", "[time][virtual][io]") {
    coring::run(
        []() -> coring::task<> {
            int fds[2];
            REQUIRE(::pipe(fds) == 0);
            std::array<std::byte, 4> buf{};
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            const auto real_start = std::chrono::steady_clock::now();
            // A read that never completes, under a timeout: the loop cannot jump over the read,
            // so the timeout comes after about 50 ms of real time.
            const bool timed_out = co_await coring_test::throws<coring::timeout_error>(coring::wait_for(coring::io::read(fds[0], buf), 50ms));
            CHECK(timed_out);
            CHECK(ms_since(real_start) >= 45.0);
            CHECK(loop.time() - t0 >= 50ms);
            ::close(fds[0]);
            ::close(fds[1]);
        }(),
        coring::loop_options{.virtual_time = true});
}

TEST_CASE("sleep - a delay too long for the clock sleeps until cancelled instead of returning at once", "[time]") {
    coring::run([]() -> coring::task<> {
        const auto forever = std::chrono::hours(3'000'000);  // more nanoseconds than an int64 holds
        auto& loop = coring::get_running_loop();
        const auto start = std::chrono::steady_clock::now();
        const bool timed_out = co_await coring_test::throws<coring::timeout_error>(coring::wait_for(coring::sleep(forever), 20ms));
        CHECK(timed_out);
        CHECK(ms_since(start) >= 19.0);
        bool fired = false;
        auto timer = loop.call_later(forever, [&] { fired = true; });
        co_await coring::sleep(5ms);
        CHECK_FALSE(fired);
        timer.cancel();
    }());
    const auto forever = std::chrono::hours(3'000'000);
    const auto now = coring::clock::now();
    CHECK(coring::detail::deadline_after(now, forever) == coring::clock::time_point::max());
    CHECK(coring::detail::deadline_after(now, -forever) == coring::clock::time_point::min());
    CHECK(coring::detail::deadline_after(now, std::chrono::duration<double>(1e300)) == coring::clock::time_point::max());
    CHECK(coring::detail::deadline_after(now, 1500us) == now + 1500us);
    CHECK(coring::detail::deadline_after(now, std::chrono::duration<double, std::nano>(0.5)) == now + 1ns);  // rounded up
}
