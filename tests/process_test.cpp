// Tests of coring/process.hpp: subprocesses with pipes, wait, communicate, signals.
#include <coring/process.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/bytes.hpp"
#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"

#include <dirent.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

using coring_test::count_open_fds;
using coring_test::text;

// True if this process has a child that has not been reaped (a zombie, or still running).
bool has_unreaped_child() {
    siginfo_t info{};
    return ::waitid(P_ALL, 0, &info, WEXITED | WNOHANG | WNOWAIT) == 0;
}

// g++ 12 rejects a braced list of string literals inside a co_await expression (docs/internals.md, "g++ 12 traps"):
// the argument vectors are built by this helper, outside it.
template <class... S>
std::vector<std::string> args(S... s) {
    return {std::string(s)...};
}

// Feeding children: a child that exits early must not kill us with SIGPIPE (see process.hpp).
const bool sigpipe_ignored = [] { return ::signal(SIGPIPE, SIG_IGN) != SIG_ERR; }();

// Awaits `body`, then checks that it left no descriptor open and no child unreaped. A pipe's
// stream with a read in flight closes its descriptor once the cancelled read has completed, a
// loop iteration or two after its last handle went (net/stream.hpp, "Lifetimes"): allow 1 s.
coring::task<> leaving_nothing_behind(coring::task<> body) {
    const int fds_before = count_open_fds();
    {
        coring::task<> b = std::move(body);
        co_await std::move(b);
    }
    for (int i = 0; i < 1000 && count_open_fds() != fds_before; ++i) co_await coring::sleep(1ms);
    CHECK(count_open_fds() == fds_before);
    CHECK_FALSE(has_unreaped_child());
}

// A child that writes "out" to stdout and "err" to stderr, then exits with 7; both are pipes.
coring::task<coring::process> start_out_err_exit_7() {
    co_return co_await coring::create_subprocess_exec(args("sh", "-c", "echo out; echo err >&2; exit 7"),
                                                      {.std_out = coring::stdio::pipe, .std_err = coring::stdio::pipe});
}

// A child that runs until a signal ends it.
coring::task<coring::process> start_sleeper(coring::subprocess_options options = {}) {
    co_return co_await coring::create_subprocess_exec(args("sleep", "30"), options);
}

}  // namespace

TEST_CASE("process - wait returns the exit code", "[process]") {
    coring::run([]() -> coring::task<> {
        auto ok = co_await coring::create_subprocess_exec(args("true"));
        CHECK(ok.pid() > 0);
        const int code = co_await ok.wait();
        CHECK(code == 0);
        auto three = co_await coring::create_subprocess_exec(args("sh", "-c", "exit 3"));
        const int c3 = co_await three.wait();
        CHECK(c3 == 3);
    }());
}

TEST_CASE("process - returncode is empty until wait reaps the child, then its exit code", "[process]") {
    coring::run([]() -> coring::task<> {
        auto ok = co_await coring::create_subprocess_exec(args("true"));
        CHECK_FALSE(ok.returncode().has_value());
        (void)co_await ok.wait();
        CHECK(ok.returncode() == 0);
    }());
}

TEST_CASE("process - wait on a reaped child returns its code again", "[process]") {
    coring::run([]() -> coring::task<> {
        auto ok = co_await coring::create_subprocess_exec(args("true"));
        (void)co_await ok.wait();
        const int again = co_await ok.wait();  // known: at once
        CHECK(again == 0);
    }());
}

TEST_CASE("process - a child waited for leaves no descriptor and no zombie", "[process]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto ok = co_await coring::create_subprocess_exec(args("true"));
        (void)co_await ok.wait();
    }()));
}

