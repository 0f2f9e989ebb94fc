// Tests of coring/detail/state_base.hpp and coring/detail/state.hpp: the waiter list, the
// completion of a state (queued and immediate waiters), the reference count and the report of
// an outcome nobody retrieved, and the cancel request of futures and tasks.
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/state.hpp>
#include <coring/detail/state_base.hpp>

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/run.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <chrono>
#include <cstddef>
#include <exception>
#include <initializer_list>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::virtual_clock;
using coring::detail::completion_waiter;
using coring::detail::ready_node;
using coring::detail::state_base;
using coring::detail::waiter_list;
using coring_test::live_frames;

namespace {

/// A completion waiter that logs its id when it runs, and minus its id when it is discarded.
struct logging_waiter : completion_waiter {
    static void log_run(ready_node* node, action what) noexcept {
        auto* self = static_cast<logging_waiter*>(static_cast<completion_waiter*>(node));
        self->log->push_back(what == action::run ? self->id : -self->id);
    }
    static constexpr operations queued_ops{&log_run};
    static constexpr operations immediate_ops{&log_run, nullptr, true};

    logging_waiter(std::vector<int>& into, int waiter_id, bool immediate = false)
        : completion_waiter(immediate ? immediate_ops : queued_ops), log(&into), id(waiter_id) {
        into.reserve(16);  // push_back in a noexcept function: no allocation there
    }

    std::vector<int>* log;
    int id;
};

/// Pops everything off `list`, returning the ids in order.
std::vector<int> drain(waiter_list& list) {
    std::vector<int> ids;
    while (completion_waiter* w = list.pop_front()) ids.push_back(static_cast<logging_waiter*>(w)->id);
    return ids;
}

/// Five waiters pushed in order onto a list.
struct list_of_five {
    std::vector<int> log;
    logging_waiter w1{log, 1}, w2{log, 2}, w3{log, 3}, w4{log, 4}, w5{log, 5};
    waiter_list list;
    list_of_five() {
        for (logging_waiter* w : {&w1, &w2, &w3, &w4, &w5}) list.push_back(*w);
    }
};

struct lost_error : std::runtime_error {
    lost_error() : std::runtime_error("lost") {}
};

/// Runs `body` on a loop on virtual time, closes the loop, and returns what its exception
/// handler was given.
std::vector<coring::exception_context> reports_of(coring::task<> body) {
    coring::event_loop loop(virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete(std::move(body));
    loop.close();
    return reports.reports;
}

}  // namespace

// ------------------------------------------------------------------------- waiter_list

TEST_CASE("waiter_list - pops waiters in the order they were pushed", "[detail][state_base]") {
    std::vector<int> log;
    logging_waiter a(log, 1), b(log, 2), c(log, 3);
    waiter_list list;
    CHECK(list.empty());
    CHECK(list.pop_front() == nullptr);
    list.push_back(a);
    list.push_back(b);
    CHECK_FALSE(list.empty());
    CHECK(list.pop_front() == &a);
    CHECK(a.m_next == nullptr);  // off the list: its link is free for the ready queue
    list.push_back(c);           // pushing after a pop keeps the order
    CHECK(list.pop_front() == &b);
    CHECK(list.pop_front() == &c);
    CHECK(list.empty());
    CHECK(list.pop_front() == nullptr);
    CHECK(log.empty());  // the list never runs its waiters
}

TEST_CASE("waiter_list - erase removes the first waiter", "[detail][state_base]") {
    list_of_five five;
    CHECK(five.list.erase(five.w1));
    CHECK(five.w1.m_next == nullptr);
    CHECK(drain(five.list) == std::vector<int>{2, 3, 4, 5});
}

TEST_CASE("waiter_list - erase removes a middle waiter", "[detail][state_base]") {
    list_of_five five;
    CHECK(five.list.erase(five.w3));
    CHECK(drain(five.list) == std::vector<int>{1, 2, 4, 5});
}

TEST_CASE("waiter_list - erase removes the last waiter and moves the tail back", "[detail][state_base]") {
    list_of_five five;
    CHECK(five.list.erase(five.w5));
    logging_waiter w6(five.log, 6);
    five.list.push_back(w6);  // a push after it lands at the right place
    CHECK(drain(five.list) == std::vector<int>{1, 2, 3, 4, 6});
}

TEST_CASE("waiter_list - erase of the only waiter leaves an empty list that still works", "[detail][state_base]") {
    std::vector<int> log;
    logging_waiter w1(log, 1), w2(log, 2);
    waiter_list list;
    list.push_back(w1);
    CHECK(list.erase(w1));
    CHECK(list.empty());
    CHECK(list.pop_front() == nullptr);
    list.push_back(w2);
    CHECK(drain(list) == std::vector<int>{2});
}

TEST_CASE("waiter_list - erase of a waiter that is not on the list returns false and changes nothing", "[detail][state_base]") {
    std::vector<int> log;
    logging_waiter a(log, 1), b(log, 2), absent(log, 3);
    waiter_list list;
    CHECK_FALSE(list.erase(absent));  // an empty list
    list.push_back(a);
    CHECK_FALSE(list.erase(absent));  // a list of one
    list.push_back(b);
    CHECK_FALSE(list.erase(absent));  // a longer one
    CHECK(list.erase(a));
    CHECK_FALSE(list.erase(a));  // twice
    CHECK(drain(list) == std::vector<int>{2});
}

// ------------------------------------------------------------------------- finishing and waiters

TEST_CASE("state_base - waiters run in registration order, on the next iteration, when the state finishes", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            std::vector<int> log;
            logging_waiter w1(log, 1), w2(log, 2), w3(log, 3);
            coring::future<int> f;
            state_base* s = f.native_state();
            s->add_waiter(w2);
            s->add_waiter(w1);
            s->add_waiter(w3);
            f.set_result(4);
            CHECK(s->done());
            CHECK(log.empty());  // queued on the loop, not run inside finish()
            co_await coring::sleep(0s);
            CHECK(log == std::vector<int>{2, 1, 3});
        }(),
        virtual_clock);
}

