// Stress: a cancel racing the completion of sleep, socket recv, accept and file reads (a
// regular file, buffered and O_DIRECT, and a FIFO), over thousands of random timings.
//
// Each iteration starts a task blocked in one operation, then, at random loop iterations and
// after random busy waits, makes the operation complete (writes the data, connects: from the
// loop's thread, or from a helper thread at that very moment) and cancels the task (directly,
// from a callback, or from a timer). Whatever the order, every iteration must show:
//   - one outcome: the operation returns its result or throws cancelled_error, never both (its
//     frame comes back once), never neither (the task ends, and no operation is left in flight);
//   - a cancel that found the task unfinished ends it cancelled: when the result won, the
//     request stays pending and the task's next suspension point throws;
//   - a cancelled operation took nothing: its buffer still holds the canary, the bytes wait in
//     the socket or FIFO, the connection in the backlog. Nothing is written into the buffer or
//     taken from the socket later either, when more data arrives after the cancel was
//     acknowledged and the loop has been into the kernel again;
//   - a result is the right one: the bytes written, the connection made, the file's bytes.
//
// CORING_STRESS_SEED and CORING_STRESS_ITERATIONS override the random seed (printed when a
// check fails) and the number of iterations per operation.
#include <coring/io/file.hpp>
#include <coring/io/ops.hpp>
#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"
#include "support/raw_listener.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

// Iterations per operation: the file runs in about 4 s at -O2 and 6 s under ASan (system calls
// and busy waits dominate, so the sanitizers add little).
constexpr int default_iterations = 10000;

struct stress_config {
    std::uint64_t seed;
    int iterations;
};

stress_config read_config() {
    std::random_device device;
    stress_config config{(static_cast<std::uint64_t>(device()) << 32) ^ device(), default_iterations};
    if (const char* seed = std::getenv("CORING_STRESS_SEED")) config.seed = std::strtoull(seed, nullptr, 0);
    if (const char* iterations = std::getenv("CORING_STRESS_ITERATIONS")) config.iterations = std::atoi(iterations);
    return config;
}

std::string reproduce_with(const stress_config& config) {
    return "CORING_STRESS_SEED=" + std::to_string(config.seed) + " CORING_STRESS_ITERATIONS=" + std::to_string(config.iterations);
}

void spin_for(int microseconds) {
    if (microseconds <= 0) return;
    const auto end = std::chrono::steady_clock::now() + std::chrono::microseconds(microseconds);
    while (std::chrono::steady_clock::now() < end) {
    }
}

// Runs one job at a time on its own thread, so that a completion can happen while the loop's
// thread is inside io_uring_enter processing the cancel.
class helper_thread {
public:
    helper_thread() : m_thread([this] { serve(); }) {}
    helper_thread(const helper_thread&) = delete;
    helper_thread& operator=(const helper_thread&) = delete;
    ~helper_thread() {
        {
            std::lock_guard lock(m_mutex);
            m_stop = true;
        }
        m_wake.notify_one();
        m_thread.join();
    }

