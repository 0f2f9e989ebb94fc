// Tests of coring/thread/loop_group.hpp: a loop per thread, their mains, group-wide signals.
//
// Catch2 is not thread-safe: the mains return what they saw, and the checks run on this thread.
#include <coring/thread/loop_group.hpp>

#include <coring/debug.hpp>
#include <coring/run.hpp>
#include <coring/sync/event.hpp>
#include <coring/thread/run_on.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/child_process.hpp"
#include "support/helpers.hpp"

#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct main_failed : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The descriptors of the process's io_uring instances.
std::vector<int> io_uring_descriptors() {
    std::vector<int> found;
    for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
        std::error_code error;
        const std::filesystem::path target = std::filesystem::read_symlink(entry.path(), error);
        if (!error && target == "anon_inode:[io_uring]") found.push_back(std::stoi(entry.path().filename().string()));
    }
    return found;
}

}  // namespace

TEST_CASE("loop_group - run returns each main's value in index order, one thread per loop", "[loop_group]") {
    coring::loop_group group({.threads = 3});
    REQUIRE(group.size() == 3);
    CHECK(&group.loop(0) != &group.loop(1));
    CHECK(&group.loop(1) != &group.loop(2));
    struct seen {
        std::size_t index;
        std::thread::id thread;
        bool own_loop;
    };
    const std::vector<seen> results = group.run([&group](std::size_t i) -> coring::task<seen> {
        co_await coring::sleep(std::chrono::milliseconds(10 * (3 - i)));  // finish in reverse order
        co_return seen{i, std::this_thread::get_id(), &coring::get_running_loop() == &group.loop(i)};
    });
    REQUIRE(results.size() == 3);
    std::set<std::thread::id> threads;
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(results[i].index == i);
        CHECK(results[i].own_loop);
        CHECK(results[i].thread != std::this_thread::get_id());
        threads.insert(results[i].thread);
    }
    CHECK(threads.size() == 3);
}

TEST_CASE("loop_group - void mains, and a group runs several times", "[loop_group]") {
    coring::loop_group group({.threads = 2});
    std::atomic<int> runs{0};
    group.run([&](std::size_t) -> coring::task<> {
        ++runs;
        co_return;
    });
    group.run([&](std::size_t) -> coring::task<> {
        co_await coring::sleep(1ms);
        ++runs;
    });
    CHECK(runs == 4);
}

TEST_CASE("loop_group - the first failure cancels the other mains and is rethrown", "[loop_group]") {
    coring::loop_group group({.threads = 3});
    std::atomic<int> cancelled{0};
    const auto start = std::chrono::steady_clock::now();
    std::string what;
    try {
        group.run([&](std::size_t i) -> coring::task<int> {
            if (i == 1) {
                co_await coring::sleep(20ms);
                throw main_failed("main 1 failed");
            }
            try {
                co_await coring::sleep(30s);
            } catch (const coring::cancelled_error&) {
                ++cancelled;
                throw;
            }
            co_return 0;
        });
    } catch (const main_failed& e) {
        what = e.what();
    }
    CHECK(what == "main 1 failed");
    CHECK(cancelled == 2);
    CHECK(coring_test::ms_since(start) < 5000);
}

TEST_CASE("loop_group - a main that finished keeps its loop serving run_on for the others", "[loop_group]") {
    coring::loop_group group({.threads = 2});
    const std::vector<int> values = group.run([&group](std::size_t i) -> coring::task<int> {
        if (i == 0) co_return 1;  // loop 0's main ends at once
        co_await coring::sleep(20ms);
        co_return co_await coring::run_on(group.loop(0), []() -> coring::task<int> { co_return 41; });
    });
    CHECK(values == std::vector<int>{1, 41});
}

TEST_CASE("loop_group - SIGTERM on a group reaches every loop", "[loop_group]") {
    coring::loop_group group({.threads = 3});
    std::atomic<int> handled{0};
    std::atomic<int> waiting{0};
    // One event per loop, made and set on that loop; the handler finds its own.
    std::vector<coring::event*> stops(group.size(), nullptr);
    group.add_signal_handler(SIGTERM, [&] {
        for (std::size_t i = 0; i < group.size(); ++i)
            if (&group.loop(i) == &coring::get_running_loop()) stops[i]->set();
        ++handled;
    });
    std::thread killer([&] {
        while (waiting < 3) std::this_thread::sleep_for(1ms);
        ::kill(::getpid(), SIGTERM);
    });
    const std::vector<std::size_t> stopped = group.run([&](std::size_t i) -> coring::task<std::size_t> {
        coring::event stop;
        stops[i] = &stop;
        ++waiting;
        co_await stop.wait();
        co_return i;
    });
    killer.join();
    CHECK(stopped == std::vector<std::size_t>{0, 1, 2});
    CHECK(handled == 3);
    CHECK(group.remove_signal_handler(SIGTERM));
    CHECK_FALSE(group.remove_signal_handler(SIGTERM));
}