TEST_CASE("process - a program that does not exist: ENOENT with its errno", "[process]") {
    coring::run([]() -> coring::task<> {
        const int fds_before = count_open_fds();
        try {
            (void)co_await coring::create_subprocess_exec(args("coring-no-such-program"), {.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::error_code(ENOENT, std::system_category()));
            CHECK(std::string(e.what()).find("create_subprocess_exec(coring-no-such-program)") == 0);
        }
        CHECK(count_open_fds() == fds_before);  // the pipes were closed
        CHECK_FALSE(has_unreaped_child());
    }());
}

TEST_CASE("process - stdout as a pipe carries what the child writes to its stdout", "[process]") {
    coring::run([]() -> coring::task<> {
        auto p = co_await start_out_err_exit_7();
        std::array<std::byte, 64> buf{};
        const std::size_t n = co_await p.stdout_pipe().read_full(buf);
        CHECK(text(std::span(buf).first(n)) == "out\n");
        const int code = co_await p.wait();
        CHECK(code == 7);
    }());
}

TEST_CASE("process - stderr as a pipe carries what the child writes to its stderr", "[process]") {
    coring::run([]() -> coring::task<> {
        auto p = co_await start_out_err_exit_7();
        std::array<std::byte, 64> buf{};
        const std::size_t m = co_await p.stderr_pipe().read_full(buf);
        CHECK(text(std::span(buf).first(m)) == "err\n");
        (void)co_await p.wait();
    }());
}

TEST_CASE("process - a stream left inherited has no pipe", "[process]") {
    coring::run([]() -> coring::task<> {
        auto p = co_await start_out_err_exit_7();
        CHECK_FALSE(p.stdin_pipe().is_open());
        (void)co_await p.wait();
    }());
}

TEST_CASE("process - communicate feeds stdin and returns stdout and stderr", "[process]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("sort", "-r"), {.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
        auto [out, err] = co_await p.communicate("b\na\nc\n");
        CHECK(out == "c\nb\na\n");
        CHECK(err.empty());
        CHECK(p.returncode() == 0);
    }()));
}

TEST_CASE("process - communicate moves large amounts both ways at once", "[process]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        // A sequential write-then-read would deadlock on the full pipes.
        std::string big;
        for (int i = 0; i < 200000; ++i) big += "line " + std::to_string(i) + "\n";
        auto cat = co_await coring::create_subprocess_exec(args("cat"), {.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
        auto r = co_await cat.communicate(big);
        CHECK(r.stdout_data.size() == big.size());
        CHECK(r.stdout_data == big);
    }()));
}

TEST_CASE("process - stderr to_stdout merges it into the stdout that communicate returns", "[process]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto merged = co_await coring::create_subprocess_exec(args("sh", "-c", "echo one; echo two >&2"),
                                                              {.std_out = coring::stdio::pipe, .std_err = coring::stdio::to_stdout});
        auto m = co_await merged.communicate();
        CHECK(m.stdout_data == "one\ntwo\n");
    }()));
}

TEST_CASE("process - communicate ignores EPIPE from a child that does not read its input", "[process]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        // As asyncio does.
        auto deaf = co_await coring::create_subprocess_exec(args("true"), {.std_in = coring::stdio::pipe});
        auto d = co_await deaf.communicate(std::string(1 << 20, 'x'));
        CHECK(d.stdout_data.empty());
        CHECK(deaf.returncode() == 0);
    }()));
}

TEST_CASE("process - stdin from devnull reads as empty", "[process]") {
    coring::run([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("cat"), {.std_in = coring::stdio::devnull, .std_out = coring::stdio::pipe});
        auto r = co_await p.communicate();
        CHECK(r.stdout_data.empty());
        CHECK(p.returncode() == 0);
    }());
}

TEST_CASE("process - env replaces the child's environment", "[process]") {
    coring::run([]() -> coring::task<> {
        const std::vector<std::string> env = args("CORING_VAR=set", "PATH=/usr/bin:/bin");
        auto p = co_await coring::create_subprocess_exec(args("sh", "-c", "echo \"$CORING_VAR\""), {.std_out = coring::stdio::pipe, .env = &env});
        auto r = co_await p.communicate();
        CHECK(r.stdout_data == "set\n");
    }());
}

