// Tests of coring/shield.hpp.
#include <coring/shield.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/delayed_tasks.hpp"
#include "support/helpers.hpp"

using namespace std::chrono_literals;
using coring_test::throws;
using coring_test::value_after;

TEST_CASE("shield - passes the value through", "[shield]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(5ms, 8));
        const int v = co_await coring::shield(h);
        CHECK(v == 8);
    }(), coring_test::virtual_clock);
}

TEST_CASE("shield - cancelling the waiter does not cancel the shielded task", "[shield][cancel]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(30ms, 9));
        auto waiter = [](coring::task_handle<int> t) -> coring::task<int> { co_return co_await coring::shield(t); };
        auto w = coring::create_task(waiter(h));
        co_await coring::sleep(5ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(w);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 20.0);  // the waiter stops at once
        CHECK_FALSE(h.done());
        const int v = co_await h;
        CHECK(v == 9);
        CHECK_FALSE(h.cancelled());
    }(), coring_test::virtual_clock);
}

TEST_CASE("shield - without shield, the same cancel reaches the awaited task", "[shield][cancel]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(30ms, 9));
        auto waiter = [](coring::task_handle<int> t) -> coring::task<int> { co_return co_await t; };
        auto w = coring::create_task(waiter(h));
        co_await coring::sleep(5ms);
        w.cancel();
        const bool cancelled = co_await throws<coring::cancelled_error>(w);
        CHECK(cancelled);
        CHECK(h.cancelled());
    }(), coring_test::virtual_clock);
}

TEST_CASE("shield - an exception of the shielded task comes through", "[shield]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(coring_test::throws_after<std::overflow_error>(1ms, "shielded failure"));
        const bool threw = co_await throws<std::overflow_error>(coring::shield(h));
        CHECK(threw);
        CHECK_THROWS_AS(coring::shield(coring::task_handle<int>{}), coring::invalid_state_error);
    }(), coring_test::virtual_clock);
}

TEST_CASE("shield - a task shielding itself throws, as awaiting itself does", "[shield]") {
    coring::run([]() -> coring::task<> {
        const bool plain = co_await throws<coring::invalid_state_error>(coring::current_task());
        CHECK(plain);
        const bool shielded = co_await throws<coring::invalid_state_error>(coring::shield(coring::current_task()));
        CHECK(shielded);
    }());
}
