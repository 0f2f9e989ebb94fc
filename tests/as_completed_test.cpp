// Tests of coring/as_completed.hpp.
#include <coring/as_completed.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/delayed_tasks.hpp"
#include "support/helpers.hpp"

#include <stdexcept>
#include <vector>

using namespace std::chrono_literals;
using coring_test::throws;
using coring_test::value_after;

TEST_CASE("as_completed - yields results in completion order", "[as_completed]") {
    coring::run([]() -> coring::task<> {
        std::vector<coring::task_handle<int>> hs;
        const int delays[] = {40, 10, 30, 20};
        for (int i = 0; i < 4; ++i) hs.push_back(coring::create_task(value_after(std::chrono::milliseconds(delays[i]), i)));
        std::vector<int> order;
        for (auto next : coring::as_completed(hs)) {
            const int v = co_await next;
            order.push_back(v);
        }
        CHECK(order == std::vector<int>{1, 3, 2, 0});
    }(), coring_test::virtual_clock);
}

TEST_CASE("as_completed - tasks already finished come first, in input order", "[as_completed]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::create_task(value_after(0ms, 1));  // finishes before b
        auto b = coring::create_task(value_after(0ms, 2));
        auto c = coring::create_task(value_after(10ms, 3));
        co_await coring::sleep(2ms);
        std::vector<int> order;
        // b before a: input order, not the order they finished in.
        for (auto next : coring::as_completed(std::vector{c, b, a})) {
            const int v = co_await next;
            order.push_back(v);
        }
        CHECK(order == std::vector<int>{2, 1, 3});
    }(), coring_test::virtual_clock);
}

TEST_CASE("as_completed - an exception is rethrown by its element only", "[as_completed]") {
    coring::run([]() -> coring::task<> {
        auto bad = coring::create_task([]() -> coring::task<int> {
            co_await coring::sleep(1ms);
            throw std::domain_error("bad");
        }());
        auto good = coring::create_task(value_after(10ms, 5));
        int seen = 0;
        int errors = 0;
        for (auto next : coring::as_completed(std::vector{bad, good})) {
            try {
                seen += co_await next;
            } catch (const std::domain_error&) {
                ++errors;
            }
        }
        CHECK(errors == 1);
        CHECK(seen == 5);
    }(), coring_test::virtual_clock);
}

TEST_CASE("as_completed - a timeout raises timeout_error and leaves the tasks running", "[as_completed]") {
    coring::run([]() -> coring::task<> {
        auto fast = coring::create_task(value_after(1ms, 1));
        auto slow = coring::create_task(value_after(1h, 2));
        auto range = coring::as_completed(std::vector{fast, slow}, 20ms);
        auto it = range.begin();
        const int first = co_await *it;
        CHECK(first == 1);
        ++it;
        const bool timed_out = co_await throws<coring::timeout_error>(*it);
        CHECK(timed_out);
        CHECK_FALSE(slow.done());
        slow.cancel();
    }(), coring_test::virtual_clock);
}

TEST_CASE("as_completed - cancelling the consumer leaves the tasks running", "[as_completed][cancel]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(20ms, 3));
        auto consumer = [](coring::task_handle<int> t) -> coring::task<> {
            for (auto next : coring::as_completed(std::vector{t})) (void)co_await next;
        };
        auto c = coring::create_task(consumer(h));
        co_await coring::sleep(2ms);
        c.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(c);
        CHECK(cancelled);
        const int v = co_await h;
        CHECK(v == 3);
    }(), coring_test::virtual_clock);
}

// Regression: the range kept one waiting awaitable; a second one awaited at the same time
// replaced the first, which was never woken, and closing the loop then waited for ever.
TEST_CASE("as_completed - awaitables awaited at the same time each get one result", "[as_completed]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::create_task(value_after(50ms, 1));
        auto b = coring::create_task(value_after(50ms, 2));
        auto range = coring::as_completed(std::vector{a, b});
        auto it = range.begin();
        auto first = *it;
        ++it;
        auto second = *it;
        auto take = [](auto next) -> coring::task<int> { co_return co_await next; };
        auto x = coring::create_task(take(std::move(first)));
        auto y = coring::create_task(take(std::move(second)));
        std::vector takers{x, y};  // g++ 12 rejects a braced list inside co_await
        auto [done, pending] = co_await coring::wait(takers, coring::return_when::all_completed, 1s);
        CHECK(done.size() == 2);
        CHECK(pending.empty());
        for (auto& p : pending) p.cancel();
        if (pending.empty()) {
            const int vx = co_await x;
            const int vy = co_await y;
            CHECK(vx + vy == 3);
            CHECK(vx != vy);
        }
    }(), coring_test::virtual_clock);
}

TEST_CASE("as_completed - of two waiting awaitables, cancelling the first hands the result to the second", "[as_completed][cancel]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::create_task(value_after(20ms, 7));
        auto range = coring::as_completed(std::vector{a});
        auto take = [](auto next) -> coring::task<int> { co_return co_await next; };
        auto x = coring::create_task(take(*range.begin()));
        auto y = coring::create_task(take(*range.begin()));
        co_await coring::sleep(5ms);
        x.cancel();
        const bool x_cancelled = co_await throws<coring::cancelled_error>(x);
        CHECK(x_cancelled);
        const int vy = co_await y;
        CHECK(vy == 7);
    }(), coring_test::virtual_clock);
}

TEST_CASE("as_completed - a task given twice is reported once, as asyncio takes a set", "[as_completed]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::create_task(value_after(5ms, 1));
        auto b = coring::create_task(value_after(1ms, 2));
        auto range = coring::as_completed(std::vector{a, b, a});
        CHECK(range.size() == 2);
        std::vector<int> order;
        for (auto next : range) {
            const int v = co_await next;
            order.push_back(v);
        }
        CHECK(order == std::vector<int>{2, 1});
    }(), coring_test::virtual_clock);
}
