#pragma once
// start_server and server (asyncio.start_server, asyncio.Server): a TCP or Unix-domain server
// whose every connection runs a handler task with a stream_reader and a stream_writer.
//
//   coring::task<> echo(coring::stream_reader reader, coring::stream_writer writer) {
//       for (;;) {
//           std::string line = co_await reader.readline();
//           if (line.empty()) break;                        // the client closed
//           writer.write(line);
//           co_await writer.drain();
//       }
//   }
//   coring::server srv = co_await coring::start_server(echo, "127.0.0.1", 0);
//   std::printf("listening on port %u\n", srv.port());
//   co_await srv.serve_forever();                           // until srv.close()
//
// - The server listens on every address `host` resolves to (an empty host: every interface);
//   port 0 picks a free port (port() reads it; the other addresses get the same port).
// - Each connection gets a task (named "connection from <peer>") that runs the handler; when the
//   handler returns, the connection is closed (gracefully: buffered data is sent first) unless
//   the handler kept the writer. A std::exception the handler throws is reported through the
//   loop's exception handler ("Unhandled exception in client_connected_cb", as asyncio) and
//   closes that connection only; anything else (cancelled_error, which is not a std::exception)
//   ends the connection's task with it.
// - close() stops accepting (the listening sockets close as soon as their accept has been
//   cancelled) and cancels every handler; wait_closed() waits until the listeners are closed,
//   every handler has finished and every connection's descriptor is closed: after it, the
//   server holds no descriptor.
// - serve_forever() waits until the server is closed. Cancelling it closes the server, waits for
//   wait_closed() and rethrows cancelled_error (asyncio's rule).
// - Out of descriptors (EMFILE, ENFILE) or memory (ENOBUFS, ENOMEM) on accept does not stop the
//   server: the error is reported once through the loop's exception handler, accepting backs off
//   (100 ms, doubling up to 1 s) and resumes when descriptors are free again; existing
//   connections keep being served. The episode's end is reported too, once, with how many
//   attempts failed and for how long (a log that neither floods nor leaves the reader guessing).
// - server_options::max_connections caps the connections open at once: at the cap, accepting
//   pauses (new clients wait in the listen backlog, as nginx's worker_connections make them) and
//   resumes as soon as one closes. With stream.read_timeout / stream.idle_timeout this bounds
//   what clients that connect and go quiet can hold (a slowloris attack); both are off by
//   default, as in asyncio. A handler's error that follows its stream's idle timeout is not
//   reported (any client can cause it), except in debug mode.
// - Every connection receives through one provided-buffer ring that the server shares between
//   them (server_options::buffer_count buffers of stream.recv_buffer_size bytes) where the kernel
//   has buffer rings; see net/socket_transport.hpp.
// - The server object owns the listeners: destroying it closes it (without waiting).
//
// Thread-safety: loop-bound. A server (its listeners and connections) belongs to the event loop it
// was made on and is used by that loop's tasks; in debug mode, an operation started from another
// thread throws std::logic_error naming both threads. Several cores: one per loop of a loop_group
// (thread/loop_group.hpp).

#include <coring/clock.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/ref_ptr.hpp>
#include <coring/detail/wait_queue.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/io/buffer_ring.hpp>
#include <coring/net/address.hpp>
#include <coring/net/resolve.hpp>
#include <coring/net/socket.hpp>
#include <coring/net/stream.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace coring {

/// What a server runs for each connection.
using connection_handler = std::function<task<>(stream_reader, stream_writer)>;

/// Settings of a server (an aggregate).
struct server_options {
    /// listen(2)'s backlog.
    int backlog = SOMAXCONN;
    /// SO_REUSEPORT on the listening sockets (several servers, or processes, share a port).
    bool reuse_port = false;
    /// Settings of every connection's streams.
    stream_options stream{};
    /// Buffers of the provided-buffer ring that the connections share (when stream.buffers is
    /// empty and stream.use_buffer_ring is true).
    unsigned buffer_count = 128;
    /// Accepting backs off this long after running out of descriptors or memory, doubling up to
    /// accept_retry_max.
    std::chrono::milliseconds accept_retry_min{100};
    std::chrono::milliseconds accept_retry_max{1000};
    /// At most this many connections at once (counted from accept until the descriptor is
    /// closed); accepting pauses at the cap. Zero: no cap. A server with several listeners (an
    /// empty host: one per address family) may pass it by one per listener beyond the first,
    /// whose accepts were already waiting when the count reached it.
    std::size_t max_connections = 0;
};

