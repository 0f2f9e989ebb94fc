#pragma once
// A real nginx (Debian's package) for tests that need an HTTP server other than coring's: one
// process (no master, no daemon) in a temporary folder, on free ports of 127.0.0.1, with the
// `server { ... }` blocks the test gives, stopped (and its folder removed) when the fixture is
// destroyed. The configuration may use the placeholders @PORT0@, @PORT1@, ... (free ports
// chosen here) and @DIR@ (the fixture's folder, where the test puts its files).
//
//   coring_test::nginx_server nginx(2, "server { listen 127.0.0.1:@PORT0@; root @DIR@/www; }");
//   ... http://127.0.0.1:<nginx.port(0)>/
//
// Without nginx the constructor throws nginx_missing: a test binary reports SKIP (77) then.

#include "support/os.hpp"
#include "support/ports.hpp"

#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

namespace coring_test {

struct nginx_missing : std::runtime_error {
    nginx_missing() : std::runtime_error("nginx is not installed (Debian package nginx)") {}
};

/// The path of the nginx binary, or "" if there is none.
inline std::string nginx_program() {
    for (const char* candidate : {"/usr/sbin/nginx", "/usr/bin/nginx", "/usr/local/sbin/nginx"})
        if (::access(candidate, X_OK) == 0) return candidate;
    return {};
}

class nginx_server {
public:
    nginx_server(std::size_t ports, const std::string& servers) {
        const std::string program = nginx_program();
        if (program.empty()) throw nginx_missing();
        for (int attempt = 0;; ++attempt) {
            m_ports.clear();
            for (std::size_t i = 0; i < ports; ++i) m_ports.push_back(free_port());
            write_config(servers);
            if (start(program)) return;
            if (attempt == 4) throw std::runtime_error("nginx did not start: " + log());
        }
    }
    nginx_server(const nginx_server&) = delete;
    nginx_server& operator=(const nginx_server&) = delete;
    ~nginx_server() { stop(); }

    [[nodiscard]] std::uint16_t port(std::size_t i) const { return m_ports.at(i); }
    [[nodiscard]] const std::string& dir() const noexcept { return m_dir.path; }
    /// nginx's error log (for a failure's message).
    [[nodiscard]] std::string log() const {
        std::ifstream in(m_dir.file("error.log"));
        return std::string(std::istreambuf_iterator<char>(in), {});
    }
    /// A file in the fixture's folder, as written so far (an access log, say).
    [[nodiscard]] std::string read(const std::string& name) const {
        std::ifstream in(m_dir.file(name));
        return std::string(std::istreambuf_iterator<char>(in), {});
    }

private:
    void write_config(const std::string& servers) {
        std::string body = servers;
        for (std::size_t i = 0; i < m_ports.size(); ++i) replace_all(body, "@PORT" + std::to_string(i) + "@", std::to_string(m_ports[i]));
        replace_all(body, "@DIR@", m_dir.path);
        const std::string& d = m_dir.path;
        std::ofstream out(m_dir.file("nginx.conf"));
        out << "daemon off;\nmaster_process off;\nworker_processes 1;\npid " << d << "/nginx.pid;\nerror_log " << d
            << "/error.log warn;\nevents { worker_connections 256; }\nhttp {\n    access_log off;\n    client_body_temp_path " << d
            << "/body;\n    proxy_temp_path " << d << "/proxy;\n    fastcgi_temp_path " << d << "/fastcgi;\n    uwsgi_temp_path " << d
            << "/uwsgi;\n    scgi_temp_path " << d << "/scgi;\n    default_type application/octet-stream;\n"
            << body << "\n}\n";
    }

    // True once every port accepts connections; false if nginx exited (a port was taken).
    bool start(const std::string& program) {
        const std::string prefix = m_dir.path + "/";
        const std::string config = m_dir.file("nginx.conf");
        const std::string errors = m_dir.file("error.log");
        m_pid = ::fork();
        if (m_pid < 0) throw std::system_error(errno, std::generic_category(), "fork");
        if (m_pid == 0) {
            ::prctl(PR_SET_PDEATHSIG, SIGKILL);  // a test killed (a timeout) takes its nginx with it
            ::execl(program.c_str(), program.c_str(), "-e", errors.c_str(), "-p", prefix.c_str(), "-c", config.c_str(), static_cast<char*>(nullptr));
            ::_exit(127);
        }
        const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
        while (std::chrono::steady_clock::now() < deadline) {
            int status = 0;
            if (::waitpid(m_pid, &status, WNOHANG) == m_pid) {
                m_pid = -1;
                return false;
            }
            bool all = true;
            for (std::uint16_t p : m_ports) all = all && accepts_connections(p);
            if (all) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        stop();
        return false;
    }

    void stop() noexcept {
        if (m_pid <= 0) return;
        ::kill(m_pid, SIGTERM);
        int status = 0;
        ::waitpid(m_pid, &status, 0);
        m_pid = -1;
    }

    static void replace_all(std::string& text, const std::string& from, const std::string& to) {
        for (std::size_t at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size())) text.replace(at, from.size(), to);
    }

    temp_dir m_dir;
    std::vector<std::uint16_t> m_ports;
    pid_t m_pid = -1;
};

}  // namespace coring_test
