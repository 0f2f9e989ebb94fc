// Tests of coring/run.hpp: asyncio.run's contract.
#include <coring/run.hpp>

#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;

namespace {

// Sets (or, given nullopt, unsets) an environment variable for a scope, then restores it.
class scoped_env {
public:
    scoped_env(const char* name, std::optional<std::string> value) : m_name(name) {
        if (const char* old = std::getenv(name)) m_old = old;
        if (value)
            ::setenv(name, value->c_str(), 1);
        else
            ::unsetenv(name);
    }
    ~scoped_env() {
        if (m_old)
            ::setenv(m_name, m_old->c_str(), 1);
        else
            ::unsetenv(m_name);
    }
    scoped_env(const scoped_env&) = delete;
    scoped_env& operator=(const scoped_env&) = delete;

private:
    const char* m_name;
    std::optional<std::string> m_old;
};

bool debug_of_a_default_run() {
    return coring::run([]() -> coring::task<bool> { co_return coring::get_running_loop().get_debug(); }());
}

}  // namespace

TEST_CASE("run - returns main's value", "[run]") {
    CHECK(coring::run([]() -> coring::task<std::string> { co_return "done"; }()) == "done");
}

TEST_CASE("run - rethrows main's exception", "[run]") {
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

namespace {

// Runs a main that leaves three workers asleep for an hour and a timer an hour away; each
// worker, once cancelled, awaits a cleanup step and logs "cleaned <id>". Returns the log.
std::vector<std::string> run_leaving_three_workers() {
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
    return log;
}

}  // namespace

TEST_CASE("run - cancels the tasks left and lets each finish its cleanup", "[run][shutdown]") {
    const std::vector<std::string> log = run_leaving_three_workers();
    CHECK(log == std::vector<std::string>{"cleaned 0", "cleaned 1", "cleaned 2"});
}

TEST_CASE("run - frees every frame of the work it cancelled", "[run][shutdown]") {
    const auto before = live_frames();
    (void)run_leaving_three_workers();
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

TEST_CASE("run - the loop_options given reach the loop", "[run]") {
    coring::run(
        []() -> coring::task<> {
            CHECK(coring::get_running_loop().options().queue_depth == 64);
            CHECK(coring::get_running_loop().get_debug());
            co_return;
        }(),
        coring::loop_options{.queue_depth = 64, .debug = true});
}

TEST_CASE("run - CORING_DEBUG=1 turns debug mode on", "[run]") {
    const scoped_env env("CORING_DEBUG", "1");
    CHECK(debug_of_a_default_run());
}

TEST_CASE("run - without CORING_DEBUG debug mode is off by default", "[run]") {
    const scoped_env env("CORING_DEBUG", std::nullopt);
    CHECK_FALSE(debug_of_a_default_run());
}

// ------------------------------------------------------------------------- runner

TEST_CASE("runner - several runs on one loop; tasks left running go on into the next run", "[runner]") {
    std::vector<std::string> log;
    {
        coring::runner r;
        coring::event_loop* first_loop = nullptr;
        const int a = r.run([](std::vector<std::string>& l, coring::event_loop*& loop) -> coring::task<int> {
            loop = &coring::get_running_loop();
            coring::create_task([](std::vector<std::string>& lg) -> coring::task<> {
                co_await coring::sleep(20ms);
                lg.push_back("background finished");
            }(l));
            co_return 1;
        }(log, first_loop));
        CHECK(a == 1);
        CHECK(log.empty());  // the background task has not finished yet
        CHECK(first_loop == &r.get_loop());
        const int b = r.run([](coring::event_loop* loop) -> coring::task<int> {
            CHECK(&coring::get_running_loop() == loop);
            co_await coring::sleep(50ms);  // meanwhile the background task finishes
            co_return 2;
        }(first_loop));
        CHECK(b == 2);
        CHECK(log == std::vector<std::string>{"background finished"});
    }
}

TEST_CASE("runner - the end of its scope cancels what is left, which cleans up", "[runner][shutdown]") {
    bool cleaned_up = false;
    const std::size_t frames_before = live_frames();
    {
        coring::runner r;
        r.run([](bool& cleaned) -> coring::task<> {
            coring::create_task([](bool& c) -> coring::task<> {
                std::exception_ptr stop;
                try {
                    co_await coring::sleep(1h);
                } catch (const coring::cancelled_error&) {
                    stop = std::current_exception();
                }
                co_await coring::sleep(1ms);  // cleanup may await
                c = true;
                std::rethrow_exception(stop);
            }(cleaned));
            co_await coring::sleep(1ms);  // the background task starts (one cancelled unstarted never runs)
        }(cleaned_up));
        CHECK_FALSE(cleaned_up);
    }
    CHECK(cleaned_up);
    CHECK(live_frames() == frames_before);
}

TEST_CASE("runner - run rethrows main's exception and the runner stays usable; run after close throws", "[runner]") {
    coring::runner r;
    bool threw = false;
    try {
        r.run([]() -> coring::task<> {
            co_await coring::sleep(1ms);
            throw std::runtime_error("main failed");
        }());
    } catch (const std::runtime_error&) {
        threw = true;
    }
    CHECK(threw);
    CHECK(r.run([]() -> coring::task<int> { co_return 5; }()) == 5);
    r.close();
    r.close();  // idempotent
    bool refused = false;
    try {
        (void)r.run([]() -> coring::task<int> { co_return 6; }());
    } catch (const coring::invalid_state_error&) {
        refused = true;
    }
    CHECK(refused);
}

TEST_CASE("runner - run inside a running loop: std::logic_error", "[runner]") {
    coring::runner outer;
    coring::runner inner;
    const bool refused = outer.run([](coring::runner& in) -> coring::task<bool> {
        try {
            in.run([]() -> coring::task<> { co_return; }());
        } catch (const std::logic_error&) {
            co_return true;
        }
        co_return false;
    }(inner));
    CHECK(refused);
}
