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

// ------------------------------------------------------------------------- with_task_group

namespace {

/// What awaiting `t` ended with: "value N", "cancelled", or the what() of another error.
coring::task<std::string> outcome_of(coring::task<int> t) {
    try {
        const int v = co_await std::move(t);
        co_return "value " + std::to_string(v);
    } catch (const coring::cancelled_error&) {
        co_return "cancelled";
    } catch (const std::exception& e) {
        co_return e.what();
    }
}

}  // namespace

TEST_CASE("with_task_group - a failing child interrupts the body at once (asyncio's async with TaskGroup)", "[with_task_group]") {
    coring::run([]() -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        const std::string how = co_await outcome_of(coring::with_task_group([](coring::task_group& tg) -> coring::task<int> {
            tg.create_task(throws_after<first_failure>(100ms));
            co_await coring::sleep(2s);  // cancelled when the child fails
            co_return 0;
        }));
        CHECK(how == "first");
        CHECK(ms_since(start) >= 90);
        CHECK(ms_since(start) < 1000);
        CHECK(coring::current_task().cancelling() == 0);  // the group withdrew its request
    }());
}

TEST_CASE("with_task_group - the body's value; children it did not await are waited for", "[with_task_group]") {
    coring::run([]() -> coring::task<> {
        bool late_child_done = false;
        const int sum = co_await coring::with_task_group([&](coring::task_group& tg) -> coring::task<int> {
            auto a = tg.create_task(value_after(10ms, 1));
            auto b = tg.create_task(value_after(20ms, 2));
            tg.create_task([](bool& done) -> coring::task<int> {
                co_await coring::sleep(60ms);
                done = true;
                co_return 0;
            }(late_child_done));
            const int x = co_await a;
            const int y = co_await b;
            co_return x + y;
        });
        CHECK(sum == 3);
        CHECK(late_child_done);
    }());
}

TEST_CASE("with_task_group - the body runs in the awaiting task", "[with_task_group]") {
    coring::run([]() -> coring::task<> {
        const std::uint64_t outer = coring::current_task().native_state()->id();
        std::uint64_t inner = 0;
        co_await coring::with_task_group([&](coring::task_group&) -> coring::task<> {
            inner = coring::current_task().native_state()->id();
            co_return;
        });
        CHECK(inner == outer);
    }());
}

TEST_CASE("with_task_group - a body that catches the cancellation may await during its cleanup", "[with_task_group]") {
    coring::run([]() -> coring::task<> {
        bool caught = false;
        bool cleaned_up = false;
        const std::string how = co_await outcome_of(coring::with_task_group([&](coring::task_group& tg) -> coring::task<int> {
            tg.create_task(throws_after<first_failure>(20ms));
            try {
                co_await coring::sleep(5s);
            } catch (const coring::cancelled_error&) {
                caught = true;
            }
            co_await coring::sleep(10ms);  // the request is spent: this await runs
            cleaned_up = true;
            co_return 1;
        }));
        CHECK(caught);
        CHECK(cleaned_up);
        CHECK(how == "first");  // the child's error, even though the body returned
    }());
}

TEST_CASE("with_task_group - the first child error is rethrown; the others go to the exception handler", "[with_task_group]") {
    coring::event_loop loop;
    coring_test::captured_reports reports;
    reports.install(loop);
    const std::string how = loop.run_until_complete(outcome_of(coring::with_task_group([](coring::task_group& tg) -> coring::task<int> {
        tg.create_task(throws_after<first_failure>(10ms));
        tg.create_task([]() -> coring::task<int> {
            try {
                co_await coring::sleep(5s);
            } catch (const coring::cancelled_error&) {
                // cancelled by the group: fails instead of ending cancelled
            }
            throw std::logic_error("failed while cancelled");
        }());
        co_await coring::sleep(5s);
        co_return 0;
    })));
    CHECK(how == "first");
    REQUIRE(reports.reports.size() == 1);
    CHECK(reports.reports[0].message.find("other errors of a task group") != std::string::npos);
    bool logic = false;
    try {
        std::rethrow_exception(reports.reports[0].exception);
    } catch (const std::logic_error& e) {
        logic = std::string(e.what()) == "failed while cancelled";
    }
    CHECK(logic);
}

