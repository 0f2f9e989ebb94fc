#pragma once
// For the tests of sync/*.hpp: runs a scenario in a child process with its output captured, so
// that a test can check what happens when a primitive is destroyed while tasks wait on it (a
// debug build stops at an assertion; a release build reports and carries on).

#include "support/catch.hpp"

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>

namespace coring_test {

/// Runs `scenario` in a forked child; returns its wait status and everything it wrote to stdout
/// and stderr.
template <class Scenario>
std::pair<int, std::string> run_in_child(Scenario scenario) {
    int pipe_fds[2];
    REQUIRE(::pipe(pipe_fds) == 0);
    std::fflush(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        const rlimit no_core{0, 0};
        ::setrlimit(RLIMIT_CORE, &no_core);
        std::signal(SIGABRT, SIG_DFL);  // not Catch2's handler: the parent judges the outcome
        ::dup2(pipe_fds[1], STDOUT_FILENO);
        ::dup2(pipe_fds[1], STDERR_FILENO);
        ::close(pipe_fds[0]);
        ::close(pipe_fds[1]);
        scenario();
        std::fflush(nullptr);
        ::_exit(0);
    }
    ::close(pipe_fds[1]);
    std::string text;
    char buffer[512];
    for (ssize_t n; (n = ::read(pipe_fds[0], buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
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
