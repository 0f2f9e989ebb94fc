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
// How bytes come in. Where the kernel has provided-buffer rings (5.19) the reader receives with a
// multishot recv on a buffer ring (io/buffer_ring.hpp): one SQE stays armed; each CQE's chunk is
// copied into the reader's own buffer and its provided buffer goes back to the ring at once, so a
// ring shared by every connection of a server never stays empty for long, and ENOBUFS (the ring
// ran dry) re-arms as soon as buffers are back. Elsewhere it receives with plain recv into its
// own buffer. Either way the reader reads ahead until limit() bytes are buffered, then pauses
// (cancels the receive) until a read consumes them; a waiting read that needs more (readexactly
// of a large n, read() to EOF) keeps it going. The reader's buffer is therefore bounded by
// max(limit, what the waiting read needs) plus one receive buffer; chunks that arrive past that
// bound (CQEs already on their way when the receive was paused) stay parked in their provided
// buffers until there is room.
//
// Cancellation: a task cancelled while it waits in a read resumes promptly with cancelled_error
// and takes nothing: the bytes stay buffered for the next read. A cancelled drain() takes
// nothing either.
//
// Lifetimes: reader and writer share one connection state; the connection closes (gracefully,
// after the buffered data) when close() is called or when both handles are gone. The state lives
// until its last kernel operation has completed. Destroy streams before their loop closes (tasks'
// frames are: coring::run destroys them).

#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ref_ptr.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/wait_queue.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/io/buffer_ring.hpp>
#include <coring/net/address.hpp>
#include <coring/net/resolve.hpp>
#include <coring/net/socket.hpp>
#include <coring/task.hpp>

#include <liburing.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace coring {

// ---------------------------------------------------------------------- errors

/// asyncio.IncompleteReadError: the stream ended before the read could be satisfied.
/// partial() holds the bytes that were read (and consumed); expected() the count asked for
/// (readexactly), or nothing (readuntil).
class incomplete_read : public std::runtime_error {
public:
    incomplete_read(std::string partial, std::optional<std::size_t> expected)
        : std::runtime_error(message(partial.size(), expected)), m_partial(std::move(partial)), m_expected(expected) {}

    [[nodiscard]] const std::string& partial() const noexcept { return m_partial; }
    [[nodiscard]] std::optional<std::size_t> expected() const noexcept { return m_expected; }

private:
    static std::string message(std::size_t got, std::optional<std::size_t> expected) {
        return "coring::incomplete_read: " + std::to_string(got) + " bytes read on a total of " +
               (expected ? std::to_string(*expected) : std::string("an undefined number of")) + " expected bytes";
    }
    std::string m_partial;
    std::optional<std::size_t> m_expected;
};

/// asyncio.LimitOverrunError: a separator was not found within the reader's limit. consumed()
/// says how many bytes to consume to get past the part that was searched.
class limit_overrun : public std::runtime_error {
public:
    limit_overrun(const std::string& what, std::size_t consumed) : std::runtime_error("coring::limit_overrun: " + what), m_consumed(consumed) {}
    [[nodiscard]] std::size_t consumed() const noexcept { return m_consumed; }

private:
    std::size_t m_consumed;
};

/// Settings of a stream (an aggregate: `stream_options{.limit = 1 << 20}`).
struct stream_options {
    /// The reader's limit (asyncio's `limit`): how far readline/readuntil search for a separator,
    /// and how much the reader reads ahead.
    std::size_t limit = 64 * 1024;
    /// The writer's water marks: drain() waits while more than high_water bytes are buffered,
    /// until at most low_water are.
    std::size_t high_water = 64 * 1024;
    std::size_t low_water = 16 * 1024;
    /// Bytes per receive: the size of each provided buffer, or of each plain recv.
    std::size_t recv_buffer_size = 16 * 1024;
    /// Buffers of a ring the stream creates for itself (when `buffers` is empty).
    unsigned recv_buffer_count = 8;
    /// A buffer ring to receive into, shared with other streams (a server passes its own). Empty:
    /// the stream creates a ring of its own.
    io::buffer_ring_ptr buffers{};
    /// False: receive with plain recv into the reader's buffer, without a buffer ring.
    bool use_buffer_ring = true;
};

class stream_reader;
class stream_writer;

