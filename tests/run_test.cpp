// Tests of coring/run.hpp: asyncio.run's contract.
#include <coring/run.hpp>

#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;

TEST_CASE("run - returns main's value and rethrows its exception", "[run]") {
    CHECK(coring::run([]() -> coring::task<std::string> { co_return "done"; }()) == "done");
    CHECK_THROWS_WITH(coring::run([]() -> coring::task<> {
                          co_await coring::sleep(1ms);
                          throw std::runtime_error("main failed");
                      }()),
                      "main failed");
}

TEST_CASE("run - cannot be nested inside a running loop", "[run]") {
    coring::run([]() -> coring::task<> {
        CHECK_THROWS_AS(coring::run([]() -> coring::task<> { co_return; }()), std::logic_error);
        co_return;
    }());
}

TEST_CASE("run - cancels what is left, lets it clean up, and frees every frame", "[run][shutdown]") {
    const auto before = live_frames();
    std::vector<std::string> log;
    coring::run([](std::vector<std::string>& l) -> coring::task<> {
        auto worker = [](std::vector<std::string>& lg, int id) -> coring::task<> {
            std::exception_ptr cancelled;
            try {
                co_await coring::sleep(1h);
            } catch (const coring::cancelled_error&) {
                cancelled = std::current_exception();
            }
            co_await coring::sleep(1ms);  // cleanup that awaits
            lg.push_back("cleaned " + std::to_string(id));
            std::rethrow_exception(cancelled);
        };
        for (int i = 0; i < 3; ++i) (void)coring::create_task(worker(l, i));
        (void)coring::get_running_loop().call_later(1h, [] {});
        co_await coring::sleep(1ms);
    }(log));
    CHECK(log == std::vector<std::string>{"cleaned 0", "cleaned 1", "cleaned 2"});
    CHECK(live_frames() == before);
}

TEST_CASE("run - shutdown after main throws still cleans up", "[run][shutdown]") {
    const auto before = live_frames();
    int cleaned = 0;
    CHECK_THROWS_AS(coring::run([](int& c) -> coring::task<> {
                        auto worker = [](int& count) -> coring::task<> {
                            try {
                                co_await coring::sleep(1h);
                            } catch (const coring::cancelled_error&) {
                                ++count;
                                throw;
                            }
                        };
                        (void)coring::create_task(worker(c));
                        co_await coring::sleep(1ms);
                        throw std::domain_error("boom");
                    }(cleaned)),
                    std::domain_error);
    CHECK(cleaned == 1);
    CHECK(live_frames() == before);
}

TEST_CASE("run - loop_options reach the loop; CORING_DEBUG turns debug mode on", "[run]") {
    coring::run(
        []() -> coring::task<> {
            CHECK(coring::get_running_loop().options().queue_depth == 64);
            CHECK(coring::get_running_loop().get_debug());
            co_return;
        }(),
        coring::loop_options{.queue_depth = 64, .debug = true});
    ::setenv("CORING_DEBUG", "1", 1);
    const bool debug = coring::run([]() -> coring::task<bool> { co_return coring::get_running_loop().get_debug(); }());
    ::unsetenv("CORING_DEBUG");
    CHECK(debug);
    CHECK_FALSE(coring::run([]() -> coring::task<bool> { co_return coring::get_running_loop().get_debug(); }()));
}
