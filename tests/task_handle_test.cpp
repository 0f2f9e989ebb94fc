// Tests of coring/task_handle.hpp: create_task, task_handle, future, current_task, all_tasks,
// and cancellation as docs/api.md describes it.
#include <coring/task_handle.hpp>

#include <coring/io/ops.hpp>
#include <coring/run.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/delayed_tasks.hpp"
#include "support/helpers.hpp"

#include <unistd.h>

#include <array>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::forever;
using coring_test::live_frames;
using coring_test::value_after;

namespace {

template <class Handle>
coring::task<bool> throws_cancelled(Handle h) {
    return coring_test::throws<coring::cancelled_error>(std::move(h));
}

}  // namespace

// ------------------------------------------------------------------------- create_task

TEST_CASE("create_task - starts on the next iteration, not inline", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        std::vector<int> order;
        auto body = [](std::vector<int>& o) -> coring::task<> {
            o.push_back(2);
            co_return;
        };
        auto h = coring::create_task(body(order));
        order.push_back(1);
        CHECK_FALSE(h.done());
        co_await coring::sleep(0s);
        order.push_back(3);
        CHECK(h.done());
        CHECK(order == std::vector<int>{1, 2, 3});
    }());
}

TEST_CASE("create_task - handles are awaitable any number of times, by any task", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(5ms, 11));
        auto waiter = [](coring::task_handle<int> t) -> coring::task<int> { co_return co_await t; };
        auto w1 = coring::create_task(waiter(h));
        auto w2 = coring::create_task(waiter(h));
        const int first = co_await h;
        const int second = co_await h;
        const int via_w1 = co_await w1;
        const int via_w2 = co_await w2;
        CHECK(first == 11);
        CHECK(second == 11);
        CHECK(via_w1 == 11);
        CHECK(via_w2 == 11);
        CHECK(h.result() == 11);
        CHECK(h.exception() == nullptr);
    }(), coring_test::virtual_clock);
}

TEST_CASE("create_task - the loop owns a task whose handles were all dropped", "[task_handle]") {
    int ran = 0;
    coring::run([](int& count) -> coring::task<> {
        auto body = [](int& c) -> coring::task<> {
            co_await coring::sleep(5ms);
            ++c;
        };
        for (int i = 0; i < 10; ++i) (void)coring::create_task(body(count));
        co_await coring::sleep(30ms);
    }(ran), coring_test::virtual_clock);
    CHECK(ran == 10);
}

TEST_CASE("create_task - a task created without a name is named Task-<n>", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::create_task(value_after(0ms, 1));
        CHECK(a.name().rfind("Task-", 0) == 0);
        co_await a;
    }());
}

TEST_CASE("create_task - a task created with a name carries that name", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto b = coring::create_task(value_after(0ms, 2), "fetch");
        CHECK(b.name() == "fetch");
        co_await b;
    }());
}

TEST_CASE("create_task - each task's id is one more than the previous task's", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::create_task(value_after(0ms, 1));
        auto b = coring::create_task(value_after(0ms, 2), "fetch");
        CHECK(coring::any_task_handle(b).id() == coring::any_task_handle(a).id() + 1);
        co_await a;
        co_await b;
    }());
}

TEST_CASE("create_task - the creation site is the caller's file and line", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto b = coring::create_task(value_after(0ms, 2), "fetch");
        const unsigned line = __LINE__ - 1;
        CHECK(b.creation_site().line() == line);
        CHECK(std::string(b.creation_site().file_name()).find("task_handle_test.cpp") != std::string::npos);
        co_await b;
    }());
}

TEST_CASE("task_handle - set_name renames the task", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto b = coring::create_task(value_after(0ms, 2), "fetch");
        b.set_name("renamed");
        CHECK(b.name() == "renamed");
        co_await b;
    }());
}

TEST_CASE("create_task - the main task is Task-1 of its loop", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        CHECK(coring::current_task().name() == "Task-1");
        co_return;
    }());
}

TEST_CASE("task_handle - result() and exception() before the task is done throw invalid_state_error", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(5ms, 3));
        CHECK_THROWS_AS(h.result(), coring::invalid_state_error);
        CHECK_THROWS_AS(h.exception(), coring::invalid_state_error);
        const int value = co_await h;
        CHECK(value == 3);
    }(), coring_test::virtual_clock);
}

TEST_CASE("task_handle - an empty handle is false and its done() throws invalid_state_error", "[task_handle]") {
    coring::task_handle<int> empty;
    CHECK_FALSE(empty);
    CHECK_THROWS_AS(empty.done(), coring::invalid_state_error);
}

