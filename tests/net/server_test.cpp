// Tests of coring/net/server.hpp: start_server with real clients on 127.0.0.1.
#include <coring/net/server.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/child_process.hpp"
#include "support/test_access.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;

namespace {

using coring_test::count_open_fds;
using coring_test::pattern;

// Turns a testing switch on for a scope, and off again also when a REQUIRE fails.
template <void (*Set)(bool) noexcept>
struct testing_switch {
    testing_switch() { Set(true); }
    ~testing_switch() { Set(false); }
    testing_switch(const testing_switch&) = delete;
    testing_switch& operator=(const testing_switch&) = delete;
};
using no_buffer_rings = testing_switch<&coring_test::test_access::force_no_buffer_rings>;
using single_shot_recv = testing_switch<&coring_test::test_access::force_single_shot_recv>;



// Echoes whatever arrives, in chunks, until EOF.
coring::task<> echo_chunks(coring::stream_reader reader, coring::stream_writer writer) {
    for (;;) {
        std::string chunk = co_await reader.read(65536);
        if (chunk.empty()) break;
        writer.write(chunk);
        co_await writer.drain();
    }
    writer.close();
    co_await writer.wait_closed();
}

// Echoes lines until EOF (what echo_server --streams does).
coring::task<> echo_lines(coring::stream_reader reader, coring::stream_writer writer) {
    for (;;) {
        std::string line = co_await reader.readline();
        if (line.empty()) break;
        writer.write(line);
        co_await writer.drain();
    }
}

// Echoes one line, but throws on "boom\n".
coring::task<> echo_or_boom(coring::stream_reader reader, coring::stream_writer writer) {
    std::string line = co_await reader.readline();
    if (line == "boom\n") throw std::runtime_error("the handler failed");
    writer.write(line);
}

// Sends "boom\n" to an echo_or_boom server and reads until the server closes the connection.
coring::task<std::string> make_the_handler_throw(std::uint16_t port) {
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port);
    writer.write("boom\n");
    co_return co_await reader.read();
}

