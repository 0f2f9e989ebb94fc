// Tests of coring/gather.hpp.
#include <coring/gather.hpp>

#include <coring/io/ops.hpp>
#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/delayed_tasks.hpp"
#include "support/helpers.hpp"
#include "support/lifecycle.hpp"

#include <unistd.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <variant>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;
using coring_test::ms_since;
using coring_test::throws_after;
using coring_test::value_after;
using coring_test::virtual_clock;

namespace {

coring::task<std::string> text_after(std::chrono::milliseconds d, std::string s) {
    co_await coring::sleep(d);
    co_return s;
}

coring::task<> nothing_after(std::chrono::milliseconds d) { co_await coring::sleep(d); }

struct boom : std::runtime_error {
    boom() : std::runtime_error("boom") {}
};

// Counts how many of these have started and not finished.
coring::task<int> counted_sleeper(int& running, std::chrono::milliseconds d, int v) {
    ++running;
    struct leave {
        int& r;
        ~leave() { --r; }
    } on_exit{running};
    co_await coring::sleep(d);
    co_return v;
}

}  // namespace

TEST_CASE("gather - results keep argument order whatever the completion order", "[gather]") {
    coring::run([]() -> coring::task<> {
        auto [a, b, c] = co_await coring::gather(value_after(30ms, 1), text_after(10ms, "two"), value_after(20ms, 3));
        CHECK(a == 1);
        CHECK(b == "two");
        CHECK(c == 3);

        std::vector<coring::task<int>> tasks;
        for (int i = 0; i < 10; ++i) tasks.push_back(value_after(std::chrono::milliseconds(20 - 2 * i), i));
        std::vector<int> all = co_await coring::gather(std::move(tasks));
        CHECK(all == std::vector<int>{0, 1, 2, 3, 4, 5, 6, 7, 8, 9});
    }(), virtual_clock);
}

TEST_CASE("gather - children start in argument order, as asyncio creates them", "[gather]") {
    coring::run([]() -> coring::task<> {
        std::vector<int> started;
        auto child = [](std::vector<int>& log, int id) -> coring::task<int> {
            log.push_back(id);
            co_await coring::sleep(1ms);
            co_return id;
        };
        co_await coring::gather(child(started, 1), child(started, 2), child(started, 3));
        CHECK(started == std::vector<int>{1, 2, 3});
    }(), virtual_clock);
}

TEST_CASE("gather - children run concurrently: three 100 ms sleeps take about 100 ms", "[gather][timing]") {
    coring::run([]() -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        co_await coring::gather(nothing_after(100ms), nothing_after(100ms), nothing_after(100ms));
        const double elapsed = ms_since(start);
        CHECK(elapsed >= 100.0);
        CHECK(elapsed < 180.0);
    }());
}

TEST_CASE("gather - void results are std::monostate", "[gather]") {
    coring::run([]() -> coring::task<> {
        auto results = co_await coring::gather(nothing_after(1ms), value_after(1ms, 5));
        STATIC_REQUIRE(std::is_same_v<std::tuple_element_t<0, decltype(results)>, std::monostate>);
        CHECK(std::get<1>(results) == 5);
    }(), coring_test::virtual_clock);
}

TEST_CASE("gather - of handles and futures gives their results in argument order", "[gather]") {
    coring::run(
        []() -> coring::task<> {
            auto h1 = coring::create_task(value_after(10ms, 1));
            auto h2 = coring::create_task(value_after(5ms, 2));
            coring::future<std::string> f;
            coring::get_running_loop().call_later(8ms, [f]() mutable { f.set_result("future"); });
            auto [a, b, c] = co_await coring::gather(h1, h2, f);
            CHECK(a == 1);
            CHECK(b == 2);
            CHECK(c == "future");
        }(),
        virtual_clock);
}

TEST_CASE("gather - a gathered handle stays awaitable afterwards", "[gather]") {
    coring::run(
        []() -> coring::task<> {
            auto h1 = coring::create_task(value_after(10ms, 1));
            (void)co_await coring::gather(h1);
            const int again = co_await h1;  // the handles are still the caller's
            CHECK(again == 1);
        }(),
        virtual_clock);
}

TEST_CASE("gather - of a vector of handles gives their results in vector order", "[gather]") {
    coring::run(
        []() -> coring::task<> {
            std::vector<coring::task_handle<int>> hs{coring::create_task(value_after(2ms, 7)), coring::create_task(value_after(1ms, 8))};
            std::vector<int> from_handles = co_await coring::gather(hs);
            CHECK(from_handles == std::vector<int>{7, 8});
        }(),
        virtual_clock);
}

TEST_CASE("gather - of other awaitables (sleep, io ops) wraps them in tasks", "[gather]") {
    coring::run([]() -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        co_await coring::gather(coring::sleep(30ms), coring::sleep(30ms), coring::sleep(30ms), coring::io::nop());
        CHECK(ms_since(start) < 80.0);  // one after the other would take 90 ms
    }());
}

