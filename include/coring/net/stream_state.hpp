#pragma once
// detail::stream_state: the connection behind a stream_reader / stream_writer pair
// (net/stream.hpp), with the awaiters of its reads and drains and the wait for its TLS
// handshake. The handles are thin: every operation's work and every invariant of the
// connection's lifetime live here.

#include <coring/clock.hpp>
#include <coring/detail/byte_transport.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ref_ptr.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/timer_heap.hpp>
#include <coring/detail/wait_queue.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/io/buffer_ring.hpp>
#include <coring/io/file.hpp>
#include <coring/io/splice_file.hpp>
#include <coring/net/address.hpp>
#include <coring/net/socket.hpp>
#include <coring/net/socket_transport.hpp>
#include <coring/net/stream_errors.hpp>
#include <coring/net/stream_options.hpp>
#include <coring/net/stream_peer.hpp>
#include <coring/net/stream_reader_state.hpp>
#include <coring/net/stream_writer_state.hpp>
#include <coring/net/tls_context.hpp>
#include <coring/net/tls_session.hpp>
#include <coring/task.hpp>
#include <coring/wait_for.hpp>

#include <sys/socket.h>

#include <cassert>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace coring::detail {

class stream_read_awaiter;

/// Told once a stream's descriptor is closed (a server counts its open connections with it).
struct stream_close_listener {
    using function = void (*)(stream_close_listener*) noexcept;
    explicit stream_close_listener(function on_closed) noexcept : m_on_closed(on_closed) {}
    function m_on_closed;
};

/// The connection behind a stream_reader / stream_writer pair: a reader state and a writer
/// state over a transport, and the closing of all three.
///
///   stream_reader ──┐                       ┌─ reader_state ─┐
///   stream_writer ──┼─ refs ─▶ stream_state ┤                ├─▶ byte_transport ─▶ kernel operations
///   awaiters      ──┘                       └─ writer_state ─┘
///
/// Invariants:
/// - m_refs counts handles, awaiters and armed timers (m_timer_refs of them); the state is
///   deleted when m_refs is 0 and the transport is not busy (its kernel operations point here).
/// - Close is requested once only timers hold it: a timer keeps the memory, never the connection.
/// - The descriptor is closed (m_closed) only once close was requested and the transport is idle.
class stream_state final : public transport_client {
public:
    stream_state(event_loop& loop, socket connection, const address& peer, const stream_options& options, io::buffer_ring_ptr ring,
                 stream_close_listener* listener)
        : m_peer{peer, {}},
          m_listener(listener),
          m_socket(loop, connection.release(), std::move(ring), options.recv_buffer_size, *this),
          m_tls(start_tls(options)),
          m_transport(m_tls ? static_cast<byte_transport*>(m_tls.get()) : &m_socket),
          m_reader(*m_transport, m_peer, options.limit, m_socket.receive_size()),
          m_writer(*m_transport, m_peer, options.high_water, options.low_water),
          m_scheduler(&scheduler_of(loop)),
          m_read_timeout(options.read_timeout),
          m_idle_timeout(options.idle_timeout) {}

    /// A stream over one end of a pipe, which it owns from now on; `name` says which in errors
    /// ("the stdout pipe of process 1234"). A write end's reader is at its end from the start.
    stream_state(event_loop& loop, int pipe_fd, socket_transport::descriptor end, std::string name, const stream_options& options)
        : m_peer{address(), std::move(name)},
          m_listener(nullptr),
          m_socket(loop, pipe_fd, nullptr, options.recv_buffer_size, *this),
          m_transport(&m_socket),
          m_reader(*m_transport, m_peer, options.limit, m_socket.receive_size()),
          m_writer(*m_transport, m_peer, options.high_water, options.low_water),
          m_scheduler(&scheduler_of(loop)),
          m_read_timeout(options.read_timeout) {
        m_socket.use_pipe(end);
        if (end == socket_transport::descriptor::pipe_write_end) m_reader.ended(0);
    }

    stream_state(const stream_state&) = delete;
    stream_state& operator=(const stream_state&) = delete;

    void add_ref() noexcept { ++m_refs; }
    void release() noexcept {
        if (--m_refs > m_timer_refs) return;
        request_close();
        settle();
    }

    [[nodiscard]] reader_state& reader() noexcept { return m_reader; }
    [[nodiscard]] writer_state& writer() noexcept { return m_writer; }
    /// Starts reading ahead (called once the handles exist), and the idle clock.
    void start_reading() {
        if (m_idle_timeout.count() > 0) {
            m_last_activity = m_scheduler->time();
            arm(m_idle_timer, m_last_activity + m_idle_timeout);
        }
        m_transport->receive();
    }