namespace detail {

class stream_read_awaiter;
class stream_drain_awaiter;

/// The reader's buffer: the bytes [m_begin, m_end) of one allocation. It moves its bytes only in
/// make_room(), so a plain recv into tail() stays valid until it completes as long as nobody
/// calls make_room() meanwhile.
class byte_buffer {
public:
    [[nodiscard]] std::size_t size() const noexcept { return m_end - m_begin; }
    [[nodiscard]] bool empty() const noexcept { return m_end == m_begin; }
    [[nodiscard]] const char* data() const noexcept { return reinterpret_cast<const char*>(m_data.get()) + m_begin; }
    [[nodiscard]] std::string_view view() const noexcept { return {data(), size()}; }

    void consume(std::size_t n) noexcept { m_begin += n; }
    std::string take(std::size_t n) {
        std::string out(data(), n);
        consume(n);
        return out;
    }

    /// Makes room for `n` more bytes at the tail: moves the bytes to the front, or grows.
    /// `keep_at_most` bounds the memory kept when the buffer is empty (a large read is over).
    void make_room(std::size_t n, std::size_t keep_at_most) {
        if (m_begin == m_end) {
            m_begin = m_end = 0;
            if (m_capacity > keep_at_most && n <= keep_at_most) {
                m_data.reset();
                m_capacity = 0;
            }
        }
        if (m_capacity - m_end >= n) return;
        const std::size_t used = size();
        if (m_capacity - used >= n && m_begin >= used) {  // moving is cheaper than growing
            std::memmove(m_data.get(), m_data.get() + m_begin, used);
            m_begin = 0;
            m_end = used;
            return;
        }
        std::size_t capacity = std::max<std::size_t>(m_capacity * 2, 1024);
        while (capacity < used + n) capacity *= 2;
        std::unique_ptr<std::byte[]> grown(new std::byte[capacity]);
        if (used > 0) std::memcpy(grown.get(), m_data.get() + m_begin, used);
        m_data = std::move(grown);
        m_capacity = capacity;
        m_begin = 0;
        m_end = used;
    }
    void append(const std::byte* bytes, std::size_t n, std::size_t keep_at_most) {
        make_room(n, keep_at_most);
        std::memcpy(m_data.get() + m_end, bytes, n);
        m_end += n;
    }
    [[nodiscard]] std::byte* tail() noexcept { return m_data.get() + m_end; }
    [[nodiscard]] std::size_t tail_room() const noexcept { return m_capacity - m_end; }
    void commit(std::size_t n) noexcept { m_end += n; }

private:
    std::unique_ptr<std::byte[]> m_data;
    std::size_t m_capacity = 0;
    std::size_t m_begin = 0;
    std::size_t m_end = 0;
};

/// Told once a stream's descriptor is closed (a server counts its open connections with it).
struct stream_close_listener {
    using function = void (*)(stream_close_listener*) noexcept;
    explicit stream_close_listener(function on_closed) noexcept : m_on_closed(on_closed) {}
    function m_on_closed;
};

/// The connection behind a stream_reader / stream_writer pair.
///
///   stream_reader ──┐                     ┌── multishot recv (armed)   ─┐ kernel operations:
///   stream_writer ──┼─ refs ─▶ state ─────┼── plain recv (in flight)    ├ the state lives until
///   awaiters      ──┘                     └── send (in flight)         ─┘ they have completed
///
/// Invariants:
/// - m_refs counts handles and awaiters; the state is deleted when m_refs is 0 and busy() is false.
/// - At most one read awaiter (m_reader) waits; it is woken (and unregistered) when its read can
///   be satisfied (ready()), and it consumes in await_resume.
/// - A chunk is parked (kept in its provided buffer) only if m_in held cap() bytes or chunks were
///   parked already when it arrived; parked chunks follow m_in's bytes, in order, and move into
///   m_in before a read looks at it (prepare_read) or after it consumed (after_consume).
/// - A send is in flight whenever bytes are buffered for sending (and no send failed); it sends
///   m_sending[m_send_pos..], and write() appends to m_pending, which is swapped in when
///   m_sending is done (so the kernel never reads memory that is moving).
/// - m_writable is false exactly while the buffered amount went above high water and has not
///   yet come down to low water (and no error, not closed).
/// - The descriptor is closed (m_closed) only once close was requested and nothing is in flight.
class stream_state final : public multishot_recv_core<stream_state> {
public:
    stream_state(event_loop& loop, socket connection, const address& peer, const stream_options& options, io::buffer_ring_ptr ring,
                 stream_close_listener* listener)
        : multishot_recv_core(loop, connection.release(), std::move(ring)),
          m_plain_op(this, &on_plain_recv),
          m_send_op(this, &on_send),
          m_peer(peer),
          m_listener(listener),
          m_limit(options.limit == 0 ? 1 : options.limit),
          m_high(options.high_water),
          m_low(std::min(options.low_water, options.high_water)),
          m_recv_size(options.recv_buffer_size == 0 ? 16 * 1024 : options.recv_buffer_size) {}

