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

#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>

#include <liburing.h>
#include <poll.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace coring {
namespace detail {

/// The machinery shared by every operation. Derived provides
///   void prepare(io_uring_sqe*)           fill in the SQE (not user_data)
///   std::string describe() const           "read(fd 7)", for error messages
///   R await_resume()                       usually: return checked_result();
template <class Derived>
class io_awaiter : public io_completion, public leaf_awaiter<ready_node> {
public:
    io_awaiter() noexcept : io_completion(&on_complete), leaf_awaiter(operations_) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    bool await_suspend(std::coroutine_handle<> frame) {
        if (!begin_suspend(frame)) return false;
        event_loop& loop = this->loop();
        io_uring_sqe* sqe = loop.get_sqe();
        static_cast<Derived*>(this)->prepare(sqe);
        loop.submit(sqe, *this);
        arm();
        return true;
    }

protected:
    /// The CQE's result: throws cancelled_error if the operation was cancelled, and
    /// std::system_error for any other negative result.
    int checked_result() const {
        throw_if_cancelled();
        if (m_result >= 0) return m_result;
        throw_errno(-m_result, static_cast<const Derived*>(this)->describe());
    }

    [[nodiscard]] int raw_result() const noexcept { return m_result; }
    [[nodiscard]] unsigned cqe_flags() const noexcept { return m_flags; }

private:
    static void on_complete(io_completion* base, int result, unsigned flags) noexcept {
        auto* self = static_cast<io_awaiter*>(base);
        self->m_result = result;
        self->m_flags = flags;
        if (self->m_cancel_sent) {
            if (result == -ECANCELED || result == -EINTR)
                self->mark_cancelled();  // the operation did not happen
            else if (self->task() != nullptr)
                self->task()->restore_cancel_request();  // completed first: the request lives on
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

    static constexpr operations operations_{&resume_frame, &on_cancel};

    int m_result = 0;
    unsigned m_flags = 0;
    bool m_cancel_sent = false;
};

inline std::string describe_fd_op(const char* op, int fd) { return std::string(op) + "(fd " + std::to_string(fd) + ")"; }

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
        io_uring_prep_read(sqe, m_fd, m_buffer.data(), static_cast<unsigned>(m_buffer.size()), static_cast<std::uint64_t>(m_offset));
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
        io_uring_prep_write(sqe, m_fd, m_data.data(), static_cast<unsigned>(m_data.size()), static_cast<std::uint64_t>(m_offset));
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

}  // namespace io
}  // namespace coring