    // ---- timeouts (stream_options::read_timeout and idle_timeout)
    [[nodiscard]] std::chrono::milliseconds read_timeout() const noexcept { return m_read_timeout; }
    /// The waiting read `r` times out after read_timeout unless disarm_read_timeout() comes first.
    void arm_read_timeout(stream_read_awaiter& r) {
        m_timed_read = &r;
        arm(m_read_timer, m_scheduler->time() + m_read_timeout);
    }
    void disarm_read_timeout() noexcept {
        m_timed_read = nullptr;
        disarm(m_read_timer);
    }
    /// The idle timeout aborted the connection.
    [[nodiscard]] bool idle_expired() const noexcept { return m_idle_expired; }

    /// close(): stop reading, close once the buffered data is sent (now, if nothing is in
    /// flight). Idempotent. Called through a handle, so the state outlives the call.
    void close() noexcept {
        request_close();
        settle();
    }
    [[nodiscard]] bool is_closing() const noexcept { return m_close_requested; }
    wait_queue& close_waiters() noexcept { return m_close_waiters; }
    [[nodiscard]] const bool& closed_flag() const noexcept { return m_closed; }

    /// The socket's peer (empty for a pipe).
    [[nodiscard]] const address& peer() const noexcept { return m_peer.socket_peer; }
    /// The other end in words: the peer's address, or the pipe.
    [[nodiscard]] std::string peer_text() const { return m_peer.to_string(); }
    [[nodiscard]] bool is_pipe() const noexcept { return !m_peer.pipe.empty(); }
    /// The descriptor, or -1 once closed.
    [[nodiscard]] int native_fd() const noexcept { return m_closed ? -1 : m_transport->native_fd(); }
    [[nodiscard]] bool uses_buffer_ring() const noexcept { return m_transport->uses_buffer_ring(); }
    /// The TLS session, or null on plaintext.
    [[nodiscard]] tls_session* tls() const noexcept { return m_tls.get(); }
    /// STARTTLS: a TLS session goes between the socket and the reader and writer, and its
    /// handshake starts. Nothing may be buffered for sending (it would be encrypted).
    void upgrade_to_tls(const tls_context& context, std::string_view server_hostname) {
        assert(m_tls == nullptr && m_writer.buffered() == 0);
        std::string name(server_hostname);
        if (name.empty() && !context.is_server()) name = m_peer.socket_peer.host();
        m_tls = context.engine()->start(m_socket, *this, name, m_peer.to_string());
        m_transport = m_tls.get();
        m_reader.set_transport(*m_transport);
        m_writer.set_transport(*m_transport);
        m_transport->receive();
    }

    // ---- transport_client
    [[nodiscard]] std::size_t receive_room() const noexcept override { return m_reader.room(); }
    std::span<std::byte> receive_space(std::size_t n) override { return m_reader.space(n); }
    void received(std::size_t n) noexcept override {
        note_activity();
        m_reader.received(n);
    }
    void receive_ended(int error) noexcept override { m_reader.ended(error); }
    void sent(int error) noexcept override {
        if (error == 0) note_activity();
        m_writer.sent(error);
    }
    /// Finishes a requested close when nothing is in flight; deletes the state when unreferenced.
    void settle() noexcept override {
        if (m_close_requested && !m_closed && !busy()) {
            m_transport->close();
            m_closed = true;
            m_writer.closed();
            m_close_waiters.grant_all();
            disarm(m_idle_timer);  // the reference it held: the check below may delete
            disarm(m_read_timer);
            if (stream_close_listener* listener = std::exchange(m_listener, nullptr)) listener->m_on_closed(listener);
        }
        if (m_refs == 0 && !busy()) delete this;
    }

    /// A kernel operation on the descriptor outside the transport (sendfile's splices) begins or
    /// ends: while one is in flight the descriptor stays open, even if the stream closes.
    void begin_external_operation() noexcept { ++m_external_operations; }
    void end_external_operation() noexcept {
        note_activity();
        --m_external_operations;
        settle();
    }

private:
    ~stream_state() {
        // Only settle() deletes, once the last reference went: release() requested the close and
        // nothing is in flight, so the descriptor is closed.
        assert(m_closed);
        m_close_waiters.abandon("coring::stream_writer (wait_closed)");
    }

    /// A TLS session over the socket when the options name a context; the client side checks
    /// server_hostname, or the peer's address when it is empty.
    std::unique_ptr<tls_session> start_tls(const stream_options& options) {
        if (!options.tls) return nullptr;
        const std::string peer_text = m_peer.to_string();
        std::string name(options.server_hostname);
        if (name.empty() && !options.tls->is_server()) name = m_peer.socket_peer.host();
        return options.tls->engine()->start(m_socket, *this, name, peer_text);
    }

    [[nodiscard]] bool busy() const noexcept { return m_transport->busy() || m_external_operations != 0; }

