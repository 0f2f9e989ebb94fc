// CPython's own tests of asyncio.Barrier (Lib/test/test_asyncio/test_locks.py, BarrierTests),
// translated case by case into coring. They pin down asyncio's four barrier states: filling,
// draining (the released tasks leave before new arrivals may enter), resetting and broken.
// Left out: test_barrier and test_repr (Python's repr and `await barrier`), and
// test_barrier_parties' negative count (a size_t here).
//
// Mapping: `async with barrier as i` -> `i = co_await b.wait()`; `await barrier.reset()` and
// `await barrier.abort()` -> b.reset() and b.abort() (plain functions in coring);
// BrokenBarrierError -> broken_barrier_error; self.N = 5 unless a case sets it.
#include <coring/coring.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr std::size_t N = 5;

// BarrierTests.make_tasks: n tasks of `coro`, created in order.
template <class Coro>
std::vector<coring::task_handle<>> make_tasks(std::size_t n, Coro& coro) {
    std::vector<coring::task_handle<>> tasks;
    for (std::size_t i = 0; i < n; ++i) tasks.push_back(coring::create_task(coro()));
    return tasks;
}

// asyncio.gather(*tasks) without return_exceptions: every task must succeed.
coring::task<> gather_all(std::vector<coring::task_handle<>>& tasks) {
    for (auto& t : tasks) co_await t;
}

// BarrierTests.gather_tasks.
template <class Coro>
coring::task<> gather_tasks(std::size_t n, Coro& coro) {
    auto tasks = make_tasks(n, coro);
    co_await gather_all(tasks);
}

std::size_t count_true(const std::vector<bool>& v) { return static_cast<std::size_t>(std::count(v.begin(), v.end(), true)); }

}  // namespace

TEST_CASE("test_barrier_parties: no parties is an invalid_argument", "[cpython][barrier]") {
    CHECK_THROWS_AS(coring::barrier(0), std::invalid_argument);
    CHECK(coring::barrier(N).parties() == N);
}

