// Tests of coring/sync/event.hpp: wait, set, clear, is_set, FIFO wake-up, cancellation, and
// 100,000 waiters woken by one set().
#include <coring/sync/event.hpp>

#include <coring/task_handle.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "sync/stack_span.hpp"

#include <memory>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;

static_assert(!std::is_copy_constructible_v<coring::event> && !std::is_move_constructible_v<coring::event>);

namespace {

coring::task<> waiter(coring::event& e, std::vector<int>& order, int id) {
    co_await e.wait();
    order.push_back(id);
}

}  // namespace

TEST_CASE("event - set, clear, is_set", "[event]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::event e;
        CHECK_FALSE(e.is_set());
        e.set();
        CHECK(e.is_set());
        e.set();  // idempotent
        CHECK(e.is_set());
        e.clear();
        CHECK_FALSE(e.is_set());
        co_return;
    }());
}

TEST_CASE("event - wait on a set event returns without suspending", "[event]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::event e;
        e.set();
        bool other_ran = false;
        auto other = coring::create_task([](bool& ran) -> coring::task<> {
            ran = true;
            co_return;
        }(other_ran));
        co_await e.wait();
        CHECK_FALSE(other_ran);
        co_await other;
    }());
}

TEST_CASE("event - set wakes every waiter, first-in first-out, on the next iteration", "[event]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::event e;
        std::vector<int> order;
        std::vector<coring::task_handle<>> tasks;
        for (int i = 0; i < 10; ++i) tasks.push_back(coring::create_task(waiter(e, order, i)));
        co_await coring::sleep(5ms);
        CHECK(order.empty());
        e.set();
        CHECK(order.empty());  // not resumed inline
        co_await coring::sleep(0s);
        CHECK(order == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
        for (auto& t : tasks) co_await t;
    }());
}

TEST_CASE("event - waiters woken by set resume even if clear comes first", "[event]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::event e;
        std::vector<int> order;
        auto a = coring::create_task(waiter(e, order, 1));
        co_await coring::sleep(0s);
        e.set();
        e.clear();
        auto b = coring::create_task(waiter(e, order, 2));  // waits for the next set
        co_await a;
        co_await coring::sleep(5ms);
        CHECK(order == std::vector<int>{1});
        e.set();
        co_await b;
        CHECK(order == std::vector<int>{1, 2});
    }());
}

TEST_CASE("event - a waiter cancelled while waiting resumes with cancelled_error; the others still wake", "[event][cancel]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::event e;
        std::vector<int> order;
        auto a = coring::create_task(waiter(e, order, 1));
        auto b = coring::create_task(waiter(e, order, 2));
        co_await coring::sleep(0s);
        b.cancel();
        const bool b_cancelled = co_await coring_test::throws<coring::cancelled_error>(b);
        CHECK(b_cancelled);
        e.set();
        co_await a;
        CHECK(order == std::vector<int>{1});
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("event - a waiter cancelled after set() but before it resumed ends cancelled; the others still wake", "[event][cancel]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::event e;
        std::vector<int> order;
        auto a = coring::create_task(waiter(e, order, 1));
        auto c = coring::create_task(waiter(e, order, 3));
        co_await coring::sleep(0s);
        e.set();
        c.cancel();  // the cancel wins, nothing is lost
        const bool c_cancelled = co_await coring_test::throws<coring::cancelled_error>(c);
        CHECK(c_cancelled);
        co_await a;
        CHECK(order == std::vector<int>{1});
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("event - one set wakes 100,000 waiters without growing the stack", "[event][stack]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        constexpr int n = 100'000;
        coring::event e;
        int woken = 0;
        int expected = 0;
        bool in_order = true;
        coring_test::stack_span span;
        auto wait_one = [](coring::event& ev, int id, int& count, int& exp, bool& ordered, coring_test::stack_span& sp) -> coring::task<> {
            co_await ev.wait();
            sp.note();
            if (id != exp) ordered = false;
            ++exp;
            ++count;
        };
        std::vector<coring::task_handle<>> tasks;
        tasks.reserve(n);
        for (int i = 0; i < n; ++i) tasks.push_back(coring::create_task(wait_one(e, i, woken, expected, in_order, span)));
        co_await coring::sleep(0s);
        e.set();
        CHECK(woken == 0);  // set() resumed nobody inline: they run on the loop's next iteration
        for (auto& t : tasks) co_await t;
        CHECK(woken == n);
        CHECK(in_order);
        CHECK(span.bytes() < coring_test::stack_span::flat_limit);

        // A relay: each waiter, once woken, sets the event the next one waits on. Were a
        // wake-up resumed inline, the 100,000 hand-offs would nest.
        const auto events = std::make_unique<coring::event[]>(n);
        coring_test::stack_span relay_span;
        int relayed = 0;
        auto relay_one = [](coring::event& mine, coring::event* next, int& count, coring_test::stack_span& sp) -> coring::task<> {
            co_await mine.wait();
            sp.note();
            ++count;
            if (next != nullptr) next->set();
        };
        tasks.clear();
        for (int i = 0; i < n; ++i)
            tasks.push_back(coring::create_task(relay_one(events[i], i + 1 < n ? &events[i + 1] : nullptr, relayed, relay_span)));
        co_await coring::sleep(0s);
        events[0].set();
        for (auto& t : tasks) co_await t;
        CHECK(relayed == n);
        CHECK(relay_span.bytes() < coring_test::stack_span::flat_limit);
    }());
    CHECK(live_frames() == frames_before);
}