TEST_CASE("state_base - immediate waiters run inside finish(), the others are queued", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            std::vector<int> log;
            logging_waiter q1(log, 1), i2(log, 2, true), q3(log, 3), i4(log, 4, true);
            coring::future<> f;
            state_base* s = f.native_state();
            for (logging_waiter* w : {&q1, &i2, &q3, &i4}) s->add_waiter(*w);
            f.set_result();
            CHECK(log == std::vector<int>{2, 4});  // synchronously, in registration order
            co_await coring::sleep(0s);
            CHECK(log == std::vector<int>{2, 4, 1, 3});
        }(),
        virtual_clock);
}

TEST_CASE("state_base - remove_waiter takes back a registered waiter, which then never runs", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            std::vector<int> log;
            logging_waiter a(log, 1), b(log, 2), never_added(log, 3);
            coring::future<int> f;
            state_base* s = f.native_state();
            s->add_waiter(a);
            s->add_waiter(b);
            CHECK(s->remove_waiter(a));
            CHECK_FALSE(s->remove_waiter(a));
            CHECK_FALSE(s->remove_waiter(never_added));
            f.set_result(1);
            co_await coring::sleep(0s);
            CHECK(log == std::vector<int>{2});
        }(),
        virtual_clock);
}

TEST_CASE("state_base - remove_waiter refuses a woken waiter, which still runs", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            std::vector<int> log;
            logging_waiter b(log, 2);
            coring::future<int> f;
            state_base* s = f.native_state();
            s->add_waiter(b);
            f.set_result(1);
            CHECK_FALSE(s->remove_waiter(b));  // woken: on the ready queue, no longer the state's
            co_await coring::sleep(0s);
            CHECK(log == std::vector<int>{2});
        }(),
        virtual_clock);
}

TEST_CASE("state_base - a future destroyed unfinished discards its waiters without running them", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            std::vector<int> log;
            logging_waiter a(log, 1), b(log, 2);
            {
                coring::future<int> f;
                f.native_state()->add_waiter(a);
                f.native_state()->add_waiter(b);
            }  // the last reference: the state goes, and with it its waiters
            CHECK(log == std::vector<int>{-1, -2});
            co_await coring::sleep(0s);
            CHECK(log == std::vector<int>{-1, -2});
        }(),
        virtual_clock);
}

// ------------------------------------------------------------------------- status and lifetime

