// Tests of coring/sync/queue.hpp: queue, priority_queue and lifo_queue: order, bounds, join and
// task_done, move-only items, shutdown, cancellation that loses and duplicates nothing, a getter
// timed out by wait_for, and hand-offs to 100,000 waiters.
#include <coring/sync/queue.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/time.hpp>
#include <coring/wait_for.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/child_process.hpp"
#include "sync/stack_span.hpp"

#include <algorithm>
#include <cstdio>
#include <array>
#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;

static_assert(!std::is_copy_constructible_v<coring::queue<int>> && !std::is_move_constructible_v<coring::queue<int>>);

namespace {

template <class Queue>
coring::task<> put_all(Queue& q, std::vector<int> items) {
    for (int v : items) co_await q.put(v);
}

template <class Queue>
coring::task<> get_n(Queue& q, std::vector<int>& out, int n) {
    for (int i = 0; i < n; ++i) out.push_back(co_await q.get());
}

coring::task<> getter(coring::queue<int>& q, std::vector<int>& out, int id) {
    const int v = co_await q.get();
    out.push_back(id * 1000 + v);
}

/// For the tests that sleep only to let other tasks reach their wait: the order is what counts.
constexpr coring::testing::test_options on_virtual_time{.loop = coring_test::virtual_clock};

}  // namespace

// ------------------------------------------------------------------------- basics

TEST_CASE("queue - get returns the items in the order they were put", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q(3);
        co_await q.put(1);
        co_await q.put(2);
        co_await q.put(3);
        std::vector<int> out;
        for (int i = 0; i < 3; ++i) out.push_back(co_await q.get());
        CHECK(out == std::vector<int>{1, 2, 3});
    }());
}

TEST_CASE("queue - maxsize, size, empty and full describe a bounded queue's fill", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q(3);
        CHECK(q.maxsize() == 3);
        CHECK(q.empty());
        CHECK_FALSE(q.full());
        co_await q.put(1);
        co_await q.put(2);
        co_await q.put(3);
        CHECK(q.size() == 3);
        CHECK(q.full());
        CHECK_FALSE(q.empty());
        for (int i = 0; i < 3; ++i) (void)co_await q.get();
        CHECK(q.empty());
    }());
}

TEST_CASE("queue - an unbounded queue has maxsize 0 and is never full", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> unbounded;
        CHECK(unbounded.maxsize() == 0);
        for (int i = 0; i < 10'000; ++i) co_await unbounded.put(i);  // never full, never waits
        CHECK_FALSE(unbounded.full());
        CHECK(unbounded.size() == 10'000);
    }());
}

TEST_CASE("queue - get waits until put", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q;
        std::vector<int> out;
        auto g = coring::create_task(get_n(q, out, 1));
        co_await coring::sleep(5ms);
        CHECK(out.empty());
        co_await q.put(42);
        CHECK(q.empty());  // handed straight to the waiting getter
        co_await g;
        CHECK(out == std::vector<int>{42});
    }(), on_virtual_time);
}

TEST_CASE("queue - a bounded put waits for room", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q(2);
        auto p = coring::create_task(put_all(q, {1, 2, 3, 4}));
        co_await coring::sleep(5ms);
        CHECK(q.size() == 2);
        CHECK_FALSE(p.done());
        const int first = co_await q.get();  // makes room, reserved for the waiting putter
        CHECK(first == 1);
        CHECK(q.size() == 1);
        CHECK(q.full());  // the reserved room counts
        std::vector<int> rest;
        for (int i = 0; i < 3; ++i) rest.push_back(co_await q.get());
        CHECK(rest == std::vector<int>{2, 3, 4});
        co_await p;
    }(), on_virtual_time);
}

TEST_CASE("queue - try_get of an empty queue is empty; get_nowait throws queue_empty", "[queue]") {
    coring::queue<int> q(1);
    CHECK_FALSE(q.try_get().has_value());
    CHECK_THROWS_AS(q.get_nowait(), coring::queue_empty);
}

