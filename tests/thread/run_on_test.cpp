// Tests of coring/thread/run_on.hpp: a task on another loop, its outcome back on the caller's.
//
// The callers run on this thread's loop (coring::run); the targets are the loops of a group or a
// loop on a std::thread. Catch2 is not thread-safe: every CHECK is made on this thread.
#include <coring/thread/run_on.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/thread/loop_group.hpp>
#include <coring/time.hpp>
#include <coring/wait_for.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <atomic>
#include <chrono>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct remote_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

coring::task<int> add_later(int a, int b) {
    co_await coring::sleep(1ms);
    co_return a + b;
}

coring::task<std::thread::id> thread_of_task() {
    co_await coring::sleep(0s);
    co_return std::this_thread::get_id();
}

coring::task<std::unique_ptr<std::string>> make_owned(std::string text) {
    co_await coring::sleep(0s);
    co_return std::make_unique<std::string>(std::move(text));
}

coring::task<int> throw_remote() {
    co_await coring::sleep(0s);
    throw remote_error("failed over there");
}

// Sleeps until cancelled; records how the cancellation arrived.
struct sleeper_report {
    std::atomic<bool> started{false};
    std::atomic<bool> cancelled{false};
    std::string message;  // written before `cancelled`
};

coring::task<int> sleep_until_cancelled(sleeper_report& report) {
    report.started = true;
    try {
        co_await coring::sleep(30s);
    } catch (const coring::cancelled_error& e) {
        report.message = e.message();
        report.cancelled = true;
        throw;
    }
    co_return 0;
}

coring::task<int> refuse_cancel(sleeper_report& report) {
    report.started = true;
    try {
        co_await coring::sleep(30s);
    } catch (const coring::cancelled_error&) {
        report.cancelled = true;
    }
    co_return 7;  // asyncio: the caller gets what the awaited task returns
}

coring::task<int> call_remote_sleeper(coring::event_loop& target, sleeper_report& report) {
    co_return co_await coring::run_on(target, [&report] { return sleep_until_cancelled(report); });
}

coring::task<int> call_remote_refuser(coring::event_loop& target, sleeper_report& report) {
    co_return co_await coring::run_on(target, [&report] { return refuse_cancel(report); });
}

// Cancels `caller` once the remote task has started; how the caller ended.
struct caller_outcome {
    std::optional<int> value;
    bool cancelled = false;
    std::string message;
    double ms = 0;
};

coring::task<caller_outcome> cancel_once_started(coring::task_handle<int> caller, const sleeper_report& report, std::string message) {
    while (!report.started) co_await coring::sleep(1ms);
    co_await coring::sleep(5ms);  // the remote task is asleep by now
    const auto start = std::chrono::steady_clock::now();
    caller.cancel(message);
    caller_outcome out;
    try {
        out.value = co_await caller;
    } catch (const coring::cancelled_error& e) {
        out.cancelled = true;
        out.message = e.message();
    }
    out.ms = coring_test::ms_since(start);
    co_return out;
}

}  // namespace

TEST_CASE("run_on - values, void, move-only results and references come back", "[run_on]") {
    coring::loop_group group({.threads = 2});
    int shared_value = 5;
    struct seen_t {
        int sum = 0;
        std::thread::id remote_thread;
        std::unique_ptr<std::string> owned;
        int* reference = nullptr;
        bool void_ran = false;
    } seen;
    coring::run([](coring::loop_group& g, int& value, seen_t& out) -> coring::task<> {
        out.sum = co_await coring::run_on(g.loop(1), [] { return add_later(40, 2); });
        out.remote_thread = co_await coring::run_on(g.loop(0), [] { return thread_of_task(); });
        out.owned = co_await coring::run_on(g.loop(1), [] { return make_owned("moved across"); });
        int& ref = co_await coring::run_on(g.loop(0), [&value]() -> coring::task<int&> { co_return value; });
        out.reference = &ref;
        bool ran = false;
        co_await coring::run_on(g.loop(1), [&ran]() -> coring::task<void> {
            ran = true;
            co_return;
        });
        out.void_ran = ran;
    }(group, shared_value, seen));
    CHECK(seen.sum == 42);
    CHECK(seen.remote_thread != std::this_thread::get_id());
    REQUIRE(seen.owned != nullptr);
    CHECK(*seen.owned == "moved across");
    CHECK(seen.reference == &shared_value);
    CHECK(seen.void_ran);
}

TEST_CASE("run_on - the task runs on the target loop's thread, and make_task is called there", "[run_on]") {
    coring::loop_group group({.threads = 2});
    std::thread::id made_on;
    std::thread::id ran_on;
    std::thread::id resumed_on;
    std::thread::id target_thread;
    group.loop(1).call_soon_threadsafe([&] { target_thread = std::this_thread::get_id(); });
    coring::run([](coring::loop_group& g, std::thread::id& made, std::thread::id& ran, std::thread::id& resumed) -> coring::task<> {
        ran = co_await coring::run_on(g.loop(1), [&made] {
            made = std::this_thread::get_id();
            return thread_of_task();
        });
        resumed = std::this_thread::get_id();
    }(group, made_on, ran_on, resumed_on));
    CHECK(made_on == target_thread);
    CHECK(ran_on == target_thread);
    CHECK(resumed_on == std::this_thread::get_id());
}

