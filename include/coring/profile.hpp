#pragma once
// Profile mode: where each task spends its time, in asyncio's terms (docs/debugging.md,
// "Profiling").
//
//   coring::run(amain(), {.profile = true});     // or CORING_PROFILE=1 in the environment
//   for (const coring::profile_entry& e : coring::profile_entries())
//       std::cout << e.name << ": " << e.run_time.count() << " ns in " << e.steps << " steps, "
//                 << e.waited(coring::wait_kind::lock).count() << " ns waiting for locks\n";
//   coring::profile_report(std::cout);           // the same as a table
//
// A CPU profiler shows the loop; this shows the tasks. For each group of tasks (the tasks of one
// name, or for unnamed tasks of one creation site) it counts the tasks, their steps (a step is
// what runs between two suspensions), their run time and longest step, and the time they spent
// suspended by the kind of wait: kernel I/O (also by io_uring opcode), timers, locks (lock,
// event, condition, semaphore, barrier), queues (queue and channel), other tasks (awaiting a
// handle, gather, wait, wait_for, as_completed, shield, task groups), threads (to_thread,
// run_on), other. For the loop: iterations, time blocked in the kernel, and timers: how many
// fired and how late the loop took them. When the loop closes, the table goes to stderr.
//
// Clocks: run time is real time, also on virtual time (where the loop's clock stands still
// while a step runs); waits are on the loop's clock (virtual on virtual time). A wait ends
// when the task's next step begins, so it includes the time spent queued behind other ready
// work. A task renamed while it runs (set_name) is counted under its new name from its next
// step on.
//
// Cost: with profile mode (and debug mode) off, a step pays one predictable branch; with it on,
// two clock readings and a few additions per step (bench/README.md, "Profiling").
//
// Thread-safety: profile_entries() and profile_report() read the running loop's profile (or,
// after run() has returned, the last profiled loop run on this thread): call them on its thread.

#include <coring/detail/profiler.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/wait_kind.hpp>
#include <coring/event_loop.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

namespace coring {

/// What a task waited for: io, timer, lock, queue, task, thread, other.
using wait_kind = detail::wait_kind;

/// One group of tasks in the profile.
struct profile_entry {
    std::string name;         ///< the tasks' name, or "function (file:line)" of their creation site
    std::uint64_t tasks = 0;  ///< tasks of the group that ran at least one step
    std::uint64_t steps = 0;
    std::chrono::nanoseconds run_time{};
    std::chrono::nanoseconds longest_step{};
    std::array<std::chrono::nanoseconds, detail::wait_kind_count> waited_by_kind{};
    /// Kernel I/O waits by operation ("recv", "accept", "read", ...), the longest first.
    std::vector<std::pair<std::string, std::chrono::nanoseconds>> io_by_opcode;

    /// Time the group's tasks spent suspended on waits of `kind`.
    [[nodiscard]] std::chrono::nanoseconds waited(wait_kind kind) const noexcept { return waited_by_kind[static_cast<unsigned>(kind)]; }
};

/// The loop's own figures in the profile.
struct loop_profile {
    std::uint64_t iterations = 0;
    std::chrono::nanoseconds time_in_kernel{};  ///< blocked in io_uring_enter, waiting for work
    std::uint64_t timers_fired = 0;
    std::chrono::nanoseconds timer_lag_total{};  ///< how late, summed over the timers taken
    std::chrono::nanoseconds timer_lag_max{};
};

namespace detail {

/// The running loop's profile, else the last loop's run on this thread; null when that loop
/// was not in profile mode.
inline std::shared_ptr<profiler> current_profile() {
    if (t_running_scheduler != nullptr) return t_running_scheduler->profile_data();
    return t_last_profile;
}

}  // namespace detail

/// The profile's groups, the most run time first; empty without profile mode.
[[nodiscard]] inline std::vector<profile_entry> profile_entries() {
    std::vector<profile_entry> entries;
    const std::shared_ptr<detail::profiler> profile = detail::current_profile();
    if (!profile) return entries;
    for (detail::profile_totals& g : detail::sorted_groups(*profile)) {
        profile_entry e;
        e.name = std::move(g.name);
        e.tasks = g.tasks;
        e.steps = g.steps;
        e.run_time = g.run_time;
        e.longest_step = g.longest_step;
        e.waited_by_kind = g.waited;
        for (std::size_t op = 0; op < g.io_waited_by_opcode.size(); ++op)
            if (g.io_waited_by_opcode[op] != std::chrono::nanoseconds::zero())
                e.io_by_opcode.emplace_back(detail::io_opcode_name(static_cast<int>(op)), g.io_waited_by_opcode[op]);
        std::stable_sort(e.io_by_opcode.begin(), e.io_by_opcode.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
        entries.push_back(std::move(e));
    }
    return entries;
}

/// The loop's figures of the same profile; zeros without profile mode.
[[nodiscard]] inline loop_profile profile_loop() {
    loop_profile out;
    const std::shared_ptr<detail::profiler> profile = detail::current_profile();
    if (!profile) return out;
    const detail::loop_totals& loop = profile->loop();
    out.iterations = loop.iterations;
    out.time_in_kernel = loop.time_in_kernel;
    out.timers_fired = loop.timers_fired;
    out.timer_lag_total = loop.timer_lag_total;
    out.timer_lag_max = loop.timer_lag_max;
    return out;
}

/// Prints the profile as a table: the loop's line, then the `top` groups with the most run
/// time. Without profile mode it says so.
inline void profile_report(std::ostream& out, std::size_t top = 20) {
    const std::shared_ptr<detail::profiler> profile = detail::current_profile();
    if (!profile) {
        out << "coring profile: no profile (run the loop with loop_options{.profile = true} or CORING_PROFILE=1)\n";
        return;
    }
    detail::write_profile_report(out, *profile, top);
}

}  // namespace coring