    stream_state(const stream_state&) = delete;
    stream_state& operator=(const stream_state&) = delete;

    void add_ref() noexcept { ++m_refs; }
    void release() noexcept {
        if (--m_refs != 0) return;
        request_close();
        settle();
    }

    // ------------------------------------------------------------------ reading

    /// Starts reading ahead (called once the handles exist).
    void start_reading() { pump(); }

    [[nodiscard]] std::size_t limit() const noexcept { return m_limit; }
    [[nodiscard]] std::size_t buffered() const noexcept { return m_in.size() + parked_bytes(); }
    [[nodiscard]] bool at_eof() const noexcept { return m_eof && buffered() == 0; }
    [[nodiscard]] bool eof() const noexcept { return m_eof; }
    [[nodiscard]] int read_error() const noexcept { return m_read_error; }
    [[nodiscard]] byte_buffer& input() noexcept { return m_in; }
    [[nodiscard]] const byte_buffer& input() const noexcept { return m_in; }
    [[nodiscard]] stream_read_awaiter* reader() const noexcept { return m_reader; }
    [[nodiscard]] bool uses_buffer_ring() const noexcept { return has_ring(); }

    /// A read registers to wait for data; keeps reading if it needs more than is buffered.
    void set_reader(stream_read_awaiter* r) noexcept { m_reader = r; }
    void clear_reader() noexcept { m_reader = nullptr; }
    /// Arms a receive if data is wanted and none is armed. Throws if no SQE can be had.
    void pump();
    /// Before a read looks at the buffer: moves parked chunks in, as far as the read may need them.
    void prepare_read(std::size_t demand) noexcept {
        if (!m_parked.empty()) unpark(std::max(m_limit, demand));
    }
    /// After a read consumed bytes: moves parked chunks in and reads on.
    void after_consume() noexcept;

    [[noreturn]] void throw_read_error() const { throw_errno(m_read_error, "recv from " + m_peer.to_string()); }

    // ------------------------------------------------------------------ writing

    void write(std::span<const std::byte> data);
    void write_eof();
    [[nodiscard]] std::size_t write_buffered() const noexcept { return (m_sending.size() - m_send_pos) + m_pending.size(); }
    [[nodiscard]] int write_error() const noexcept { return m_write_error; }
    [[noreturn]] void throw_write_error() const { throw_errno(m_write_error, "send to " + m_peer.to_string()); }
    void set_write_buffer_limits(std::size_t high, std::size_t low) noexcept {
        m_high = high;
        m_low = std::min(low, high);
        update_writable();
    }

    wait_queue& drain_waiters() noexcept { return m_drain_waiters; }
    [[nodiscard]] const bool& writable() const noexcept { return m_writable; }

    // ------------------------------------------------------------------ closing

    /// close(): stop reading, close once the buffered data is sent (now, if nothing is in
    /// flight). Idempotent. Called through a handle, so the state outlives the call.
    void close() noexcept {
        request_close();
        settle();
    }
    [[nodiscard]] bool is_closing() const noexcept { return m_close_requested; }
    wait_queue& close_waiters() noexcept { return m_close_waiters; }
    [[nodiscard]] const bool& closed_flag() const noexcept { return m_closed; }

    [[nodiscard]] const address& peer() const noexcept { return m_peer; }
    /// The descriptor, or -1 once closed.
    [[nodiscard]] int native_fd() const noexcept { return m_closed ? -1 : fd(); }

