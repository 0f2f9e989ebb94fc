#pragma once
// io::multishot_recv: a multishot receive into a buffer ring, its chunks handed out in order
// through next() as leases (see io/buffer_ring.hpp for how the kernel side works, and the class
// comment below).
//
// Thread-safety: loop-bound. A multishot receive belongs to the event loop it was made on and is
// used by that loop's tasks; in debug mode, an operation started from another thread throws
// std::logic_error naming both threads. Several cores: one per loop of a loop_group
// (thread/loop_group.hpp).

#include <coring/detail/detaching_ptr.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/multishot_handoff.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/test_access.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/io/buffer_ring.hpp>
#include <coring/io/ops.hpp>

#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <utility>

namespace coring {
namespace detail {

/// One result of the receive: a chunk (result > 0: bytes in buffer bid), the end of the stream
/// (0), an error (-errno), or detached_result.
struct multishot_recv_entry {
    int result = 0;
    std::uint16_t bid = 0;
};

/// The state of an io::multishot_recv: heap-allocated because the armed request outlives any one
/// await (and the handle). It frees itself once the handle is gone and the request has ended.
/// Chunks go through multishot_handoff (detail/multishot_handoff.hpp).
///
/// Invariants: the queue holds chunks only, at most m_max_queued plus those of the request's
/// CQEs that were in flight when it was stopped for being full; once m_finished, no chunk is
/// queued any more and the end (m_end: 0 or -errno) follows the queued chunks, for every next()
/// from then on.
class multishot_recv_state final : public multishot_recv_core<multishot_recv_state>,
                                   public multishot_handoff<multishot_recv_state, multishot_recv_entry> {
public:
    using entry = multishot_recv_entry;

    multishot_recv_state(event_loop& loop, int fd, io::buffer_ring_ptr ring, std::size_t max_queued) noexcept
        : multishot_recv_core(loop, fd, std::move(ring)), m_max_queued(max_queued == 0 ? 1 : max_queued) {}

    /// The handle goes away: stop; wake a waiter with detached_result; free once the request has
    /// ended and no suspended waiter points here (pinned_by_waiters).
    void detach() noexcept {
        detach_waiters(entry{detached_result, 0});
        stop();
        on_idle();
    }

    /// What next() returns now: the first queued chunk, else the end once it came (again on
    /// every call: it is final). False: nothing yet, wait.
    bool take(entry& out) noexcept {
        if (has_queued()) {
            out = pop_queued();
            return true;
        }
        if (!m_finished) return false;
        out = entry{m_end, 0};
        return true;
    }
    /// Arms the receive if it should run (room in the queue, nobody stopped it for good).
    void maybe_start() {
        if (wants_data()) start();
    }

    // ---- multishot_handoff's interface
    /// A chunk nobody will take goes back to the ring.
    void discard(entry& e) noexcept {
        if (e.result > 0) ring().recycle(e.bid);
    }
    static bool is_final(const entry& e) noexcept { return e.result <= 0; }

    // ---- multishot_recv_core's interface
    void on_chunk(std::uint16_t bid, std::size_t size) noexcept;
    void on_end(int result) noexcept;
    [[nodiscard]] bool wants_data() const noexcept { return !detached() && queued() < m_max_queued; }
    void on_idle() noexcept { free_if_unused(); }
    void free_if_unused() noexcept {
        if (detached() && !pinned() && !active()) delete this;
    }

private:
    std::size_t m_max_queued;
    int m_end = 0;            // once m_finished: 0 (end of stream) or -errno
    bool m_finished = false;  // the end came: next() returns it once the queue is drained
};

/// co_await receiver.next(): the next chunk as a lease (empty at end of stream). Resumes through
/// the ready queue when data arrives, or at once if a chunk is queued. A cancel while waiting wins
/// and takes nothing: a chunk already handed to this waiter goes back to the front of the queue.
class multishot_recv_waiter final : public multishot_waiter<multishot_recv_state, multishot_recv_entry> {
public:
    explicit multishot_recv_waiter(multishot_recv_state* state) noexcept : multishot_waiter(operations_, state) {}
    multishot_recv_waiter(multishot_recv_waiter&& other) noexcept = default;

    bool await_ready() {
        if (m_state == nullptr) throw std::logic_error("coring: next() on a moved-from io::multishot_recv");
        if (m_state->has_waiters()) throw invalid_state_error("coring: two tasks await next() of one io::multishot_recv");
        if (!m_state->take(m_item)) return false;
        m_state->maybe_start();  // there is room again (a no-op once ended)
        return true;
    }