TEST_CASE("task_handle - a task's exception keeps its type through await, exception() and result()", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(coring_test::throws_after<std::invalid_argument>(1ms, "bad input"));
        const bool threw = co_await coring_test::throws<std::invalid_argument>(h);
        CHECK(threw);
        std::exception_ptr e = h.exception();
        REQUIRE(e);
        CHECK_THROWS_AS(std::rethrow_exception(e), std::invalid_argument);
        CHECK_THROWS_WITH(h.result(), "bad input");
    }(), coring_test::virtual_clock);
}

TEST_CASE("task_handle - an exception retrieved by awaiting one handle is not reported", "[task_handle]") {
    coring::event_loop loop(coring_test::virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        auto h = coring::create_task(coring_test::throws_after<std::invalid_argument>(1ms, "bad input"));
        const auto other_handle = h;  // a second handle, which never retrieves it
        const bool threw = co_await coring_test::throws<std::invalid_argument>(h);
        CHECK(threw);
    }());
    loop.close();
    CHECK(reports.reports.empty());
}

TEST_CASE("task_handle - a move-only result is moved out by the first retrieval", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto make = []() -> coring::task<std::unique_ptr<int>> { co_return std::make_unique<int>(5); };
        auto h = coring::create_task(make());
        std::unique_ptr<int> p = co_await h;
        REQUIRE(p);
        CHECK(*p == 5);
        CHECK_THROWS_AS(h.result(), coring::invalid_state_error);
    }());
}

TEST_CASE("task_handle - an exception nobody retrieved is reported with the task's name and site", "[task_handle]") {
    coring::event_loop loop(coring_test::virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        auto thrower = []() -> coring::task<> {
            throw std::runtime_error("lost");
            co_return;
        };
        (void)coring::create_task(thrower(), "orphan");
        co_await coring::sleep(5ms);
    }());
    REQUIRE(reports.reports.size() == 1);
    const auto& r = reports.reports.front();
    CHECK(r.message == "Task exception was never retrieved");
    CHECK(r.task_name == "orphan");
    CHECK(r.task_site.line() > 0);
    CHECK_THROWS_WITH(std::rethrow_exception(r.exception), "lost");
    loop.close();
}

TEST_CASE("task_handle - a cancelled task is not reported as an unretrieved exception", "[task_handle]") {
    coring::event_loop loop(coring_test::virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        auto h = coring::create_task(forever());
        co_await coring::sleep(1ms);
        h.cancel();
        co_await coring::sleep(1ms);
        CHECK(h.cancelled());
    }());
    loop.close();
    CHECK(reports.reports.empty());
}

TEST_CASE("task_handle - done callbacks run on the loop in registration order", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        std::vector<std::string> log;
        auto h = coring::create_task(value_after(2ms, 8));
        h.add_done_callback([&log](const coring::task_handle<int>& t) { log.push_back("a" + std::to_string(t.result())); });
        h.add_done_callback([&log] { log.push_back("b"); });
        co_await h;
        co_await coring::sleep(0s);
        CHECK(log == std::vector<std::string>{"a8", "b"});
        // Added after completion: runs on the next iteration, not inline.
        h.add_done_callback([&log] { log.push_back("c"); });
        CHECK(log.size() == 2);
        co_await coring::sleep(0s);
        CHECK(log == std::vector<std::string>{"a8", "b", "c"});
    }(), coring_test::virtual_clock);
}

TEST_CASE("task_handle - a task cannot await itself", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto self_awaiter = [](coring::future<coring::task_handle<>> me) -> coring::task<> {
            auto h = co_await me;
            const bool threw = co_await coring_test::throws<coring::invalid_state_error>(h);
            CHECK(threw);
        };
        coring::future<coring::task_handle<>> f;
        auto h = coring::create_task(self_awaiter(f));
        f.set_result(h);
        co_await h;
    }());
}

// ------------------------------------------------------------------------- current_task, all_tasks

TEST_CASE("current_task - outside a running loop throws std::logic_error", "[task_handle]") {
    CHECK_THROWS_AS(coring::current_task(), std::logic_error);
}

TEST_CASE("current_task - is the handle of the task that calls it", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto me = coring::current_task();
        REQUIRE(me);
        CHECK_FALSE(me.done());
        auto child = [](coring::any_task_handle parent) -> coring::task<> {
            auto self = coring::current_task();
            CHECK(self);
            CHECK_FALSE(self == parent);
            co_return;
        };
        co_await coring::create_task(child(me), "child");
    }());
}

TEST_CASE("current_task - is empty in a callback", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        bool in_callback_is_empty = false;
        coring::get_running_loop().call_soon([&] { in_callback_is_empty = !coring::current_task(); });
        co_await coring::sleep(0s);
        CHECK(in_callback_is_empty);
    }());
}