    void post(std::function<void()> job) {
        {
            std::lock_guard lock(m_mutex);
            m_job = std::move(job);
            m_busy.store(true, std::memory_order_relaxed);
        }
        m_wake.notify_one();
    }
    /// The last job has finished, and what it wrote is visible to the caller.
    [[nodiscard]] bool idle() const noexcept { return !m_busy.load(std::memory_order_acquire); }

private:
    void serve() {
        std::unique_lock lock(m_mutex);
        for (;;) {
            m_wake.wait(lock, [this] { return m_stop || m_job; });
            if (m_stop) return;
            std::function<void()> job = std::move(m_job);
            m_job = nullptr;
            lock.unlock();
            job();
            lock.lock();
            m_busy.store(false, std::memory_order_release);
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_wake;
    std::function<void()> m_job;
    std::atomic<bool> m_busy{false};
    bool m_stop = false;
    std::thread m_thread;  // last: it starts serving at once
};

enum class cancel_by { direct, call_soon, timer };

// When things happen in one iteration. Steps count loop iterations: step -1 is before the
// operation's task first runs, step 0 right after it prepared its SQE (not yet submitted),
// step n after n more iterations.
struct timing {
    int complete_step = 0;
    int cancel_step = 0;
    bool cancel_first = false;  // when both fall on the same step
    int complete_spin_us = 0;   // busy wait before completing
    int cancel_spin_us = 0;     // busy wait before cancelling
    bool threaded = false;      // the helper thread completes the operation
    cancel_by how = cancel_by::direct;
    int timer_us = 0;  // cancel_by::timer: the cancel's delay

    [[nodiscard]] std::string describe() const {
        static constexpr const char* hows[] = {"directly", "from call_soon", "from a timer"};
        char text[256];
        std::snprintf(text, sizeof text, "complete at step %d after %d us%s, cancel %s at step %d after %d us%s%s", complete_step, complete_spin_us,
                      threaded ? " (helper thread)" : "", hows[static_cast<int>(how)], cancel_step, cancel_spin_us,
                      how == cancel_by::timer ? (" + " + std::to_string(timer_us) + " us").c_str() : "",
                      complete_step == cancel_step ? (cancel_first ? ", cancel first" : ", complete first") : "");
        return text;
    }
};

timing random_timing(std::mt19937_64& rng) {
    auto pick = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
    auto spin = [&pick] { return pick(0, 2) == 0 ? 0 : pick(1, 40); };
    timing t;
    t.complete_step = pick(-1, 3);
    t.cancel_step = pick(-1, 3);
    t.cancel_first = pick(0, 1) == 1;
    t.complete_spin_us = spin();
    t.cancel_spin_us = spin();
    t.threaded = pick(0, 2) == 0;
    const int how = pick(0, 5);
    t.how = how < 4 ? cancel_by::direct : how == 4 ? cancel_by::call_soon : cancel_by::timer;
    t.timer_us = pick(0, 60);
    return t;
}

// How the operation came back.
struct outcome {
    bool started = false;
    int resumed = 0;  // times the frame came back from the operation: 1, whatever the order
    bool returned = false;
    bool cancelled = false;
    std::string unexpected;  // any other exception
    std::int64_t value = 0;
    std::chrono::steady_clock::time_point returned_at{};
};

// The task of every iteration: awaits make()'s operation, records how it came back, then
// suspends once more, which is where a cancel that lost to the result is delivered.
template <class MakeOp>
coring::task<> record(MakeOp make, outcome& out) {
    out.started = true;
    try {
        if constexpr (std::is_void_v<decltype(make().await_resume())>) {
            co_await make();
        } else {
            const auto value = co_await make();
            out.value = static_cast<std::int64_t>(value);
        }
        out.returned_at = std::chrono::steady_clock::now();
        ++out.resumed;
        out.returned = true;
    } catch (const coring::cancelled_error&) {
        ++out.resumed;
        out.cancelled = true;
        throw;
    } catch (const std::exception& e) {
        ++out.resumed;
        out.unexpected = e.what();
        co_return;
    }
    co_await coring::sleep(0s);
}

constexpr std::byte canary{0xa5};

bool all_canary(std::span<const std::byte> bytes) {
    return std::all_of(bytes.begin(), bytes.end(), [](std::byte b) { return b == canary; });
}

bool holds(std::span<const std::byte> bytes, const std::string& text) {
    return bytes.size() >= text.size() && std::memcmp(bytes.data(), text.data(), text.size()) == 0;
}

// Reads what `fd` holds without blocking.
std::string take_available(int fd) {
    std::string got;
    char chunk[256];
    pollfd p{fd, POLLIN, 0};
    while (::poll(&p, 1, 0) == 1 && (p.revents & POLLIN) != 0) {
        const ssize_t n = ::read(fd, chunk, sizeof chunk);
        if (n <= 0) break;
        got.append(chunk, static_cast<std::size_t>(n));
    }
    return got;
}

// The loop goes into the kernel and back, twice: a completion the kernel had pending would be
// reaped by now.
coring::task<> round_trip_through_kernel() {
    co_await coring::io::nop();
    co_await coring::sleep(0s);
    co_await coring::io::nop();
}

struct tally {
    int returned = 0;
    int cancelled = 0;
    int never_started = 0;
    int cancel_after_result = 0;  // the result won, and the task's next suspension was cancelled
    std::vector<std::string> failures;
};

// One iteration of `scenario` under timing `t`; what went wrong goes to counts.failures.
template <class Scenario>
coring::task<> race_once(Scenario& scenario, const timing& t, helper_thread& helper, tally& counts, int iteration) {
    coring::event_loop& loop = coring::get_running_loop();
    outcome out;
    scenario.prepare();
    coring::task_handle<> h = coring::create_task(scenario.operation(out));
    bool cancel_hit = false;  // the cancel found the task unfinished
    bool cancel_ran = false;
    auto cancel_now = [&] {
        cancel_hit = !h.done();
        h.cancel();
        cancel_ran = true;
    };
    auto cancel = [&] {
        spin_for(t.cancel_spin_us);
        if (t.how == cancel_by::direct)
            cancel_now();
        else if (t.how == cancel_by::call_soon)
            loop.call_soon(cancel_now);
        else
            (void)loop.call_later(std::chrono::microseconds(t.timer_us), cancel_now);
    };
    auto complete = [&] {
        if (!Scenario::has_completion) return;
        if (t.threaded) {
            helper.post([&scenario, us = t.complete_spin_us] {
                spin_for(us);
                scenario.complete();
            });
        } else {
            spin_for(t.complete_spin_us);
            scenario.complete();
        }
    };
    for (int step = -1; step <= std::max(t.complete_step, t.cancel_step); ++step) {
        if (step >= 0) co_await coring::sleep(0s);
        if (step == t.cancel_step && t.cancel_first) cancel();
        if (step == t.complete_step) complete();
        if (step == t.cancel_step && !t.cancel_first) cancel();
    }
    while (!helper.idle() || !cancel_ran) co_await coring::sleep(0s);
    const bool task_cancelled = co_await coring_test::throws<coring::cancelled_error>(h);

    std::string problem;
    if (out.started) {
        // Once: a result and a cancellation both would be two resumptions of the frame.
        if (out.resumed != 1) problem = "the operation's frame came back " + std::to_string(out.resumed) + " times";
        else if (!out.unexpected.empty()) problem = "the operation threw: " + out.unexpected;
    } else if (!task_cancelled) {
        problem = "the operation never ran, yet the task was not cancelled";
    }
    if (problem.empty() && cancel_hit != task_cancelled)
        problem = cancel_hit ? "the cancel found the task unfinished, yet it ended without cancelled_error" : "the task was cancelled after it had finished";
    if (problem.empty() && coring::detail::scheduler_of(loop).user_ops_in_flight() != 0)
        problem = std::to_string(coring::detail::scheduler_of(loop).user_ops_in_flight()) + " operation(s) still in flight after the task ended";
    std::string scenario_problem = co_await scenario.verify(out);
    if (problem.empty()) problem = std::move(scenario_problem);

    if (!out.started) ++counts.never_started;
    else if (out.cancelled) ++counts.cancelled;
    else if (out.returned) ++counts.returned;
    if (out.returned && task_cancelled) ++counts.cancel_after_result;
    if (!problem.empty() && counts.failures.size() < 10)
        counts.failures.push_back("iteration " + std::to_string(iteration) + " (" + t.describe() + "): " + problem);
}

// Runs config.iterations random timings of a Scenario (built inside the loop); prints the tally.
template <class Scenario>
tally stress(const char* name, const stress_config& config) {
    tally counts;
    std::mt19937_64 rng(config.seed ^ std::hash<std::string>{}(name));
    helper_thread helper;
    const std::size_t frames_before = coring_test::live_frames();
    coring::run([](tally& c, std::mt19937_64& r, helper_thread& thread, int iterations) -> coring::task<> {
        Scenario scenario(r);
        co_await scenario.setup();
        for (int i = 0; i < iterations && c.failures.size() < 10; ++i) {
            const timing t = random_timing(r);
            co_await race_once(scenario, t, thread, c, i);
        }
        co_await scenario.teardown();
    }(counts, rng, helper, config.iterations));
    CHECK(coring_test::live_frames() == frames_before);
    std::printf("%-10s %d iterations: %d returned (%d then cancelled at the next suspension), %d cancelled, %d cancelled before starting\n", name,
                config.iterations, counts.returned, counts.cancel_after_result, counts.cancelled, counts.never_started);
    return counts;
}

// Whether the operation, once submitted, can still lose to the cancel. A pending socket or
// FIFO operation can be cancelled in the kernel, a sleep in the timer heap; a read of a
// regular file cannot: it is issued when submitted, before the cancel that follows it, and a
// cancel that finds it issued fails.
enum class kernel_cancels { yes, no };

void check_tally(const tally& counts, const stress_config& config, kernel_cancels cancels) {
    std::string failures;
    for (const std::string& f : counts.failures) failures += f + "\n";
    INFO("reproduce with " << reproduce_with(config));
    INFO(failures);
    CHECK(counts.failures.empty());
    if (config.iterations >= 500) {
        // The timings reach both sides of the race (else the test proves nothing): results,
        // and cancels that won in the kernel or, for file reads, before the submission and
        // after a result that won.
        CHECK(counts.returned > 0);
        if (cancels == kernel_cancels::yes) {
            CHECK(counts.cancelled > 0);
        } else {
            CHECK(counts.never_started > 0);
            CHECK(counts.cancel_after_result > 0);
        }
    }
}

// ---------------------------------------------------------------------- the scenarios

// sleep(d), d from 0 to 120 us: the timer may fire before the cancel, after it, or while the
// cancel waits in a callback; the steps and busy waits move the cancel across those points.
struct sleep_scenario {
    static constexpr bool has_completion = false;
    std::mt19937_64& rng;
    std::chrono::microseconds delay{};
    std::chrono::steady_clock::time_point started{};

    explicit sleep_scenario(std::mt19937_64& r) : rng(r) {}
    coring::task<> setup() { co_return; }
    coring::task<> teardown() { co_return; }
    void prepare() { delay = std::chrono::microseconds(std::uniform_int_distribution<int>(0, 120)(rng)); }
    coring::task<> operation(outcome& out) {
        return record(
            [this] {
                started = std::chrono::steady_clock::now();
                return coring::sleep(delay);
            },
            out);
    }
    void complete() {}
    coring::task<std::string> verify(const outcome& out) {
        if (out.returned && out.returned_at - started < delay) co_return "sleep returned before its delay";
        co_return std::string();
    }
};

// recv on a stream socket pair: the data (1 to 32 bytes) is written at a random point.
struct recv_scenario {
    static constexpr bool has_completion = true;
    std::mt19937_64& rng;
    int sv[2] = {-1, -1};
    std::array<std::byte, 64> buffer{};
    std::string data;

    explicit recv_scenario(std::mt19937_64& r) : rng(r) {}
    coring::task<> setup() {
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0);
        co_return;
    }
    coring::task<> teardown() {
        ::close(sv[0]);
        ::close(sv[1]);
        co_return;
    }
    void prepare() {
        buffer.fill(canary);
        data = coring_test::pattern(rng() % 1000, 1 + rng() % 32);
    }
    coring::task<> operation(outcome& out) {
        return record([fd = sv[0], buf = std::span(buffer)] { return coring::io::recv(fd, buf); }, out);
    }
    void complete() {
        if (::write(sv[1], data.data(), data.size()) != static_cast<ssize_t>(data.size())) std::abort();
    }
    coring::task<std::string> verify(const outcome& out) {
        const std::size_t taken = out.returned ? static_cast<std::size_t>(out.value) : 0;
        std::string problem;
        if (out.returned && (taken != data.size() || !holds(buffer, data)))
            problem = "recv returned " + std::to_string(out.value) + " bytes, not the " + std::to_string(data.size()) + " written";
        else if (!all_canary(std::span(buffer).subspan(taken)))
            problem = "the buffer was written beyond what recv returned";
        // More bytes arrive once the task has ended: a receive the kernel still held would take
        // them and write them into the buffer.
        if (::write(sv[1], "late!", 5) != 5) std::abort();
        co_await round_trip_through_kernel();
        if (problem.empty() && !all_canary(std::span(buffer).subspan(taken))) problem = "the buffer was written after the task ended";
        const std::string left = take_available(sv[0]);
        const std::string expected = (out.returned ? std::string() : data) + "late!";
        if (problem.empty() && left != expected) problem = "the socket held \"" + left + "\" instead of \"" + expected + "\"";
        co_return problem;
    }
};

// accept on a listening socket: a client connects at a random point.
struct accept_scenario {
    static constexpr bool has_completion = true;
    coring_test::raw_listener listener;
    std::atomic<int> client{-1};