class server;

namespace detail {

class server_state;

struct server_connection_tag {};

/// One accepted connection: listed until its handler has finished and its descriptor is closed.
struct server_connection final : list_hook<server_connection_tag>, stream_close_listener {
    explicit server_connection(server_state* owner) noexcept : stream_close_listener(&on_stream_closed), m_owner(owner) {}
    static void on_stream_closed(stream_close_listener* self) noexcept;

    server_state* m_owner;
    task_handle<void> m_handler;
    bool m_handler_done = false;
    bool m_stream_closed = false;
};

/// The state behind a server handle, its accept loops and its connections.
///
/// Invariants: m_refs counts the handle, each accept loop and each listed connection; m_accepting
/// counts accept loops that have not finished (each owns the listener of its index and closes it
/// when it finishes); m_all_closed becomes true once close() was called, m_accepting is 0 and no
/// connection is listed, and then never changes.
class server_state {
public:
    server_state(event_loop& loop, connection_handler handler, server_options options)
        : m_loop(&loop), m_handler(std::move(handler)), m_options(std::move(options)), m_tls(m_options.stream.tls ? *m_options.stream.tls : tls_context{}) {
        m_options.stream.tls = m_tls;  // the connections borrow the server's own share
        m_options.stream.server_hostname = {};
    }
    server_state(const server_state&) = delete;
    server_state& operator=(const server_state&) = delete;

    void add_ref() noexcept { ++m_refs; }
    void release() noexcept {
        if (--m_refs == 0) delete this;
    }

    // ------------------------------------------------------------------ setup (start_server)

    void add_listener(socket listener, std::string unix_path = {}) {
        m_addresses.push_back(listener.local_address());
        m_listeners.push_back(std::move(listener));
        m_unix_paths.push_back(std::move(unix_path));
    }
    /// The ring the connections share; plain recv if the kernel has no buffer rings.
    void create_buffer_ring() {
        stream_options& o = m_options.stream;
        if (o.buffers || !o.use_buffer_ring) return;
        o.buffers = io::buffer_ring::try_create(*m_loop, m_options.buffer_count, o.recv_buffer_size);
        if (!o.buffers) o.use_buffer_ring = false;  // each stream would try again, in vain
    }
    /// Starts one accept loop per listener.
    void start_accepting();

    // ------------------------------------------------------------------ the server handle

    void close() noexcept {
        if (m_closing) return;
        m_closing = true;
        for (task_handle<void>& h : m_accept_loops)
            if (h && !h.done()) h.cancel();
        std::vector<task_handle<void>> handlers;
        try {
            m_connections.for_each([&](server_connection& c) {
                if (!c.m_handler_done && c.m_handler) handlers.push_back(c.m_handler);
            });
        } catch (...) {
        }
        for (task_handle<void>& h : handlers) h.cancel();
        check_closed();
    }
    [[nodiscard]] bool closing() const noexcept { return m_closing; }
    [[nodiscard]] wait_queue& closed_waiters() noexcept { return m_closed_waiters; }
    [[nodiscard]] const bool& all_closed() const noexcept { return m_all_closed; }
    [[nodiscard]] const std::vector<address>& addresses() const noexcept { return m_addresses; }
    [[nodiscard]] std::size_t connection_count() const noexcept { return m_running_handlers; }
    [[nodiscard]] const io::buffer_ring_ptr& buffer_ring() const noexcept { return m_options.stream.buffers; }

    // ------------------------------------------------------------------ connections

    void connection_finished(server_connection& c) noexcept {
        if (!c.m_handler_done || !c.m_stream_closed) return;
        c.unlink();
        delete &c;
        --m_open_connections;
        update_capacity();
        check_closed();
        release();  // the connection's reference: may delete *this
    }

private:
    friend class coring::server;