    /// A timer of the stream: while it is armed (in the loop's heap, or expired and queued to
    /// run) it holds a reference, so the state outlives it; at the loop's close it is discarded.
    struct timer final : timer_node {
        using function = void (*)(stream_state&) noexcept;
        timer(stream_state* owner, function expired) noexcept : timer_node(operations_), m_owner(owner), m_expired(expired) {}
        static void fire(ready_node* node, action what) noexcept {
            auto* self = static_cast<timer*>(static_cast<timer_node*>(node));
            stream_state& owner = *self->m_owner;
            self->m_armed = false;
            --owner.m_timer_refs;  // its reference counts as an ordinary one until released below
            if (what == action::run) self->m_expired(owner);
            owner.release();
        }
        static constexpr operations operations_{&fire};
        stream_state* m_owner;
        function m_expired;
        bool m_armed = false;  // scheduled, or expired and queued
    };

    void arm(timer& t, clock::time_point when) {
        if (t.m_armed) return;
        m_scheduler->add_timer(t, when);
        t.m_armed = true;
        ++m_refs;
        ++m_timer_refs;
    }
    /// Unschedules `t` if it has not expired yet. Drops its reference without deleting: the
    /// caller holds another one, or is settle(), which checks for deletion next.
    void disarm(timer& t) noexcept {
        if (!t.scheduled()) return;  // not armed, or expired and queued: fire() releases
        m_scheduler->remove_timer(t);
        t.m_armed = false;
        --m_refs;
        --m_timer_refs;
    }

    void note_activity() noexcept {
        if (m_idle_timeout.count() > 0) m_last_activity = m_scheduler->time();
    }

    static void read_timed_out(stream_state& self) noexcept;

    /// Nothing moved for idle_timeout: the reads and the writer fail with ETIMEDOUT, the socket
    /// is shut down (which ends its receive and send in flight) and the stream closes, as
    /// asyncio's transport.abort(). Activity since the timer was set: it is set again from the
    /// last activity.
    static void idle_timer_expired(stream_state& self) noexcept {
        if (self.m_closed || self.m_idle_expired) return;
        const clock::time_point due = self.m_last_activity + self.m_idle_timeout;
        if (self.m_scheduler->time() < due) {
            try {
                self.arm(self.m_idle_timer, due);
                return;
            } catch (...) {
                // No memory for the timer heap: treat it as expired.
            }
        }
        self.m_idle_expired = true;
        self.m_reader.ended(ETIMEDOUT);
        self.m_writer.sent(ETIMEDOUT);
        const int fd = self.m_socket.native_fd();
        if (fd >= 0) ::shutdown(fd, SHUT_RDWR);
        self.request_close();  // the timer's reference keeps the state alive through settle()
        self.settle();
    }

    void request_close() noexcept {
        if (m_close_requested) return;
        m_close_requested = true;
        m_transport->begin_close();
        m_reader.close();
        m_writer.close();
    }

    stream_peer m_peer;
    stream_close_listener* m_listener;
    socket_transport m_socket;
    std::unique_ptr<tls_session> m_tls;  // declared after the socket: destroyed before it
    byte_transport* m_transport;
    reader_state m_reader;
    writer_state m_writer;
    wait_queue m_close_waiters;
    scheduler* m_scheduler;
    std::chrono::milliseconds m_read_timeout{0};
    std::chrono::milliseconds m_idle_timeout{0};  // zero for pipes
    clock::time_point m_last_activity{};
    timer m_read_timer{this, &read_timed_out};
    timer m_idle_timer{this, &idle_timer_expired};
    stream_read_awaiter* m_timed_read = nullptr;  // the read m_read_timer is armed for
    unsigned m_refs = 1;
    unsigned m_timer_refs = 0;  // of m_refs
    unsigned m_external_operations = 0;
    bool m_close_requested = false;
    bool m_closed = false;
    bool m_idle_expired = false;
};

/// co_await reader.read(n) / readline() / readexactly(n) / readuntil(sep): resumes with the
/// result when the buffered bytes satisfy the read (at once if they do now), or when the stream
/// ends or fails. The bytes are consumed in await_resume, so a cancel always wins and takes
/// nothing.
class stream_read_awaiter final : public leaf_awaiter<ready_node>, public read_request {
public:
    stream_read_awaiter(ref_ptr<stream_state> state, kind k, std::size_t n, std::string_view separator)
        : leaf_awaiter(operations_), read_request(k, n, separator, &on_ready), m_state(std::move(state)) {}
    stream_read_awaiter(stream_read_awaiter&& other) noexcept
        : leaf_awaiter(std::move(other)), read_request(std::move(other)), m_state(std::move(other.m_state)) {}

