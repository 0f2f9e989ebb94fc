// Tests of coring/sync/semaphore.hpp: semaphore and bounded_semaphore: the bound under 1,000
// tasks, FIFO, permits, over-release, cancellation, the 100,000-waiter hand-off.
#include <coring/sync/semaphore.hpp>

#include <coring/task_handle.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <algorithm>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;

static_assert(!std::is_copy_constructible_v<coring::semaphore> && !std::is_move_constructible_v<coring::semaphore>);
static_assert(std::is_base_of_v<coring::semaphore, coring::bounded_semaphore>);
static_assert(std::is_nothrow_move_constructible_v<coring::semaphore_permit>);

namespace {

coring::task<> acquirer(coring::semaphore& s, std::vector<int>& order, int id) {
    co_await s.acquire();
    order.push_back(id);
    s.release();
}

}  // namespace

TEST_CASE("semaphore - acquiring counts the permits down to locked", "[semaphore]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::semaphore s(2);
        CHECK(s.value() == 2);
        CHECK_FALSE(s.locked());
        CHECK(s.try_acquire());
        co_await s.acquire();  // a permit is left: no suspension
        CHECK(s.value() == 0);
        CHECK(s.locked());
        CHECK_FALSE(s.try_acquire());
    }());
}

TEST_CASE("semaphore - an unbounded semaphore may be released above its initial value", "[semaphore]") {
    coring::semaphore s(2);
    REQUIRE(s.try_acquire());
    REQUIRE(s.try_acquire());
    s.release();
    s.release();
    s.release();
    CHECK(s.value() == 3);
}

TEST_CASE("semaphore - a default semaphore has one permit", "[semaphore]") {
    coring::semaphore defaulted;
    CHECK(defaulted.value() == 1);
}

TEST_CASE("semaphore - a negative initial value is an invalid_argument", "[semaphore]") {
    CHECK_THROWS_AS(coring::semaphore(-1), std::invalid_argument);
    CHECK_THROWS_AS(coring::bounded_semaphore(-1), std::invalid_argument);
}

TEST_CASE("semaphore - at most N of 1,000 tasks hold a permit at a time", "[semaphore]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        constexpr int limit = 10;
        coring::semaphore s(limit);
        int inside = 0;
        int max_inside = 0;
        int done = 0;
        auto worker = [](coring::semaphore& sem, int id, int& in, int& max_in, int& finished) -> coring::task<> {
            auto permit = co_await sem.scoped_acquire();
            ++in;
            max_in = std::max(max_in, in);
            for (int i = 0; i < id % 4; ++i) co_await coring::sleep(0s);
            if (id % 97 == 0) co_await coring::sleep(1ms);
            --in;
            ++finished;
        };
        std::vector<coring::task_handle<>> tasks;
        for (int i = 0; i < 1000; ++i) tasks.push_back(coring::create_task(worker(s, i, inside, max_inside, done)));
        for (auto& t : tasks) co_await t;
        CHECK(done == 1000);
        CHECK(max_inside == limit);
        CHECK(s.value() == limit);
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("semaphore - a release with a waiter hands the permit over: no barging", "[semaphore]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::semaphore s(0);
        std::vector<int> order;
        auto waiter = coring::create_task(acquirer(s, order, 0));
        co_await coring::sleep(0s);
        s.release();  // handed to the waiter, which has not resumed yet
        CHECK(s.value() == 0);
        CHECK_FALSE(s.try_acquire());
        co_await waiter;
        CHECK(order == std::vector<int>{0});
    }());
}

TEST_CASE("semaphore - waiters get permits first-in first-out", "[semaphore]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::semaphore s(0);
        std::vector<int> order;
        std::vector<coring::task_handle<>> tasks;
        for (int i = 0; i < 20; ++i) tasks.push_back(coring::create_task(acquirer(s, order, i)));
        co_await coring::sleep(0s);
        s.release();
        for (auto& t : tasks) co_await t;
        std::vector<int> expected;
        for (int i = 0; i < 20; ++i) expected.push_back(i);
        CHECK(order == expected);
        CHECK(s.value() == 1);
    }());
}