TEST_CASE("state_base - a task's status goes pending, running, finished", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            auto body = [](std::vector<state_base::status>& seen) -> coring::task<int> {
                seen.push_back(coring::current_task().native_state()->current_status());
                co_await coring::sleep(1ms);
                seen.push_back(coring::current_task().native_state()->current_status());
                co_return 1;
            };
            std::vector<state_base::status> seen;
            auto h = coring::create_task(body(seen));
            state_base* s = h.native_state();
            CHECK(s->is_task());
            CHECK(s->current_status() == state_base::status::pending);
            co_await coring::sleep(0s);
            CHECK(s->current_status() == state_base::status::running);  // suspended counts as running
            const int v = co_await h;
            CHECK(v == 1);
            CHECK(s->current_status() == state_base::status::finished);
            CHECK(seen == std::vector<state_base::status>{state_base::status::running, state_base::status::running});
        }(),
        virtual_clock);
}

TEST_CASE("state_base - a task's state outlives its finish while a handle holds it", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            auto body = []() -> coring::task<int> {
                co_await coring::sleep(1ms);
                co_return 7;
            };
            const std::size_t before = live_frames();
            auto h = coring::create_task(body());
            CHECK(live_frames() == before + 2);  // the frame and the state
            const int v = co_await h;
            CHECK(v == 7);
            co_await coring::sleep(0s);
            // The loop's reference went with the finish, and the frame with it; ours remains.
            CHECK(live_frames() == before + 1);
            CHECK(h.done());
            CHECK(h.native_state()->current_status() == state_base::status::finished);
            CHECK(h.result() == 7);
            h = coring::task_handle<int>{};
            CHECK(live_frames() == before);
        }(),
        virtual_clock);
}

TEST_CASE("state_base - add_ref keeps a future alive after its handles are gone; the last release frees it", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            const std::size_t before = live_frames();
            state_base* s = nullptr;
            {
                coring::future<int> f;
                s = f.native_state();
                s->add_ref();
                f.set_result(3);
            }
            CHECK(live_frames() == before + 1);
            CHECK(s->done());
            CHECK(static_cast<coring::detail::state<int>*>(s)->get_for_caller() == 3);
            s->add_ref();
            s->release();
            CHECK(live_frames() == before + 1);
            s->release();  // the last one
            CHECK(live_frames() == before);
            co_await coring::sleep(0s);
        }(),
        virtual_clock);
}

// ------------------------------------------------------------------------- the never-retrieved report

TEST_CASE("state_base - an unretrieved future exception is reported once, when the last reference goes", "[detail][state_base]") {
    coring::event_loop loop(virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([](coring_test::captured_reports& r) -> coring::task<> {
        state_base* s = nullptr;
        {
            coring::future<int> f;
            s = f.native_state();
            s->add_ref();
            auto copy = f;
            f.set_exception(std::make_exception_ptr(lost_error{}));
            CHECK(s->failed());
        }  // both handles gone
        CHECK(r.reports.empty());
        co_await coring::sleep(0s);
        CHECK(r.reports.empty());
        s->release();
        REQUIRE(r.reports.size() == 1);
        CHECK(r.reports[0].message == "Future exception was never retrieved");
        CHECK(r.reports[0].task_name == "Future");
        CHECK_THROWS_AS(std::rethrow_exception(r.reports[0].exception), lost_error);
    }(reports));
    loop.close();
    CHECK(reports.reports.size() == 1);
}

TEST_CASE("state_base - an unretrieved task exception is reported once, after the finish, when the last handle goes", "[detail][state_base]") {
    coring::event_loop loop(virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([](coring_test::captured_reports& r) -> coring::task<> {
        auto body = []() -> coring::task<> {
            co_await coring::sleep(1ms);
            throw lost_error{};
        };
        std::optional<coring::task_handle<>> h1(coring::create_task(body(), "thrower"));
        std::optional<coring::task_handle<>> h2(*h1);
        co_await coring::sleep(5ms);
        REQUIRE(h1->done());
        CHECK(h1->native_state()->failed());
        CHECK(r.reports.empty());  // the loop's reference went at the finish; the handles remain
        h1.reset();
        CHECK(r.reports.empty());
        h2.reset();
        REQUIRE(r.reports.size() == 1);
        CHECK(r.reports[0].message == "Task exception was never retrieved");
        CHECK(r.reports[0].task_name == "thrower");
        CHECK_THROWS_AS(std::rethrow_exception(r.reports[0].exception), lost_error);
    }(reports));
    loop.close();
    CHECK(reports.reports.size() == 1);
}

TEST_CASE("state_base - mark_retrieved silences the report", "[detail][state_base]") {
    coring::event_loop loop(virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        coring::future<int> f;
        f.set_exception(std::make_exception_ptr(lost_error{}));
        f.native_state()->mark_retrieved();
        CHECK(f.native_state()->stored_exception() != nullptr);  // still there, only marked
        co_return;
    }());
    loop.close();
    CHECK(reports.reports.empty());
}

TEST_CASE("state_base - an outcome looked at through exception() is not reported", "[detail][state_base]") {
    coring::event_loop loop(virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        coring::future<int> f;
        f.set_exception(std::make_exception_ptr(lost_error{}));
        const std::exception_ptr e = f.native_state()->exception();
        CHECK(e != nullptr);
        co_return;
    }());
    loop.close();
    CHECK(reports.reports.empty());
}

