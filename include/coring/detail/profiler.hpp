#pragma once
// The recorder behind profile mode (loop_options::profile, CORING_PROFILE=1; the public face is
// profile.hpp). The scheduler tells it when a task's step begins and ends; it keeps, per group
// of tasks (a task's own name, or for unnamed tasks its creation site), the steps, their run
// time and the longest one, and the time the tasks spent suspended, by the kind of their wait
// (the ready_node::operations of the leaf awaiter a step ended in), kernel I/O also by opcode.
// Per loop it keeps the iterations, the time blocked in the kernel and how late timers fired.
//
// Clocks: a step's run time is real time (the steady clock), also on virtual time, where the
// loop's clock stands still while a step runs. Waits are measured on the loop's clock (virtual
// on virtual time: a sleep of an hour waits an hour there).
//
// Memory: one record per group, not per task. A task keeps where it is (its group, since when
// and on what it waits: profile_mark) in its state's extras, allocated on its first profiled
// step. The scheduler's instrumented step (state_base.hpp) connects the two.

#include <coring/clock.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/wait_kind.hpp>

#include <liburing.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace coring::detail {

/// What the profile knows of one group of tasks.
struct profile_totals {
    std::string name;
    std::uint64_t tasks = 0;
    std::uint64_t steps = 0;
    std::chrono::nanoseconds run_time{};
    std::chrono::nanoseconds longest_step{};
    std::array<std::chrono::nanoseconds, wait_kind_count> waited{};
    std::vector<std::chrono::nanoseconds> io_waited_by_opcode;  // indexed by io_uring opcode
};

/// What the profile knows of the loop.
struct loop_totals {
    std::uint64_t iterations = 0;
    std::chrono::nanoseconds time_in_kernel{};
    std::uint64_t timers_fired = 0;
    std::chrono::nanoseconds timer_lag_total{};
    std::chrono::nanoseconds timer_lag_max{};
};

/// Where a task is, for the profiler and the tracer: kept in its state's extras
/// (state_base.hpp).
struct profile_mark {
    profile_totals* group = nullptr;  // profile mode: null until the task's first step
    clock::time_point suspended_at{};
    int opcode = -1;  // of a kernel operation waited for, or -1
    wait_kind kind = wait_kind::other;
    bool waiting = false;
    // Tracing: the flow (create_task, a wake-up) that the task's next step finishes, or 0.
    std::uint64_t flow = 0;
    const char* flow_kind = nullptr;
};

/// The group of unnamed tasks created at one site: "amain (server.cpp:42)", the function
/// without its return type and parameters, the file without its directory.
inline std::string profile_group_name(const char* function, const char* file, unsigned line) {
    if (line == 0) return "(unknown creation site)";
    std::string_view name(function);
    if (const std::size_t paren = name.find('('); paren != std::string_view::npos) name = name.substr(0, paren);
    if (const std::size_t space = name.rfind(' '); space != std::string_view::npos) name = name.substr(space + 1);
    std::string_view base(file);
    if (const std::size_t slash = base.rfind('/'); slash != std::string_view::npos) base = base.substr(slash + 1);
    return std::string(name) + " (" + std::string(base) + ":" + std::to_string(line) + ")";
}

class profiler {
public:
    /// The group called `key` (a task's name, or its creation site), made on first use.
    profile_totals& group(std::string key) {
        auto [it, inserted] = m_groups.try_emplace(std::move(key));
        if (inserted) {
            it->second = std::make_unique<profile_totals>();
            it->second->name = it->first;
        }
        return *it->second;
    }

    /// A step of the task begins at `loop_now` (the loop's clock): the wait it ends is counted.
    void step_begins(profile_mark& mark, clock::time_point loop_now) noexcept {
        if (!mark.waiting) return;
        mark.waiting = false;
        const auto waited = std::chrono::duration_cast<std::chrono::nanoseconds>(loop_now - mark.suspended_at);
        profile_totals& g = *mark.group;
        g.waited[static_cast<unsigned>(mark.kind)] += waited;
        if (mark.kind == wait_kind::io && mark.opcode >= 0) {
            const auto opcode = static_cast<std::size_t>(mark.opcode);
            try {
                if (g.io_waited_by_opcode.size() <= opcode) g.io_waited_by_opcode.resize(opcode + 1);
                g.io_waited_by_opcode[opcode] += waited;
            } catch (...) {
                // Out of memory: the wait stays counted as I/O, without its opcode.
            }
        }
    }