TEST_CASE("all_tasks - lists the live tasks in creation order, finished ones no longer", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        auto me = coring::current_task();
        auto h = coring::create_task(value_after(5ms, 0), "child");
        auto tasks = coring::all_tasks();
        REQUIRE(tasks.size() == 2);
        CHECK(tasks[0] == me);
        CHECK(tasks[1].name() == "child");
        co_await h;
        CHECK(coring::all_tasks().size() == 1);
    }(), coring_test::virtual_clock);
}

// ------------------------------------------------------------------------- future

TEST_CASE("future - set_result wakes every waiter on the next iteration", "[future]") {
    coring::run([]() -> coring::task<> {
        coring::future<std::string> f;
        auto waiter = [](coring::future<std::string> fut) -> coring::task<std::string> { co_return co_await fut; };
        auto w1 = coring::create_task(waiter(f));
        auto w2 = coring::create_task(waiter(f));
        co_await coring::sleep(0s);
        CHECK_FALSE(f.done());
        f.set_result("hello");
        CHECK(f.done());
        CHECK_FALSE(w1.done());
        const std::string got1 = co_await w1;
        const std::string got2 = co_await w2;
        CHECK(got1 == "hello");
        CHECK(got2 == "hello");
        CHECK_THROWS_AS(f.set_result("again"), coring::invalid_state_error);
    }());
}

TEST_CASE("future - set_exception makes awaiting it throw that exception", "[future]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> f;
        f.set_exception(std::out_of_range("range"));
        const bool threw = co_await coring_test::throws<std::out_of_range>(f);
        CHECK(threw);
    }());
}

TEST_CASE("future - cancel ends it cancelled and its waiters get cancelled_error", "[future]") {
    coring::run([]() -> coring::task<> {
        coring::future<> g;
        auto waiter = [](coring::future<> fut) -> coring::task<bool> { co_return co_await throws_cancelled(fut); };
        auto w = coring::create_task(waiter(g));
        co_await coring::sleep(0s);
        CHECK(g.cancel());
        CHECK(g.cancelled());
        CHECK_FALSE(g.cancel());
        const bool waiter_saw_cancel = co_await w;
        CHECK(waiter_saw_cancel);
    }());
}

TEST_CASE("future - cancelling a task that awaits a future cancels the future", "[future][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> f;
        auto waiter = [](coring::future<int> fut) -> coring::task<int> { co_return co_await fut; };
        auto w = coring::create_task(waiter(f));
        co_await coring::sleep(0s);
        w.cancel();
        const bool was_cancelled = co_await throws_cancelled(w);
        CHECK(was_cancelled);
        CHECK(f.cancelled());
    }());
}

TEST_CASE("future - a future with callbacks that never completes is freed at close", "[future]") {
    const auto before = live_frames();
    {
        coring::event_loop loop;
        loop.run_until_complete([]() -> coring::task<> {
            coring::future<int> f;
            f.add_done_callback([] {});
            co_return;
        }());
        loop.close();
    }
    CHECK(live_frames() == before);
}

// ------------------------------------------------------------------------- cancellation

TEST_CASE("cancel - cancelled_error is not a std::exception", "[cancel]") {
    STATIC_REQUIRE_FALSE(std::is_base_of_v<std::exception, coring::cancelled_error>);
    coring::run([]() -> coring::task<> {
        auto body = [](bool& swallowed) -> coring::task<> {
            try {
                co_await coring::sleep(1h);
            } catch (const std::exception&) {
                swallowed = true;
            }
        };
        bool swallowed = false;
        auto h = coring::create_task(body(swallowed));
        co_await coring::sleep(0s);
        h.cancel();
        const bool was_cancelled = co_await throws_cancelled(h);
        CHECK(was_cancelled);
        CHECK_FALSE(swallowed);
    }());
}

TEST_CASE("cancel - before start: the body never runs", "[cancel]") {
    coring::run([]() -> coring::task<> {
        bool ran = false;
        auto body = [](bool& r) -> coring::task<> {
            r = true;
            co_return;
        };
        auto h = coring::create_task(body(ran));
        CHECK(h.cancel());
        const bool was_cancelled = co_await throws_cancelled(h);
        CHECK(was_cancelled);
        CHECK_FALSE(ran);
        CHECK(h.cancelled());
        CHECK_THROWS_AS(h.result(), coring::cancelled_error);
        CHECK_THROWS_AS(h.exception(), coring::cancelled_error);
    }());
}