TEST_CASE("test_context_manager: three tasks pass with indices 0, 1, 2", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(3);
        std::vector<std::size_t> results;
        auto coro = [&]() -> coring::task<> { results.push_back(co_await barrier.wait()); };
        co_await gather_tasks(3, coro);
        std::sort(results.begin(), results.end());
        CHECK(results == std::vector<std::size_t>{0, 1, 2});
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_filling_one_task: a barrier of one passes at once", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(1);
        const std::size_t i = co_await barrier.wait();
        CHECK(i == 0);
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_filling_one_task_twice: two tasks on a barrier of one get the same index", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(1);
        auto wait = [&]() -> coring::task<std::size_t> { co_return co_await barrier.wait(); };
        auto t1 = coring::create_task(wait());
        co_await coring::sleep(0s);
        CHECK(barrier.n_waiting() == 0);
        auto t2 = coring::create_task(wait());
        co_await coring::sleep(0s);
        REQUIRE(t1.done());
        REQUIRE(t2.done());
        CHECK(t1.result() == t2.result());
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_filling_task_by_task: n_waiting counts the arrivals", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(3);
        auto wait = [&]() -> coring::task<> { (void)co_await barrier.wait(); };
        auto t1 = coring::create_task(wait());
        co_await coring::sleep(0s);
        CHECK(barrier.n_waiting() == 1);
        auto t2 = coring::create_task(wait());
        co_await coring::sleep(0s);
        CHECK(barrier.n_waiting() == 2);
        auto t3 = coring::create_task(wait());
        co_await coring::sleep(0s);
        co_await t1;
        co_await t2;
        co_await t3;
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_filling_tasks_wait_twice: two cycles in a row", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(N);
        std::vector<bool> results;
        auto coro = [&]() -> coring::task<> {
            (void)co_await barrier.wait();
            results.push_back(true);
            (void)co_await barrier.wait();
            results.push_back(false);
        };
        co_await gather_tasks(N, coro);
        CHECK(results.size() == N * 2);
        CHECK(count_true(results) == N);
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_filling_tasks_check_return_value: each cycle hands out 0 .. N-1", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(N);
        std::size_t results1 = 0;
        std::vector<std::size_t> res;
        auto coro = [&]() -> coring::task<> {
            (void)co_await barrier.wait();
            ++results1;
            res.push_back(co_await barrier.wait());
        };
        co_await gather_tasks(N, coro);
        CHECK(results1 == N);
        std::sort(res.begin(), res.end());
        std::vector<std::size_t> expected(N);
        std::iota(expected.begin(), expected.end(), std::size_t{0});
        CHECK(res == expected);
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

// test_draining_state reads the state from repr(). Here a probe arrives eagerly as each task
// leaves: while the barrier drains, the probe is held outside (n_waiting() stays 0); once the
// last task has left, it enters the next cycle.
TEST_CASE("test_draining_state: the barrier drains until the last released task has left", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(N);
        std::vector<bool> draining;  // per leaving task, in the order they leave
        auto arrive = [](coring::barrier& b) -> coring::task<> { (void)co_await b.wait(); };
        auto coro = [&]() -> coring::task<> {
            (void)co_await barrier.wait();
            auto probe = coring::create_task(arrive(barrier), {.eager_start = true});
            draining.push_back(barrier.n_waiting() == 0);
            probe.cancel();
            const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(probe);
            CHECK(cancelled);
        };
        co_await gather_tasks(N, coro);
        std::vector<bool> expected(N, true);
        expected.back() = false;
        CHECK(draining == expected);
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_blocking_tasks_while_draining: arrivals during the drain wait for the next cycle", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        constexpr std::size_t rewait = 2;
        coring::barrier barrier(N);
        coring::barrier barrier_nowaiting(N - rewait);
        std::size_t rewait_n = rewait;
        auto coro = [&]() -> coring::task<> {
            (void)co_await barrier.wait();  // first time waiting
            if (rewait_n > 0) {
                --rewait_n;
                (void)co_await barrier.wait();  // wait again only for rewait tasks
            } else {
                (void)co_await barrier_nowaiting.wait();  // wait for the end of draining
                (void)co_await barrier.wait();            // wait for the other waiting tasks
            }
        };
        // A success means that barrier_nowaiting was waited for exactly N - rewait times: the
        // two early re-arrivals did not complete a cycle with the three still leaving.
        co_await gather_tasks(N, coro);
        CHECK(barrier.n_waiting() == 0);
    }());
}