    /// The step ran for `ran` (its own time: steps nested in it are not counted) and ended at
    /// `loop_now`, suspended in `slot` (null: not suspended on anything, or finished).
    void step_ends(profile_mark& mark, clock::duration ran, clock::time_point loop_now, const ready_node* slot, bool finished) noexcept {
        profile_totals& g = *mark.group;
        const auto own = std::chrono::duration_cast<std::chrono::nanoseconds>(ran);
        ++g.steps;
        g.run_time += own;
        g.longest_step = std::max(g.longest_step, own);
        if (finished) return;
        // Suspended without a slot (sleep(0), a frame scheduled by hand): a wait of kind other.
        mark.waiting = true;
        mark.suspended_at = loop_now;
        mark.kind = slot != nullptr ? slot->m_ops->kind : wait_kind::other;
        mark.opcode = slot != nullptr && slot->m_ops->io_opcode != nullptr ? slot->m_ops->io_opcode(slot) : -1;
    }

    /// A timer the loop took `lag` after its deadline.
    void timer_fired(clock::duration lag) noexcept {
        const auto late = std::chrono::duration_cast<std::chrono::nanoseconds>(std::max(lag, clock::duration::zero()));
        ++m_loop.timers_fired;
        m_loop.timer_lag_total += late;
        m_loop.timer_lag_max = std::max(m_loop.timer_lag_max, late);
    }

    /// The scheduler's own counters, copied in when a run ends and when the profile is read.
    void set_loop_counters(std::uint64_t iterations, std::chrono::nanoseconds time_in_kernel) noexcept {
        m_loop.iterations = iterations;
        m_loop.time_in_kernel = time_in_kernel;
    }

    [[nodiscard]] std::vector<profile_totals> groups() const {
        std::vector<profile_totals> out;
        out.reserve(m_groups.size());
        for (const auto& [key, g] : m_groups) out.push_back(*g);
        return out;
    }
    [[nodiscard]] const loop_totals& loop() const noexcept { return m_loop; }

private:
    std::unordered_map<std::string, std::unique_ptr<profile_totals>> m_groups;  // stable addresses
    loop_totals m_loop;
};

// "op 0" ... "op 255": the names of the opcodes io_opcode_name does not know, made at compile
// time (nothing to allocate, nothing destroyed at exit).
inline constexpr auto unnamed_opcodes = [] {
    std::array<std::array<char, 8>, 256> names{};
    for (unsigned op = 0; op < 256; ++op) {
        std::array<char, 8>& name = names[op];
        name = {'o', 'p', ' '};
        std::size_t at = 3;
        if (op >= 100) name[at++] = static_cast<char>('0' + op / 100);
        if (op >= 10) name[at++] = static_cast<char>('0' + op / 10 % 10);
        name[at] = static_cast<char>('0' + op % 10);
    }
    return names;
}();

/// The io_uring opcodes coring submits, by name ("op 42" for the others). A view of static
/// text: tracing names every kernel operation twice.
inline std::string_view io_opcode_name(int opcode) noexcept {
    switch (opcode) {
        case IORING_OP_NOP: return "nop";
        case IORING_OP_READV: return "readv";
        case IORING_OP_WRITEV: return "writev";
        case IORING_OP_FSYNC: return "fsync";
        case IORING_OP_READ_FIXED: return "read_fixed";
        case IORING_OP_WRITE_FIXED: return "write_fixed";
        case IORING_OP_POLL_ADD: return "poll_add";
        case IORING_OP_SENDMSG: return "sendmsg";
        case IORING_OP_RECVMSG: return "recvmsg";
        case IORING_OP_TIMEOUT: return "timeout";
        case IORING_OP_ACCEPT: return "accept";
        case IORING_OP_CONNECT: return "connect";
        case IORING_OP_FALLOCATE: return "fallocate";
        case IORING_OP_OPENAT: return "openat";
        case IORING_OP_CLOSE: return "close";
        case IORING_OP_STATX: return "statx";
        case IORING_OP_READ: return "read";
        case IORING_OP_WRITE: return "write";
        case IORING_OP_SEND: return "send";
        case IORING_OP_RECV: return "recv";
        case IORING_OP_SPLICE: return "splice";
        case IORING_OP_SHUTDOWN: return "shutdown";
        case IORING_OP_RENAMEAT: return "renameat";
        case IORING_OP_UNLINKAT: return "unlinkat";
        case IORING_OP_MKDIRAT: return "mkdirat";
        default:
            if (opcode < 0 || opcode > 255) return "op ?";
            return unnamed_opcodes[static_cast<std::size_t>(opcode)].data();
    }
}