    explicit accept_scenario(std::mt19937_64&) {}
    coring::task<> setup() { co_return; }
    coring::task<> teardown() { co_return; }
    void prepare() { client.store(-1); }
    coring::task<> operation(outcome& out) {
        return record([fd = listener.fd] { return coring::io::accept(fd); }, out);
    }
    [[nodiscard]] int connect_client() const {
        const int c = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c < 0 || ::connect(c, reinterpret_cast<const sockaddr*>(&listener.addr), sizeof listener.addr) != 0) std::abort();
        return c;
    }
    void complete() { client.store(connect_client()); }

    static std::uint16_t local_port(int fd) {
        sockaddr_in a{};
        socklen_t len = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
        return ntohs(a.sin_port);
    }
    static std::uint16_t peer_port(int fd) {
        sockaddr_in a{};
        socklen_t len = sizeof a;
        ::getpeername(fd, reinterpret_cast<sockaddr*>(&a), &len);
        return ntohs(a.sin_port);
    }
    // The connection waiting in the backlog, or -1 when none arrives within a second.
    [[nodiscard]] int take_from_backlog() const {
        pollfd p{listener.fd, POLLIN, 0};
        if (::poll(&p, 1, 1000) != 1) return -1;
        return ::accept4(listener.fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    }
    [[nodiscard]] bool backlog_empty() const {
        pollfd p{listener.fd, POLLIN, 0};
        return ::poll(&p, 1, 0) == 0;
    }

    coring::task<std::string> verify(const outcome& out) {
        const int c = client.load();
        std::string problem;
        if (out.returned) {
            const int conn = static_cast<int>(out.value);
            if (peer_port(conn) != local_port(c)) problem = "accept returned a connection that is not the client's";
            else if (!backlog_empty()) problem = "accept returned a connection, and one is still in the backlog";
            ::close(conn);
        } else {
            const int conn = take_from_backlog();
            if (conn < 0) problem = "the cancelled accept took the connection: the backlog is empty";
            else if (peer_port(conn) != local_port(c)) problem = "the backlog holds a connection that is not the client's";
            if (conn >= 0) ::close(conn);
        }
        // A connection made once the task has ended stays in the backlog: no accept is left in
        // the kernel to take it.
        const int late = connect_client();
        co_await round_trip_through_kernel();
        const int conn = take_from_backlog();
        if (problem.empty() && (conn < 0 || peer_port(conn) != local_port(late))) problem = "a connection made after the task ended was taken";
        if (conn >= 0) ::close(conn);
        ::close(late);
        ::close(c);
        co_return problem;
    }
};

// read_at of a regular file, 4 KiB at a random 4 KiB-aligned offset, half the time with
// O_DIRECT: a buffered read completes while it is submitted, a direct one later, from the
// disk, so the cancel meets it before submission, in the same submission, or in flight.
struct file_scenario {
    static constexpr bool has_completion = false;
    static constexpr std::size_t block = 4096;
    std::mt19937_64& rng;
    coring_test::temp_dir dir;
    std::string content = coring_test::pattern(0, 16 * block);
    coring::file buffered;
    coring::file direct;  // not open where the file system refuses O_DIRECT
    // O_DIRECT wants an aligned buffer, and a coroutine frame (where this scenario lives) is not
    // aligned beyond the allocator's 16 bytes: alignas on a member would not hold.
    std::unique_ptr<std::byte, decltype(&std::free)> storage{static_cast<std::byte*>(std::aligned_alloc(block, 2 * block)), &std::free};
    std::span<std::byte, 2 * block> buffer{storage.get(), 2 * block};
    bool use_direct = false;
    std::uint64_t offset = 0;

