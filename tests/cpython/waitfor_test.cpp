// CPython's own tests of asyncio.wait_for (Lib/test/test_asyncio/test_waitfor.py), translated
// case by case into coring: asyncio.wait_for -> coring::wait_for, asyncio.TimeoutError ->
// coring::timeout_error, CancelledError -> coring::cancelled_error, timeout=None -> a duration
// too long for the clock (no deadline). Durations are scaled down to tens of milliseconds and
// timing bounds are generous. Assertions on exception chaining (__context__) are left out.
#include <coring/coring.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <array>
#include <chrono>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::ms_since;
using coring_test::throws;

namespace {

// asyncio's timeout=None: a timeout too long for the clock means no deadline.
constexpr auto no_timeout = std::chrono::nanoseconds::max();

// CPython's _EPSILON: a timeout that passes "timeout > 0" and expires at once.
constexpr auto epsilon = std::chrono::microseconds(100);

// Sets `flag` to `value` when the scope ends, however it ends (Python's `finally:`).
struct set_on_exit {
    bool& flag;
    bool value;
    ~set_on_exit() { flag = value; }
};

// CPython's SlowTask: runs for `duration`, ignoring cancel requests.
struct slow_task {
    static constexpr auto duration = 40ms;
    bool exited = false;

    coring::task<> run() {
        const auto exit_at = std::chrono::steady_clock::now() + duration;
        for (;;) {
            const auto left = exit_at - std::chrono::steady_clock::now();
            if (left <= left.zero()) break;
            try {
                co_await coring::sleep(left);
            } catch (const coring::cancelled_error&) {
            }
        }
        exited = true;
    }
};

struct foo_exception : std::runtime_error {
    foo_exception() : std::runtime_error("FooException") {}
};

}  // namespace

// ------------------------------------------------------------------------- AsyncioWaitForTest

