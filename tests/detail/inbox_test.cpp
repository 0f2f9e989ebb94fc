// Tests of coring/detail/inbox.hpp, the loop's thread-safe inbox behind call_soon_threadsafe:
// the wake-up of a loop blocked in the kernel, order and exactly-once delivery across threads,
// no kernel wake-up for a busy loop, pushes after close, and the poll on the eventfd that is
// armed again whenever the kernel ends it. (tests/event_loop_test.cpp has the basic wake-up of
// a loop waiting with no timer, a count across threads, and one re-arm.)
#include <coring/event_loop.hpp>
#include <coring/io/ops.hpp>
#include <coring/run.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/test_access.hpp"

#include <sys/utsname.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using coring_test::ms_since;
using coring_test::test_access;

namespace {

using steady = std::chrono::steady_clock;

/// Sleeps far longer than any test takes: the loop's wait in the kernel ends at this timer
/// unless something else wakes it.
coring::task<> distant_timer() { co_await coring::sleep(10s); }

/// Another thread pushes a callback after `delay`; the loop is meant to be blocked in the
/// kernel meanwhile. Returns the milliseconds from the push to the callback's run on the loop.
coring::task<double> wake_from_another_thread(std::chrono::milliseconds delay) {
    auto& loop = coring::get_running_loop();
    coring::future<> ran;
    std::atomic<std::int64_t> pushed_at{0};
    std::thread other([&loop, &ran, &pushed_at, delay] {
        std::this_thread::sleep_for(delay);
        pushed_at = steady::now().time_since_epoch().count();
        loop.call_soon_threadsafe([&ran] { ran.set_result(); });
    });
    co_await ran;
    const std::int64_t woke_at = steady::now().time_since_epoch().count();
    other.join();
    co_return std::chrono::duration<double, std::milli>(steady::duration(woke_at - pushed_at.load())).count();
}

/// True on kernels with multishot poll (5.13 and later); older ones arm single shots.
bool kernel_has_multishot_poll() {
    utsname u{};
    if (::uname(&u) != 0) return false;
    int major = 0;
    int minor = 0;
    if (std::sscanf(u.release, "%d.%d", &major, &minor) != 2) return false;
    return major > 5 || (major == 5 && minor >= 13);
}

constexpr int pushing_threads = 4;
constexpr int pushes_per_thread = 5000;

}  // namespace

TEST_CASE("inbox - a push from another thread wakes a loop blocked in the kernel on a distant timer", "[detail][inbox][threads]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        auto sleeper = coring::create_task(distant_timer());
        co_await coring::sleep(0s);  // the timer is set
        for (int round = 0; round < 3; ++round) {
            const auto kernel_before = loop.stats().time_in_kernel;
            const double latency = co_await wake_from_another_thread(50ms);
            INFO("round " << round << ": " << latency << " ms from the push to the callback");
            CHECK(latency < 1000.0);  // not the 10 s of the timer
            CHECK(loop.stats().time_in_kernel - kernel_before >= 25ms);  // it was blocked in the kernel
            CHECK_FALSE(sleeper.done());
        }
        CHECK(sleeper.cancel());
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(sleeper);
        CHECK(cancelled);
    }());
}

TEST_CASE("inbox - pushes from many threads all run exactly once, each thread's in its order", "[detail][inbox][threads]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        std::vector<std::vector<int>> seen(pushing_threads);
        for (auto& s : seen) s.reserve(pushes_per_thread);
        int received = 0;
        coring::future<> all;
        std::atomic<bool> go{false};
        std::vector<std::thread> pool;
        for (int t = 0; t < pushing_threads; ++t) {
            pool.emplace_back([&loop, &seen, &received, &all, &go, t] {
                while (!go.load()) std::this_thread::yield();
                for (int i = 0; i < pushes_per_thread; ++i) {
                    loop.call_soon_threadsafe([&seen, &received, &all, t, i] {
                        seen[static_cast<std::size_t>(t)].push_back(i);
                        if (++received == pushing_threads * pushes_per_thread) all.set_result();
                    });
                    if (i % 512 == 0) std::this_thread::yield();  // let the loop sleep and wake in between
                }
            });
        }
        go = true;
        co_await all;
        for (auto& th : pool) th.join();
        for (int i = 0; i < 3; ++i) co_await coring::sleep(0s);  // nothing more arrives
        CHECK(received == pushing_threads * pushes_per_thread);
        std::vector<int> expected(pushes_per_thread);
        for (int i = 0; i < pushes_per_thread; ++i) expected[static_cast<std::size_t>(i)] = i;
        for (int t = 0; t < pushing_threads; ++t) {
            INFO("thread " << t);
            CHECK(seen[static_cast<std::size_t>(t)] == expected);
        }
    }());
}