    explicit file_scenario(std::mt19937_64& r) : rng(r) {}
    coring::task<> setup() {
        const std::string path = dir.file("data");
        const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        REQUIRE(fd >= 0);
        REQUIRE(::write(fd, content.data(), content.size()) == static_cast<ssize_t>(content.size()));
        REQUIRE(::fsync(fd) == 0);
        ::close(fd);
        buffered = co_await coring::file::open(path, O_RDONLY);
        const int direct_fd = ::open(path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
        if (direct_fd >= 0) direct = coring::file(direct_fd);
    }
    coring::task<> teardown() { co_return; }
    void prepare() {
        std::fill(buffer.begin(), buffer.end(), canary);
        use_direct = direct.is_open() && rng() % 2 == 0;
        offset = (rng() % 16) * block;
    }
    coring::task<> operation(outcome& out) {
        const coring::file& f = use_direct ? direct : buffered;
        return record([&f, buf = buffer.first(block), at = offset] { return f.read_at(buf, at); }, out);
    }
    void complete() {}
    [[nodiscard]] std::string check_buffer(const outcome& out) const {
        const std::string expected = content.substr(offset, block);
        const std::size_t taken = out.returned ? static_cast<std::size_t>(out.value) : 0;
        if (out.returned && (taken != block || !holds(buffer, expected)))
            return "read_at returned " + std::to_string(out.value) + " bytes, not the file's " + std::to_string(block) + " at " + std::to_string(offset);
        if (!all_canary(buffer.subspan(taken))) return "the buffer was written beyond what read_at returned";
        return {};
    }
    coring::task<std::string> verify(const outcome& out) {
        std::string problem = check_buffer(out);
        co_await round_trip_through_kernel();
        if (problem.empty()) problem = check_buffer(out);
        co_return problem;
    }
};

// read of a FIFO through coring::file: the data is written at a random point.
struct fifo_scenario {
    static constexpr bool has_completion = true;
    std::mt19937_64& rng;
    coring_test::temp_dir dir;
    coring::file reader;
    int writer = -1;
    std::array<std::byte, 64> buffer{};
    std::string data;