TEST_CASE("run_on - the remote exception is rethrown with its type and message", "[run_on]") {
    coring::loop_group group({.threads = 1});
    std::string what;
    bool by_type = false;
    coring::run([](coring::loop_group& g, std::string& message, bool& typed) -> coring::task<> {
        try {
            (void)co_await coring::run_on(g.loop(0), [] { return throw_remote(); });
        } catch (const remote_error& e) {
            typed = true;
            message = e.what();
        }
    }(group, what, by_type));
    CHECK(by_type);
    CHECK(what == "failed over there");
}

TEST_CASE("run_on - make_task throwing on the target is the caller's exception", "[run_on]") {
    coring::loop_group group({.threads = 1});
    bool caught = false;
    coring::run([](coring::loop_group& g, bool& out) -> coring::task<> {
        try {
            (void)co_await coring::run_on(g.loop(0), []() -> coring::task<int> { throw remote_error("no task"); });
        } catch (const remote_error&) {
            out = true;
        }
    }(group, caught));
    CHECK(caught);
}

TEST_CASE("run_on - the caller's own loop as target", "[run_on]") {
    const int sum = coring::run([]() -> coring::task<int> { co_return co_await coring::run_on(coring::get_running_loop(), [] { return add_later(1, 2); }); }());
    CHECK(sum == 3);
}

TEST_CASE("run_on - cancelling the caller cancels the remote task, with the message, and waits for it", "[run_on]") {
    coring::loop_group group({.threads = 1});
    sleeper_report report;
    const caller_outcome out = coring::run([](coring::loop_group& g, sleeper_report& r) -> coring::task<caller_outcome> {
        auto caller = coring::get_running_loop().create_task(call_remote_sleeper(g.loop(0), r));
        co_return co_await cancel_once_started(caller, r, "stop now");
    }(group, report));
    CHECK(out.cancelled);
    CHECK(out.message == "stop now");
    CHECK(out.ms < 2000);
    CHECK(report.cancelled);  // written on the target before the outcome was sent home
    CHECK(report.message == "stop now");
}

TEST_CASE("run_on - a remote task that swallows the cancel returns its value to the caller", "[run_on]") {
    coring::loop_group group({.threads = 1});
    sleeper_report report;
    const caller_outcome out = coring::run([](coring::loop_group& g, sleeper_report& r) -> coring::task<caller_outcome> {
        auto caller = coring::get_running_loop().create_task(call_remote_refuser(g.loop(0), r));
        co_return co_await cancel_once_started(caller, r, {});
    }(group, report));
    CHECK(report.cancelled);
    CHECK_FALSE(out.cancelled);
    REQUIRE(out.value.has_value());
    CHECK(*out.value == 7);
}

TEST_CASE("run_on - wait_for's timeout cancels the remote task", "[run_on]") {
    coring::loop_group group({.threads = 1});
    sleeper_report report;
    bool timed_out = false;
    double ms = 0;
    coring::run([](coring::loop_group& g, sleeper_report& r, bool& out, double& took) -> coring::task<> {
        const auto start = std::chrono::steady_clock::now();
        out = co_await coring_test::throws<coring::timeout_error>(coring::wait_for(call_remote_sleeper(g.loop(0), r), 50ms));
        took = coring_test::ms_since(start);
    }(group, report, timed_out, ms));
    CHECK(timed_out);
    CHECK(report.cancelled);
    CHECK(ms >= 45);
    CHECK(ms < 2000);
}

TEST_CASE("run_on - a caller cancelled before it awaits never starts the remote task", "[run_on]") {
    coring::loop_group group({.threads = 1});
    sleeper_report report;
    bool cancelled = false;
    coring::run([](coring::loop_group& g, sleeper_report& r, bool& out) -> coring::task<> {
        auto caller = coring::get_running_loop().create_task(call_remote_sleeper(g.loop(0), r));
        caller.cancel();  // before its first step
        out = co_await coring_test::throws<coring::cancelled_error>(caller);
    }(group, report, cancelled));
    CHECK(cancelled);
    CHECK_FALSE(report.started);
}