TEST_CASE("process - cwd sets the child's working directory", "[process]") {
    coring::run([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("sh", "-c", "pwd"), {.std_out = coring::stdio::pipe, .cwd = "/tmp"});
        auto r = co_await p.communicate();
        CHECK(r.stdout_data == "/tmp\n");
    }());
}

TEST_CASE("process - kill ends the child with SIGKILL: returncode -SIGKILL", "[process]") {
    coring::run([]() -> coring::task<> {
        auto a = co_await start_sleeper();
        a.kill();
        const int ca = co_await a.wait();
        CHECK(ca == -SIGKILL);
    }());
}

TEST_CASE("process - terminate ends the child with SIGTERM: returncode -SIGTERM", "[process]") {
    coring::run([]() -> coring::task<> {
        auto b = co_await start_sleeper();
        b.terminate();
        const int cb = co_await b.wait();
        CHECK(cb == -SIGTERM);
    }());
}

TEST_CASE("process - send_signal delivers the signal: returncode is minus it", "[process]") {
    coring::run([]() -> coring::task<> {
        auto c = co_await start_sleeper();
        c.send_signal(SIGUSR1);
        const int cc = co_await c.wait();
        CHECK(cc == -SIGUSR1);
    }());
}

TEST_CASE("process - kill after the child was reaped does nothing", "[process]") {
    coring::run([]() -> coring::task<> {
        auto c = co_await start_sleeper();
        c.send_signal(SIGUSR1);
        const int cc = co_await c.wait();
        REQUIRE(cc == -SIGUSR1);
        c.kill();
        CHECK(c.returncode() == -SIGUSR1);
        CHECK_FALSE(has_unreaped_child());
    }());
}

TEST_CASE("process - the child's signal state is reset", "[process]") {
    coring::run([]() -> coring::task<> {
        // We ignore SIGPIPE (above) and the loop may block signals; the child starts clean.
        auto p = co_await coring::create_subprocess_exec(args("sh", "-c", "grep -E '^Sig(Blk|Ign)' /proc/self/status"), {.std_out = coring::stdio::pipe});
        auto r = co_await p.communicate();
        CHECK(r.stdout_data.find("SigBlk:\t0000000000000000") != std::string::npos);
        // SIGPIPE is signal 13: bit 12 of SigIgn.
        const auto ign = r.stdout_data.find("SigIgn:\t");
        REQUIRE(ign != std::string::npos);
        const unsigned long long ignored = std::stoull(r.stdout_data.substr(ign + 8, 16), nullptr, 16);
        CHECK((ignored & (1ull << (SIGPIPE - 1))) == 0);
    }());
}

TEST_CASE("process - only 0, 1 and 2 are inherited", "[process]") {
    coring::run([]() -> coring::task<> {
        const int leaky = ::open("/dev/null", O_RDONLY);  // no O_CLOEXEC on purpose
        REQUIRE(leaky >= 0);
        auto p = co_await coring::create_subprocess_exec(args("ls", "/proc/self/fd"), {.std_out = coring::stdio::pipe});
        auto r = co_await p.communicate();
        // ls sees 0, 1, 2 and the descriptor of the directory it reads.
        int count = 0;
        for (char ch : r.stdout_data) count += ch == '\n';
        CHECK(count <= 4);
        if (leaky > 3) CHECK(r.stdout_data.find(std::to_string(leaky) + "\n") == std::string::npos);
        ::close(leaky);
    }());
}

