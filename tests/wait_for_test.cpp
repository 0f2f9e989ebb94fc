// Tests of coring/wait_for.hpp: wait_for and timeout_at, each edge case on its own.
#include <coring/wait_for.hpp>

#include <coring/io/ops.hpp>
#include <coring/run.hpp>
#include <coring/shield.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/delayed_tasks.hpp"
#include "support/helpers.hpp"
#include "support/lifecycle.hpp"

#include <unistd.h>

#include <array>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;
using coring_test::ms_since;
using coring_test::throws;
using coring_test::value_after;

namespace {

// Sleeps an hour; records whether it was cancelled and finishes a 20 ms cleanup first.
coring::task<int> slow_to_cancel(bool& cancelled, bool& cleaned) {
    std::exception_ptr cancellation;
    try {
        co_await coring::sleep(1h);
    } catch (const coring::cancelled_error&) {
        cancelled = true;
        cancellation = std::current_exception();
    }
    co_await coring::sleep(20ms);
    cleaned = true;
    std::rethrow_exception(cancellation);
}

}  // namespace

TEST_CASE("wait_for - returns the value when the awaitable finishes in time", "[wait_for]") {
    coring::run([]() -> coring::task<> {
        const int v = co_await coring::wait_for(value_after(5ms, 42), 1s);
        CHECK(v == 42);
        const std::string s = co_await coring::timeout_at(coring::get_running_loop().time() + 1s, [](std::string x) -> coring::task<std::string> {
            co_await coring::sleep(1ms);
            co_return x;
        }("deadline"));
        CHECK(s == "deadline");
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - on expiry cancels the inner task, waits for its cleanup, then throws timeout_error", "[wait_for]") {
    const auto frames_before = live_frames();
    coring::run([]() -> coring::task<> {
        bool cancelled = false;
        bool cleaned = false;
        const auto start = std::chrono::steady_clock::now();
        bool timed_out = false;
        try {
            (void)co_await coring::wait_for(slow_to_cancel(cancelled, cleaned), 10ms);
        } catch (const coring::timeout_error&) {
            timed_out = true;
        }
        const double elapsed = ms_since(start);
        CHECK(timed_out);
        CHECK(cancelled);
        CHECK(cleaned);          // the cleanup finished before wait_for threw
        CHECK(elapsed >= 30.0);  // 10 ms deadline + 20 ms cleanup
        CHECK(elapsed < 300.0);
        CHECK(coring::all_tasks().size() == 1);
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("wait_for - an inner task that swallows the cancel and returns a value: the value is returned", "[wait_for]") {
    coring::run([]() -> coring::task<> {
        auto stubborn = []() -> coring::task<int> {
            try {
                co_await coring::sleep(1h);
            } catch (const coring::cancelled_error&) {
            }
            co_return 7;
        };
        const int v = co_await coring::wait_for(stubborn(), 5ms);
        CHECK(v == 7);
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - a cancel from outside is not turned into a timeout", "[wait_for][cancel]") {
    coring::run([]() -> coring::task<> {
        bool inner_cancelled = false;
        bool cleaned = false;
        auto waiter = [](bool& c, bool& cl) -> coring::task<int> { co_return co_await coring::wait_for(slow_to_cancel(c, cl), 1h); };
        auto w = coring::create_task(waiter(inner_cancelled, cleaned));
        co_await coring::sleep(5ms);
        w.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(w);
        CHECK(cancelled);
        CHECK(inner_cancelled);
        CHECK(cleaned);
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - a cancel from outside during the timeout's cleanup is still a cancellation", "[wait_for][cancel]") {
    coring::run([]() -> coring::task<> {
        bool inner_cancelled = false;
        bool cleaned = false;
        auto waiter = [](bool& c, bool& cl) -> coring::task<int> { co_return co_await coring::wait_for(slow_to_cancel(c, cl), 5ms); };
        auto w = coring::create_task(waiter(inner_cancelled, cleaned));
        co_await coring::sleep(12ms);  // the deadline passed; the inner task is in its 20 ms cleanup
        CHECK(inner_cancelled);
        CHECK_FALSE(cleaned);
        w.cancel();  // forwarded to the inner task, which is cancelled again inside its cleanup
        const bool cancelled = co_await throws<coring::cancelled_error>(w);
        CHECK(cancelled);  // a cancellation, not a timeout_error, although the deadline passed
        CHECK(coring::all_tasks().size() == 1);  // and the inner task has finished
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - nested: when the outer one expires, only it raises timeout_error", "[wait_for]") {
    coring::run([]() -> coring::task<> {
        std::string inner_saw;
        auto middle = [](std::string& saw) -> coring::task<int> {
            try {
                co_return co_await coring::wait_for(value_after(1h, 1), 1h);
            } catch (const coring::timeout_error&) {
                saw = "timeout";
                throw;
            } catch (const coring::cancelled_error&) {
                saw = "cancelled";
                throw;
            }
        };
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(middle(inner_saw), 10ms));
        CHECK(timed_out);
        CHECK(inner_saw == "cancelled");
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - nested: when the inner one expires, only it raises timeout_error", "[wait_for]") {
    coring::run([]() -> coring::task<> {
        auto middle = []() -> coring::task<int> {
            try {
                co_return co_await coring::wait_for(value_after(1h, 1), 5ms);
            } catch (const coring::timeout_error&) {
                co_return -1;  // handled here: the outer wait_for must not raise
            }
        };
        const int v = co_await coring::wait_for(middle(), 1h);
        CHECK(v == -1);
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - a zero timeout on something already finished returns its result", "[wait_for]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(0ms, 3));
        co_await h;
        const int from_handle = co_await coring::wait_for(h, 0s);
        CHECK(from_handle == 3);
        coring::future<std::string> f;
        f.set_result("ready");
        const std::string from_future = co_await coring::wait_for(f, -1s);
        CHECK(from_future == "ready");
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - a zero timeout on something unfinished cancels it and raises timeout_error", "[wait_for]") {
    coring::run([]() -> coring::task<> {
        bool ran = false;
        auto body = [](bool& r) -> coring::task<int> {
            r = true;
            co_return 1;
        };
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(body(ran), 0s));
        CHECK(timed_out);
        CHECK_FALSE(ran);  // cancelled before it started
    }());
}

TEST_CASE("wait_for - exceptions of the inner awaitable keep their type", "[wait_for]") {
    coring::run([]() -> coring::task<> {
        auto thrower = []() -> coring::task<int> {
            co_await coring::sleep(1ms);
            throw std::out_of_range("inner");
        };
        const bool threw = co_await throws<std::out_of_range>(coring::wait_for(thrower(), 1s));
        CHECK(threw);
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - on a task handle: the task is cancelled on timeout (asyncio's rule)", "[wait_for]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(1h, 1));
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(h, 5ms));
        CHECK(timed_out);
        CHECK(h.cancelled());
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - shield under wait_for: the timeout does not cancel the shielded task", "[wait_for][shield]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(30ms, 5));
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(coring::shield(h), 5ms));
        CHECK(timed_out);
        CHECK_FALSE(h.done());
        const int v = co_await h;  // still running, and finishes normally
        CHECK(v == 5);
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - on a kernel operation: the operation is cancelled in the kernel", "[wait_for][io]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        std::array<std::byte, 8> buffer{};
        buffer.fill(std::byte{1});
        const auto start = std::chrono::steady_clock::now();
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(coring::io::read(fds[0], buffer), 10ms));
        CHECK(timed_out);
        CHECK(ms_since(start) < 200.0);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);
        REQUIRE(::write(fds[1], "x", 1) == 1);
        co_await coring::sleep(2ms);
        CHECK(buffer[0] == std::byte{1});  // not written after the timeout
        ::close(fds[0]);
        ::close(fds[1]);
    }());
}

TEST_CASE("wait_for - of a plain awaitable such as sleep", "[wait_for]") {
    coring::run([]() -> coring::task<> {
        co_await coring::wait_for(coring::sleep(1ms), 1s);
        const bool timed_out = co_await throws<coring::timeout_error>(coring::wait_for(coring::sleep(1h), 5ms));
        CHECK(timed_out);
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait_for - lifecycle matrix: child end x timing relative to the awaiting task's cancel", "[wait_for][cancel][matrix]") {
    using namespace coring_test;
    for_each_matrix_cell([](child_end e, when_end w, int& r) -> coring::task<> {
        auto waiter = [](child_end ee, when_end ww, int& rr) -> coring::task<int> {
            co_return co_await coring::wait_for(matrix_child(ee, ww, rr), 1h);
        };
        auto t = coring::create_task(waiter(e, w, r));
        co_await coring::sleep(20ms);
        t.cancel();
        // Finished before the cancel, its own outcome stands; still running, the cancel is
        // forwarded to it and its reaction is the outcome (one that succeeds swallowed it).
        // Either way the waiter ends as the child did.
        if (w == when_end::before) CHECK(t.done());
        if (e == child_end::succeeds) {
            const int v = co_await t;
            CHECK(v == 1);
        } else if (e == child_end::throws) {
            const bool threw = co_await throws<child_error>(t);
            CHECK(threw);
        } else {
            const bool cancelled = co_await throws<coring::cancelled_error>(t);
            CHECK(cancelled);
        }
        CHECK(r == 0);
    });
}

// asyncio 3.12 runs wait_for's coroutine inside the waiting task: a cancel of that task reaches
// a coroutine that has started, so the code before its first await runs and its cleanup too.
TEST_CASE("wait_for - a cancel of the waiting task before the child's first step still starts the child", "[wait_for][cancel]") {
    coring::run([]() -> coring::task<> {
        bool started = false;
        bool cleaned_up = false;
        auto child = [](bool& s, bool& c) -> coring::task<int> {
            s = true;
            try {
                co_await coring::sleep(1h);
            } catch (const coring::cancelled_error&) {
                c = true;
                throw;
            }
            co_return 1;
        };
        auto waiter = [&]() -> coring::task<int> { co_return co_await coring::wait_for(child(started, cleaned_up), 10s); };
        auto w = coring::create_task(waiter());
        co_await coring::sleep(0s);  // the waiter has created the child, which has not run yet
        CHECK_FALSE(started);
        w.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(w);
        CHECK(cancelled);
        CHECK(started);
        CHECK(cleaned_up);

        // The same with the cancel pending when wait_for is awaited.
        started = cleaned_up = false;
        auto self_cancelling = [&]() -> coring::task<int> {
            coring::current_task().cancel();
            co_return co_await coring::wait_for(child(started, cleaned_up), 10s);
        };
        auto s = coring::create_task(self_cancelling());
        const bool self_cancelled = co_await throws<coring::cancelled_error>(s);
        CHECK(self_cancelled);
        CHECK(started);
        CHECK(cleaned_up);
    }());
}