TEST_CASE("state_base - a cancelled future is never reported", "[detail][state_base]") {
    const auto reports = reports_of([]() -> coring::task<> {
        {
            coring::future<int> cancelled;
            CHECK(cancelled.native_state()->request_cancel());
            CHECK(cancelled.native_state()->failed());  // it holds a cancelled_error
        }
        co_return;
    }());
    CHECK(reports.empty());
}

TEST_CASE("state_base - a successful future is never reported", "[detail][state_base]") {
    const auto reports = reports_of([]() -> coring::task<> {
        {
            coring::future<int> fine;
            fine.set_result(1);
        }
        co_return;
    }());
    CHECK(reports.empty());
}

TEST_CASE("state_base - a cancelled task is never reported", "[detail][state_base]") {
    const auto reports = reports_of([]() -> coring::task<> {
        auto h = coring::create_task([]() -> coring::task<> { co_await coring::sleep(1h); }());
        co_await coring::sleep(0s);
        h.cancel();
        co_await coring::sleep(0s);
        CHECK(h.cancelled());
    }());
    CHECK(reports.empty());
}

// ------------------------------------------------------------------------- cancel requests

TEST_CASE("state_base - request_cancel finishes a pending future cancelled at once", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            std::vector<int> log;
            logging_waiter w(log, 1);
            coring::future<int> f;
            state_base* s = f.native_state();
            CHECK_FALSE(s->is_task());
            s->add_waiter(w);
            CHECK(s->request_cancel());
            CHECK(s->done());
            CHECK(s->cancelled());
            CHECK_FALSE(s->cancel_requested());  // no request left pending: it is finished
            CHECK(log.empty());                  // the waiter is queued, not run inline
            CHECK_THROWS_AS(f.result(), coring::cancelled_error);
            CHECK_THROWS_AS(f.set_result(2), coring::invalid_state_error);
            co_await coring::sleep(0s);
            CHECK(log == std::vector<int>{1});
        }(),
        virtual_clock);
}

TEST_CASE("state_base - request_cancel on a finished future returns false and changes nothing", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            coring::future<int> f;
            REQUIRE(f.native_state()->request_cancel());
            CHECK_FALSE(f.native_state()->request_cancel());  // already cancelled
            CHECK(f.cancelled());

            coring::future<int> g;
            g.set_result(3);
            CHECK_FALSE(g.native_state()->request_cancel());
            CHECK_FALSE(g.cancelled());
            CHECK(g.result() == 3);
            co_return;
        }(),
        virtual_clock);
}

TEST_CASE("state_base - request_cancel on a finished task returns false and changes nothing", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            auto h = coring::create_task([]() -> coring::task<int> { co_return 8; }());
            co_await coring::sleep(0s);
            REQUIRE(h.done());
            state_base* s = h.native_state();
            CHECK_FALSE(s->request_cancel());
            CHECK_FALSE(s->cancel_requested());
            CHECK_FALSE(s->cancelled());
            CHECK(h.result() == 8);
        }(),
        virtual_clock);
}

TEST_CASE("state_base - a task cancelled before its first step never runs its body", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            auto body = [](bool& ran) -> coring::task<int> {
                ran = true;
                co_return 1;
            };
            bool ran = false;
            const std::size_t before = live_frames();
            auto h = coring::create_task(body(ran));
            state_base* s = h.native_state();
            CHECK(s->request_cancel());
            CHECK(s->cancel_requested());  // pending until its step
            CHECK(s->current_status() == state_base::status::pending);
            co_await coring::sleep(0s);  // its step
            CHECK_FALSE(ran);
            CHECK(s->done());
            CHECK(s->cancelled());
            CHECK_FALSE(s->cancel_requested());
            CHECK(live_frames() == before + 1);  // the frame was destroyed unrun; the state remains
            const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
            CHECK(cancelled);
        }(),
        virtual_clock);
}

