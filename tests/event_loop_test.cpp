// Tests of coring/event_loop.hpp: running, callbacks, timers, threads, signals, the exception
// handler, ring handling, shutdown, and hand-offs between tasks.
#include <coring/event_loop.hpp>

#include <coring/io/ops.hpp>
#include <coring/run.hpp>
#include <coring/sync/barrier.hpp>
#include <coring/sync/condition.hpp>
#include <coring/sync/event.hpp>
#include <coring/sync/mutex.hpp>
#include <coring/sync/queue.hpp>
#include <coring/sync/semaphore.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>
#include <coring/wait_for.hpp>

#include "support/catch.hpp"
#include "support/test_access.hpp"
#include "support/helpers.hpp"
#include "sync/stack_span.hpp"

#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;
using coring_test::ms_since;
using coring_test::virtual_clock;

TEST_CASE("event_loop - run_until_complete returns the value, rethrows the exception", "[event_loop]") {
    coring::event_loop loop;
    CHECK(loop.run_until_complete([]() -> coring::task<int> { co_return 3; }()) == 3);
    CHECK_THROWS_AS(loop.run_until_complete([]() -> coring::task<int> {
        co_await coring::sleep(0s);
        throw std::length_error("x");
    }()),
                    std::length_error);
    CHECK_FALSE(loop.is_running());
    CHECK_FALSE(loop.is_closed());
    loop.close();
    CHECK(loop.is_closed());
    CHECK_THROWS_AS(loop.run_until_complete([]() -> coring::task<> { co_return; }()), std::logic_error);
}

TEST_CASE("event_loop - get_running_loop only inside a running loop", "[event_loop]") {
    CHECK_THROWS_AS(coring::get_running_loop(), std::logic_error);
    coring::event_loop loop;
    CHECK_THROWS_AS(coring::get_running_loop(), std::logic_error);
    loop.run_until_complete([](coring::event_loop& expected) -> coring::task<> {
        CHECK(&coring::get_running_loop() == &expected);
        CHECK(expected.is_running());
        co_return;
    }(loop));
}

TEST_CASE("event_loop - a running loop cannot be run again", "[event_loop]") {
    coring::event_loop loop;
    loop.run_until_complete([](coring::event_loop& l) -> coring::task<> {
        CHECK_THROWS_AS(l.run_until_complete([]() -> coring::task<> { co_return; }()), std::logic_error);
        CHECK_THROWS_AS(l.run_forever(), std::logic_error);
        CHECK_THROWS_AS(l.close(), std::logic_error);
        co_return;
    }(loop));
}

TEST_CASE("event_loop - call_soon runs callbacks in FIFO order on the next iteration", "[event_loop]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        std::vector<int> order;
        for (int i = 0; i < 5; ++i) loop.call_soon([&order, i] { order.push_back(i); });
        CHECK(order.empty());
        co_await coring::sleep(0s);
        CHECK(order == std::vector<int>{0, 1, 2, 3, 4});
        // A callback scheduled by a callback runs on the iteration after.
        std::vector<std::string> chain;
        loop.call_soon([&] {
            chain.push_back("first");
            loop.call_soon([&] { chain.push_back("second"); });
        });
        co_await coring::sleep(0s);
        CHECK(chain == std::vector<std::string>{"first"});
        co_await coring::sleep(0s);
        CHECK(chain == std::vector<std::string>{"first", "second"});
    }());
}

TEST_CASE("event_loop - call_later runs the callback once the delay has passed", "[event_loop]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        const auto start = std::chrono::steady_clock::now();
        double fired_at = 0;
        (void)loop.call_later(20ms, [&] { fired_at = ms_since(start); });
        co_await coring::sleep(40ms);
        CHECK(fired_at >= 20.0);
        CHECK(fired_at < 60.0);
    }());
}

TEST_CASE("event_loop - call_at and call_later callbacks run in deadline order", "[event_loop]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            std::vector<std::string> log;
            (void)loop.call_later(20ms, [&] { log.push_back("later"); });
            (void)loop.call_at(loop.time() + 10ms, [&] { log.push_back("at"); });
            co_await coring::sleep(40ms);
            CHECK(log == std::vector<std::string>{"at", "later"});
        }(),
        virtual_clock);
}

TEST_CASE("event_loop - timer_handle::cancel before the deadline: the callback never runs", "[event_loop]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            bool ran = false;
            auto h3 = loop.call_later(15ms, [&] { ran = true; });
            CHECK(h3.when() > loop.time());
            h3.cancel();
            CHECK(h3.cancelled());
            co_await coring::sleep(40ms);
            CHECK_FALSE(ran);
        }(),
        virtual_clock);
}