TEST_CASE("gather - move-only results are moved out of the children", "[gather]") {
    coring::run([]() -> coring::task<> {
        auto make = [](int v) -> coring::task<std::unique_ptr<int>> {
            co_await coring::sleep(1ms);
            co_return std::make_unique<int>(v);
        };
        auto [a, b] = co_await coring::gather(make(1), make(2));
        REQUIRE(a);
        REQUIRE(b);
        CHECK(*a + *b == 3);
    }(), coring_test::virtual_clock);
}

TEST_CASE("gather - of nothing completes at once", "[gather]") {
    coring::run([]() -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        std::tuple<> none = co_await coring::gather();
        (void)none;
        CHECK(ms_since(start) < 20.0);
    }());
}

TEST_CASE("gather - of an empty vector completes at once with an empty vector", "[gather]") {
    coring::run([]() -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        std::vector<int> empty = co_await coring::gather(std::vector<coring::task<int>>{});
        CHECK(empty.empty());
        CHECK(ms_since(start) < 20.0);
    }());
}

TEST_CASE("gather - fail fast: cancels the rest, waits for them, rethrows the first error", "[gather][cancel]") {
    const auto frames_before = live_frames();
    int running = 0;
    coring::run([](int& r) -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        bool threw = false;
        try {
            co_await coring::gather(counted_sleeper(r, 1h, 1), throws_after<boom>(10ms), counted_sleeper(r, 1h, 3));
        } catch (const boom&) {
            threw = true;
        }
        CHECK(threw);
        CHECK(r == 0);  // no child still running when gather rethrows
        CHECK(coring::all_tasks().size() == 1);
        CHECK(ms_since(start) < 500.0);
    }(running));
    CHECK(live_frames() == frames_before);
}

TEST_CASE("gather - fail fast with children that clean up slowly waits for their cleanup", "[gather][cancel]") {
    coring::run([]() -> coring::task<> {
        bool cleaned = false;
        auto slow_cleanup = [](bool& c) -> coring::task<int> {
            try {
                co_await coring::sleep(1h);
            } catch (const coring::cancelled_error&) {
            }
            co_await coring::sleep(30ms);
            c = true;
            co_return 0;
        };
        const auto start = std::chrono::steady_clock::now();
        const bool threw = co_await coring_test::throws<boom>(coring::gather(slow_cleanup(cleaned), throws_after<boom>(5ms)));
        CHECK(threw);
        CHECK(cleaned);
        CHECK(ms_since(start) >= 35.0);
    }());
}

TEST_CASE("gather - a cancelled child fails the gather with cancelled_error", "[gather][cancel]") {
    coring::run([]() -> coring::task<> {
        auto victim = coring::create_task(value_after(1h, 1));
        coring::get_running_loop().call_later(5ms, [victim]() mutable { victim.cancel(); });
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(coring::gather(victim, value_after(1h, 2)));
        CHECK(cancelled);
        CHECK(coring::all_tasks().size() == 1);
    }(), virtual_clock);
}

TEST_CASE("gather - the other failures are not reported as unretrieved", "[gather]") {
    coring::event_loop loop(virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        auto fails_in_cleanup = []() -> coring::task<int> {
            try {
                co_await coring::sleep(1h);
            } catch (const coring::cancelled_error&) {
            }
            throw std::logic_error("second failure");
        };
        const bool threw = co_await coring_test::throws<boom>(coring::gather(throws_after<boom>(1ms), fails_in_cleanup()));
        CHECK(threw);
    }());
    loop.close();
    CHECK(reports.reports.empty());
}

TEST_CASE("gather - of children that all failed already: the first rethrown, none reported", "[gather]") {
    coring::event_loop loop(virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        auto first = coring::create_task(throws_after<boom>(0ms));
        auto second = coring::create_task([]() -> coring::task<int> {
            throw std::logic_error("second failure");
            co_return 0;
        }());
        co_await coring::sleep(5ms);
        REQUIRE(first.done());
        REQUIRE(second.done());
        // Every child is done: await_ready takes the fast path, await_suspend never runs.
        const bool threw = co_await coring_test::throws<boom>(coring::gather(first, second));
        CHECK(threw);
    }());
    loop.close();
    CHECK(reports.reports.empty());
}

TEST_CASE("gather - return_exceptions gives every child's outcome, a failure cancelling none", "[gather]") {
    coring::run(
        []() -> coring::task<> {
            auto [a, b, c] = co_await coring::gather(coring::return_exceptions, value_after(20ms, 1), throws_after<boom>(1ms), nothing_after(10ms));
            REQUIRE(a.has_value());
            CHECK(a.value() == 1);
            CHECK_FALSE(b.has_value());
            CHECK_THROWS_AS(b.value(), boom);
            CHECK(b.error() != nullptr);
            CHECK(c.has_value());
        }(),
        virtual_clock);
}

TEST_CASE("gather - return_exceptions over a vector gives every child's outcome in order", "[gather]") {
    coring::run(
        []() -> coring::task<> {
            std::vector<coring::task<int>> ts;
            ts.push_back(throws_after<boom>(1ms));
            ts.push_back(value_after(2ms, 9));
            auto rs = co_await coring::gather(coring::return_exceptions, std::move(ts));
            REQUIRE(rs.size() == 2);
            CHECK_FALSE(rs[0].has_value());
            CHECK(rs[1].value() == 9);
        }(),
        virtual_clock);
}

