#pragma once
// One awaitable per io_uring operation: the building blocks of files, sockets and streams.
//
//   std::array<std::byte, 4096> buf;
//   std::size_t n = co_await coring::io::read(fd, buf);          // one IORING_OP_READ
//
// Each operation is one SQE whose user_data is the awaiter itself, living in the awaiting frame:
// no allocation, no lookup. The SQE reaches the kernel with the loop's next io_uring_enter.
//
// Errors: a negative result becomes std::system_error carrying the errno and the operation,
// e.g. "read(fd 7): Connection reset by peer".
//
// Cancellation: cancelling the awaiting task sends IORING_OP_ASYNC_CANCEL for the operation,
// and the task resumes only on the operation's own CQE, never on the cancel's, so the kernel
// is done with the buffer when the task resumes. The CQE settles a race with exactly one
// outcome: -ECANCELED (or -EINTR for a request interrupted in a kernel worker) means the
// operation did not happen and cancelled_error is thrown; a real result means it completed
// first, its result is returned (no data is lost), and the cancel request stays pending for
// the task's next suspension point.
//
// Timeouts: io::with_timeout(op, 2s) submits the operation linked (IOSQE_IO_LINK) to an
// IORING_OP_LINK_TIMEOUT: two SQEs, one operation for the task. When the timeout fires first the
// kernel cancels the operation, and awaiting it throws coring::timeout_error. The timeout runs on
// the kernel's monotonic clock, also on a loop with virtual time.
//
// Multishot operations, which stay armed across awaits, have their own headers
// (io/multishot_accept.hpp, io/multishot_recv.hpp).
//
// The operations here take raw descriptors and pointers: what a pointer refers to (buffer, path,
// address, msghdr, statx) must stay valid until the awaiting task resumes, which it does when
// the co_await expression is a full expression in the awaiting coroutine. file.hpp and
// socket.hpp build owning types on top.
//
// Thread-safety: loop-bound. Each operation belongs to the event loop it was made on and is used
// by that loop's tasks; in debug mode, an operation started from another thread throws
// std::logic_error naming both threads. Several cores: one per loop of a loop_group
// (thread/loop_group.hpp).

#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/detail/test_access.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>

#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <system_error>
#include <type_traits>
#include <utility>

namespace coring {
namespace detail {

/// The machinery shared by every operation. Derived provides
///   void prepare(io_uring_sqe*)           fill in the SQE (not user_data, not flags)
///   std::string describe() const           "read(fd 7)", for error messages
///   R await_resume()                       usually: return checked_result();
///
/// The awaiter is the SQE's user_data and lives in the awaiting frame; it may be moved before
/// it is awaited (so prepare() must take every pointer it hands the kernel from its own members
/// at that moment), never after.
template <class Derived>
class io_awaiter : public io_completion, public leaf_awaiter<ready_node> {
public:
    io_awaiter() noexcept : io_completion(&on_complete), leaf_awaiter(operations_) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    bool await_suspend(std::coroutine_handle<> frame) { return suspend(frame, nullptr); }

    /// Machinery for io::with_timeout: submits the operation linked to an IORING_OP_LINK_TIMEOUT
    /// of `timeout`, which must stay valid until the loop's next submission (the kernel copies
    /// it then). The timeout's SQE carries user_data 0: its CQE is ignored, and the task resumes
    /// on the operation's own CQE, which is -ECANCELED (or -EINTR) when the timeout fired.
    bool await_suspend_with_link_timeout(std::coroutine_handle<> frame, const __kernel_timespec& timeout) {
        return suspend(frame, &timeout);
    }

protected:
    /// The CQE's result: throws cancelled_error if the operation was cancelled, timeout_error if
    /// its link timeout fired, and std::system_error for any other negative result.
    int checked_result() const {
        throw_if_cancelled();
        if (m_result >= 0) return m_result;
        if (m_timed_out) throw timeout_error(static_cast<const Derived*>(this)->describe() + ": timed out");
        throw_errno(-m_result, static_cast<const Derived*>(this)->describe());
    }