TEST_CASE("event_loop - timer_handle::cancel after the callback ran has no effect", "[event_loop]") {
    coring::run(
        []() -> coring::task<> {
            auto& loop = coring::get_running_loop();
            auto h1 = loop.call_later(20ms, [] {});
            auto h2 = loop.call_at(loop.time() + 10ms, [] {});
            co_await coring::sleep(40ms);
            h1.cancel();
            CHECK_FALSE(h1.cancelled());
            CHECK_FALSE(h2.cancelled());
        }(),
        virtual_clock);
}

TEST_CASE("event_loop - a timer whose handles are dropped still fires", "[event_loop]") {
    coring::run(
        []() -> coring::task<> {
            bool fired = false;
            (void)coring::get_running_loop().call_later(1ms, [&] { fired = true; });
            co_await coring::sleep(10ms);
            CHECK(fired);
        }(),
        virtual_clock);
}

TEST_CASE("event_loop - callback exceptions go to the exception handler and the loop goes on", "[event_loop]") {
    coring::event_loop loop(virtual_clock);
    coring_test::captured_reports reports;
    reports.install(loop);
    int after = 0;
    loop.run_until_complete([](coring::event_loop& l, int& a) -> coring::task<> {
        l.call_soon([] { throw std::runtime_error("callback failed"); });
        l.call_later(1ms, [] { throw std::logic_error("timer failed"); });
        l.call_soon([&a] { ++a; });
        co_await coring::sleep(10ms);
    }(loop, after));
    CHECK(after == 1);
    REQUIRE(reports.reports.size() == 2);
    CHECK(reports.reports[0].message == "exception in a callback");
    CHECK_THROWS_AS(std::rethrow_exception(reports.reports[0].exception), std::runtime_error);
    CHECK_THROWS_AS(std::rethrow_exception(reports.reports[1].exception), std::logic_error);
}

TEST_CASE("event_loop - the default exception handler prints to stderr", "[event_loop]") {
    // Smoke test of the formatting path; the text goes to stderr.
    coring::event_loop::default_exception_handler(
        {"test report", std::make_exception_ptr(std::runtime_error("shown")), "Task-9", coring::source_location::current()});
    SUCCEED();
}

TEST_CASE("event_loop - call_soon_threadsafe wakes a loop blocked in the kernel", "[event_loop][threads]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        coring::future<int> f;
        std::atomic<bool> sent{false};
        std::chrono::steady_clock::time_point sent_at;
        std::thread other([&] {
            std::this_thread::sleep_for(50ms);  // the loop is blocked in io_uring_enter by now
            sent_at = std::chrono::steady_clock::now();
            sent = true;
            // By reference: a future's count of owners is the loop thread's, not to be copied here.
            loop.call_soon_threadsafe([&f] { f.set_result(42); });
        });
        const int v = co_await f;  // nothing else to do: the loop blocks with no timer
        const double latency = ms_since(sent_at);
        other.join();
        CHECK(sent);
        CHECK(v == 42);
        CHECK(latency < 20.0);
    }());
}

TEST_CASE("event_loop - call_soon_threadsafe from many threads loses nothing", "[event_loop][threads]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        constexpr int threads = 4;
        constexpr int per_thread = 5000;
        int received = 0;
        coring::future<> all;
        std::vector<std::thread> pool;
        for (int t = 0; t < threads; ++t) {
            pool.emplace_back([&] {
                for (int i = 0; i < per_thread; ++i)
                    loop.call_soon_threadsafe([&] {
                        if (++received == threads * per_thread) all.set_result();
                    });
            });
        }
        co_await all;
        for (auto& th : pool) th.join();
        CHECK(received == threads * per_thread);
    }());
}

TEST_CASE("event_loop - the wake-up poll is re-armed when the kernel ends it", "[event_loop][ring]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        const unsigned armed_before = coring_test::test_access::wakeup_arm_count(loop);
        // Cancelling the multishot poll ends it the way a CQ overflow does: a CQE without
        // IORING_CQE_F_MORE. The loop must arm it again or it would never wake up again.
        coring_test::test_access::interrupt_wakeup(loop);
        co_await coring::io::nop();  // an iteration that enters the kernel
        co_await coring::sleep(1ms);
        CHECK(coring_test::test_access::wakeup_arm_count(loop) == armed_before + 1);
        coring::future<int> f;
        std::thread other([&] {
            std::this_thread::sleep_for(30ms);
            loop.call_soon_threadsafe([&f] { f.set_result(1); });  // not a copy: see above
        });
        const int value = co_await f;
        CHECK(value == 1);
        other.join();
    }());
}

TEST_CASE("event_loop - run_forever runs until a callback calls stop()", "[event_loop]") {
    coring::event_loop loop;
    int iterations = 0;
    std::function<void()> tick = [&] {
        if (++iterations == 5)
            loop.stop();
        else
            loop.call_soon(tick);
    };
    loop.call_soon(tick);
    loop.run_forever();
    CHECK(iterations == 5);
}

