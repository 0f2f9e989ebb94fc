// Tests of coring/wait.hpp.
#include <coring/wait.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/delayed_tasks.hpp"
#include "support/helpers.hpp"

#include <stdexcept>
#include <vector>

using namespace std::chrono_literals;
using coring_test::ms_since;
using coring_test::throws;
using coring_test::throws_after;
using coring_test::value_after;

namespace {

std::vector<int> results_of(const std::vector<coring::task_handle<int>>& hs) {
    std::vector<int> out;
    for (const auto& h : hs) out.push_back(h.result());
    return out;
}

}  // namespace

TEST_CASE("wait - all_completed waits for every task", "[wait]") {
    coring::run([]() -> coring::task<> {
        std::vector<coring::task_handle<int>> hs{coring::create_task(value_after(20ms, 1)), coring::create_task(value_after(5ms, 2))};
        auto [done, pending] = co_await coring::wait(hs);
        CHECK(done.size() == 2);
        CHECK(pending.empty());
        CHECK(results_of(done) == std::vector<int>{1, 2});  // input order
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait - first_completed returns as soon as one finished, cancelling nothing", "[wait]") {
    coring::run([]() -> coring::task<> {
        std::vector<coring::task_handle<int>> hs{coring::create_task(value_after(200ms, 1)), coring::create_task(value_after(5ms, 2)),
                                                 coring::create_task(value_after(200ms, 3))};
        const auto start = std::chrono::steady_clock::now();
        auto [done, pending] = co_await coring::wait(hs, coring::return_when::first_completed);
        CHECK(ms_since(start) < 100.0);
        REQUIRE(done.size() == 1);
        CHECK(done[0].result() == 2);
        REQUIRE(pending.size() == 2);
        for (auto& p : pending) CHECK_FALSE(p.cancelled());
        for (auto& p : pending) p.cancel();
    }());
}

TEST_CASE("wait - first_exception returns at the first failure, or waits for all", "[wait]") {
    coring::run([]() -> coring::task<> {
        std::vector<coring::task_handle<int>> hs{coring::create_task(value_after(200ms, 1)), coring::create_task(throws_after<std::runtime_error>(5ms, "failed"))};
        const auto start = std::chrono::steady_clock::now();
        auto [done, pending] = co_await coring::wait(hs, coring::return_when::first_exception);
        CHECK(ms_since(start) < 100.0);
        REQUIRE(done.size() == 1);
        CHECK(done[0].exception() != nullptr);
        CHECK(pending.size() == 1);
        pending[0].cancel();

        // No failure: behaves as all_completed.
        std::vector<coring::task_handle<int>> ok{coring::create_task(value_after(5ms, 1)), coring::create_task(value_after(10ms, 2))};
        auto [all_done, none_pending] = co_await coring::wait(ok, coring::return_when::first_exception);
        CHECK(all_done.size() == 2);
        CHECK(none_pending.empty());
    }());
}

TEST_CASE("wait - a cancelled task does not count as an exception for first_exception", "[wait]") {
    coring::run([]() -> coring::task<> {
        auto victim = coring::create_task(value_after(1h, 1));
        auto other = coring::create_task(value_after(30ms, 2));
        coring::get_running_loop().call_later(5ms, [victim]() mutable { victim.cancel(); });
        std::vector<coring::task_handle<int>> both{victim, other};  // g++ 12: no braced list inside co_await
        auto [done, pending] = co_await coring::wait(both, coring::return_when::first_exception);
        CHECK(done.size() == 2);
        CHECK(pending.empty());
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait - a timeout returns what has finished, never raises, never cancels", "[wait]") {
    coring::run([]() -> coring::task<> {
        std::vector<coring::task_handle<int>> hs{coring::create_task(value_after(5ms, 1)), coring::create_task(value_after(1h, 2))};
        const auto start = std::chrono::steady_clock::now();
        auto [done, pending] = co_await coring::wait(hs, coring::return_when::all_completed, 30ms);
        const double elapsed = ms_since(start);
        CHECK(elapsed >= 30.0);
        CHECK(elapsed < 200.0);
        CHECK(done.size() == 1);
        REQUIRE(pending.size() == 1);
        CHECK_FALSE(pending[0].done());
        pending[0].cancel();
    }());
}

TEST_CASE("wait - an empty set is an invalid_argument", "[wait]") {
    coring::run([]() -> coring::task<> {
        CHECK_THROWS_AS(coring::wait(std::vector<coring::task_handle<int>>{}), std::invalid_argument);
        co_return;
    }());
}

TEST_CASE("wait - handles already done return at once, all done", "[wait]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(0ms, 1));
        co_await h;
        std::vector<coring::task_handle<int>> finished{h};
        auto [done, pending] = co_await coring::wait(finished, coring::return_when::first_completed, 0s);
        CHECK(done.size() == 1);
        CHECK(pending.empty());
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait - a timeout that has already passed returns at once, the running task pending", "[wait]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(0ms, 1));
        co_await h;
        auto slow = coring::create_task(value_after(1h, 2));
        std::vector<coring::task_handle<int>> both{h, slow};
        auto r = co_await coring::wait(both, coring::return_when::all_completed, 0s);
        CHECK(r.done.size() == 1);
        REQUIRE(r.pending.size() == 1);
        CHECK_FALSE(slow.done());
        slow.cancel();
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait - works on any_task_handle sets of mixed types", "[wait]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::create_task(value_after(2ms, 1));
        auto b = coring::create_task([]() -> coring::task<std::string> {
            co_await coring::sleep(1ms);
            co_return "s";
        }());
        std::vector<coring::any_task_handle> mixed{a, b};
        auto [done, pending] = co_await coring::wait(mixed);
        CHECK(done.size() == 2);
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait - cancelling the waiter leaves the tasks running", "[wait][cancel]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(30ms, 4));
        auto waiter = [](coring::task_handle<int> t) -> coring::task<> {
            std::vector<coring::task_handle<int>> one{t};
            (void)co_await coring::wait(one);
        };
        auto w = coring::create_task(waiter(h));
        co_await coring::sleep(5ms);
        w.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(w);
        CHECK(cancelled);
        CHECK_FALSE(h.done());
        const int v = co_await h;
        CHECK(v == 4);
    }(), coring_test::virtual_clock);
}

TEST_CASE("wait - a task given twice appears once, as asyncio takes a set", "[wait]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::create_task(value_after(1ms, 1));
        auto b = coring::create_task(value_after(1h, 2));
        std::vector twice{a, b, a, b};  // g++ 12 rejects a braced list inside co_await
        auto [done, pending] = co_await coring::wait(twice, coring::return_when::first_completed);
        REQUIRE(done.size() == 1);
        CHECK(done[0] == a);
        REQUIRE(pending.size() == 1);
        CHECK(pending[0] == b);
        b.cancel();
    }(), coring_test::virtual_clock);
}