    explicit fifo_scenario(std::mt19937_64& r) : rng(r) {}
    coring::task<> setup() {
        const std::string path = dir.file("fifo");
        REQUIRE(::mkfifo(path.c_str(), 0600) == 0);
        // Opened without blocking (no writer yet), then made blocking again: a read of an empty
        // FIFO then waits in the kernel instead of failing with EAGAIN.
        const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        REQUIRE(fd >= 0);
        writer = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
        REQUIRE(writer >= 0);
        REQUIRE(::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) & ~O_NONBLOCK) == 0);
        reader = coring::file(fd);
        co_return;
    }
    coring::task<> teardown() {
        ::close(writer);
        co_return;
    }
    void prepare() {
        buffer.fill(canary);
        data = coring_test::pattern(rng() % 1000, 1 + rng() % 32);
    }
    coring::task<> operation(outcome& out) {
        return record([this] { return reader.read(buffer); }, out);
    }
    void complete() {
        if (::write(writer, data.data(), data.size()) != static_cast<ssize_t>(data.size())) std::abort();
    }
    coring::task<std::string> verify(const outcome& out) {
        const std::size_t taken = out.returned ? static_cast<std::size_t>(out.value) : 0;
        std::string problem;
        if (out.returned && (taken != data.size() || !holds(buffer, data)))
            problem = "read returned " + std::to_string(out.value) + " bytes, not the " + std::to_string(data.size()) + " written";
        else if (!all_canary(std::span(buffer).subspan(taken)))
            problem = "the buffer was written beyond what read returned";
        if (::write(writer, "late!", 5) != 5) std::abort();
        co_await round_trip_through_kernel();
        if (problem.empty() && !all_canary(std::span(buffer).subspan(taken))) problem = "the buffer was written after the task ended";
        const std::string left = take_available(reader.fd());
        const std::string expected = (out.returned ? std::string() : data) + "late!";
        if (problem.empty() && left != expected) problem = "the FIFO held \"" + left + "\" instead of \"" + expected + "\"";
        co_return problem;
    }
};

}  // namespace

