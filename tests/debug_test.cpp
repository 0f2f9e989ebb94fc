// Tests of coring/debug.hpp: debug mode, the task tree, statistics.
#include <coring/debug.hpp>

#include <coring/gather.hpp>
#include <coring/io/ops.hpp>
#include <coring/sync/mutex.hpp>
#include <coring/sync/queue.hpp>
#include <coring/run.hpp>
#include <coring/task_group.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

void busy_wait(std::chrono::milliseconds d) {
    const auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
    }
}

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) lines.push_back(line);
    return lines;
}

coring::task<> sleeper(std::chrono::milliseconds d) { co_await coring::sleep(d); }

// Awaits the task *other refers to by the time this one starts.
coring::task<> await_task(const coring::task_handle<>* other) { co_await *other; }

// Captures what is written to file descriptor 2 while alive.
class stderr_capture {
public:
    stderr_capture() {
        std::fflush(stderr);
        m_saved = ::dup(2);
        m_file = std::tmpfile();
        ::dup2(::fileno(m_file), 2);
    }
    ~stderr_capture() { restore(); }
    std::string text() {
        restore();
        std::string out;
        std::rewind(m_file);
        char buf[4096];
        std::size_t n;
        while ((n = std::fread(buf, 1, sizeof buf, m_file)) > 0) out.append(buf, n);
        return out;
    }

private:
    void restore() {
        if (m_saved < 0) return;
        std::fflush(stderr);
        ::dup2(m_saved, 2);
        ::close(m_saved);
        m_saved = -1;
    }
    int m_saved = -1;
    std::FILE* m_file = nullptr;
};

}  // namespace

TEST_CASE("debug - a step that busy-waits past slow_callback_duration is reported, a sleep is not", "[debug]") {
    coring::event_loop loop(coring::loop_options{.debug = true});
    coring_test::captured_reports reports;
    reports.install(loop);
    unsigned line = 0;
    loop.run_until_complete([](unsigned& l) -> coring::task<> {
        auto hog = []() -> coring::task<> {
            co_await coring::sleep(0s);
            busy_wait(150ms);  // holds the loop
        };
        auto polite = []() -> coring::task<> { co_await coring::sleep(150ms); };
        auto a = coring::create_task(hog(), "hog");
        l = __LINE__ - 1;
        auto b = coring::create_task(polite(), "polite");
        co_await a;
        co_await b;
    }(line));
    REQUIRE(reports.reports.size() == 1);
    const auto& r = reports.reports[0];
    CHECK(r.message.rfind("Executing hog took 0.1", 0) == 0);
    CHECK(r.message.find(" seconds") != std::string::npos);
    CHECK(r.task_name == "hog");
    CHECK(r.task_site.line() == line);
    CHECK(std::string(r.task_site.file_name()).find("debug_test.cpp") != std::string::npos);
}

TEST_CASE("debug - a slow callback is reported in debug mode", "[debug]") {
    coring::event_loop loop(coring::loop_options{.debug = true, .slow_callback_duration = 20ms});
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.call_soon([] { busy_wait(30ms); });
    loop.run_until_complete([]() -> coring::task<> { co_await coring::sleep(1ms); }());
    REQUIRE(reports.reports.size() == 1);
    CHECK(reports.reports[0].message.rfind("Executing a callback took 0.0", 0) == 0);
    CHECK(reports.reports[0].task_name.empty());
}

TEST_CASE("debug - nothing slow is reported outside debug mode", "[debug]") {
    coring::event_loop loop(coring::loop_options{.debug = false, .slow_callback_duration = 20ms});
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.call_soon([] { busy_wait(30ms); });
    loop.run_until_complete([]() -> coring::task<> { co_await coring::sleep(1ms); }());
    CHECK(reports.reports.empty());
}

TEST_CASE("debug - a loop member called from another thread throws in debug mode", "[debug]") {
    coring::event_loop loop(coring::loop_options{.debug = true});
    std::string error;
    std::thread other([&] {
        try {
            loop.call_soon([] {});
        } catch (const std::logic_error& e) {
            error = e.what();
        }
    });
    other.join();
    CHECK(error.find("call_soon") != std::string::npos);
    CHECK(error.find("call_soon_threadsafe") != std::string::npos);
    // call_soon_threadsafe itself is fine from any thread.
    bool ran = false;
    std::thread ok([&] { loop.call_soon_threadsafe([&] { ran = true; }); });
    ok.join();
    loop.run_until_complete([]() -> coring::task<> { co_await coring::sleep(1ms); }());
    CHECK(ran);
}

TEST_CASE("debug - closing a loop with unfinished tasks lists what they await", "[debug]") {
    coring::event_loop loop(coring::loop_options{.debug = true});
    coring_test::captured_reports reports;
    reports.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        (void)coring::create_task(sleeper(1h), "left-behind");
        co_await coring::sleep(1ms);
    }());
    loop.close();
    REQUIRE(reports.reports.size() == 1);
    const std::string& m = reports.reports[0].message;
    CHECK(m.rfind("closing the event loop with 1 unfinished task(s)", 0) == 0);
    CHECK(m.find("Task-2 \"left-behind\" (awaiting sleep until +3599.99") != std::string::npos);
}

