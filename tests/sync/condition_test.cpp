// Tests of coring/sync/condition.hpp: wait releases and re-acquires the lock, notify order,
// wait with a predicate, cancellation before and after notify, 100,000 waiters.
#include <coring/sync/condition.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/child_process.hpp"

#include <cstdio>
#include <deque>
#include <string>
#include <type_traits>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;

static_assert(!std::is_copy_constructible_v<coring::condition> && !std::is_move_constructible_v<coring::condition>);

namespace {

// Waits once on `c`; records `id` when it resumes, and whether it held the lock then.
coring::task<> wait_once(coring::mutex& m, coring::condition& c, std::vector<int>& order, int id, bool& always_locked) {
    auto guard = co_await m.scoped_lock();
    co_await c.wait(guard);
    if (!guard.owns_lock() || !m.locked()) always_locked = false;
    order.push_back(id);
}

// What the notify tests share: a mutex and a condition, the ids of the waiters (wait_once) in
// the order they returned from wait, and whether every one of them held the lock when it did.
struct notified_waiters {
    coring::mutex m;
    coring::condition c;
    std::vector<int> order;
    bool always_locked = true;

    // Starts a task that waits once on `c` and records `id`.
    coring::task_handle<> start_waiter(int id) { return coring::create_task(wait_once(m, c, order, id, always_locked)); }

    // Starts waiters 0 to n - 1, in that order.
    std::vector<coring::task_handle<>> start_waiters(int n) {
        std::vector<coring::task_handle<>> tasks;
        for (int i = 0; i < n; ++i) tasks.push_back(start_waiter(i));
        return tasks;
    }
};

// For the tests that sleep only to give a task the chance to run: the order is what counts.
constexpr coring::testing::test_options on_virtual_time{.loop = coring_test::virtual_clock};

}  // namespace

TEST_CASE("condition - wait needs a guard that owns the lock", "[condition]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::mutex m;
        coring::condition c;
        coring::mutex_guard empty;
        const bool threw = co_await coring_test::throws<coring::invalid_state_error>(c.wait(empty));
        CHECK(threw);
        auto guard = co_await m.scoped_lock();
        guard.unlock();
        const bool threw_again = co_await coring_test::throws<coring::invalid_state_error>(c.wait(guard));
        CHECK(threw_again);
    }());
}

TEST_CASE("condition - wait releases the lock while it waits", "[condition]") {
    coring::testing::run_test([]() -> coring::task<> {
        notified_waiters shared;
        auto w = shared.start_waiter(1);
        co_await coring::sleep(0s);
        CHECK_FALSE(shared.m.locked());
        shared.c.notify_one();
        co_await w;
    }());
}

TEST_CASE("condition - a notified wait returns only once it holds the lock again", "[condition]") {
    coring::testing::run_test([]() -> coring::task<> {
        notified_waiters shared;
        auto w = shared.start_waiter(1);
        co_await coring::sleep(0s);
        {
            auto guard = co_await shared.m.scoped_lock();
            shared.c.notify_one();
            co_await coring::sleep(5ms);  // notified, but the lock is ours: it cannot return yet
            CHECK(shared.order.empty());
        }
        co_await w;
        CHECK(shared.order == std::vector<int>{1});
        CHECK(shared.always_locked);
        CHECK_FALSE(shared.m.locked());
    }(), on_virtual_time);
}

TEST_CASE("condition - notify_one wakes the longest waiter, also when called without the lock", "[condition]") {
    coring::testing::run_test([]() -> coring::task<> {
        notified_waiters shared;
        auto tasks = shared.start_waiters(6);
        co_await coring::sleep(0s);
        shared.c.notify_one();
        co_await coring::sleep(0s);
        CHECK(shared.order == std::vector<int>{0});
        shared.c.notify_all();
        for (auto& t : tasks) co_await t;
        CHECK(shared.always_locked);
    }());
}

