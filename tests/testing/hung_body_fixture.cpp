// A Catch2 program with one hanging coroutine test, run by testing/catch2_test.cpp to show
// that the helper fails it within its deadline and prints the task tree. Not a test by itself.
#include <coring/testing/catch2.hpp>

#include <coring/task_handle.hpp>
#include <coring/time.hpp>

using namespace std::chrono_literals;

TEST_CASE("a body that hangs") {
    coring::testing::run_test(
        []() -> coring::task<> {
            auto stuck = coring::create_task([]() -> coring::task<> { co_await coring::sleep(1h); }(), "stuck");
            co_await stuck;  // an hour, far past the deadline
        }(),
        {.deadline = 300ms});
}
