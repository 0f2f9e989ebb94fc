// Tests of coring/timeout_scope.hpp: with_timeout / with_timeout_at as asyncio.timeout, with its
// corner cases: a body that swallows the cancellation, outside and outer cancellations that must
// not become this scope's timeout, nested scopes, reschedule.
#include <coring/timeout_scope.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <chrono>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;
using coring_test::ms_since;

namespace {

/// What awaiting `t` ended with: "value N", "timeout", "cancelled", or the what() of another error.
coring::task<std::string> outcome_of(coring::task<int> t) {
    try {
        const int v = co_await std::move(t);
        co_return "value " + std::to_string(v);
    } catch (const coring::timeout_error&) {
        co_return "timeout";
    } catch (const coring::cancelled_error&) {
        co_return "cancelled";
    } catch (const std::exception& e) {
        co_return e.what();
    }
}

coring::task<int> sleep_then(std::chrono::milliseconds d, int v) {
    co_await coring::sleep(d);
    co_return v;
}

}  // namespace

TEST_CASE("with_timeout - a body that finishes in time returns its value", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        bool expired = true;
        const int v = co_await coring::with_timeout(1s, [&](coring::timeout_scope& cm) -> coring::task<int> {
            co_await coring::sleep(10ms);
            expired = cm.expired();
            co_return 42;
        });
        CHECK(v == 42);
        CHECK_FALSE(expired);
    }());
}

TEST_CASE("with_timeout - past the deadline: timeout_error, promptly", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        const std::string how = co_await outcome_of(coring::with_timeout(50ms, [](coring::timeout_scope&) { return sleep_then(5s, 1); }));
        CHECK(how == "timeout");
        CHECK(ms_since(start) >= 45);
        CHECK(ms_since(start) < 1000);
        CHECK(coring::current_task().cancelling() == 0);  // the scope withdrew its request
    }());
}

TEST_CASE("with_timeout - the body runs in the awaiting task", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        const std::uint64_t outer = coring::current_task().native_state()->id();
        std::uint64_t inner = 0;
        co_await coring::with_timeout(1s, [&](coring::timeout_scope&) -> coring::task<> {
            inner = coring::current_task().native_state()->id();
            co_return;
        });
        CHECK(inner == outer);
    }());
}

TEST_CASE("with_timeout - a body that catches the cancellation returns normally; expired() says why", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        bool caught = false;
        bool expired = false;
        const int v = co_await coring::with_timeout(20ms, [&](coring::timeout_scope& cm) -> coring::task<int> {
            try {
                co_await coring::sleep(5s);
            } catch (const coring::cancelled_error&) {
                caught = true;
            }
            co_await coring::sleep(1ms);  // the request is spent: cleanup may await
            expired = cm.expired();
            co_return 7;
        });
        CHECK(v == 7);
        CHECK(caught);
        CHECK(expired);
        CHECK(coring::current_task().cancelling() == 0);
    }());
}

TEST_CASE("with_timeout - another error of the body passes through unchanged", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        const std::string how = co_await outcome_of(coring::with_timeout(1s, [](coring::timeout_scope&) -> coring::task<int> {
            co_await coring::sleep(1ms);
            throw std::runtime_error("body failed");
        }));
        CHECK(how == "body failed");
    }());
}

TEST_CASE("with_timeout - a cancel from outside stays a cancellation", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(outcome_of(coring::with_timeout(5s, [](coring::timeout_scope&) { return sleep_then(5s, 1); })));
        co_await coring::sleep(20ms);
        h.cancel();
        const std::string how = co_await h;
        CHECK(how == "cancelled");
    }());
}

TEST_CASE("with_timeout - nested: the outer deadline is the outer scope's timeout, not the inner's", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        std::string inner_how;
        const std::string how = co_await outcome_of(coring::with_timeout(30ms, [&](coring::timeout_scope&) -> coring::task<int> {
            inner_how = co_await outcome_of(coring::with_timeout(5s, [](coring::timeout_scope&) { return sleep_then(5s, 1); }));
            co_return 0;  // the inner body saw a cancellation, not a timeout: this returns...
        }));
        CHECK(inner_how == "cancelled");
        // ...and the outer body swallowed the cancellation (outcome_of caught it): it returns its value.
        CHECK(how == "value 0");
    }());
}