    [[nodiscard]] int raw_result() const noexcept { return m_result; }
    [[nodiscard]] unsigned cqe_flags() const noexcept { return m_flags; }

private:
    bool suspend(std::coroutine_handle<> frame, const __kernel_timespec* timeout) {
        if (!begin_suspend(frame)) return false;
        scheduler& loop = this->loop();
        if (timeout == nullptr) {
            io_uring_sqe* sqe = loop.get_sqe();
            static_cast<Derived*>(this)->prepare(sqe);
            m_opcode = sqe->opcode;
            loop.submit(sqe, *this);
        } else {
            // The pair must reach the kernel in one submission, adjacent and linked: make room
            // for both first, so neither get_sqe() submits, and prepare both before submit()
            // hands the operation to the loop, which with eager_submit submits at once.
            loop.make_room(2);
            io_uring_sqe* sqe = loop.get_sqe();
            io_uring_sqe* link = loop.get_sqe();
            static_cast<Derived*>(this)->prepare(sqe);
            m_opcode = sqe->opcode;
            sqe->flags |= IOSQE_IO_LINK;
            io_uring_prep_link_timeout(link, const_cast<__kernel_timespec*>(timeout), 0);
            io_uring_sqe_set_data64(link, 0);
            m_linked = true;
            loop.submit(sqe, *this);
        }
        arm();
        return true;
    }

    static void on_complete(io_completion* base, int result, unsigned flags) noexcept {
        auto* self = static_cast<io_awaiter*>(base);
        self->m_result = result;
        self->m_flags = flags;
        const bool did_not_happen = result == -ECANCELED || result == -EINTR;
        if (self->m_cancel_sent) {
            if (did_not_happen)
                self->mark_cancelled();  // the operation did not happen
            else if (self->task() != nullptr)
                self->task()->restore_cancel_request();  // completed first: the request lives on
        } else if (self->m_linked && did_not_happen) {
            // Nobody but the link timeout cancels it (the cancel of a task sets m_cancel_sent).
            self->m_timed_out = true;
        }
        if (self->task() != nullptr) self->task()->disarm_cancel(*self);
        self->wake();
    }

    // The task resumes on the operation's own CQE only, never on the cancel's: the kernel may be
    // writing into the buffer until then.
    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<io_awaiter*>(node);
        self->take_cancel_request();
        self->m_cancel_sent = true;
        try {
            self->loop().cancel_io(*self);
        } catch (...) {
            // No SQE could be had: the operation completes on its own and the request stays
            // pending for the next suspension point.
            self->m_cancel_sent = false;
            self->task()->restore_cancel_request();
        }
    }

    static void describe(const ready_node* node, await_description& out) {
        out.what = static_cast<const Derived*>(static_cast<const io_awaiter*>(node))->describe();
        if (static_cast<const io_awaiter*>(node)->m_cancel_sent) out.what += ", cancel requested";
    }

    static int opcode_of(const ready_node* node) noexcept { return static_cast<const io_awaiter*>(node)->m_opcode; }

    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, wait_kind::io, &opcode_of};

    int m_result = 0;
    unsigned m_flags = 0;
    std::uint8_t m_opcode = 0;  // the SQE's, for the profile
    bool m_cancel_sent = false;
    bool m_linked = false;     // submitted with a link timeout
    bool m_timed_out = false;  // the link timeout cancelled it
};

inline std::string describe_fd_op(const char* op, int fd) { return std::string(op) + "(fd " + std::to_string(fd) + ")"; }

inline std::string describe_path_op(const char* op, const char* path) {
    return std::string(op) + "(\"" + (path != nullptr ? path : "") + "\")";
}

inline unsigned clamp_length(std::size_t n) noexcept {
    // An SQE carries 32-bit lengths; a larger buffer is served in part (a short read, write,
    // recv or send). Unclamped, 4 GiB would wrap to 0: a recv of 0 bytes looks like end of stream.
    return n > 0x7fff'f000u ? 0x7fff'f000u : static_cast<unsigned>(n);
}

}  // namespace detail

namespace io {

/// IORING_OP_NOP: completes at once; a round trip through the kernel.
class [[nodiscard]] nop final : public detail::io_awaiter<nop> {
public:
    nop() noexcept = default;
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_nop(sqe); }
    [[nodiscard]] std::string describe() const { return "nop"; }
    void await_resume() const { (void)checked_result(); }
};

