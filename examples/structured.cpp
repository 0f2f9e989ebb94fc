// structured: asyncio's `async with TaskGroup()` and `async with timeout()` blocks, written as
// the asyncio documentation writes them (coroutines-and-tasks: "Task Groups", "Timeouts").
//
//   1. A task group: the block ends once every task it started has finished.
//   2. A failing task cancels its siblings and the block's own body; the block rethrows it.
//   3. A timeout around a long operation, handled; then one whose body moves its deadline.
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

coring::task<std::string> say_after(std::chrono::milliseconds delay, std::string what) {
    co_await coring::sleep(delay);
    std::printf("  %s\n", what.c_str());
    co_return what;
}

coring::task<int> fetch_or_fail(std::chrono::milliseconds delay, bool fail) {
    co_await coring::sleep(delay);
    if (fail) throw std::runtime_error("the server went away");
    co_return 200;
}

coring::task<> long_running_task() {
    try {
        co_await coring::sleep(1h);
    } catch (const coring::cancelled_error&) {
        std::printf("  long_running_task: cancelled by the deadline\n");
        throw;
    }
}

coring::task<> main_task() {
    const auto start = std::chrono::steady_clock::now();
    auto elapsed_ms = [start] { return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count(); };

    // 1. async with asyncio.TaskGroup() as tg: task1 = tg.create_task(...); task2 = ...
    std::printf("1. task group\n");
    coring::task_handle<std::string> task1;
    coring::task_handle<std::string> task2;
    co_await coring::with_task_group([&](coring::task_group& tg) -> coring::task<> {
        task1 = tg.create_task(say_after(100ms, "hello"));
        task2 = tg.create_task(say_after(200ms, "world"));
        std::printf("  started at %lld ms\n", static_cast<long long>(elapsed_ms()));
        co_return;
    });
    std::printf("  both tasks have completed now: %s, %s (at %lld ms)\n", task1.result().c_str(), task2.result().c_str(),
                static_cast<long long>(elapsed_ms()));

    // 2. One task fails: the other, and the block's body, are cancelled; the block rethrows.
    std::printf("2. a failing task\n");
    const auto failing_start = elapsed_ms();
    try {
        co_await coring::with_task_group([&](coring::task_group& tg) -> coring::task<> {
            tg.create_task(fetch_or_fail(50ms, true));
            auto healthy = tg.create_task(fetch_or_fail(1s, false));
            try {
                co_await coring::sleep(2s);  // the body's own work
            } catch (const coring::cancelled_error&) {
                std::printf("  the body was cancelled too\n");
                throw;
            }
            (void)co_await healthy;
        });
    } catch (const std::runtime_error& e) {
        std::printf("  the block failed after %lld ms: %s\n", static_cast<long long>(elapsed_ms() - failing_start), e.what());
    }

    // 3. async with asyncio.timeout(0.1): await long_running_task()  /  except TimeoutError
    std::printf("3. timeouts\n");
    try {
        co_await coring::with_timeout(100ms, [&](coring::timeout_scope&) -> coring::task<> { co_await long_running_task(); });
    } catch (const coring::timeout_error&) {
        std::printf("  the long operation timed out, but we've handled it\n");
    }
    // The body may move its deadline: cm.reschedule(...), as asyncio's Timeout.reschedule.
    const std::string answer = co_await coring::with_timeout(50ms, [&](coring::timeout_scope& cm) -> coring::task<std::string> {
        cm.reschedule(coring::get_running_loop().time() + 300ms);  // this one needs longer
        co_return co_await say_after(150ms, "made it with the new deadline");
    });
    std::printf("  answer: %s\n", answer.c_str());
}

int main() {
    // Where io_uring is unavailable (switched off, a seccomp profile) the loop cannot start:
    // one line that says why, and status 1.
    try {
        coring::run(main_task());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "structured: %s\n", e.what());
        return 1;
    }
    return 0;
}
