#pragma once
// asyncio streams: stream_reader, stream_writer, open_connection (docs/api.md, "Streams").
//
//   auto [reader, writer] = co_await coring::open_connection("127.0.0.1", 8888);
//   writer.write("GET / HTTP/1.0\r\n\r\n");
//   co_await writer.drain();
//   std::string status = co_await reader.readline();      // "HTTP/1.0 200 OK\r\n"
//   std::string body = co_await reader.read();             // everything up to EOF
//   writer.close();
//   co_await writer.wait_closed();
//
// Reading (asyncio.StreamReader):
//   read(n)          up to n bytes, at least one (waits for them); "" at EOF. read() (n = -1)
//                    reads to EOF, however much that is. read(0) is "".
//   readline()       one line including its "\n"; at EOF the partial last line, or "".
//   readexactly(n)   exactly n bytes; at EOF first: incomplete_read carrying the partial bytes.
//   readuntil(sep)   up to and including `sep`; at EOF first: incomplete_read; a separator
//                    further than limit() bytes away: limit_overrun, and the data stays buffered
//                    (readline discards it instead, then throws limit_overrun too).
//   at_eof()         the peer shut down its side and everything was read.
// One task reads at a time (a second one gets invalid_state_error, as asyncio's RuntimeError).
//
// Writing (asyncio.StreamWriter): write(data) buffers and never blocks; a send is in flight
// whenever there is buffered data. Once the buffered amount has gone above the high-water mark
// (64 KiB), drain() waits until it is down to the low-water mark (16 KiB); otherwise it returns
// at once.
// close() stops reading and closes the connection once the buffered data is sent; wait_closed()
// waits for that. write_eof() sends FIN (shutdown(SHUT_WR)) after the buffered data. After
// close(), reads see the end of the stream, and write() (also after write_eof()) throws
// invalid_state_error; after a send failed, write() drops the data and drain() throws the error.
//
// Errors are std::system_error with the errno and what was being done:
//   "connect(127.0.0.1:9): Connection refused"       (open_connection)
//   "recv from 127.0.0.1:5000: Connection reset by peer"   (any read, once the buffer is used up)
//   "send to 127.0.0.1:5000: Broken pipe"            (drain, after a send failed)
//
// How bytes move. The reader state (net/stream_reader_state.hpp) reads ahead until limit()
// bytes are buffered, then pauses until a read consumes them; the writer state
// (net/stream_writer_state.hpp) buffers writes. Both run over a byte transport
// (detail/byte_transport.hpp): the socket, received through a buffer ring where the kernel has
// them (net/socket_transport.hpp).
//
// Cancellation: a task cancelled while it waits in a read resumes promptly with cancelled_error
// and takes nothing: the bytes stay buffered for the next read. A cancelled drain() takes
// nothing either.
//
// Timeouts (stream_options, off by default as in asyncio): read_timeout bounds each read's wait
// (timeout_error, nothing taken, the stream usable); idle_timeout aborts a socket stream on
// which no byte moved either way for that long (ETIMEDOUT). They are what keeps a server's
// connection count bounded against clients that connect and go quiet (server_options).
//
// Lifetimes: reader and writer share one connection state; the connection closes (gracefully,
// after the buffered data) when close() is called or when both handles are gone. The state lives
// until its last kernel operation has completed. Destroy streams before their loop closes (tasks'
// frames are: coring::run destroys them).
//
// Thread-safety: loop-bound. A stream (reader and writer) belongs to the event loop it was made on
// and is used by that loop's tasks; in debug mode, an operation started from another thread throws
// std::logic_error naming both threads. Several cores: one per loop of a loop_group
// (thread/loop_group.hpp).

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
#include <coring/net/resolve.hpp>
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
#include <memory>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace coring {

class stream_reader;
class stream_writer;

namespace detail {

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

}  // namespace detail

// ---------------------------------------------------------------------- the handles