TEST_CASE("process - cancelling a task blocked reading a pipe: prompt, buffer not written after", "[process][cancel]") {
    coring::run([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("sh", "-c", "read line; echo \"$line\""),
                                                         {.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
        std::array<std::byte, 32> buffer{};
        buffer.fill(std::byte{0x5a});
        auto reader = [](coring::process& proc, std::span<std::byte> buf) -> coring::task<std::size_t> { co_return co_await proc.stdout_pipe().read(buf); };
        auto h = coring::create_task(reader(p, buffer));
        co_await coring::sleep(5ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 1000);
        co_await p.stdin_pipe().write_all("echoed\n");  // the child writes to stdout now
        const int code = co_await p.wait();
        CHECK(code == 0);
        CHECK(buffer[0] == std::byte{0x5a});
        std::array<std::byte, 32> other{};
        const std::size_t n = co_await p.stdout_pipe().read_full(other);
        CHECK(text(std::span(other).first(n)) == "echoed\n");
    }());
}

TEST_CASE("process - cancelling wait leaves no helper running", "[process][cancel]") {
    coring::run([]() -> coring::task<> {
        auto p = co_await start_sleeper({.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
        auto waiter = [](coring::process& proc) -> coring::task<int> { co_return co_await proc.wait(); };
        auto w = coring::create_task(waiter(p));
        co_await coring::sleep(5ms);
        w.cancel();
        const bool wait_cancelled = co_await coring_test::throws<coring::cancelled_error>(w);
        CHECK(wait_cancelled);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).unfinished_tasks() == 1);  // only this test's task
        p.kill();
        const int code = co_await p.wait();
        CHECK(code == -SIGKILL);
    }());
}

TEST_CASE("process - cancelling communicate leaves no helper running", "[process][cancel]") {
    coring::run([]() -> coring::task<> {
        auto p = co_await start_sleeper({.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
        auto talker = [](coring::process& proc) -> coring::task<> { (void)co_await proc.communicate("x"); };
        auto t = coring::create_task(talker(p));
        co_await coring::sleep(5ms);
        t.cancel();
        const bool communicate_cancelled = co_await coring_test::throws<coring::cancelled_error>(t);
        CHECK(communicate_cancelled);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).unfinished_tasks() == 1);  // only this test's task
        p.kill();
        const int code = co_await p.wait();
        CHECK(code == -SIGKILL);
    }());
}

TEST_CASE("process - destroying a running process kills and reaps it", "[process]") {
    coring::run([]() -> coring::task<> {
        const int fds_before = count_open_fds();
        pid_t pid = 0;
        {
            auto p = co_await coring::create_subprocess_exec(args("sleep", "30"), {.std_out = coring::stdio::pipe});
            pid = p.pid();
            auto moved = std::move(p);
            CHECK(moved.pid() == pid);
        }
        CHECK(::kill(pid, 0) == -1);  // gone: no zombie left either
        CHECK_FALSE(has_unreaped_child());
        CHECK(count_open_fds() == fds_before);
    }());
}

// ------------------------------------------------------------------------- pipes as streams

TEST_CASE("process - stdout_reader: readline on the child's output, line by line, then EOF", "[process][stream]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("sh", "-c", "printf 'one\\ntwo\\n'; sleep 0.05; printf 'three'"),
                                                         {.std_out = coring::stdio::pipe});
        coring::stream_reader& out = p.stdout_reader();
        CHECK_FALSE(p.stdout_pipe().is_open());  // the stream took the pipe over
        std::vector<std::string> lines;
        for (;;) {
            std::string line = co_await out.readline();
            if (line.empty()) break;
            lines.push_back(std::move(line));
        }
        CHECK(lines == std::vector<std::string>{"one\n", "two\n", "three"});
        CHECK(out.at_eof());
        const int code = co_await p.wait();
        CHECK(code == 0);
    }()));
}

TEST_CASE("process - stdin_writer and stdout_reader: a conversation with cat, then EOF", "[process][stream]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto cat = co_await coring::create_subprocess_exec(args("cat"), {.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
        coring::stream_writer& in = cat.stdin_writer();
        coring::stream_reader& out = cat.stdout_reader();
        for (int i = 0; i < 100; ++i) {
            const std::string line = "ping " + std::to_string(i) + "\n";
            in.write(line);
            co_await in.drain();
            const std::string echoed = co_await out.readline();
            REQUIRE(echoed == line);
        }
        in.write_eof();  // closes the pipe: cat sees its end, and ends
        const std::string rest = co_await out.read();
        CHECK(rest.empty());
        CHECK(out.at_eof());
        const int code = co_await cat.wait();
        CHECK(code == 0);
    }()));
}