    /// Owns a reference and counts an accept loop; closes its listener when the loop finishes.
    class accept_guard {
    public:
        accept_guard(server_state* s, std::size_t index) noexcept : m_state(s), m_index(index) { s->add_ref(); }
        accept_guard(accept_guard&& other) noexcept : m_state(std::exchange(other.m_state, nullptr)), m_index(other.m_index) {}
        accept_guard(const accept_guard&) = delete;
        accept_guard& operator=(const accept_guard&) = delete;
        ~accept_guard() {
            if (m_state != nullptr) m_state->accept_loop_finished(m_index);
        }
        server_state* m_state;
        std::size_t m_index;
    };

    /// Marks the connection's handler finished when the handler task's frame goes away (also
    /// when it is cancelled before it starts).
    class handler_guard {
    public:
        explicit handler_guard(server_connection* c) noexcept : m_connection(c) {}
        handler_guard(handler_guard&& other) noexcept : m_connection(std::exchange(other.m_connection, nullptr)) {}
        handler_guard(const handler_guard&) = delete;
        handler_guard& operator=(const handler_guard&) = delete;
        ~handler_guard() {
            if (m_connection != nullptr) {
                --m_connection->m_owner->m_running_handlers;
                m_connection->m_handler_done = true;
                m_connection->m_owner->connection_finished(*m_connection);
            }
        }
        server_connection* m_connection;
    };

    ~server_state() {
        for (std::size_t i = 0; i < m_listeners.size(); ++i) close_listener(i);
    }

    void close_listener(std::size_t index) noexcept {
        if (!m_listeners[index].is_open()) return;
        m_listeners[index] = socket();
        if (!m_unix_paths[index].empty()) ::unlink(m_unix_paths[index].c_str());
    }

    void accept_loop_finished(std::size_t index) noexcept {
        close_listener(index);
        --m_accepting;
        check_closed();
        release();
    }

    /// m_below_cap follows the connection count; accept loops paused at the cap resume.
    void update_capacity() noexcept {
        const bool below = m_options.max_connections == 0 || m_open_connections < m_options.max_connections;
        if (below == m_below_cap) return;
        m_below_cap = below;
        if (below) m_capacity_waiters.grant_all();
    }

    void check_closed() noexcept {
        if (m_all_closed || !m_closing || m_accepting != 0 || !m_connections.empty()) return;
        m_all_closed = true;
        m_closed_waiters.grant_all();
    }

    void spawn(socket::accepted accepted);
    void report_accept_error(std::size_t index, int error, std::exception_ptr failure);
    void report_accept_recovered(std::size_t index, int error, std::uint64_t failures, clock::duration lasted);

    static task<> accept_loop(accept_guard guard);
    static task<> run_handler(handler_guard guard, ref_ptr<stream_state> stream);

