// CPython's own tests of asyncio tasks (Lib/test/test_asyncio/test_tasks.py), translated case by
// case into coring: the cases about cancellation of tasks and futures, current_task, wait,
// as_completed, shield and gather. Cases that test Python-only things (coroutine objects, repr,
// call_soon internals, exception chaining, contextvars, eager tasks, cancel messages,
// cancelling()/uncancel(), loop policies, mocks of the loop) are left out.
//
// Mapping: a Task -> task_handle (create_task), a Future -> coring::future, CancelledError ->
// cancelled_error, TimeoutError -> timeout_error, InvalidStateError -> invalid_state_error,
// RuntimeError for misuse -> std::logic_error / invalid_state_error, ValueError ->
// std::invalid_argument. CPython's test loop (new_test_loop: time moves only to the next timer)
// is a loop on virtual time; the other cases run on real time with durations of tens of ms.
// test_utils.run_briefly (one iteration) is sleep(0); GatherTestsBase._run_loop (until nothing
// is ready) is a few of them.
#include <coring/coring.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::throws;

namespace {

// CPython's new_test_loop(): the clock moves only when the loop jumps to the next timer.
constexpr coring::loop_options test_loop{.virtual_time = true};

// test_utils.run_briefly: lets the loop run one iteration.
coring::task<> run_briefly() { co_await coring::sleep(0s); }

// GatherTestsBase._run_loop: runs until nothing is ready (a few iterations are enough here).
coring::task<> run_loop() {
    for (int i = 0; i < 10; ++i) co_await coring::sleep(0s);
}

// asyncio.sleep(d) handed to create_task.
coring::task<> sleep_for(std::chrono::milliseconds d) { co_await coring::sleep(d); }

// asyncio.sleep(d, result).
template <class T>
coring::task<T> sleep_then(std::chrono::milliseconds d, T result) {
    co_await coring::sleep(d);
    co_return result;
}

// The loop's time since `t0` is `expected` (assertAlmostEqual on a test loop's time()).
bool almost_equal(coring::clock::duration elapsed, std::chrono::milliseconds expected) {
    const auto diff = elapsed - std::chrono::duration_cast<coring::clock::duration>(expected);
    return std::chrono::abs(diff) < 1ms;
}

// The same tasks, whatever the order (asyncio.wait returns sets).
template <class H>
bool same_tasks(std::vector<H> got, std::vector<H> want) {
    auto by_state = [](const H& x, const H& y) { return x.native_state() < y.native_state(); };
    std::sort(got.begin(), got.end(), by_state);
    std::sort(want.begin(), want.end(), by_state);
    return got == want;
}

bool is_cancellation(const std::exception_ptr& error) {
    if (!error) return false;
    try {
        std::rethrow_exception(error);
    } catch (const coring::cancelled_error&) {
        return true;
    } catch (...) {
        return false;
    }
}

struct zero_division_error : std::runtime_error {
    zero_division_error() : std::runtime_error("ZeroDivisionError") {}
};

// Like SystemExit, not a std::exception (SystemExit is not an Exception).
struct system_exit {};

}  // namespace

// ============================================================================ task cancellation