TEST_CASE("test_filling_tasks_cancel_one: a cancelled arrival no longer counts", "[cpython][barrier][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(3);
        std::size_t results = 0;
        auto coro = [&]() -> coring::task<> {
            (void)co_await barrier.wait();
            ++results;
        };
        auto t1 = coring::create_task(coro());
        co_await coring::sleep(0s);
        CHECK(barrier.n_waiting() == 1);
        auto t2 = coring::create_task(coro());
        co_await coring::sleep(0s);
        CHECK(barrier.n_waiting() == 2);
        t1.cancel();
        co_await coring::sleep(0s);
        CHECK(barrier.n_waiting() == 1);
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(t1);
        CHECK(cancelled);
        CHECK(t1.cancelled());
        auto t3 = coring::create_task(coro());
        co_await coring::sleep(0s);
        CHECK(barrier.n_waiting() == 2);
        auto t4 = coring::create_task(coro());
        co_await t2;
        co_await t3;
        co_await t4;
        CHECK(results == 3);
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_reset_barrier: resetting an empty barrier", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(1);
        barrier.reset();
        co_await coring::sleep(0s);
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_reset_barrier_while_tasks_waiting: the waiters are broken", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(N);
        std::size_t results = 0;
        auto coro = [&]() -> coring::task<> {
            try {
                (void)co_await barrier.wait();
            } catch (const coring::broken_barrier_error&) {
                ++results;
            }
        };
        auto tasks = make_tasks(N - 1, coro);
        co_await coring::sleep(0s);
        auto resetter = coring::create_task([](coring::barrier& b) -> coring::task<> {
            b.reset();
            co_return;
        }(barrier));
        co_await gather_all(tasks);
        co_await resetter;
        CHECK(results == N - 1);
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_reset_barrier_when_tasks_half_draining: a reset breaks the tasks not yet left", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(N);
        std::vector<bool> results1;
        constexpr std::size_t rest_of_tasks = N / 2;
        std::size_t left = 0;  // asyncio reads barrier._count, the tasks still inside: N - left
        auto coro = [&]() -> coring::task<> {
            try {
                (void)co_await barrier.wait();
            } catch (const coring::broken_barrier_error&) {
                results1.push_back(true);  // the tasks still inside
                co_return;
            }
            ++left;
            if (N - left == rest_of_tasks) barrier.reset();
        };
        co_await gather_tasks(N, coro);
        CHECK(results1 == std::vector<bool>(rest_of_tasks, true));
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_reset_barrier_when_tasks_half_draining_half_blocking: blocked arrivals survive the reset", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(N);
        std::vector<bool> results1;
        std::vector<bool> results2;
        constexpr std::size_t blocking_tasks = N / 2;
        std::size_t count = 0;
        auto coro = [&]() -> coring::task<> {
            bool broken = false;
            try {
                (void)co_await barrier.wait();
            } catch (const coring::broken_barrier_error&) {
                broken = true;
            }
            if (broken) {
                results1.push_back(true);  // the tasks still waiting to leave
                (void)co_await barrier.wait();
                co_return;
            }
            ++count;
            if (count > blocking_tasks) {
                barrier.reset();  // the tasks that have not left yet are broken
                (void)co_await barrier.wait();
                co_return;
            }
            try {
                (void)co_await barrier.wait();  // blocked until the drain ends: not broken
            } catch (const coring::broken_barrier_error&) {
                results2.push_back(true);
            }
        };
        co_await gather_tasks(N, coro);
        CHECK(results1 == std::vector<bool>(blocking_tasks, true));
        CHECK(results2.empty());
        CHECK(barrier.n_waiting() == 0);
        CHECK_FALSE(barrier.broken());
    }());
}

TEST_CASE("test_reset_barrier_while_tasks_waiting_and_waiting_again: broken tasks wait again", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(N);
        std::vector<bool> results1;
        std::vector<bool> results2;
        auto coro1 = [&]() -> coring::task<> {
            try {
                (void)co_await barrier.wait();
            } catch (const coring::broken_barrier_error&) {
                results1.push_back(true);
            }
            (void)co_await barrier.wait();  // the `finally`
            results2.push_back(true);
        };
        auto coro2 = [&]() -> coring::task<> {
            (void)co_await barrier.wait();
            results2.push_back(true);
        };
        auto tasks = make_tasks(N - 1, coro1);
        auto resetter = coring::create_task([](coring::barrier& b) -> coring::task<> {
            b.reset();
            co_return;
        }(barrier));
        co_await coring::sleep(0s);
        auto last = coring::create_task(coro2());
        co_await gather_all(tasks);
        co_await resetter;
        co_await last;
        CHECK_FALSE(barrier.broken());
        CHECK(results1 == std::vector<bool>(N - 1, true));
        CHECK(results2 == std::vector<bool>(N, true));
        CHECK(barrier.n_waiting() == 0);
    }());
}

TEST_CASE("test_reset_barrier_while_tasks_draining: a reset once all have left breaks nobody", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(N);
        std::vector<bool> results1;
        std::vector<bool> results2;
        std::vector<bool> results3;
        std::size_t count = 0;
        auto coro = [&]() -> coring::task<> {
            (void)co_await barrier.wait();
            ++count;
            if (count == N) {
                barrier.reset();  // the last task out: the barrier is empty
                (void)co_await barrier.wait();
            } else {
                try {
                    (void)co_await barrier.wait();  // second waiting
                    results1.push_back(true);
                } catch (const std::exception&) {
                    results2.push_back(true);  // never here
                }
            }
            (void)co_await barrier.wait();  // pass the barrier again
            results3.push_back(true);
        };
        co_await gather_tasks(N, coro);
        CHECK_FALSE(barrier.broken());
        CHECK(results1 == std::vector<bool>(N - 1, true));
        CHECK(results2.empty());
        CHECK(results3 == std::vector<bool>(N, true));
        CHECK(barrier.n_waiting() == 0);
    }());
}