/// IORING_OP_READ into `buffer` at `offset` (-1: the file position). Yields the bytes read; 0 at
/// end of file.
class [[nodiscard]] read final : public detail::io_awaiter<read> {
public:
    read(int fd, std::span<std::byte> buffer, std::int64_t offset = -1) noexcept : m_fd(fd), m_buffer(buffer), m_offset(offset) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_read(sqe, m_fd, m_buffer.data(), detail::clamp_length(m_buffer.size()), static_cast<std::uint64_t>(m_offset));
    }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("read", m_fd); }
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

private:
    int m_fd;
    std::span<std::byte> m_buffer;
    std::int64_t m_offset;
};

/// IORING_OP_WRITE of `data` at `offset` (-1: the file position). Yields the bytes written,
/// which may be fewer than data.size().
class [[nodiscard]] write final : public detail::io_awaiter<write> {
public:
    write(int fd, std::span<const std::byte> data, std::int64_t offset = -1) noexcept : m_fd(fd), m_data(data), m_offset(offset) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_write(sqe, m_fd, m_data.data(), detail::clamp_length(m_data.size()), static_cast<std::uint64_t>(m_offset));
    }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("write", m_fd); }
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

private:
    int m_fd;
    std::span<const std::byte> m_data;
    std::int64_t m_offset;
};

/// IORING_OP_POLL_ADD (one shot): waits until `fd` has one of `events` (POLLIN, POLLOUT, ...);
/// yields the events that are set.
class [[nodiscard]] poll final : public detail::io_awaiter<poll> {
public:
    poll(int fd, unsigned events) noexcept : m_fd(fd), m_events(events) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_poll_add(sqe, m_fd, m_events); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("poll", m_fd); }
    unsigned await_resume() const { return static_cast<unsigned>(checked_result()); }

private:
    int m_fd;
    unsigned m_events;
};

/// IORING_OP_READV: scatter read into `buffers` at `offset` (-1: the file position). Yields the
/// bytes read; 0 at end of file. The iovec array must outlive the await.
class [[nodiscard]] readv final : public detail::io_awaiter<readv> {
public:
    readv(int fd, std::span<const ::iovec> buffers, std::int64_t offset = -1) noexcept : m_fd(fd), m_buffers(buffers), m_offset(offset) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_readv(sqe, m_fd, m_buffers.data(), static_cast<unsigned>(m_buffers.size()), static_cast<std::uint64_t>(m_offset));
    }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("readv", m_fd); }
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

private:
    int m_fd;
    std::span<const ::iovec> m_buffers;
    std::int64_t m_offset;
};

/// IORING_OP_WRITEV: gather write of `buffers` at `offset` (-1: the file position). Yields the
/// bytes written, which may be fewer than the total. The iovec array must outlive the await.
class [[nodiscard]] writev final : public detail::io_awaiter<writev> {
public:
    writev(int fd, std::span<const ::iovec> buffers, std::int64_t offset = -1) noexcept : m_fd(fd), m_buffers(buffers), m_offset(offset) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_writev(sqe, m_fd, m_buffers.data(), static_cast<unsigned>(m_buffers.size()), static_cast<std::uint64_t>(m_offset));
    }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("writev", m_fd); }
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

private:
    int m_fd;
    std::span<const ::iovec> m_buffers;
    std::int64_t m_offset;
};

/// IORING_OP_OPENAT: opens `path` relative to `dir_fd` (AT_FDCWD: the working directory).
/// Yields the new descriptor; O_CLOEXEC is always added, so children never inherit it. Errors
/// name the path: `open("/no/such"): No such file or directory`.
class [[nodiscard]] openat final : public detail::io_awaiter<openat> {
public:
    openat(int dir_fd, const char* path, int flags, mode_t mode = 0644) noexcept : m_dir_fd(dir_fd), m_path(path), m_flags(flags | O_CLOEXEC), m_mode(mode) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_openat(sqe, m_dir_fd, m_path, m_flags, m_mode); }
    [[nodiscard]] std::string describe() const { return detail::describe_path_op("open", m_path); }
    int await_resume() const { return checked_result(); }

private:
    int m_dir_fd;
    const char* m_path;
    int m_flags;
    mode_t m_mode;
};