/// The reading half of a connection (asyncio.StreamReader). Movable; one task reads at a time.
class stream_reader {
public:
    stream_reader() noexcept = default;
    explicit stream_reader(detail::ref_ptr<detail::stream_state> state) noexcept : m_state(std::move(state)) {}

    /// Up to `n` bytes (at least one; "" at EOF); n = -1: everything up to EOF.
    [[nodiscard]] detail::stream_read_awaiter read(std::ptrdiff_t n = -1) const {
        using kind = detail::stream_read_awaiter::kind;
        if (n < 0) return detail::stream_read_awaiter(m_state, kind::all, 0, {});
        return detail::stream_read_awaiter(m_state, kind::some, static_cast<std::size_t>(n), {});
    }
    /// One line, "\n" included; at EOF the partial line or "". A line longer than limit():
    /// limit_overrun (the line is discarded).
    [[nodiscard]] detail::stream_read_awaiter readline() const {
        return detail::stream_read_awaiter(m_state, detail::stream_read_awaiter::kind::line, 0, "\n");
    }
    /// Exactly `n` bytes; incomplete_read (with the partial bytes) if the stream ends first.
    [[nodiscard]] detail::stream_read_awaiter readexactly(std::size_t n) const {
        return detail::stream_read_awaiter(m_state, detail::stream_read_awaiter::kind::exactly, n, {});
    }
    /// Up to and including `separator`; incomplete_read at EOF; limit_overrun past limit() (the
    /// bytes stay buffered).
    [[nodiscard]] detail::stream_read_awaiter readuntil(std::string_view separator = "\n") const {
        return detail::stream_read_awaiter(m_state, detail::stream_read_awaiter::kind::until, 0, separator);
    }

    /// The stream ended and every byte was read.
    [[nodiscard]] bool at_eof() const { return checked().reader().at_eof(); }
    [[nodiscard]] std::size_t limit() const { return checked().reader().limit(); }
    /// Bytes received and not yet read.
    [[nodiscard]] std::size_t buffered() const { return checked().reader().buffered(); }
    /// True if it receives through a provided-buffer ring (false: plain recv).
    [[nodiscard]] bool uses_buffer_ring() const { return checked().uses_buffer_ring(); }
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(m_state); }

private:
    detail::stream_state& checked() const {
        if (!m_state) throw invalid_state_error("coring: use of an empty stream_reader");
        return *m_state;
    }
    detail::ref_ptr<detail::stream_state> m_state;
};

/// The writing half of a connection (asyncio.StreamWriter). Movable.
class stream_writer {
public:
    stream_writer() noexcept = default;
    explicit stream_writer(detail::ref_ptr<detail::stream_state> state) noexcept : m_state(std::move(state)) {}

