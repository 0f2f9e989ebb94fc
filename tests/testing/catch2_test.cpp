// Tests of coring/testing/catch2.hpp: CORING_TEST_CASE, virtual time, and a hung body.
#include <coring/testing/catch2.hpp>

#include <coring/time.hpp>

#include "support/helpers.hpp"

#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <string>

using namespace std::chrono_literals;

CORING_TEST_CASE("testing - a coroutine body runs as the main task of a fresh loop", "[testing]") {
    auto& loop = coring::get_running_loop();
    CHECK(coring::current_task().name() == "Task-1");
    CHECK_FALSE(loop.options().virtual_time);
    co_await coring::sleep(1ms);
}

CORING_TEST_CASE_ON_VIRTUAL_TIME("testing - on virtual time an hour of sleeping takes no time", "[testing]") {
    const auto real_start = std::chrono::steady_clock::now();
    auto& loop = coring::get_running_loop();
    const auto t0 = loop.time();
    co_await coring::sleep(1h);
    CHECK(loop.time() - t0 == 1h);
    CHECK(coring_test::ms_since(real_start) < 500.0);
}

TEST_CASE("testing - run_test's loop options reach the loop", "[testing]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            CHECK(coring::get_running_loop().get_debug());
            co_return;
        }(),
        {.deadline = 2s, .loop = {.debug = true}});
}

TEST_CASE("testing - an exception from a run_test body reaches Catch2", "[testing]") {
    CHECK_THROWS_AS(coring::testing::run_test([]() -> coring::task<> {
                        co_await coring::sleep(1ms);
                        throw std::range_error("from the body");
                    }()),
                    std::range_error);
}

TEST_CASE("testing - a hung body fails within its deadline, with the task dump", "[testing]") {
    // The fixture is a Catch2 program whose one test hangs with a 300 ms deadline.
    const auto start = std::chrono::steady_clock::now();
    FILE* child = ::popen(CORING_HUNG_FIXTURE " 2>&1", "r");
    REQUIRE(child != nullptr);
    std::string out;
    char buf[4096];
    std::size_t n;
    while ((n = std::fread(buf, 1, sizeof buf, child)) > 0) out.append(buf, n);
    const int status = ::pclose(child);
    const double elapsed = coring_test::ms_since(start);
    CAPTURE(out);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) != 0);  // the test failed
    CHECK(out.find("did not finish within 300 ms of real time") != std::string::npos);
    // (Catch2 wraps long lines, so only line beginnings are checked.)
    CHECK(out.find("Task-1 (awaiting task stuck) created at hung_body_fixture.cpp:") != std::string::npos);
    CHECK(out.find("Task-2 \"stuck\" (awaiting sleep until +3599.") != std::string::npos);
    CHECK(elapsed < 3000.0);
}
