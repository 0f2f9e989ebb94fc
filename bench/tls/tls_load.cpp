// tls_load: the TLS load generator of bench/tls/compare.sh, the TLS twin of bench/echo/echo_load.
// One thread, epoll (level-triggered), non-blocking sockets, one OpenSSL SSL per connection on
// its socket (SSL_set_fd, read-ahead on). The client trusts --cafile and verifies the server's
// certificate for --servername (also sent as SNI). Pin it to another core than the server.
//
//   tls_load --port P --cafile CA [--host 127.0.0.1] [--servername localhost] [--mode echo]
//            [--connections 1] [--size 64] [--seconds 5] [--warmup 1] [--server-pid PID]
//            [--groups X25519]
//
// --mode echo: the connections do their handshakes, then play ping-pong: send one message of
// --size bytes (size - 1 'x' and a "\n", one SSL_write, so one TLS record up to 16 KiB; the
// newline lets a line-based server echo it too), wait until all of it came back, send the next. Each echo is
// checked: exactly size bytes, the only "\n" at the end (so a broken server cannot look fast).
// Output, one line (the keys of echo_load, and what was negotiated):
//   mode=echo connections=50 size=1024 round_trips=812345 seconds=5.000 rate=162469 server_cpu_s=4.98
//   cpu_per_rt_ns=6130.0 user_per_rt_ns=170.0 system_per_rt_ns=5960.0 version=TLSv1.3
//   cipher=TLS_AES_256_GCM_SHA384 group=x25519
//
// --mode handshake: each connection loops: TCP connect, a full TLS handshake, one echo of a
// --size-byte message (the server finished its side), close_notify both ways, close; then again
// with a new socket and a new SSL. No session is ever offered (the client's session cache is
// off and every SSL is fresh): every handshake is a full one, whatever tickets the server sends.
// The key exchange is restricted to --groups (X25519 by default; the client chooses, so both
// servers use the same group). Output:
//   mode=handshake connections=50 handshakes=21000 seconds=5.000 rate=4200 server_cpu_s=...
//   cpu_per_handshake_ns=... user_per_handshake_ns=... system_per_handshake_ns=... version=...
//
// Server CPU time is measured as echo_load does: every thread's schedstat (user + system, ns)
// at the start and end of the measured window, and the user/system split from /proc/PID/stat.
#include "../support/server_cpu.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

enum class phase { connecting, handshaking, writing, reading, closing };

struct connection {
    int fd = -1;
    SSL* ssl = nullptr;
    phase at = phase::connecting;
    std::size_t received = 0;  // bytes of the current message that came back
    std::uint32_t interest = 0;  // the epoll events asked for
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "tls_load: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

[[noreturn]] void die_tls(const char* what, SSL* ssl, int result) {
    const int saved = errno;
    std::fprintf(stderr, "tls_load: %s", what);
    if (ssl != nullptr) {
        const int e = SSL_get_error(ssl, result);
        std::fprintf(stderr, ": SSL error %d", e);
        if (e == SSL_ERROR_SYSCALL) std::fprintf(stderr, " (%s)", saved != 0 ? std::strerror(saved) : "the server closed the connection");
        const long verify = SSL_get_verify_result(ssl);
        if (verify != X509_V_OK) std::fprintf(stderr, ", certificate: %s", X509_verify_cert_error_string(verify));
    }
    while (const unsigned long err = ERR_get_error()) {
        char text[256];
        ERR_error_string_n(err, text, sizeof text);
        std::fprintf(stderr, ", %s", text);
    }
    std::fprintf(stderr, "\n");
    std::exit(1);
}

using bench::cpu_ns;
using bench::user_system_ns;

struct settings {
    std::string host = "127.0.0.1";
    int port = 0;
    std::string cafile;
    std::string servername = "localhost";
    std::string groups = "X25519";
    bool handshake_mode = false;
    int connections = 1;
    std::size_t size = 64;
    double seconds = 5;
    double warmup = 1;
    int server_pid = 0;
};

class load {
public:
    explicit load(const settings& s) : m_s(s), m_message(s.size, 'x'), m_buffer(64 * 1024) {
        m_message.back() = '\n';
        m_address.sin_family = AF_INET;
        m_address.sin_port = htons(static_cast<std::uint16_t>(s.port));
        if (::inet_pton(AF_INET, s.host.c_str(), &m_address.sin_addr) != 1) {
            std::fprintf(stderr, "tls_load: --host must be an IPv4 address\n");
            std::exit(2);
        }
        m_ctx = SSL_CTX_new(TLS_client_method());
        if (m_ctx == nullptr) die_tls("SSL_CTX_new", nullptr, 0);
        SSL_CTX_set_min_proto_version(m_ctx, TLS1_3_VERSION);  // the servers allow 1.2; the benchmark is about 1.3
        if (SSL_CTX_load_verify_locations(m_ctx, s.cafile.c_str(), nullptr) != 1) {
            std::fprintf(stderr, "tls_load: cannot load the CA file %s\n", s.cafile.c_str());
            std::exit(2);
        }
        SSL_CTX_set_verify(m_ctx, SSL_VERIFY_PEER, nullptr);
        if (SSL_CTX_set1_groups_list(m_ctx, s.groups.c_str()) != 1) {
            std::fprintf(stderr, "tls_load: unknown --groups %s\n", s.groups.c_str());
            std::exit(2);
        }
        // Never resume: no client session cache, and every connection gets a fresh SSL.
        SSL_CTX_set_session_cache_mode(m_ctx, SSL_SESS_CACHE_OFF);
        // One read() per socket's worth of records, not one for each record header and body.
        SSL_CTX_set_read_ahead(m_ctx, 1);
        m_epoll = ::epoll_create1(EPOLL_CLOEXEC);
        if (m_epoll < 0) die("epoll_create1");
        m_conns.resize(static_cast<std::size_t>(s.connections));
    }

