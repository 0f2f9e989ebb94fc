#pragma once
// Subprocesses (asyncio.create_subprocess_exec, create_subprocess_shell): spawn a program with
// optional pipes, talk to it through io_uring reads and writes, wait for it through a pidfd.
//
//   std::vector<std::string> argv{"sort", "-r"};
//   auto p = co_await coring::create_subprocess_exec(argv, {.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe});
//   auto [out, err] = co_await p.communicate("b\na\nc\n");   // out == "c\nb\na\n"
//   int code = p.returncode().value();                        // 0
//
//   std::vector<std::string> ls{"ls", "-1"};
//   auto r = co_await coring::create_subprocess_exec(ls, {.std_out = coring::stdio::pipe});
//   std::string first = co_await r.stdout_reader().readline();   // asyncio's proc.stdout.readline()
//
//   std::vector<std::string> sleeper{"sleep", "60"};
//   auto q = co_await coring::create_subprocess_exec(sleeper);
//   q.terminate();                                            // SIGTERM (kill(): SIGKILL)
//   int code = co_await q.wait();                             // -15: killed by signal 15
//
// How: posix_spawnp (vfork-fast, searches PATH) with the pipes dup2'ed onto 0/1/2 and every
// other descriptor closed in the child (closefrom(3), Python's close_fds=True); our own
// descriptors are O_CLOEXEC anyway. SIGPIPE and SIGXFSZ are reset to their default action and
// the signal mask is emptied in the child (Python's restore_signals). A pidfd (pidfd_open)
// names the child: wait() is an IORING_OP_POLL_ADD on it, then waitid() reaps; signals go
// through pidfd_send_signal, so a recycled pid can never be hit.
//
// returncode follows asyncio: the exit status, or -N when signal N killed the child.
//
// A piped stream is reachable two ways: as a file (stdin_pipe(), stdout_pipe(), stderr_pipe():
// plain reads and writes) or as a stream (stdin_writer(), stdout_reader(), stderr_reader():
// asyncio's proc.stdin / proc.stdout / proc.stderr, with readline, readuntil, drain and the
// rest of net/stream.hpp). The stream is made on first use and takes the pipe over: its file
// is closed from then on. communicate() uses whichever is in use, so bytes a stream has read
// ahead are not lost.
//
// No zombie and no descriptor is left behind: a process object destroyed before its child was
// reaped kills the child (SIGKILL) and reaps it, as asyncio does when it closes the transport of
// a running process; its pipes are closed.
//
// SIGPIPE: writing into the stdin pipe of a child that has exited raises SIGPIPE in the writing
// thread, as for any pipe; its default action ends the process. Python ignores SIGPIPE at start
// up; do the same (std::signal(SIGPIPE, SIG_IGN)) in programs that feed children. A write then
// fails with EPIPE ("write to the stdin pipe of process 1234: Broken pipe" from drain()), and
// communicate() treats it as asyncio does: the child did not want more input.
//
// Cancellation: wait() and reads from the pipes are io_uring operations and are cancelled in the
// kernel; communicate() cancels its helpers and waits for them before it rethrows. Cancelling
// does not signal the child.
//
// Thread-safety: loop-bound. A process (and its pipes) belongs to the event loop it was made on
// and is used by that loop's tasks; in debug mode, an operation started from another thread throws
// std::logic_error naming both threads. Several cores: one per loop of a loop_group
// (thread/loop_group.hpp).

#include <coring/errors.hpp>
#include <coring/io/file.hpp>
#include <coring/io/ops.hpp>
#include <coring/net/stream.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

extern char** environ;

namespace coring {
namespace detail {

/// asyncio's returncode from waitid's report: the exit status, or -N when signal N ended it.
inline int returncode_of(const siginfo_t& info) noexcept { return info.si_code == CLD_EXITED ? info.si_status : -info.si_status; }

/// Kills a child that must not outlive us (SIGKILL, through its pidfd when there is one, so a
/// recycled pid cannot be hit) and reaps it, retrying a wait that a signal interrupts. Its
/// returncode; 255 (as asyncio reports) if someone else reaped it.
inline int kill_and_reap(pid_t pid, int pidfd) noexcept {
    if (pidfd >= 0)
        ::syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    else
        ::kill(pid, SIGKILL);
    siginfo_t info{};
    int rc;
    while ((rc = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED)) != 0 && errno == EINTR) {
    }
    return rc != 0 ? 255 : returncode_of(info);
}

}  // namespace detail