    event_loop* m_loop;
    connection_handler m_handler;
    server_options m_options;
    tls_context m_tls;  // what m_options.stream.tls refers to
    std::vector<socket> m_listeners;
    std::vector<address> m_addresses;
    std::vector<std::string> m_unix_paths;  // "" for TCP; a Unix listener's path, unlinked at close
    std::vector<task_handle<void>> m_accept_loops;
    intrusive_list<server_connection, server_connection_tag> m_connections;
    wait_queue m_closed_waiters;
    wait_queue m_capacity_waiters;  // accept loops paused at max_connections
    std::size_t m_open_connections = 0;  // listed in m_connections
    std::size_t m_accepting = 0;
    std::size_t m_running_handlers = 0;  // handler_guards alive
    unsigned m_refs = 1;
    bool m_closing = false;
    bool m_all_closed = false;
    bool m_serving_forever = false;      // a serve_forever() is waiting
    bool m_below_cap = true;             // fewer than max_connections are open
};

inline void server_connection::on_stream_closed(stream_close_listener* self) noexcept {
    auto* c = static_cast<server_connection*>(self);
    c->m_stream_closed = true;
    c->m_owner->connection_finished(*c);
}

inline bool is_resource_exhaustion(int error) noexcept { return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM; }

// Errors that concern one connection that went away before it was accepted: accept the next.
inline bool is_transient_accept_error(int error) noexcept {
    return error == ECONNABORTED || error == EPROTO || error == EPERM || error == EINTR || error == EAGAIN || error == ENETDOWN ||
           error == ENOPROTOOPT || error == EHOSTDOWN || error == ENONET || error == EHOSTUNREACH || error == EOPNOTSUPP ||
           error == ENETUNREACH;
}

inline task<> server_state::accept_loop(accept_guard guard) {
    server_state& self = *guard.m_state;
    const std::size_t index = guard.m_index;
    const socket& listener = self.m_listeners[index];
    std::chrono::milliseconds backoff = self.m_options.accept_retry_min;
    // One report when an episode of errors starts, one when it ends.
    std::uint64_t failures = 0;  // in this episode
    int first_error = 0;
    clock::time_point episode_start{};
    for (;;) {
        while (!self.m_below_cap)
            co_await detail::flag_awaiter(self.m_capacity_waiters, self.m_below_cap, "coring::server", "server: accepting paused at max_connections",
                                            detail::wait_kind::other);
        socket::accepted accepted;
        std::exception_ptr failure;
        int error = 0;
        try {
            accepted = co_await listener.accept();
        } catch (const std::system_error& e) {
            error = e.code().value();
            failure = std::current_exception();
        }
        if (self.m_closing) break;  // an accept that won the race with close(): its socket closes here
        if (!failure) {
            backoff = self.m_options.accept_retry_min;
            if (failures != 0) self.report_accept_recovered(index, first_error, std::exchange(failures, 0), clock::now() - episode_start);
            self.spawn(std::move(accepted));
            continue;
        }
        if (is_transient_accept_error(error)) continue;
        if (failures++ == 0) {
            first_error = error;
            episode_start = clock::now();
            self.report_accept_error(index, error, failure);
        }
        co_await sleep(backoff);
        backoff = std::min(backoff * 2, self.m_options.accept_retry_max);
    }
}

inline void server_state::report_accept_error(std::size_t index, int error, std::exception_ptr failure) {
    std::string message = "coring::server: accepting on " + m_addresses[index].to_string() + " failed";
    if (is_resource_exhaustion(error))
        message += " (" + std::system_category().message(error) + "); existing connections are served, and accepting is retried every " +
                   std::to_string(m_options.accept_retry_min.count()) + " ms, backing off to " +
                   std::to_string(m_options.accept_retry_max.count()) + " ms, until it succeeds";
    else
        message += "; retrying with back-off";
    m_loop->call_exception_handler({message, std::move(failure), {}, {}});
}

inline void server_state::report_accept_recovered(std::size_t index, int error, std::uint64_t failures, clock::duration lasted) {
    const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(lasted).count();
    std::string message = "coring::server: accepting on " + m_addresses[index].to_string() + " works again after " + std::to_string(failures) +
                          (failures == 1 ? " failed attempt" : " failed attempts") + " over " + std::to_string(ms) + " ms (" +
                          std::system_category().message(error) + ")";
    m_loop->call_exception_handler({std::move(message), nullptr, {}, {}});
}

inline void server_state::spawn(socket::accepted accepted) {
    if (accepted.peer.is_ipv4() || accepted.peer.is_ipv6()) {
        try {
            accepted.connection.set_nodelay();
        } catch (const std::system_error&) {
            // The connection may already be gone; its handler finds out.
        }
    }
    auto* connection = new server_connection(this);
    add_ref();
    m_connections.push_back(*connection);
    ++m_open_connections;
    update_capacity();
    ref_ptr<stream_state> stream;
    try {
        stream = start_stream(std::move(accepted.connection), accepted.peer, m_options.stream, connection);
    } catch (...) {
        connection->m_stream_closed = true;  // the socket was closed with `accepted`
        connection->m_handler_done = true;
        m_loop->call_exception_handler({"coring::server: could not set up a connection from " + accepted.peer.to_string(), std::current_exception(), {}, {}});
        connection_finished(*connection);
        return;
    }
    try {
        ++m_running_handlers;  // until the handler_guard goes
        connection->m_handler =
            m_loop->create_task(run_handler(handler_guard(connection), std::move(stream)), "connection from " + accepted.peer.to_string());
    } catch (...) {
        // The handler's frame (or its arguments) went away: the guard marked the handler done and
        // the streams are closing.
        m_loop->call_exception_handler({"coring::server: could not start the handler of a connection", std::current_exception(), {}, {}});
    }
}

inline task<> server_state::run_handler(handler_guard guard, ref_ptr<stream_state> stream) {
    server_state& self = *guard.m_connection->m_owner;
    if (stream->tls() != nullptr) {
        // The handler sees a connection only once its handshake is over (asyncio's rule). One that
        // fails or takes too long is closed; it is reported in debug mode only, since any client
        // can cause it.
        std::exception_ptr handshake_failure;
        try {
            co_await complete_tls_handshake(stream, self.m_options.stream.tls_handshake_timeout);
        } catch (const std::exception&) {
            handshake_failure = std::current_exception();
        }
        if (handshake_failure) {
            if (self.m_loop->get_debug())
                self.m_loop->call_exception_handler({"coring::server: TLS handshake failed", handshake_failure, {}, {}});
            co_return;
        }
    }
    std::exception_ptr failure;
    try {
        auto [reader, writer] = stream_handles(stream);
        co_await self.m_handler(std::move(reader), std::move(writer));
    } catch (const std::exception&) {
        failure = std::current_exception();  // cancelled_error is not a std::exception: it propagates
    }
    const bool idle_expired = stream->idle_expired();
    stream = ref_ptr<stream_state>();  // the last reference may close the connection now
    if (failure && idle_expired && !self.m_loop->get_debug()) failure = nullptr;  // any client can cause it
    if (failure) {
        const task_handle<void>& h = guard.m_connection->m_handler;
        self.m_loop->call_exception_handler({"Unhandled exception in client_connected_cb", failure, h ? h.name() : std::string(),
                                             h ? h.creation_site() : source_location{}});
    }
}

inline void server_state::start_accepting() {
    for (std::size_t i = 0; i < m_listeners.size(); ++i) {
        accept_guard guard(this, i);
        ++m_accepting;
        m_accept_loops.push_back(m_loop->create_task(accept_loop(std::move(guard)), "accept on " + m_addresses[i].to_string()));
    }
}

}  // namespace detail