TEST_CASE("event_loop - stop() before run_forever lets exactly one iteration run", "[event_loop]") {
    coring::event_loop loop;
    int ran = 0;
    loop.call_soon([&] { ++ran; });
    loop.call_soon([&] { loop.call_soon([&] { ++ran; }); });
    loop.stop();
    loop.run_forever();
    CHECK(ran == 1);
}

TEST_CASE("event_loop - run_until_complete stopped before its task finishes throws", "[event_loop]") {
    coring::event_loop loop;
    loop.call_soon([&] { loop.stop(); });
    CHECK_THROWS_AS(loop.run_until_complete([]() -> coring::task<> { co_await coring::sleep(1h); }()), std::runtime_error);
}

TEST_CASE("event_loop - signal handlers run on the loop through a signalfd", "[event_loop][signals]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        int usr1 = 0;
        coring::future<> got;
        loop.add_signal_handler(SIGUSR1, [&] {
            if (++usr1 == 2) got.set_result();
        });
        ::raise(SIGUSR1);  // blocked in this thread: stays pending until the signalfd read takes it
        co_await coring::sleep(5ms);
        CHECK(usr1 == 1);
        ::kill(::getpid(), SIGUSR1);
        co_await got;
        CHECK(usr1 == 2);
        CHECK(loop.remove_signal_handler(SIGUSR1));
        CHECK_FALSE(loop.remove_signal_handler(SIGUSR1));
        // Unblocked again: the thread's mask is back to what it was.
        sigset_t mask;
        pthread_sigmask(SIG_SETMASK, nullptr, &mask);
        CHECK_FALSE(sigismember(&mask, SIGUSR1));
        CHECK_THROWS_AS(loop.add_signal_handler(SIGKILL, [] {}), std::invalid_argument);
        CHECK_THROWS_AS(loop.add_signal_handler(0, [] {}), std::invalid_argument);
    }());
}

namespace {
extern "C" void ignore_signal(int) {}
}  // namespace

TEST_CASE("event_loop - a signal interrupting the wait (EINTR) does not disturb timers", "[event_loop][ring]") {
    struct sigaction action {};
    action.sa_handler = ignore_signal;
    sigemptyset(&action.sa_mask);
    struct sigaction previous {};
    REQUIRE(sigaction(SIGUSR2, &action, &previous) == 0);
    const pthread_t loop_thread = pthread_self();
    coring::run([](pthread_t target) -> coring::task<> {
        std::atomic<bool> done{false};
        std::thread pest([&] {
            while (!done) {
                pthread_kill(target, SIGUSR2);
                std::this_thread::sleep_for(2ms);
            }
        });
        const auto start = std::chrono::steady_clock::now();
        co_await coring::sleep(50ms);
        const double elapsed = ms_since(start);
        done = true;
        pest.join();
        CHECK(elapsed >= 50.0);
        CHECK(elapsed < 100.0);
    }(loop_thread));
    sigaction(SIGUSR2, &previous, nullptr);
}

TEST_CASE("event_loop - completions beyond the CQ size overflow and are all delivered", "[event_loop][ring]") {
    // A ring with a 4-entry CQ and 500 nops: they complete as the SQ (4 entries) is submitted
    // to make room, so the kernel parks the surplus on its overflow list, and the loop must
    // flush it. The loop saw the overflow, and nothing was dropped.
    coring::event_loop loop(coring::loop_options{.queue_depth = 4, .completion_queue_depth = 4});
    REQUIRE(loop.stats().cq_overflows == 0);
    std::vector<int> order;
    const int completed = loop.run_until_complete([](std::vector<int>& done) -> coring::task<int> {
        int count = 0;
        auto one = [](int& c, std::vector<int>& d, int i) -> coring::task<> {
            co_await coring::io::nop();
            ++c;
            d.push_back(i);
        };
        std::vector<coring::task_handle<>> hs;
        for (int i = 0; i < 500; ++i) hs.push_back(coring::create_task(one(count, done, i)));
        for (auto& h : hs) co_await h;
        co_return count;
    }(order));
    CHECK(completed == 500);
    std::sort(order.begin(), order.end());
    CHECK(std::adjacent_find(order.begin(), order.end()) == order.end());  // each one once
    const coring::loop_stats s = loop.stats();
    CHECK(s.cq_overflows > 0);
    CHECK(s.cq_dropped == 0);
    CHECK(s.dropped_completions_reported == 0);
    CHECK(s.completions >= 500);
}