TEST_CASE("with_timeout - nested: an inner deadline is the inner scope's timeout; the outer goes on", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        std::string inner_how;
        const std::string how = co_await outcome_of(coring::with_timeout(5s, [&](coring::timeout_scope&) -> coring::task<int> {
            inner_how = co_await outcome_of(coring::with_timeout(20ms, [](coring::timeout_scope&) { return sleep_then(5s, 1); }));
            co_return co_await sleep_then(1ms, 9);
        }));
        CHECK(inner_how == "timeout");
        CHECK(how == "value 9");
    }());
}

TEST_CASE("with_timeout - both deadlines passed at once: only the outer one is a timeout", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        const coring::clock::time_point deadline = coring::get_running_loop().time() + 20ms;
        std::string inner_how;
        const std::string how = co_await outcome_of(coring::with_timeout_at(deadline, [&](coring::timeout_scope&) -> coring::task<int> {
            try {
                co_return co_await coring::with_timeout_at(deadline, [](coring::timeout_scope&) { return sleep_then(5s, 1); });
            } catch (const coring::timeout_error&) {
                inner_how = "timeout";
                throw;
            } catch (const coring::cancelled_error&) {
                inner_how = "cancelled";  // two requests were made: the inner scope withdrew one
                throw;
            }
        }));
        CHECK(inner_how == "cancelled");
        CHECK(how == "timeout");
        CHECK(coring::current_task().cancelling() == 0);
    }());
}

TEST_CASE("with_timeout - an outside cancel pending when the scope ends survives it (asyncio 3.11's counting)", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task([]() -> coring::task<std::string> {
            const int v = co_await coring::with_timeout(20ms, [](coring::timeout_scope&) -> coring::task<int> {
                try {
                    co_await coring::sleep(5s);  // cancelled by the deadline
                } catch (const coring::cancelled_error&) {
                }
                coring::current_task().cancel();  // an outside cancel arrives meanwhile: pending
                co_return 3;
            });
            // The scope withdrew its own request only: one is left, and is delivered here.
            const std::size_t left = coring::current_task().cancelling();
            try {
                co_await coring::sleep(0s);
            } catch (const coring::cancelled_error&) {
                co_return "cancelled after " + std::to_string(v) + " with " + std::to_string(left) + " left";
            }
            co_return "not cancelled";
        }());
        const std::string result = co_await h;
        CHECK(result == "cancelled after 3 with 1 left");
    }());
}

TEST_CASE("with_timeout - reschedule moves the deadline; max() removes it; after expiry it throws", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        coring::event_loop& loop = coring::get_running_loop();
        const auto start = std::chrono::steady_clock::now();
        const int v = co_await coring::with_timeout(20ms, [&](coring::timeout_scope& cm) -> coring::task<int> {
            CHECK(cm.when() > loop.time());
            cm.reschedule(coring::clock::time_point::max());
            CHECK(cm.when() == coring::clock::time_point::max());
            co_await coring::sleep(60ms);  // past the first deadline: nothing happens
            cm.reschedule(loop.time() + 20ms);
            co_return co_await sleep_then(5ms, 5);
        });
        CHECK(v == 5);
        CHECK(ms_since(start) >= 60);
        bool refused = false;
        const std::string how = co_await outcome_of(coring::with_timeout(10ms, [&](coring::timeout_scope& cm) -> coring::task<int> {
            try {
                co_await coring::sleep(5s);
            } catch (const coring::cancelled_error&) {
            }
            try {
                cm.reschedule(loop.time() + 1s);
            } catch (const coring::invalid_state_error&) {
                refused = true;
            }
            co_return 1;
        }));
        CHECK(refused);
        CHECK(how == "value 1");
    }());
}

TEST_CASE("with_timeout - a zero or negative delay expires on the next iteration; nanoseconds::max() never", "[timeout_scope]") {
    coring::run([]() -> coring::task<> {
        const std::string zero = co_await outcome_of(coring::with_timeout(0s, [](coring::timeout_scope&) { return sleep_then(1s, 1); }));
        CHECK(zero == "timeout");
        const std::string negative = co_await outcome_of(coring::with_timeout(-5s, [](coring::timeout_scope&) { return sleep_then(1s, 1); }));
        CHECK(negative == "timeout");
        bool no_deadline = false;
        const int v = co_await coring::with_timeout(std::chrono::nanoseconds::max(), [&](coring::timeout_scope& cm) -> coring::task<int> {
            no_deadline = cm.when() == coring::clock::time_point::max();
            co_return co_await sleep_then(1ms, 2);
        });
        CHECK(v == 2);
        CHECK(no_deadline);
        const int hours = co_await coring::with_timeout(std::chrono::hours::max(), [](coring::timeout_scope&) { return sleep_then(1ms, 3); });
        CHECK(hours == 3);
    }());
}