TEST_CASE("cancel - after completion: returns false and changes nothing", "[cancel]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(value_after(0ms, 4));
        const int value = co_await h;
        CHECK(value == 4);
        CHECK_FALSE(h.cancel());
        CHECK_FALSE(h.cancelled());
        CHECK(h.result() == 4);
    }());
}

TEST_CASE("cancel - a task that catches cancellation can await during cleanup, then rethrow", "[cancel]") {
    coring::run([]() -> coring::task<> {
        std::vector<std::string> log;
        auto body = [](std::vector<std::string>& l) -> coring::task<> {
            std::exception_ptr pending;
            try {
                co_await coring::sleep(1h);
            } catch (const coring::cancelled_error&) {
                pending = std::current_exception();
            }
            l.push_back("cleanup start");
            co_await coring::sleep(10ms);  // the request is spent: this sleep runs normally
            l.push_back("cleanup done");
            std::rethrow_exception(pending);
        };
        auto h = coring::create_task(body(log));
        co_await coring::sleep(1ms);
        const auto start = std::chrono::steady_clock::now();
        h.cancel();
        const bool was_cancelled = co_await throws_cancelled(h);
        CHECK(was_cancelled);
        CHECK(coring_test::ms_since(start) >= 10.0);
        CHECK(log == std::vector<std::string>{"cleanup start", "cleanup done"});
        CHECK(h.cancelled());
    }());
}

TEST_CASE("cancel - a task that swallows the cancellation finishes normally", "[cancel]") {
    coring::run([]() -> coring::task<> {
        auto body = []() -> coring::task<int> {
            try {
                co_await coring::sleep(1h);
            } catch (const coring::cancelled_error&) {
            }
            co_return 5;
        };
        auto h = coring::create_task(body());
        co_await coring::sleep(0s);
        h.cancel();
        const int value = co_await h;
        CHECK(value == 5);
        CHECK_FALSE(h.cancelled());
    }());
}

TEST_CASE("cancel - reaches the leaf two levels down through nested tasks", "[cancel]") {
    coring::run([]() -> coring::task<> {
        std::vector<std::string> unwound;
        struct levels {
            static coring::task<> leaf(std::vector<std::string>& u) {
                try {
                    co_await coring::sleep(1h);
                } catch (const coring::cancelled_error&) {
                    u.push_back("leaf");
                    throw;
                }
            }
            static coring::task<> middle(std::vector<std::string>& u) {
                try {
                    co_await leaf(u);
                } catch (const coring::cancelled_error&) {
                    u.push_back("middle");
                    throw;
                }
            }
            static coring::task<> top(std::vector<std::string>& u) {
                try {
                    co_await middle(u);
                } catch (const coring::cancelled_error&) {
                    u.push_back("top");
                    throw;
                }
            }
        };
        auto h = coring::create_task(levels::top(unwound));
        co_await coring::sleep(1ms);
        h.cancel();
        const bool was_cancelled = co_await throws_cancelled(h);
        CHECK(was_cancelled);
        CHECK(unwound == std::vector<std::string>{"leaf", "middle", "top"});
    }(), coring_test::virtual_clock);
}

TEST_CASE("cancel - reaches a task awaited through handles two levels down", "[cancel]") {
    coring::run([]() -> coring::task<> {
        bool leaf_cancelled = false;
        auto leaf = [](bool& flag) -> coring::task<> {
            try {
                co_await coring::sleep(1h);
            } catch (const coring::cancelled_error&) {
                flag = true;
                throw;
            }
        };
        auto via = [](coring::task_handle<> inner) -> coring::task<> { co_await inner; };
        auto c = coring::create_task(leaf(leaf_cancelled));
        auto b = coring::create_task(via(c));
        auto a = coring::create_task(via(b));
        co_await coring::sleep(1ms);
        a.cancel();
        const bool was_cancelled = co_await throws_cancelled(a);
        CHECK(was_cancelled);
        CHECK(b.cancelled());
        CHECK(c.cancelled());
        CHECK(leaf_cancelled);
    }(), coring_test::virtual_clock);
}

TEST_CASE("cancel - a running task that cancels itself stops at its next suspension point", "[cancel]") {
    coring::run([]() -> coring::task<> {
        auto body = [](int& steps) -> coring::task<> {
            coring::current_task().cancel();
            ++steps;  // still running: the request waits for a suspension point
            co_await coring::sleep(0s);
            ++steps;
        };
        int steps = 0;
        auto h = coring::create_task(body(steps));
        const bool was_cancelled = co_await throws_cancelled(h);
        CHECK(was_cancelled);
        CHECK(steps == 1);
    }());
}