TEST_CASE("semaphore_permit - the permit of scoped_acquire is released at scope exit", "[semaphore]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::semaphore s(1);
        {
            auto permit = co_await s.scoped_acquire();
            CHECK(permit.owns_permit());
            CHECK(s.value() == 0);
        }
        CHECK(s.value() == 1);
    }());
}

TEST_CASE("semaphore_permit - release() gives the permit back early, once", "[semaphore]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::semaphore s(1);
        {
            auto permit = co_await s.scoped_acquire();
            permit.release();
            CHECK_FALSE(permit);
            CHECK(s.value() == 1);
            CHECK_THROWS_AS(permit.release(), coring::invalid_state_error);
        }
        CHECK(s.value() == 1);
    }());
}

TEST_CASE("semaphore_permit - a move carries the permit; it is released once", "[semaphore]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::semaphore s(1);
        {
            auto first = co_await s.scoped_acquire();
            coring::semaphore_permit second(std::move(first));
            CHECK_FALSE(first.owns_permit());  // NOLINT(bugprone-use-after-move): moved-from state is specified
            coring::semaphore_permit third;
            third = std::move(second);
            CHECK(third.owns_permit());
            CHECK(s.value() == 0);
        }
        CHECK(s.value() == 1);
    }());
}

TEST_CASE("semaphore_permit - a permit made from a semaphore adopts a permit already taken", "[semaphore]") {
    coring::semaphore s(1);
    {
        REQUIRE(s.try_acquire());
        coring::semaphore_permit adopted(s);
        CHECK(s.value() == 0);
    }
    CHECK(s.value() == 1);
}

TEST_CASE("bounded_semaphore - releasing more than acquired throws std::logic_error", "[semaphore]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::bounded_semaphore s(2);
        CHECK_THROWS_AS(s.release(), std::logic_error);
        co_await s.acquire();
        s.release();
        CHECK_THROWS_AS(s.release(), std::logic_error);
        CHECK(s.value() == 2);
        {
            auto permit = co_await s.scoped_acquire();
            CHECK(s.value() == 1);
        }
        CHECK(s.value() == 2);
        coring::semaphore& as_base = s;  // the bound holds through the base class too
        CHECK_THROWS_AS(as_base.release(), std::logic_error);

        coring::bounded_semaphore zero(0);
        CHECK_THROWS_AS(zero.release(), std::logic_error);
    }());
}

TEST_CASE("semaphore - a waiter cancelled in the iteration it got a permit passes it on", "[semaphore][cancel]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::bounded_semaphore s(2);
        std::vector<int> order;
        co_await s.acquire();
        co_await s.acquire();
        auto a = coring::create_task(acquirer(s, order, 1));
        auto b = coring::create_task(acquirer(s, order, 2));
        auto c = coring::create_task(acquirer(s, order, 3));
        co_await coring::sleep(0s);
        s.release();  // to a
        s.release();  // to b
        a.cancel();   // a passes its permit to c
        b.cancel();   // b has nobody to pass it to: back to the counter
        CHECK(s.value() == 1);
        const bool a_cancelled = co_await coring_test::throws<coring::cancelled_error>(a);
        const bool b_cancelled = co_await coring_test::throws<coring::cancelled_error>(b);
        CHECK(a_cancelled);
        CHECK(b_cancelled);
        co_await c;
        CHECK(order == std::vector<int>{3});
        CHECK(s.value() == 2);  // every permit came back: none lost, none duplicated
    }());
}