// Sends `data` through a new connection and reads the echo back, concurrently.
coring::task<bool> echo_through(std::uint16_t port, std::string data, coring::stream_options options = {}) {
    auto [reader, writer] = co_await coring::open_connection("127.0.0.1", port, options);
    auto sender = [](coring::stream_writer& w, const std::string& d) -> coring::task<> {
        for (std::size_t at = 0; at < d.size(); at += 40'000) {
            w.write(std::string_view(d).substr(at, 40'000));
            co_await w.drain();
        }
        w.write_eof();
    };
    auto sending = coring::create_task(sender(writer, data));
    const std::string back = co_await reader.read();
    co_await sending;
    writer.close();
    co_await writer.wait_closed();
    co_return back == data;
}

// A blocking client for the forked-server test: plain system calls, with a receive timeout.
struct blocking_client {
    int fd = -1;
    explicit blocking_client(std::uint16_t port) {
        fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_port = htons(port);
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    }
    ~blocking_client() { close(); }
    void close() {
        if (fd >= 0) ::close(std::exchange(fd, -1));
    }
    // Sends `line` and waits up to `timeout` for it to come back.
    bool echoes(const std::string& line, std::chrono::milliseconds timeout) const {
        ssize_t sent = -1;
        do sent = ::send(fd, line.data(), line.size(), MSG_NOSIGNAL);
        while (sent < 0 && errno == EINTR);
        if (sent != static_cast<ssize_t>(line.size())) return false;
        return receives(line, timeout);
    }
    // A blocking recv with SO_RCVTIMEO is not restarted after an interruption: it fails with
    // EINTR. That happens here without any signal: when an io_uring closes (each earlier test's
    // loop), the kernel finishes the teardown in the background and then interrupts this thread's
    // blocking call. So EINTR means "wait for the rest of the time".
    bool receives(const std::string& expected, std::chrono::milliseconds timeout) const {
        const auto deadline = std::chrono::steady_clock::now() + timeout;
        std::string got;
        char buf[256];
        while (got.size() < expected.size()) {
            const auto left = std::chrono::duration_cast<std::chrono::microseconds>(deadline - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            timeval tv{};
            tv.tv_sec = static_cast<time_t>(left.count() / 1'000'000);
            tv.tv_usec = static_cast<suseconds_t>(left.count() % 1'000'000);
            ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) return false;
            got.append(buf, static_cast<std::size_t>(n));
        }
        return got == expected;
    }
};

}  // namespace

TEST_CASE("server - start_server on port 0, echo with open_connection, close, wait_closed", "[server]") {
    coring::run([]() -> coring::task<> {
        coring::server srv = co_await coring::start_server(echo_lines, "127.0.0.1", 0);
        CHECK(srv.port() != 0);
        CHECK(srv.is_serving());
        REQUIRE(srv.addresses().size() == 1);
        CHECK(srv.addresses()[0].to_string() == "127.0.0.1:" + std::to_string(srv.port()));
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", srv.port());
        writer.write("hello\nworld\n");
        co_await writer.drain();
        const std::string a = co_await reader.readline();
        const std::string b = co_await reader.readline();
        CHECK(a == "hello\n");
        CHECK(b == "world\n");
        CHECK(srv.connections() == 1);
        writer.write_eof();
        const std::string end = co_await reader.read();
        CHECK(end.empty());  // the handler returned: the server closed the connection
        srv.close();
        CHECK_FALSE(srv.is_serving());
        co_await srv.wait_closed();
        CHECK(srv.connections() == 0);
    }());
}

TEST_CASE("server - echo of 1 MiB through 100 concurrent connections", "[server][load]") {
    coring::run([]() -> coring::task<> {
        coring::server srv = co_await coring::start_server(echo_chunks, "127.0.0.1", 0);
        REQUIRE(srv.buffer_ring());
        std::vector<coring::task_handle<bool>> clients;
        for (int i = 0; i < 100; ++i) clients.push_back(coring::create_task(echo_through(srv.port(), pattern(static_cast<std::size_t>(i) * 977, 1 << 20))));
        int ok = 0;
        for (auto& c : clients) {
            const bool same = co_await c;
            ok += same ? 1 : 0;
        }
        CHECK(ok == 100);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("server - ENOBUFS: a tiny shared ring runs dry under bursts, nothing lost or duplicated", "[server][enobufs]") {
    coring::run([]() -> coring::task<> {
        coring::server_options options;
        options.buffer_count = 2;
        options.stream.recv_buffer_size = 64;
        coring::server srv = co_await coring::start_server(echo_chunks, "127.0.0.1", 0, options);
        REQUIRE(srv.buffer_ring());
        CHECK(srv.buffer_ring()->count() == 2);
        std::vector<coring::task_handle<bool>> clients;
        for (int i = 0; i < 8; ++i) clients.push_back(coring::create_task(echo_through(srv.port(), pattern(static_cast<std::size_t>(i) * 31, 200'000))));
        int ok = 0;
        for (auto& c : clients) {
            const bool same = co_await c;
            ok += same ? 1 : 0;
        }
        CHECK(ok == 8);
        CHECK(srv.buffer_ring()->enobufs_count() > 0);
        CHECK(srv.buffer_ring()->available() == srv.buffer_ring()->count());
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("server - plain recv where the kernel has no buffer rings", "[server]") {
    const no_buffer_rings scope;
    coring::run([]() -> coring::task<> {
        coring::server srv = co_await coring::start_server(echo_chunks, "127.0.0.1", 0);
        CHECK_FALSE(srv.buffer_ring());
        const bool same = co_await echo_through(srv.port(), pattern(1, 300'000));
        CHECK(same);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("server - single-shot receives where the kernel has no multishot recv", "[server]") {
    const single_shot_recv scope;
    coring::run([]() -> coring::task<> {
        coring::server srv = co_await coring::start_server(echo_chunks, "127.0.0.1", 0);
        const coring::loop_stats before = coring::get_running_loop().stats();
        const bool same = co_await echo_through(srv.port(), pattern(2, 300'000));
        CHECK(same);
        srv.close();
        co_await srv.wait_closed();
        // Only single shots: every CQE answers an SQE of its own (both ends receive through
        // buffer rings, so a multishot recv anywhere would bring many CQEs for one SQE).
        const coring::loop_stats after = coring::get_running_loop().stats();
        CHECK(after.completions - before.completions <= after.submissions - before.submissions);
    }());
}

namespace {

// A server whose 20 clients are connected, each served by a handler that echoes lines and
// counts in `cancelled_handlers` the cancellations it sees.
struct server_with_clients {
    coring::server server;
    std::vector<std::pair<coring::stream_reader, coring::stream_writer>> clients;
};

coring::task<server_with_clients> start_server_with_clients(int& cancelled_handlers) {
    auto handler = [&cancelled_handlers](coring::stream_reader reader, coring::stream_writer writer) -> coring::task<> {
        bool cancelled = false;
        try {
            for (;;) {
                std::string line = co_await reader.readline();
                if (line.empty()) break;
                writer.write(line);
            }
        } catch (const coring::cancelled_error&) {
            cancelled = true;
        }
        if (cancelled) {
            ++cancelled_handlers;
            throw coring::cancelled_error{};
        }
    };
    coring::server server = co_await coring::start_server(handler, "127.0.0.1", 0);
    server_with_clients s{std::move(server), {}};
    for (int i = 0; i < 20; ++i) {
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", s.server.port());
        writer.write("hi\n");
        const std::string line = co_await reader.readline();
        CHECK(line == "hi\n");
        s.clients.emplace_back(std::move(reader), std::move(writer));
    }
    co_return s;
}

// Reads each client to its end, then closes it; true if every one ended without more data.
coring::task<bool> every_client_sees_the_end(server_with_clients& s) {
    bool all_ended = true;
    for (auto& [reader, writer] : s.clients) {
        const std::string rest = co_await reader.read();
        all_ended = all_ended && rest.empty();
        writer.close();
        co_await writer.wait_closed();
    }
    s.clients.clear();
    co_return all_ended;
}

}  // namespace

TEST_CASE("server - close() cancels every handler", "[server][shutdown]") {
    coring::run([]() -> coring::task<> {
        int cancelled_handlers = 0;
        server_with_clients s = co_await start_server_with_clients(cancelled_handlers);
        CHECK(s.server.connections() == 20);
        s.server.close();
        co_await s.server.wait_closed();
        CHECK(cancelled_handlers == 20);
        CHECK(s.server.connections() == 0);
        (void)co_await every_client_sees_the_end(s);
    }());
}

TEST_CASE("server - close() closes the listener: a new connection is refused", "[server][shutdown]") {
    coring::run([]() -> coring::task<> {
        int cancelled_handlers = 0;
        server_with_clients s = co_await start_server_with_clients(cancelled_handlers);
        const std::uint16_t port = s.server.port();
        s.server.close();
        co_await s.server.wait_closed();
        const bool refused = co_await coring_test::throws<std::system_error>(coring::open_connection("127.0.0.1", port));
        CHECK(refused);
        (void)co_await every_client_sees_the_end(s);
    }());
}

TEST_CASE("server - close() ends every client's connection", "[server][shutdown]") {
    coring::run([]() -> coring::task<> {
        int cancelled_handlers = 0;
        server_with_clients s = co_await start_server_with_clients(cancelled_handlers);
        s.server.close();
        co_await s.server.wait_closed();
        const bool all_ended = co_await every_client_sees_the_end(s);
        CHECK(all_ended);
    }());
}

TEST_CASE("server - close() leaves no descriptor and no frame behind", "[server][shutdown]") {
    const std::size_t frames_before = coring_test::live_frames();
    coring::run([]() -> coring::task<> {
        const int fds_before = count_open_fds();
        {
            int cancelled_handlers = 0;
            server_with_clients s = co_await start_server_with_clients(cancelled_handlers);
            s.server.close();
            co_await s.server.wait_closed();
            (void)co_await every_client_sees_the_end(s);
        }
        CHECK(count_open_fds() == fds_before);
    }());
    CHECK(coring_test::live_frames() == frames_before);
}

TEST_CASE("server - serve_forever returns once the server is closed", "[server]") {
    coring::run([]() -> coring::task<> {
        coring::server srv = co_await coring::start_server(echo_lines, "127.0.0.1", 0);
        auto closer = [](coring::server& s) -> coring::task<> {
            co_await coring::sleep(10ms);
            s.close();
        };
        auto closing = coring::create_task(closer(srv));
        co_await srv.serve_forever();
        co_await closing;
        CHECK_FALSE(srv.is_serving());
        const bool again = co_await coring_test::throws<coring::invalid_state_error>(srv.serve_forever());
        CHECK(again);
    }());
}

TEST_CASE("server - cancelling serve_forever closes the server", "[server]") {
    coring::run([]() -> coring::task<> {
        coring::server other = co_await coring::start_server(echo_lines, "127.0.0.1", 0);
        auto serving = coring::create_task(other.serve_forever());
        co_await coring::sleep(5ms);
        serving.cancel();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(serving);
        CHECK(cancelled);
        CHECK_FALSE(other.is_serving());
        co_await other.wait_closed();
    }());
}

TEST_CASE("server - a handler that throws is reported, and its connection closed", "[server]") {
    coring_test::captured_reports captured;
    coring::event_loop loop;
    captured.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        coring::server srv = co_await coring::start_server(echo_or_boom, "127.0.0.1", 0);
        const std::string rest = co_await make_the_handler_throw(srv.port());
        CHECK(rest.empty());
        srv.close();
        co_await srv.wait_closed();
    }());
    REQUIRE(captured.reports.size() == 1);
    CHECK(captured.reports[0].message == "Unhandled exception in client_connected_cb");
    CHECK(captured.reports[0].task_name.find("connection from 127.0.0.1:") == 0);
    CHECK(coring::detail::describe_exception(captured.reports[0].exception).find("the handler failed") != std::string::npos);
}

TEST_CASE("server - after a handler threw, the server serves the next connection", "[server]") {
    coring_test::captured_reports captured;  // the failure's report, kept off stderr
    coring::event_loop loop;
    captured.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        coring::server srv = co_await coring::start_server(echo_or_boom, "127.0.0.1", 0);
        (void)co_await make_the_handler_throw(srv.port());
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", srv.port());
        writer.write("fine\n");
        const std::string line = co_await reader.readline();
        CHECK(line == "fine\n");
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("server - a bind error names the address", "[server]") {
    coring::run([]() -> coring::task<> {
        coring::server first = co_await coring::start_server(echo_lines, "127.0.0.1", 0);
        int code = 0;
        std::string what;
        try {
            (void)co_await coring::start_server(echo_lines, "127.0.0.1", first.port());
        } catch (const std::system_error& e) {
            code = e.code().value();
            what = e.what();
        }
        CHECK(code == EADDRINUSE);
        CHECK(what.find("bind(127.0.0.1:" + std::to_string(first.port()) + ")") != std::string::npos);
        first.close();
        co_await first.wait_closed();
    }());
}

TEST_CASE("server - an empty host listens on every interface, all on one port", "[server]") {
    coring::run([]() -> coring::task<> {
        coring::server everywhere = co_await coring::start_server(echo_lines, "", 0);
        REQUIRE_FALSE(everywhere.addresses().empty());
        for (const coring::address& a : everywhere.addresses()) CHECK(a.port() == everywhere.port());
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", everywhere.port());
        writer.write("x\n");
        const std::string line = co_await reader.readline();
        CHECK(line == "x\n");
        writer.close();
        everywhere.close();
        co_await everywhere.wait_closed();
    }());
}

TEST_CASE("server - Unix-domain server", "[server][unix]") {
    char dir_template[] = "/tmp/coring_server_XXXXXX";
    REQUIRE(::mkdtemp(dir_template) != nullptr);
    const std::string path = std::string(dir_template) + "/echo.sock";
    coring::run([](std::string where) -> coring::task<> {
        coring::server srv = co_await coring::start_unix_server(echo_lines, where);
        CHECK(srv.addresses()[0].is_unix());
        auto [reader, writer] = co_await coring::open_unix_connection(where);
        writer.write("over a unix socket\n");
        const std::string line = co_await reader.readline();
        CHECK(line == "over a unix socket\n");
        writer.close();
        srv.close();
        co_await srv.wait_closed();
    }(path));
    CHECK(::access(path.c_str(), F_OK) != 0);  // the socket file is removed at close
    ::rmdir(dir_template);
}

TEST_CASE("server - EMFILE on accept: the server backs off and keeps serving once descriptors are free", "[server][emfile]") {
    // The server runs in a forked child whose RLIMIT_NOFILE leaves room for three connections;
    // this process is the client.
    int port_pipe[2];
    int output_pipe[2];
    REQUIRE(::pipe(port_pipe) == 0);
    REQUIRE(::pipe(output_pipe) == 0);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(port_pipe[0]);
        ::close(output_pipe[0]);
        ::dup2(output_pipe[1], STDERR_FILENO);
        int status = 1;
        try {
            coring::run([](int report_fd) -> coring::task<> {
                coring::server_options options;
                options.accept_retry_min = 20ms;
                options.accept_retry_max = 200ms;
                coring::server srv = co_await coring::start_server(echo_lines, "127.0.0.1", 0, options);
                coring::get_running_loop().add_signal_handler(SIGTERM, [&srv] { srv.close(); });
                // Sanitizer runtimes need descriptors for some checks: UBSan's vptr check probes
                // memory through a pipe the first time it meets a type. Let it meet the types of
                // the accept error's report now, while descriptors are free.
                try {
                    throw std::system_error(EMFILE, std::system_category(), "warm-up");
                } catch (const std::system_error& e) {
                    (void)e.code().message();
                    (void)coring::detail::describe_exception(std::current_exception());
                }
                // Room for three more descriptors: new descriptors take the lowest free numbers,
                // and the limit caps the numbers, so it goes right above the third free one
                // (report_fd is closed below, before anything can be accepted).
                int free_found = 0;
                int limit = 0;
                while (free_found < 3) {
                    if (limit == report_fd || (::fcntl(limit, F_GETFD) == -1 && errno == EBADF)) ++free_found;
                    ++limit;
                }
                const rlimit lowered{static_cast<rlim_t>(limit), static_cast<rlim_t>(limit)};
                if (::setrlimit(RLIMIT_NOFILE, &lowered) != 0) throw std::system_error(errno, std::system_category(), "setrlimit");
                const std::string port = std::to_string(srv.port()) + "\n";
                (void)!::write(report_fd, port.data(), port.size());
                ::close(report_fd);
                co_await srv.serve_forever();
            }(port_pipe[1]));
            status = 0;
        } catch (const std::exception& e) {
            std::fprintf(stderr, "child failed: %s\n", e.what());
        }
        std::fflush(nullptr);
        ::_exit(status);
    }
    ::close(port_pipe[1]);
    ::close(output_pipe[1]);
    char port_text[16] = {};
    REQUIRE(::read(port_pipe[0], port_text, sizeof port_text - 1) > 0);
    ::close(port_pipe[0]);
    const auto port = static_cast<std::uint16_t>(std::atoi(port_text));
    REQUIRE(port != 0);
    {
        std::vector<std::unique_ptr<blocking_client>> clients;
        for (int i = 0; i < 6; ++i) clients.push_back(std::make_unique<blocking_client>(port));
        // The first three are served; the others wait in the backlog while accept fails with EMFILE.
        for (int i = 0; i < 3; ++i) CHECK(clients[static_cast<std::size_t>(i)]->echoes("hello " + std::to_string(i) + "\n", 5000ms));
        for (int i = 3; i < 6; ++i) CHECK_FALSE(clients[static_cast<std::size_t>(i)]->echoes("waiting " + std::to_string(i) + "\n", 300ms));
        // Existing connections keep being served meanwhile.
        CHECK(clients[0]->echoes("still here\n", 5000ms));
        // Free three descriptors: the waiting clients are accepted and get their echo.
        for (int i = 0; i < 3; ++i) clients[static_cast<std::size_t>(i)]->close();
        for (int i = 3; i < 6; ++i) CHECK(clients[static_cast<std::size_t>(i)]->receives("waiting " + std::to_string(i) + "\n", 5000ms));
        for (int i = 3; i < 6; ++i) CHECK(clients[static_cast<std::size_t>(i)]->echoes("again\n", 5000ms));
    }
    ::kill(pid, SIGTERM);
    const std::string output = coring_test::read_until_eof(output_pipe[0]);
    ::close(output_pipe[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    INFO(output);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(output.find("Too many open files") != std::string::npos);
    // Reported once when an episode of failures starts and once when it ends, not once per retry
    // (accepting was retried many times during the second the clients waited; descriptors freed
    // one by one may make a second, short episode).
    const auto count = [&output](const std::string& what) {
        std::size_t n = 0;
        for (std::size_t at = output.find(what); at != std::string::npos; at = output.find(what, at + 1)) ++n;
        return n;
    };
    const std::size_t starts = count("failed (Too many open files)");
    const std::size_t ends = count("works again after");
    CHECK(starts >= 1);
    CHECK(starts <= 3);
    // Each episode that ended says so; the last may still be going on (the three clients that
    // were waiting fill the limit again once accepted).
    CHECK((ends == starts || ends + 1 == starts));
    CHECK(ends >= 1);  // the first ended when descriptors were freed, after several retries:
    CHECK(output.find("failed attempts over") != std::string::npos);
}

// ---------------------------------------------------------------------- abuse

TEST_CASE("server - max_connections: accepting pauses at the cap and resumes below it", "[server][abuse]") {
    coring::run([]() -> coring::task<> {
        coring::server_options options;
        options.max_connections = 2;
        coring::server srv = co_await coring::start_server(echo_lines, "127.0.0.1", 0, options);
        auto [r1, w1] = co_await coring::open_connection("127.0.0.1", srv.port());
        auto [r2, w2] = co_await coring::open_connection("127.0.0.1", srv.port());
        w1.write("one\n");
        w2.write("two\n");
        const std::string a = co_await r1.readline();
        const std::string b = co_await r2.readline();
        CHECK(a == "one\n");
        CHECK(b == "two\n");
        // The third connects (the kernel's backlog takes it) but is not accepted: no echo.
        auto [r3, w3] = co_await coring::open_connection("127.0.0.1", srv.port());
        w3.write("three\n");
        auto read_line = [](coring::stream_reader& r) -> coring::task<std::string> { co_return co_await r.readline(); };
        auto third = coring::create_task(read_line(r3));
        co_await coring::sleep(200ms);
        CHECK_FALSE(third.done());
        CHECK(srv.connections() == 2);
        // One leaves: the third is accepted and served, and the count stays at the cap.
        w1.close();
        co_await w1.wait_closed();
        const auto start = std::chrono::steady_clock::now();
        const std::string c = co_await third;
        CHECK(c == "three\n");
        CHECK(coring_test::ms_since(start) < 2000);
        CHECK(srv.connections() == 2);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("server - idle_timeout: silent clients are closed unreported, an active one is served", "[server][abuse][timeout]") {
    coring_test::captured_reports captured;
    coring::event_loop loop;
    captured.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        coring::server_options options;
        options.stream.idle_timeout = 300ms;
        coring::server srv = co_await coring::start_server(echo_lines, "127.0.0.1", 0, options);
        // 50 clients connect; each sends half a line and goes quiet (a slowloris attack).
        std::vector<coring::socket> silent;
        for (int i = 0; i < 50; ++i) {
            coring::socket s = co_await coring::socket::connect_to(coring::address::loopback_ipv4(srv.port()));
            co_await s.send_all("GET / HTTP/1.1");
            silent.push_back(std::move(s));
        }
        // One active client talks every 100 ms throughout.
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", srv.port());
        const auto start = std::chrono::steady_clock::now();
        int echoed = 0;
        while (coring_test::ms_since(start) < 900) {
            writer.write("ping\n");
            const std::string line = co_await reader.readline();
            if (line == "ping\n") ++echoed;
            co_await coring::sleep(100ms);
        }
        CHECK(echoed >= 8);
        // Every silent client was cut off: each sees the end of its connection.
        int ended = 0;
        for (coring::socket& s : silent) {
            char byte = 0;
            const std::size_t n = co_await s.recv(std::as_writable_bytes(std::span(&byte, 1)));
            if (n == 0) ++ended;
        }
        CHECK(ended == 50);
        CHECK(srv.connections() == 1);
        writer.close();
        co_await writer.wait_closed();
        srv.close();
        co_await srv.wait_closed();
    }());
    CHECK(captured.reports.empty());  // the handlers' ETIMEDOUT is any client's doing
}

TEST_CASE("server - idle_timeout in debug mode: the handler's error is reported", "[server][abuse][timeout]") {
    coring_test::captured_reports captured;
    coring::event_loop loop;
    loop.set_debug(true);
    captured.install(loop);
    loop.run_until_complete([]() -> coring::task<> {
        coring::server_options options;
        options.stream.idle_timeout = 100ms;
        coring::server srv = co_await coring::start_server(echo_lines, "127.0.0.1", 0, options);
        coring::socket s = co_await coring::socket::connect_to(coring::address::loopback_ipv4(srv.port()));
        char byte = 0;
        const std::size_t n = co_await s.recv(std::as_writable_bytes(std::span(&byte, 1)));
        CHECK(n == 0);
        srv.close();
        co_await srv.wait_closed();
    }());
    REQUIRE(captured.reports.size() == 1);
    CHECK(coring::detail::describe_exception(captured.reports[0].exception).find("timed out") != std::string::npos);
}

// Forbids io_uring_register for this process and its threads (EPERM), as some container
// seccomp profiles do while allowing io_uring_setup and io_uring_enter. Irreversible: call it in
// a forked child only.
bool forbid_io_uring_register() {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<std::uint32_t>(offsetof(seccomp_data, nr))),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_TSYNC, &program) == 0;
}

TEST_CASE("server - where io_uring_register is forbidden, connections receive with plain recv", "[server][degraded]") {
    auto [status, output] = coring_test::run_in_child([]() -> int {
        try {
            if (!forbid_io_uring_register()) throw std::system_error(errno, std::system_category(), "seccomp");
            coring::run([]() -> coring::task<> {
                coring::server srv = co_await coring::start_server(echo_lines, "127.0.0.1", 0);
                if (srv.buffer_ring()) throw std::runtime_error("a buffer ring was registered despite the filter");
                auto [reader, writer] = co_await coring::open_connection("127.0.0.1", srv.port());
                if (reader.uses_buffer_ring()) throw std::runtime_error("the client's stream uses a buffer ring");
                const std::string big = pattern(7, 32 << 10) + "\n";  // within the stream limit (64 KiB)
                writer.write(big);
                const std::string back = co_await reader.readuntil("\n");
                if (back != big) throw std::runtime_error("the echo differs");
                writer.close();
                co_await writer.wait_closed();
                srv.close();
                co_await srv.wait_closed();
            }());
            return 0;
        } catch (const std::exception& e) {
            std::printf("child failed: %s\n", e.what());
            return 1;
        }
    });
    INFO(output);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
}