TEST_CASE("cancel - a kernel operation is cancelled in the kernel and resumes on its own completion", "[cancel][io]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        std::array<std::byte, 16> buffer{};
        buffer.fill(std::byte{0x5a});
        auto reader = [](int fd, std::span<std::byte> buf, std::size_t& in_flight_at_resume) -> coring::task<std::size_t> {
            try {
                co_return co_await coring::io::read(fd, buf);
            } catch (const coring::cancelled_error&) {
                in_flight_at_resume = coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight();
                throw;
            }
        };
        std::size_t in_flight_at_resume = 99;
        auto h = coring::create_task(reader(fds[0], buffer, in_flight_at_resume));
        co_await coring::sleep(2ms);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 1);
        h.cancel();
        const bool was_cancelled = co_await throws_cancelled(h);
        CHECK(was_cancelled);
        CHECK(in_flight_at_resume == 0);  // the read's own CQE arrived before the task resumed
        // The kernel no longer owns the buffer: data written now stays in the pipe.
        const char msg[] = "after";
        REQUIRE(::write(fds[1], msg, sizeof msg) == static_cast<ssize_t>(sizeof msg));
        co_await coring::sleep(2ms);
        CHECK(buffer[0] == std::byte{0x5a});
        char back[sizeof msg] = {};
        CHECK(::read(fds[0], back, sizeof back) == static_cast<ssize_t>(sizeof msg));
        ::close(fds[0]);
        ::close(fds[1]);
    }());
}

TEST_CASE("cancel - an operation that completes before the cancel keeps its result; the cancel waits", "[cancel][io]") {
    coring::run([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        REQUIRE(::write(fds[1], "abc", 3) == 3);
        std::array<std::byte, 8> buffer{};
        // The read is queued first and its data is already there, so it completes before the
        // IORING_OP_ASYNC_CANCEL queued behind it can find it: exactly one outcome, the read.
        auto reader = [](int fd, std::span<std::byte> buf, bool& next_threw) -> coring::task<std::size_t> {
            std::size_t n = co_await coring::io::read(fd, buf);
            try {
                co_await coring::sleep(0s);
            } catch (const coring::cancelled_error&) {
                next_threw = true;
                throw;
            }
            co_return n;
        };
        bool next_threw = false;
        auto h = coring::create_task(reader(fds[0], buffer, next_threw));
        auto& loop = coring::get_running_loop();
        // Cancel from a callback that runs in the same batch, right after the reader queued its SQE.
        loop.call_soon([h]() mutable { h.cancel(); });
        const bool was_cancelled = co_await throws_cancelled(h);
        CHECK(was_cancelled);
        CHECK(next_threw);  // the read returned its data, then the pending cancel was delivered
        CHECK(buffer[0] == std::byte{'a'});
        CHECK(buffer[2] == std::byte{'c'});
        ::close(fds[0]);
        ::close(fds[1]);
    }());
}

TEST_CASE("cancel - a request is spent once delivered", "[cancel]") {
    coring::run([]() -> coring::task<> {
        auto body = []() -> coring::task<int> {
            int survived = 0;
            for (int i = 0; i < 3; ++i) {
                try {
                    co_await coring::sleep(1h);
                } catch (const coring::cancelled_error&) {
                    ++survived;
                }
                co_await coring::sleep(1ms);  // runs normally after the first cancel
            }
            co_return survived;
        };
        auto h = coring::create_task(body());
        for (int i = 0; i < 3; ++i) {
            co_await coring::sleep(5ms);
            h.cancel();
        }
        const int survived = co_await h;
        CHECK(survived == 3);
    }(), coring_test::virtual_clock);
}

TEST_CASE("cancel - a pending request is delivered at the next suspension point without suspending", "[cancel]") {
    coring::run([]() -> coring::task<> {
        auto body = [](bool& reached) -> coring::task<> {
            coring::current_task().cancel();
            co_await coring::sleep(1h);  // throws at once
            reached = true;
        };
        bool reached = false;
        const auto start = std::chrono::steady_clock::now();
        auto h = coring::create_task(body(reached));
        const bool was_cancelled = co_await throws_cancelled(h);
        CHECK(was_cancelled);
        CHECK_FALSE(reached);
        CHECK(coring_test::ms_since(start) < 100.0);
    }());
}