/// IORING_OP_CLOSE: closes `fd` (nothing to do when it is negative). The descriptor is gone when
/// the await returns, whatever happens: a cancel request does not interrupt a close. If the
/// close had not reached the kernel (or the kernel cancelled it before it ran), it is closed
/// synchronously, and the request stays pending for the task's next suspension point.
class [[nodiscard]] close final : public detail::io_awaiter<close> {
public:
    explicit close(int fd) noexcept : m_fd(fd) {}
    /// A negative descriptor (a file or socket that is already closed): nothing to do.
    [[nodiscard]] bool await_ready() const noexcept { return m_fd < 0; }
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_close(sqe, m_fd); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("close", m_fd); }
    void await_resume() const {
        if (m_fd < 0) return;
        if (cancelled()) {
            // -EINTR: the kernel ran the close and was interrupted after releasing the
            // descriptor (close(2) never keeps it); closing again could hit a reused number.
            if (raw_result() != -EINTR) ::close(m_fd);
            if (task() != nullptr) task()->restore_cancel_request();
            return;
        }
        (void)checked_result();
    }

private:
    int m_fd;
};

}  // namespace io

namespace detail {

/// co_await f.close() for an owner of a descriptor (file, socket): the descriptor is taken from
/// the owner when the await begins, not when close() is called, so a close() that is never
/// awaited leaves it with its owner, whose destructor then closes it.
class [[nodiscard]] close_owned {
public:
    explicit close_owned(int& owner) noexcept : m_owner(&owner) {}
    bool await_ready() {
        m_op.emplace(std::exchange(*m_owner, -1));
        return m_op->await_ready();
    }
    bool await_suspend(std::coroutine_handle<> frame) { return m_op->await_suspend(frame); }
    void await_resume() const { m_op->await_resume(); }

private:
    int* m_owner;
    std::optional<io::close> m_op;
};

}  // namespace detail

namespace io {

/// IORING_OP_STATX: fills `*out` for `path` relative to `dir_fd` (statx(2)); with `path` ""
/// and AT_EMPTY_PATH in `flags`, for `dir_fd` itself.
class [[nodiscard]] statx final : public detail::io_awaiter<statx> {
public:
    statx(int dir_fd, const char* path, int flags, unsigned mask, struct ::statx* out) noexcept
        : m_dir_fd(dir_fd), m_path(path), m_flags(flags), m_mask(mask), m_out(out) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_statx(sqe, m_dir_fd, m_path, m_flags, m_mask, m_out); }
    [[nodiscard]] std::string describe() const {
        return m_path == nullptr || *m_path == '\0' ? detail::describe_fd_op("statx", m_dir_fd) : detail::describe_path_op("statx", m_path);
    }
    void await_resume() const { (void)checked_result(); }

private:
    int m_dir_fd;
    const char* m_path;
    int m_flags;
    unsigned m_mask;
    struct ::statx* m_out;
};

/// IORING_OP_FSYNC: fsync(2), or fdatasync(2) with IORING_FSYNC_DATASYNC in `flags`.
class [[nodiscard]] fsync final : public detail::io_awaiter<fsync> {
public:
    explicit fsync(int fd, unsigned flags = 0) noexcept : m_fd(fd), m_flags(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_fsync(sqe, m_fd, m_flags); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op(m_flags & IORING_FSYNC_DATASYNC ? "fdatasync" : "fsync", m_fd); }
    void await_resume() const { (void)checked_result(); }

private:
    int m_fd;
    unsigned m_flags;
};

/// IORING_OP_ACCEPT (one shot): the next connection on the listening socket `fd`. Yields the
/// new descriptor (SOCK_CLOEXEC unless `flags` says otherwise); `peer`/`peer_length` receive
/// the peer's address when not null (*peer_length holds the capacity on entry).
class [[nodiscard]] accept final : public detail::io_awaiter<accept> {
public:
    explicit accept(int fd, ::sockaddr* peer = nullptr, ::socklen_t* peer_length = nullptr, int flags = SOCK_CLOEXEC) noexcept
        : m_fd(fd), m_peer(peer), m_peer_length(peer_length), m_flags(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_accept(sqe, m_fd, m_peer, m_peer_length, m_flags); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("accept", m_fd); }
    int await_resume() const { return checked_result(); }

private:
    int m_fd;
    ::sockaddr* m_peer;
    ::socklen_t* m_peer_length;
    int m_flags;
};

/// IORING_OP_CONNECT of socket `fd` to `address` (which must outlive the await).
class [[nodiscard]] connect final : public detail::io_awaiter<connect> {
public:
    connect(int fd, const ::sockaddr* address, ::socklen_t length) noexcept : m_fd(fd), m_address(address), m_length(length) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_connect(sqe, m_fd, m_address, m_length); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("connect", m_fd); }
    void await_resume() const { (void)checked_result(); }

