#pragma once
// io::multishot_recv: a multishot receive into a buffer ring, its chunks handed out in order
// through next() as leases (see io/buffer_ring.hpp for how the kernel side works, and the class
// comment below).

#include <coring/detail/circular_buffer.hpp>
#include <coring/detail/detaching_ptr.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/test_access.hpp>
#include <coring/detail/waiter_pins.hpp>
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

class multishot_recv_waiter;

/// The state of an io::multishot_recv: heap-allocated because the armed request outlives any one
/// await (and the handle). It frees itself once the handle is gone and the request has ended.
///
/// Invariants: while m_waiter is set, m_queue is empty and m_finished is false; m_queue holds
/// chunks only (result > 0), at most m_max_queued plus those of the request's CQEs that were in
/// flight when it was stopped for being full; once m_finished, no chunk is queued any more and
/// the end (m_end: 0 or -errno) follows the queued chunks, for every next() from then on.
class multishot_recv_state final : public multishot_recv_core<multishot_recv_state>, public pinned_by_waiters<multishot_recv_state> {
public:
    struct entry {
        int result;          // > 0: bytes in buffer bid; 0: end of stream; < 0: -errno
        std::uint16_t bid;
    };

    multishot_recv_state(event_loop& loop, int fd, io::buffer_ring_ptr ring, std::size_t max_queued) noexcept
        : multishot_recv_core(loop, fd, std::move(ring)), m_max_queued(max_queued == 0 ? 1 : max_queued) {}

    /// The handle goes away: stop; wake a waiter with detached_result; free once the request has
    /// ended and no suspended waiter points here (pinned_by_waiters).
    void detach() noexcept;

    /// What next() returns now: the first queued chunk, else the end once it came (again on
    /// every call: it is final). False: nothing yet, wait.
    bool take(entry& out) noexcept {
        if (!m_queue.empty()) {
            out = m_queue.pop_front();
            return true;
        }
        if (!m_finished) return false;
        out = entry{m_end, 0};
        return true;
    }
    /// A chunk handed to a waiter that was cancelled before it ran goes back to the front. (An
    /// end handed that way needs nothing: take() returns it again.)
    void give_back(entry e) noexcept {
        if (e.result <= 0) return;
        if (m_detached) {
            ring().recycle(e.bid);
            return;
        }
        try {
            m_queue.push_front(std::move(e));
        } catch (...) {
            ring().recycle(e.bid);  // out of memory: the chunk is lost
        }
    }
    [[nodiscard]] std::size_t queued() const noexcept { return m_queue.size(); }
    void set_waiter(multishot_recv_waiter* w) noexcept { m_waiter = w; }
    [[nodiscard]] multishot_recv_waiter* waiter() const noexcept { return m_waiter; }
    /// Arms the receive if it should run (room in the queue, nobody stopped it for good).
    void maybe_start() {
        if (wants_data()) start();
    }

    // ---- multishot_recv_core's interface
    void on_chunk(std::uint16_t bid, std::size_t size) noexcept;
    void on_end(int result) noexcept;
    [[nodiscard]] bool wants_data() const noexcept { return !m_detached && m_queue.size() < m_max_queued; }
    void on_idle() noexcept { free_if_unused(); }
    void free_if_unused() noexcept {
        if (m_detached && !pinned() && !active()) delete this;
    }

private:
    void deliver(entry e) noexcept;

    circular_buffer<entry> m_queue;
    multishot_recv_waiter* m_waiter = nullptr;
    std::size_t m_max_queued;
    int m_end = 0;            // once m_finished: 0 (end of stream) or -errno
    bool m_finished = false;  // the end came: next() returns it once the queue is drained
    bool m_detached = false;
};