    bool await_suspend(std::coroutine_handle<> frame) {
        if (!begin_suspend(frame)) return false;
        m_state->maybe_start();
        wait_for_result();
        arm();
        return true;
    }

    io::received await_resume() {
        throw_if_cancelled();
        if (m_item.result == multishot_recv_state::detached_result)
            throw invalid_state_error("coring: io::multishot_recv destroyed while a task awaited next()");
        if (m_item.result > 0) return io::received(io::buffer_ring_ptr::share(&m_state->ring()), m_item.bid, static_cast<std::size_t>(m_item.result));
        if (m_item.result < 0) throw_errno(-m_item.result, describe_fd_op("recv", m_state->fd()));
        return io::received();
    }

private:
    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const multishot_recv_waiter*>(node);
        out.what = describe_fd_op("multishot recv", self->m_state->fd());
    }

    static int opcode_of(const ready_node*) noexcept { return IORING_OP_RECV; }
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::io, &opcode_of};
};

inline void multishot_recv_state::on_chunk(std::uint16_t bid, std::size_t size) noexcept {
    if (detached()) {
        ring().recycle(bid);
        return;
    }
    if (deliver(entry{static_cast<int>(size), bid}) && queued() >= m_max_queued) stop();  // full: the socket buffer holds the rest
}

inline void multishot_recv_state::on_end(int result) noexcept {
    m_finished = true;
    m_end = result;
    // A waiter implies an empty queue: hand it the end. Else take() returns it after the chunks.
    if (!detached()) hand_to_first(entry{result, 0});
}

}  // namespace detail

namespace io {

/// A multishot receive on a connected stream socket `fd` into the buffers of `ring`: one SQE
/// stays armed and produces a chunk per CQE; next() hands them out in order, as leases.
///
/// - Armed by the first next(); re-armed whenever the kernel ends the request (see the top of
///   this file), including after ENOBUFS, once a buffer is back.
/// - Chunks that arrive while nobody awaits are queued, up to `max_queued`; then the request is
///   cancelled and the socket's receive buffer holds the rest until next() makes room. Queued
///   chunks and leases you keep hold buffers of the ring: a ring shared by many receivers needs
///   room for them.
/// - End of stream: an empty lease; an error (ECONNRESET, ...) is thrown by next() as
///   std::system_error ("recv(fd 7): Connection reset by peer"). Both are final: every later
///   next() returns the same end, or throws the same error, at once.
/// - One task awaits next() at a time.
/// - Destroying the handle cancels the request; chunks still queued or still arriving are given
///   back to the ring; a task still awaiting next() throws coring::invalid_state_error (one
///   already handed a chunk gets it). The descriptor must stay open until the request has
///   ended (the handle does not own it; close it after destroying the handle, as a socket in
///   the same scope declared first does).
class multishot_recv {
public:
    multishot_recv(int fd, buffer_ring_ptr ring, std::size_t max_queued = 16) : m_state(make_state(fd, std::move(ring), max_queued)) {}

    /// The next chunk (an empty lease at end of stream). Resumes when data arrives, or at once
    /// if a chunk is queued.
    [[nodiscard]] detail::multishot_recv_waiter next() noexcept { return detail::multishot_recv_waiter(m_state.get()); }

    /// Chunks received and not yet handed out (the end is not counted).
    [[nodiscard]] std::size_t queued() const noexcept { return m_state.get() != nullptr ? m_state.get()->queued() : 0; }
    /// True while the SQE is in the kernel.
    [[nodiscard]] bool armed() const noexcept { return m_state.get() != nullptr && m_state.get()->armed(); }
private:
    friend struct detail::test_access;  // the re-arm count, and ending the request as the kernel may
    static detail::multishot_recv_state* make_state(int fd, buffer_ring_ptr ring, std::size_t max_queued) {
        if (!ring) throw std::invalid_argument("coring::io::multishot_recv: no buffer ring");
        event_loop& loop = ring->loop();
        return new detail::multishot_recv_state(loop, fd, std::move(ring), max_queued);
    }
    detail::detaching_ptr<detail::multishot_recv_state> m_state;  // moves; detaches the state when destroyed
};

}  // namespace io
}  // namespace coring