// CPython Lib/test/test_asyncio/test_waitfor.py: test_asyncio_wait_for_cancelled
TEST_CASE("test_asyncio_wait_for_cancelled: cancelling the waiting task still lets a child that ignores cancellation run to its end", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        slow_task t;
        auto waiting = [](slow_task& st) -> coring::task<> { co_await coring::wait_for(st.run(), slow_task::duration * 2); };
        auto waitfortask = coring::create_task(waiting(t));
        co_await coring::sleep(0s);
        waitfortask.cancel();
        std::vector<coring::task_handle<>> set{waitfortask};
        co_await coring::wait(set);
        CHECK(t.exited);
        // The child swallowed the forwarded cancellation and returned, so wait_for returned too
        // (as asyncio 3.12's wait_for, which awaits the coroutine inside a timeout block).
        CHECK(waitfortask.done());
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_asyncio_wait_for_timeout
TEST_CASE("test_asyncio_wait_for_timeout: the timeout waits for a child that ignores cancellation", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        slow_task t;
        try {
            co_await coring::wait_for(t.run(), slow_task::duration / 2);
        } catch (const coring::timeout_error&) {
        }
        CHECK(t.exited);
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_timeout_less_then_0_or_0_future_done
TEST_CASE("test_wait_for_timeout_less_then_0_or_0_future_done: a zero timeout on a finished future returns its result", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        coring::future<std::string> fut;
        fut.set_result("done");
        const auto t0 = std::chrono::steady_clock::now();
        const std::string ret = co_await coring::wait_for(fut, 0s);
        CHECK(ret == "done");
        CHECK(fut.done());
        CHECK(ms_since(t0) < 100.0);
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started
TEST_CASE("test_wait_for_timeout_less_then_0_or_0_coroutine_do_not_started: a zero timeout never starts a coroutine", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        bool foo_started = false;
        auto foo = [&]() -> coring::task<> {
            foo_started = true;
            co_return;
        };
        const auto t0 = std::chrono::steady_clock::now();
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(foo(), 0s));
        CHECK(timed_out);
        CHECK_FALSE(foo_started);
        CHECK(ms_since(t0) < 100.0);
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_timeout_less_then_0_or_0
TEST_CASE("test_wait_for_timeout_less_then_0_or_0: a zero or negative timeout cancels a running task and raises timeout_error", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        const std::array<std::chrono::milliseconds, 2> timeouts{0ms, -1000ms};
        for (const auto timeout : timeouts) {
            bool foo_running = false;
            coring::future<> started;
            auto foo = [&]() -> coring::task<std::string> {
                foo_running = true;
                started.set_result();
                set_on_exit finally{foo_running, false};
                co_await coring::sleep(10s);
                co_return "done";
            };
            auto fut = coring::create_task(foo());
            co_await started;
            const auto t0 = std::chrono::steady_clock::now();
            const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(fut, timeout));
            CHECK(timed_out);
            CHECK(fut.done());
            CHECK(fut.cancelled());  // cancelled by the timeout
            CHECK_FALSE(foo_running);
            CHECK(ms_since(t0) < 100.0);
        }
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for
TEST_CASE("test_wait_for: on expiry the task is cancelled, its cleanup has run, timeout_error is raised", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        bool foo_running = false;
        auto foo = [&]() -> coring::task<std::string> {
            foo_running = true;
            set_on_exit finally{foo_running, false};
            co_await coring::sleep(10s);
            co_return "done";
        };
        auto fut = coring::create_task(foo());
        const auto t0 = std::chrono::steady_clock::now();
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(fut, 30ms));
        CHECK(timed_out);
        CHECK(fut.done());
        CHECK(fut.cancelled());  // cancelled by the timeout
        CHECK(ms_since(t0) < 500.0);
        CHECK_FALSE(foo_running);
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_blocking
TEST_CASE("test_wait_for_blocking: no timeout (timeout=None) returns the result", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        auto coro = []() -> coring::task<std::string> { co_return "done"; };
        const std::string res = co_await coring::wait_for(coro(), no_timeout);
        CHECK(res == "done");
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_race_condition
TEST_CASE("test_wait_for_race_condition: a future completed by call_soon before the wait starts is returned", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        coring::future<std::string> fut;
        auto waiting = coring::wait_for(fut, 200ms);
        coring::get_running_loop().call_soon([fut]() mutable { fut.set_result("ok"); });
        const std::string res = co_await std::move(waiting);
        CHECK(res == "ok");
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_cancellation_race_condition
TEST_CASE("test_wait_for_cancellation_race_condition: a child that catches the timeout's cancellation returns its value", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        auto inner = []() -> coring::task<int> {
            const bool cancelled = co_await throws<coring::cancelled_error>(coring::sleep(1s));
            CHECK(cancelled);
            co_return 1;
        };
        const int result = co_await coring::wait_for(inner(), 10ms);
        CHECK(result == 1);
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_waits_for_task_cancellation
TEST_CASE("test_wait_for_waits_for_task_cancellation: timeout_error comes only after the task's cleanup", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        bool task_done = false;
        auto inner = [&]() -> coring::task<> {
            set_on_exit finally{task_done, true};
            std::exception_ptr cancelled;
            try {
                co_await coring::sleep(10s);
            } catch (const coring::cancelled_error&) {
                cancelled = std::current_exception();
            }
            if (cancelled) {
                co_await coring::sleep(epsilon);
                std::rethrow_exception(cancelled);
            }
        };
        auto inner_task = coring::create_task(inner());
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(inner_task, epsilon));
        CHECK(timed_out);
        CHECK(task_done);
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_waits_for_task_cancellation_w_timeout_0
TEST_CASE("test_wait_for_waits_for_task_cancellation_w_timeout_0: a zero timeout also waits for the task's cleanup", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        bool task_done = false;
        auto foo = [&]() -> coring::task<> {
            auto inner = [&]() -> coring::task<> {
                set_on_exit finally{task_done, true};
                std::exception_ptr cancelled;
                try {
                    co_await coring::sleep(10s);
                } catch (const coring::cancelled_error&) {
                    cancelled = std::current_exception();
                }
                if (cancelled) {
                    co_await coring::sleep(epsilon);
                    std::rethrow_exception(cancelled);
                }
            };
            auto inner_task = coring::create_task(inner());
            co_await coring::sleep(epsilon);
            co_await coring::wait_for(inner_task, 0s);
        };
        const bool timed_out = co_await throws<coring::timeout_error>(foo());
        CHECK(timed_out);
        CHECK(task_done);
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_reraises_exception_during_cancellation
TEST_CASE("test_wait_for_reraises_exception_during_cancellation: an error raised by the cancelled task replaces the timeout", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        auto foo = []() -> coring::task<> {
            auto inner = []() -> coring::task<> {
                try {
                    co_await coring::sleep(200ms);
                } catch (...) {
                    throw foo_exception();
                }
                throw foo_exception();
            };
            auto inner_task = coring::create_task(inner());
            co_await coring::wait_for(inner_task, epsilon);
        };
        const bool raised = co_await throws<foo_exception>(foo());
        CHECK(raised);
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_self_cancellation (CPython 3.11's version of the file)
TEST_CASE("test_wait_for_self_cancellation: a wait_for cancelled before it starts is cancelled; the task it would wait on runs on", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        auto inner = []() -> coring::task<int> {
            bool first = false;
            try {
                co_await coring::sleep(30ms);
            } catch (const coring::cancelled_error&) {
                first = true;
            }
            if (first) {
                bool second = false;
                try {
                    co_await coring::sleep(30ms);
                } catch (const coring::cancelled_error&) {
                    second = true;
                }
                if (second) co_await coring::sleep(30ms);
            }
            co_return 42;
        };
        auto inner_task = coring::create_task(inner());
        auto waiting = [](coring::task_handle<int> h) -> coring::task<int> { co_return co_await coring::wait_for(h, 10ms); };
        auto task = coring::create_task(waiting(inner_task));
        task.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(task);
        CHECK(cancelled);
        const int value = co_await inner_task;
        CHECK(value == 42);
    }());
}

namespace {

// CPython's _test_cancel_wait_for.
coring::task<> check_cancel_wait_for(std::chrono::nanoseconds timeout) {
    auto blocking_coroutine = []() -> coring::task<> {
        coring::future<> fut;
        co_await fut;  // never set
    };
    auto task = coring::create_task(blocking_coroutine());
    auto waiting = [](coring::task_handle<> t, std::chrono::nanoseconds to) -> coring::task<> { co_await coring::wait_for(t, to); };
    auto wait = coring::create_task(waiting(task, timeout));
    coring::get_running_loop().call_soon([wait]() mutable { wait.cancel(); });
    const bool cancelled = co_await throws<coring::cancelled_error>(wait);
    CHECK(cancelled);
    // Python issue #23219: cancelling the wait must also cancel the task.
    CHECK(task.cancelled());
}

}  // namespace

// CPython Lib/test/test_asyncio/test_waitfor.py: test_cancel_blocking_wait_for
TEST_CASE("test_cancel_blocking_wait_for: cancelling a wait_for without timeout cancels the awaited task", "[cpython][wait_for]") {
    coring::run(check_cancel_wait_for(no_timeout));
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_cancel_wait_for
TEST_CASE("test_cancel_wait_for: cancelling a wait_for with a timeout cancels the awaited task", "[cpython][wait_for]") {
    coring::run(check_cancel_wait_for(60s));
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_cancel_suppressed
TEST_CASE("test_wait_for_cancel_suppressed: a child that swallows the timeout's cancellation returns its value", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        auto return_42 = []() -> coring::task<int> {
            try {
                co_await coring::sleep(10s);
            } catch (const coring::cancelled_error&) {
            }
            co_return 42;
        };
        const int res = co_await coring::wait_for(return_42(), 20ms);
        CHECK(res == 42);
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_issue86296
TEST_CASE("test_wait_for_issue86296: a task whose wait_for already returned is cancelled at its next await", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        auto inner = []() -> coring::task<std::string> { co_return "done"; };
        auto inner_task = coring::create_task(inner());
        bool reached_end = false;
        auto wait_for_coro = [&]() -> coring::task<> {
            co_await coring::wait_for(inner_task, 100s);
            co_await coring::sleep(1s);
            reached_end = true;
        };
        auto task = coring::create_task(wait_for_coro());
        CHECK_FALSE(task.done());
        co_await coring::sleep(0s);  // run the task
        task.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(task);
        CHECK(cancelled);
        CHECK(inner_task.done());
        const std::string inner_result = co_await inner_task;
        CHECK(inner_result == "done");
        CHECK_FALSE(reached_end);
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_wait_for_issue86296 (CPython 3.12's version: wait_for of a coroutine)
TEST_CASE("test_wait_for_issue86296 (coroutine form): a task cancelled while its wait_for's coroutine is about to start ends cancelled", "[cpython][wait_for]") {
    coring::run([]() -> coring::task<> {
        auto inner = []() -> coring::task<> { co_return; };
        bool reached_end = false;
        auto wait_for_coro = [&]() -> coring::task<> {
            co_await coring::wait_for(inner(), 100s);
            co_await coring::sleep(1s);
            reached_end = true;
        };
        auto task = coring::create_task(wait_for_coro());
        co_await coring::sleep(0s);
        CHECK_FALSE(task.done());
        task.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(task);
        CHECK(cancelled);
        CHECK_FALSE(reached_end);
    }());
}

// ------------------------------------------------------------------------- WaitForShieldTests

// CPython Lib/test/test_asyncio/test_waitfor.py: test_zero_timeout
TEST_CASE("test_zero_timeout: wait_for(shield(task), 0) times out and leaves the task running", "[cpython][wait_for][shield]") {
    coring::run([]() -> coring::task<> {
        auto coro = []() -> coring::task<std::string> {
            co_await coring::sleep(10ms);
            co_return "done";
        };
        auto task = coring::create_task(coro());
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(coring::shield(task), 0s));
        CHECK(timed_out);
        // The task runs in the background. (asyncio also checks that the task shield() made is
        // cancelled; coring's shield is an awaitable, which wait_for wraps in a task of its own.)
        CHECK_FALSE(task.done());
        CHECK_FALSE(task.cancelled());
        co_await coring::sleep(50ms);
        CHECK(task.done());
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_none_timeout
TEST_CASE("test_none_timeout: wait_for(shield(task), None) runs the task to completion", "[cpython][wait_for][shield]") {
    coring::run([]() -> coring::task<> {
        auto coro = []() -> coring::task<std::string> {
            co_await coring::sleep(20ms);
            co_return "done";
        };
        auto task = coring::create_task(coro());
        co_await coring::wait_for(coring::shield(task), no_timeout);
        CHECK(task.done());
        const std::string result = co_await task;
        CHECK(result == "done");
    }());
}

// CPython Lib/test/test_asyncio/test_waitfor.py: test_shielded_timeout
TEST_CASE("test_shielded_timeout: shield keeps the timeout from cancelling the task", "[cpython][wait_for][shield]") {
    coring::run([]() -> coring::task<> {
        auto coro = []() -> coring::task<std::string> {
            co_await coring::sleep(50ms);
            co_return "done";
        };
        auto task = coring::create_task(coro());
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(coring::shield(task), 10ms));
        CHECK(timed_out);
        CHECK_FALSE(task.done());
        CHECK_FALSE(task.cancelled());
        const std::string result = co_await task;
        CHECK(result == "done");
    }());
}