    // ------------------------------------------------------------------ multishot_recv_core's interface
    void on_chunk(std::uint16_t bid, std::size_t size) noexcept;
    void on_end(int result) noexcept;
    [[nodiscard]] bool wants_data() const noexcept;
    void on_idle() noexcept { settle(); }

private:
    /// A kernel operation of the state other than the multishot receive.
    struct op final : io_completion {
        op(stream_state* owner, function complete) noexcept : io_completion(complete), m_owner(owner) {}
        stream_state* m_owner;
    };
    struct parked_chunk {
        std::uint16_t bid;
        std::size_t size;
    };

    ~stream_state() {
        // Only settle() deletes, once the last reference went: release() requested the close
        // (which gave the parked chunks back) and nothing is in flight, so the descriptor is closed.
        assert(m_closed && m_parked.empty());
        m_drain_waiters.abandon("coring::stream_writer (drain)");
        m_close_waiters.abandon("coring::stream_writer (wait_closed)");
    }

    [[nodiscard]] std::size_t cap() const noexcept;
    [[nodiscard]] std::size_t keep_at_most() const noexcept { return m_limit + m_recv_size; }
    [[nodiscard]] std::size_t parked_bytes() const noexcept {
        std::size_t n = 0;
        for (const parked_chunk& p : m_parked) n += p.size;
        return n;
    }
    [[nodiscard]] bool busy() const noexcept { return active() || m_plain_in_flight || m_send_in_flight; }

    void request_close() noexcept;
    void notify_reader() noexcept;
    void unpark(std::size_t up_to) noexcept;
    void arm_plain();
    void start_send();
    void update_writable() noexcept;
    void shutdown_write() noexcept;
    /// Finishes a requested close when nothing is in flight; deletes the state when unreferenced.
    /// The last thing every completion handler does.
    void settle() noexcept;

    static void on_plain_recv(io_completion* base, int result, unsigned flags) noexcept;
    static void on_send(io_completion* base, int result, unsigned flags) noexcept;

    op m_plain_op;
    op m_send_op;
    address m_peer;
    stream_close_listener* m_listener;
    byte_buffer m_in;
    std::vector<parked_chunk> m_parked;
    stream_read_awaiter* m_reader = nullptr;
    std::vector<std::byte> m_sending;
    std::vector<std::byte> m_pending;
    std::size_t m_send_pos = 0;
    std::size_t m_limit;
    std::size_t m_high;
    std::size_t m_low;
    std::size_t m_recv_size;
    wait_queue m_drain_waiters;
    wait_queue m_close_waiters;
    unsigned m_refs = 1;
    int m_read_error = 0;
    int m_write_error = 0;
    bool m_plain_in_flight = false;  // a plain recv into m_in (no buffer ring) is in flight
    bool m_send_in_flight = false;
    bool m_eof = false;              // end of stream received (or the stream is closing)
    bool m_writable = true;
    bool m_eof_requested = false;    // write_eof() called
    bool m_eof_sent = false;
    bool m_close_requested = false;
    bool m_closed = false;
};

/// co_await reader.read(n) / readline() / readexactly(n) / readuntil(sep): resumes with the
/// result when the buffered bytes satisfy the read (at once if they do now), or when the stream
/// ends or fails. The bytes are consumed in await_resume, so a cancel always wins and takes
/// nothing.
class stream_read_awaiter final : public leaf_awaiter<ready_node> {
public:
    enum class kind : std::uint8_t { some, all, exactly, until, line };

    stream_read_awaiter(ref_ptr<stream_state> state, kind k, std::size_t n, std::string_view separator)
        : leaf_awaiter(operations_), m_state(std::move(state)), m_separator(separator), m_n(n), m_kind(k) {}
    stream_read_awaiter(stream_read_awaiter&& other) noexcept
        : leaf_awaiter(std::move(other)), m_state(std::move(other.m_state)), m_separator(std::move(other.m_separator)), m_n(other.m_n), m_kind(other.m_kind) {}

    bool await_ready() {
        if (!m_state) throw invalid_state_error("coring: read from an empty stream_reader");
        if (m_state->reader() != nullptr) throw invalid_state_error("coring: a read on a stream_reader while another task is already waiting for data");
        if ((m_kind == kind::until || m_kind == kind::line) && m_separator.empty()) throw std::invalid_argument("coring: readuntil with an empty separator");
        m_state->prepare_read(demand());
        return ready();
    }

