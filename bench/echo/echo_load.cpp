// echo_load: the load generator of bench/echo/compare.sh. It opens N connections to an echo
// server and plays ping-pong on each: send one message (64 bytes by default, ending in "\n" so
// that a line-based server echoes it too), wait until all of it came back, send the next. One
// thread, epoll, non-blocking sockets; pin it to another core than the server (taskset).
//
//   echo_load --port P [--host 127.0.0.1] [--connections 1] [--seconds 5] [--warmup 1]
//             [--size 64] [--server-pid PID]
//
// After the warm-up it counts round trips for --seconds. With --server-pid it also reads the
// server's CPU time (every thread's, from /proc/PID/task/*/schedstat, in nanoseconds: user and
// system time, the kernel's work for the server's io_uring included) at the start and the end of
// that window, and reports the server's CPU time per round trip, and its user and system parts
// (from /proc/PID/stat, in clock ticks). Output, one line:
//   connections=50 round_trips=812345 seconds=5.000 rate=162469 server_cpu_s=4.98 cpu_per_rt_ns=6130
//   user_per_rt_ns=170.0 system_per_rt_ns=5960.0
#include "../support/server_cpu.hpp"

#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

struct connection {
    int fd = -1;
    std::size_t received = 0;  // bytes of the current message that came back
};

[[noreturn]] void die(const char* what) {
    std::fprintf(stderr, "echo_load: %s: %s\n", what, std::strerror(errno));
    std::exit(1);
}

using bench::cpu_ns;
using bench::user_system_ns;

void send_message(const connection& c, const std::string& message) {
    // A 64-byte message always fits an empty socket buffer: one send.
    const ssize_t n = ::send(c.fd, message.data(), message.size(), MSG_NOSIGNAL);
    if (n != static_cast<ssize_t>(message.size())) die("send");
}

}  // namespace

int main(int argc, char** argv) {
    std::string host = "127.0.0.1";
    int port = 0;
    int connections = 1;
    double seconds = 5;
    double warmup = 1;
    std::size_t size = 64;
    int server_pid = 0;
    for (int i = 1; i < argc; i += 2) {
        const std::string arg = argv[i];
        const char* value = i + 1 < argc ? argv[i + 1] : nullptr;
        if (value == nullptr) {
            std::fprintf(stderr, "echo_load: %s needs a value\n", arg.c_str());
            return 2;
        }
        if (arg == "--host") host = value;
        else if (arg == "--port") port = std::atoi(value);
        else if (arg == "--connections") connections = std::atoi(value);
        else if (arg == "--seconds") seconds = std::atof(value);
        else if (arg == "--warmup") warmup = std::atof(value);
        else if (arg == "--size") size = static_cast<std::size_t>(std::atol(value));
        else if (arg == "--server-pid") server_pid = std::atoi(value);
        else {
            std::fprintf(stderr, "usage: echo_load --port P [--host H] [--connections N] [--seconds S] [--warmup W] [--size B] [--server-pid PID]\n");
            return 2;
        }
    }
    if (port <= 0 || connections <= 0 || size == 0) {
        std::fprintf(stderr, "echo_load: --port, --connections and --size must be positive\n");
        return 2;
    }
    std::string message(size, 'x');
    message.back() = '\n';

    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<std::uint16_t>(port));
    if (::inet_pton(AF_INET, host.c_str(), &address.sin_addr) != 1) {
        std::fprintf(stderr, "echo_load: --host must be an IPv4 address\n");
        return 2;
    }
    const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
    if (epoll < 0) die("epoll_create1");
    std::vector<connection> conns(static_cast<std::size_t>(connections));
    for (std::size_t i = 0; i < conns.size(); ++i) {
        connection& c = conns[i];
        c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (c.fd < 0) die("socket");
        if (::connect(c.fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) die("connect");
        const int one = 1;
        ::setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        ::fcntl(c.fd, F_SETFL, ::fcntl(c.fd, F_GETFL) | O_NONBLOCK);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = i;
        if (::epoll_ctl(epoll, EPOLL_CTL_ADD, c.fd, &ev) != 0) die("epoll_ctl");
    }
    for (const connection& c : conns) send_message(c, message);

    const auto start = clock_type::now();
    const auto measure_from = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(warmup));
    const auto measure_until = measure_from + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(seconds));
    bool measuring = false;
    std::uint64_t round_trips = 0;
    std::uint64_t cpu_start = 0;
    std::pair<std::uint64_t, std::uint64_t> split_start{};
    clock_type::time_point t0;
    std::vector<epoll_event> events(conns.size());
    std::vector<char> buffer(65536);
    for (;;) {
        const int n = ::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), 1000);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        if (n == 0) {
            std::fprintf(stderr, "echo_load: no answer from the server for a second\n");
            return 1;
        }
        for (int k = 0; k < n; ++k) {
            connection& c = conns[events[static_cast<std::size_t>(k)].data.u64];
            for (;;) {
                const ssize_t got = ::recv(c.fd, buffer.data(), buffer.size(), 0);
                if (got < 0) {
                    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
                    if (errno == EINTR) continue;
                    die("recv");
                }
                if (got == 0) {
                    std::fprintf(stderr, "echo_load: the server closed a connection\n");
                    return 1;
                }
                c.received += static_cast<std::size_t>(got);
                if (c.received >= size) {
                    c.received -= size;
                    if (measuring) ++round_trips;
                    send_message(c, message);
                }
            }
        }
        const auto now = clock_type::now();
        if (!measuring && now >= measure_from) {
            measuring = true;
            t0 = now;
            cpu_start = cpu_ns(server_pid);
            split_start = user_system_ns(server_pid);
        } else if (measuring && now >= measure_until) {
            const std::uint64_t cpu_end = cpu_ns(server_pid);
            const auto split_end = user_system_ns(server_pid);
            const double elapsed = std::chrono::duration<double>(now - t0).count();
            const double cpu = static_cast<double>(cpu_end - cpu_start) / 1e9;
            const double rts = round_trips > 0 ? static_cast<double>(round_trips) : 1.0;
            std::printf("connections=%d round_trips=%llu seconds=%.3f rate=%.0f server_cpu_s=%.4f cpu_per_rt_ns=%.1f user_per_rt_ns=%.1f "
                        "system_per_rt_ns=%.1f\n",
                        connections, static_cast<unsigned long long>(round_trips), elapsed, static_cast<double>(round_trips) / elapsed, cpu,
                        cpu * 1e9 / rts, static_cast<double>(split_end.first - split_start.first) / rts,
                        static_cast<double>(split_end.second - split_start.second) / rts);
            break;
        }
    }
    for (const connection& c : conns) ::close(c.fd);
    ::close(epoll);
    return 0;
}