/// co_await receiver.next(): the next chunk as a lease (empty at end of stream). Resumes through
/// the ready queue when data arrives, or at once if a chunk is queued. A cancel while waiting wins
/// and takes nothing: a chunk already handed to this waiter goes back to the front of the queue.
class multishot_recv_waiter final : public leaf_awaiter<ready_node> {
public:
    explicit multishot_recv_waiter(multishot_recv_state* state) noexcept : leaf_awaiter(operations_), m_state(state) {}
    multishot_recv_waiter(multishot_recv_waiter&& other) noexcept : leaf_awaiter(std::move(other)), m_state(other.m_state) {}

    bool await_ready() {
        if (m_state == nullptr) throw std::logic_error("coring: next() on a moved-from io::multishot_recv");
        if (m_state->waiter() != nullptr) throw invalid_state_error("coring: two tasks await next() of one io::multishot_recv");
        if (!m_state->take(m_entry)) return false;
        m_state->maybe_start();  // there is room again (a no-op once ended)
        return true;
    }

    bool await_suspend(std::coroutine_handle<> frame) {
        if (!begin_suspend(frame)) return false;
        m_state->maybe_start();
        m_state->set_waiter(this);
        m_pin.pin(*m_state);
        arm();
        return true;
    }

    io::received await_resume() {
        throw_if_cancelled();
        if (m_entry.result == multishot_recv_state::detached_result)
            throw invalid_state_error("coring: io::multishot_recv destroyed while a task awaited next()");
        if (m_entry.result > 0) return io::received(io::buffer_ring_ptr::share(&m_state->ring()), m_entry.bid, static_cast<std::size_t>(m_entry.result));
        if (m_entry.result < 0) throw_errno(-m_entry.result, describe_fd_op("recv", m_state->fd()));
        return io::received();
    }

private:
    friend class multishot_recv_state;

    void hand(multishot_recv_state::entry e) noexcept {
        m_entry = e;
        m_handed = true;
        wake();
    }

    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<multishot_recv_waiter*>(node);
        self->take_cancel_request();
        self->mark_cancelled();
        if (self->m_handed) {
            self->m_handed = false;
            self->m_state->give_back(self->m_entry);  // already scheduled: it throws when it runs
        } else {
            self->m_state->set_waiter(nullptr);
            self->wake();
        }
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const multishot_recv_waiter*>(node);
        out.what = describe_fd_op("multishot recv", self->m_state->fd());
    }

    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe};

    multishot_recv_state* m_state;
    multishot_recv_state::entry m_entry{0, 0};
    bool m_handed = false;
    state_pin<multishot_recv_state> m_pin;  // keeps the state alive while this is suspended
};

inline void multishot_recv_state::detach() noexcept {
    m_detached = true;
    while (!m_queue.empty()) ring().recycle(m_queue.pop_front().bid);
    if (m_waiter != nullptr) std::exchange(m_waiter, nullptr)->hand(entry{detached_result, 0});
    stop();
    on_idle();
}

inline void multishot_recv_state::deliver(entry e) noexcept {
    if (m_waiter != nullptr) {
        multishot_recv_waiter* w = std::exchange(m_waiter, nullptr);
        w->hand(e);
        return;
    }
    try {
        m_queue.push_back(std::move(e));
    } catch (...) {
        if (e.result > 0) ring().recycle(e.bid);  // out of memory: the chunk is lost
        return;
    }
    if (m_queue.size() >= m_max_queued) stop();  // full: the socket buffer holds the rest
}

inline void multishot_recv_state::on_chunk(std::uint16_t bid, std::size_t size) noexcept {
    if (m_detached) {
        ring().recycle(bid);
        return;
    }
    deliver(entry{static_cast<int>(size), bid});
}

inline void multishot_recv_state::on_end(int result) noexcept {
    m_finished = true;
    m_end = result;
    // A waiter implies an empty queue: hand it the end. Else take() returns it after the chunks.
    if (!m_detached && m_waiter != nullptr) std::exchange(m_waiter, nullptr)->hand(entry{result, 0});
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