    bool await_suspend(std::coroutine_handle<> frame) {
        if (!begin_suspend(frame)) return false;
        m_state->set_reader(this);
        try {
            m_state->pump();  // this read may need more than the reader reads ahead
        } catch (...) {
            m_state->clear_reader();
            throw;
        }
        arm();
        return true;
    }

    std::string await_resume() {
        throw_if_cancelled();
        struct read_on {
            stream_state* state;
            ~read_on() { state->after_consume(); }
        } guard{m_state.get()};
        return extract();
    }

    /// True once the read can complete (with bytes, or by throwing).
    [[nodiscard]] bool ready() const noexcept;
    /// The bytes the reader must be able to buffer for this read to complete (0: no more than
    /// its limit).
    [[nodiscard]] std::size_t demand() const noexcept;
    /// The state wakes a read whose ready() became true.
    void wake_up() noexcept {
        m_woken = true;
        wake();
    }

private:
    std::string extract();
    /// Where the separator starts in the buffer, or npos. Remembers how far it searched.
    [[nodiscard]] std::size_t find_separator() const noexcept;

    static void on_cancel(ready_node* node) noexcept {
        auto* self = static_cast<stream_read_awaiter*>(node);
        self->take_cancel_request();
        self->mark_cancelled();
        if (!self->m_woken) {
            self->m_state->clear_reader();
            self->wake();
        }
        // Woken already: it is queued to resume and throws; nothing was consumed.
    }

    static void describe(const ready_node* node, await_description& out) {
        const auto* self = static_cast<const stream_read_awaiter*>(node);
        static constexpr const char* names[] = {"read", "read to EOF", "readexactly", "readuntil", "readline"};
        out.what = std::string(names[static_cast<int>(self->m_kind)]) + " from " + self->m_state->peer().to_string();
    }

    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe};

    ref_ptr<stream_state> m_state;
    std::string m_separator;
    std::size_t m_n;
    mutable std::size_t m_searched = 0;  // bytes of the buffer known not to start the separator
    kind m_kind;
    bool m_woken = false;
};

/// co_await writer.drain(): at once while the buffered amount is at most the high-water mark,
/// else once it is down to the low-water mark. Throws the send error, if a send failed.
class stream_drain_awaiter {
public:
    explicit stream_drain_awaiter(ref_ptr<stream_state> state) noexcept
        : m_state(std::move(state)), m_wait(m_state->drain_waiters(), m_state->writable(), "coring::stream_writer", "stream_writer.drain") {}
    stream_drain_awaiter(stream_drain_awaiter&& other) noexcept
        : m_state(std::move(other.m_state)), m_wait(std::move(other.m_wait)), m_suspended(other.m_suspended) {}

    [[nodiscard]] bool await_ready() const noexcept { return m_state->write_error() != 0 || m_wait.await_ready(); }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> frame) {
        m_suspended = true;
        return m_wait.await_suspend(frame);
    }
    void await_resume() {
        if (m_suspended) m_wait.await_resume();
        if (m_state->write_error() != 0) m_state->throw_write_error();
    }

private:
    ref_ptr<stream_state> m_state;
    flag_awaiter m_wait;
    bool m_suspended = false;
};

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
    [[nodiscard]] bool at_eof() const { return checked().at_eof(); }
    [[nodiscard]] std::size_t limit() const { return checked().limit(); }
    /// Bytes received and not yet read.
    [[nodiscard]] std::size_t buffered() const { return checked().buffered(); }
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
    void write(std::span<const std::byte> data) { checked().write(data); }
    void write(std::string_view data) { checked().write(std::as_bytes(std::span(data.data(), data.size()))); }
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
    void write_eof() { checked().write_eof(); }
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
    [[nodiscard]] std::size_t buffered() const { return checked().write_buffered(); }
    /// asyncio's transport.set_write_buffer_limits(high, low).
    void set_write_buffer_limits(std::size_t high, std::size_t low) { checked().set_write_buffer_limits(high, low); }
    /// The socket's descriptor (for socket options), or -1 once closed.
    [[nodiscard]] int native_handle() const { return checked().native_fd(); }
    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(m_state); }

private:
    static task<> wait_closed_of(detail::ref_ptr<detail::stream_state> state) {
        if (!state) throw invalid_state_error("coring: use of an empty stream_writer");
        co_await detail::flag_awaiter(state->close_waiters(), state->closed_flag(), "coring::stream_writer", "stream_writer.wait_closed");
    }
    detail::stream_state& checked() const {
        if (!m_state) throw invalid_state_error("coring: use of an empty stream_writer");
        return *m_state;
    }
    detail::ref_ptr<detail::stream_state> m_state;
};