/// Where a child's standard stream goes (asyncio's None / PIPE / DEVNULL / STDOUT).
enum class stdio {
    inherit,    ///< the parent's stream
    pipe,       ///< a pipe, read or written through process::stdin_pipe() / stdout_pipe() / stderr_pipe()
    devnull,    ///< /dev/null
    to_stdout,  ///< stderr only: wherever stdout goes
};

/// How to start a child: `{.std_in = coring::stdio::pipe, .std_out = coring::stdio::pipe}`.
///
/// Deliberately trivially copyable (the strings are borrowed through pointers and need to live
/// only until create_subprocess_exec has been awaited): g++ 12 miscompiles an aggregate
/// temporary with std::string or std::vector members written inside a co_await expression
/// (it is destroyed twice), and `co_await create_subprocess_exec(argv, {...})` is exactly that.
struct subprocess_options {
    stdio std_in = stdio::inherit;
    stdio std_out = stdio::inherit;
    stdio std_err = stdio::inherit;
    /// The child's working directory; the parent's when null.
    const char* cwd = nullptr;
    /// The child's whole environment, "NAME=value" strings; the parent's when null.
    const std::vector<std::string>* env = nullptr;
    /// The limit of stdout_reader() and stderr_reader() (asyncio's `limit`): how far readline
    /// and readuntil search, and how much they read ahead.
    std::size_t limit = 64 * 1024;
};

class process {
public:
    /// What communicate() yields; a stream that is not a pipe gives "".
    struct communicate_result {
        std::string stdout_data;
        std::string stderr_data;
    };

    process(process&& other) noexcept
        : m_pid(std::exchange(other.m_pid, -1)),
          m_pidfd(std::exchange(other.m_pidfd, -1)),
          m_returncode(std::exchange(other.m_returncode, std::nullopt)),
          m_stdin(std::move(other.m_stdin)),
          m_stdout(std::move(other.m_stdout)),
          m_stderr(std::move(other.m_stderr)),
          m_stdin_writer(std::move(other.m_stdin_writer)),
          m_stdout_reader(std::move(other.m_stdout_reader)),
          m_stderr_reader(std::move(other.m_stderr_reader)),
          m_limit(other.m_limit) {}
    process& operator=(process&& other) noexcept {
        if (this != &other) {
            reap_now();
            m_pid = std::exchange(other.m_pid, -1);
            m_pidfd = std::exchange(other.m_pidfd, -1);
            m_returncode = std::exchange(other.m_returncode, std::nullopt);
            m_stdin = std::move(other.m_stdin);
            m_stdout = std::move(other.m_stdout);
            m_stderr = std::move(other.m_stderr);
            m_stdin_writer = std::move(other.m_stdin_writer);
            m_stdout_reader = std::move(other.m_stdout_reader);
            m_stderr_reader = std::move(other.m_stderr_reader);
            m_limit = other.m_limit;
        }
        return *this;
    }
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    /// Kills (SIGKILL) and reaps a child that was not waited for; closes the pipes.
    ~process() { reap_now(); }

    [[nodiscard]] pid_t pid() const noexcept { return m_pid; }
    /// The exit status (or -signal) once wait() has seen the child end; empty before.
    [[nodiscard]] std::optional<int> returncode() const noexcept { return m_returncode; }

    /// The write end of the child's stdin (open only with stdio::pipe, until stdin_writer()
    /// takes it). Close it to send EOF.
    [[nodiscard]] file& stdin_pipe() noexcept { return m_stdin; }
    /// The read end of the child's stdout (open only with stdio::pipe, until stdout_reader()).
    [[nodiscard]] file& stdout_pipe() noexcept { return m_stdout; }
    /// The read end of the child's stderr (open only with stdio::pipe, until stderr_reader()).
    [[nodiscard]] file& stderr_pipe() noexcept { return m_stderr; }