    int run() {
        for (std::size_t i = 0; i < m_conns.size(); ++i) start(i);
        const auto begin = clock_type::now();
        const auto measure_from = begin + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(m_s.warmup));
        const auto measure_until = measure_from + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(m_s.seconds));
        std::uint64_t cpu_start = 0;
        std::pair<std::uint64_t, std::uint64_t> split_start{};
        clock_type::time_point t0;
        std::vector<epoll_event> events(m_conns.size());
        for (;;) {
            const int n = ::epoll_wait(m_epoll, events.data(), static_cast<int>(events.size()), 2000);
            if (n < 0) {
                if (errno == EINTR) continue;
                die("epoll_wait");
            }
            if (n == 0) {
                std::fprintf(stderr, "tls_load: no answer from the server for two seconds\n");
                return 1;
            }
            for (int k = 0; k < n; ++k) step(events[static_cast<std::size_t>(k)].data.u64);
            const auto now = clock_type::now();
            if (!m_measuring && now >= measure_from) {
                m_measuring = true;
                t0 = now;
                cpu_start = cpu_ns(m_s.server_pid);
                split_start = user_system_ns(m_s.server_pid);
            } else if (m_measuring && now >= measure_until) {
                const std::uint64_t cpu_end = cpu_ns(m_s.server_pid);
                const auto split_end = user_system_ns(m_s.server_pid);
                const double elapsed = std::chrono::duration<double>(now - t0).count();
                const double cpu = static_cast<double>(cpu_end - cpu_start) / 1e9;
                const double count = m_count > 0 ? static_cast<double>(m_count) : 1.0;
                const double user = static_cast<double>(split_end.first - split_start.first) / count;
                const double system = static_cast<double>(split_end.second - split_start.second) / count;
                const char* what = m_s.handshake_mode ? "handshake" : "rt";
                if (m_s.handshake_mode)
                    std::printf("mode=handshake connections=%d handshakes=%llu", m_s.connections, static_cast<unsigned long long>(m_count));
                else
                    std::printf("mode=echo connections=%d size=%zu round_trips=%llu", m_s.connections, m_s.size, static_cast<unsigned long long>(m_count));
                std::printf(" seconds=%.3f rate=%.0f server_cpu_s=%.4f cpu_per_%s_ns=%.1f user_per_%s_ns=%.1f system_per_%s_ns=%.1f version=%s cipher=%s group=%s\n",
                            elapsed, static_cast<double>(m_count) / elapsed, cpu, what, cpu * 1e9 / count, what, user, what, system,
                            m_version.c_str(), m_cipher.c_str(), m_group.c_str());
                break;
            }
        }
        // A close_notify where the handshake is over (not waited for), so that the servers see
        // clean ends rather than truncated streams; then the sockets close.
        for (connection& c : m_conns) {
            if (c.ssl != nullptr && SSL_is_init_finished(c.ssl)) SSL_shutdown(c.ssl);
            SSL_free(std::exchange(c.ssl, nullptr));
            if (c.fd >= 0) ::close(std::exchange(c.fd, -1));
        }
        return 0;
    }

    load(const load&) = delete;
    load& operator=(const load&) = delete;
    // Everything freed, so that a sanitizer build (the ctest smoke run under ASan) sees no leak.
    ~load() {
        for (connection& c : m_conns) {
            SSL_free(c.ssl);
            if (c.fd >= 0) ::close(c.fd);
        }
        SSL_CTX_free(m_ctx);
        if (m_epoll >= 0) ::close(m_epoll);
    }