TEST_CASE("event_loop - link timeouts that fire together overflow the CQ, and every task sees its timeout", "[event_loop][ring]") {
    // 100 reads of an empty pipe with a 20 ms link timeout; the loop's thread then blocks for
    // 100 ms, so every timeout has fired before it next enters the kernel: 200 CQEs (each read's
    // -ECANCELED and its timeout's -ETIME) arrive at once at an 8-entry CQ.
    coring::event_loop loop(coring::loop_options{.queue_depth = 8, .completion_queue_depth = 8});
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    const int timed_out = loop.run_until_complete([](int fd) -> coring::task<int> {
        int count = 0;
        auto one = [](int f, int& c) -> coring::task<> {
            std::array<std::byte, 8> buf{};
            const bool threw = co_await coring_test::throws<coring::timeout_error>(coring::io::with_timeout(coring::io::read(f, buf), 20ms));
            if (threw) ++c;
        };
        std::vector<coring::task_handle<>> hs;
        for (int i = 0; i < 100; ++i) hs.push_back(coring::create_task(one(fd, count)));
        co_await coring::sleep(0s);  // the tasks submit their reads
        co_await coring::sleep(0s);  // and the loop hands them to the kernel
        std::this_thread::sleep_for(100ms);
        for (auto& h : hs) co_await h;
        co_return count;
    }(fds[0]));
    CHECK(timed_out == 100);
    const coring::loop_stats s = loop.stats();
    CHECK(s.cq_overflows > 0);
    CHECK(s.cq_dropped == 0);
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("event_loop - EBADR (the kernel dropped CQEs) is reported once per occurrence, and the loop goes on", "[event_loop][ring]") {
    coring_test::captured_reports captured;
    int nops_done = 0;
    CHECK_NOTHROW(coring::run([](coring_test::captured_reports& reports, int& nops) -> coring::task<> {
        coring::event_loop& loop = coring::get_running_loop();
        reports.install(loop);
        // While waiting: the sleep makes the loop block in io_uring_enter.
        coring_test::test_access::fail_next_enter(loop, EBADR);
        co_await coring::sleep(1ms);
        co_await coring::sleep(1ms);
        REQUIRE(reports.reports.size() == 1);
        CHECK(loop.stats().dropped_completions_reported == 1);
        // While polling: a nop in flight makes the loop enter without waiting.
        coring_test::test_access::fail_next_enter(loop, EBADR);
        co_await coring::io::nop();
        ++nops;
        for (int i = 0; i < 10; ++i) {
            co_await coring::io::nop();
            ++nops;
        }
        co_await coring::sleep(1ms);
    }(captured, nops_done)));
    CHECK(nops_done == 11);
    REQUIRE(captured.reports.size() == 2);
    for (const coring::exception_context& report : captured.reports) {
        CHECK(report.message.find("completions were lost") != std::string::npos);
        CHECK(report.message.find("EBADR") != std::string::npos);
        CHECK(report.message.find("completion_queue_depth") != std::string::npos);
        REQUIRE(report.exception);
        try {
            std::rethrow_exception(report.exception);
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EBADR);
        }
    }
}

TEST_CASE("event_loop - an io_uring_enter error other than EBADR is still thrown out of the loop", "[event_loop][ring]") {
    coring::event_loop loop;
    bool reached_after = false;
    int err = 0;
    try {
        loop.run_until_complete([](bool& after) -> coring::task<> {
            coring_test::test_access::fail_next_enter(coring::get_running_loop(), EFAULT);
            co_await coring::sleep(1ms);
            after = true;
        }(reached_after));
    } catch (const std::system_error& e) {
        err = e.code().value();
    }
    CHECK(err == EFAULT);
    CHECK_FALSE(reached_after);
    CHECK(loop.stats().dropped_completions_reported == 0);
}

TEST_CASE("event_loop - setup flags are recorded", "[event_loop][ring]") {
    coring::event_loop loop;
    const unsigned flags = loop.ring_setup_flags();
    // This kernel is new enough for DEFER_TASKRUN (6.1); older ones record what they accepted.
    const bool defer = (flags & IORING_SETUP_DEFER_TASKRUN) != 0;
    const bool coop = (flags & IORING_SETUP_COOP_TASKRUN) != 0;
    CHECK((defer || coop || flags == IORING_SETUP_CQSIZE || flags == 0));
    if (defer) CHECK((flags & IORING_SETUP_SINGLE_ISSUER) != 0);
}

namespace {

// A loop that run_until_complete left with work pending: 100 tasks asleep for an hour, each
// counting its cancellation in `cleaned`, a timer an hour away that would set `timer_ran`, and
// a callback queued.
struct loop_with_pending_work {
    int cleaned = 0;
    bool timer_ran = false;
    coring::event_loop loop;  // declared last: destroyed first, while the flags still exist