    /// Buffers `data` and starts sending it; never blocks. After close() or write_eof():
    /// invalid_state_error. After a send failed: the data is dropped (drain() throws the error).
    void write(std::span<const std::byte> data) { checked().writer().write(data); }
    void write(std::string_view data) { checked().writer().write(std::as_bytes(std::span(data.data(), data.size()))); }
    /// Waits while more than the high-water mark is buffered, until the low-water mark is reached.
    /// Throws the error of a failed send ("send to 127.0.0.1:5000: Connection reset by peer").
    [[nodiscard]] detail::stream_drain_awaiter drain() const {
        checked();
        return detail::stream_drain_awaiter(m_state);
    }
    /// Stops reading and closes the connection once the buffered data is sent.
    void close() { checked().close(); }
    [[nodiscard]] bool is_closing() const { return checked().is_closing(); }
    /// Waits until the descriptor is closed (after close(), or after both handles are gone).
    [[nodiscard]] task<> wait_closed() const { return wait_closed_of(m_state); }
    /// Sends FIN (shutdown(SHUT_WR)) once the buffered data is sent; reading goes on.
    void write_eof() { checked().writer().write_eof(); }
    [[nodiscard]] bool can_write_eof() const noexcept { return true; }
    /// The peer's address (asyncio's get_extra_info('peername')).
    [[nodiscard]] address peer_address() const { return checked().peer(); }
    /// This end's address (get_extra_info('sockname')). Throws once the stream is closed.
    [[nodiscard]] address local_address() const {
        const int fd = checked().native_fd();
        if (fd < 0) throw invalid_state_error("coring: local_address of a closed stream");
        return detail::socket_name(fd, ::getsockname, "getsockname");
    }
    /// Bytes buffered and not yet sent (asyncio's transport.get_write_buffer_size()).
    [[nodiscard]] std::size_t buffered() const { return checked().writer().buffered(); }
    /// asyncio's transport.set_write_buffer_limits(high, low).
    void set_write_buffer_limits(std::size_t high, std::size_t low) { checked().writer().set_limits(high, low); }
    /// The socket's descriptor (for socket options), or -1 once closed.
    [[nodiscard]] int native_handle() const { return checked().native_fd(); }
    /// asyncio's StreamWriter.start_tls: once everything written so far is sent in the clear,
    /// upgrades the connection in place (STARTTLS) and returns when the handshake is over. A
    /// server context does the server side; a client one checks `server_hostname` (default: the
    /// peer's address). Bytes the reader holds already stay as they are. Throws tls_error,
    /// timeout_error past `handshake_timeout`, invalid_state_error on a closing stream or one
    /// that speaks TLS already.
    [[nodiscard]] task<> start_tls(const tls_context& context, std::string server_hostname = {},
                                   std::chrono::milliseconds handshake_timeout = std::chrono::seconds(60)) const {
        return start_tls_of(m_state, context, std::move(server_hostname), handshake_timeout);
    }
    /// asyncio's loop.sendfile(transport, file, offset, count): sends `count` bytes of `f` from
    /// `offset` (to the end of the file when empty) after everything written before, and yields
    /// the bytes sent (fewer only when the file ends first). On a plaintext socket the kernel
    /// moves them (io/splice_file.hpp: splice through a pipe, never a copy in user space); over
    /// TLS, which must encrypt them, and on a child's pipe, they are read and written in chunks
    /// of 256 KiB, as asyncio's fallback does. write() throws invalid_state_error while it runs,
    /// as in asyncio. A failed send fails the stream and throws its error ("send to
    /// 127.0.0.1:5000: Broken pipe"); a file that cannot be read throws std::system_error. A
    /// count of 0 is std::invalid_argument (asyncio's ValueError). Cancelled, it stops at the
    /// next kernel completion, and how much of the file went out is unknown: close the stream.
    [[nodiscard]] task<std::uint64_t> sendfile(const file& f, std::uint64_t offset = 0, std::optional<std::uint64_t> count = std::nullopt) const {
        return sendfile_of(m_state, f.fd(), offset, count);
    }
    /// What the TLS handshake agreed on (asyncio's get_extra_info("ssl_object")); null on
    /// plaintext.
    [[nodiscard]] const tls_info* tls() const {
        detail::tls_session* session = checked().tls();
        return session != nullptr ? session->info() : nullptr;
    }
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(m_state); }