TEST_CASE("queue - try_put to a full queue is false; put_nowait throws queue_full", "[queue]") {
    coring::queue<int> q(1);
    CHECK(q.try_put(5));
    CHECK_FALSE(q.try_put(6));
    CHECK_THROWS_AS(q.put_nowait(7), coring::queue_full);
}

TEST_CASE("queue - try_get takes what try_put put in", "[queue]") {
    coring::queue<int> q(1);
    REQUIRE(q.try_put(5));
    const std::optional<int> v = q.try_get();
    REQUIRE(v.has_value());
    CHECK(*v == 5);
}

TEST_CASE("queue - get_nowait takes what put_nowait put in", "[queue]") {
    coring::queue<int> q(1);
    q.put_nowait(8);
    CHECK(q.get_nowait() == 8);
}

TEST_CASE("queue - waiting getters are served first-in first-out", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q(1);
        std::vector<int> got;
        std::vector<coring::task_handle<>> getters;
        for (int i = 0; i < 5; ++i) getters.push_back(coring::create_task(getter(q, got, i)));
        co_await coring::sleep(0s);
        for (int v = 0; v < 5; ++v) co_await q.put(v);  // each hand-off goes to the longest waiter
        for (auto& g : getters) co_await g;
        CHECK(got == std::vector<int>{0, 1001, 2002, 3003, 4004});
    }());
}

TEST_CASE("queue - waiting putters are served first-in first-out", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        // Five putters wait on a full queue; their items come out in their order.
        coring::queue<int> q(1);
        co_await q.put(-1);
        std::vector<coring::task_handle<>> putters;
        for (int i = 0; i < 5; ++i) putters.push_back(coring::create_task(put_all(q, {i})));
        co_await coring::sleep(0s);
        std::vector<int> out;
        for (int i = 0; i < 6; ++i) out.push_back(co_await q.get());
        CHECK(out == std::vector<int>{-1, 0, 1, 2, 3, 4});
        for (auto& p : putters) co_await p;
    }());
}

TEST_CASE("queue - no barging: a put item handed to a waiter cannot be taken by another get", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q;
        std::vector<int> got;
        auto g = coring::create_task(getter(q, got, 0));
        co_await coring::sleep(0s);
        CHECK(q.try_put(7));
        CHECK_FALSE(q.try_get().has_value());  // 7 belongs to the waiting getter
        co_await g;
        CHECK(got == std::vector<int>{7});
    }());
}

// ------------------------------------------------------------------------- join / task_done

TEST_CASE("queue - join waits for every task_done", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q;
        co_await q.join();  // nothing outstanding: returns at once
        for (int i = 0; i < 3; ++i) co_await q.put(i);
        bool joined = false;
        auto joiner = coring::create_task([](coring::queue<int>& qu, bool& j) -> coring::task<> {
            co_await qu.join();
            j = true;
        }(q, joined));
        for (int i = 0; i < 3; ++i) {
            (void)co_await q.get();
            co_await coring::sleep(1ms);
            CHECK_FALSE(joined);  // taken is not done
            q.task_done();
        }
        co_await joiner;
        CHECK(joined);
        CHECK_THROWS_AS(q.task_done(), coring::invalid_state_error);  // more than were put
        co_await q.put(9);
        CHECK(q.try_put(0));
        (void)q.get_nowait();
        (void)q.get_nowait();
        q.task_done();
        q.task_done();
        CHECK_THROWS_AS(q.task_done(), coring::invalid_state_error);
        co_await q.join();
    }(), on_virtual_time);
}

// ------------------------------------------------------------------------- flavours

TEST_CASE("priority_queue - the smallest item comes out first", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::priority_queue<std::pair<int, std::string>> q;
        co_await q.put({5, "later"});
        co_await q.put({1, "urgent"});
        co_await q.put({3, "soon"});
        co_await q.put({1, "also urgent"});
        std::vector<std::string> order;
        for (int i = 0; i < 4; ++i) order.push_back((co_await q.get()).second);
        CHECK(order == std::vector<std::string>{"also urgent", "urgent", "soon", "later"});
    }());
}