private:
    // A new socket and its connect (usually done at once on loopback, else EINPROGRESS).
    void start(std::size_t i) {
        connection& c = m_conns[i];
        c = connection{};
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (c.fd < 0) die("socket");
        const int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&m_address), sizeof m_address) != 0 && errno != EINPROGRESS) die("connect");
        epoll_event ev{};
        ev.events = EPOLLOUT;
        ev.data.u64 = i;
        if (::epoll_ctl(m_epoll, EPOLL_CTL_ADD, c.fd, &ev) != 0) die("epoll_ctl");
        c.interest = EPOLLOUT;
    }

    void want(std::size_t i, std::uint32_t events) {
        connection& c = m_conns[i];
        if (c.interest == events) return;
        epoll_event ev{};
        ev.events = events;
        ev.data.u64 = i;
        if (::epoll_ctl(m_epoll, EPOLL_CTL_MOD, c.fd, &ev) != 0) die("epoll_ctl");
        c.interest = events;
    }

    // Waits for what OpenSSL asks for; false if it asked for nothing a socket gives (an error).
    bool wait_for(std::size_t i, int result) {
        const int e = SSL_get_error(m_conns[i].ssl, result);
        if (e == SSL_ERROR_WANT_READ) {
            want(i, EPOLLIN);
            return true;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            want(i, EPOLLOUT);
            return true;
        }
        return false;
    }

    // Checks an echoed chunk at message offset `at`: the only "\n" is the message's last byte.
    void check_echo(const char* data, std::size_t n, std::size_t at) const {
        const std::size_t end = m_s.size - 1;  // offset of the "\n"
        const void* newline = std::memchr(data, '\n', n);
        const bool expected = at <= end && end < at + n;
        if (at + n > m_s.size || (newline != nullptr) != expected ||
            (newline != nullptr && static_cast<std::size_t>(static_cast<const char*>(newline) - data) != end - at)) {
            std::fprintf(stderr, "tls_load: the server's echo differs from the message (%zu bytes at offset %zu of %zu)\n", n, at, m_s.size);
            std::exit(1);
        }
    }

    // Moves connection i on as far as it goes without waiting.
    void step(std::size_t i) {
        connection& c = m_conns[i];
        for (;;) {
            switch (c.at) {
            case phase::connecting: {
                int error = 0;
                socklen_t len = sizeof error;
                if (::getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &error, &len) != 0) die("getsockopt");
                if (error != 0) {
                    errno = error;
                    die("connect");
                }
                c.ssl = SSL_new(m_ctx);
                if (c.ssl == nullptr || SSL_set_fd(c.ssl, c.fd) != 1) die_tls("SSL_new", c.ssl, 0);
                SSL_set_tlsext_host_name(c.ssl, m_s.servername.c_str());
                SSL_set1_host(c.ssl, m_s.servername.c_str());
                SSL_set_connect_state(c.ssl);
                c.at = phase::handshaking;
                break;
            }
            case phase::handshaking: {
                ERR_clear_error();
                const int r = SSL_connect(c.ssl);
                if (r != 1) {
                    if (wait_for(i, r)) return;
                    die_tls("handshake", c.ssl, r);
                }
                if (m_cipher.empty()) {
                    m_version = SSL_get_version(c.ssl);
                    m_cipher = SSL_get_cipher_name(c.ssl);
                    const char* group = SSL_group_to_name(c.ssl, SSL_get_negotiated_group(c.ssl));
                    m_group = group != nullptr ? group : "unknown";
                }
                c.at = phase::writing;
                break;
            }
            case phase::writing: {
                ERR_clear_error();
                const int r = SSL_write(c.ssl, m_message.data(), static_cast<int>(m_message.size()));
                if (r <= 0) {
                    if (wait_for(i, r)) return;
                    die_tls("SSL_write", c.ssl, r);
                }
                c.received = 0;
                c.at = phase::reading;
                break;
            }
            case phase::reading: {
                ERR_clear_error();
                const int r = SSL_read(c.ssl, m_buffer.data(), static_cast<int>(m_buffer.size()));
                if (r <= 0) {
                    if (wait_for(i, r)) return;
                    die_tls("SSL_read (did the server close the connection?)", c.ssl, r);
                }
                check_echo(m_buffer.data(), static_cast<std::size_t>(r), c.received);
                c.received += static_cast<std::size_t>(r);
                if (c.received < m_s.size) break;
                if (m_s.handshake_mode) {
                    c.at = phase::closing;
                } else {
                    if (m_measuring) ++m_count;
                    c.at = phase::writing;
                }
                break;
            }
            case phase::closing: {
                // close_notify, then the server's (coring's stream closes with one; the Asio
                // server answers with async_shutdown); the server's end of the stream counts too.
                ERR_clear_error();
                const int r = SSL_shutdown(c.ssl);
                if (r == 0) break;  // ours is sent: call again to read the server's
                if (r < 0) {
                    if (wait_for(i, r)) return;
                    const int e = SSL_get_error(c.ssl, r);
                    if (e != SSL_ERROR_SYSCALL && e != SSL_ERROR_ZERO_RETURN) die_tls("SSL_shutdown", c.ssl, r);
                }
                SSL_free(c.ssl);
                ::close(c.fd);  // also leaves the epoll set
                if (m_measuring) ++m_count;
                start(i);
                return;  // wait for the connect
            }
            }
        }
    }

    const settings& m_s;
    std::string m_message;
    std::vector<char> m_buffer;
    sockaddr_in m_address{};
    SSL_CTX* m_ctx = nullptr;
    int m_epoll = -1;
    std::vector<connection> m_conns;
    bool m_measuring = false;
    std::uint64_t m_count = 0;  // round trips (echo) or completed connections (handshake)
    std::string m_version, m_cipher, m_group;
};

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: tls_load --port P --cafile CA [--host H] [--servername NAME] [--mode echo|handshake] [--connections N]\n"
                 "                [--size B] [--seconds S] [--warmup W] [--server-pid PID] [--groups LIST]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; i += 2) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) usage();
        const char* value = argv[i + 1];
        if (arg == "--host") s.host = value;
        else if (arg == "--port") s.port = std::atoi(value);
        else if (arg == "--cafile") s.cafile = value;
        else if (arg == "--servername") s.servername = value;
        else if (arg == "--groups") s.groups = value;
        else if (arg == "--mode") {
            const std::string mode = value;
            if (mode != "echo" && mode != "handshake") usage();
            s.handshake_mode = mode == "handshake";
        } else if (arg == "--connections") s.connections = std::atoi(value);
        else if (arg == "--size") s.size = static_cast<std::size_t>(std::atol(value));
        else if (arg == "--seconds") s.seconds = std::atof(value);
        else if (arg == "--warmup") s.warmup = std::atof(value);
        else if (arg == "--server-pid") s.server_pid = std::atoi(value);
        else usage();
    }
    // One SSL_write per message: a record holds at most 16 KiB of plaintext.
    if (s.port <= 0 || s.connections <= 0 || s.size == 0 || s.size > 16 * 1024 || s.cafile.empty()) {
        std::fprintf(stderr, "tls_load: --port, --connections and --cafile are needed; --size is 1 to 16384 bytes\n");
        return 2;
    }
    std::signal(SIGPIPE, SIG_IGN);  // a server that goes away shows as an error, not a signal
    load generator(s);
    return generator.run();
}