/// A running server (asyncio.Server). Movable; destroying it closes it.
class server {
public:
    server() noexcept = default;
    explicit server(detail::ref_ptr<detail::server_state> state) noexcept : m_state(std::move(state)) {}
    server(server&&) noexcept = default;
    server& operator=(server&& other) noexcept {
        if (this != &other) {
            if (m_state) m_state->close();
            m_state = std::move(other.m_state);
        }
        return *this;
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() {
        if (m_state) m_state->close();
    }

    /// The port of the first listening socket (the one to connect to after binding port 0).
    [[nodiscard]] std::uint16_t port() const { return checked().addresses().empty() ? 0 : checked().addresses().front().port(); }
    /// The addresses the server listens on (asyncio's server.sockets).
    [[nodiscard]] const std::vector<address>& addresses() const { return checked().addresses(); }
    /// Accepting connections: not closed.
    [[nodiscard]] bool is_serving() const { return !checked().closing(); }
    /// Connections whose handler is running.
    [[nodiscard]] std::size_t connections() const { return checked().connection_count(); }
    /// The provided-buffer ring the connections receive through (empty: plain recv).
    [[nodiscard]] const io::buffer_ring_ptr& buffer_ring() const { return checked().buffer_ring(); }

    /// Stops accepting and cancels every connection's handler. Idempotent; does not wait.
    void close() { checked().close(); }

    /// Resumes once the server is closed: listeners closed, handlers finished, connections
    /// closed.
    [[nodiscard]] task<> wait_closed() const { return wait_closed_of(m_state); }

    /// Resumes once the server has been closed (and wait_closed() is satisfied). Cancelling it
    /// closes the server, waits for wait_closed() and rethrows cancelled_error.
    [[nodiscard]] task<> serve_forever() const { return serve_forever_of(m_state); }

    [[nodiscard]] explicit operator bool() const noexcept { return static_cast<bool>(m_state); }

private:
    detail::server_state& checked() const {
        if (!m_state) throw invalid_state_error("coring: use of an empty server");
        return *m_state;
    }
    static task<> wait_closed_of(detail::ref_ptr<detail::server_state> s) {
        if (!s) throw invalid_state_error("coring: use of an empty server");
        co_await detail::flag_awaiter(s->closed_waiters(), s->all_closed(), "coring::server", "server.wait_closed", detail::wait_kind::other);
    }
    static task<> serve_forever_of(detail::ref_ptr<detail::server_state> s) {
        if (!s) throw invalid_state_error("coring: use of an empty server");
        if (s->m_serving_forever) throw invalid_state_error("coring: serve_forever() is already running on this server");
        if (s->closing()) throw invalid_state_error("coring: serve_forever() on a closed server");
        s->m_serving_forever = true;
        std::optional<cancelled_error> cancelled;
        try {
            co_await detail::flag_awaiter(s->closed_waiters(), s->all_closed(), "coring::server", "server.serve_forever", detail::wait_kind::other);
        } catch (const cancelled_error& e) {
            cancelled = e;
        }
        s->m_serving_forever = false;
        if (cancelled) {
            s->close();
            co_await wait_closed_of(s);
            throw *cancelled;
        }
    }

    detail::ref_ptr<detail::server_state> m_state;
};

/// asyncio.start_server: listens on `host`:`port` and runs `handler` for each connection. `host`
/// may be an IP literal, a name (every address it resolves to is bound) or "" (every interface).
/// Port 0 picks a free port: read it with port(). Accepting starts at once (on the next loop
/// iteration). Throws std::system_error for bind errors: "bind(127.0.0.1:80): Permission denied".
[[nodiscard]] inline task<server> start_server(connection_handler handler, std::string host, std::uint16_t port, server_options options = {}) {
    if (!handler) throw std::invalid_argument("coring::start_server: no handler");
    const tls_context tls = options.stream.tls ? *options.stream.tls : tls_context{};  // borrowed by `options`
    options.stream.tls = tls;
    resolve_options how;
    how.flags = AI_PASSIVE;
    std::vector<address> addresses = co_await resolve(host, port, how);
    // IPv4 first, as asyncio binds them: with port 0 the first one picks the port.
    std::stable_sort(addresses.begin(), addresses.end(), [](const address& a, const address& b) { return a.is_ipv4() && !b.is_ipv4(); });
    event_loop& loop = get_running_loop();
    auto state = detail::ref_ptr<detail::server_state>::adopt(new detail::server_state(loop, std::move(handler), options));
    std::uint16_t chosen = port;
    for (std::size_t i = 0; i < addresses.size(); ++i) {
        address local = addresses[i].with_port(chosen);
        std::exception_ptr failure;
        int error = 0;
        try {
            // IPv6 sockets IPv6-only, so that [::] and 0.0.0.0 can share a port.
            socket s = co_await detail::open_listener(local, {.backlog = options.backlog, .reuse_port = options.reuse_port, .ipv6_only = true});
            if (chosen == 0) chosen = s.local_address().port();
            state->add_listener(std::move(s));
        } catch (const std::system_error& e) {
            error = e.code().value();
            failure = std::current_exception();
        }
        // An address family this machine cannot use (no IPv6): skip it, if another one works.
        const bool unusable = error == EADDRNOTAVAIL || error == EAFNOSUPPORT;
        if (failure && !(unusable && (i + 1 < addresses.size() || !state->addresses().empty()))) std::rethrow_exception(failure);
    }
    state->create_buffer_ring();
    state->start_accepting();
    co_return server(std::move(state));
}

/// asyncio.start_unix_server: listens on the Unix-domain socket `path` (a stale socket file
/// left there is removed first; the file is removed when the server closes).
[[nodiscard]] inline task<server> start_unix_server(connection_handler handler, std::string path, server_options options = {}) {
    if (!handler) throw std::invalid_argument("coring::start_unix_server: no handler");
    struct ::stat st {};
    if (::stat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
    event_loop& loop = get_running_loop();
    auto state = detail::ref_ptr<detail::server_state>::adopt(new detail::server_state(loop, std::move(handler), options));
    socket s = co_await socket::open_listener(address::unix_path(path), options.backlog);
    state->add_listener(std::move(s), path);
    state->create_buffer_ring();
    state->start_accepting();
    co_return server(std::move(state));
}

}  // namespace coring