TEST_CASE("priority_queue - a custom Compare decides which item comes out first", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::priority_queue<int, std::greater<int>> largest_first(2);
        co_await largest_first.put(1);
        co_await largest_first.put(9);
        CHECK(largest_first.full());
        const int a = co_await largest_first.get();
        const int b = co_await largest_first.get();
        CHECK(a == 9);
        CHECK(b == 1);
    }());
}

TEST_CASE("lifo_queue - last in, first out", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::lifo_queue<int> q(3);
        for (int i = 1; i <= 3; ++i) co_await q.put(i);
        CHECK(q.full());
        std::vector<int> out;
        for (int i = 0; i < 3; ++i) out.push_back(co_await q.get());
        CHECK(out == std::vector<int>{3, 2, 1});
    }());
}

namespace {

// Fills `q` (maxsize 2) with items[0] and items[1], starts putters of items[2] and items[3],
// which wait, and gets everything: each of the first two gets reserves room for the next
// putter, and the putters put when they run, after both gets (asyncio's order). Returns the
// items in the order the gets took them.
template <class Queue>
coring::task<std::vector<int>> get_all_letting_putters_in(Queue& q, std::array<int, 4> items) {
    co_await q.put(items[0]);
    co_await q.put(items[1]);
    auto first_putter = coring::create_task(put_all(q, {items[2]}));
    auto second_putter = coring::create_task(put_all(q, {items[3]}));
    co_await coring::sleep(0s);
    CHECK(q.size() == 2);  // both putters wait
    std::vector<int> out;
    out.push_back(co_await q.get());  // room for the first putter, which has not run yet
    CHECK(q.size() == 1);
    CHECK(q.full());
    out.push_back(co_await q.get());  // room for the second
    co_await first_putter;
    co_await second_putter;
    while (!q.empty()) out.push_back(co_await q.get());
    co_return out;
}

}  // namespace

TEST_CASE("lifo_queue - a get lets the first waiting putter in", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::lifo_queue<int> stack(2);
        const std::vector<int> from_stack = co_await get_all_letting_putters_in(stack, {1, 2, 3, 4});
        CHECK(from_stack == std::vector<int>{2, 1, 4, 3});
    }());
}

TEST_CASE("priority_queue - a get lets the first waiting putter in", "[queue]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::priority_queue<int> heap(2);
        const std::vector<int> from_heap = co_await get_all_letting_putters_in(heap, {5, 7, 1, 9});
        CHECK(from_heap == std::vector<int>{5, 7, 1, 9});
    }());
}

TEST_CASE("queue - move-only items through every path", "[queue]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        using item = std::unique_ptr<int>;
        coring::queue<item> q(1);
        co_await q.put(std::make_unique<int>(1));  // into the container

        item spare = std::make_unique<int>(2);
        CHECK_FALSE(q.try_put(std::move(spare)));  // full: the item stays with the caller
        REQUIRE(spare != nullptr);
        CHECK(*spare == 2);
        CHECK_THROWS_AS(q.put_nowait(std::move(spare)), coring::queue_full);
        REQUIRE(spare != nullptr);

        // A putter waits with its item; a get moves it in.
        auto putter = coring::create_task([](coring::queue<item>& qu, item it) -> coring::task<> { co_await qu.put(std::move(it)); }(q, std::move(spare)));
        co_await coring::sleep(0s);
        item one = co_await q.get();
        CHECK(*one == 1);
        co_await putter;
        std::optional<item> two = q.try_get();
        REQUIRE(two.has_value());
        CHECK(**two == 2);

        // A waiting getter receives the item straight from put.
        auto get_one = [](coring::queue<item>& qu) -> coring::task<int> {
            item it = co_await qu.get();
            co_return *it;
        };
        auto g = coring::create_task(get_one(q));
        co_await coring::sleep(0s);
        co_await q.put(std::make_unique<int>(3));
        const int three = co_await g;
        CHECK(three == 3);

        coring::priority_queue<item, std::function<bool(const item&, const item&)>> pq(
            0, [](const item& a, const item& b) { return *a < *b; });
        co_await pq.put(std::make_unique<int>(9));
        co_await pq.put(std::make_unique<int>(4));
        item smallest = co_await pq.get();
        CHECK(*smallest == 4);
        coring::lifo_queue<item> lq;
        co_await lq.put(std::make_unique<int>(5));
        item top = co_await lq.get();
        CHECK(*top == 5);
        (void)pq.try_get();
    }());
    CHECK(live_frames() == frames_before);
}