TEST_CASE("condition - notify(n) wakes the n longest waiters, first-in first-out", "[condition]") {
    coring::testing::run_test([]() -> coring::task<> {
        notified_waiters shared;
        auto tasks = shared.start_waiters(6);
        co_await coring::sleep(0s);
        {
            auto guard = co_await shared.m.scoped_lock();
            shared.c.notify(2);
        }
        co_await coring::sleep(0s);
        co_await coring::sleep(0s);
        CHECK(shared.order == std::vector<int>{0, 1});
        shared.c.notify_all();
        for (auto& t : tasks) co_await t;
        CHECK(shared.always_locked);
    }());
}

TEST_CASE("condition - notify_all wakes every waiter, first-in first-out", "[condition]") {
    coring::testing::run_test([]() -> coring::task<> {
        notified_waiters shared;
        auto tasks = shared.start_waiters(6);
        co_await coring::sleep(0s);
        shared.c.notify_all();
        for (auto& t : tasks) co_await t;
        CHECK(shared.order == std::vector<int>{0, 1, 2, 3, 4, 5});
        CHECK(shared.always_locked);
    }());
}

TEST_CASE("condition - a notification with nobody waiting is not remembered", "[condition]") {
    coring::testing::run_test([]() -> coring::task<> {
        notified_waiters shared;
        shared.c.notify_all();
        shared.c.notify_one();
        auto w = shared.start_waiter(1);
        co_await coring::sleep(5ms);
        CHECK(shared.order.empty());
        shared.c.notify_one();
        co_await w;
        CHECK(shared.order == std::vector<int>{1});
    }(), on_virtual_time);
}

TEST_CASE("condition - wait with a predicate: producer and consumers", "[condition]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::mutex m;
        coring::condition c;
        std::deque<int> items;
        std::vector<int> consumed;
        auto consumer = [](coring::mutex& mx, coring::condition& cv, std::deque<int>& q, std::vector<int>& out) -> coring::task<> {
            for (;;) {
                auto guard = co_await mx.scoped_lock();
                co_await cv.wait(guard, [&q] { return !q.empty(); });
                CHECK(guard.owns_lock());
                const int v = q.front();
                q.pop_front();
                if (v < 0) co_return;
                out.push_back(v);
            }
        };
        auto c1 = coring::create_task(consumer(m, c, items, consumed));
        auto c2 = coring::create_task(consumer(m, c, items, consumed));
        for (int i = 0; i < 100; ++i) {
            auto guard = co_await m.scoped_lock();
            items.push_back(i);
            c.notify_one();
            guard.unlock();
            if (i % 10 == 0) co_await coring::sleep(0s);
        }
        {
            auto guard = co_await m.scoped_lock();
            items.push_back(-1);
            items.push_back(-1);
            c.notify_all();
        }
        co_await c1;
        co_await c2;
        std::vector<int> expected;
        for (int i = 0; i < 100; ++i) expected.push_back(i);
        CHECK(consumed == expected);
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("condition - wait with a predicate that holds already does not wait", "[condition]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::mutex m;
        coring::condition c;
        auto guard = co_await m.scoped_lock();
        int calls = 0;
        co_await c.wait(guard, [&calls] {
            ++calls;
            return true;
        });
        CHECK(calls == 1);
        CHECK(guard.owns_lock());
    }());
}

TEST_CASE("condition - cancelled while waiting: re-acquires the lock before the cancel propagates", "[condition][cancel]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::mutex m;
        coring::condition c;
        std::vector<std::string> log;
        auto waiter = [](coring::mutex& mx, coring::condition& cv, std::vector<std::string>& l) -> coring::task<> {
            auto guard = co_await mx.scoped_lock();
            try {
                co_await cv.wait(guard);
            } catch (const coring::cancelled_error&) {
                l.push_back(guard.owns_lock() && mx.locked() ? "cancelled holding the lock" : "cancelled WITHOUT the lock");
                throw;
            }
        };
        auto w = coring::create_task(waiter(m, c, log));
        co_await coring::sleep(0s);
        {
            auto guard = co_await m.scoped_lock();
            w.cancel();
            co_await coring::sleep(5ms);
            CHECK(log.empty());  // the waiter waits for the lock before it may throw
            log.push_back("holder unlocks");
        }
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(w);
        CHECK(cancelled);
        CHECK(log == std::vector<std::string>{"holder unlocks", "cancelled holding the lock"});
        CHECK_FALSE(m.locked());
        // The cancelled waiter took no notification: a new waiter gets the next one.
        std::vector<int> order;
        bool always_locked = true;
        auto next = coring::create_task(wait_once(m, c, order, 2, always_locked));
        co_await coring::sleep(0s);
        c.notify_one();
        co_await next;
        CHECK(order == std::vector<int>{2});
    }(), on_virtual_time);
    CHECK(live_frames() == frames_before);
}