TEST_CASE("loop_group - threads are pinned to the CPUs the process may use", "[loop_group]") {
    cpu_set_t allowed;
    CPU_ZERO(&allowed);
    REQUIRE(sched_getaffinity(0, sizeof allowed, &allowed) == 0);
    std::vector<int> cpus;
    for (int cpu = 0; cpu < CPU_SETSIZE; ++cpu)
        if (CPU_ISSET(cpu, &allowed)) cpus.push_back(cpu);
    coring::loop_group group({.threads = 2, .pin_threads = true});
    const std::vector<int> ran_on = group.run([](std::size_t) -> coring::task<int> {
        co_await coring::sleep(1ms);
        co_return sched_getcpu();
    });
    for (std::size_t i = 0; i < 2; ++i) CHECK(ran_on[i] == cpus[i % cpus.size()]);
}

TEST_CASE("loop_group - destroying the group cancels what still runs on its loops and joins", "[loop_group]") {
    std::atomic<bool> cleaned_up{false};
    std::atomic<bool> started{false};
    {
        coring::loop_group group({.threads = 2});
        group.loop(1).call_soon_threadsafe([&] {
            coring::get_running_loop().create_task([](std::atomic<bool>& s, std::atomic<bool>& done) -> coring::task<> {
                s = true;
                try {
                    co_await coring::sleep(30s);
                } catch (const coring::cancelled_error&) {
                    done = true;
                    throw;
                }
            }(started, cleaned_up));
        });
        while (!started) std::this_thread::sleep_for(1ms);
    }
    CHECK(cleaned_up);
}

TEST_CASE("loop_group - a loop whose ring fails ends run() with that error; the group stays usable", "[loop_group]") {
    coring::loop_group group({.threads = 1});
    const std::vector<int> rings = io_uring_descriptors();
    REQUIRE(rings.size() == 1);  // loop 0's: nothing else in this process has a ring now
    const int ring = rings[0];
    std::error_code code;
    try {
        group.run([ring](std::size_t) -> coring::task<> {
            // The ring's descriptor now names /dev/null: the loop's next io_uring_enter fails
            // (EOPNOTSUPP), as a ring broken by the kernel would.
            const int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
            ::dup2(null, ring);
            ::close(null);
            co_await coring::sleep(30s);
        });
    } catch (const std::system_error& e) {
        code = e.code();
    }
    CHECK(code == std::error_code(EOPNOTSUPP, std::system_category()));
    // Later runs see the failure at once; the loop stays addressable, and refuses messages.
    code = {};
    try {
        group.run([](std::size_t) -> coring::task<> { co_return; });
    } catch (const std::system_error& e) {
        code = e.code();
    }
    CHECK(code == std::error_code(EOPNOTSUPP, std::system_category()));
    CHECK_THROWS_AS(group.loop(0).call_soon_threadsafe([] {}), std::logic_error);
}  // the destructor joins the failed loop's thread

TEST_CASE("loop_group - loop(i) out of range, and a default size", "[loop_group]") {
    coring::loop_group group;
    CHECK(group.size() == std::max(1u, std::thread::hardware_concurrency()));
    CHECK_THROWS_AS(group.loop(group.size()), std::out_of_range);
}

TEST_CASE("loop_group - debug mode reports a loop method called from another thread, naming both", "[loop_group]") {
    coring::loop_group group({.threads = 1, .loop = {.debug = true}});
    std::thread::id loop_thread;
    group.run([&](std::size_t) -> coring::task<> {
        loop_thread = std::this_thread::get_id();
        co_return;
    });
    std::string what;
    try {
        group.loop(0).call_soon([] {});
    } catch (const std::logic_error& e) {
        what = e.what();
    }
    std::ostringstream mine;
    std::ostringstream theirs;
    mine << std::this_thread::get_id();
    theirs << loop_thread;
    CHECK(what.find("call_soon") != std::string::npos);
    CHECK(what.find(mine.str()) != std::string::npos);
    CHECK(what.find(theirs.str()) != std::string::npos);
}

TEST_CASE("loop_group - debug mode reports waking a task of one loop from another thread, naming both", "[loop_group]") {
    // event.set() cannot throw: the report goes to stderr and the process aborts (in a child).
#if defined(__SANITIZE_THREAD__)
    WARN("skipped under ThreadSanitizer: the check itself reads the other loop's state, which is the race it reports");
    return;
#endif
    const auto [status, output] = coring_test::run_in_child([] {
        coring::loop_group group({.threads = 1, .loop = {.debug = true}});
        coring::event ev;
        std::atomic<bool> waiting{false};
        group.loop(0).call_soon_threadsafe([&] {
            coring::get_running_loop().create_task([](coring::event& e, std::atomic<bool>& w) -> coring::task<> {
                w = true;
                co_await e.wait();
            }(ev, waiting));
        });
        while (!waiting) std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(5ms);  // suspended by now
        std::ostringstream mine;
        mine << std::this_thread::get_id();
        std::printf("setter %s\n", mine.str().c_str());
        std::fflush(stdout);
        ev.set();  // from this thread: the bug
        return 0;
    });
    REQUIRE(WIFSIGNALED(status));
    CHECK(WTERMSIG(status) == SIGABRT);
    const auto setter_at = output.find("setter ");
    REQUIRE(setter_at != std::string::npos);
    const std::string setter = output.substr(setter_at + 7, output.find('\n', setter_at) - setter_at - 7);
    CHECK(output.find("coring: error: thread " + setter + " woke a task that waits on a coring primitive") != std::string::npos);
    CHECK(output.find("but those tasks belong to the event loop of thread ") != std::string::npos);
    CHECK(output.find("debug mode check") != std::string::npos);
}