// ------------------------------------------------------------------------- shutdown

TEST_CASE("queue - shutdown wakes every waiting getter with queue_shut_down", "[queue][shutdown]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q;
        auto get_throws = [](coring::queue<int>& qu) -> coring::task<bool> { co_return co_await coring_test::throws<coring::queue_shut_down>(qu.get()); };
        std::vector<coring::task_handle<bool>> getters;
        for (int i = 0; i < 5; ++i) getters.push_back(coring::create_task(get_throws(q)));
        co_await coring::sleep(0s);
        q.shutdown();
        CHECK(q.is_shut_down());
        for (auto& g : getters) {
            const bool threw = co_await g;
            CHECK(threw);
        }
        CHECK_THROWS_AS(q.put_nowait(1), coring::queue_shut_down);
        CHECK_THROWS_AS(q.try_put(1), coring::queue_shut_down);
        const bool put_throws = co_await coring_test::throws<coring::queue_shut_down>(q.put(1));
        CHECK(put_throws);
    }());
}

TEST_CASE("queue - shutdown wakes every waiting putter with queue_shut_down, its item not put", "[queue][shutdown]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q(2);
        co_await q.put(1);
        co_await q.put(2);
        auto put_throws = [](coring::queue<int>& qu, int v) -> coring::task<bool> { co_return co_await coring_test::throws<coring::queue_shut_down>(qu.put(v)); };
        auto p1 = coring::create_task(put_throws(q, 3));
        auto p2 = coring::create_task(put_throws(q, 4));
        co_await coring::sleep(0s);
        q.shutdown();
        const bool t1 = co_await p1;
        const bool t2 = co_await p2;
        CHECK(t1);
        CHECK(t2);
        CHECK(q.size() == 2);  // the putters' items were not put
    }());
}

TEST_CASE("queue - after shutdown the items already queued can still be taken, then get throws", "[queue][shutdown]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q(2);
        co_await q.put(1);
        co_await q.put(2);
        q.shutdown();
        const int a = co_await q.get();
        const int b = co_await q.get();
        CHECK(a == 1);
        CHECK(b == 2);
        const bool get_throws = co_await coring_test::throws<coring::queue_shut_down>(q.get());
        CHECK(get_throws);
        CHECK_THROWS_AS(q.get_nowait(), coring::queue_shut_down);
        CHECK_FALSE(q.try_get().has_value());
        q.task_done();
        q.task_done();
        co_await q.join();
    }());
}

TEST_CASE("queue - shutdown(immediate) discards the queued items; get then throws", "[queue][shutdown]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q;
        for (int i = 0; i < 5; ++i) co_await q.put(i);
        q.shutdown(true);
        CHECK(q.empty());
        const bool get_throws = co_await coring_test::throws<coring::queue_shut_down>(q.get());
        CHECK(get_throws);
    }());
}

TEST_CASE("queue - after shutdown(immediate) join returns once the items already taken are done", "[queue][shutdown]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q;
        for (int i = 0; i < 5; ++i) co_await q.put(i);
        (void)co_await q.get();  // one taken, not yet done
        bool joined = false;
        auto joiner = coring::create_task([](coring::queue<int>& qu, bool& j) -> coring::task<> {
            co_await qu.join();
            j = true;
        }(q, joined));
        co_await coring::sleep(0s);
        q.shutdown(true);
        CHECK(q.empty());
        co_await coring::sleep(1ms);
        CHECK_FALSE(joined);  // the item taken is still outstanding
        q.task_done();
        co_await joiner;
        CHECK(joined);
    }(), on_virtual_time);
}