TEST_CASE("condition - cancelled after notify: passes the notification on and still re-acquires the lock", "[condition][cancel]") {
    coring::testing::run_test([]() -> coring::task<> {
        notified_waiters shared;
        auto a = shared.start_waiter(1);
        auto b = shared.start_waiter(2);
        auto c3 = shared.start_waiter(3);
        co_await coring::sleep(0s);
        {
            auto guard = co_await shared.m.scoped_lock();
            shared.c.notify_one();  // a is notified...
            a.cancel();      // ...and cancelled before it resumed: b gets the notification
            co_await coring::sleep(5ms);
            CHECK_FALSE(a.done());  // a cannot throw before it has the lock again
        }
        const bool a_cancelled = co_await coring_test::throws<coring::cancelled_error>(a);
        CHECK(a_cancelled);
        co_await b;
        CHECK(shared.order == std::vector<int>{2});
        CHECK_FALSE(c3.done());  // exactly one notification was delivered
        shared.c.notify_one();
        co_await c3;
        CHECK(shared.order == std::vector<int>{2, 3});
        CHECK(shared.always_locked);
    }(), on_virtual_time);
}

TEST_CASE("condition - cancelled after notify, with the lock free: takes the lock when it runs, passes the notification", "[condition][cancel]") {
    coring::testing::run_test([]() -> coring::task<> {
        notified_waiters shared;
        auto a = shared.start_waiter(1);
        auto b = shared.start_waiter(2);
        co_await coring::sleep(0s);
        shared.c.notify_one();  // the lock is free: a takes it when it runs, as asyncio's waiter does
        CHECK_FALSE(shared.m.locked());
        a.cancel();  // a still takes the lock before the cancel propagates (its guard then releases it)
        const bool a_cancelled = co_await coring_test::throws<coring::cancelled_error>(a);
        CHECK(a_cancelled);
        co_await b;  // b got a's notification and the lock after a's guard released it
        CHECK(shared.order == std::vector<int>{2});
        CHECK_FALSE(shared.m.locked());
    }());
}

TEST_CASE("condition - a pending cancel is delivered before the lock is released", "[condition][cancel]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::mutex m;
        coring::condition c;
        auto body = [](coring::mutex& mx, coring::condition& cv, bool& held) -> coring::task<> {
            auto guard = co_await mx.scoped_lock();
            coring::current_task().cancel();
            try {
                co_await cv.wait(guard);
            } catch (const coring::cancelled_error&) {
                held = guard.owns_lock() && mx.locked();
                throw;
            }
        };
        bool held = false;
        auto h = coring::create_task(body(m, c, held));
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(cancelled);
        CHECK(held);
        CHECK_FALSE(m.locked());
    }());
}