private:
    int m_fd;
    const ::sockaddr* m_address;
    ::socklen_t m_length;
};

/// IORING_OP_RECV: yields the bytes received into `buffer`; 0 when the peer has shut down its
/// side (stream sockets).
class [[nodiscard]] recv final : public detail::io_awaiter<recv> {
public:
    recv(int fd, std::span<std::byte> buffer, int flags = 0) noexcept : m_fd(fd), m_buffer(buffer), m_flags(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_recv(sqe, m_fd, m_buffer.data(), detail::clamp_length(m_buffer.size()), m_flags); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("recv", m_fd); }
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

private:
    int m_fd;
    std::span<std::byte> m_buffer;
    int m_flags;
};

/// IORING_OP_SEND: yields the bytes sent, which may be fewer than data.size(). MSG_NOSIGNAL is
/// the default: a closed peer is EPIPE, not a SIGPIPE that kills the process.
class [[nodiscard]] send final : public detail::io_awaiter<send> {
public:
    send(int fd, std::span<const std::byte> data, int flags = MSG_NOSIGNAL) noexcept : m_fd(fd), m_data(data), m_flags(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_send(sqe, m_fd, m_data.data(), detail::clamp_length(m_data.size()), m_flags); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("send", m_fd); }
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

private:
    int m_fd;
    std::span<const std::byte> m_data;
    int m_flags;
};

/// IORING_OP_SPLICE: moves up to `length` bytes from `fd_in` to `fd_out` inside the kernel, one
/// of which must be a pipe (splice(2)). An offset of -1 uses the descriptor's position (a pipe
/// has none and must be given -1). Yields the bytes moved; 0 at the end of the input. The kernel
/// runs it in a worker thread: a splice into a full socket waits there, not on the loop.
class [[nodiscard]] splice final : public detail::io_awaiter<splice> {
public:
    splice(int fd_in, std::int64_t offset_in, int fd_out, std::int64_t offset_out, std::size_t length, unsigned flags = SPLICE_F_MOVE) noexcept
        : m_fd_in(fd_in), m_fd_out(fd_out), m_offset_in(offset_in), m_offset_out(offset_out), m_length(length), m_flags(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        io_uring_prep_splice(sqe, m_fd_in, m_offset_in, m_fd_out, m_offset_out, detail::clamp_length(m_length), m_flags);
    }
    [[nodiscard]] std::string describe() const {
        return "splice(fd " + std::to_string(m_fd_in) + " -> fd " + std::to_string(m_fd_out) + ")";
    }
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

private:
    int m_fd_in;
    int m_fd_out;
    std::int64_t m_offset_in;
    std::int64_t m_offset_out;
    std::size_t m_length;
    unsigned m_flags;
};

/// IORING_OP_RECVMSG: recvmsg(2) into `*message` (which, with its iovecs and name buffer, must
/// outlive the await). Yields the bytes received.
class [[nodiscard]] recvmsg final : public detail::io_awaiter<recvmsg> {
public:
    recvmsg(int fd, ::msghdr* message, unsigned flags = 0) noexcept : m_fd(fd), m_message(message), m_flags(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_recvmsg(sqe, m_fd, m_message, m_flags); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("recvmsg", m_fd); }
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

private:
    int m_fd;
    ::msghdr* m_message;
    unsigned m_flags;
};

/// IORING_OP_SENDMSG: sendmsg(2) of `*message` (which must outlive the await); MSG_NOSIGNAL by
/// default. Yields the bytes sent.
class [[nodiscard]] sendmsg final : public detail::io_awaiter<sendmsg> {
public:
    sendmsg(int fd, const ::msghdr* message, unsigned flags = MSG_NOSIGNAL) noexcept : m_fd(fd), m_message(message), m_flags(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_sendmsg(sqe, m_fd, m_message, m_flags); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("sendmsg", m_fd); }
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

private:
    int m_fd;
    const ::msghdr* m_message;
    unsigned m_flags;
};

/// IORING_OP_SHUTDOWN: shutdown(2) with SHUT_RD, SHUT_WR or SHUT_RDWR.
class [[nodiscard]] shutdown final : public detail::io_awaiter<shutdown> {
public:
    shutdown(int fd, int how) noexcept : m_fd(fd), m_how(how) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_shutdown(sqe, m_fd, m_how); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("shutdown", m_fd); }
    void await_resume() const { (void)checked_result(); }