// ------------------------------------------------------------------------- cancellation

TEST_CASE("queue - a getter cancelled while waiting takes nothing", "[queue][cancel]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q;
        std::vector<int> got;
        auto a = coring::create_task(getter(q, got, 1));
        auto b = coring::create_task(getter(q, got, 2));
        co_await coring::sleep(0s);
        a.cancel();
        const bool a_cancelled = co_await coring_test::throws<coring::cancelled_error>(a);
        CHECK(a_cancelled);
        co_await q.put(5);
        co_await b;
        CHECK(got == std::vector<int>{2005});
        CHECK(q.empty());
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("queue - a getter cancelled after it was handed an item passes it to the next getter", "[queue][cancel]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q;
        std::vector<int> got;
        auto a = coring::create_task(getter(q, got, 1));
        auto b = coring::create_task(getter(q, got, 2));
        co_await coring::sleep(0s);
        co_await q.put(5);  // handed to a
        a.cancel();         // before a resumed: 5 goes to b
        const bool a_cancelled = co_await coring_test::throws<coring::cancelled_error>(a);
        CHECK(a_cancelled);
        co_await b;
        CHECK(got == std::vector<int>{2005});
        CHECK(q.empty());
    }());
}

TEST_CASE("queue - a getter cancelled after the hand-off with nobody waiting puts the item back first", "[queue][cancel]") {
    coring::testing::run_test([]() -> coring::task<> {
        {
            coring::queue<int> q;
            std::vector<int> got;
            auto a = coring::create_task(getter(q, got, 1));
            co_await coring::sleep(0s);
            co_await q.put(5);  // handed to a
            co_await q.put(6);  // into the queue
            a.cancel();         // 5 goes back, ahead of 6
            const bool a_cancelled = co_await coring_test::throws<coring::cancelled_error>(a);
            CHECK(a_cancelled);
            CHECK(q.size() == 2);
            const int first = q.get_nowait();
            const int second = q.get_nowait();
            CHECK(first == 5);
            CHECK(second == 6);
        }
        {
            coring::lifo_queue<int> q;
            auto get_one = [](coring::lifo_queue<int>& qu) -> coring::task<> { (void)co_await qu.get(); };
            auto a = coring::create_task(get_one(q));
            co_await coring::sleep(0s);
            co_await q.put(5);
            co_await q.put(6);
            co_await q.put(7);
            a.cancel();  // 5 was put first: it goes to the bottom of the stack
            const bool a_cancelled = co_await coring_test::throws<coring::cancelled_error>(a);
            CHECK(a_cancelled);
            std::vector<int> out;
            while (auto v = q.try_get()) out.push_back(*v);
            CHECK(out == std::vector<int>{7, 6, 5});
        }
    }());
}

TEST_CASE("queue - a putter cancelled while waiting puts nothing", "[queue][cancel]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q(1);
        co_await q.put(1);
        auto p = coring::create_task(put_all(q, {2}));
        auto p3 = coring::create_task(put_all(q, {3}));
        co_await coring::sleep(0s);
        p.cancel();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(p);
        CHECK(cancelled);
        std::vector<int> out;
        out.push_back(co_await q.get());
        out.push_back(co_await q.get());
        CHECK(out == std::vector<int>{1, 3});
        CHECK(q.empty());
        co_await p3;
        // The cancelled put never counted as unfinished work.
        q.task_done();
        q.task_done();
        co_await q.join();
    }());
}