/// A reader and writer over a connected stream socket (TCP or Unix-domain) that the streams own
/// from now on. `peer` is the peer's address (read with getpeername when empty). For a server's
/// connections, `listener` is told when the descriptor is closed.
[[nodiscard]] inline std::pair<stream_reader, stream_writer> make_stream(socket connection, address peer = {}, const stream_options& options = {},
                                                                         detail::stream_close_listener* listener = nullptr) {
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
    auto* state = new detail::stream_state(loop, std::move(connection), peer, options, std::move(ring), listener);
    auto ref = detail::ref_ptr<detail::stream_state>::adopt(state);  // the writer's reference
    state->add_ref();                                                 // the reader's
    std::pair<stream_reader, stream_writer> streams(stream_reader(detail::ref_ptr<detail::stream_state>::adopt(state)), stream_writer(std::move(ref)));
    state->start_reading();
    return streams;
}

/// asyncio.open_connection: resolves `host` (an IP literal needs no lookup) and connects to its
/// addresses in order until one accepts; TCP_NODELAY is set. Throws the last error:
/// "connect(127.0.0.1:9): Connection refused".
[[nodiscard]] inline task<std::pair<stream_reader, stream_writer>> open_connection(std::string host, std::uint16_t port, stream_options options = {}) {
    const std::vector<address> addresses = co_await resolve(std::move(host), port);
    std::exception_ptr last_error;
    for (const address& a : addresses) {
        try {
            socket s = co_await socket::connect_to(a);
            co_return make_stream(std::move(s), a, options);
        } catch (const std::system_error&) {
            last_error = std::current_exception();
        }
    }
    std::rethrow_exception(last_error);
}

/// asyncio.open_unix_connection: a stream over a Unix-domain socket at `path`. Throws
/// "connect(unix:/run/x.sock): No such file or directory" (ENOENT) and the like.
[[nodiscard]] inline task<std::pair<stream_reader, stream_writer>> open_unix_connection(std::string path, stream_options options = {}) {
    const address peer = address::unix_path(path);
    socket s = co_await socket::connect_to(peer);
    co_return make_stream(std::move(s), peer, options);
}

// ---------------------------------------------------------------------- implementation