    loop_with_pending_work() {
        loop.run_until_complete([](int& c, bool& t) -> coring::task<> {
            auto sleeper = [](int& count) -> coring::task<> {
                try {
                    co_await coring::sleep(1h);
                } catch (const coring::cancelled_error&) {
                    ++count;
                    throw;
                }
            };
            for (int i = 0; i < 100; ++i) (void)coring::create_task(sleeper(c));
            (void)coring::get_running_loop().call_later(1h, [&t] { t = true; });
            coring::get_running_loop().call_soon([] {});
            co_await coring::sleep(1ms);
        }(cleaned, timer_ran));
    }
};

}  // namespace

TEST_CASE("event_loop - close cancels the pending tasks, each handling its cancellation", "[event_loop][shutdown]") {
    loop_with_pending_work pending;
    CHECK(coring::detail::scheduler_of(pending.loop).unfinished_tasks() == 100);
    pending.loop.close();
    CHECK(pending.cleaned == 100);
    CHECK(coring::detail::scheduler_of(pending.loop).unfinished_tasks() == 0);
}

TEST_CASE("event_loop - close drops the pending timers without running them", "[event_loop][shutdown]") {
    loop_with_pending_work pending;
    pending.loop.close();
    CHECK_FALSE(pending.timer_ran);
}

TEST_CASE("event_loop - close frees every frame", "[event_loop][shutdown]") {
    const auto before = live_frames();
    {
        loop_with_pending_work pending;
        CHECK(live_frames() > before);
        pending.loop.close();
    }
    CHECK(live_frames() == before);
}

TEST_CASE("event_loop - close waits for in-flight kernel operations to come back", "[event_loop][shutdown]") {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    {
        coring::event_loop loop;
        loop.run_until_complete([](int fd) -> coring::task<> {
            auto reader = [](int f) -> coring::task<> {
                std::array<std::byte, 8> buf{};
                (void)co_await coring::io::read(f, buf);
            };
            (void)coring::create_task(reader(fd));
            co_await coring::sleep(1ms);
            CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 1);
        }(fds[0]));
        loop.close();
        CHECK(coring::detail::scheduler_of(loop).user_ops_in_flight() == 0);
    }
    ::close(fds[0]);
    ::close(fds[1]);
}

TEST_CASE("event_loop - a task created during shutdown is cancelled too", "[event_loop][shutdown]") {
    const auto before = live_frames();
    {
        coring::task_handle<> second;
        {
            coring::event_loop loop;
            loop.run_until_complete([](coring::task_handle<>& spawned) -> coring::task<> {
                auto first = [](coring::task_handle<>& out) -> coring::task<> {
                    try {
                        co_await coring::sleep(1h);
                    } catch (const coring::cancelled_error&) {
                        // Spawned while being cancelled: close() must cancel it in a later round.
                        out = coring::create_task([]() -> coring::task<> { co_await coring::sleep(1h); }());
                        throw;
                    }
                };
                (void)coring::create_task(first(spawned));
                co_await coring::sleep(1ms);
            }(second));
        }
        REQUIRE(second);
        CHECK(second.cancelled());  // cancelled before it started: its body never ran
    }
    CHECK(live_frames() == before);
}

TEST_CASE("event_loop - busy_poll: operations complete", "[event_loop][ring]") {
    coring::event_loop loop(coring::loop_options{.busy_poll = 1ms});
    loop.run_until_complete([]() -> coring::task<> {
        for (int i = 0; i < 3; ++i) co_await coring::io::nop();
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        auto reader = coring::create_task([](int fd) -> coring::task<std::size_t> {
            std::array<std::byte, 8> buf{};
            co_return co_await coring::io::read(fd, buf);
        }(fds[0]));
        co_await coring::sleep(0s);
        REQUIRE(::write(fds[1], "abc", 3) == 3);
        const std::size_t got = co_await reader;
        CHECK(got == 3);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);
        ::close(fds[0]);
        ::close(fds[1]);
    }());
}

TEST_CASE("event_loop - busy_poll: a sleep while a read is in flight is neither late nor early", "[event_loop][ring]") {
    coring::event_loop loop(coring::loop_options{.busy_poll = 1ms});
    loop.run_until_complete([]() -> coring::task<> {
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        // A read in flight makes the loop spin before it waits; the sleep must not be late by
        // the spin (nor early).
        auto reader = coring::create_task([](int fd) -> coring::task<std::size_t> {
            std::array<std::byte, 8> buf{};
            co_return co_await coring::io::read(fd, buf);
        }(fds[0]));
        co_await coring::sleep(0s);
        const auto start = std::chrono::steady_clock::now();
        co_await coring::sleep(5ms);
        const double slept = ms_since(start);
        CHECK(slept >= 5.0);
        CHECK(slept < 50.0);
        REQUIRE(::write(fds[1], "abc", 3) == 3);
        const std::size_t got = co_await reader;
        CHECK(got == 3);
        ::close(fds[0]);
        ::close(fds[1]);
    }());
}

