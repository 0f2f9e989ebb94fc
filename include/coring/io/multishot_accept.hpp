#pragma once
// io::multishot_accept: one multishot IORING_OP_ACCEPT kept armed on a listening socket, its
// connections handed out in order through next() (see the class comment below).
//
// Thread-safety: loop-bound. A multishot accept belongs to the event loop it was made on and is
// used by that loop's tasks; in debug mode, an operation started from another thread throws
// std::logic_error naming both threads. Several cores: one per loop of a loop_group
// (thread/loop_group.hpp).

#include <coring/detail/detaching_ptr.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/multishot_handoff.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/test_access.hpp>
#include <coring/errors.hpp>
#include <coring/io/ops.hpp>

#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace coring {
namespace io {

// ---------------------------------------------------------------------- multishot accept

class multishot_accept;

}  // namespace io

namespace detail {

class multishot_accept_waiter;

/// The state of a multishot accept, shared by the io::multishot_accept handle and the kernel.
/// It is the one heap object here: the armed SQE outlives any single await (and, after the
/// handle is destroyed, lives on until its last CQE), so it cannot live in an awaiting frame.
///
/// Results (a descriptor, or -errno) go through multishot_handoff (detail/multishot_handoff.hpp).
///
/// Invariants: m_armed is true from an arm() until the CQE without IORING_CQE_F_MORE; the queue
/// holds at most m_max_queued results, plus those that were already completed when the cancel
/// that stops accepting was sent and one given back by a cancelled waiter.
class multishot_accept_state final : public io_completion, public multishot_handoff<multishot_accept_state, int> {
public:
    multishot_accept_state(int listen_fd, std::size_t max_queued, int flags) noexcept
        : io_completion(&on_cqe), m_listen_fd(listen_fd), m_flags(flags), m_max_queued(max_queued == 0 ? 1 : max_queued) {}

    // ---- multishot_handoff's interface
    static void discard(int& result) noexcept {
        if (result >= 0) ::close(result);  // a connection nobody will take
    }
    static bool is_final(int) noexcept { return false; }

    /// Arms the SQE if it is not armed and accepting is allowed: the queue has room and no error
    /// waits to be reported (an error ends the multishot; the next next() starts it again, so a
    /// server out of descriptors (EMFILE) backs off instead of spinning).
    void maybe_arm(scheduler& loop) {
        m_loop = &loop;
        if (m_armed || detached() || m_paused || queued() >= m_max_queued) return;
        io_uring_sqe* sqe = loop.get_sqe();
        if (m_multishot)
            io_uring_prep_multishot_accept(sqe, m_listen_fd, nullptr, nullptr, m_flags);
        else
            io_uring_prep_accept(sqe, m_listen_fd, nullptr, nullptr, m_flags);
        loop.submit(sqe, *this);
        m_armed = true;
        ++m_arm_count;
    }

    /// The handle goes away: stop accepting and wake every waiter with detached_result. The state
    /// frees itself once its last CQE came (closing any connection that arrives meanwhile) and
    /// no suspended waiter points here (pinned_by_waiters).
    void detach() noexcept;
    void free_if_unused() noexcept {
        if (detached() && !m_armed && !pinned()) delete this;
    }

    /// Ends the armed request as the kernel may (its last CQE is -ECANCELED), which re-arms it.
    void interrupt_for_testing() {
        if (m_armed) m_loop->cancel_io(*this);
    }

    /// A next() call found the queue empty: an error that paused accepting has been reported.
    void resume_accepting() noexcept { m_paused = false; }

    [[nodiscard]] bool armed() const noexcept { return m_armed; }
    [[nodiscard]] unsigned arm_count() const noexcept { return m_arm_count; }
    [[nodiscard]] int listen_fd() const noexcept { return m_listen_fd; }
    [[nodiscard]] scheduler* loop() const noexcept { return m_loop; }

private:
    static void on_cqe(io_completion* base, int result, unsigned flags) noexcept;
    void deliver_result(int result) noexcept;
    /// Cancels the armed request (its last CQE still arrives).
    void stop() noexcept {
        if (m_stopping) return;
        try {
            m_loop->cancel_io(*this);
            m_stopping = true;
        } catch (...) {
            // No SQE to be had: the request goes on; a full queue grows past its bound meanwhile,
            // a detached state closes what arrives until a CQE ends the request.
        }
    }

    scheduler* m_loop = nullptr;
    int m_listen_fd;
    int m_flags;
    std::size_t m_max_queued;
    unsigned m_arm_count = 0;
    bool m_armed = false;
    bool m_stopping = false;   // a cancel was sent because the queue is full or the handle left
    bool m_paused = false;     // an error ended the multishot; re-armed by the next next()
    bool m_multishot = true;   // false on kernels without IORING_ACCEPT_MULTISHOT (before 5.19)
};

/// co_await acceptor.next(): the next accepted descriptor. Resumes through the ready queue
/// when a connection arrives (or at once when one is queued). A cancel while waiting wins and
/// takes nothing: a descriptor already handed to this waiter goes to the next waiter or back to
/// the front of the queue.
class multishot_accept_waiter final : public multishot_waiter<multishot_accept_state, int> {
public:
    explicit multishot_accept_waiter(multishot_accept_state* state) noexcept : multishot_waiter(operations_, state) {}
    multishot_accept_waiter(multishot_accept_waiter&& other) noexcept = default;