// CPython Lib/test/test_asyncio/test_tasks.py: test_task_awaits_on_itself
TEST_CASE("test_task_awaits_on_itself: a task awaiting its own handle fails with invalid_state_error", "[cpython][task]") {
    coring::run([]() -> coring::task<> {
        coring::task_handle<> task;
        auto test = [&]() -> coring::task<> { co_await task; };
        task = coring::create_task(test());
        // asyncio raises RuntimeError('Task cannot await on itself').
        const bool threw = co_await throws<coring::invalid_state_error>(task);
        CHECK(threw);
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel
TEST_CASE("test_cancel: a task cancelled from call_soon while it sleeps ends cancelled", "[cpython][task][cancel]") {
    coring::run(
        []() -> coring::task<> {
            auto body = []() -> coring::task<int> {
                co_await coring::sleep(10s);
                co_return 12;
            };
            auto t = coring::create_task(body());
            coring::get_running_loop().call_soon([t]() mutable { t.cancel(); });
            const bool cancelled = co_await throws<coring::cancelled_error>(t);
            CHECK(cancelled);
            CHECK(t.done());
            CHECK(t.cancelled());
            CHECK_FALSE(t.cancel());
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel_yield
TEST_CASE("test_cancel_yield: a task cancelled at sleep(0) ends cancelled", "[cpython][task][cancel]") {
    coring::run([]() -> coring::task<> {
        auto body = []() -> coring::task<int> {
            co_await coring::sleep(0s);
            co_await coring::sleep(0s);
            co_return 12;
        };
        auto t = coring::create_task(body());
        co_await run_briefly();  // start the coroutine
        t.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(t);
        CHECK(cancelled);
        CHECK(t.done());
        CHECK(t.cancelled());
        CHECK_FALSE(t.cancel());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel_inner_future
TEST_CASE("test_cancel_inner_future: cancelling the future a task awaits cancels the task", "[cpython][task][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::future<> f;
        auto body = [&]() -> coring::task<int> {
            co_await f;
            co_return 12;
        };
        auto t = coring::create_task(body());
        co_await run_briefly();  // start the task
        f.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(t);
        CHECK(cancelled);
        CHECK(f.cancelled());
        CHECK(t.cancelled());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel_both_task_and_inner_future
TEST_CASE("test_cancel_both_task_and_inner_future: cancelling the future, then the task, ends both cancelled", "[cpython][task][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::future<> f;
        auto body = [&]() -> coring::task<int> {
            co_await f;
            co_return 12;
        };
        auto t = coring::create_task(body());
        co_await run_briefly();
        f.cancel();
        t.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(t);
        CHECK(cancelled);
        CHECK(t.done());
        CHECK(f.cancelled());
        CHECK(t.cancelled());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel_task_catching
TEST_CASE("test_cancel_task_catching: a task that catches the cancellation of the future it awaits returns its value", "[cpython][task][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::future<> fut1;
        coring::future<> fut2;
        auto body = [&]() -> coring::task<int> {
            co_await fut1;
            bool cancelled = false;
            try {
                co_await fut2;
            } catch (const coring::cancelled_error&) {
                cancelled = true;
            }
            co_return cancelled ? 42 : -1;  // -1: Python's None
        };
        auto t = coring::create_task(body());
        co_await run_briefly();  // t waits for fut1
        fut1.set_result();
        co_await run_briefly();  // t waits for fut2
        t.cancel();
        CHECK(fut2.cancelled());
        const int res = co_await t;
        CHECK(res == 42);
        CHECK_FALSE(t.cancelled());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel_task_ignoring
TEST_CASE("test_cancel_task_ignoring: a task that ignores the cancellation awaits the next future normally", "[cpython][task][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::future<> fut1;
        coring::future<> fut2;
        coring::future<int> fut3;
        auto body = [&]() -> coring::task<int> {
            co_await fut1;
            try {
                co_await fut2;
            } catch (const coring::cancelled_error&) {
            }
            const int res = co_await fut3;
            co_return res;
        };
        auto t = coring::create_task(body());
        co_await run_briefly();  // t waits for fut1
        fut1.set_result();
        co_await run_briefly();  // t waits for fut2
        t.cancel();
        CHECK(fut2.cancelled());
        co_await run_briefly();  // t waits for fut3
        fut3.set_result(42);
        const int res = co_await t;
        CHECK(res == 42);
        CHECK_FALSE(fut3.cancelled());
        CHECK_FALSE(t.cancelled());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel_current_task
TEST_CASE("test_cancel_current_task: a task that cancels itself is cancelled at its next await", "[cpython][task][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::task_handle<int> t;
        auto body = [&]() -> coring::task<int> {
            t.cancel();
            co_await coring::sleep(100s);  // cancelled at once
            co_return 12;
        };
        t = coring::create_task(body());
        CHECK_FALSE(t.cancelled());
        const auto start = std::chrono::steady_clock::now();
        const bool cancelled = co_await throws<coring::cancelled_error>(t);
        CHECK(cancelled);
        CHECK(coring_test::ms_since(start) < 1000.0);
        CHECK(t.done());
        CHECK(t.cancelled());
        CHECK_FALSE(t.cancel());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel_at_end
TEST_CASE("test_cancel_at_end: a task that cancels itself and then returns ends cancelled", "[cpython][task][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::task_handle<int> t;
        auto body = [&]() -> coring::task<int> {
            t.cancel();
            co_return 12;
        };
        t = coring::create_task(body());
        CHECK_FALSE(t.cancelled());
        const bool cancelled = co_await throws<coring::cancelled_error>(t);
        CHECK(cancelled);
        CHECK(t.done());
        CHECK(t.cancelled());
        CHECK_FALSE(t.cancel());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel_awaited_task
TEST_CASE("test_cancel_awaited_task: a task with a cancel pending cancels the task it then awaits", "[cpython][task][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::task_handle<> task;
        coring::task_handle<> nested_task;
        coring::future<> fut;
        auto nested = [&]() -> coring::task<> { co_await fut; };
        auto coro = [&]() -> coring::task<> {
            nested_task = coring::create_task(nested());  // create a sub-task and let it run
            co_await coring::sleep(0s);
            task.cancel();           // request our own cancellation
            co_await nested_task;    // the nested task is cancelled at once
        };
        task = coring::create_task(coro());
        const bool cancelled = co_await throws<coring::cancelled_error>(task);
        CHECK(cancelled);
        CHECK(task.cancelled());
        REQUIRE(nested_task);
        CHECK(nested_task.cancelled());
        CHECK(fut.cancelled());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_stop_while_run_in_complete
TEST_CASE("test_stop_while_run_in_complete: stop() ends run_until_complete with an error and leaves the task pending", "[cpython][task]") {
    coring::event_loop loop(test_loop);
    int x = 0;
    coring::any_task_handle t;
    auto body = [&]() -> coring::task<> {
        t = coring::current_task();
        while (x < 10) {
            co_await coring::sleep(100ms);
            x += 1;
            if (x == 2) coring::get_running_loop().stop();
        }
    };
    // asyncio: RuntimeError('Event loop stopped before Future completed.')
    CHECK_THROWS_AS(loop.run_until_complete(body()), std::runtime_error);
    REQUIRE(t);
    CHECK_FALSE(t.done());
    CHECK(x == 2);
    // (asyncio also checks its test loop's time, 0.3, an artifact of its time generator.)
    t.cancel();
    auto awaiting = [](coring::any_task_handle h) -> coring::task<> { co_await h; };
    bool cancelled = false;
    try {
        loop.run_until_complete(awaiting(t));
    } catch (const coring::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    loop.close();
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_task_cancel_sleeping_task
TEST_CASE("test_task_cancel_sleeping_task: a sleeping task cancelled by call_later ends the await with cancelled_error", "[cpython][task][cancel]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto doit = []() -> coring::task<std::string> {
                auto sleeper = coring::create_task(sleep_for(5000s));
                coring::get_running_loop().call_later(100ms, [sleeper]() mutable { sleeper.cancel(); });
                bool cancelled = false;
                try {
                    co_await sleeper;
                } catch (const coring::cancelled_error&) {
                    cancelled = true;
                }
                co_return cancelled ? "cancelled" : "slept in";
            };
            const std::string result = co_await doit();
            CHECK(result == "cancelled");
            CHECK(almost_equal(loop.time() - t0, 100ms));
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_task_cancel_waiter_future
TEST_CASE("test_task_cancel_waiter_future: cancelling a task cancels the future it waits for", "[cpython][task][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::future<> fut;
        auto coro = [&]() -> coring::task<> { co_await fut; };
        auto task = coring::create_task(coro());
        co_await run_briefly();
        task.cancel();
        co_await run_briefly();
        const bool cancelled = co_await throws<coring::cancelled_error>(task);
        CHECK(cancelled);
        CHECK(fut.cancelled());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_step_result_future
TEST_CASE("test_step_result_future: a task waiting for a future gets its very result", "[cpython][task]") {
    coring::run([]() -> coring::task<> {
        coring::future<std::shared_ptr<int>> fut;
        std::shared_ptr<int> result;
        auto wait_for_future = [&]() -> coring::task<> { result = co_await fut; };
        auto t = coring::create_task(wait_for_future());
        co_await run_briefly();
        auto res = std::make_shared<int>(7);
        fut.set_result(res);
        co_await run_briefly();
        CHECK(result == res);
        CHECK(t.done());
        CHECK_NOTHROW(t.result());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_baseexception_during_cancel
TEST_CASE("test_baseexception_during_cancel: an exception raised while handling the cancellation ends the task with it, not cancelled", "[cpython][task][cancel]") {
    coring::run(
        []() -> coring::task<> {
            auto sleeper = []() -> coring::task<> { co_await coring::sleep(10s); };
            auto notmuch = [sleeper]() -> coring::task<> {
                try {
                    co_await sleeper();
                } catch (const coring::cancelled_error&) {
                    throw system_exit{};
                }
            };
            auto task = coring::create_task(notmuch());
            co_await run_briefly();
            task.cancel();
            CHECK_FALSE(task.done());
            // asyncio re-raises SystemExit out of the loop here; coring has no such exception class.
            co_await run_briefly();
            REQUIRE(task.done());
            CHECK_FALSE(task.cancelled());
            bool is_system_exit = false;
            try {
                std::rethrow_exception(task.exception());
            } catch (const system_exit&) {
                is_system_exit = true;
            } catch (...) {
            }
            CHECK(is_system_exit);
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_current_task
TEST_CASE("test_current_task: current_task() inside a task is that task", "[cpython][task]") {
    // asyncio.current_task(loop=l) is None while l does not run; coring has no loop argument and,
    // like asyncio.current_task() without one, raises when no loop runs.
    CHECK_THROWS_AS(coring::current_task(), std::logic_error);
    coring::run([]() -> coring::task<> {
        coring::any_task_handle task;
        auto coro = [&]() -> coring::task<> {
            CHECK(coring::current_task() == task);
            co_await coring::sleep(0s);
            CHECK(coring::current_task() == task);
        };
        auto h = coring::create_task(coro());
        task = h;
        co_await h;
        bool none_in_callback = false;
        coring::get_running_loop().call_soon([&] { none_in_callback = !coring::current_task(); });
        co_await run_briefly();
        CHECK(none_in_callback);
    }());
    CHECK_THROWS_AS(coring::current_task(), std::logic_error);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_current_task_with_interleaving_tasks
TEST_CASE("test_current_task_with_interleaving_tasks: current_task() follows the task that runs", "[cpython][task]") {
    coring::run([]() -> coring::task<> {
        coring::future<bool> fut1;
        coring::future<bool> fut2;
        coring::any_task_handle task1;
        coring::any_task_handle task2;
        auto coro1 = [&]() -> coring::task<> {
            CHECK(coring::current_task() == task1);
            co_await fut1;
            CHECK(coring::current_task() == task1);
            fut2.set_result(true);
        };
        auto coro2 = [&]() -> coring::task<> {
            CHECK(coring::current_task() == task2);
            fut1.set_result(true);
            co_await fut2;
            CHECK(coring::current_task() == task2);
        };
        auto h1 = coring::create_task(coro1());
        auto h2 = coring::create_task(coro2());
        task1 = h1;
        task2 = h2;
        std::vector<coring::task_handle<>> both{h1, h2};
        co_await coring::wait(both);
        CHECK(h1.done());
        CHECK(h2.done());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_yield_future_passes_cancel
TEST_CASE("test_yield_future_passes_cancel: cancelling outer() cancels inner(), which cancels the future", "[cpython][task][cancel]") {
    coring::run([]() -> coring::task<> {
        int proof = 0;
        coring::future<> waiter;
        auto inner = [&]() -> coring::task<> {
            try {
                co_await waiter;
            } catch (const coring::cancelled_error&) {
                proof += 1;
                throw;
            }
            FAIL_CHECK("got past the await in inner()");
        };
        auto outer = [&]() -> coring::task<> {
            bool cancelled = false;
            try {
                co_await inner();
            } catch (const coring::cancelled_error&) {
                cancelled = true;
            }
            proof += cancelled ? 100 : 10;  // expect 100
        };
        auto f = coring::create_task(outer());
        co_await run_briefly();
        f.cancel();
        co_await f;
        CHECK(proof == 101);
        CHECK(waiter.cancelled());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_yield_wait_does_not_shield_cancel
TEST_CASE("test_yield_wait_does_not_shield_cancel: cancelling outer() ends its wait() early and leaves inner() running", "[cpython][task][cancel][wait]") {
    coring::run([]() -> coring::task<> {
        int proof = 0;
        coring::future<> waiter;
        auto inner = [&]() -> coring::task<> {
            co_await waiter;
            proof += 1;
        };
        auto outer = [&]() -> coring::task<> {
            std::vector<coring::task_handle<>> set{coring::create_task(inner())};
            co_await coring::wait(set);
            proof += 100;
        };
        auto f = coring::create_task(outer());
        co_await run_briefly();
        f.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(f);
        CHECK(cancelled);
        waiter.set_result();
        co_await run_briefly();
        CHECK(proof == 1);
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_tb_logger_not_called_after_cancel
TEST_CASE("test_tb_logger_not_called_after_cancel: cancel() on a task that failed silences its never-retrieved report", "[cpython][task][cancel]") {
    coring::event_loop loop;
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        auto coro = []() -> coring::task<> {
            throw std::invalid_argument("TypeError");
            co_return;
        };
        {
            auto task = coring::create_task(coro());
            co_await coring::sleep(20ms);
            task.cancel();
        }  // task = None
        co_await run_briefly();
    }());
    loop.close();
    CHECK(reports.reports.empty());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel_gather_1
TEST_CASE("test_cancel_gather_1: a cancel() of the task awaiting a gather whose children are done is not dropped", "[cpython][task][cancel][gather]") {
    // asyncio's test is about the gathering future: once its children are done, cancel() returns
    // False and the result stands (Python issue #26923: gather dropped a cancellation it had
    // accepted). coring's gather is no object of its own; what cancel() reaches is the task
    // awaiting it, which, woken but not yet resumed, accepts the cancel as an asyncio Task would.
    // What must not happen is the issue itself: a cancel() that returned true and was dropped.
    coring::run([]() -> coring::task<> {
        coring::future<int> fut;
        auto child_coro = [](coring::future<int> f) -> coring::task<int> { co_return co_await f; };
        auto gathering = [child_coro](coring::future<int> f) -> coring::task<std::vector<int>> {
            std::vector<coring::task<int>> children;
            children.push_back(child_coro(f));
            co_return co_await coring::gather(std::move(children));
        };
        auto gather_task = coring::create_task(gathering(fut));
        co_await run_loop();  // the child waits for fut
        bool cancel_result = false;
        bool callback_ran = false;
        fut.add_done_callback([&, gather_task]() mutable {
            callback_ran = true;
            cancel_result = gather_task.cancel();
        });
        fut.set_result(42);  // the callback runs after fut is done
        bool cancelled = false;
        std::vector<int> result;
        try {
            result = co_await gather_task;
        } catch (const coring::cancelled_error&) {
            cancelled = true;
        }
        REQUIRE(callback_ran);
        if (cancel_result) {
            CHECK(cancelled);
            CHECK(gather_task.cancelled());
        } else {
            CHECK_FALSE(gather_task.cancelled());
            CHECK(result == std::vector<int>{42});
        }
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancel_gather_2
TEST_CASE("test_cancel_gather_2: gather(return_exceptions) does not swallow the cancellation of the task awaiting it", "[cpython][task][cancel][gather]") {
    auto test = []() -> coring::task<> {
        auto time = 0ms;
        for (;;) {
            time += 50ms;
            co_await coring::gather(coring::return_exceptions, coring::sleep(50ms));
            if (time > 1000ms) co_return;
        }
    };
    auto main_task = [test]() -> coring::task<> {
        auto qwe = coring::create_task(test());
        co_await coring::sleep(200ms);
        qwe.cancel();
        co_await qwe;
    };
    bool cancelled = false;
    try {
        coring::run(main_task(), test_loop);
    } catch (const coring::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);  // else gather() did not propagate the cancellation to its caller
}

// ============================================================================ wait

// CPython Lib/test/test_asyncio/test_tasks.py: test_wait
TEST_CASE("test_wait: wait() returns when all are done; again at once", "[cpython][wait]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto a = coring::create_task(sleep_for(100ms));
            auto b = coring::create_task(sleep_for(150ms));
            auto foo = [&]() -> coring::task<int> {
                std::vector<coring::task_handle<>> set{b, a};
                auto [done, pending] = co_await coring::wait(set);
                CHECK(same_tasks(done, {a, b}));
                CHECK(pending.empty());
                co_return 42;
            };
            auto first = coring::create_task(foo());
            const int res = co_await first;
            CHECK(res == 42);
            CHECK(almost_equal(loop.time() - t0, 150ms));
            // Doing it again should take no time and exercise a different path.
            auto second = coring::create_task(foo());
            const int res2 = co_await second;
            CHECK(almost_equal(loop.time() - t0, 150ms));
            CHECK(res2 == 42);
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_wait_duplicate_coroutines
TEST_CASE("test_wait_duplicate_coroutines: a task given twice is waited for once", "[cpython][wait]") {
    coring::run([]() -> coring::task<> {
        auto coro = [](std::string s) -> coring::task<std::string> { co_return s; };
        auto c = coring::create_task(coro("test"));
        std::vector<coring::task_handle<std::string>> set{c, c, coring::create_task(coro("spam"))};
        auto [done, pending] = co_await coring::wait(set);
        CHECK(pending.empty());
        std::multiset<std::string> results;
        for (auto& f : done) results.insert(f.result());
        CHECK(results == std::multiset<std::string>{"spam", "test"});
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_wait_errors
TEST_CASE("test_wait_errors: wait() of an empty set is an error", "[cpython][wait]") {
    coring::run([]() -> coring::task<> {
        std::vector<coring::task_handle<>> empty;
        // asyncio: ValueError. (Its other check, return_when=-1, cannot be written with an enum class.)
        CHECK_THROWS_AS(coring::wait(empty), std::invalid_argument);
        co_return;
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_wait_first_completed
TEST_CASE("test_wait_first_completed: return_when=first_completed returns with the first finished", "[cpython][wait]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto a = coring::create_task(sleep_for(10s));
            auto b = coring::create_task(sleep_for(100ms));
            std::vector<coring::task_handle<>> set{b, a};
            auto [done, pending] = co_await coring::wait(set, coring::return_when::first_completed);
            CHECK(same_tasks(done, {b}));
            CHECK(same_tasks(pending, {a}));
            CHECK_FALSE(a.done());
            CHECK(b.done());
            CHECK_NOTHROW(b.result());
            CHECK(almost_equal(loop.time() - t0, 100ms));
            co_await coring::wait(set);  // move forward: a finishes too
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_wait_really_done
TEST_CASE("test_wait_really_done: tasks that are done when wait() returns are in done, not pending", "[cpython][wait]") {
    coring::run([]() -> coring::task<> {
        // There is possibility that some tasks in the pending list became done but their
        // callbacks haven't all been called yet: b must finish after a, once a's completion has
        // queued the waiter's wake-up, but before the waiter runs. asyncio wakes the waiter two
        // iterations after a finishes (a's done callback, then the waiter future's), so there
        // coro2 sleeps twice; coring wakes it on the next iteration, so here b finishes in the
        // same iteration as a, just after it.
        auto coro1 = []() -> coring::task<> { co_await coring::sleep(0s); };
        auto coro2 = []() -> coring::task<> { co_await coring::sleep(0s); };
        auto a = coring::create_task(coro1());
        auto b = coring::create_task(coro2());
        auto waiting = [](std::vector<coring::task_handle<>> set) -> coring::task<coring::wait_result<coring::task_handle<>>> {
            co_return co_await coring::wait(std::move(set), coring::return_when::first_completed);
        };
        auto task = coring::create_task(waiting({b, a}));
        auto [done, pending] = co_await task;
        CHECK(same_tasks(done, {a, b}));
        CHECK(pending.empty());
        CHECK(a.done());
        CHECK_NOTHROW(a.result());
        CHECK(b.done());
        CHECK_NOTHROW(b.result());
        co_await b;
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_wait_first_exception
TEST_CASE("test_wait_first_exception: return_when=first_exception with a task that already failed", "[cpython][wait]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto a = coring::create_task(sleep_for(10s));
            auto exc = []() -> coring::task<> {
                throw zero_division_error();
                co_return;
            };
            auto b = coring::create_task(exc());
            std::vector<coring::task_handle<>> set{b, a};
            auto [done, pending] = co_await coring::wait(set, coring::return_when::first_exception);
            CHECK(same_tasks(done, {b}));
            CHECK(same_tasks(pending, {a}));
            CHECK(almost_equal(loop.time() - t0, 0ms));
            CHECK(b.exception() != nullptr);
            co_await coring::wait(set);  // move forward: a finishes too
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_wait_first_exception_in_wait
TEST_CASE("test_wait_first_exception_in_wait: return_when=first_exception with a task that fails while waited for", "[cpython][wait]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto a = coring::create_task(sleep_for(10s));
            auto exc = []() -> coring::task<> {
                co_await coring::sleep(10ms);
                throw zero_division_error();
            };
            auto b = coring::create_task(exc());
            std::vector<coring::task_handle<>> set{b, a};
            auto [done, pending] = co_await coring::wait(set, coring::return_when::first_exception);
            CHECK(same_tasks(done, {b}));
            CHECK(same_tasks(pending, {a}));
            CHECK(almost_equal(loop.time() - t0, 10ms));
            CHECK(b.exception() != nullptr);
            co_await coring::wait(set);  // move forward: a finishes too
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_wait_with_exception
TEST_CASE("test_wait_with_exception: wait() for all returns a failed task in done", "[cpython][wait]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto a = coring::create_task(sleep_for(100ms));
            auto sleeper = []() -> coring::task<> {
                co_await coring::sleep(150ms);
                throw zero_division_error();
            };
            auto b = coring::create_task(sleeper());
            auto foo = [&]() -> coring::task<> {
                std::vector<coring::task_handle<>> set{b, a};
                auto [done, pending] = co_await coring::wait(set);
                CHECK(done.size() == 2);
                CHECK(pending.empty());
                int errors = 0;
                for (auto& f : done)
                    if (f.exception() != nullptr) ++errors;
                CHECK(errors == 1);
            };
            auto first = coring::create_task(foo());
            co_await first;
            CHECK(almost_equal(loop.time() - t0, 150ms));
            auto second = coring::create_task(foo());
            co_await second;
            CHECK(almost_equal(loop.time() - t0, 150ms));
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_wait_with_timeout
TEST_CASE("test_wait_with_timeout: with a timeout, wait() returns what is done by then", "[cpython][wait]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto a = coring::create_task(sleep_for(100ms));
            auto b = coring::create_task(sleep_for(150ms));
            auto foo = [&]() -> coring::task<> {
                std::vector<coring::task_handle<>> set{b, a};
                auto [done, pending] = co_await coring::wait(set, coring::return_when::all_completed, 110ms);
                CHECK(same_tasks(done, {a}));
                CHECK(same_tasks(pending, {b}));
            };
            auto task = coring::create_task(foo());
            co_await task;
            CHECK(almost_equal(loop.time() - t0, 110ms));
            std::vector<coring::task_handle<>> both{a, b};
            co_await coring::wait(both);  // move forward: b finishes too
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_wait_concurrent_complete
TEST_CASE("test_wait_concurrent_complete: a task that finishes as the timeout expires is in done", "[cpython][wait]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto a = coring::create_task(sleep_for(100ms));
            auto b = coring::create_task(sleep_for(150ms));
            // run_until_complete(asyncio.wait(...)) makes a task after a and b.
            auto waiting = [](std::vector<coring::task_handle<>> set) -> coring::task<coring::wait_result<coring::task_handle<>>> {
                co_return co_await coring::wait(std::move(set), coring::return_when::all_completed, 100ms);
            };
            auto task = coring::create_task(waiting({b, a}));
            auto [done, pending] = co_await task;
            CHECK(same_tasks(done, {a}));
            CHECK(same_tasks(pending, {b}));
            CHECK(almost_equal(loop.time() - t0, 100ms));
            std::vector<coring::task_handle<>> both{a, b};
            co_await coring::wait(both);  // move forward: b finishes too
        }(),
        test_loop);
}

// ============================================================================ as_completed

// CPython Lib/test/test_asyncio/test_tasks.py: test_as_completed
TEST_CASE("test_as_completed: results come in completion order", "[cpython][as_completed]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto a = coring::create_task(sleep_then<std::string>(10ms, "a"));
            auto b = coring::create_task(sleep_then<std::string>(10ms, "b"));
            auto c = coring::create_task(sleep_then<std::string>(150ms, "c"));
            std::vector<coring::task_handle<std::string>> awaitables{b, c, a};
            std::vector<std::string> res;
            for (auto f : coring::as_completed(awaitables)) {
                std::string v = co_await f;
                res.push_back(std::move(v));
            }
            REQUIRE(res.size() == 3);
            CHECK(almost_equal(loop.time() - t0, 150ms));
            CHECK((res[0] == "a" || res[1] == "a"));
            CHECK((res[0] == "b" || res[1] == "b"));
            CHECK(res[2] == "c");
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_as_completed_with_timeout
TEST_CASE("test_as_completed_with_timeout: an await that would end after the timeout raises timeout_error", "[cpython][as_completed]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto a = coring::create_task(sleep_then<std::string>(100ms, "a"));
            auto b = coring::create_task(sleep_then<std::string>(150ms, "b"));
            std::vector<coring::task_handle<std::string>> set{a, b};
            std::vector<std::string> values;  // "1:<value>" or "2:timeout"
            for (auto f : coring::as_completed(set, 120ms)) {
                try {
                    std::string v = co_await f;
                    values.push_back("1:" + v);
                } catch (const coring::timeout_error&) {
                    values.push_back("2:timeout");
                }
            }
            CHECK(values == std::vector<std::string>{"1:a", "2:timeout"});
            CHECK(almost_equal(loop.time() - t0, 120ms));
            co_await coring::wait(set);  // move forward: b finishes too
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_as_completed_with_unused_timeout
TEST_CASE("test_as_completed_with_unused_timeout: a timeout that does not pass changes nothing", "[cpython][as_completed]") {
    coring::run(
        []() -> coring::task<> {
            auto a = coring::create_task(sleep_then<std::string>(10ms, "a"));
            std::vector<coring::task_handle<std::string>> set{a};
            for (auto f : coring::as_completed(set, 1s)) {
                const std::string v = co_await f;
                CHECK(v == "a");
            }
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_as_completed_resume_iterator
TEST_CASE("test_as_completed_resume_iterator: iteration stopped after two results resumes with the rest", "[cpython][as_completed]") {
    coring::run([]() -> coring::task<> {
        auto coro = [](int i) -> coring::task<int> { co_return i; };
        std::vector<coring::task_handle<int>> awaitables;
        for (int i = 0; i < 4; ++i) awaitables.push_back(coring::create_task(coro(i)));
        auto iterator = coring::as_completed(awaitables);
        std::vector<int> collected;
        auto it = iterator.begin();
        int iterations = 0;
        while (it != iterator.end()) {
            auto f = *it;
            ++it;
            collected.push_back(co_await f);
            iterations += 1;
            if (iterations == 2) break;
        }
        CHECK(collected.size() == 2);
        // Resume the same iterator.
        while (it != iterator.end()) {
            auto f = *it;
            ++it;
            collected.push_back(co_await f);
        }
        std::sort(collected.begin(), collected.end());
        CHECK(collected == std::vector<int>{0, 1, 2, 3});
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_as_completed_reverse_wait
TEST_CASE("test_as_completed_reverse_wait: the first awaitable awaited gets the first result, whichever it is", "[cpython][as_completed]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            const auto t0 = loop.time();
            auto a = coring::create_task(sleep_then<std::string>(50ms, "a"));
            auto b = coring::create_task(sleep_then<std::string>(100ms, "b"));
            std::vector<coring::task_handle<std::string>> fs{a, b};
            auto range = coring::as_completed(fs);
            using awaitable = decltype(*range.begin());
            std::vector<awaitable> futs;
            futs.reserve(range.size());
            for (auto it = range.begin(); it != range.end(); ++it) futs.push_back(*it);
            REQUIRE(futs.size() == 2);
            auto& second = futs[1];
            const std::string x = co_await second;
            CHECK(x == "a");
            CHECK(almost_equal(loop.time() - t0, 50ms));
            auto& first = futs[0];
            const std::string y = co_await first;
            CHECK(y == "b");
            CHECK(almost_equal(loop.time() - t0, 100ms));
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_as_completed_concurrent
TEST_CASE("test_as_completed_concurrent: two awaitables awaited at once by two tasks each get a result", "[cpython][as_completed]") {
    coring::run(
        []() -> coring::task<> {
            auto a = coring::create_task(sleep_then<std::string>(50ms, "a"));
            auto b = coring::create_task(sleep_then<std::string>(50ms, "b"));
            std::vector<coring::task_handle<std::string>> fs{a, b};
            auto range = coring::as_completed(fs);
            using awaitable = decltype(*range.begin());
            std::vector<awaitable> futs;
            futs.reserve(range.size());
            for (auto it = range.begin(); it != range.end(); ++it) futs.push_back(*it);
            REQUIRE(futs.size() == 2);
            auto ensure_future = [](awaitable next) -> coring::task<std::string> { co_return co_await next; };
            std::vector<coring::task_handle<std::string>> tasks;
            for (auto& fut : futs) tasks.push_back(coring::create_task(ensure_future(std::move(fut))));
            // The timeout only keeps a lost wake-up from hanging the test (the loop runs on virtual time).
            auto [done, pending] = co_await coring::wait(tasks, coring::return_when::all_completed, 10s);
            std::set<std::string> results;
            for (auto& f : done) results.insert(f.result());
            CHECK(results == std::set<std::string>{"a", "b"});
            CHECK(pending.empty());
            for (auto& p : pending) p.cancel();
            co_await coring::wait(tasks);
        }(),
        test_loop);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_as_completed_duplicate_coroutines
TEST_CASE("test_as_completed_duplicate_coroutines: a task given twice yields one result", "[cpython][as_completed]") {
    coring::run(
        []() -> coring::task<> {
            auto coro = [](std::string s) -> coring::task<std::string> { co_return s; };
            auto c = coring::create_task(coro("ham"));
            std::vector<coring::task_handle<std::string>> set{c, c, coring::create_task(coro("spam"))};
            std::vector<std::string> result;
            // The timeout only keeps an extra awaitable from hanging the test (virtual time).
            for (auto f : coring::as_completed(set, 10s)) {
                try {
                    std::string v = co_await f;
                    result.push_back(std::move(v));
                } catch (const coring::timeout_error&) {
                    result.push_back("(timeout)");
                }
            }
            CHECK(std::set<std::string>(result.begin(), result.end()) == std::set<std::string>{"ham", "spam"});
            CHECK(result.size() == 2);
        }(),
        test_loop);
}

// ============================================================================ shield

namespace {

// asyncio.shield(inner) returns a future; in coring the shield is an awaitable, so the "outer"
// future of these tests is a task that awaits it.
template <class T>
coring::task<T> await_shielded(coring::future<T> inner) {
    co_return co_await coring::shield(inner);
}

}  // namespace

// CPython Lib/test/test_asyncio/test_tasks.py: test_shield_result
TEST_CASE("test_shield_result: shield yields the inner result", "[cpython][shield]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> inner;
        auto outer = coring::shield(inner);
        inner.set_result(42);
        const int res = co_await outer;
        CHECK(res == 42);
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_shield_exception
TEST_CASE("test_shield_exception: shield passes the inner exception on", "[cpython][shield]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> inner;
        auto outer = coring::create_task(await_shielded(inner));
        co_await run_briefly();
        const auto exc = std::make_exception_ptr(std::runtime_error("expected"));
        inner.set_exception(exc);
        co_await run_briefly();
        REQUIRE(outer.done());
        CHECK(outer.exception() == exc);
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_shield_cancel_inner
TEST_CASE("test_shield_cancel_inner: cancelling the inner future cancels the outer one", "[cpython][shield]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> inner;
        auto outer = coring::create_task(await_shielded(inner));
        co_await run_briefly();
        inner.cancel();
        co_await run_briefly();
        CHECK(outer.cancelled());
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_shield_cancel_outer
TEST_CASE("test_shield_cancel_outer: cancelling the outer one leaves the inner future alone", "[cpython][shield]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> inner;
        auto outer = coring::create_task(await_shielded(inner));
        co_await run_briefly();
        outer.cancel();
        co_await run_briefly();
        CHECK(outer.cancelled());
        CHECK_FALSE(inner.done());  // (asyncio checks, white-box, that outer kept no callbacks)
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_shield_cancel_outer_result
TEST_CASE("test_shield_cancel_outer_result: a result of the inner future after the outer was cancelled reports nothing", "[cpython][shield]") {
    coring::event_loop loop;
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        coring::future<int> inner;
        auto outer = coring::create_task(await_shielded(inner));
        co_await run_briefly();
        outer.cancel();
        co_await run_briefly();
        inner.set_result(1);
        co_await run_briefly();
    }());
    loop.close();
    CHECK(reports.reports.empty());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_shield_cancel_outer_exception
TEST_CASE("test_shield_cancel_outer_exception: an error of the inner future after the outer was cancelled is reported once", "[cpython][shield]") {
    coring::event_loop loop;
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        coring::future<int> inner;
        auto outer = coring::create_task(await_shielded(inner));
        co_await run_briefly();
        outer.cancel();
        co_await run_briefly();
        inner.set_exception(std::runtime_error("foo"));
        co_await run_briefly();
    }());
    loop.close();
    // asyncio reports it when the inner future fails ("exception in shielded future"); coring
    // when the last handle goes ("Future exception was never retrieved"). Once, either way.
    CHECK(reports.reports.size() == 1);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_shield_duplicate_log_once
TEST_CASE("test_shield_duplicate_log_once: two cancelled shields of one failing future report it once", "[cpython][shield]") {
    coring::event_loop loop;
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        coring::future<int> inner;
        auto outer = coring::create_task(await_shielded(inner));
        co_await run_briefly();
        outer.cancel();
        co_await run_briefly();
        auto outer2 = coring::create_task(await_shielded(inner));
        co_await run_briefly();
        outer2.cancel();
        co_await run_briefly();
        inner.set_exception(std::runtime_error("foo"));
        co_await run_briefly();
    }());
    loop.close();
    CHECK(reports.reports.size() == 1);
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_shield_shortcut
TEST_CASE("test_shield_shortcut: shield of a finished future yields its result", "[cpython][shield]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> fut;
        fut.set_result(42);
        const int res = co_await coring::shield(fut);
        CHECK(res == 42);
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_shield_effect
TEST_CASE("test_shield_effect: cancelling outer() does not affect the shielded inner()", "[cpython][shield]") {
    coring::run([]() -> coring::task<> {
        int proof = 0;
        coring::future<> waiter;
        auto inner = [&]() -> coring::task<> {
            co_await waiter;
            proof += 1;
        };
        auto outer = [&]() -> coring::task<> {
            auto shielded = coring::create_task(inner());  // shield(inner()) wraps the coroutine in a task
            co_await coring::shield(shielded);
            proof += 100;
        };
        auto f = coring::create_task(outer());
        co_await run_briefly();
        f.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(f);
        CHECK(cancelled);
        waiter.set_result();
        co_await run_briefly();
        CHECK(proof == 1);
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_shield_gather
TEST_CASE("test_shield_gather: cancelling a shield of a gather leaves the gather running", "[cpython][shield][gather]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> child1;
        coring::future<int> child2;
        auto gathering = [](coring::future<int> c1, coring::future<int> c2) -> coring::task<std::vector<int>> {
            std::vector<coring::future<int>> children{c1, c2};
            co_return co_await coring::gather(children);
        };
        auto parent = coring::create_task(gathering(child1, child2));
        auto shielding = [](coring::task_handle<std::vector<int>> p) -> coring::task<std::vector<int>> { co_return co_await coring::shield(p); };
        auto outer = coring::create_task(shielding(parent));
        co_await run_briefly();
        outer.cancel();
        co_await run_briefly();
        CHECK(outer.cancelled());
        child1.set_result(1);
        child2.set_result(2);
        co_await run_loop();
        REQUIRE(parent.done());
        CHECK(parent.result() == std::vector<int>{1, 2});
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_gather_shield
TEST_CASE("test_gather_shield: cancelling a gather of shields cancels the shields, not the futures behind them", "[cpython][shield][gather]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> child1;
        coring::future<int> child2;
        auto gathering = [](coring::future<int> c1, coring::future<int> c2) -> coring::task<> {
            co_await coring::gather(coring::shield(c1), coring::shield(c2));
        };
        auto parent = coring::create_task(gathering(child1, child2));
        co_await run_loop();  // the gather and both shields wait
        parent.cancel();
        co_await run_loop();
        // asyncio: the gathering future holds a CancelledError (parent.exception()); a coring task
        // that ends with cancelled_error is cancelled(). The shields are tasks made by gather here,
        // not visible; what matters is that the futures behind them were not cancelled.
        REQUIRE(parent.done());
        CHECK(parent.cancelled());
        CHECK_FALSE(child1.done());
        CHECK_FALSE(child2.done());
        child1.set_result(1);
        child2.set_result(2);
        co_await run_briefly();
    }());
}

// ============================================================================ gather

namespace {

// CPython runs GatherTestsBase twice: FutureGatherTests gathers the futures themselves,
// CoroutineGatherTests gathers coroutines that await them. asyncio's gather over futures
// registers with them when it is made; coring's gather does when its task first waits, so the
// futures cases run twice: with the gather waiting before the futures complete (as in asyncio),
// and with futures that complete before the gathering task first waits.
enum class gathered { futures, futures_done_first, coroutines };

coring::task<int> await_future(coring::future<int> f) { co_return co_await f; }

// The gathering future of GatherTestsBase: a task that awaits coring::gather.
coring::task_handle<std::vector<int>> start_gather(gathered kind, std::vector<coring::future<int>> futures) {
    auto body = [](gathered k, std::vector<coring::future<int>> fs) -> coring::task<std::vector<int>> {
        if (k != gathered::coroutines) co_return co_await coring::gather(fs);
        std::vector<coring::task<int>> coros;
        for (auto& f : fs) coros.push_back(await_future(f));
        co_return co_await coring::gather(std::move(coros));
    };
    return coring::create_task(body(kind, std::move(futures)));
}

// The same with return_exceptions=True.
coring::task_handle<std::vector<coring::result<int>>> start_gather_return_exceptions(gathered kind, std::vector<coring::future<int>> futures) {
    auto body = [](gathered k, std::vector<coring::future<int>> fs) -> coring::task<std::vector<coring::result<int>>> {
        if (k != gathered::coroutines) co_return co_await coring::gather(coring::return_exceptions, fs);
        std::vector<coring::task<int>> coros;
        for (auto& f : fs) coros.push_back(await_future(f));
        co_return co_await coring::gather(coring::return_exceptions, std::move(coros));
    };
    return coring::create_task(body(kind, std::move(futures)));
}

// Lets the gathering task start waiting (see gathered). Over coroutines, asyncio's children only
// start on the next iteration, as coring's do: nothing to wait for.
coring::task<> let_gather_register(gathered kind) {
    if (kind == gathered::futures) co_await run_briefly();
}

// GatherTestsBase._check_success
coring::task<> check_success(gathered kind) {
    coring::future<int> a;
    coring::future<int> b;
    coring::future<int> c;
    auto fut = start_gather(kind, {a, b, c});
    int calls = 0;
    fut.add_done_callback([&calls] { ++calls; });
    co_await let_gather_register(kind);
    b.set_result(1);
    a.set_result(2);
    co_await run_loop();
    CHECK(calls == 0);
    CHECK_FALSE(fut.done());
    c.set_result(3);
    co_await run_loop();
    CHECK(calls == 1);
    REQUIRE(fut.done());
    CHECK(fut.result() == std::vector<int>{2, 1, 3});
}

// GatherTestsBase.test_one_exception
coring::task<> check_one_exception(gathered kind) {
    coring::future<int> a;
    coring::future<int> b;
    coring::future<int> c;
    coring::future<int> d;
    coring::future<int> e;
    auto fut = start_gather(kind, {a, b, c, d, e});
    int calls = 0;
    fut.add_done_callback([&calls] { ++calls; });
    co_await let_gather_register(kind);
    const auto exc = std::make_exception_ptr(zero_division_error());
    a.set_result(1);
    b.set_exception(exc);
    co_await run_loop();
    REQUIRE(fut.done());
    CHECK(calls == 1);
    CHECK(fut.exception() == exc);
    if (kind != gathered::coroutines) {
        // coring's documented fail-fast: gather cancels the children still pending (asyncio
        // leaves them alone, so its "c.set_result(3); d.cancel(); ..." does nothing).
        CHECK(c.cancelled());
        CHECK(d.cancelled());
        CHECK(e.cancelled());
        CHECK_FALSE(d.cancel());
    } else {
        // The coroutines awaiting c, d and e were cancelled before their first step, so the
        // futures were never touched: as in asyncio, this does nothing.
        CHECK_NOTHROW(c.set_result(3));
        d.cancel();
        CHECK_NOTHROW(e.set_exception(std::runtime_error("RuntimeError")));
        CHECK(e.exception() != nullptr);
    }
}

// GatherTestsBase.test_return_exceptions
coring::task<> check_return_exceptions(gathered kind) {
    coring::future<int> a;
    coring::future<int> b;
    coring::future<int> c;
    coring::future<int> d;
    auto fut = start_gather_return_exceptions(kind, {a, b, c, d});
    int calls = 0;
    fut.add_done_callback([&calls] { ++calls; });
    co_await let_gather_register(kind);
    const auto exc = std::make_exception_ptr(zero_division_error());
    const auto exc2 = std::make_exception_ptr(std::runtime_error("RuntimeError"));
    b.set_result(1);
    c.set_exception(exc);
    a.set_result(3);
    co_await run_loop();
    CHECK_FALSE(fut.done());
    d.set_exception(exc2);
    co_await run_loop();
    REQUIRE(fut.done());
    CHECK(calls == 1);
    auto res = fut.result();
    REQUIRE(res.size() == 4);
    REQUIRE(res[0].has_value());
    CHECK(res[0].value() == 3);
    REQUIRE(res[1].has_value());
    CHECK(res[1].value() == 1);
    REQUIRE_FALSE(res[2].has_value());
    CHECK(res[2].error() == exc);
    REQUIRE_FALSE(res[3].has_value());
    CHECK(res[3].error() == exc2);
}

}  // namespace

// CPython Lib/test/test_asyncio/test_tasks.py: test_success (FutureGatherTests)
TEST_CASE("test_success (FutureGatherTests): gather of futures completes when the last one does, results in argument order", "[cpython][gather]") {
    coring::run(check_success(gathered::futures));
    coring::run(check_success(gathered::futures_done_first));
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_success (CoroutineGatherTests)
TEST_CASE("test_success (CoroutineGatherTests): gather of coroutines completes when the last one does, results in argument order", "[cpython][gather]") {
    coring::run(check_success(gathered::coroutines));
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_one_exception (FutureGatherTests)
TEST_CASE("test_one_exception (FutureGatherTests): the first failure of a future fails the gather with that exception", "[cpython][gather]") {
    coring::run(check_one_exception(gathered::futures));
    coring::run(check_one_exception(gathered::futures_done_first));
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_one_exception (CoroutineGatherTests)
TEST_CASE("test_one_exception (CoroutineGatherTests): the first failure of a coroutine fails the gather with that exception", "[cpython][gather]") {
    coring::run(check_one_exception(gathered::coroutines));
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_return_exceptions (FutureGatherTests)
TEST_CASE("test_return_exceptions (FutureGatherTests): return_exceptions collects values and exceptions in order", "[cpython][gather]") {
    coring::run(check_return_exceptions(gathered::futures));
    coring::run(check_return_exceptions(gathered::futures_done_first));
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_return_exceptions (CoroutineGatherTests)
TEST_CASE("test_return_exceptions (CoroutineGatherTests): return_exceptions collects values and exceptions in order", "[cpython][gather]") {
    coring::run(check_return_exceptions(gathered::coroutines));
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_one_cancellation (FutureGatherTests)
TEST_CASE("test_one_cancellation (FutureGatherTests): a cancelled future fails the gather with cancelled_error", "[cpython][gather][cancel]") {
    for (const auto variant : {gathered::futures, gathered::futures_done_first}) {
        coring::run([](gathered kind) -> coring::task<> {
            coring::future<int> a;
            coring::future<int> b;
            coring::future<int> c;
            coring::future<int> d;
            coring::future<int> e;
            auto fut = start_gather(kind, {a, b, c, d, e});
            int calls = 0;
            fut.add_done_callback([&calls] { ++calls; });
            co_await let_gather_register(kind);
            a.set_result(1);
            b.cancel();
            co_await run_loop();
            REQUIRE(fut.done());
            CHECK(calls == 1);
            // asyncio's gathering future is not cancelled() but holds a CancelledError; the coring
            // task that rethrows it from gather ends cancelled(), like an asyncio Task would.
            CHECK(fut.cancelled());
            CHECK_THROWS_AS(fut.result(), coring::cancelled_error);
            // coring's documented fail-fast cancelled the futures still pending (asyncio: "does nothing").
            CHECK(c.cancelled());
            CHECK(d.cancelled());
            CHECK(e.cancelled());
        }(variant));
    }
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_result_exception_one_cancellation (FutureGatherTests)
TEST_CASE("test_result_exception_one_cancellation (FutureGatherTests): return_exceptions reports cancelled futures as cancelled_error", "[cpython][gather][cancel]") {
    for (const auto variant : {gathered::futures, gathered::futures_done_first}) {
        coring::run([](gathered kind) -> coring::task<> {
            coring::future<int> a;
            coring::future<int> b;
            coring::future<int> c;
            coring::future<int> d;
            coring::future<int> e;
            coring::future<int> f;
            auto fut = start_gather_return_exceptions(kind, {a, b, c, d, e, f});
            int calls = 0;
            fut.add_done_callback([&calls] { ++calls; });
            co_await let_gather_register(kind);
            a.set_result(1);
            const auto zde = std::make_exception_ptr(zero_division_error());
            b.set_exception(zde);
            c.cancel();
            co_await run_loop();
            CHECK_FALSE(fut.done());
            d.set_result(3);
            e.cancel();
            const auto rte = std::make_exception_ptr(std::runtime_error("RuntimeError"));
            f.set_exception(rte);
            auto res = co_await fut;
            co_await run_loop();
            REQUIRE(res.size() == 6);
            CHECK(res[0].has_value());
            CHECK((res[0].has_value() && res[0].value() == 1));
            CHECK(res[1].error() == zde);
            CHECK(is_cancellation(res[2].error()));
            CHECK((res[3].has_value() && res[3].value() == 3));
            CHECK(is_cancellation(res[4].error()));
            CHECK(res[5].error() == rte);
            CHECK(calls == 1);
        }(variant));
    }
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_duplicate_coroutines (CoroutineGatherTests)
TEST_CASE("test_duplicate_coroutines (CoroutineGatherTests): one task given several times gives its result at each place", "[cpython][gather]") {
    coring::run([]() -> coring::task<> {
        auto coro = [](std::string s) -> coring::task<std::string> { co_return s; };
        auto c = coring::create_task(coro("abc"));  // a coroutine object can be passed twice; a task<T> cannot: its handle is
        std::vector<coring::task_handle<std::string>> args{c, c, coring::create_task(coro("def")), c};
        const std::vector<std::string> result = co_await coring::gather(args);
        CHECK(result == std::vector<std::string>{"abc", "abc", "def", "abc"});
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_cancellation_broadcast (CoroutineGatherTests)
TEST_CASE("test_cancellation_broadcast (CoroutineGatherTests): cancelling the task awaiting gather cancels every child", "[cpython][gather][cancel]") {
    coring::run([]() -> coring::task<> {
        int proof = 0;
        coring::future<> waiter;
        auto inner = [&]() -> coring::task<> {
            co_await waiter;
            proof += 1;
        };
        auto child1 = coring::create_task(inner());
        auto child2 = coring::create_task(inner());
        auto outer = [&]() -> coring::task<> {
            co_await coring::gather(child1, child2);
            proof += 100;
        };
        auto f = coring::create_task(outer());
        co_await run_briefly();
        CHECK(f.cancel());
        const bool cancelled = co_await throws<coring::cancelled_error>(f);
        CHECK(cancelled);
        // (asyncio also checks that the gathering future, now done, refuses cancel(); coring's
        // gather is not an object of its own.)
        CHECK(waiter.cancelled());
        CHECK(child1.cancelled());
        CHECK(child2.cancelled());
        co_await run_briefly();
        CHECK(proof == 0);
    }());
}

// CPython Lib/test/test_asyncio/test_tasks.py: test_exception_marking (CoroutineGatherTests)
TEST_CASE("test_exception_marking (CoroutineGatherTests): gather rethrows the first error and reports no other as never retrieved", "[cpython][gather]") {
    coring::event_loop loop;
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        auto inner = [](coring::future<> f) -> coring::task<> {
            co_await f;
            throw std::runtime_error("should not be ignored");
        };
        coring::future<> a;
        coring::future<> b;
        auto outer = [&]() -> coring::task<> { co_await coring::gather(inner(a), inner(b)); };
        auto f = coring::create_task(outer());
        co_await run_briefly();
        a.set_result();
        co_await run_briefly();
        // coring's fail-fast may have cancelled inner(b), which would have passed the cancel to b.
        if (!b.done()) b.set_result();
        co_await run_briefly();
        REQUIRE(f.done());
        bool runtime_error = false;
        try {
            std::rethrow_exception(f.exception());
        } catch (const std::runtime_error&) {
            runtime_error = true;
        } catch (...) {
        }
        CHECK(runtime_error);
    }());
    loop.close();
    CHECK(reports.reports.empty());
}