private:
    static task<> start_tls_of(detail::ref_ptr<detail::stream_state> state, tls_context context, std::string server_hostname,
                               std::chrono::milliseconds handshake_timeout) {
        if (!state) throw invalid_state_error("coring: use of an empty stream_writer");
        if (!context) throw std::invalid_argument("coring: start_tls with an empty tls_context");
        if (state->tls() != nullptr) throw invalid_state_error("coring: start_tls on a stream that speaks TLS already");
        if (state->is_pipe()) throw invalid_state_error("coring: start_tls on a pipe");
        if (state->is_closing()) throw invalid_state_error("coring: start_tls on a closing stream");
        co_await flush(state);  // every byte written in the clear goes first
        state->upgrade_to_tls(context, server_hostname);
        co_await detail::complete_tls_handshake(state, handshake_timeout);
    }
    static task<> flush(const detail::ref_ptr<detail::stream_state>& state) {
        detail::writer_state& writer = state->writer();
        if (writer.buffered() == 0) co_return;
        // drain() with both water marks at 0 waits until every byte written so far is sent.
        const std::size_t high = writer.high_water();
        const std::size_t low = writer.low_water();
        writer.set_limits(0, 0);
        std::exception_ptr failure;
        try {
            co_await detail::stream_drain_awaiter(state);
        } catch (...) {
            failure = std::current_exception();
        }
        writer.set_limits(high, low);
        if (failure) std::rethrow_exception(failure);
    }
    static task<std::uint64_t> sendfile_of(detail::ref_ptr<detail::stream_state> state, int file_fd, std::uint64_t offset,
                                           std::optional<std::uint64_t> count) {
        if (!state) throw invalid_state_error("coring: use of an empty stream_writer");
        if (count && *count == 0) throw std::invalid_argument("coring: sendfile with a count of 0 (leave it empty to send up to the end of the file)");
        if (file_fd < 0) throw std::invalid_argument("coring: sendfile of a closed file");
        detail::writer_state& writer = state->writer();
        if (state->is_closing()) throw invalid_state_error("coring: sendfile() on a closing stream");
        if (writer.sendfile_in_progress()) throw invalid_state_error("coring: sendfile() while another sendfile() is in progress");
        if (writer.error() != 0) writer.throw_error();
        // From here until the end: no write() from others, and the descriptor stays open even
        // if the stream is closed meanwhile (the splices use it).
        writer.set_sendfile_in_progress(true);
        state->begin_external_operation();
        struct end_sendfile {
            detail::stream_state* state;
            ~end_sendfile() {
                state->writer().set_sendfile_in_progress(false);
                state->end_external_operation();
            }
        } guard{state.get()};
        co_await flush(state);
        if (state->tls() != nullptr || state->is_pipe()) co_return co_await copy_file(state, file_fd, offset, count);
        const detail::splice_result result = co_await detail::splice_file(file_fd, offset, count, state->native_fd());
        if (result.output_error != 0) {
            writer.sent(result.output_error);  // the stream has failed
            writer.throw_error();
        }
        co_return result.sent;
    }
    /// sendfile where the kernel cannot move the bytes: read, write, drain, in chunks.
    static task<std::uint64_t> copy_file(const detail::ref_ptr<detail::stream_state>& state, int file_fd, std::uint64_t offset,
                                         std::optional<std::uint64_t> count) {
        constexpr std::uint64_t chunk = 256 * 1024;
        std::vector<std::byte> buffer(chunk);
        std::uint64_t sent = 0;
        while (!count || sent < *count) {
            const std::uint64_t want = count ? std::min(chunk, *count - sent) : chunk;
            const std::size_t n = co_await io::read(file_fd, std::span(buffer).first(static_cast<std::size_t>(want)), static_cast<std::int64_t>(offset + sent));
            if (n == 0) break;
            state->writer().append(std::span(buffer).first(n));
            co_await detail::stream_drain_awaiter(state);
            if (state->writer().error() != 0) state->writer().throw_error();
            sent += n;
        }
        co_return sent;
    }
    static task<> wait_closed_of(detail::ref_ptr<detail::stream_state> state) {
        if (!state) throw invalid_state_error("coring: use of an empty stream_writer");
        co_await detail::flag_awaiter(state->close_waiters(), state->closed_flag(), "coring::stream_writer", "stream_writer.wait_closed", detail::wait_kind::io);
    }
    detail::stream_state& checked() const {
        if (!m_state) throw invalid_state_error("coring: use of an empty stream_writer");
        return *m_state;
    }
    detail::ref_ptr<detail::stream_state> m_state;
};

