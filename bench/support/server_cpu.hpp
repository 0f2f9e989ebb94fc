#pragma once
// The CPU time a server process spent, read from /proc, for the load generators of
// bench/echo and bench/tls (echo_load, tls_load), which report it per round trip.

#include <dirent.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

namespace bench {

/// CPU time of every thread of `pid`, in nanoseconds (first field of each task's schedstat:
/// user and system time, the kernel's work for the process's io_uring included). 0 for pid 0.
inline std::uint64_t cpu_ns(int pid) {
    if (pid <= 0) return 0;
    const std::string dir = "/proc/" + std::to_string(pid) + "/task";
    std::uint64_t total = 0;
    if (DIR* d = ::opendir(dir.c_str())) {
        while (dirent* e = ::readdir(d)) {
            if (e->d_name[0] == '.') continue;
            const std::string path = dir + "/" + e->d_name + "/schedstat";
            if (FILE* f = std::fopen(path.c_str(), "r")) {
                unsigned long long ns = 0;
                if (std::fscanf(f, "%llu", &ns) == 1) total += ns;
                std::fclose(f);
            }
        }
        ::closedir(d);
    }
    return total;
}

/// User and system CPU time of `pid` (all threads), in nanoseconds, from /proc/PID/stat (clock
/// ticks: 10 ms resolution, fine over seconds). {0, 0} for pid 0.
inline std::pair<std::uint64_t, std::uint64_t> user_system_ns(int pid) {
    if (pid <= 0) return {0, 0};
    FILE* f = std::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
    if (f == nullptr) return {0, 0};
    char text[1024] = {};
    const std::size_t n = std::fread(text, 1, sizeof text - 1, f);
    std::fclose(f);
    // Fields after the command name (which may hold spaces, hence the last ')'): state is
    // field 3, utime 14, stime 15.
    const char* p = std::strrchr(text, ')');
    if (p == nullptr || static_cast<std::size_t>(p - text) >= n) return {0, 0};
    unsigned long long utime = 0, stime = 0;
    if (std::sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2) return {0, 0};
    const double ns_per_tick = 1e9 / static_cast<double>(::sysconf(_SC_CLK_TCK));
    return {static_cast<std::uint64_t>(static_cast<double>(utime) * ns_per_tick), static_cast<std::uint64_t>(static_cast<double>(stime) * ns_per_tick)};
}

}  // namespace bench