TEST_CASE("gather - cancelling the gatherer cancels every child and waits for them", "[gather][cancel]") {
    const auto frames_before = live_frames();
    int running = 0;
    coring::run([](int& r) -> coring::task<> {
        auto gatherer = [](int& rr) -> coring::task<> {
            co_await coring::gather(counted_sleeper(rr, 1h, 1), counted_sleeper(rr, 1h, 2));
        };
        auto g = coring::create_task(gatherer(r));
        co_await coring::sleep(5ms);
        CHECK(r == 2);
        g.cancel();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(g);
        CHECK(cancelled);
        CHECK(r == 0);
    }(running), virtual_clock);
    CHECK(live_frames() == frames_before);
}

TEST_CASE("gather - a kernel operation in a cancelled child is cancelled before gather returns", "[gather][cancel][io]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        std::array<std::byte, 16> buffer{};
        auto reader = [](int fd, std::span<std::byte> buf) -> coring::task<std::size_t> { co_return co_await coring::io::read(fd, buf); };
        const auto start = std::chrono::steady_clock::now();
        const bool threw = co_await coring_test::throws<boom>(coring::gather(reader(fds[0], buffer), throws_after<boom>(5ms)));
        CHECK(threw);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);  // the read's CQE came back first
        CHECK(ms_since(start) < 200.0);
        ::close(fds[0]);
        ::close(fds[1]);
    }());
}

TEST_CASE("gather - lifecycle matrix: child end x timing relative to the gather's own cancel", "[gather][cancel][matrix]") {
    using namespace coring_test;
    for_each_matrix_cell([](child_end e, when_end w, int& r) -> coring::task<> {
        auto gatherer = [](child_end ee, when_end ww, int& rr) -> coring::task<> {
            co_await coring::gather(matrix_child(ee, ww, rr), matrix_sibling(rr));
        };
        auto g = coring::create_task(gatherer(e, w, r));
        co_await coring::sleep(20ms);
        g.cancel();
        // Ended before the cancel by failing: gather failed fast already.
        const bool failed_fast = w == when_end::before && e != child_end::succeeds;
        if (failed_fast) {
            CHECK(g.done());
            if (e == child_end::throws) {
                const bool threw = co_await throws<child_error>(g);
                CHECK(threw);
            } else {
                const bool cancelled = co_await throws<coring::cancelled_error>(g);
                CHECK(cancelled);
            }
        } else {
            const bool cancelled = co_await throws<coring::cancelled_error>(g);
            CHECK(cancelled);
        }
        CHECK(r == 0);  // the gather never finishes while a child runs
    });
}

// Regression: gather's await_suspend cancelled the futures still pending (fail fast), which
// finished them on the spot; the last one queued the gatherer's wake-up, and await_suspend then
// returned false, so the frame ran on at once and was resumed a second time from the ready queue
// after its task had finished (a heap-use-after-free under ASan).
TEST_CASE("gather - of futures, one failed before the gatherer waits: fails fast once", "[gather][cancel]") {
    const auto frames_before = live_frames();
    coring::run([]() -> coring::task<> {
        coring::future<int> a;
        coring::future<int> b;
        coring::future<int> c;
        int resumed_after_gather = 0;
        auto gatherer = [&]() -> coring::task<> {
            try {
                co_await coring::gather(a, b, c);
            } catch (const std::runtime_error&) {
                ++resumed_after_gather;
                throw;
            }
        };
        auto h = coring::create_task(gatherer());
        a.set_result(1);
        b.set_exception(std::make_exception_ptr(std::runtime_error("x")));
        for (int i = 0; i < 5; ++i) co_await coring::sleep(0s);
        REQUIRE(h.done());
        CHECK(resumed_after_gather == 1);
        CHECK_THROWS_AS(h.result(), std::runtime_error);
        CHECK(c.cancelled());  // the one still pending was cancelled by the fail-fast
        CHECK(a.result() == 1);
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("gather - of futures, with a cancel pending when it first waits: cancels them, then cancelled_error", "[gather][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> a;
        coring::future<> b;
        int resumed = 0;
        auto gatherer = [&]() -> coring::task<> {
            coring::current_task().cancel();  // pending: delivered at gather's suspension point
            try {
                co_await coring::gather(a, b);
            } catch (const coring::cancelled_error&) {
                ++resumed;
                throw;
            }
        };
        auto h = coring::create_task(gatherer());
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(cancelled);
        for (int i = 0; i < 3; ++i) co_await coring::sleep(0s);
        CHECK(resumed == 1);
        CHECK(a.cancelled());
        CHECK(b.cancelled());
    }());
}

TEST_CASE("gather - of a cancelled future and a pending one: cancelled_error, the other cancelled", "[gather][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> a;
        coring::future<int> b;
        auto gatherer = [&]() -> coring::task<int> {
            auto [x, y] = co_await coring::gather(a, b);
            co_return x + y;
        };
        auto h = coring::create_task(gatherer());
        a.cancel();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
        CHECK(cancelled);
        CHECK(b.cancelled());
    }());
}
