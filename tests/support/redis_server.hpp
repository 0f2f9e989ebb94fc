#pragma once
// A real redis-server (Debian's package) for the Redis bridge's tests: one process in a temporary
// folder, listening on a free port of 127.0.0.1 and on a Unix socket in that folder, with no
// persistence, stopped (and its folder removed) when the fixture is destroyed.
//
//   coring_test::redis_server redis;           // throws redis_missing without redis-server
//   ... coring::redis::connect("127.0.0.1", redis.port()) or connect_unix(redis.socket_path())
//   redis.kill();                              // SIGKILL, for the tests of a server that dies
//
// redis-server cannot listen on port 0 and tell which port it got, so the fixture asks the
// kernel for a free port (bind 127.0.0.1:0, read it, close), passes it, and tries again with
// another port if redis-server could not bind it (another process took it in between).

#include "support/os.hpp"
#include "support/ports.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace coring_test {

struct redis_missing : std::runtime_error {
    redis_missing() : std::runtime_error("redis-server is not installed (Debian package redis-server)") {}
};

namespace redis_support {

/// The path of redis-server, or "" if there is none.
inline std::string program() {
    for (const char* candidate : {"/usr/bin/redis-server", "/usr/local/bin/redis-server", "/usr/sbin/redis-server"})
        if (::access(candidate, X_OK) == 0) return candidate;
    return {};
}

/// A port of 127.0.0.1 that nothing listens on now (support/ports.hpp).
inline std::uint16_t free_port() { return coring_test::free_port(); }

/// True once the server answers PING with +PONG on 127.0.0.1:port (blocking, for the fixture).
inline bool answers_ping(std::uint16_t port) {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = htons(port);
    bool ok = false;
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0) {
        const timeval limit{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
        const char ping[] = "PING\r\n";
        char answer[16] = {};
        if (::send(fd, ping, sizeof ping - 1, MSG_NOSIGNAL) == static_cast<ssize_t>(sizeof ping - 1)) {
            const ssize_t n = ::recv(fd, answer, sizeof answer - 1, 0);
            ok = n >= 7 && std::string(answer, 7) == "+PONG\r\n";
        }
    }
    ::close(fd);
    return ok;
}

}  // namespace redis_support

class redis_server {
public:
    /// Starts redis-server; `extra` lines are appended to its configuration file.
    explicit redis_server(const std::vector<std::string>& extra = {}) {
        const std::string program = redis_support::program();
        if (program.empty()) throw redis_missing();
        for (int attempt = 0;; ++attempt) {
            m_port = redis_support::free_port();
            write_config(extra);
            if (start(program)) return;
            if (attempt == 4) throw std::runtime_error("redis-server did not start: " + log());
        }
    }
    redis_server(const redis_server&) = delete;
    redis_server& operator=(const redis_server&) = delete;
    ~redis_server() { stop(); }

    [[nodiscard]] std::uint16_t port() const noexcept { return m_port; }
    [[nodiscard]] std::string socket_path() const { return m_dir.file("redis.sock"); }
    [[nodiscard]] const std::string& dir() const noexcept { return m_dir.path; }
    [[nodiscard]] pid_t pid() const noexcept { return m_pid; }
    [[nodiscard]] bool running() const noexcept { return m_pid > 0; }
    /// redis-server's log (for a failure's message).
    [[nodiscard]] std::string log() const {
        std::ifstream in(m_dir.file("redis.log"));
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

    /// Kills the server at once (SIGKILL: no goodbye to its clients) and reaps it.
    void kill() noexcept { stop(SIGKILL); }

    /// Starts it again on the same port and socket (after kill()).
    void restart() {
        stop();
        if (!start(redis_support::program())) throw std::runtime_error("redis-server did not start again: " + log());
    }

    /// Stops the server (SIGTERM by default) and reaps it.
    void stop(int sig = SIGTERM) noexcept {
        if (m_pid <= 0) return;
        ::kill(m_pid, sig);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_pid = -1;
    }

private:
    void write_config(const std::vector<std::string>& extra) {
        std::ofstream out(m_dir.file("redis.conf"));
        out << "port " << m_port << "\nbind 127.0.0.1\nunixsocket " << socket_path() << "\nunixsocketperm 700\ndir " << m_dir.path
            << "\nlogfile " << m_dir.file("redis.log") << "\ndaemonize no\nsave \"\"\nappendonly no\nprotected-mode no\n";
        for (const std::string& line : extra) out << line << "\n";
    }

    // True once the server answers PING; false if it exited (its port was taken).
    bool start(const std::string& program) {
        const std::string config = m_dir.file("redis.conf");
        m_pid = ::fork();
        if (m_pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
        if (m_pid == 0) {
            // It dies with the test (a crashed test leaves no server behind), and does not hold
            // the test's output open (a pipe reading it would wait for the server too).
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);
            const int null = ::open("/dev/null", O_RDWR | O_CLOEXEC);
            if (null >= 0) {
                ::dup2(null, STDIN_FILENO);
                ::dup2(null, STDOUT_FILENO);
                ::dup2(null, STDERR_FILENO);
            }
            ::execl(program.c_str(), program.c_str(), config.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
                m_pid = -1;
                return false;
            }
            struct stat info {};
            if (redis_support::answers_ping(m_port) && ::stat(socket_path().c_str(), &info) == 0) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        }
        stop(SIGKILL);
        return false;
    }

    temp_dir m_dir;
    std::uint16_t m_port = 0;
    pid_t m_pid = -1;
};

}  // namespace coring_test