TEST_CASE("queue - a putter cancelled after a get made room for it puts nothing; the room passes on", "[queue][cancel]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q(1);
        co_await q.put(1);
        auto first = coring::create_task(put_all(q, {2}));
        auto second = coring::create_task(put_all(q, {3}));
        co_await coring::sleep(0s);
        const int got = co_await q.get();  // reserves the room for `first`, which has not run yet
        CHECK(got == 1);
        CHECK(q.full());                     // the reserved room counts
        CHECK_FALSE(q.try_put(99));          // nobody overtakes the woken putter
        CHECK(first.cancel());
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(first);
        CHECK(cancelled);
        co_await second;                     // the room went to the next putter
        CHECK(q.size() == 1);
        const int in_queue = q.get_nowait();
        CHECK(in_queue == 3);                // 2 was never put
        CHECK(q.empty());
        q.task_done();
        q.task_done();
        co_await q.join();                   // and 2 never counted as unfinished work
    }());
}

TEST_CASE("queue - a putter woken with room, then shut down before it runs, puts nothing", "[queue][cancel][shutdown]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q(1);
        co_await q.put(1);
        auto p = coring::create_task(put_all(q, {2}));
        co_await coring::sleep(0s);
        const int got = co_await q.get();
        CHECK(got == 1);
        q.shutdown();
        const bool shut = co_await coring_test::throws<coring::queue_shut_down>(p);
        CHECK(shut);
        CHECK(q.empty());
        CHECK_FALSE(q.full());
    }());
}

// wait_for(q.put(x), t) with a get making room at about the deadline: whichever wins, the outcome
// says what happened. timeout_error means x was not put; a normal return means it was.
CORING_TEST_CASE_ON_VIRTUAL_TIME("queue - wait_for(put) that times out has not put its item", "[queue][cancel]") {
    const std::array<std::chrono::milliseconds, 3> get_times{9ms, 10ms, 11ms};
    for (const std::chrono::milliseconds get_at : get_times) {
        coring::queue<int> q(1);
        co_await q.put(1);
        auto timed_put = [](coring::queue<int>& qu) -> coring::task<bool> {
            try {
                co_await coring::wait_for(qu.put(2), 10ms);
                co_return true;
            } catch (const coring::timeout_error&) {
                co_return false;
            }
        };
        auto p = coring::create_task(timed_put(q));
        co_await coring::sleep(get_at);
        const int got = q.get_nowait();
        CHECK(got == 1);
        const bool put = co_await p;
        co_await coring::sleep(0s);
        INFO("get at " << get_at.count() << " ms");
        CHECK(q.size() == (put ? 1u : 0u));
        if (get_at < 10ms) CHECK(put);
        if (get_at > 10ms) CHECK_FALSE(put);
        while (!q.empty()) (void)q.get_nowait();
    }
}

