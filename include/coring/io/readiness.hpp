#pragma once
// Waiting once for a descriptor to be ready: the task-side counterpart of the loop's add_reader
// and add_writer (event_loop.hpp, detail/fd_watcher.hpp).
//
//   co_await coring::wait_readable(fd);   // then a non-blocking read of fd will not say EAGAIN
//   co_await coring::wait_writable(fd);
//
// One IORING_OP_POLL_ADD each; cancelling the task cancels the poll. They yield the events that
// are set: an error or a hang-up (POLLERR, POLLHUP) counts as ready, as in asyncio, since the
// read or write that follows reports it. A descriptor that is not open throws std::system_error
// (EBADF) from the await. The poll reaches the kernel at the end of the loop's iteration and
// then holds the file, not the number: a descriptor closed while a task waits never wakes it on
// behalf of whoever reuses the number (cancel the task instead).
//
// Thread-safety: loop-bound. A readiness watch belongs to the event loop it was made on and is
// used by that loop's tasks; in debug mode, an operation started from another thread throws
// std::logic_error naming both threads. Several cores: one per loop of a loop_group
// (thread/loop_group.hpp).

#include <coring/io/ops.hpp>

#include <poll.h>

namespace coring {

/// Waits until `fd` is readable (or has an error or hang-up); yields the poll events.
[[nodiscard]] inline io::poll wait_readable(int fd) noexcept { return io::poll(fd, POLLIN); }

/// Waits until `fd` is writable (or has an error or hang-up); yields the poll events.
[[nodiscard]] inline io::poll wait_writable(int fd) noexcept { return io::poll(fd, POLLOUT); }

}  // namespace coring