TEST_CASE("cancel - close() cancels a cycle of tasks awaiting each other", "[cancel]") {
    auto await_task = [](const coring::task_handle<>* other) -> coring::task<> { co_await *other; };
    const auto before = live_frames();
    {
        coring::task_handle<> a;
        coring::task_handle<> b;
        coring::task_handle<> c;
        {
            coring::event_loop loop;
            loop.run_until_complete([](auto body, coring::task_handle<>& x, coring::task_handle<>& y, coring::task_handle<>& z) -> coring::task<> {
                x = coring::create_task(body(&y));
                y = coring::create_task(body(&z));
                z = coring::create_task(body(&x));
                co_await coring::sleep(1ms);
                CHECK_FALSE(x.done());
            }(await_task, a, b, c));
            loop.close();  // cancels the deadlocked tasks: without the cycle rule, for ever
        }
        CHECK(a.cancelled());
        CHECK(b.cancelled());
        CHECK(c.cancelled());
    }
    CHECK(live_frames() == before);
}

// ------------------------------------------------------------------------- asyncio's cancel rules

// Regression: a task with a cancel pending that awaited a handle threw cancelled_error at once
// and left the awaited task running; asyncio cancels the awaited task and waits for it.
TEST_CASE("cancel - a pending request is forwarded to the task a handle awaits", "[cancel]") {
    coring::run([]() -> coring::task<> {
        auto sleeper = coring::create_task(forever());
        auto waiter = [](coring::task_handle<> awaited) -> coring::task<> {
            coring::current_task().cancel();
            co_await awaited;
        };
        co_await coring::sleep(1ms);  // the sleeper is suspended
        auto w = coring::create_task(waiter(sleeper));
        const bool waiter_cancelled = co_await throws_cancelled(w);
        CHECK(waiter_cancelled);
        CHECK(sleeper.cancelled());
    }(), coring_test::virtual_clock);
}

TEST_CASE("cancel - a pending request is forwarded to the future a task awaits", "[cancel][future]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> f;
        auto waiter = [](coring::future<int> awaited) -> coring::task<int> {
            coring::current_task().cancel();
            co_return co_await awaited;
        };
        auto w = coring::create_task(waiter(f));
        const bool waiter_cancelled = co_await throws_cancelled(w);
        CHECK(waiter_cancelled);
        CHECK(f.cancelled());
    }());
}

TEST_CASE("cancel - a forwarded pending request that the awaited task swallows yields its value", "[cancel]") {
    coring::run([]() -> coring::task<> {
        auto stubborn = coring::create_task([]() -> coring::task<int> {
            try {
                co_await coring::sleep(1h);
            } catch (const coring::cancelled_error&) {
                co_return 42;
            }
            co_return 0;
        }());
        auto waiter = [](coring::task_handle<int> awaited) -> coring::task<int> {
            coring::current_task().cancel();
            const int v = co_await awaited;  // the request went to `awaited`, which returned
            co_await coring::sleep(0s);      // so nothing is pending here any more
            co_return v;
        };
        co_await coring::sleep(1ms);
        auto w = coring::create_task(waiter(stubborn));
        const int v = co_await w;
        CHECK(v == 42);
        CHECK_FALSE(stubborn.cancelled());
    }(), coring_test::virtual_clock);
}

// CPython test_tasks.py: test_cancel_at_end. A task that is cancelled while
// it runs and then returns without another suspension point ends cancelled, as in asyncio.
TEST_CASE("cancel - a task cancelled while running that then returns a value ends cancelled", "[cancel]") {
    coring::run([]() -> coring::task<> {
        auto body = []() -> coring::task<int> {
            coring::current_task().cancel();
            co_return 5;
        };
        auto h = coring::create_task(body());
        const bool cancelled = co_await throws_cancelled(h);
        CHECK(cancelled);
        CHECK(h.cancelled());
        CHECK_THROWS_AS(h.result(), coring::cancelled_error);
        // An error still wins over the pending request (asyncio's set_exception).
        auto failing = coring::create_task([]() -> coring::task<int> {
            coring::current_task().cancel();
            throw std::domain_error("failed");
            co_return 0;
        }());
        const bool threw = co_await coring_test::throws<std::domain_error>(failing);
        CHECK(threw);
        CHECK_FALSE(failing.cancelled());
    }());
}

// asyncio's Task.cancel() clears _log_traceback even when the task is done.
TEST_CASE("cancel - on a task that already failed: false, and the failure is no longer reported", "[cancel]") {
    coring::event_loop loop(coring_test::virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        auto failing = coring::create_task([]() -> coring::task<> {
            throw std::domain_error("failed");
            co_return;
        }());
        co_await coring::sleep(1ms);
        REQUIRE(failing.done());
        CHECK_FALSE(failing.cancel());
        CHECK_FALSE(failing.cancelled());
    }());
    loop.close();
    CHECK(reports.reports.empty());
}

// ------------------------------------------------------------------------- cancel messages and counts

