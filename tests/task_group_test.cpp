// Tests of coring/task_group.hpp.
#include <coring/task_group.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/delayed_tasks.hpp"
#include "support/helpers.hpp"
#include "support/lifecycle.hpp"

#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;
using coring_test::ms_since;
using coring_test::throws;
using coring_test::throws_after;
using coring_test::value_after;

namespace {

struct first_failure : std::runtime_error {
    first_failure() : std::runtime_error("first") {}
};

struct children_one_failing {
    coring::task_handle<int> slow;    // sleeps an hour
    coring::task_handle<int> second;  // fails with std::logic_error once cancelled
};

// Starts three children in `group`: `slow`, one that fails with first_failure after 5 ms, and
// `second`.
children_one_failing start_children_one_failing(coring::task_group& group) {
    auto slow = group.create_task(value_after(1h, 1));
    group.create_task(throws_after<first_failure>(5ms));
    auto second = group.create_task([]() -> coring::task<int> {
        try {
            co_await coring::sleep(1h);
        } catch (const coring::cancelled_error&) {
        }
        throw std::logic_error("second, while being cancelled");
    }());
    return {slow, second};
}

}  // namespace

TEST_CASE("task_group - join waits for every child", "[task_group]") {
    coring::run([]() -> coring::task<> {
        coring::task_group group;
        auto a = group.create_task(value_after(20ms, 1));
        auto b = group.create_task(value_after(10ms, 2));
        CHECK(group.running() == 2);
        const auto start = std::chrono::steady_clock::now();
        co_await group.join();
        CHECK(ms_since(start) >= 20.0);
        CHECK(group.running() == 0);
        CHECK(a.result() + b.result() == 3);
        CHECK(group.errors().empty());
    }());
}

TEST_CASE("task_group - the first failure cancels the other children promptly", "[task_group][cancel]") {
    const auto frames_before = live_frames();
    coring::run([]() -> coring::task<> {
        coring::task_group group;
        const children_one_failing children = start_children_one_failing(group);
        const auto start = std::chrono::steady_clock::now();
        (void)co_await throws<first_failure>(group.join());
        CHECK(ms_since(start) < 500.0);
        CHECK(children.slow.cancelled());
    }());
    CHECK(live_frames() == frames_before);
}

TEST_CASE("task_group - join rethrows the first failure once every child has finished", "[task_group][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::task_group group;
        const children_one_failing children = start_children_one_failing(group);
        const bool threw = co_await throws<first_failure>(group.join());
        CHECK(threw);
        CHECK(group.running() == 0);
        CHECK(children.second.done());
    }());
}

TEST_CASE("task_group - every failure, also one raised while cancelled, stays in errors()", "[task_group][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::task_group group;
        (void)start_children_one_failing(group);
        (void)co_await throws<first_failure>(group.join());
        REQUIRE(group.errors().size() == 2);
        CHECK_THROWS_AS(std::rethrow_exception(group.errors()[0]), first_failure);
        CHECK_THROWS_AS(std::rethrow_exception(group.errors()[1]), std::logic_error);
    }());
}

TEST_CASE("task_group - a child cancelled from outside is not a failure", "[task_group]") {
    coring::run([]() -> coring::task<> {
        coring::task_group group;
        auto victim = group.create_task(value_after(1h, 1));
        auto other = group.create_task(value_after(10ms, 2));
        coring::get_running_loop().call_later(2ms, [victim]() mutable { victim.cancel(); });
        co_await group.join();
        CHECK(victim.cancelled());
        CHECK(other.result() == 2);
        CHECK(group.errors().empty());
    }(), coring_test::virtual_clock);
}

TEST_CASE("task_group - cancelling the joiner cancels the children and waits for them", "[task_group][cancel]") {
    coring::run([]() -> coring::task<> {
        bool cleaned = false;
        auto joiner = [](bool& c) -> coring::task<> {
            coring::task_group group;
            group.create_task(value_after(1h, 1));
            group.create_task([](bool& cl) -> coring::task<int> {
                std::exception_ptr cancellation;
                try {
                    co_await coring::sleep(1h);
                } catch (const coring::cancelled_error&) {
                    cancellation = std::current_exception();
                }
                co_await coring::sleep(10ms);
                cl = true;
                std::rethrow_exception(cancellation);
            }(c));
            co_await group.join();
        };
        auto j = coring::create_task(joiner(cleaned));
        co_await coring::sleep(5ms);
        j.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(j);
        CHECK(cancelled);
        CHECK(cleaned);
    }(), coring_test::virtual_clock);
}

TEST_CASE("task_group - create_task after join or while aborting is an invalid_state_error", "[task_group]") {
    coring::run([]() -> coring::task<> {
        coring::task_group group;
        group.create_task(value_after(1ms, 1));
        co_await group.join();
        CHECK_THROWS_AS(group.create_task(value_after(1ms, 2)), coring::invalid_state_error);

        coring::task_group failing;
        failing.create_task(throws_after<first_failure>(1ms));
        failing.create_task(value_after(1h, 1));
        co_await coring::sleep(5ms);  // the failure happened: the group is cancelling the rest
        CHECK_THROWS_AS(failing.create_task(value_after(1ms, 2)), coring::invalid_state_error);
        const bool threw = co_await throws<first_failure>(failing.join());
        CHECK(threw);
    }());
}

TEST_CASE("task_group - destroyed with running children: reported loudly, children cancelled", "[task_group]") {
    coring::event_loop loop;
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        coring::task_handle<int> child;
        {
            coring::task_group group;
            child = group.create_task(value_after(1h, 1));
            co_await coring::sleep(1ms);
        }  // no join: a bug
        co_await coring::sleep(1ms);
        CHECK(child.cancelled());
    }());
    REQUIRE(reports.reports.size() == 1);
    CHECK(reports.reports[0].message.find("task_group destroyed while 1 of its children still run") == 0);
}

TEST_CASE("task_group - lifecycle matrix: child end x timing relative to the joiner's cancel", "[task_group][cancel][matrix]") {
    using namespace coring_test;
    for_each_matrix_cell([](child_end e, when_end w, int& r) -> coring::task<> {
        auto joiner = [](child_end ee, when_end ww, int& rr) -> coring::task<> {
            coring::task_group group;
            group.create_task(matrix_child(ee, ww, rr));
            group.create_task(matrix_sibling(rr));
            co_await group.join();
        };
        auto j = coring::create_task(joiner(e, w, r));
        co_await coring::sleep(20ms);
        j.cancel();
        if (w == when_end::before && e == child_end::throws) {
            // The failure ended the group before the cancel: join threw it.
            const bool threw = co_await throws<child_error>(j);
            CHECK(threw);
        } else {
            const bool cancelled = co_await throws<coring::cancelled_error>(j);
            CHECK(cancelled);
        }
        CHECK(r == 0);
    });
}
