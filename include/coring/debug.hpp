#pragma once
// Debugging and introspection (docs/api.md, "Debugging and testing"; docs/debugging.md shows each
// tool's output).
//
// - Debug mode: loop_options{.debug = true} or CORING_DEBUG=1 in the environment. Then a task
//   step or callback that holds the loop longer than loop_options::slow_callback_duration
//   (default 100 ms) is reported with the task's name and creation site, loop members called
//   from the wrong thread throw std::logic_error, and closing a loop with unfinished tasks lists
//   what each of them awaits. (Tasks that end with an exception nobody retrieved are reported,
//   with their creation site, in every mode.)
// - dump_tasks(out): the live task tree: which task awaits which (through a handle, a gather, a
//   task_group, wait_for, ...), what each one awaits, where it was created.
// - dump_tasks_on_signal(SIGUSR1): `kill -USR1 <pid>` prints the tree and the statistics of a
//   live program.
// - event_loop::stats(): iterations, submissions, completions, time blocked in the kernel, time
//   running, ready-queue high-water mark, live tasks, completion-queue overflows and dropped
//   completions; format_stats() prints them.
//
// Thread-safety: dump_tasks reads a loop's tasks: call it on that loop's thread.

#include <coring/detail/task_tree.hpp>
#include <coring/event_loop.hpp>

#include <signal.h>

#include <cstdio>
#include <iostream>
#include <ostream>
#include <string>

namespace coring {

/// Prints the live task tree of `loop` to `out`.
inline void dump_tasks(event_loop& loop, std::ostream& out) { detail::print_task_tree(detail::snapshot_tasks(detail::scheduler_of(loop)), out); }

/// Prints the running loop's live task tree to `out` (std::logic_error outside a running loop).
inline void dump_tasks(std::ostream& out) { dump_tasks(get_running_loop(), out); }

/// The live task tree of `loop`, as text.
[[nodiscard]] inline std::string format_tasks(event_loop& loop) { return detail::format_task_tree(detail::scheduler_of(loop)); }

/// The statistics as one line: "iterations=... submissions=... ...".
[[nodiscard]] inline std::string format_stats(const loop_stats& s) {
    char line[384];
    std::snprintf(line, sizeof line,
                  "iterations=%llu handoffs=%llu submissions=%llu completions=%llu time_in_kernel=%.3fs time_running=%.3fs "
                  "ready_high_water=%zu live_tasks=%zu cq_overflows=%llu cq_dropped=%llu dropped_completions_reported=%llu",
                  static_cast<unsigned long long>(s.iterations), static_cast<unsigned long long>(s.handoffs), static_cast<unsigned long long>(s.submissions),
                  static_cast<unsigned long long>(s.completions), std::chrono::duration<double>(s.time_in_kernel).count(),
                  std::chrono::duration<double>(s.time_running).count(), s.ready_high_water, s.live_tasks,
                  static_cast<unsigned long long>(s.cq_overflows), static_cast<unsigned long long>(s.cq_dropped),
                  static_cast<unsigned long long>(s.dropped_completions_reported));
    return line;
}

/// Makes `sig` (SIGUSR1 by default) print the running loop's task tree and statistics to
/// stderr. The printing runs on the loop, as an ordinary callback (through a signalfd).
inline void dump_tasks_on_signal(int sig = SIGUSR1) {
    event_loop& loop = get_running_loop();
    loop.add_signal_handler(sig, [&loop] {
        std::string text = "coring: task dump\n" + format_tasks(loop) + "coring: stats: " + format_stats(loop.stats()) + "\n";
        std::fputs(text.c_str(), stderr);
    });
}

}  // namespace coring