/// "12.345 ms"
inline std::string format_milliseconds(std::chrono::nanoseconds d) {
    char text[32];
    std::snprintf(text, sizeof text, "%.3f ms", std::chrono::duration<double, std::milli>(d).count());
    return text;
}

/// The groups, the most run time first.
inline std::vector<profile_totals> sorted_groups(const profiler& p) {
    std::vector<profile_totals> groups = p.groups();
    std::stable_sort(groups.begin(), groups.end(), [](const profile_totals& a, const profile_totals& b) { return a.run_time > b.run_time; });
    return groups;
}

/// The profile as a table: the loop's line, then the `top` groups with the most run time.
inline void write_profile_report(std::ostream& out, const profiler& p, std::size_t top) {
    const std::vector<profile_totals> groups = sorted_groups(p);
    const loop_totals& loop = p.loop();
    std::uint64_t steps = 0;
    for (const profile_totals& g : groups) steps += g.steps;
    out << "coring profile: " << groups.size() << " task group(s), " << steps << " step(s); loop: " << loop.iterations << " iteration(s), "
        << format_milliseconds(loop.time_in_kernel) << " in the kernel, " << loop.timers_fired << " timer(s) fired";
    if (loop.timers_fired > 0)
        out << " (late by " << format_milliseconds(loop.timer_lag_total / static_cast<std::int64_t>(loop.timers_fired)) << " on average, "
            << format_milliseconds(loop.timer_lag_max) << " at most)";
    out << '\n';
    static constexpr const char* kinds[wait_kind_count] = {"other", "io", "timer", "lock", "queue", "task", "thread"};
    char line[512];
    std::snprintf(line, sizeof line, "%12s %8s %12s %6s  %-40s %s\n", "run time", "steps", "longest", "tasks", "waiting (by kind)", "name");
    out << line;
    for (std::size_t i = 0; i < groups.size() && i < top; ++i) {
        const profile_totals& g = groups[i];
        std::string waits;
        for (unsigned k = 0; k < wait_kind_count; ++k) {
            if (g.waited[k] == std::chrono::nanoseconds::zero()) continue;
            if (!waits.empty()) waits += ", ";
            waits += std::string(kinds[k]) + " " + format_milliseconds(g.waited[k]);
            if (k == static_cast<unsigned>(wait_kind::io)) {
                std::string by_opcode;
                for (std::size_t op = 0; op < g.io_waited_by_opcode.size(); ++op) {
                    if (g.io_waited_by_opcode[op] == std::chrono::nanoseconds::zero()) continue;
                    if (!by_opcode.empty()) by_opcode += ", ";
                    by_opcode += std::string(io_opcode_name(static_cast<int>(op))) + " " + format_milliseconds(g.io_waited_by_opcode[op]);
                }
                if (!by_opcode.empty()) waits += " (" + by_opcode + ")";
            }
        }
        if (waits.empty()) waits = "-";
        std::snprintf(line, sizeof line, "%12s %8llu %12s %6llu  %-40s ", format_milliseconds(g.run_time).c_str(), static_cast<unsigned long long>(g.steps),
                      format_milliseconds(g.longest_step).c_str(), static_cast<unsigned long long>(g.tasks), waits.c_str());
        out << line << g.name << '\n';
    }
    if (groups.size() > top) out << "(" << groups.size() - top << " more group(s))\n";
}

/// The profile of the last loop run on this thread (null if it was not in profile mode), for
/// profile_entries() once run() has returned (the loop, and its own reference, may be gone).
inline thread_local std::shared_ptr<profiler> t_last_profile;

}  // namespace coring::detail