private:
    int m_fd;
    int m_how;
};

/// IORING_OP_SOCKET (Linux 5.19): socket(2); yields the new descriptor. SOCK_CLOEXEC is always
/// added. On a kernel without the opcode (the CQE says -EINVAL) the socket() system call is
/// used instead, and from then on directly, without a round trip through the ring.
class [[nodiscard]] socket final : public detail::io_awaiter<socket> {
public:
    socket(int domain, int type, int protocol = 0) noexcept : m_domain(domain), m_type(type | SOCK_CLOEXEC), m_protocol(protocol) {}

    /// A kernel known to lack IORING_OP_SOCKET: make the system call now and do not suspend.
    bool await_ready() noexcept {
        if (!s_unsupported.load(std::memory_order_relaxed)) return false;
        m_fallback = syscall_fallback();
        return true;
    }
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_socket(sqe, m_domain, m_type, m_protocol, 0); }
    [[nodiscard]] std::string describe() const {
        return "socket(" + std::to_string(m_domain) + ", " + std::to_string(m_type & ~(SOCK_CLOEXEC | SOCK_NONBLOCK)) + ")";
    }
    int await_resume() {
        if (m_fallback == no_fallback && !cancelled() && raw_result() == -EINVAL) {
            // Unknown opcode, or a genuinely invalid argument: the system call tells which.
            m_fallback = syscall_fallback();
            if (m_fallback >= 0) s_unsupported.store(true, std::memory_order_relaxed);
        }
        if (m_fallback == no_fallback) return checked_result();
        if (m_fallback < 0) detail::throw_errno(-m_fallback, describe());
        return m_fallback;
    }

private:
    friend struct coring::detail::test_access;  // takes the fallback as on a kernel without IORING_OP_SOCKET
    static constexpr int no_fallback = 1 << 30;
    int syscall_fallback() const noexcept {
        const int fd = ::socket(m_domain, m_type, m_protocol);
        return fd >= 0 ? fd : -errno;
    }

    static inline std::atomic<bool> s_unsupported{false};
    int m_domain;
    int m_type;
    int m_protocol;
    int m_fallback = no_fallback;  // the system call's descriptor or -errno, once it was used
};

// ---------------------------------------------------------------------- link timeouts

/// An io_uring operation awaited with a link timeout (see io::with_timeout).
template <class Op>
class [[nodiscard]] timed {
public:
    timed(Op op, std::chrono::nanoseconds timeout) noexcept(std::is_nothrow_move_constructible_v<Op>) : m_op(std::move(op)) {
        if (timeout < std::chrono::nanoseconds::zero()) timeout = std::chrono::nanoseconds::zero();
        const auto seconds = std::chrono::duration_cast<std::chrono::seconds>(timeout);
        m_timeout.tv_sec = seconds.count();
        m_timeout.tv_nsec = (timeout - seconds).count();
    }

    bool await_ready() { return m_op.await_ready(); }
    bool await_suspend(std::coroutine_handle<> frame) { return m_op.await_suspend_with_link_timeout(frame, m_timeout); }
    decltype(auto) await_resume() { return m_op.await_resume(); }

private:
    Op m_op;
    __kernel_timespec m_timeout{};  // read by the kernel when the pair is submitted
};

/// Awaits `op` with a time limit: the operation's SQE is linked to an IORING_OP_LINK_TIMEOUT
/// (one more SQE, no timer in user space). If the timeout fires first, the kernel cancels the
/// operation and awaiting it throws coring::timeout_error ("recv(fd 7): timed out") once the
/// operation's own CQE has arrived, so the buffer is free again. An operation that completes
/// first returns normally. Cancelling the task still throws cancelled_error.
///
///   std::size_t n = co_await io::with_timeout(io::recv(fd, buf), 5s);
template <class Op, class Rep, class Period>
    requires std::derived_from<Op, detail::io_awaiter<Op>>
[[nodiscard]] timed<Op> with_timeout(Op op, std::chrono::duration<Rep, Period> timeout) {
    return timed<Op>(std::move(op), std::chrono::ceil<std::chrono::nanoseconds>(timeout));
}

}  // namespace io
}  // namespace coring