TEST_CASE("with_task_group - a body error cancels the children and is rethrown", "[with_task_group]") {
    coring::run([]() -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        coring::task_handle<int> child;
        const std::string how = co_await outcome_of(coring::with_task_group([&](coring::task_group& tg) -> coring::task<int> {
            child = tg.create_task(value_after(5s, 1));
            co_await coring::sleep(10ms);
            throw std::runtime_error("body failed");
        }));
        CHECK(how == "body failed");
        CHECK(child.cancelled());
        CHECK(ms_since(start) < 1000);
    }());
}

TEST_CASE("with_task_group - cancelled from outside: the children are cancelled and waited for first", "[with_task_group]") {
    coring::run([]() -> coring::task<> {
        std::vector<std::string> order;
        auto h = coring::create_task(outcome_of(coring::with_task_group([&](coring::task_group& tg) -> coring::task<int> {
            tg.create_task([](std::vector<std::string>& o) -> coring::task<int> {
                std::exception_ptr stop;
                try {
                    co_await coring::sleep(5s);
                } catch (const coring::cancelled_error&) {
                    stop = std::current_exception();
                }
                co_await coring::sleep(30ms);  // a slow cleanup
                o.push_back("child cleaned up");
                std::rethrow_exception(stop);
            }(order));
            co_await coring::sleep(5s);
            co_return 0;
        })));
        co_await coring::sleep(20ms);
        h.cancel();
        const std::string how = co_await h;
        order.push_back("group left");
        CHECK(how == "cancelled");
        CHECK(order == std::vector<std::string>{"child cleaned up", "group left"});
    }());
}

TEST_CASE("with_task_group - a child error wins over an outside cancel, which stays pending", "[with_task_group]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task([]() -> coring::task<std::string> {
            const std::string how = co_await outcome_of(coring::with_task_group([](coring::task_group& tg) -> coring::task<int> {
                tg.create_task(throws_after<first_failure>(10ms));
                std::exception_ptr stop;
                try {
                    co_await coring::sleep(5s);  // cancelled by the group
                } catch (const coring::cancelled_error&) {
                    stop = std::current_exception();
                }
                coring::current_task().cancel();  // an outside cancel arrives meanwhile
                std::rethrow_exception(stop);
            }));
            const std::size_t left = coring::current_task().cancelling();
            try {
                co_await coring::sleep(0s);
            } catch (const coring::cancelled_error&) {
                co_return how + ", then cancelled with " + std::to_string(left) + " left";
            }
            co_return how + ", not cancelled";
        }());
        const std::string result = co_await h;
        CHECK(result == "first, then cancelled with 1 left");
    }());
}

TEST_CASE("with_task_group - a timeout inside a task group inside a timeout", "[with_task_group][timeout_scope]") {
    coring::run([]() -> coring::task<> {
        // The inner timeout expires: a timeout_error the group's body handles; all goes on.
        std::string inner;
        const int v = co_await coring::with_timeout(5s, [&](coring::timeout_scope&) -> coring::task<int> {
            co_return co_await coring::with_task_group([&](coring::task_group& tg) -> coring::task<int> {
                auto child = tg.create_task(value_after(10ms, 4));
                try {
                    co_await coring::with_timeout(20ms, [](coring::timeout_scope&) -> coring::task<> { co_await coring::sleep(5s); });
                } catch (const coring::timeout_error&) {
                    inner = "inner timeout";
                }
                co_return co_await child;
            });
        });
        CHECK(inner == "inner timeout");
        CHECK(v == 4);

        // The outer timeout expires: the inner scope lets the cancellation through, the group
        // cancels its children, and the outer scope turns it into its timeout.
        const auto start = std::chrono::steady_clock::now();
        coring::task_handle<int> child;
        std::string outcome;
        try {
            co_await coring::with_timeout(30ms, [&](coring::timeout_scope&) -> coring::task<> {
                co_await coring::with_task_group([&](coring::task_group& tg) -> coring::task<> {
                    child = tg.create_task(value_after(5s, 1));
                    co_await coring::with_timeout(5s, [](coring::timeout_scope&) -> coring::task<> { co_await coring::sleep(5s); });
                });
            });
            outcome = "returned";
        } catch (const coring::timeout_error&) {
            outcome = "outer timeout";
        }
        CHECK(outcome == "outer timeout");
        CHECK(child.cancelled());
        CHECK(ms_since(start) < 1000);
        CHECK(coring::current_task().cancelling() == 0);
    }());
}