TEST_CASE("inbox - a push while the loop is busy runs on the next iteration without a kernel wake-up", "[detail][inbox][threads]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        std::atomic<bool> spinning{false};
        std::atomic<bool> pushed{false};
        bool ran = false;
        std::uint64_t ran_in = 0;
        std::thread other([&loop, &spinning, &pushed, &ran, &ran_in] {
            while (!spinning.load()) std::this_thread::yield();
            loop.call_soon_threadsafe([&loop, &ran, &ran_in] {
                ran = true;
                ran_in = loop.stats().iterations;
            });
            pushed = true;
        });
        const coring::loop_stats before = loop.stats();
        spinning = true;
        // Busy: this task is always ready again, so the loop never blocks in the kernel.
        std::uint64_t seen_in = 0;
        const auto start = steady::now();
        while (!ran && ms_since(start) < 10'000.0) {
            co_await coring::sleep(0s);
            if (seen_in == 0 && pushed.load()) seen_in = loop.stats().iterations;
        }
        other.join();
        const coring::loop_stats after = loop.stats();
        REQUIRE(ran);
        CHECK(after.time_in_kernel == before.time_in_kernel);  // it never waited in the kernel
        // Pushed before the iteration that saw `pushed` ended: run by the next one at the latest.
        if (seen_in != 0) {
            CHECK(ran_in <= seen_in + 1);
        }
        // The push found the loop awake, so it wrote nothing to the eventfd: a round trip through
        // the kernel now reaps the nop's completion and no completion of the poll.
        co_await coring::io::nop();
        CHECK(loop.stats().completions == after.completions + 1);
    }());
}

TEST_CASE("inbox - call_soon_threadsafe on a closed loop throws std::logic_error, from any thread", "[detail][inbox][threads]") {
    coring::event_loop loop;
    loop.run_until_complete([]() -> coring::task<> { co_await coring::sleep(0s); }());
    loop.close();
    int ran = 0;
    std::string error_here;
    std::string error_there;
    try {
        loop.call_soon_threadsafe([&ran] { ++ran; });
    } catch (const std::logic_error& e) {
        error_here = e.what();
    }
    std::thread other([&loop, &ran, &error_there] {
        try {
            loop.call_soon_threadsafe([&ran] { ++ran; });
        } catch (const std::logic_error& e) {
            error_there = e.what();
        }
    });
    other.join();
    CHECK(error_here == "coring: call_soon_threadsafe on a closed event loop");
    CHECK(error_there == "coring: call_soon_threadsafe on a closed event loop");
    CHECK(ran == 0);
}

TEST_CASE("inbox - callbacks pushed and not yet run when the loop closes are destroyed without running", "[detail][inbox][threads]") {
    coring::event_loop loop;
    loop.run_until_complete([]() -> coring::task<> { co_await coring::sleep(0s); }());
    auto token = std::make_shared<int>(0);
    int ran = 0;
    std::thread other([&loop, token, &ran] { loop.call_soon_threadsafe([token, &ran] { ++ran; }); });
    other.join();
    CHECK(token.use_count() == 2);  // ours, and the queued callback's
    loop.close();
    CHECK(ran == 0);
    CHECK(token.use_count() == 1);  // the callback was freed with the loop's leftovers
}

namespace {

// Ends the wake-up poll as a full completion queue does (a CQE without IORING_CQE_F_MORE), by
// cancelling it, and waits up to 100 ms for the loop to arm it again; true if it did.
coring::task<bool> end_the_poll_and_await_rearm(coring::event_loop& loop) {
    const unsigned armed = test_access::wakeup_arm_count(loop);
    test_access::interrupt_wakeup(loop);
    co_await coring::io::nop();  // an iteration that enters the kernel
    for (int i = 0; i < 100 && test_access::wakeup_arm_count(loop) != armed + 1; ++i) co_await coring::sleep(1ms);
    co_return test_access::wakeup_arm_count(loop) == armed + 1;
}

}  // namespace

TEST_CASE("inbox - the poll is armed again each time the kernel ends it", "[detail][inbox][ring]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        for (int ended = 1; ended <= 3; ++ended) {
            const bool rearmed = co_await end_the_poll_and_await_rearm(loop);
            CHECK(rearmed);
        }
    }());
}

TEST_CASE("inbox - a poll armed again still wakes a loop blocked in the kernel", "[detail][inbox][ring]") {
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        const bool rearmed = co_await end_the_poll_and_await_rearm(loop);
        REQUIRE(rearmed);
        auto sleeper = coring::create_task(distant_timer());
        co_await coring::sleep(0s);
        const double latency = co_await wake_from_another_thread(50ms);
        CHECK(latency < 1000.0);
        sleeper.cancel();
        co_await coring::sleep(0s);
        CHECK(sleeper.cancelled());
    }());
}

TEST_CASE("inbox - wake-ups through a multishot poll do not re-arm it", "[detail][inbox][ring]") {
    if (!kernel_has_multishot_poll()) {
        WARN("this kernel has no multishot poll: the inbox arms single shots, one per wake-up");
        return;
    }
    coring::run([]() -> coring::task<> {
        auto& loop = coring::get_running_loop();
        const unsigned armed = test_access::wakeup_arm_count(loop);
        CHECK(armed == 1);  // armed once, when the loop was made
        for (int round = 0; round < 5; ++round) {
            const double latency = co_await wake_from_another_thread(20ms);
            CHECK(latency < 1000.0);
        }
        CHECK(test_access::wakeup_arm_count(loop) == armed);
    }());
}