namespace {

/// The message of the cancelled_error that awaiting `h` throws ("<none>" if it throws none).
template <class Handle>
coring::task<std::string> cancel_message_of(Handle h) {
    try {
        co_await h;
    } catch (const coring::cancelled_error& e) {
        co_return e.message();
    }
    co_return std::string("<none>");
}

}  // namespace

TEST_CASE("cancel(msg) - the cancelled_error carries the message, awaited or asked for", "[task_handle][cancel]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(forever());
        co_await coring::sleep(0s);
        CHECK(h.cancel("shutting down"));
        const std::string message = co_await cancel_message_of(h);
        CHECK(message == "shutting down");
        std::string from_exception;
        try {
            (void)h.exception();
        } catch (const coring::cancelled_error& e) {
            from_exception = e.message();
        }
        CHECK(from_exception == "shutting down");
        CHECK(std::string(coring::cancelled_error("why").what()) == "why");
        CHECK(coring::cancelled_error().message().empty());
    }());
}

TEST_CASE("cancel(msg) - the latest request's message wins; cancel() without one clears it", "[task_handle][cancel]") {
    coring::run([]() -> coring::task<> {
        auto a = coring::create_task(forever());
        a.cancel("first");
        a.cancel("second");
        const std::string latest = co_await cancel_message_of(a);
        CHECK(latest == "second");
        auto b = coring::create_task(forever());
        b.cancel("first");
        b.cancel();
        const std::string cleared = co_await cancel_message_of(b);
        CHECK(cleared.empty());
    }());
}

TEST_CASE("cancel(msg) - a task cancelled before it starts ends with the message", "[task_handle][cancel]") {
    coring::run([]() -> coring::task<> {
        bool ran = false;
        auto h = coring::create_task([](bool& r) -> coring::task<> {
            r = true;
            co_return;
        }(ran));
        h.cancel("never mind");
        const std::string message = co_await cancel_message_of(h);
        CHECK(message == "never mind");
        CHECK_FALSE(ran);
    }());
}

TEST_CASE("cancel(msg) - forwarded to the task being awaited, with the message", "[task_handle][cancel]") {
    coring::run([]() -> coring::task<> {
        auto inner = coring::create_task(forever());
        auto outer = coring::create_task([](coring::task_handle<void> i) -> coring::task<> { co_await i; }(inner));
        co_await coring::sleep(0s);
        outer.cancel("from outside");
        const std::string outer_message = co_await cancel_message_of(outer);
        const std::string inner_message = co_await cancel_message_of(inner);
        CHECK(outer_message == "from outside");
        CHECK(inner_message == "from outside");
        CHECK(inner.cancelling() == 1);
    }());
}

TEST_CASE("cancel(msg) - a future's cancel", "[task_handle][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> f = coring::get_running_loop().create_future<int>();
        CHECK(f.cancel("no value"));
        const std::string message = co_await cancel_message_of(f);
        CHECK(message == "no value");
    }());
}

TEST_CASE("cancelling / uncancel - count the requests as asyncio does", "[task_handle][cancel]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(forever());
        co_await coring::sleep(0s);
        CHECK(h.cancelling() == 0);
        h.cancel();
        h.cancel();
        CHECK(h.cancelling() == 2);
        CHECK(h.uncancel() == 1);
        CHECK(h.cancelling() == 1);
        const bool cancelled = co_await throws_cancelled(h);
        CHECK(cancelled);
        CHECK(h.cancelling() == 1);  // a finished task keeps its count
        CHECK_FALSE(h.cancel());     // done: no new request
        CHECK(h.cancelling() == 1);
        CHECK(h.uncancel() == 0);
        CHECK(h.uncancel() == 0);  // never below zero
    }());
}

TEST_CASE("uncancel - back at zero, a request not yet delivered is dropped (asyncio 3.13)", "[task_handle][cancel]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task([]() -> coring::task<int> {
            coring::any_task_handle self = coring::current_task();
            self.cancel();  // pending: this task is running
            CHECK(self.cancelling() == 1);
            CHECK(self.uncancel() == 0);
            co_await coring::sleep(1ms);  // no cancelled_error: the request was withdrawn
            co_return 7;
        }());
        const int value = co_await h;
        CHECK(value == 7);
    }());
}

TEST_CASE("uncancel - above zero, the pending request is still delivered", "[task_handle][cancel]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task([]() -> coring::task<int> {
            coring::any_task_handle self = coring::current_task();
            self.cancel();
            self.cancel();
            CHECK(self.uncancel() == 1);
            co_await coring::sleep(1ms);
            co_return 7;
        }());
        const bool cancelled = co_await throws_cancelled(h);
        CHECK(cancelled);
    }());
}