TEST_CASE("event_loop - eager_submit: operations go to the kernel as they are issued and complete", "[event_loop][ring]") {
    coring::event_loop loop(coring::loop_options{.eager_submit = true});
    loop.run_until_complete([]() -> coring::task<> {
        auto& l = coring::get_running_loop();
        const auto before = l.stats().submissions;
        co_await coring::io::nop();
        co_await coring::io::nop();
        CHECK(l.stats().submissions >= before + 2);
        CHECK(l.stats().completions >= 2);
    }());
}

// ------------------------------------------------------------------------- hand-offs
// A task that suspends on a synchronisation primitive may start the loop's next iteration itself
// and switch straight to the next ready task (event_loop.hpp, "Hand-off"). Debug mode turns
// hand-offs off, so the same program run in both modes must do exactly the same things.

namespace {

struct handoff_trace {
    std::vector<std::string> events;
    std::uint64_t iterations = 0;
    std::uint64_t handoffs = 0;
    std::size_t high_water = 0;
};

// Tasks that switch through a queue, a mutex, a condition, an event, a barrier and a semaphore,
// among tasks that yield with sleep(0) and callbacks queued with call_soon; one of them stops
// the loop midway.
handoff_trace run_mixed_workload(bool debug) {
    handoff_trace out;
    std::vector<std::string>& events = out.events;
    // Virtual time: the clock stands still while tasks are ready, so a timer due now expires at
    // the same iteration in every run, hand-offs or not.
    coring::event_loop loop(coring::loop_options{.debug = debug, .virtual_time = true});
    loop.set_debug(debug);  // whatever CORING_DEBUG says
    coring::queue<int> items(1);
    coring::mutex lock;
    coring::condition ready_cond;
    coring::event halfway;
    int shared = 0;

    auto producer = [](coring::queue<int>& q, coring::event& half, std::vector<std::string>& ev) -> coring::task<> {
        for (int i = 0; i < 60; ++i) {
            co_await q.put(i);
            ev.push_back("put" + std::to_string(i));
            if (i == 20) half.set();
        }
    };
    auto consumer = [](coring::queue<int>& q, std::vector<std::string>& ev) -> coring::task<> {
        for (int i = 0; i < 60; ++i) {
            const int v = co_await q.get();
            ev.push_back("got" + std::to_string(v));
            if (v % 7 == 0) coring::get_running_loop().call_soon([&ev, v] { ev.push_back("callback" + std::to_string(v)); });
            if (v == 45) coring::get_running_loop().stop();
        }
    };
    auto yielder = [](std::vector<std::string>& ev) -> coring::task<> {
        for (int i = 0; i < 40; ++i) {
            co_await coring::sleep(0s);
            ev.push_back("yield" + std::to_string(i));
        }
    };
    auto locker = [](coring::mutex& m, coring::condition& c, int& value, int id, std::vector<std::string>& ev) -> coring::task<> {
        for (int i = 0; i < 10; ++i) {
            auto guard = co_await m.scoped_lock();
            ev.push_back("lock" + std::to_string(id));
            co_await coring::sleep(0s);  // held across a suspension: the other one waits
            ++value;
            c.notify_all();
        }
    };
    auto watcher = [](coring::mutex& m, coring::condition& c, int& value, coring::event& half, std::vector<std::string>& ev) -> coring::task<> {
        co_await half.wait();
        ev.push_back("halfway");
        auto guard = co_await m.scoped_lock();
        co_await c.wait(guard, [&value] { return value >= 15; });
        ev.push_back("value" + std::to_string(value));
    };

    // A pair that switches through a queue until told to stop; its count at each return of
    // run_forever / run_until_complete shows that those returned after the same iteration.
    coring::queue<int> balls(1);
    bool stop_rally = false;
    long rallied = 0;
    coring::event checkpoint;  // set when `rallied` reaches checkpoint_at
    long checkpoint_at = -1;
    long stop_at = -1;  // the loop is stopped when `rallied` reaches it
    auto ping = [](coring::queue<int>& q, bool& stop) -> coring::task<> {
        while (!stop) co_await q.put(1);
        co_await q.put(0);
    };
    auto pong = [](coring::queue<int>& q, long& count, coring::event& reached, const long& target, const long& stop_when,
                   std::vector<std::string>& ev) -> coring::task<> {
        for (;;) {
            // The waiter on `reached` is queued before the partner this get() lets in: a task
            // finishes with switching work left in its iteration.
            if (count == target) reached.set();
            if (count == stop_when) coring::get_running_loop().stop();  // in the middle of hand-offs
            // A timer due now: it expires when the next iteration starts, in a hand-off or not.
            if (count % 37 == 0) coring::get_running_loop().call_later(0s, [&ev, n = count] { ev.push_back("timer" + std::to_string(n)); });
            if (co_await q.get() == 0) break;
            ++count;
        }
    };
    auto pi = loop.create_task(ping(balls, stop_rally));
    auto po = loop.create_task(pong(balls, rallied, checkpoint, checkpoint_at, stop_at, events));
    coring::barrier meeting(3);
    coring::semaphore slot(1);
    auto attendee = [](coring::barrier& b, coring::semaphore& sem, int id, std::vector<std::string>& ev) -> coring::task<> {
        for (int round = 0; round < 6; ++round) {
            const std::size_t index = co_await b.wait();
            ev.push_back("met" + std::to_string(id) + ":" + std::to_string(index));
            co_await sem.acquire();
            ev.push_back("slot" + std::to_string(id));
            co_await coring::sleep(0s);
            sem.release();
        }
    };
    auto m1 = loop.create_task(attendee(meeting, slot, 1, events));
    auto m2 = loop.create_task(attendee(meeting, slot, 2, events));
    auto m3 = loop.create_task(attendee(meeting, slot, 3, events));
    auto p = loop.create_task(producer(items, halfway, events));
    auto c = loop.create_task(consumer(items, events));
    auto y = loop.create_task(yielder(events));
    auto l1 = loop.create_task(locker(lock, ready_cond, shared, 1, events));
    auto l2 = loop.create_task(locker(lock, ready_cond, shared, 2, events));
    auto w = loop.create_task(watcher(lock, ready_cond, shared, halfway, events));
    loop.run_forever();  // until the consumer stops it
    events.push_back("stopped, rallied " + std::to_string(rallied));
    // Returns after the iteration in which its task finished, not later.
    checkpoint_at = rallied + 100;
    loop.run_until_complete([](coring::event& e) -> coring::task<> { co_await e.wait(); }(checkpoint));
    events.push_back("returned, rallied " + std::to_string(rallied));
    stop_at = rallied + 100;
    loop.run_forever();
    events.push_back("stopped again, rallied " + std::to_string(rallied));
    stop_rally = true;
    loop.run_until_complete([](std::vector<coring::task_handle<void>> handles) -> coring::task<> {
        for (auto& h : handles) co_await h;
    }({p, c, y, l1, l2, w, pi, po, m1, m2, m3}));
    out.iterations = loop.stats().iterations;
    out.handoffs = loop.stats().handoffs;
    out.high_water = loop.stats().ready_high_water;
    loop.close();
    return out;
}

}  // namespace