    /// The child's stdin as a stream (asyncio's proc.stdin): write(), drain(), write_eof() or
    /// close() to send EOF, wait_closed(). Made on first use, from the pipe (a running loop is
    /// needed then). Throws invalid_state_error if stdin is not a pipe, or its file was closed.
    [[nodiscard]] stream_writer& stdin_writer() {
        if (!m_stdin_writer) m_stdin_writer = stream_writer(pipe_stream(m_stdin, detail::socket_transport::descriptor::pipe_write_end, "stdin"));
        return m_stdin_writer;
    }
    /// The child's stdout as a stream (asyncio's proc.stdout): read(), readline(), readuntil(),
    /// readexactly(), at_eof(). Made on first use, as stdin_writer().
    [[nodiscard]] stream_reader& stdout_reader() {
        if (!m_stdout_reader) m_stdout_reader = stream_reader(pipe_stream(m_stdout, detail::socket_transport::descriptor::pipe_read_end, "stdout"));
        return m_stdout_reader;
    }
    /// The child's stderr as a stream (asyncio's proc.stderr), as stdout_reader().
    [[nodiscard]] stream_reader& stderr_reader() {
        if (!m_stderr_reader) m_stderr_reader = stream_reader(pipe_stream(m_stderr, detail::socket_transport::descriptor::pipe_read_end, "stderr"));
        return m_stderr_reader;
    }

    /// Waits until the child ends and yields its returncode (at once if it is known). Any number
    /// of tasks may wait.
    [[nodiscard]] task<int> wait();

    /// Writes `input` to stdin and closes it (when stdin is a pipe), reads stdout and stderr to
    /// their ends (when pipes) at the same time, then waits for the child. Yields what was read.
    [[nodiscard]] task<communicate_result> communicate(std::string input = std::string());

    /// Sends `sig` (pidfd_send_signal). Does nothing once the child has been reaped.
    void send_signal(int sig) {
        if (m_returncode || m_pidfd < 0) return;
        if (::syscall(SYS_pidfd_send_signal, m_pidfd, sig, nullptr, 0) != 0 && errno != ESRCH)
            detail::throw_errno(errno, "send_signal(pid " + std::to_string(m_pid) + ", " + std::to_string(sig) + ")");
    }
    /// SIGTERM.
    void terminate() { send_signal(SIGTERM); }
    /// SIGKILL.
    void kill() { send_signal(SIGKILL); }

private:
    friend process spawn_process(const std::vector<std::string>& argv, const subprocess_options& options);
    process(pid_t pid, int pidfd, file in, file out, file err, std::size_t limit) noexcept
        : m_pid(pid), m_pidfd(pidfd), m_stdin(std::move(in)), m_stdout(std::move(out)), m_stderr(std::move(err)), m_limit(limit) {}

    /// A stream over `pipe`'s descriptor, which it takes over; `which` names it in errors.
    detail::ref_ptr<detail::stream_state> pipe_stream(file& pipe, detail::socket_transport::descriptor end, const char* which) {
        if (!pipe.is_open())
            throw invalid_state_error(std::string("coring: the ") + which + " of process " + std::to_string(m_pid) +
                                      " is not a pipe (stdio::pipe), or its pipe was closed");
        const stream_options options{.limit = m_limit};
        event_loop& loop = get_running_loop();
        std::string name = std::string("the ") + which + " pipe of process " + std::to_string(m_pid);
        auto state = detail::ref_ptr<detail::stream_state>::adopt(new detail::stream_state(loop, pipe.fd(), end, std::move(name), options));
        (void)pipe.release();  // the stream owns it now
        state->start_reading();
        return state;
    }

    /// Reaps the child if it has ended; true once the returncode is known.
    bool try_reap() noexcept {
        if (m_returncode) return true;
        if (m_pid <= 0) return false;  // moved from
        siginfo_t info{};
        if (::waitid(P_PID, static_cast<id_t>(m_pid), &info, WEXITED | WNOHANG) != 0) {
            // ECHILD: someone else reaped it (SIGCHLD set to SIG_IGN, a waitpid(-1) elsewhere).
            // asyncio reports 255 in this case too.
            if (errno == ECHILD) set_returncode(255);
            return m_returncode.has_value();
        }
        if (info.si_pid == 0) return false;  // still running
        set_returncode(detail::returncode_of(info));
        return true;
    }

    // The pidfd stays open until the process object goes: another wait() may have a poll on it
    // in flight (it completes at once: an exited child's pidfd stays readable).
    void set_returncode(int code) noexcept { m_returncode = code; }

    void reap_now() noexcept {
        if (m_pid > 0 && !m_returncode) {
            if (!try_reap()) set_returncode(detail::kill_and_reap(m_pid, m_pidfd));
        }
        if (m_pidfd >= 0) ::close(std::exchange(m_pidfd, -1));
    }

    task<> feed_stdin(std::string input);
    /// Reads a pipe to its end: through its stream if one was made (with the bytes it read
    /// ahead), else through its file.
    static task<std::string> read_to_end(file& pipe, const stream_reader& stream);