TEST_CASE("semaphore - a waiter cancelled while waiting takes no permit; the others keep their order", "[semaphore][cancel]") {
    // The waiters' list holds the granted ones first, then the waiting ones from its split on:
    // b is the first waiting one (the split) when it leaves, with a granted before it.
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        coring::bounded_semaphore s(1);
        std::vector<int> order;
        co_await s.acquire();
        auto a = coring::create_task(acquirer(s, order, 1));
        auto b = coring::create_task(acquirer(s, order, 2));
        auto c = coring::create_task(acquirer(s, order, 3));
        auto d = coring::create_task(acquirer(s, order, 4));
        co_await coring::sleep(0s);
        s.release();  // to a, which is queued to resume
        b.cancel();   // b was waiting: it takes nothing; c is first now
        const bool b_cancelled = co_await coring_test::throws<coring::cancelled_error>(b);
        CHECK(b_cancelled);
        co_await a;  // a releases: to c, then c to d
        co_await c;
        co_await d;
        CHECK(order == std::vector<int>{1, 3, 4});
        CHECK(s.value() == 1);  // no permit went with b
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("semaphore - handing permits to 100,000 queued waiters does not grow the stack", "[semaphore][stack]") {
    const auto frames_before = live_frames();
    coring::testing::run_test([]() -> coring::task<> {
        constexpr int n = 100'000;
        coring::semaphore s(0);
        int expected = 0;
        bool in_order = true;
        auto wait_one = [](coring::semaphore& sem, int id, int& exp, bool& ordered) -> coring::task<> {
            co_await sem.acquire();
            if (id != exp) ordered = false;
            ++exp;
            sem.release();
        };
        std::vector<coring::task_handle<>> tasks;
        tasks.reserve(n);
        for (int i = 0; i < n; ++i) tasks.push_back(coring::create_task(wait_one(s, i, expected, in_order)));
        co_await coring::sleep(0s);
        s.release();
        for (auto& t : tasks) co_await t;
        CHECK(expected == n);
        CHECK(in_order);
        CHECK(s.value() == 1);
    }());
    CHECK(live_frames() == frames_before);
}

// CPython's test_locks.py, SemaphoreTests.test_acquire_fifo_order_2 and _3, translated.
TEST_CASE("semaphore - a task that releases and acquires again queues behind the tasks handed a permit (CPython)", "[semaphore][cpython]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::semaphore sem(1);
        std::vector<int> result;
        auto c1 = [](coring::semaphore& s, std::vector<int>& r) -> coring::task<> {
            co_await s.acquire();
            r.push_back(1);
        };
        auto c2 = [](coring::semaphore& s, std::vector<int>& r) -> coring::task<> {
            co_await s.acquire();
            r.push_back(2);
            s.release();
            co_await s.acquire();
            r.push_back(4);
        };
        auto c3 = [](coring::semaphore& s, std::vector<int>& r) -> coring::task<> {
            co_await s.acquire();
            r.push_back(3);
        };
        auto t1 = coring::create_task(c1(sem, result));
        auto t2 = coring::create_task(c2(sem, result));
        auto t3 = coring::create_task(c3(sem, result));
        co_await coring::sleep(0s);
        sem.release();
        sem.release();
        co_await t1;
        co_await t2;
        co_await t3;
        CHECK(result == std::vector<int>{1, 2, 3, 4});
    }());
}

TEST_CASE("semaphore - a waiter cancelled before its turn is skipped (CPython test_acquire_fifo_order_3)", "[semaphore][cpython]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::semaphore sem(0);
        std::vector<int> result;
        auto c = [](coring::semaphore& s, std::vector<int>& r, int id) -> coring::task<> {
            co_await s.acquire();
            r.push_back(id);
        };
        auto t1 = coring::create_task(c(sem, result, 1));
        auto t2 = coring::create_task(c(sem, result, 2));
        auto t3 = coring::create_task(c(sem, result, 3));
        co_await coring::sleep(0s);
        t1.cancel();
        co_await coring::sleep(0s);
        sem.release();
        sem.release();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(t1);
        CHECK(cancelled);
        co_await t2;
        co_await t3;
        CHECK(result == std::vector<int>{2, 3});
        CHECK(sem.value() == 0);
    }());
}

TEST_CASE("semaphore - locked() while tasks handed a permit have not resumed, as asyncio's", "[semaphore]") {
    coring::testing::run_test([]() -> coring::task<> {
        coring::semaphore s(0);
        std::vector<int> order;
        auto waiter = coring::create_task(acquirer(s, order, 0));
        co_await coring::sleep(0s);
        s.release();  // handed over; the waiter has not resumed
        s.release();  // a second permit, kept: the semaphore is locked while the first is on its way
        CHECK(s.value() == 1);
        CHECK(s.locked());
        CHECK_FALSE(s.try_acquire());
        co_await waiter;  // it resumed (and released its permit)
        CHECK(s.value() == 2);
        CHECK_FALSE(s.locked());
        CHECK(s.try_acquire());
    }());
}