TEST_CASE("dump_tasks - a gather inside a task_group inside a task, line by line", "[debug][dump]") {
    unsigned owner_line = 0;
    unsigned fetch_line = 0;
    unsigned idle_line = 0;
    unsigned main_line = 0;
    std::string dump;
    coring::event_loop loop(coring::loop_options{.virtual_time = true});
    struct lines {
        unsigned& owner;
        unsigned& fetch;
        unsigned& idle;
    };
    auto inner_gather = []() -> coring::task<> { co_await coring::gather(sleeper(500ms), sleeper(800ms)); };
    auto group_owner = [](lines l, auto gather_body) -> coring::task<> {
        coring::task_group group;
        group.create_task(gather_body(), "fetch");
        l.fetch = __LINE__ - 1;
        group.create_task(sleeper(1h), "idle");
        l.idle = __LINE__ - 1;
        co_await group.join();
    };
    loop.call_later(100ms, [&] { dump = coring::format_tasks(loop); });
    auto main_task = [](lines l, auto owner_body, auto gather_body) -> coring::task<> {
        auto owner = coring::create_task(owner_body(l, gather_body), "owner");
        l.owner = __LINE__ - 1;
        co_await coring::sleep(200ms);
        owner.cancel();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(owner);
        CHECK(cancelled);
    };
    main_line = __LINE__ + 1;
    loop.run_until_complete(main_task(lines{owner_line, fetch_line, idle_line}, group_owner, inner_gather));
    const auto got = lines_of(dump);
    const std::string at = " created at debug_test.cpp:";
    const std::vector<std::string> expected{
        "Task-1 (awaiting sleep until +0.100 s)" + at + std::to_string(main_line),
        "Task-2 \"owner\" (awaiting task_group.join of 2)" + at + std::to_string(owner_line),
        "├── Task-3 \"fetch\" (awaiting gather of 2)" + at + std::to_string(fetch_line),
        "│   ├── Task-5 (awaiting sleep until +0.400 s)",
        "│   └── Task-6 (awaiting sleep until +0.700 s)",
        "└── Task-4 \"idle\" (awaiting sleep until +3599.900 s)" + at + std::to_string(idle_line),
    };
    REQUIRE(got.size() == expected.size());
    for (std::size_t i = 0; i < expected.size(); ++i) {
        CAPTURE(i, dump);
        CHECK(got[i] == expected[i]);
    }
}

namespace {

struct dumped_tree {
    std::string dump;
    int read_fd;  // the descriptor the reader's read waits on
};

// Dumps, with dump_tasks, the tree of: the main task (Task-1, running), "reader" (Task-2)
// blocked in a read of a pipe, "waiter" (Task-3) awaiting the reader, and "not yet started"
// (Task-4), created just before the dump. Ends them all before it returns.
coring::task<dumped_tree> dump_a_small_tree() {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    auto reader = [](int fd) -> coring::task<> {
        std::array<std::byte, 4> buf{};
        (void)co_await coring::io::read(fd, buf);
    };
    auto waiter = [](coring::task_handle<> t) -> coring::task<> { co_await t; };
    auto r = coring::create_task(reader(fds[0]), "reader");
    auto w = coring::create_task(waiter(r), "waiter");
    co_await coring::sleep(1ms);
    auto p = coring::create_task(sleeper(1ms), "not yet started");
    std::ostringstream out;
    coring::dump_tasks(out);
    REQUIRE(::write(fds[1], "x", 1) == 1);
    co_await w;
    co_await p;
    ::close(fds[0]);
    ::close(fds[1]);
    co_return dumped_tree{out.str(), fds[0]};
}

}  // namespace

TEST_CASE("dump_tasks - the tree starts with the running task", "[debug][dump]") {
    coring::run([]() -> coring::task<> {
        const dumped_tree tree = co_await dump_a_small_tree();
        CAPTURE(tree.dump);
        CHECK(tree.dump.find("Task-1 (running)") == 0);
    }());
}

TEST_CASE("dump_tasks - a task awaiting another task names it", "[debug][dump]") {
    coring::run([]() -> coring::task<> {
        const dumped_tree tree = co_await dump_a_small_tree();
        CAPTURE(tree.dump);
        CHECK(tree.dump.find("Task-3 \"waiter\" (awaiting task reader)") != std::string::npos);
    }());
}

TEST_CASE("dump_tasks - a task in a kernel operation names the operation, under its awaiter", "[debug][dump]") {
    coring::run([]() -> coring::task<> {
        const dumped_tree tree = co_await dump_a_small_tree();
        CAPTURE(tree.dump);
        CHECK(tree.dump.find("└── Task-2 \"reader\" (awaiting read(fd " + std::to_string(tree.read_fd) + "))") != std::string::npos);
    }());
}