TEST_CASE("run_on - cancelled from the target's side: the target loop closes with the task in flight", "[run_on]") {
    // A loop on a thread of its own, stopped and closed while the remote task sleeps: its close()
    // cancels the task, and the caller gets cancelled_error without being cancelled itself.
    std::atomic<coring::event_loop*> target{nullptr};
    std::atomic<bool> stop{false};
    std::thread thread([&] {
        coring::event_loop loop;
        target = &loop;
        loop.run_until_complete([](std::atomic<bool>& s) -> coring::task<> {
            while (!s) co_await coring::sleep(1ms);
        }(stop));
        loop.close();
    });
    while (target == nullptr) std::this_thread::sleep_for(1ms);
    sleeper_report report;
    struct {
        bool cancelled = false;
        std::uint32_t cancelling = 1;
    } seen;
    coring::run([](coring::event_loop& t, sleeper_report& r, std::atomic<bool>& s, decltype(seen)& out) -> coring::task<> {
        auto caller = coring::get_running_loop().create_task(call_remote_sleeper(t, r));
        while (!r.started) co_await coring::sleep(1ms);
        s = true;  // the target's main ends; its thread closes the loop
        out.cancelled = co_await coring_test::throws<coring::cancelled_error>(caller);
        out.cancelling = caller.cancelling();
    }(*target, report, stop, seen));
    thread.join();
    CHECK(seen.cancelled);
    CHECK(seen.cancelling == 0);  // nobody cancelled the caller
    CHECK(report.cancelled);
}

TEST_CASE("run_on - a closed target loop is refused with std::logic_error", "[run_on]") {
    std::optional<coring::event_loop> closed;
    std::thread([&] {
        closed.emplace();
        closed->close();
    }).join();
    bool refused = false;
    coring::run([](coring::event_loop& target, bool& out) -> coring::task<> {
        out = co_await coring_test::throws<std::logic_error>(coring::run_on(target, [] { return add_later(1, 1); }));
    }(*closed, refused));
    CHECK(refused);
}

TEST_CASE("run_on - many calls at once from several loops to several loops", "[run_on]") {
    // Each of 3 loops sends 300 calls to the other loops at once: 900 remote tasks, every result
    // checked. The messages of one caller to one target stay in order, and none is lost.
    coring::loop_group group({.threads = 3});
    const std::vector<long> sums = group.run([&group](std::size_t i) -> coring::task<long> {
        std::vector<coring::task_handle<int>> calls;
        for (int k = 0; k < 300; ++k) {
            coring::event_loop& target = group.loop((i + 1 + k % 2) % group.size());
            calls.push_back(coring::get_running_loop().create_task([](coring::event_loop& t, int a, int b) -> coring::task<int> {
                co_return co_await coring::run_on(t, [a, b] { return add_later(a, b); });
            }(target, k, static_cast<int>(i))));
        }
        long sum = 0;
        for (auto& call : calls) sum += co_await call;
        co_return sum;
    });
    REQUIRE(sums.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) CHECK(sums[i] == 299L * 300 / 2 + 300L * static_cast<long>(i));
}

TEST_CASE("run_on - messages travel through IORING_OP_MSG_RING where the kernel has it, else the inbox", "[run_on]") {
    for (const bool msg_ring : {true, false}) {
        coring::loop_group group({.threads = 2, .loop = {.msg_ring = msg_ring}});
        struct both {
            coring::loop_stats caller;
            coring::loop_stats target;
            int sum = 0;
        };
        const std::vector<both> seen = group.run([&group](std::size_t i) -> coring::task<both> {
            both out;
            if (i == 0) {
                for (int k = 0; k < 100; ++k) out.sum += co_await coring::run_on(group.loop(1), [k] { return add_later(k, 1); });
                out.target = co_await coring::run_on(group.loop(1), []() -> coring::task<coring::loop_stats> { co_return coring::get_running_loop().stats(); });
            }
            out.caller = coring::get_running_loop().stats();
            co_return out;
        });
        const both& s = seen[0];
        INFO("msg_ring requested: " << msg_ring);
        CHECK(s.sum == 99 * 100 / 2 + 100);
        if (!msg_ring) {
            CHECK_FALSE(s.caller.msg_ring);
            CHECK(s.caller.messages_sent == 0);
            CHECK(s.target.messages_received == 0);
        } else if (!s.caller.msg_ring) {
            WARN("this kernel has no IORING_OP_MSG_RING with IORING_FEAT_CQE_SKIP (5.18+): the inbox carried the messages");
        } else {
            CHECK(s.caller.messages_sent >= 101);      // a start per call
            CHECK(s.target.messages_received >= 101);
            CHECK(s.caller.messages_received >= 100);  // and a result home per call
        }
    }
}

TEST_CASE("run_on - a cancel right behind the start: the caller always ends, with cancelled_error", "[run_on]") {
    // The start and the cancel often reach the target in one batch, before the remote task's
    // first step: that task never runs its body (asyncio's rule), and the caller still hears.
    coring::loop_group group({.threads = 1});
    int cancelled = 0;
    int bodies_run = 0;
    coring::run([](coring::loop_group& g, int& out, int& ran) -> coring::task<> {
        for (int i = 0; i < 300; ++i) {
            sleeper_report report;
            auto caller = coring::get_running_loop().create_task(call_remote_sleeper(g.loop(0), report));
            co_await coring::sleep(0s);  // the caller's first step: it awaits run_on
            caller.cancel();
            if (co_await coring_test::throws<coring::cancelled_error>(caller)) ++out;
            if (report.started) ++ran;
        }
    }(group, cancelled, bodies_run));
    CHECK(cancelled == 300);
    WARN(bodies_run << " of 300 remote bodies started before their cancel arrived");
}