    pid_t m_pid = -1;
    int m_pidfd = -1;  // open for the object's lifetime (-1 when moved from)
    std::optional<int> m_returncode;
    file m_stdin;
    file m_stdout;
    file m_stderr;
    stream_writer m_stdin_writer;
    stream_reader m_stdout_reader;
    stream_reader m_stderr_reader;
    std::size_t m_limit = 64 * 1024;
};

/// The synchronous part of create_subprocess_exec: spawns the child. Throws std::system_error
/// ("create_subprocess_exec(no-such-program): posix_spawnp: No such file or directory").
inline process spawn_process(const std::vector<std::string>& argv, const subprocess_options& options) {
    if (argv.empty()) throw std::invalid_argument("coring::create_subprocess_exec: empty argv");
    const std::string what = "create_subprocess_exec(" + argv[0] + ")";
    if (options.std_in == stdio::to_stdout || options.std_out == stdio::to_stdout)
        throw std::invalid_argument("coring::create_subprocess_exec: stdio::to_stdout is for std_err only");

    // Every descriptor made here is O_CLOEXEC and owned by a file, so an exception leaks nothing.
    auto make_pipe = [&](file& read_end, file& write_end) {
        int fds[2];
        if (::pipe2(fds, O_CLOEXEC) != 0) detail::throw_errno(errno, what + ": pipe2");
        read_end = file(fds[0]);
        write_end = file(fds[1]);
    };
    file parent_in, child_in, parent_out, child_out, parent_err, child_err, devnull;
    if (options.std_in == stdio::pipe) make_pipe(child_in, parent_in);
    if (options.std_out == stdio::pipe) make_pipe(parent_out, child_out);
    if (options.std_err == stdio::pipe) make_pipe(parent_err, child_err);
    if (options.std_in == stdio::devnull || options.std_out == stdio::devnull || options.std_err == stdio::devnull) {
        devnull = file(::open("/dev/null", O_RDWR | O_CLOEXEC));
        if (!devnull.is_open()) detail::throw_errno(errno, what + ": open(\"/dev/null\")");
    }

    struct spawn_setup {
        posix_spawn_file_actions_t actions;
        posix_spawnattr_t attributes;
        spawn_setup() {
            posix_spawn_file_actions_init(&actions);
            posix_spawnattr_init(&attributes);
        }
        ~spawn_setup() {
            posix_spawn_file_actions_destroy(&actions);
            posix_spawnattr_destroy(&attributes);
        }
    } setup;
    auto check = [&](int rc, const char* step) {
        if (rc != 0) detail::throw_errno(rc, what + ": " + step);
    };
    // dup2 onto 0/1/2 clears O_CLOEXEC on the copy: exactly those three survive the exec.
    auto redirect = [&](stdio mode, const file& child_end, int target) {
        if (mode == stdio::pipe) check(posix_spawn_file_actions_adddup2(&setup.actions, child_end.fd(), target), "adddup2");
        if (mode == stdio::devnull) check(posix_spawn_file_actions_adddup2(&setup.actions, devnull.fd(), target), "adddup2");
    };
    redirect(options.std_in, child_in, 0);
    redirect(options.std_out, child_out, 1);
    redirect(options.std_err, child_err, 2);
    if (options.std_err == stdio::to_stdout) check(posix_spawn_file_actions_adddup2(&setup.actions, 1, 2), "adddup2");
    if (options.cwd != nullptr) check(posix_spawn_file_actions_addchdir_np(&setup.actions, options.cwd), "addchdir");
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    // Descriptors the program opened without O_CLOEXEC do not leak into the child either.
    check(posix_spawn_file_actions_addclosefrom_np(&setup.actions, 3), "addclosefrom");
#endif
    sigset_t no_signals;
    sigemptyset(&no_signals);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGXFSZ);
    check(posix_spawnattr_setsigmask(&setup.attributes, &no_signals), "setsigmask");
    check(posix_spawnattr_setsigdefault(&setup.attributes, &defaults), "setsigdefault");
    check(posix_spawnattr_setflags(&setup.attributes, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF), "setflags");

    std::vector<char*> args;
    args.reserve(argv.size() + 1);
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    std::vector<char*> env;
    if (options.env) {
        env.reserve(options.env->size() + 1);
        for (const std::string& e : *options.env) env.push_back(const_cast<char*>(e.c_str()));
        env.push_back(nullptr);
    }

    pid_t pid = -1;
    check(posix_spawnp(&pid, args[0], &setup.actions, &setup.attributes, args.data(), options.env ? env.data() : environ), "posix_spawnp");
    const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));  // O_CLOEXEC by definition
    if (pidfd < 0) {
        const int err = errno;
        (void)detail::kill_and_reap(pid, -1);
        detail::throw_errno(err, what + ": pidfd_open (Linux 5.3 or newer is needed)");
    }
    // The child ends (child_in, child_out, child_err, devnull) close here, in the parent.
    return process(pid, pidfd, std::move(parent_in), std::move(parent_out), std::move(parent_err), options.limit);
}