namespace detail {

inline std::size_t stream_state::cap() const noexcept {
    const std::size_t demand = m_reader != nullptr ? m_reader->demand() : 0;
    return std::max(m_limit, demand);
}

inline bool stream_state::wants_data() const noexcept {
    return !m_close_requested && !m_eof && m_read_error == 0 && m_parked.empty() && m_in.size() < cap();
}

inline void stream_state::pump() {
    if (!wants_data()) return;
    if (has_ring())
        start();
    else
        arm_plain();
}

inline void stream_state::after_consume() noexcept {
    if (!m_parked.empty()) unpark(cap());
    try {
        pump();
    } catch (const std::system_error& e) {
        m_read_error = e.code().value();  // the ring is unusable: the next read reports it
    } catch (...) {
        m_read_error = ENOMEM;
    }
}

inline void stream_state::unpark(std::size_t up_to) noexcept {
    // Parked chunks come after m_in's bytes: move them in, in order, while there is room.
    std::size_t moved = 0;
    try {
        while (moved < m_parked.size() && m_in.size() < up_to) {
            parked_chunk& p = m_parked[moved];
            m_in.append(ring().data(p.bid), p.size, keep_at_most());
            ring().recycle(p.bid);
            ++moved;
        }
    } catch (...) {
        // Out of memory: the rest stays parked.
    }
    m_parked.erase(m_parked.begin(), m_parked.begin() + static_cast<std::ptrdiff_t>(moved));
}

inline void stream_state::notify_reader() noexcept {
    if (m_reader != nullptr && m_reader->ready()) {
        stream_read_awaiter* r = std::exchange(m_reader, nullptr);
        r->wake_up();
    }
}

inline void stream_state::on_chunk(std::uint16_t bid, std::size_t size) noexcept {
    if (m_close_requested) {
        ring().recycle(bid);  // closing: nobody reads any more
        return;
    }
    bool copied = false;
    if (m_parked.empty() && m_in.size() < cap()) {
        try {
            m_in.append(ring().data(bid), size, keep_at_most());
            ring().recycle(bid);
            copied = true;
        } catch (...) {
            // Out of memory: park it instead.
        }
    }
    if (!copied) {
        try {
            m_parked.push_back(parked_chunk{bid, size});
        } catch (...) {
            ring().recycle(bid);
            m_read_error = ENOMEM;  // the chunk is lost: fail the stream rather than corrupt it
        }
    }
    notify_reader();
    if (!wants_data()) stop();  // enough buffered: pause until a read consumes
}

inline void stream_state::on_end(int result) noexcept {
    if (result == 0)
        m_eof = true;
    else if (!m_close_requested)
        m_read_error = -result;
    notify_reader();
}

inline void stream_state::arm_plain() {
    if (m_plain_in_flight) return;
    m_in.make_room(m_recv_size, keep_at_most());
    io_uring_sqe* sqe = loop().get_sqe();
    io_uring_prep_recv(sqe, fd(), m_in.tail(), std::min(m_in.tail_room(), m_recv_size), 0);
    loop().submit(sqe, m_plain_op);
    m_plain_in_flight = true;
}

inline void stream_state::on_plain_recv(io_completion* base, int result, unsigned) noexcept {
    stream_state* self = static_cast<op*>(base)->m_owner;
    self->m_plain_in_flight = false;
    if (result > 0) {
        self->m_in.commit(static_cast<std::size_t>(result));
    } else if (result == 0) {
        self->m_eof = true;
    } else if (result != -ECANCELED && result != -EINTR && !self->m_close_requested) {
        self->m_read_error = -result;
    }
    self->notify_reader();
    self->after_consume();  // reads on, unless paused or closing
    self->settle();
}

inline void stream_state::write(std::span<const std::byte> data) {
    if (m_close_requested) throw invalid_state_error("coring: write() on a stream_writer after close()");
    if (m_eof_requested) throw invalid_state_error("coring: write() on a stream_writer after write_eof()");
    if (m_write_error != 0 || data.empty()) return;
    m_pending.insert(m_pending.end(), data.begin(), data.end());
    if (!m_send_in_flight) start_send();
    update_writable();
}

inline void stream_state::start_send() {
    if (m_send_pos == m_sending.size()) {
        m_sending.clear();
        m_send_pos = 0;
        std::swap(m_sending, m_pending);
    }
    if (m_sending.empty()) return;
    io_uring_sqe* sqe = loop().get_sqe();
    io_uring_prep_send(sqe, fd(), m_sending.data() + m_send_pos, m_sending.size() - m_send_pos, MSG_NOSIGNAL);
    loop().submit(sqe, m_send_op);
    m_send_in_flight = true;
}

inline void stream_state::on_send(io_completion* base, int result, unsigned) noexcept {
    stream_state* self = static_cast<op*>(base)->m_owner;
    self->m_send_in_flight = false;
    if (result >= 0) {
        self->m_send_pos += static_cast<std::size_t>(result);
    } else if (result != -EINTR) {
        self->m_write_error = -result;
        self->m_sending.clear();
        self->m_pending.clear();
        self->m_send_pos = 0;
    }
    if (self->m_write_error == 0) {
        try {
            self->start_send();
        } catch (const std::system_error& e) {
            self->m_write_error = e.code().value();
        } catch (...) {
            self->m_write_error = ENOMEM;
        }
    }
    if (!self->m_send_in_flight && self->m_eof_requested) self->shutdown_write();
    self->update_writable();
    self->settle();
}

inline void stream_state::update_writable() noexcept {
    if (m_writable) {
        if (write_buffered() > m_high && m_write_error == 0 && !m_closed) m_writable = false;
    } else if (write_buffered() <= m_low || m_write_error != 0 || m_closed) {
        m_writable = true;
        m_drain_waiters.grant_all();
    }
}

inline void stream_state::write_eof() {
    if (m_close_requested || m_eof_requested) return;
    m_eof_requested = true;
    if (!m_send_in_flight) shutdown_write();
}

inline void stream_state::shutdown_write() noexcept {
    if (m_eof_sent || m_closed) return;
    m_eof_sent = true;
    ::shutdown(fd(), SHUT_WR);
}

inline void stream_state::request_close() noexcept {
    if (m_close_requested) return;
    m_close_requested = true;
    if (has_ring()) {
        stop();
    } else if (m_plain_in_flight) {
        try {
            loop().cancel_io(m_plain_op);
        } catch (...) {
            // No SQE: the recv ends with the connection.
        }
    }
    // Parked chunks will never be read.
    for (const parked_chunk& p : m_parked) ring().recycle(p.bid);
    m_parked.clear();
    m_eof = true;  // reads from now on see the end of the stream
    notify_reader();
}

inline void stream_state::settle() noexcept {
    if (m_close_requested && !m_closed && !busy()) {
        if (fd() >= 0) ::close(fd());
        m_closed = true;
        update_writable();
        m_close_waiters.grant_all();
        if (stream_close_listener* listener = std::exchange(m_listener, nullptr)) listener->m_on_closed(listener);
    }
    if (m_refs == 0 && !busy()) delete this;
}

// ---- the read awaiter

inline std::size_t stream_read_awaiter::find_separator() const noexcept {
    const std::string_view data = m_state->input().view();
    const std::size_t sep = m_separator.size();
    if (data.size() < sep) return std::string_view::npos;
    // Resume where the last search stopped: the last sep - 1 bytes may start a separator.
    const std::size_t from = m_searched;
    std::size_t at;
    if (sep == 1) {
        const void* p = std::memchr(data.data() + from, m_separator[0], data.size() - from);
        at = p != nullptr ? static_cast<std::size_t>(static_cast<const char*>(p) - data.data()) : std::string_view::npos;
    } else {
        at = data.find(m_separator, from);
    }
    if (at == std::string_view::npos) m_searched = data.size() - sep + 1;
    return at;
}

inline bool stream_read_awaiter::ready() const noexcept {
    const stream_state& s = *m_state;
    const std::size_t size = s.input().size();
    if (s.eof() || s.read_error() != 0) return true;
    switch (m_kind) {
        case kind::some: return m_n == 0 || size > 0;
        case kind::all: return false;
        case kind::exactly: return size >= m_n;
        case kind::until:
        case kind::line: return find_separator() != std::string_view::npos || size >= s.limit() + m_separator.size();
    }
    return true;
}

inline std::size_t stream_read_awaiter::demand() const noexcept {
    switch (m_kind) {
        case kind::some: return 0;
        case kind::all: return std::numeric_limits<std::size_t>::max();
        case kind::exactly: return m_n;
        case kind::until:
        case kind::line: return m_state->limit() + m_separator.size();
    }
    return 0;
}

inline std::string stream_read_awaiter::extract() {
    stream_state& s = *m_state;
    byte_buffer& in = s.input();
    switch (m_kind) {
        case kind::some:
            if (m_n == 0) return {};
            if (!in.empty()) return in.take(std::min(m_n, in.size()));
            if (s.read_error() != 0) s.throw_read_error();
            return {};
        case kind::all:
            if (s.read_error() != 0) s.throw_read_error();
            return in.take(in.size());
        case kind::exactly:
            if (in.size() >= m_n) return in.take(m_n);
            if (s.read_error() != 0) s.throw_read_error();
            throw incomplete_read(in.take(in.size()), m_n);
        case kind::until:
        case kind::line: {
            const std::size_t sep = m_separator.size();
            const std::size_t at = find_separator();
            std::optional<limit_overrun> overrun;
            if (at != std::string_view::npos) {
                if (at <= s.limit()) return in.take(at + sep);
                overrun.emplace("Separator is found, but chunk is longer than limit", at);
            } else if (in.size() >= s.limit() + sep) {
                overrun.emplace("Separator is not found, and chunk exceed the limit", in.size() + 1 - sep);
            }
            if (overrun) {
                if (m_kind == kind::line) {
                    // asyncio's readline: drop the overlong line (through its separator, if seen).
                    if (at != std::string_view::npos)
                        in.consume(at + sep);
                    else
                        in.consume(in.size());
                }
                throw *overrun;
            }
            if (s.read_error() != 0) s.throw_read_error();
            if (m_kind == kind::line) return in.take(in.size());  // the partial last line, or ""
            throw incomplete_read(in.take(in.size()), std::nullopt);
        }
    }
    return {};
}

}  // namespace detail
}  // namespace coring
