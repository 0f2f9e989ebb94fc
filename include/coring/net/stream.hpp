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
// How bytes move. Both handles share a connection state (net/stream_state.hpp). Its reader
// state (net/stream_reader_state.hpp) reads ahead until limit() bytes are buffered, then
// pauses until a read consumes them; its writer state (net/stream_writer_state.hpp) buffers
// writes. Both run over a byte transport
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

#include <coring/detail/ref_ptr.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/io/buffer_ring.hpp>
#include <coring/io/file.hpp>
#include <coring/net/address.hpp>
#include <coring/net/resolve.hpp>
#include <coring/net/socket.hpp>
#include <coring/net/stream_errors.hpp>
#include <coring/net/stream_options.hpp>
#include <coring/net/stream_state.hpp>
#include <coring/net/tls_context.hpp>
#include <coring/task.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace coring {

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
