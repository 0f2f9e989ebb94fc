#pragma once
// run_in_child: runs a scenario in a forked child process with its output captured, for tests
// whose outcome is a crash, an assertion or an exit code (a primitive destroyed while tasks
// wait on it; a loop constructed where io_uring is forbidden).

#include "support/catch.hpp"
#include "support/os.hpp"

#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <string>
#include <type_traits>
#include <utility>

namespace coring_test {

/// What the child's stderr does: captured with stdout (interleaved), or left as the parent's.
enum class child_stderr { captured, inherited };

/// Runs `scenario` in a forked child; returns its wait status and everything it wrote to stdout
/// (and stderr, unless `inherited`). A scenario that returns an int exits with it; one that
/// returns void exits with 0. The child writes no core file and lets SIGABRT kill it (not
/// Catch2's handler): the parent judges the outcome.
template <class Scenario>
std::pair<int, std::string> run_in_child(Scenario scenario, child_stderr err = child_stderr::captured) {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core);
        std::signal(SIGABRT, SIG_DFL);
        ::dup2(pipe_fds[1], STDOUT_FILENO);
        if (err == child_stderr::captured) ::dup2(pipe_fds[1], STDERR_FILENO);
        ::close(pipe_fds[0]);
        ::close(pipe_fds[1]);
        int code = 0;
        if constexpr (std::is_void_v<std::invoke_result_t<Scenario&>>)
            scenario();
        else
            code = scenario();
        std::fflush(nullptr);
        ::_exit(code);
    }
    ::close(pipe_fds[1]);
    std::string text = read_until_eof(pipe_fds[0]);
    ::close(pipe_fds[0]);
    int status = 0;
    ::waitpid(pid, &status, 0);
    return {status, text};
}

/// The outcome the build promises: an assertion failure in debug builds, a clean exit in
/// release builds (NDEBUG).
inline bool stopped_by_assertion_or_exited_cleanly(int status) {
#ifdef NDEBUG
    return WIFEXITED(status) && WEXITSTATUS(status) == 0;
#else
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
#endif
}

}  // namespace coring_test
