// Tests of coring/profile.hpp: profile mode's figures for scripted programs, on virtual time
// where a wait must be exact, on real time for kernel I/O and threads.
#include <coring/profile.hpp>

#include <coring/coring.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

namespace {

constexpr coring::loop_options profiled_virtual{.virtual_time = true, .profile = true};
constexpr coring::loop_options profiled{.profile = true};

/// Holds the loop for `d` of real time, as a step doing CPU work would.
void spin(milliseconds d) {
    const auto end = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < end) {
    }
}

std::optional<coring::profile_entry> entry_named(const std::string& name) {
    for (coring::profile_entry& e : coring::profile_entries())
        if (e.name == name) return std::move(e);
    return std::nullopt;
}

double ms(nanoseconds d) { return std::chrono::duration<double, std::milli>(d).count(); }

coring::task<> three_steps_of_10ms() {
    spin(10ms);
    co_await coring::sleep(0ms);
    spin(10ms);
    co_await coring::sleep(0ms);
    spin(10ms);
}

coring::task<> hold_lock_50ms(coring::mutex& m) {
    auto guard = co_await m.scoped_lock();
    co_await coring::sleep(50ms);
}

coring::task<> take_lock(coring::mutex& m) {
    auto guard = co_await m.scoped_lock();
}

coring::task<> worker_holder_waiter() {
    coring::mutex m;
    auto worker = coring::create_task(three_steps_of_10ms(), "worker");
    auto holder = coring::create_task(hold_lock_50ms(m), "holder");
    auto waiter = coring::create_task(take_lock(m), "waiter");
    co_await worker;
    co_await holder;
    co_await waiter;
}

}  // namespace

TEST_CASE("profile - run time, steps and a lock wait of a scripted program on virtual time", "[profile]") {
    coring::run(worker_holder_waiter(), profiled_virtual);

    const std::optional<coring::profile_entry> worker = entry_named("worker");
    REQUIRE(worker);
    CHECK(worker->tasks == 1);
    CHECK(worker->steps == 3);
    // Real time: at least the 30 ms spun, and at most that with slack for a loaded machine or
    // a sanitizer build, where a step may be preempted after its spin.
    CHECK(ms(worker->run_time) >= 30.0);
    CHECK(ms(worker->run_time) < 90.0);
    CHECK(ms(worker->longest_step) >= 10.0);
    CHECK(ms(worker->longest_step) < 70.0);
    CHECK(worker->waited(coring::wait_kind::lock) == nanoseconds::zero());

    const std::optional<coring::profile_entry> waiter = entry_named("waiter");
    REQUIRE(waiter);
    CHECK(waiter->steps == 2);
    // Virtual time: the holder's 50 ms sleep is exactly what the waiter waits.
    CHECK(waiter->waited(coring::wait_kind::lock) == 50ms);
    CHECK(ms(waiter->run_time) < 5.0);

    const std::optional<coring::profile_entry> holder = entry_named("holder");
    REQUIRE(holder);
    CHECK(holder->waited(coring::wait_kind::timer) == 50ms);
    CHECK(holder->waited(coring::wait_kind::lock) == nanoseconds::zero());

    // The most run time first.
    const std::vector<coring::profile_entry> entries = coring::profile_entries();
    REQUIRE(!entries.empty());
    CHECK(entries.front().name == "worker");

    const coring::loop_profile loop = coring::profile_loop();
    CHECK(loop.iterations > 0);
    CHECK(loop.timers_fired == 1);  // the 50 ms sleep (sleep(0) yields without a timer)
    CHECK(loop.timer_lag_max == nanoseconds::zero());  // virtual time takes timers on time
}

coring::task<> get_seven(coring::queue<int>& q) {
    const int got = co_await q.get();
    CHECK(got == 7);
}

coring::task<> put_seven_after_30ms(coring::queue<int>& q) {
    co_await coring::sleep(30ms);
    co_await q.put(7);
}

coring::task<> nap(milliseconds d) { co_await coring::sleep(d); }

coring::task<> await_a_child_of_20ms() {
    auto child = coring::create_task(nap(20ms), "child");
    co_await child;
}

coring::task<> sleep_20ms_in_a_thread() {
    co_await coring::to_thread([] { std::this_thread::sleep_for(20ms); });
}

coring::task<> waits_of_each_kind() {
    coring::queue<int> q;
    auto getter = coring::create_task(get_seven(q), "getter");
    auto putter = coring::create_task(put_seven_after_30ms(q), "putter");
    auto parent = coring::create_task(await_a_child_of_20ms(), "parent");
    auto threaded = coring::create_task(sleep_20ms_in_a_thread(), "threaded");
    co_await getter;
    co_await putter;
    co_await parent;
    co_await threaded;
}

TEST_CASE("profile - waits on a queue, another task and a thread, by kind", "[profile]") {
    coring::run(waits_of_each_kind(), profiled_virtual);

    const std::optional<coring::profile_entry> getter = entry_named("getter");
    REQUIRE(getter);
    CHECK(getter->waited(coring::wait_kind::queue) == 30ms);
    const std::optional<coring::profile_entry> parent = entry_named("parent");
    REQUIRE(parent);
    CHECK(parent->waited(coring::wait_kind::task) == 20ms);
    const std::optional<coring::profile_entry> threaded = entry_named("threaded");
    REQUIRE(threaded);
    // At least the thread's 20 ms: on virtual time the wait is on the loop's clock, which also
    // jumps to the other tasks' timers while the thread works.
    CHECK(ms(threaded->waited(coring::wait_kind::thread)) >= 19.0);
    CHECK(ms(threaded->waited(coring::wait_kind::thread)) < 1000.0);
}