TEST_CASE("state_base - start_even_if_cancelled: the body runs and its first suspension throws cancelled_error", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            auto body = [](int& stage) -> coring::task<> {
                stage = 1;
                try {
                    co_await coring::sleep(1h);
                } catch (const coring::cancelled_error&) {
                    stage = 2;
                    throw;
                }
                stage = 3;
            };
            int stage = 0;
            auto h = coring::create_task(body(stage));
            h.native_state()->start_even_if_cancelled();
            CHECK(h.cancel());
            const auto start = coring::get_running_loop().time();
            const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
            CHECK(cancelled);
            CHECK(stage == 2);
            CHECK(h.cancelled());
            CHECK(coring::get_running_loop().time() == start);  // the hour never began
        }(),
        virtual_clock);
}

TEST_CASE("state_base - take_cancel_request consumes a pending request", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            auto body = [](std::vector<std::string>& log) -> coring::task<int> {
                state_base* s = coring::current_task().native_state();
                const bool accepted = coring::current_task().cancel();  // running: no slot, so it waits
                log.push_back(accepted ? "accepted" : "refused");
                log.push_back(s->cancel_requested() ? "pending" : "none");
                log.push_back(s->take_cancel_request() ? "taken" : "nothing to take");
                log.push_back(s->take_cancel_request() ? "taken" : "nothing to take");
                log.push_back(s->cancel_requested() ? "pending" : "none");
                co_await coring::sleep(0s);  // not cancelled: the request was consumed
                log.push_back("slept");
                co_return 9;
            };
            std::vector<std::string> log;
            auto h = coring::create_task(body(log));
            const int v = co_await h;
            CHECK(v == 9);
            CHECK_FALSE(h.cancelled());
            CHECK(log == std::vector<std::string>{"accepted", "pending", "taken", "nothing to take", "none", "slept"});
        }(),
        virtual_clock);
}

TEST_CASE("state_base - restore_cancel_request puts a taken request back", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            auto body = [](std::vector<std::string>& log) -> coring::task<int> {
                state_base* s = coring::current_task().native_state();
                coring::current_task().cancel();
                log.push_back(s->take_cancel_request() ? "taken" : "nothing to take");
                s->restore_cancel_request();
                log.push_back(s->cancel_requested() ? "pending" : "none");
                bool threw = false;
                try {
                    co_await coring::sleep(0s);
                } catch (const coring::cancelled_error&) {
                    threw = true;
                }
                log.push_back(threw ? "delivered" : "not delivered");
                log.push_back(s->cancel_requested() ? "pending" : "none");
                co_return 9;
            };
            std::vector<std::string> log;
            auto h = coring::create_task(body(log));
            const int v = co_await h;
            CHECK(v == 9);  // the request was delivered and handled: it ends normally
            CHECK_FALSE(h.cancelled());
            CHECK(log == std::vector<std::string>{"taken", "pending", "delivered", "none"});
        }(),
        virtual_clock);
}

TEST_CASE("state_base - a task cancelled while it runs that returns a value ends cancelled, its value dropped", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            auto body = []() -> coring::task<std::string> {
                coring::current_task().cancel();
                co_return std::string("dropped");
            };
            auto h = coring::create_task(body());
            const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
            CHECK(cancelled);
            state_base* s = h.native_state();
            CHECK(s->cancelled());
            CHECK(coring::detail::is_cancellation(s->stored_exception()));
            CHECK_THROWS_AS(h.result(), coring::cancelled_error);
        }(),
        virtual_clock);
}

TEST_CASE("state_base - a task that takes back its own cancel request before returning keeps its value", "[detail][state_base]") {
    coring::run(
        []() -> coring::task<> {
            auto body = []() -> coring::task<int> {
                coring::current_task().cancel();
                (void)coring::current_task().native_state()->take_cancel_request();
                co_return 6;
            };
            auto h = coring::create_task(body());
            const int v = co_await h;
            CHECK(v == 6);
            CHECK_FALSE(h.cancelled());
        }(),
        virtual_clock);
}