TEST_CASE("queue - random cancellations of getters and putters lose and duplicate no item", "[queue][cancel]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q(3);
        std::vector<int> received;
        std::vector<int> put_ok;
        std::mt19937 rng(12345);
        auto consumer = [](coring::queue<int>& qu, std::vector<int>& out) -> coring::task<> {
            for (;;) {
                const int v = co_await qu.get();
                out.push_back(v);
                qu.task_done();
            }
        };
        auto producer = [](coring::queue<int>& qu, std::vector<int>& ok, int first, int count) -> coring::task<> {
            for (int v = first; v < first + count; ++v) {
                co_await qu.put(v);
                ok.push_back(v);  // recorded only when put() returned: the item is in
            }
        };
        std::vector<coring::task_handle<>> consumers;
        std::vector<coring::task_handle<>> producers;
        int next_value = 0;
        for (int round = 0; round < 200; ++round) {
            if (consumers.size() < 4) consumers.push_back(coring::create_task(consumer(q, received)));
            if (producers.size() < 4) {
                producers.push_back(coring::create_task(producer(q, put_ok, next_value, 5)));
                next_value += 5;
            }
            co_await coring::sleep(0s);
            // Cancel a random consumer or producer, at a random point of its life.
            auto& pool = (rng() % 2 == 0) ? consumers : producers;
            if (!pool.empty()) {
                const std::size_t victim = rng() % pool.size();
                pool[victim].cancel();
                if (rng() % 3 == 0) co_await coring::sleep(0s);
            }
            for (auto* p : {&consumers, &producers}) {
                std::erase_if(*p, [](const coring::task_handle<>& h) { return h.done(); });
            }
        }
        // Drain: one consumer collects whatever is left, then everything stops.
        for (auto& p : producers) p.cancel();
        for (auto& p : producers) (void)co_await coring_test::throws<coring::cancelled_error>(p);
        consumers.push_back(coring::create_task(consumer(q, received)));
        while (!q.empty()) co_await coring::sleep(0s);
        co_await coring::sleep(0s);
        for (auto& c : consumers) c.cancel();
        for (auto& c : consumers) (void)co_await coring_test::throws<coring::cancelled_error>(c);

        // Every item whose put() returned was received exactly once, and nothing else was: a
        // put() that threw cancelled_error put nothing, a get() that threw took nothing.
        std::sort(received.begin(), received.end());
        std::sort(put_ok.begin(), put_ok.end());
        CHECK(received == put_ok);
        CHECK(received.size() > 100);
        CHECK(q.empty());
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("queue - a getter timed out by wait_for is not left registered", "[queue][cancel]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> q;
        const bool timed_out = co_await coring_test::throws<coring::timeout_error>(coring::wait_for(q.get(), 5ms));
        CHECK(timed_out);
        // Had the timed-out getter stayed registered, this item would be handed to it and lost.
        co_await q.put(1);
        CHECK(q.size() == 1);
        const int v = co_await coring::wait_for(q.get(), 1s);
        CHECK(v == 1);
    }(), on_virtual_time);
    CHECK(live_frames() == frames_before);
}

TEST_CASE("queue - a putter timed out by wait_for is not left registered", "[queue][cancel]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::queue<int> full(1);
        co_await full.put(1);
        const bool put_timed_out = co_await coring_test::throws<coring::timeout_error>(coring::wait_for(full.put(2), 5ms));
        CHECK(put_timed_out);
        CHECK(full.get_nowait() == 1);
        CHECK(full.empty());  // 2 never went in, and no putter is left to move it in
    }(), on_virtual_time);
    CHECK(live_frames() == frames_before);
}

// ------------------------------------------------------------------------- scale