TEST_CASE("dump_tasks - a task not yet started is pending", "[debug][dump]") {
    coring::run([]() -> coring::task<> {
        const dumped_tree tree = co_await dump_a_small_tree();
        CAPTURE(tree.dump);
        CHECK(tree.dump.find("Task-4 \"not yet started\" (pending)") != std::string::npos);
    }());
}

TEST_CASE("dump_tasks - synchronisation primitives say what is awaited", "[debug][dump]") {
    coring::run([]() -> coring::task<> {
        coring::queue<int> q;
        coring::mutex m;
        co_await m.lock();
        auto getter = coring::create_task([](coring::queue<int>& qq) -> coring::task<int> { co_return co_await qq.get(); }(q), "getter");
        auto locker = coring::create_task([](coring::mutex& mm) -> coring::task<> {
            co_await mm.lock();
            mm.unlock();
        }(m), "locker");
        co_await coring::sleep(1ms);
        const std::string dump = coring::format_tasks(coring::get_running_loop());
        CAPTURE(dump);
        CHECK(dump.find("Task-2 \"getter\" (awaiting queue.get)") != std::string::npos);
        CHECK(dump.find("Task-3 \"locker\" (awaiting mutex.lock)") != std::string::npos);
        q.put_nowait(1);
        m.unlock();
        co_await getter;
        co_await locker;
    }());
}

TEST_CASE("dump_tasks_on_signal - SIGUSR1 prints the tree of a live program", "[debug][dump][signals]") {
    stderr_capture capture;
    coring::run([]() -> coring::task<> {
        coring::dump_tasks_on_signal(SIGUSR1);
        auto t = coring::create_task(sleeper(30ms), "sleepy");
        co_await coring::sleep(1ms);
        ::kill(::getpid(), SIGUSR1);
        co_await t;
        coring::get_running_loop().remove_signal_handler(SIGUSR1);
    }());
    const std::string err = capture.text();
    CAPTURE(err);
    CHECK(err.find("coring: task dump\n") != std::string::npos);
    CHECK(err.find("Task-2 \"sleepy\" (awaiting sleep until +0.0") != std::string::npos);
}

TEST_CASE("stats - iterations, submissions, completions, kernel time, high water, live tasks", "[debug][stats]") {
    coring::event_loop loop;
    const coring::loop_stats before = loop.stats();
    loop.run_until_complete([]() -> coring::task<> {
        auto& l = coring::get_running_loop();
        for (int i = 0; i < 40; ++i) l.call_soon([] {});
        for (int i = 0; i < 10; ++i) co_await coring::io::nop();
        co_await coring::sleep(50ms);
        const auto mid = l.stats();
        CHECK(mid.live_tasks == 1);  // this one
        auto idle = coring::create_task(sleeper(1h));
        co_await coring::sleep(0s);
        CHECK(l.stats().live_tasks == 2);
        idle.cancel();
        co_await coring::sleep(0s);
    }());
    const coring::loop_stats s = loop.stats();
    CHECK(s.iterations > before.iterations + 10);
    CHECK(s.submissions >= before.submissions + 10);
    CHECK(s.completions >= before.completions + 10);
    CHECK(s.ready_high_water >= 40);
    CHECK(s.time_in_kernel >= 40ms);  // most of the 50 ms sleep was spent blocked in the kernel
    CHECK(s.time_running < s.time_in_kernel);
    CHECK(s.live_tasks == 0);
    const std::string line = coring::format_stats(s);
    CHECK(line.find("iterations=") == 0);
    CHECK(line.find("live_tasks=0") != std::string::npos);
    CHECK(line.find("cq_overflows=0 cq_dropped=0 dropped_completions_reported=0") != std::string::npos);
}

TEST_CASE("dump_tasks - two tasks awaiting each other show up while a main task is alive", "[debug][dump]") {
    coring::run([]() -> coring::task<> {
        coring::task_handle<> ping;
        coring::task_handle<> pong;
        ping = coring::create_task(await_task(&pong), "ping");
        pong = coring::create_task(await_task(&ping), "pong");
        co_await coring::sleep(1ms);
        const std::string dump = coring::format_tasks(coring::get_running_loop());
        CAPTURE(dump);
        CHECK(dump.find("Task-1 (running)") == 0);
        CHECK(dump.find("Task-2 \"ping\" (awaiting task pong)") != std::string::npos);
        CHECK(dump.find("Task-3 \"pong\" (awaiting task ping)") != std::string::npos);
        // A cancel goes round the cycle once and ends it: ping stops waiting, pong sees it end.
        ping.cancel();
        const bool ping_cancelled = co_await coring_test::throws<coring::cancelled_error>(ping);
        const bool pong_cancelled = co_await coring_test::throws<coring::cancelled_error>(pong);
        CHECK(ping_cancelled);
        CHECK(pong_cancelled);
    }());
}