// ------------------------------------------------------------------------- remove_done_callback

TEST_CASE("remove_done_callback - a removed callback never runs; the others do, in order", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        std::vector<std::string> ran;
        auto h = coring::create_task(value_after(10ms, 1));
        const std::uint64_t a = h.add_done_callback([&] { ran.push_back("a"); });
        const std::uint64_t b = h.add_done_callback([&] { ran.push_back("b"); });
        const std::uint64_t c = h.add_done_callback([&] { ran.push_back("c"); });
        CHECK(a != b);
        CHECK(b != c);
        CHECK(h.remove_done_callback(b));
        CHECK_FALSE(h.remove_done_callback(b));  // once
        (void)co_await h;
        co_await coring::sleep(0s);  // the callbacks run on the loop after the task finished
        CHECK(ran == std::vector<std::string>{"a", "c"});
        CHECK_FALSE(h.remove_done_callback(a));  // it ran
    }());
}

TEST_CASE("remove_done_callback - an id from another task, or one already queued, is not removed", "[task_handle]") {
    coring::run([]() -> coring::task<> {
        int runs = 0;
        auto first = coring::create_task(value_after(5ms, 1));
        auto second = coring::create_task(value_after(5ms, 2));
        const std::uint64_t id = first.add_done_callback([&] { ++runs; });
        CHECK_FALSE(second.remove_done_callback(id));
        (void)co_await first;
        const std::uint64_t late = first.add_done_callback([&] { ++runs; });  // done: queued at once
        CHECK_FALSE(first.remove_done_callback(late));
        co_await coring::sleep(0s);
        CHECK(runs == 2);
        (void)co_await second;
    }());
}

// ------------------------------------------------------------------------- eager tasks

TEST_CASE("create_task eager_start - the body runs at once, up to its first suspension", "[task_handle][eager]") {
    coring::run([]() -> coring::task<> {
        std::vector<std::string> order;
        order.push_back("before");
        auto h = coring::create_task(
            [](std::vector<std::string>& o) -> coring::task<int> {
                o.push_back("child starts");
                co_await coring::sleep(1ms);
                o.push_back("child resumes");
                co_return 4;
            }(order),
            {.name = "eager", .eager_start = true});
        order.push_back("after create_task");
        CHECK(h.name() == "eager");
        CHECK_FALSE(h.done());
        const int v = co_await h;
        CHECK(v == 4);
        CHECK(order == std::vector<std::string>{"before", "child starts", "after create_task", "child resumes"});
    }());
}

TEST_CASE("create_task eager_start - a body that never suspends is done when create_task returns", "[task_handle][eager]") {
    coring::run([]() -> coring::task<> {
        auto ok = coring::create_task([]() -> coring::task<int> { co_return 9; }(), {.eager_start = true});
        CHECK(ok.done());
        CHECK(ok.result() == 9);
        auto failed = coring::create_task(
            []() -> coring::task<int> {
                throw std::runtime_error("at once");
                co_return 0;
            }(),
            {.eager_start = true});
        CHECK(failed.done());
        bool threw = false;
        try {
            (void)failed.result();
        } catch (const std::runtime_error&) {
            threw = true;
        }
        CHECK(threw);
        co_return;
    }());
}

TEST_CASE("create_task eager_start - current_task is the child inside, the creator after", "[task_handle][eager]") {
    coring::run([]() -> coring::task<> {
        const coring::any_task_handle creator = coring::current_task();
        coring::any_task_handle seen_inside;
        auto h = coring::create_task(
            [](coring::any_task_handle& inside) -> coring::task<> {
                inside = coring::current_task();
                co_await coring::sleep(1ms);
            }(seen_inside),
            {.eager_start = true});
        CHECK(seen_inside.native_state() == h.native_state());
        CHECK(coring::current_task() == creator);
        co_await h;
    }());
}

TEST_CASE("create_task eager_start - nested eager starts, and cancelling an eager task", "[task_handle][eager]") {
    coring::run([]() -> coring::task<> {
        std::vector<int> order;
        auto outer = coring::create_task(
            [](std::vector<int>& o) -> coring::task<> {
                o.push_back(1);
                auto inner = coring::create_task(
                    [](std::vector<int>& oo) -> coring::task<> {
                        oo.push_back(2);
                        co_await coring::sleep(1h);
                    }(o),
                    {.eager_start = true});
                o.push_back(3);
                co_await inner;
            }(order),
            {.eager_start = true});
        order.push_back(4);
        CHECK(order == std::vector<int>{1, 2, 3, 4});
        outer.cancel();
        const bool cancelled = co_await throws_cancelled(outer);
        CHECK(cancelled);
    }());
}