coring::task<> read_five_bytes(int fd) {
    std::array<std::byte, 16> buffer{};
    const std::size_t got = co_await coring::io::read(fd, buffer);
    CHECK(got == 5);
}

coring::task<> write_after_30ms(int read_end, int write_end) {
    auto reader = coring::create_task(read_five_bytes(read_end), "reader");
    co_await coring::sleep(30ms);
    REQUIRE(::write(write_end, "hello", 5) == 5);
    co_await reader;
}

TEST_CASE("profile - kernel I/O waits are counted by opcode", "[profile]") {
    int ends[2];
    REQUIRE(::pipe(ends) == 0);
    coring::run(write_after_30ms(ends[0], ends[1]), profiled);
    ::close(ends[0]);
    ::close(ends[1]);

    const std::optional<coring::profile_entry> reader = entry_named("reader");
    REQUIRE(reader);
    CHECK(ms(reader->waited(coring::wait_kind::io)) >= 29.0);
    REQUIRE(reader->io_by_opcode.size() == 1);
    CHECK(reader->io_by_opcode[0].first == "read");
    CHECK(reader->io_by_opcode[0].second == reader->waited(coring::wait_kind::io));
}

coring::task<> spin_50ms_then_yield() {
    spin(50ms);
    co_await coring::sleep(0ms);
}

coring::task<> spin_5ms_and_start_an_eager_task() {
    spin(5ms);
    auto inner = coring::create_task(spin_50ms_then_yield(), {.name = "inner", .eager_start = true});
    co_await inner;
}

coring::task<> run_outer() {
    auto outer = coring::create_task(spin_5ms_and_start_an_eager_task(), "outer");
    co_await outer;
}

TEST_CASE("profile - an eager task's step inside its creator's is counted once, as its own", "[profile]") {
    coring::run(run_outer(), profiled_virtual);

    const std::optional<coring::profile_entry> outer = entry_named("outer");
    const std::optional<coring::profile_entry> inner = entry_named("inner");
    REQUIRE(outer);
    REQUIRE(inner);
    CHECK(ms(inner->run_time) >= 50.0);
    CHECK(ms(outer->run_time) >= 5.0);
    CHECK(ms(outer->run_time) < 40.0);  // not with the inner task's 50 ms (slack for a loaded machine)
}

coring::task<> five_unnamed_naps() {
    std::vector<coring::task_handle<void>> sleepers;
    for (int i = 0; i < 5; ++i) sleepers.push_back(coring::create_task(nap(10ms)));  // one creation site
    for (auto& s : sleepers) co_await s;
}

TEST_CASE("profile - unnamed tasks are grouped by creation site; the table lists the groups", "[profile]") {
    coring::run(five_unnamed_naps(), profiled_virtual);

    std::size_t groups_of_five = 0;
    for (const coring::profile_entry& e : coring::profile_entries()) {
        if (e.tasks != 5) continue;
        ++groups_of_five;
        CHECK(e.name.find("five_unnamed_naps (profile_test.cpp:") == 0);
        CHECK(e.waited(coring::wait_kind::timer) == 50ms);  // 10 ms each
    }
    CHECK(groups_of_five == 1);

    std::ostringstream table;
    coring::profile_report(table);
    const std::string text = table.str();
    CHECK(text.find("coring profile: ") == 0);
    CHECK(text.find("profile_test.cpp:") != std::string::npos);
    CHECK(text.find("timer 50.000 ms") != std::string::npos);
}

coring::task<> check_no_profile_while_running() {
    co_await coring::sleep(1ms);
    CHECK(coring::profile_entries().empty());
}

TEST_CASE("profile - without profile mode there is no profile", "[profile]") {
    coring::run(check_no_profile_while_running());
    CHECK(coring::profile_entries().empty());
    CHECK(coring::profile_loop().iterations == 0);
    std::ostringstream table;
    coring::profile_report(table);
    CHECK(table.str().find("no profile") != std::string::npos);
}

TEST_CASE("profile - CORING_PROFILE in the environment turns profile mode on", "[profile]") {
    REQUIRE(::setenv("CORING_PROFILE", "1", 1) == 0);
    bool profiled_loop = false;
    try {
        coring::event_loop loop;
        profiled_loop = loop.options().profile;
        loop.run_until_complete(nap(1ms));
    } catch (...) {
        ::unsetenv("CORING_PROFILE");
        throw;
    }
    ::unsetenv("CORING_PROFILE");
    CHECK(profiled_loop);
    CHECK(coring::profile_loop().timers_fired == 1);
    coring::event_loop plain;
    CHECK_FALSE(plain.options().profile);
}

coring::task<> spin_5ms() {
    spin(5ms);
    co_return;
}

coring::task<> start_slow_and_gone() {
    (void)coring::create_task(spin_5ms(), "slow-and-gone");
    co_await coring::sleep(20ms);
}

TEST_CASE("profile - debug mode reports a slow last step of a task nobody holds", "[profile][debug]") {
    // The step ends the task, whose state the loop's reference alone kept: the report after
    // the step still reads its name (ASan: no use after free).
    coring::event_loop loop({.debug = true, .slow_callback_duration = 1ms});
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete(start_slow_and_gone());
    bool reported = false;
    for (const coring::exception_context& r : reports.reports)
        if (r.task_name == "slow-and-gone" && r.message.find("Executing slow-and-gone took") == 0) reported = true;
    CHECK(reported);
}
