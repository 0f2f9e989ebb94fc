#pragma once
// detail::splice_file: sends part of a file into a socket (or any descriptor) inside the kernel,
// the way sendfile(2) does, but as io_uring operations: stream_writer::sendfile's kernel path.
//
//   file ──IORING_OP_SPLICE──▶ pipe ──IORING_OP_SPLICE──▶ socket
//
// splice(2) needs a pipe on one side, so the bytes go through a private pipe, whose pages are
// moved, not copied, into the socket. The pipe is enlarged to 1 MiB (the unprivileged maximum
// by default) so that a large file takes few operations; each splice runs in the kernel's worker
// threads, so one that waits for room in the socket never blocks the loop.
//
// A splice into the socket may move fewer bytes than the pipe holds; the rest is sent before
// more of the file is read, so the bytes leave in order. Errors of the file side throw
// std::system_error; an error of the output side ends the transfer and is returned, so that the
// stream can fail with its own message. A closed output is EPIPE for the caller, and no SIGPIPE
// reaches the program: the kernel runs splices in its io_uring workers, not in the thread that
// submitted them (tests/io/splice_file_test.cpp checks it without ignoring SIGPIPE). Cancelled, it stops at the next completion: bytes in the
// pipe are dropped, and how much of the file went out is unknown to the caller (asyncio leaves the
// transport in the same state).
//
// Thread-safety: loop-bound. A splice belongs to the event loop it was made on and is used by that
// loop's tasks; in debug mode, an operation started from another thread throws std::logic_error
// naming both threads. Several cores: one per loop of a loop_group (thread/loop_group.hpp).

#include <coring/errors.hpp>
#include <coring/io/ops.hpp>
#include <coring/io/owned_fd.hpp>
#include <coring/task.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <optional>
#include <system_error>

namespace coring::detail {

struct splice_result {
    std::uint64_t sent = 0;  // bytes that reached the output
    int output_error = 0;    // the output's errno, if sending failed (0: the file ended, or count was reached)
};

/// Sends the bytes of `file_fd` from `offset` on, `count` of them (to the end of the file when
/// empty), into `out_fd`.
inline task<splice_result> splice_file(int file_fd, std::uint64_t offset, std::optional<std::uint64_t> count, int out_fd) {
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw_errno(errno, "sendfile: pipe2");
    const owned_fd pipe_read(fds[0]);
    const owned_fd pipe_write(fds[1]);
    (void)::fcntl(pipe_write.get(), F_SETPIPE_SZ, 1 << 20);  // may fail (a lower pipe-max-size): the default then
    const int capacity = ::fcntl(pipe_write.get(), F_GETPIPE_SZ);
    const std::uint64_t chunk = capacity > 0 ? static_cast<std::uint64_t>(capacity) : 64 * 1024;

    splice_result result;
    while (!count || result.sent < *count) {
        const std::uint64_t want = count ? std::min(chunk, *count - result.sent) : chunk;
        std::size_t in_pipe = co_await io::splice(file_fd, static_cast<std::int64_t>(offset + result.sent), pipe_write.get(), -1,
                                                  static_cast<std::size_t>(want));
        if (in_pipe == 0) break;  // the end of the file
        while (in_pipe > 0) {
            std::size_t moved = 0;
            try {
                moved = co_await io::splice(pipe_read.get(), -1, out_fd, -1, in_pipe, SPLICE_F_MOVE | SPLICE_F_MORE);
            } catch (const std::system_error& e) {
                result.output_error = e.code().value();
            }
            if (result.output_error != 0) co_return result;
            if (moved == 0) {
                result.output_error = EPIPE;  // the output takes nothing more
                co_return result;
            }
            in_pipe -= moved;
            result.sent += moved;
        }
    }
    co_return result;
}

}  // namespace coring::detail