TEST_CASE("condition - notify_all to 100,000 waiters: each re-acquires the lock in turn, flat stack", "[condition][stack]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        constexpr int n = 100'000;
        coring::mutex m;
        coring::condition c;
        int expected = 0;
        bool in_order = true;
        bool exclusive = true;
        int inside = 0;
        auto wait_one = [](coring::mutex& mx, coring::condition& cv, int id, int& exp, bool& ordered, int& in, bool& excl) -> coring::task<> {
            auto guard = co_await mx.scoped_lock();
            co_await cv.wait(guard);
            if (++in != 1) excl = false;
            if (id != exp) ordered = false;
            ++exp;
            --in;
        };
        std::vector<coring::task_handle<>> tasks;
        tasks.reserve(n);
        for (int i = 0; i < n; ++i) tasks.push_back(coring::create_task(wait_one(m, c, i, expected, in_order, inside, exclusive)));
        co_await coring::sleep(0s);
        {
            auto guard = co_await m.scoped_lock();
            c.notify_all();
        }
        for (auto& t : tasks) co_await t;
        CHECK(expected == n);
        CHECK(in_order);
        CHECK(exclusive);
        CHECK_FALSE(m.locked());
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("condition - destroyed while tasks wait on it: reported loudly", "[condition]") {
    auto [status, text] = coring_test::run_in_child([] {
        int consistent_errors = 0;
        coring::run([](int& errs) -> coring::task<> {
            coring::mutex m;
            auto* c = new coring::condition;
            auto waiter = [](coring::mutex& mx, coring::condition& cv, int& e) -> coring::task<> {
                auto guard = co_await mx.scoped_lock();
                try {
                    co_await cv.wait(guard);
                } catch (const coring::invalid_state_error&) {
                    // The lock was released for the wait and not taken back: the guard knows.
                    if (!guard.owns_lock() && !mx.locked()) ++e;
                }
            };
            auto a = coring::create_task(waiter(m, *c, errs));
            auto b = coring::create_task(waiter(m, *c, errs));
            co_await coring::sleep(0s);
            delete c;  // the bug: two tasks still wait on it
            co_await a;
            co_await b;
        }(consistent_errors));
        std::printf("child finished: %d invalid_state_errors, guards consistent\n", consistent_errors);
    });
    INFO(text);
    CHECK(text.find("coring::condition was destroyed while 2 tasks still waited on it") != std::string::npos);
    CHECK(coring_test::stopped_by_assertion_or_exited_cleanly(status));
#ifdef NDEBUG
    CHECK(text.find("child finished: 2 invalid_state_errors, guards consistent") != std::string::npos);
#endif
}

// CPython's test_locks.py, ConditionTests.test_notify and test_notify_all, translated: after a
// notify and the notifier's unlock, the notified waiters each take and release the lock in turn
// within one loop iteration (one sleep(0) of the notifier).
TEST_CASE("condition - notified waiters all run within the next iteration (CPython test_notify)", "[condition][cpython]") {
    coring::testing::run_test([]() -> coring::task<> {
        notified_waiters shared;
        std::vector<coring::task_handle<>> tasks;
        for (int id = 1; id <= 3; ++id) tasks.push_back(shared.start_waiter(id));
        co_await coring::sleep(0s);
        CHECK(shared.order.empty());
        {
            auto guard = co_await shared.m.scoped_lock();
            shared.c.notify(1);
        }
        co_await coring::sleep(0s);
        CHECK(shared.order == std::vector<int>{1});
        {
            auto guard = co_await shared.m.scoped_lock();
            shared.c.notify(1);
            shared.c.notify(2048);
        }
        co_await coring::sleep(0s);
        CHECK(shared.order == std::vector<int>{1, 2, 3});
        for (auto& t : tasks) co_await t;
        CHECK(shared.always_locked);
    }());
}

TEST_CASE("condition - notify_all: every waiter runs within the next iteration (CPython test_notify_all)", "[condition][cpython]") {
    coring::testing::run_test([]() -> coring::task<> {
        notified_waiters shared;
        std::vector<coring::task_handle<>> tasks;
        for (int id = 1; id <= 3; ++id) tasks.push_back(shared.start_waiter(id));
        co_await coring::sleep(0s);
        {
            auto guard = co_await shared.m.scoped_lock();
            shared.c.notify_all();
        }
        co_await coring::sleep(0s);
        CHECK(shared.order == std::vector<int>{1, 2, 3});
        for (auto& t : tasks) co_await t;
        CHECK(shared.always_locked);
    }());
}