TEST_CASE("queue - items handed to 100,000 waiting getters in order, on a flat stack", "[queue][stack]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        constexpr int n = 100'000;
        coring::queue<int> q(1);
        long sum = 0;
        int expected = 0;
        bool in_order = true;
        coring_test::stack_span span;
        // Each getter, once handed its item, puts the next one, which goes straight to the
        // next waiting getter: were a hand-off resumed inline, the 100,000 would nest.
        auto get_one = [](coring::queue<int>& qu, long& s, int& exp, bool& ordered, coring_test::stack_span& sp) -> coring::task<> {
            const int v = co_await qu.get();
            sp.note();
            if (v != exp) ordered = false;
            ++exp;
            s += v;
            if (v + 1 < n) qu.put_nowait(v + 1);
        };
        std::vector<coring::task_handle<>> tasks;
        tasks.reserve(n);
        for (int i = 0; i < n; ++i) tasks.push_back(coring::create_task(get_one(q, sum, expected, in_order, span)));
        co_await coring::sleep(0s);
        co_await q.put(0);
        CHECK(expected == 0);  // handed to the first getter, not resumed inline
        for (auto& t : tasks) co_await t;
        CHECK(in_order);
        CHECK(sum == static_cast<long>(n) * (n - 1) / 2);
        CHECK(q.empty());
        CHECK(span.bytes() < coring_test::stack_span::flat_limit);
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("queue - items taken from 100,000 waiting putters in order, on a flat stack", "[queue][stack]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        constexpr int n = 100'000;
        coring::queue<int> q(1);
        std::vector<coring::task_handle<>> tasks;
        tasks.reserve(n);
        // 100,000 putters wait on a full queue. Each, once its item is in, takes it out again,
        // which lets the next putter in: were a hand-off resumed inline, the 100,000 would nest.
        coring_test::stack_span putter_span;
        int next_item = 0;
        bool putters_in_order = true;
        auto put_then_get = [](coring::queue<int>& qu, int item, int& next, bool& ordered, coring_test::stack_span& sp) -> coring::task<> {
            co_await qu.put(item);
            sp.note();
            const int v = co_await qu.get();  // the item just put: the queue holds one
            if (v != next) ordered = false;
            ++next;
        };
        co_await q.put(-1);
        for (int i = 0; i < n; ++i) tasks.push_back(coring::create_task(put_then_get(q, i, next_item, putters_in_order, putter_span)));
        co_await coring::sleep(0s);
        const int first = co_await q.get();  // lets the first putter in
        CHECK(first == -1);
        CHECK(next_item == 0);
        for (auto& t : tasks) co_await t;
        CHECK(next_item == n);
        CHECK(putters_in_order);
        CHECK(q.empty());
        CHECK(putter_span.bytes() < coring_test::stack_span::flat_limit);
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("queue - destroyed while tasks wait on it: reported loudly", "[queue]") {
    auto [status, text] = coring_test::run_in_child([] {
        int errors = 0;
        coring::run([](int& errs) -> coring::task<> {
            auto* q = new coring::queue<int>(1);
            co_await q->put(1);
            auto blocked = [](coring::task<> body, int& e) -> coring::task<> {
                try {
                    co_await std::move(body);
                } catch (const coring::invalid_state_error&) {
                    ++e;
                }
            };
            auto p1 = coring::create_task(blocked(put_all(*q, {2}), errs));
            auto p2 = coring::create_task(blocked(put_all(*q, {3}), errs));
            auto joiner = coring::create_task(blocked([](coring::queue<int>& qu) -> coring::task<> { co_await qu.join(); }(*q), errs));
            co_await coring::sleep(0s);
            delete q;  // the bug: two putters and a joiner still wait
            co_await p1;
            co_await p2;
            co_await joiner;
        }(errors));
        std::printf("child finished: %d invalid_state_errors\n", errors);
    });
    INFO(text);
    CHECK(text.find("coring::queue was destroyed while 3 tasks still waited on it") != std::string::npos);
    CHECK(coring_test::stopped_by_assertion_or_exited_cleanly(status));
#ifdef NDEBUG
    CHECK(text.find("child finished: 3 invalid_state_errors") != std::string::npos);
#endif
}

namespace {
// Counts its live instances (moved-from ones included), to show that none is leaked.
struct counted_item {
    static inline int live = 0;
    counted_item() noexcept { ++live; }
    counted_item(counted_item&&) noexcept { ++live; }
    counted_item& operator=(counted_item&&) noexcept = default;
    ~counted_item() { --live; }
};
}  // namespace

TEST_CASE("queue - destroyed after handing an item to a getter that has not resumed: the item goes with the getter", "[queue]") {
    auto [status, text] = coring_test::run_in_child([] {
        coring::run([]() -> coring::task<> {
            auto* q = new coring::queue<counted_item>();
            auto getter = coring::create_task([](coring::queue<counted_item>& qu) -> coring::task<> {
                try {
                    (void)co_await qu.get();
                    std::printf("the getter took the item\n");
                } catch (const coring::invalid_state_error&) {
                    std::printf("the getter resumed with invalid_state_error\n");
                }
            }(*q));
            co_await coring::sleep(0s);
            co_await q->put(counted_item{});  // handed to the waiting getter, which resumes later
            delete q;                          // the bug: the getter is granted and not yet resumed
            co_await getter;
        }());
        std::printf("live items: %d\n", counted_item::live);
    });
    INFO(text);
    CHECK(text.find("coring::queue was destroyed while 1 task still waited on it") != std::string::npos);
    CHECK(coring_test::stopped_by_assertion_or_exited_cleanly(status));
#ifdef NDEBUG
    CHECK(text.find("the getter resumed with invalid_state_error") != std::string::npos);
    CHECK(text.find("live items: 0") != std::string::npos);
#endif
}