TEST_CASE("test_abort_barrier: aborting an empty barrier breaks it", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(1);
        barrier.abort();
        co_await coring::sleep(0s);
        CHECK(barrier.n_waiting() == 0);
        CHECK(barrier.broken());
    }());
}

TEST_CASE("test_abort_barrier_when_tasks_half_draining_half_blocking: abort breaks leaving and blocked tasks", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(N);
        std::vector<bool> results1;
        std::vector<bool> results2;
        constexpr std::size_t blocking_tasks = N / 2;
        std::size_t count = 0;
        auto coro = [&]() -> coring::task<> {
            try {
                (void)co_await barrier.wait();
            } catch (const coring::broken_barrier_error&) {
                results1.push_back(true);  // the tasks waiting to leave
                co_return;
            }
            ++count;
            if (count > blocking_tasks) {
                barrier.abort();
                co_return;
            }
            try {
                (void)co_await barrier.wait();
            } catch (const coring::broken_barrier_error&) {
                results2.push_back(true);  // the blocked tasks
            }
        };
        co_await gather_tasks(N, coro);
        CHECK(barrier.broken());
        CHECK(results1 == std::vector<bool>(blocking_tasks, true));
        CHECK(results2 == std::vector<bool>(N - blocking_tasks - 1, true));
        CHECK(barrier.n_waiting() == 0);
    }());
}

TEST_CASE("test_abort_barrier_when_exception: a failing party aborts, the others are broken", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier(N);
        std::vector<bool> results1;
        std::vector<bool> results2;
        auto coro = [&]() -> coring::task<> {
            bool failed = false;
            try {
                const std::size_t i = co_await barrier.wait();
                if (i == N / 2) throw std::runtime_error("RuntimeError");
                (void)co_await barrier.wait();
                results1.push_back(true);
            } catch (const coring::broken_barrier_error&) {
                results2.push_back(true);
            } catch (const std::runtime_error&) {
                failed = true;
            }
            if (failed) barrier.abort();
        };
        co_await gather_tasks(N, coro);
        CHECK(barrier.broken());
        CHECK(results1.empty());
        CHECK(results2 == std::vector<bool>(N - 1, true));
        CHECK(barrier.n_waiting() == 0);
    }());
}

TEST_CASE("test_abort_barrier_when_exception_then_resetting: reset mends the aborted barrier", "[cpython][barrier]") {
    coring::run([]() -> coring::task<> {
        coring::barrier barrier1(N);
        coring::barrier barrier2(N);
        std::vector<bool> results1;
        std::vector<bool> results2;
        std::vector<bool> results3;
        auto coro = [&]() -> coring::task<> {
            bool failed = false;
            try {
                const std::size_t i = co_await barrier1.wait();
                if (i == N / 2) throw std::runtime_error("RuntimeError");
                (void)co_await barrier1.wait();
                results1.push_back(true);
            } catch (const coring::broken_barrier_error&) {
                results2.push_back(true);
            } catch (const std::runtime_error&) {
                failed = true;
            }
            if (failed) barrier1.abort();
            // Synchronise and reset the barrier: first so that everyone has left it when it is
            // reset, and after so that no one enters it before the reset.
            const std::size_t i = co_await barrier2.wait();
            if (i == N / 2) barrier1.reset();
            (void)co_await barrier2.wait();
            (void)co_await barrier1.wait();
            results3.push_back(true);
        };
        co_await gather_tasks(N, coro);
        CHECK_FALSE(barrier1.broken());
        CHECK(results1.empty());
        CHECK(results2 == std::vector<bool>(N - 1, true));
        CHECK(results3 == std::vector<bool>(N, true));
        CHECK(barrier1.n_waiting() == 0);
    }());
}