namespace detail {

/// The connection of a new stream over `connection`, reading ahead (and, with TLS, in its
/// handshake) already. `peer` is read with getpeername when empty.
[[nodiscard]] inline ref_ptr<stream_state> start_stream(socket connection, address peer, const stream_options& options, stream_close_listener* listener) {
    event_loop& loop = get_running_loop();
    if (peer.empty()) {
        try {
            peer = connection.peer_address();
        } catch (const std::system_error&) {
            // Not connected (any more): the address stays empty.
        }
    }
    io::buffer_ring_ptr ring = options.buffers;
    if (!ring && options.use_buffer_ring) ring = io::buffer_ring::try_create(loop, options.recv_buffer_count, options.recv_buffer_size);  // null: plain recv
    auto state = ref_ptr<stream_state>::adopt(new stream_state(loop, std::move(connection), peer, options, std::move(ring), listener));
    state->start_reading();
    return state;
}

/// The reader and writer of a connection.
[[nodiscard]] inline std::pair<stream_reader, stream_writer> stream_handles(ref_ptr<stream_state> state) {
    return {stream_reader(state), stream_writer(std::move(state))};
}

/// A stream over `connection` whose TLS handshake, if any, is over.
[[nodiscard]] inline task<std::pair<stream_reader, stream_writer>> open_stream(socket connection, address peer, stream_options options) {
    ref_ptr<stream_state> state = start_stream(std::move(connection), std::move(peer), options, nullptr);
    co_await complete_tls_handshake(state, options.tls_handshake_timeout);
    co_return stream_handles(std::move(state));
}

}  // namespace detail

/// A reader and writer over a connected stream socket (TCP or Unix-domain) that the streams own
/// from now on. `peer` is the peer's address (read with getpeername when empty). For a server's
/// connections, `listener` is told when the descriptor is closed. With options.tls the
/// handshake has started, not finished: reads and writes wait for it (open_connection and
/// start_server wait for it before they hand out the streams).
[[nodiscard]] inline std::pair<stream_reader, stream_writer> make_stream(socket connection, address peer = {}, const stream_options& options = {},
                                                                         detail::stream_close_listener* listener = nullptr) {
    return detail::stream_handles(detail::start_stream(std::move(connection), std::move(peer), options, listener));
}

/// asyncio.open_connection: resolves `host` (an IP literal needs no lookup) and connects to its
/// addresses in order until one accepts; TCP_NODELAY is set. Throws the last error:
/// "connect(127.0.0.1:9): Connection refused". With options.tls it returns once the handshake
/// is over, the server's certificate checked against options.server_hostname (default: `host`);
/// a failed handshake throws tls_error, a slow one timeout_error.
[[nodiscard]] inline task<std::pair<stream_reader, stream_writer>> open_connection(std::string host, std::uint16_t port, stream_options options = {}) {
    // Own what the options borrow: the caller's context and name may go while this task waits.
    const tls_context tls = options.tls ? *options.tls : tls_context{};
    const std::string server_hostname(options.tls && options.server_hostname.empty() ? std::string_view(host) : options.server_hostname);
    options.tls = tls;
    options.server_hostname = server_hostname;
    const std::vector<address> addresses = co_await resolve(std::move(host), port);
    std::exception_ptr last_error;
    for (const address& a : addresses) {
        std::optional<socket> connected;
        try {
            connected.emplace(co_await socket::connect_to(a));
        } catch (const std::system_error&) {
            last_error = std::current_exception();
            continue;
        }
        co_return co_await detail::open_stream(std::move(*connected), a, options);
    }
    std::rethrow_exception(last_error);
}

/// asyncio.open_unix_connection: a stream over a Unix-domain socket at `path`. Throws
/// "connect(unix:/run/x.sock): No such file or directory" (ENOENT) and the like.
[[nodiscard]] inline task<std::pair<stream_reader, stream_writer>> open_unix_connection(std::string path, stream_options options = {}) {
    const tls_context tls = options.tls ? *options.tls : tls_context{};
    const std::string server_hostname(options.server_hostname);
    options.tls = tls;
    options.server_hostname = server_hostname;
    const address peer = address::unix_path(path);
    socket s = co_await socket::connect_to(peer);
    co_return co_await detail::open_stream(std::move(s), peer, std::move(options));
}

}  // namespace coring