TEST_CASE("process - 8 MiB through cat by stream, writing and reading at once", "[process][stream]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto cat = co_await coring::create_subprocess_exec(args("cat"), {.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
        const std::string data = coring_test::pattern(0, 8 << 20);
        auto feed = [](coring::stream_writer& in, const std::string& bytes) -> coring::task<> {
            for (std::size_t at = 0; at < bytes.size(); at += 100'000) {
                in.write(std::string_view(bytes).substr(at, 100'000));
                co_await in.drain();  // flow control: the pipe holds 64 KiB, the writer 64 KiB
                CHECK(in.buffered() <= 100'000 + 64 * 1024);
            }
            in.close();
            co_await in.wait_closed();
        };
        auto feeder = coring::create_task(feed(cat.stdin_writer(), data));
        const std::string echoed = co_await cat.stdout_reader().readexactly(data.size());
        co_await feeder;
        CHECK(echoed == data);
        const std::string rest = co_await cat.stdout_reader().read();
        CHECK(rest.empty());
        const int code = co_await cat.wait();
        CHECK(code == 0);
    }()));
}

TEST_CASE("process - stderr_reader: readuntil on the child's stderr", "[process][stream]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("sh", "-c", "printf 'warn;fail;' >&2; exit 2"), {.std_err = coring::stdio::pipe});
        const std::string first = co_await p.stderr_reader().readuntil(";");
        const std::string second = co_await p.stderr_reader().readuntil(";");
        CHECK(first == "warn;");
        CHECK(second == "fail;");
        const bool ended = co_await coring_test::throws<coring::incomplete_read>(p.stderr_reader().readuntil(";"));
        CHECK(ended);
        const int code = co_await p.wait();
        CHECK(code == 2);
    }()));
}

TEST_CASE("process - communicate after a readline returns the rest, read-ahead bytes included", "[process][stream]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("sh", "-c", "read x; printf 'a\\nb\\nc\\n'; echo \"$x\" >&2"),
                                                         {.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe, .std_err = coring::stdio::pipe});
        p.stdin_writer().write("go\n");
        const std::string first = co_await p.stdout_reader().readline();
        CHECK(first == "a\n");
        // The reader has read ahead (the whole output is one write), and communicate sees it.
        const auto result = co_await p.communicate();
        CHECK(result.stdout_data == "b\nc\n");
        CHECK(result.stderr_data == "go\n");
        CHECK(p.returncode() == 0);
    }()));
}

TEST_CASE("process - the limit applies to readline on the child's output", "[process][stream]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("sh", "-c", "printf '0123456789abcdefXYZ\\nok\\n'"),
                                                         {.std_out = coring::stdio::pipe, .limit = 16});
        CHECK(p.stdout_reader().limit() == 16);
        const bool overrun = co_await coring_test::throws<coring::limit_overrun>(p.stdout_reader().readline());
        CHECK(overrun);
        const std::string next = co_await p.stdout_reader().readline();
        CHECK(next == "ok\n");
        (void)co_await p.wait();
    }()));
}

TEST_CASE("process - writing to a child that has exited: drain throws EPIPE naming the pipe", "[process][stream]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("true"), {.std_in = coring::stdio::pipe});
        (void)co_await p.wait();
        coring::stream_writer& in = p.stdin_writer();
        in.write(std::string(1 << 20, 'x'));
        std::string message;
        int error = 0;
        try {
            co_await in.drain();
        } catch (const std::system_error& e) {
            error = e.code().value();
            message = e.what();
        }
        CHECK(error == EPIPE);
        CHECK(message.find("write to the stdin pipe of process " + std::to_string(p.pid())) != std::string::npos);
    }()));
}