// Each case runs the workload in both modes: debug mode sends every switch through the loop.

TEST_CASE("event_loop - the mixed workload switches by hand-offs, and by none in debug mode", "[event_loop][handoff]") {
    const handoff_trace with = run_mixed_workload(false);
    const handoff_trace without = run_mixed_workload(true);
    CHECK(without.handoffs == 0);
    CHECK(with.handoffs > 10);  // 134 today: most switches here share their iteration with other work
}

TEST_CASE("event_loop - hand-offs keep the order of events", "[event_loop][handoff]") {
    const handoff_trace with = run_mixed_workload(false);
    const handoff_trace without = run_mixed_workload(true);
    CHECK(with.events == without.events);
}

TEST_CASE("event_loop - hand-offs keep the number of iterations", "[event_loop][handoff]") {
    const handoff_trace with = run_mixed_workload(false);
    const handoff_trace without = run_mixed_workload(true);
    CHECK(with.iterations == without.iterations);
}

TEST_CASE("event_loop - hand-offs keep the ready queue's high-water mark (the batches)", "[event_loop][handoff]") {
    const handoff_trace with = run_mixed_workload(false);
    const handoff_trace without = run_mixed_workload(true);
    CHECK(with.high_water == without.high_water);
}

TEST_CASE("event_loop - stop() amid hand-offs stops the loop where it was asked", "[event_loop][handoff]") {
    for (const bool debug : {false, true}) {
        INFO("debug mode: " << debug);
        const handoff_trace trace = run_mixed_workload(debug);
        // The consumer stops the loop at 45: the rest ran after "stopped".
        const auto stopped = std::find_if(trace.events.begin(), trace.events.end(), [](const std::string& e) { return e.starts_with("stopped"); });
        REQUIRE(stopped != trace.events.end());
        CHECK(std::find(trace.events.begin(), stopped, "got45") != stopped);
        CHECK(std::find(trace.events.begin(), stopped, "got47") == stopped);
        CHECK(std::find(stopped, trace.events.end(), "got59") != trace.events.end());
    }
}