/// Starts argv[0] (searched in PATH) with arguments argv[1...]. Yields the running process.
/// Throws std::system_error with the errno when it cannot be started:
/// "create_subprocess_exec(no-such-program): posix_spawnp: No such file or directory".
///
/// With g++ 12, build `argv` before the co_await: it rejects a braced list of string literals
/// inside a co_await expression.
[[nodiscard]] inline task<process> create_subprocess_exec(std::vector<std::string> argv, subprocess_options options = subprocess_options()) {
    co_return spawn_process(argv, options);
}

/// Runs `command` through the shell, /bin/sh -c (asyncio.create_subprocess_shell): pipelines,
/// redirections and expansions work, and so does injection: quote what comes from outside.
/// The shell is the child: returncode and signals are the shell's (sh replaces itself with a
/// lone simple command, so those reach it too).
[[nodiscard]] inline task<process> create_subprocess_shell(std::string command, subprocess_options options = subprocess_options()) {
    std::vector<std::string> argv{"/bin/sh", "-c", std::move(command)};
    co_return spawn_process(argv, options);
}

// ---------------------------------------------------------------------- process members

inline task<int> process::wait() {
    if (m_pidfd < 0 && !m_returncode) throw invalid_state_error("coring: process::wait on a moved-from process");
    while (!try_reap()) {
        // The pidfd polls readable once the child has ended (and stays so): each waiter polls.
        (void)co_await io::poll(m_pidfd, POLLIN);
    }
    co_return *m_returncode;
}

inline task<> process::feed_stdin(std::string input) {
    if (m_stdin_writer) {
        // asyncio's communicate: write, drain, close.
        try {
            if (!input.empty() && !m_stdin_writer.is_closing()) {
                m_stdin_writer.write(input);
                co_await m_stdin_writer.drain();
            }
        } catch (const std::system_error& e) {
            if (e.code().value() != EPIPE && e.code().value() != ECONNRESET) throw;
        }
        m_stdin_writer.close();
        co_await m_stdin_writer.wait_closed();
        co_return;
    }
    if (!m_stdin.is_open()) co_return;
    try {
        if (!input.empty()) co_await m_stdin.write_all(input);
    } catch (const std::system_error& e) {
        // The child exited or closed its stdin without reading everything: asyncio ignores it.
        if (e.code().value() != EPIPE && e.code().value() != ECONNRESET) throw;
    }
    co_await m_stdin.close();
}

inline task<std::string> process::read_to_end(file& pipe, const stream_reader& stream) {
    if (stream) co_return co_await stream.read();
    if (!pipe.is_open()) co_return std::string();
    detail::read_buffer buffer(4096);  // grows as the output does
    for (;;) {
        const std::size_t n = co_await pipe.read(buffer.room());
        if (n == 0) break;
        buffer.commit(n);
    }
    co_await pipe.close();
    co_return buffer.take();
}

inline task<process::communicate_result> process::communicate(std::string input) {
    task_handle<> feeder = create_task(feed_stdin(std::move(input)), "communicate: stdin");
    task_handle<std::string> out = create_task(read_to_end(m_stdout, m_stdout_reader), "communicate: stdout");
    task_handle<std::string> err = create_task(read_to_end(m_stderr, m_stderr_reader), "communicate: stderr");
    communicate_result result;
    std::exception_ptr failure;
    try {
        co_await feeder;
        result.stdout_data = co_await out;
        result.stderr_data = co_await err;
        (void)co_await wait();
    } catch (...) {
        failure = std::current_exception();
    }
    if (failure) {
        // The helpers use this process's pipes: they finish before the error (or the cancel)
        // leaves. (co_await is not allowed in a handler, hence the exception_ptr.)
        feeder.cancel();
        out.cancel();
        err.cancel();
        try {
            co_await feeder;
        } catch (...) {
        }
        try {
            (void)co_await out;
        } catch (...) {
        }
        try {
            (void)co_await err;
        } catch (...) {
        }
        std::rethrow_exception(failure);
    }
    co_return result;
}

}  // namespace coring
