// Tests of coring/thread/to_thread.hpp: blocking calls on the loop's thread pool.
#include <coring/thread/to_thread.hpp>

#include <coring/debug.hpp>
#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

int add(int a, int b) { return a + b; }

struct custom_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace

TEST_CASE("to_thread - yields the function's value, computed on another thread", "[to_thread]") {
    coring::run([]() -> coring::task<> {
        const int sum = co_await coring::to_thread(add, 2, 40);
        CHECK(sum == 42);
        const std::thread::id loop_thread = std::this_thread::get_id();
        const std::thread::id worker = co_await coring::to_thread([] { return std::this_thread::get_id(); });
        CHECK(worker != loop_thread);
        std::string s = co_await coring::to_thread([](std::string a, const std::string& b) { return a + b; }, std::string("to_"), std::string("thread"));
        CHECK(s == "to_thread");
    }());
}

TEST_CASE("to_thread - a void function runs, and std::ref passes a reference to it", "[to_thread]") {
    coring::run([]() -> coring::task<> {
        int counter = 0;
        co_await coring::to_thread([](int& c) { c += 5; }, std::ref(counter));
        CHECK(counter == 5);
    }());
}

TEST_CASE("to_thread - move-only values go in and come back", "[to_thread]") {
    coring::run([]() -> coring::task<> {
        auto owned = std::make_unique<int>(7);
        std::unique_ptr<int> back = co_await coring::to_thread([](std::unique_ptr<int> p) { *p *= 6; return p; }, std::move(owned));
        REQUIRE(back != nullptr);
        CHECK(*back == 42);
    }());
}

TEST_CASE("to_thread - a function returning a reference gives that reference", "[to_thread]") {
    coring::run([]() -> coring::task<> {
        int target = 1;
        int& ref = co_await coring::to_thread([](int& t) -> int& { return t; }, std::ref(target));
        CHECK(&ref == &target);
    }());
}

TEST_CASE("to_thread - rethrows the function's exception with its type", "[to_thread]") {
    coring::run([]() -> coring::task<> {
        try {
            (void)co_await coring::to_thread([]() -> int { throw custom_error("from the worker"); });
            FAIL("no exception");
        } catch (const custom_error& e) {
            CHECK(std::string(e.what()) == "from the worker");
        }
    }());
}

namespace {

// Returns v after blocking its thread for 200 ms.
coring::task<int> blocking_200ms(int v) {
    co_return co_await coring::to_thread([](int x) {
        std::this_thread::sleep_for(200ms);
        return x;
    }, v);
}

}  // namespace

TEST_CASE("to_thread - the loop keeps running while a call blocks its thread", "[to_thread]") {
    coring::run([]() -> coring::task<> {
        int ticks = 0;
        auto ticker = [](int& t) -> coring::task<> {
            for (int i = 0; i < 5; ++i) {
                co_await coring::sleep(5ms);
                ++t;
            }
        };
        auto tick = coring::create_task(ticker(ticks));
        auto call = coring::create_task(blocking_200ms(7));
        co_await tick;
        CHECK_FALSE(call.done());  // the five ticks came while the call still blocked
        CHECK(ticks == 5);
        const int v = co_await call;
        CHECK(v == 7);
    }());
}

TEST_CASE("to_thread - calls run concurrently", "[to_thread]") {
    coring::run([]() -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        std::vector<coring::task_handle<int>> calls;
        for (int i = 0; i < 3; ++i) calls.push_back(coring::create_task(blocking_200ms(i)));
        int total = 0;
        for (auto& c : calls) total += co_await c;
        CHECK(total == 3);
        CHECK(coring_test::ms_since(start) < 500);  // three 200 ms calls side by side, not 600 ms
    }());
}

TEST_CASE("to_thread - cancelling waits for the running call, then throws cancelled_error", "[to_thread][cancel]") {
    coring::run([]() -> coring::task<> {
        std::atomic<bool> started{false};
        std::atomic<bool> finished{false};
        auto body = [](std::atomic<bool>& s, std::atomic<bool>& f) -> coring::task<int> {
            co_return co_await coring::to_thread([&s, &f] {
                s = true;
                std::this_thread::sleep_for(50ms);
                f = true;
                return 1;
            });
        };
        auto h = coring::create_task(body(started, finished));
        while (!started) co_await coring::sleep(1ms);  // it runs on a worker now
        h.cancel();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(cancelled);
        CHECK(finished);  // the frame (arguments, result) was kept until the call returned
    }());
}

TEST_CASE("to_thread - a call still queued is taken back at once and never runs", "[to_thread][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::thread_pool& pool = coring::get_running_loop().default_executor();
        // Occupy every worker.
        std::atomic<bool> release{false};
        std::vector<coring::task_handle<>> busy;
        auto blocker = [](std::atomic<bool>& r) -> coring::task<> {
            co_await coring::to_thread([&r] {
                while (!r) std::this_thread::sleep_for(1ms);
            });
        };
        for (std::size_t i = 0; i < pool.max_threads(); ++i) busy.push_back(coring::create_task(blocker(release)));
        co_await coring::sleep(20ms);
        std::atomic<bool> ran{false};
        auto queued = [](std::atomic<bool>& r) -> coring::task<> { co_await coring::to_thread([&r] { r = true; }); };
        auto h = coring::create_task(queued(ran));
        co_await coring::sleep(5ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 100);  // did not wait for a worker
        release = true;
        for (auto& b : busy) co_await b;
        CHECK_FALSE(ran);
    }());
}

TEST_CASE("to_thread - a cancel after the result came back hits the next suspension point", "[to_thread][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::event_loop& loop = coring::get_running_loop();
        int got = 0;
        bool after_sleep = false;
        auto body = [](int& out, bool& slept) -> coring::task<> {
            out = co_await coring::to_thread([] { return 9; });
            co_await coring::sleep(10s);
            slept = true;
        };
        auto h = coring::create_task(body(got, after_sleep));
        // The cancel must land in the window between the result's arrival on the loop (the
        // awaiter is finished and its frame queued) and the frame's resumption. A callback that
        // re-queues itself every iteration sees that state first: the frame is queued behind it.
        struct cancel_when_finished {
            coring::event_loop* loop;
            coring::task_handle<>* target;
            bool* sent;
            int polls_left;
            void operator()() {
                const bool finished = coring::format_tasks(*loop).find("to_thread (finished, about to resume)") != std::string::npos;
                if (!finished && --polls_left > 0) return loop->call_soon(*this);
                *sent = finished;
                target->cancel();
            }
        };
        bool sent_in_window = false;
        loop.call_soon(cancel_when_finished{&loop, &h, &sent_in_window, 1'000'000});
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(sent_in_window);
        CHECK(got == 9);  // the result won over the cancel ...
        CHECK(cancelled);  // ... which the sleep, the next suspension point, received
        CHECK_FALSE(after_sleep);
    }());
}

TEST_CASE("to_thread - a task cancelled at loop close waits for its call", "[to_thread][cancel]") {
    std::atomic<bool> started{false};
    std::atomic<bool> finished{false};
    coring::run([](std::atomic<bool>& s, std::atomic<bool>& f) -> coring::task<> {
        auto straggler = [](std::atomic<bool>& begun, std::atomic<bool>& done) -> coring::task<> {
            co_await coring::to_thread([&begun, &done] {
                begun = true;
                std::this_thread::sleep_for(40ms);
                done = true;
            });
        };
        coring::create_task(straggler(s, f));
        while (!s) co_await coring::sleep(1ms);  // running on a worker (a queued call would be taken back)
    }(started, finished));
    CHECK(finished);
}