TEST_CASE("event_loop - tasks switching without end do not hold up timers, I/O or other threads", "[event_loop][handoff]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        loop.set_debug(false);  // hand-offs are what this checks (CORING_DEBUG=1 turns them off)
        coring::queue<int> q(1);
        bool done = false;
        long switched = 0;
        auto ping = [](coring::queue<int>& qu, bool& stop) -> coring::task<> {
            int i = 0;
            while (!stop) co_await qu.put(i++);  // another task sets `stop`
            co_await qu.put(-1);
        };
        auto pong = [](coring::queue<int>& qu, long& count) -> coring::task<> {
            while (co_await qu.get() >= 0) ++count;
        };
        auto a = coring::create_task(ping(q, done));
        auto b = coring::create_task(pong(q, switched));
        const std::uint64_t handoffs_before = loop.stats().handoffs;

        // A timer fires on time.
        auto start = std::chrono::steady_clock::now();
        co_await coring::sleep(20ms);
        const double slept = coring_test::ms_since(start);
        CHECK(slept >= 19.0);
        CHECK(slept < 2000.0);
        CHECK(switched > 100);

        // A read completes.
        int fds[2];
        REQUIRE(::pipe(fds) == 0);
        std::thread writer([fd = fds[1]] {
            std::this_thread::sleep_for(10ms);
            (void)!::write(fd, "x", 1);
        });
        std::array<std::byte, 4> buf{};
        start = std::chrono::steady_clock::now();
        const std::size_t n = co_await coring::wait_for(coring::io::read(fds[0], buf), 5s);
        CHECK(n == 1);
        CHECK(coring_test::ms_since(start) < 2000.0);
        writer.join();
        ::close(fds[0]);
        ::close(fds[1]);

        // Another thread's callback runs.
        coring::event called;
        start = std::chrono::steady_clock::now();
        std::thread caller([&loop, &called] { loop.call_soon_threadsafe([&called] { called.set(); }); });
        co_await coring::wait_for(called.wait(), 5s);
        CHECK(coring_test::ms_since(start) < 2000.0);
        caller.join();

        done = true;
        co_await a;
        co_await b;
        CHECK(loop.stats().handoffs > handoffs_before + 100);
    }());
}

TEST_CASE("event_loop - an SQE a task prepares goes to the kernel before the next task runs, hand-offs or not", "[event_loop][handoff]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        loop.set_debug(false);  // hand-offs are what this checks
        coring::queue<int> q(1);
        auto produce = [](coring::queue<int>& qu) -> coring::task<> {
            for (int i = 0; i < 300; ++i) {
                // An operation coring does not wrap, prepared on the raw ring (native_ring(), not
                // the loop's get_sqe), at many points of the runs of hand-offs (the first
                // hand-off after run_once checks anyway).
                if (i % 7 == 3) {
                    io_uring_sqe* sqe = io_uring_get_sqe(coring::get_running_loop().native_ring());
                    REQUIRE(sqe != nullptr);
                    io_uring_prep_nop(sqe);
                    io_uring_sqe_set_data64(sqe, 0);  // a completion the loop ignores
                }
                co_await qu.put(i);
            }
        };
        // After each get: how many SQEs the kernel has not taken yet.
        auto consume = [](coring::queue<int>& qu, std::vector<unsigned>& unsubmitted) -> coring::task<> {
            for (int i = 0; i < 300; ++i) {
                (void)co_await qu.get();
                unsubmitted.push_back(io_uring_sq_ready(coring::get_running_loop().native_ring()));
            }
        };
        std::vector<unsigned> unsubmitted;
        const std::uint64_t before = loop.stats().handoffs;
        auto p = coring::create_task(produce(q));
        auto c = coring::create_task(consume(q, unsubmitted));
        co_await p;
        co_await c;
        CHECK(loop.stats().handoffs > before + 100);  // the tasks did switch by hand-offs
        REQUIRE(unsubmitted.size() == 300);
        CHECK(std::all_of(unsubmitted.begin(), unsubmitted.end(), [](unsigned n) { return n == 0; }));
    }());
}

TEST_CASE("event_loop - a million hand-offs run at a bounded stack depth", "[event_loop][handoff][stack]") {
    coring::run([]() -> coring::task<> {
        coring::get_running_loop().set_debug(false);  // hand-offs are what this checks
        coring::queue<int> q(1);
        coring_test::stack_span span;
        auto produce = [](coring::queue<int>& qu) -> coring::task<> {
            for (int i = 0; i < 1'000'000; ++i) co_await qu.put(i);
        };
        auto consume = [](coring::queue<int>& qu, coring_test::stack_span& sp) -> coring::task<long> {
            long sum = 0;
            for (int i = 0; i < 1'000'000; ++i) {
                sum += co_await qu.get();
                sp.note();
            }
            co_return sum;
        };
        const std::uint64_t before = coring::get_running_loop().stats().handoffs;
        auto p = coring::create_task(produce(q));
        const long sum = co_await consume(q, span);
        co_await p;
        CHECK(sum == 999'999L * 1'000'000L / 2);
        CHECK(coring::get_running_loop().stats().handoffs > before + 500'000);
        CHECK(span.bytes() < coring_test::stack_span::flat_limit);
    }());
}