    bool await_ready() {
        if (!m_state) throw invalid_state_error("coring: read from an empty stream_reader");
        reader_state& reader = m_state->reader();
        if (reader.waiting() != nullptr) throw invalid_state_error("coring: a read on a stream_reader while another task is already waiting for data");
        if (needs_separator() && separator().empty()) throw std::invalid_argument("coring: readuntil with an empty separator");
        reader.prepare(*this);
        return ready(reader);
    }

    bool await_suspend(std::coroutine_handle<> frame) {
        if (!begin_suspend(frame)) return false;
        m_state->reader().wait(*this);  // this read may need more than the reader reads ahead
        if (m_state->read_timeout().count() > 0) {
            try {
                m_state->arm_read_timeout(*this);
            } catch (...) {
                m_state->reader().stop_waiting();
                throw;
            }
        }
        arm();
        return true;
    }

    std::string await_resume() {
        throw_if_cancelled();
        if (m_timed_out)
            throw timeout_error("coring::timeout_error: " + std::string(name()) + " from " + m_state->peer_text() + " took longer than " +
                                std::to_string(m_state->read_timeout().count()) + " ms (stream_options::read_timeout)");
        struct read_on {
            reader_state* reader;
            ~read_on() { reader->after_consume(); }
        } guard{&m_state->reader()};
        return extract(m_state->reader());
    }

    /// read_timeout passed while the read waited (stream_state's timer).
    void time_out() noexcept {
        if (m_woken) return;
        m_woken = true;
        m_timed_out = true;
        m_state->reader().stop_waiting();
        leaf_awaiter::wake();
    }

private:
    static void on_ready(read_request* request) noexcept {
        auto* self = static_cast<stream_read_awaiter*>(request);
        self->m_woken = true;
        self->m_state->disarm_read_timeout();
        self->leaf_awaiter::wake();
    }

    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<stream_read_awaiter*>(node);
        self->take_cancel_request();
        self->mark_cancelled();
        if (!self->m_woken) {
            self->m_state->disarm_read_timeout();
            self->m_state->reader().stop_waiting();
            self->leaf_awaiter::wake();
        }
        // Woken already: it is queued to resume and throws; nothing was consumed.
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const stream_read_awaiter*>(node);
        out.what = std::string(self->name()) + " from " + self->m_state->peer_text();
    }

    static int opcode_of(const ready_node*) noexcept { return IORING_OP_RECV; }  // bytes the stream's receive brings
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::io, &opcode_of};

    ref_ptr<stream_state> m_state;
    bool m_woken = false;
    bool m_timed_out = false;
};

inline void stream_state::read_timed_out(stream_state& self) noexcept {
    if (stream_read_awaiter* read = std::exchange(self.m_timed_read, nullptr)) read->time_out();
}

/// co_await writer.drain(): at once while the buffered amount is at most the high-water mark,
/// else once it is down to the low-water mark. Throws the send error, if a send failed.
class stream_drain_awaiter {
public:
    explicit stream_drain_awaiter(ref_ptr<stream_state> state) noexcept
        : m_state(std::move(state)), m_wait(m_state->writer().drain_waiters(), m_state->writer().writable(), "coring::stream_writer", "stream_writer.drain") {}
    stream_drain_awaiter(stream_drain_awaiter&& other) noexcept
        : m_state(std::move(other.m_state)), m_wait(std::move(other.m_wait)), m_suspended(other.m_suspended) {}

    [[nodiscard]] bool await_ready() const noexcept { return m_state->writer().error() != 0 || m_wait.await_ready(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> frame) {
        m_suspended = true;
        return m_wait.await_suspend(frame);
    }
    void await_resume() {
        if (m_suspended) m_wait.await_resume();
        if (m_state->writer().error() != 0) m_state->writer().throw_error();
    }

private:
    ref_ptr<stream_state> m_state;
    flag_awaiter m_wait;
    bool m_suspended = false;
};

/// Waits until the TLS handshake of `state` is over (at once on plaintext) and throws its
/// tls_error if it failed; timeout_error once it took longer than `timeout`.
inline task<> complete_tls_handshake(ref_ptr<stream_state> state, std::chrono::milliseconds timeout) {
    tls_session* tls = state->tls();
    if (tls == nullptr) co_return;
    if (!tls->handshake_over()) {
        bool timed_out = false;
        try {
            co_await wait_for(flag_awaiter(tls->handshake_waiters(), tls->handshake_over(), "coring TLS session", "TLS handshake", wait_kind::io), timeout);
        } catch (const timeout_error&) {
            timed_out = true;
        }
        if (timed_out)
            throw timeout_error("coring::timeout_error: the TLS handshake with " + state->peer().to_string() + " took longer than " +
                                std::to_string(timeout.count()) + " ms");
    }
    tls->check_handshake();
}

}  // namespace coring::detail