TEST_CASE("process - a stream of a stream that is no pipe is an invalid_state_error", "[process][stream]") {
    coring::run([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("true"), {.std_out = coring::stdio::devnull});
        CHECK_THROWS_AS(p.stdout_reader(), coring::invalid_state_error);
        CHECK_THROWS_AS(p.stderr_reader(), coring::invalid_state_error);
        CHECK_THROWS_AS(p.stdin_writer(), coring::invalid_state_error);
        (void)co_await p.wait();
    }());
}

TEST_CASE("process - cancelling a readline on the child's output: prompt, and no byte lost", "[process][stream][cancel]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("sh", "-c", "read line; echo \"$line\""),
                                                         {.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
        auto reader = [](coring::process& proc) -> coring::task<std::string> { co_return co_await proc.stdout_reader().readline(); };
        auto h = coring::create_task(reader(p));
        co_await coring::sleep(5ms);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 1000);
        p.stdin_writer().write("echoed\n");
        const std::string line = co_await p.stdout_reader().readline();
        CHECK(line == "echoed\n");
        const int code = co_await p.wait();
        CHECK(code == 0);
    }()));
}

TEST_CASE("process - sendfile into a child's stdin: read and written in chunks, in order", "[process][stream][sendfile]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        const std::string data = coring_test::pattern(3, 3 << 20);
        co_await coring::write_file(dir.file("in.bin"), data);
        coring::file f = co_await coring::file::open(dir.file("in.bin"));
        auto cat = co_await coring::create_subprocess_exec(args("cat"), {.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
        auto reading = coring::create_task([](coring::process& p) -> coring::task<std::string> { co_return co_await p.stdout_reader().read(); }(cat));
        cat.stdin_writer().write("<");
        const std::uint64_t sent = co_await cat.stdin_writer().sendfile(f, 1000);
        cat.stdin_writer().write(">");
        cat.stdin_writer().close();
        const std::string echoed = co_await reading;
        CHECK(sent == data.size() - 1000);
        CHECK(echoed == "<" + data.substr(1000) + ">");
        (void)co_await cat.wait();
        co_await f.close();
    }()));
}

TEST_CASE("process - a moved process keeps its streams", "[process][stream]") {
    coring::run(leaving_nothing_behind([]() -> coring::task<> {
        auto p = co_await coring::create_subprocess_exec(args("sh", "-c", "echo first; echo second"), {.std_out = coring::stdio::pipe});
        const std::string first = co_await p.stdout_reader().readline();
        coring::process moved = std::move(p);
        const std::string second = co_await moved.stdout_reader().readline();
        const std::string rest = co_await moved.stdout_reader().read();
        CHECK(first == "first\n");
        CHECK(second == "second\n");
        CHECK(rest.empty());
        (void)co_await moved.wait();
    }()));
}

// ------------------------------------------------------------------------- create_subprocess_shell

TEST_CASE("create_subprocess_shell - a pipeline with redirections, through /bin/sh -c", "[process][shell]") {
    coring::run([]() -> coring::task<> {
        coring::subprocess_options options;
        options.std_in = coring::stdio::pipe;
        options.std_out = coring::stdio::pipe;
        options.std_err = coring::stdio::pipe;
        coring::process p = co_await coring::create_subprocess_shell("sort -r | tr a-z A-Z; echo done >&2; exit 3", options);
        const auto result = co_await p.communicate("b\na\nc\n");
        CHECK(result.stdout_data == "C\nB\nA\n");
        CHECK(result.stderr_data == "done\n");
        CHECK(p.returncode() == 3);
    }());
}

TEST_CASE("create_subprocess_shell - a command the shell cannot find: exit status 127", "[process][shell]") {
    coring::run([]() -> coring::task<> {
        coring::subprocess_options options;
        options.std_err = coring::stdio::devnull;
        coring::process p = co_await coring::create_subprocess_shell("coring-no-such-command-here", options);
        const int code = co_await p.wait();
        CHECK(code == 127);
    }());
}
