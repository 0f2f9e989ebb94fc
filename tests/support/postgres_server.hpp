#pragma once
// A real PostgreSQL server for the postgres bridge's tests: postgres_server.sh (beside this
// header) runs initdb into a temporary folder and starts postgres on a free port of 127.0.0.1
// with its Unix socket in that folder (as the postgres user when the tests run as root); the
// fixture's destructor stops it and removes the folder. It takes a second or two: start one
// per test binary (a function-local static).
//
//   static coring_test::postgres_server server;        // throws postgres_missing: SKIP (77)
//   auto db = co_await coring::postgres::connect(server.conninfo());
//
// Without the server's programs (Debian package postgresql) the constructor throws
// postgres_missing.

#include <signal.h>
#include <stdlib.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>

namespace coring_test {

struct postgres_missing : std::runtime_error {
    postgres_missing() : std::runtime_error("the PostgreSQL server is not installed (Debian package postgresql)") {}
};

class postgres_server {
public:
    /// ssl: SSL on too (a self-signed certificate); conninfo() still asks for none.
    explicit postgres_server(bool ssl = false) {
        char tmpl[] = "/tmp/coring_pg_XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        m_dir = tmpl;
        const auto [status, output] = run("start " + m_dir + (ssl ? " --ssl" : "") + " 2>" + m_dir + ".err");
        if (status == 77) {
            ::rmdir(m_dir.c_str());
            std::remove((m_dir + ".err").c_str());
            throw postgres_missing();
        }
        const std::string errors = slurp(m_dir + ".err");
        std::remove((m_dir + ".err").c_str());
        if (status != 0) {
            stop();
            throw std::runtime_error("postgres_server.sh start failed (" + std::to_string(status) + "): " + output + errors);
        }
        m_port = static_cast<std::uint16_t>(std::stoi(output));
    }
    postgres_server(const postgres_server&) = delete;
    postgres_server& operator=(const postgres_server&) = delete;
    ~postgres_server() { stop(); }

    [[nodiscard]] std::uint16_t port() const noexcept { return m_port; }
    /// The folder of the server's Unix socket (and of its data, under data/).
    [[nodiscard]] const std::string& dir() const noexcept { return m_dir; }
    /// Over TCP to 127.0.0.1, as the superuser postgres, database postgres.
    [[nodiscard]] std::string conninfo() const { return "host=127.0.0.1 port=" + std::to_string(m_port) + " user=postgres dbname=postgres sslmode=disable"; }
    /// Over the Unix socket.
    [[nodiscard]] std::string unix_conninfo() const { return "host=" + m_dir + " port=" + std::to_string(m_port) + " user=postgres dbname=postgres"; }
    /// The postmaster's process id (the first line of postmaster.pid).
    [[nodiscard]] pid_t postmaster_pid() const {
        const std::string text = slurp(m_dir + "/data/postmaster.pid");
        return text.empty() ? -1 : static_cast<pid_t>(std::stol(text));
    }
    /// The server's log so far.
    [[nodiscard]] std::string log() const { return slurp(m_dir + "/server.log"); }

    /// The path of postgres_server.sh, which sits beside this header.
    static std::string script() {
        std::string here = __FILE__;
        const std::size_t slash = here.rfind('/');
        return (slash == std::string::npos ? std::string(".") : here.substr(0, slash)) + "/postgres_server.sh";
    }

private:
    // Runs the script with `arguments` (a shell command line); its exit status and stdout.
    static std::pair<int, std::string> run(const std::string& arguments) {
        const std::string command = "bash '" + script() + "' " + arguments;
        FILE* pipe = ::popen(command.c_str(), "r");
        if (pipe == nullptr) throw std::system_error(errno, std::generic_category(), "popen");
        std::string output;
        char buffer[256];
        for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0;) output.append(buffer, n);
        const int status = ::pclose(pipe);
        return {WIFEXITED(status) ? WEXITSTATUS(status) : 128, output};
    }
    static std::string slurp(const std::string& path) {
        std::ifstream in(path);
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
    void stop() noexcept {
        if (m_dir.empty()) return;
        try {
            (void)run("stop " + m_dir + " >/dev/null 2>&1");
        } catch (...) {
        }
        m_dir.clear();
    }

    std::string m_dir;
    std::uint16_t m_port = 0;
};

}  // namespace coring_test