    bool await_ready() {
        if (m_state == nullptr) throw std::logic_error("coring: next() on a moved-from io::multishot_accept");
        if (!m_state->has_queued()) {
            m_state->resume_accepting();  // an error that paused accepting has been reported
            return false;
        }
        m_item = m_state->pop_queued();
        if (m_item >= 0) m_state->maybe_arm(running_scheduler());  // there is room again
        return true;
    }

    bool await_suspend(std::coroutine_handle<> frame) {
        if (!begin_suspend(frame)) return false;
        m_state->maybe_arm(loop());
        wait_for_result();
        arm();
        return true;
    }

    int await_resume() const {
        throw_if_cancelled();
        if (m_item == multishot_accept_state::detached_result)
            throw invalid_state_error("coring: io::multishot_accept destroyed while a task awaited next()");
        if (m_item < 0) throw_errno(-m_item, describe_fd_op("accept", m_state->listen_fd()));
        return m_item;
    }

private:
    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const multishot_accept_waiter*>(node);
        out.what = describe_fd_op("multishot accept", self->m_state->listen_fd());
        if (self->m_handed) out.what += ", connection handed over";
    }

    static int opcode_of(const ready_node*) noexcept { return IORING_OP_ACCEPT; }
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::io, &opcode_of};
};

inline void multishot_accept_state::detach() noexcept {
    detach_waiters(detached_result);
    if (m_armed) stop();
    free_if_unused();
}

inline void multishot_accept_state::deliver_result(int result) noexcept {
    // Full: stop accepting; the listen backlog holds the next connections until next() makes
    // room and re-arms.
    if (deliver(result) && m_armed && queued() >= m_max_queued) stop();
}

inline void multishot_accept_state::on_cqe(io_completion* base, int result, unsigned flags) noexcept {
    auto* self = static_cast<multishot_accept_state*>(base);
    const bool last = (flags & IORING_CQE_F_MORE) == 0;
    if (last) {
        self->m_armed = false;
        self->m_stopping = false;
    }
    if (self->detached()) {
        discard(result);
        if (last) self->free_if_unused();
        return;
    }
    if (result == -ECANCELED && last) {
        // Stopped by us (queue full) or by someone else: not an error to report. Re-armed below.
    } else if (result == -EINVAL && last && self->m_multishot) {
        self->m_multishot = false;  // no multishot accept on this kernel: single shots from now on
    } else {
        if (result < 0 && last) self->m_paused = true;
        self->deliver_result(result);
    }
    if (last) {
        try {
            self->maybe_arm(*self->m_loop);
        } catch (const std::system_error& e) {
            self->deliver_result(-e.code().value());  // the ring is unusable: report it to next()
        } catch (...) {
            self->deliver_result(-ENOMEM);
        }
    }
}

}  // namespace detail

namespace io {

/// Multishot IORING_OP_ACCEPT on a listening socket: one SQE stays armed and produces a CQE per
/// connection; next() hands them out in order.
///
///   io::multishot_accept acceptor(listen_fd);
///   for (;;) { int fd = co_await acceptor.next(); ... }
///
/// - Armed by the first next(); re-armed whenever the kernel ends the request (a CQE without
///   IORING_CQE_F_MORE: completion queue overflow, a cancel, kernels without multishot accept).
/// - Connections that arrive while nobody awaits are queued, up to `max_queued`; then the SQE
///   is cancelled and the kernel's listen backlog holds the rest until next() makes room.
/// - An error (EMFILE, ENFILE, ...) ends the multishot and is thrown by next() as
///   std::system_error ("accept(fd 5): Too many open files"); the next call to next() arms it
///   again, so a server can back off and retry.
/// - Destroying the handle cancels the SQE; descriptors still queued, or arriving before the
///   cancel lands, are closed; a task still awaiting next() throws coring::invalid_state_error
///   (one already handed a descriptor gets it). Destroy it before its loop closes.
/// - Descriptors are SOCK_CLOEXEC (unless `flags` says otherwise); no peer address is taken
///   (getpeername() gives it).
class multishot_accept {
public:
    explicit multishot_accept(int listen_fd, std::size_t max_queued = 64, int flags = SOCK_CLOEXEC)
        : m_state(new detail::multishot_accept_state(listen_fd, max_queued, flags)) {}

    /// The next connection's descriptor (the caller owns it). Resumes when one arrives, or at
    /// once if one is queued.
    [[nodiscard]] detail::multishot_accept_waiter next() noexcept { return detail::multishot_accept_waiter(m_state.get()); }

    /// Connections accepted and not yet handed out.
    [[nodiscard]] std::size_t queued() const noexcept { return m_state.get() != nullptr ? m_state.get()->queued() : 0; }
    /// True while the SQE is in the kernel.
    [[nodiscard]] bool armed() const noexcept { return m_state.get() != nullptr && m_state.get()->armed(); }
private:
    friend struct detail::test_access;  // the re-arm count, and ending the request as the kernel may
    detail::detaching_ptr<detail::multishot_accept_state> m_state;  // moves; detaches the state when destroyed
};

}  // namespace io
}  // namespace coring
