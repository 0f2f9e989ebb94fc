#pragma once
// Catch2 helpers for tests of coroutine code: the pytest-asyncio of coring.
//
//   #include <coring/testing/catch2.hpp>
//
//   CORING_TEST_CASE("fetch gives up after three tries", "[client]") {
//       auto reply = co_await fetch_with_retries(url);
//       CHECK(reply.status == 200);
//   }
//
//   CORING_TEST_CASE_ON_VIRTUAL_TIME("an hour of timeouts in milliseconds", "[time]") {
//       co_await coring::sleep(1h);  // returns at once in real time
//   }
//
// Each body runs as the main task of a fresh event loop and must finish within a real-time
// deadline (10 s unless test_options::deadline says otherwise; a watchdog thread keeps it,
// so it holds on virtual time too). A body that hangs fails the test with the live task tree
// (what every task awaits, where it was created), and is cancelled. run_test() takes the same
// options for bodies written as ordinary functions. Catch2 v2 and v3 both work.

#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_test_macros.hpp>
#else
#include <catch2/catch.hpp>
#endif

#include <coring/debug.hpp>
#include <coring/event_loop.hpp>
#include <coring/task.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <utility>

namespace coring::testing {

struct test_options {
    /// Real time the body may take before it fails as hung.
    std::chrono::milliseconds deadline = std::chrono::seconds(10);
    /// The loop's settings (.loop.virtual_time, .loop.debug, ...).
    loop_options loop{};
};

/// Runs `body` as the main task of a fresh loop; fails the current test with the task tree if
/// it has not finished within options.deadline. Exceptions from the body propagate to Catch2.
inline void run_test(task<> body, test_options options = {}, source_location site = source_location::current()) {
    event_loop loop(options.loop);

    // The watchdog keeps real time, whatever the loop's clock does.
    std::mutex mutex;
    std::condition_variable finished_changed;
    bool finished = false;
    bool hung = false;
    std::string tree;
    std::thread watchdog([&] {
        std::unique_lock lock(mutex);
        if (finished_changed.wait_for(lock, options.deadline, [&] { return finished; })) return;
        lock.unlock();
        loop.call_soon_threadsafe([&] {
            hung = true;
            tree = format_tasks(loop);
            loop.stop();
        });
    });
    auto stop_watchdog = [&] {
        {
            std::lock_guard lock(mutex);
            finished = true;
        }
        finished_changed.notify_all();
        if (watchdog.joinable()) watchdog.join();
    };

    std::exception_ptr error;
    try {
        loop.run_until_complete(std::move(body), site);
    } catch (...) {
        error = std::current_exception();
    }
    stop_watchdog();
    if (hung) {
        loop.close();  // cancels the hung tasks
        FAIL("coring::testing: the test body did not finish within " << options.deadline.count()
                                                                    << " ms of real time; the live tasks were:\n"
                                                                    << tree);
    }
    loop.close();
    if (error) std::rethrow_exception(error);
}

}  // namespace coring::testing

#define CORING_DETAIL_CAT2(a, b) a##b
#define CORING_DETAIL_CAT(a, b) CORING_DETAIL_CAT2(a, b)

#define CORING_DETAIL_TEST_CASE(body, options, ...)                              \
    static ::coring::task<> body();                                               \
    TEST_CASE(__VA_ARGS__) { ::coring::testing::run_test(body(), options); }      \
    static ::coring::task<> body()

/// A Catch2 TEST_CASE whose body is a coroutine run on a fresh loop (see the header comment).
#define CORING_TEST_CASE(...) \
    CORING_DETAIL_TEST_CASE(CORING_DETAIL_CAT(coring_test_body_, __LINE__), ::coring::testing::test_options{}, __VA_ARGS__)

/// The same, on virtual time: sleeps and timeouts take no real time.
#define CORING_TEST_CASE_ON_VIRTUAL_TIME(...)                                                         \
    CORING_DETAIL_TEST_CASE(CORING_DETAIL_CAT(coring_test_body_, __LINE__),                         \
                            ::coring::testing::test_options{.loop = {.virtual_time = true}}, __VA_ARGS__)