TEST_CASE("cancel race - sleep: the timer or the cancel, exactly one", "[stress][cancel]") {
    const stress_config config = read_config();
    check_tally(stress<sleep_scenario>("sleep", config), config, kernel_cancels::yes);
}

TEST_CASE("cancel race - recv: the bytes or cancelled_error, and a cancelled recv writes nothing", "[stress][cancel][net]") {
    const stress_config config = read_config();
    check_tally(stress<recv_scenario>("recv", config), config, kernel_cancels::yes);
}

TEST_CASE("cancel race - accept: the connection or cancelled_error, and a cancelled accept leaves it in the backlog", "[stress][cancel][net]") {
    const stress_config config = read_config();
    check_tally(stress<accept_scenario>("accept", config), config, kernel_cancels::yes);
}

TEST_CASE("cancel race - regular file read_at, buffered and O_DIRECT: the bytes or cancelled_error", "[stress][cancel][file]") {
    const stress_config config = read_config();
    check_tally(stress<file_scenario>("file", config), config, kernel_cancels::no);
}

TEST_CASE("cancel race - FIFO read: the bytes or cancelled_error, and a cancelled read writes nothing", "[stress][cancel][file]") {
    const stress_config config = read_config();
    check_tally(stress<fifo_scenario>("fifo", config), config, kernel_cancels::yes);
}
