#pragma once
// coring::socket: a socket descriptor (RAII) whose connect, accept, send and receive are
// io_uring operations: TCP, UDP and Unix-domain (docs/api.md, "Sockets"). The building block of
// asyncio streams (net/stream.hpp, net/server.hpp).
//
//   // server
//   coring::socket listener = co_await coring::socket::open_listener(coring::address::loopback_ipv4(0));
//   std::uint16_t port = listener.local_address().port();
//   auto [conn, peer] = co_await listener.accept();
//   std::size_t n = co_await conn.recv(buffer);              // 0: the peer shut down its side
//   co_await conn.send_all(reply);                            // loops over short sends
//
//   // client
//   coring::socket s = co_await coring::socket::connect_to(coring::address::loopback_ipv4(port));
//
//   // UDP
//   coring::socket u = co_await coring::socket::udp();
//   u.bind(coring::address::loopback_ipv4(0));
//   auto [size, from, truncated] = co_await u.recv_from(buffer);
//   co_await u.send_to(reply, from);
//
// Which calls are io_uring operations: socket (IORING_OP_SOCKET, with a fallback to socket(2)
// on kernels before 5.19), connect, accept (also multishot: accept_multishot()), recv, send,
// recv_from / send_to (RECVMSG / SENDMSG), shutdown, close. bind, listen, setsockopt and
// getsockname are plain system calls: they never block, and liburing 2.3 has no BIND/LISTEN ops
// (kernel 6.11 added them).
//
// Errors are std::system_error with the errno and what was being done:
// "connect(127.0.0.1:9): Connection refused", "bind(127.0.0.1:80): Permission denied",
// "recv(fd 7): Connection reset by peer". send defaults to MSG_NOSIGNAL: writing to a closed
// connection is EPIPE, never a SIGPIPE.
//
// Cancellation: cancelling a task blocked in connect, accept, recv, ... cancels the operation
// in the kernel; the task resumes with cancelled_error once the operation's own CQE arrived,
// so nothing is written into the buffer afterwards and no connection is accepted and lost (an
// accept that completed first returns its connection). After a cancelled connect, close the
// socket.
//
// Ownership: a socket owns its descriptor (SOCK_CLOEXEC for every socket coring makes); close()
// hands it to the kernel, and a socket destroyed while open closes it synchronously. The
// coroutine members (send_all, open_listener's result) need the socket alive until they finish. Buffers and addresses passed to an
// operation must stay valid until the await returns (they do when the co_await is one
// expression); the awaiters below copy the address they are given.
//
// Thread-safety: loop-bound. A socket belongs to the event loop it was made on and is used by that
// loop's tasks; in debug mode, an operation started from another thread throws std::logic_error
// naming both threads. Several cores: one per loop of a loop_group (thread/loop_group.hpp).

#include <coring/errors.hpp>
#include <coring/io/multishot_accept.hpp>
#include <coring/io/ops.hpp>
#include <coring/io/owned_fd.hpp>
#include <coring/net/address.hpp>
#include <coring/task.hpp>

#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

namespace coring {
namespace detail {

/// getsockname / getpeername of `fd`. Throws "getsockname(fd 7): Bad file descriptor".
inline address socket_name(int fd, int (*get)(int, ::sockaddr*, ::socklen_t*), const char* what) {
    address a;
    ::socklen_t length = address::capacity();
    if (get(fd, a.native_storage(), &length) != 0) throw_errno(errno, describe_fd_op(what, fd));
    a.set_size(length);
    return a;
}

}  // namespace detail

class socket {
public:
    class open_awaiter;
    class connect_awaiter;
    class accept_awaiter;
    class recv_from_awaiter;
    class send_to_awaiter;
    struct accepted;
    struct datagram;

    /// A socket that is not open.
    socket() noexcept = default;
    /// Adopts `fd` (which the socket then closes). Movable, not copyable; the destructor (and
    /// move assignment) closes the descriptor synchronously if close() was not awaited.
    explicit socket(int fd) noexcept : m_fd(fd) {}

    // ------------------------------------------------------------------ creation

    /// socket(family, type, protocol) through IORING_OP_SOCKET (socket(2) on older kernels).
    [[nodiscard]] static open_awaiter open(int family, int type, int protocol = 0) noexcept;
    /// A TCP socket of `family` (AF_INET or AF_INET6).
    [[nodiscard]] static open_awaiter tcp(int family = AF_INET) noexcept;
    /// A UDP socket of `family`.
    [[nodiscard]] static open_awaiter udp(int family = AF_INET) noexcept;
    /// A Unix-domain stream socket.
    [[nodiscard]] static open_awaiter unix_stream() noexcept;
    /// A Unix-domain datagram socket.
    [[nodiscard]] static open_awaiter unix_datagram() noexcept;
    /// A connected pair of Unix-domain sockets (socketpair(2), synchronous).
    static std::pair<socket, socket> pair(int type = SOCK_STREAM);

    /// A listening stream socket on `local`: TCP for an IP address (with SO_REUSEADDR, so a
    /// restarted server can bind at once), Unix-domain for a Unix path. Port 0 picks a free port:
    /// read it back with local_address().port().
    [[nodiscard]] static task<socket> open_listener(address local, int backlog = SOMAXCONN);
    /// A stream socket of `peer`'s family, connected to it (TCP with TCP_NODELAY, or Unix).
    /// Throws std::system_error: "connect(127.0.0.1:9): Connection refused".
    [[nodiscard]] static task<socket> connect_to(address peer);

    // ------------------------------------------------------------------ plain system calls

    /// bind(2). Throws "bind(127.0.0.1:80): Permission denied".
    void bind(const address& local) {
        if (::bind(fd(), local.native(), local.size()) != 0) detail::throw_errno(errno, "bind(" + local.to_string() + ")");
    }
    /// listen(2).
    void listen(int backlog = SOMAXCONN) {
        if (::listen(fd(), backlog) != 0) detail::throw_errno(errno, detail::describe_fd_op("listen", fd()));
    }
    /// setsockopt(2) with an int value.
    void set_option(int level, int name, int value) {
        if (::setsockopt(fd(), level, name, &value, sizeof value) != 0)
            detail::throw_errno(errno, "setsockopt(fd " + std::to_string(fd()) + ", " + std::to_string(level) + ", " + std::to_string(name) + ")");
    }
    /// getsockopt(2) of an int value.
    [[nodiscard]] int get_option(int level, int name) const {
        int value = 0;
        ::socklen_t length = sizeof value;
        if (::getsockopt(fd(), level, name, &value, &length) != 0)
            detail::throw_errno(errno, "getsockopt(fd " + std::to_string(fd()) + ", " + std::to_string(level) + ", " + std::to_string(name) + ")");
        return value;
    }
    /// SO_REUSEADDR: bind a listening port again while old connections linger in TIME_WAIT.
    void set_reuse_address(bool on = true) { set_option(SOL_SOCKET, SO_REUSEADDR, on ? 1 : 0); }
    /// SO_REUSEPORT: several sockets (processes, threads, loops) share one port.
    void set_reuse_port(bool on = true) { set_option(SOL_SOCKET, SO_REUSEPORT, on ? 1 : 0); }
    /// TCP_NODELAY: send small writes at once instead of waiting (Nagle's algorithm off).
    void set_nodelay(bool on = true) { set_option(IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0); }
    /// SO_KEEPALIVE.
    void set_keepalive(bool on = true) { set_option(SOL_SOCKET, SO_KEEPALIVE, on ? 1 : 0); }
    /// The address the socket is bound to (getsockname).
    [[nodiscard]] address local_address() const { return detail::socket_name(fd(), ::getsockname, "getsockname"); }
    /// The address of the connected peer (getpeername). Throws ENOTCONN if not connected.
    [[nodiscard]] address peer_address() const { return detail::socket_name(fd(), ::getpeername, "getpeername"); }
    /// AF_INET, AF_INET6 or AF_UNIX (SO_DOMAIN).
    [[nodiscard]] int family() const { return get_option(SOL_SOCKET, SO_DOMAIN); }
    /// SOCK_STREAM or SOCK_DGRAM (SO_TYPE).
    [[nodiscard]] int type() const { return get_option(SOL_SOCKET, SO_TYPE); }

    [[nodiscard]] bool is_open() const noexcept { return m_fd.is_open(); }
    [[nodiscard]] int fd() const noexcept { return m_fd.get(); }
    /// Gives up ownership of the descriptor (the socket is then closed) and returns it.
    [[nodiscard]] int release() noexcept { return m_fd.release(); }

    // ------------------------------------------------------------------ io_uring operations

    /// Connects to `peer` (IORING_OP_CONNECT); the address is copied into the awaiter.
    [[nodiscard]] connect_awaiter connect(const address& peer) const noexcept;
    /// The next connection: yields {socket, peer address} (IORING_OP_ACCEPT).
    [[nodiscard]] accept_awaiter accept(int flags = SOCK_CLOEXEC) const noexcept;
    /// A multishot accept on this listening socket: one armed SQE, connections handed out by
    /// next() as descriptors (adopt them with socket(fd)). See io::multishot_accept.
    [[nodiscard]] io::multishot_accept accept_multishot(std::size_t max_queued = 64) const { return io::multishot_accept(fd(), max_queued); }
    /// Receives into `buffer`; yields the bytes received, 0 when the peer shut down its side.
    [[nodiscard]] io::recv recv(std::span<std::byte> buffer, int flags = 0) const noexcept { return io::recv(fd(), buffer, flags); }
    /// Sends `data`; yields the bytes sent, which may be fewer (see send_all).
    [[nodiscard]] io::send send(std::span<const std::byte> data, int flags = MSG_NOSIGNAL) const noexcept { return io::send(fd(), data, flags); }
    [[nodiscard]] io::send send(std::string_view data, int flags = MSG_NOSIGNAL) const noexcept { return send(as_bytes(data), flags); }
    /// Sends all of `data`, however many operations it takes.
    [[nodiscard]] task<> send_all(std::span<const std::byte> data) const;
    [[nodiscard]] task<> send_all(std::string_view data) const { return send_all(as_bytes(data)); }
    /// Receives one datagram: yields {size, sender, truncated} (IORING_OP_RECVMSG). `truncated`
    /// says the datagram was longer than the buffer (the rest is lost, as with recvfrom).
    [[nodiscard]] recv_from_awaiter recv_from(std::span<std::byte> buffer, int flags = 0) const noexcept;
    /// Sends one datagram to `peer` (IORING_OP_SENDMSG); the address is copied into the awaiter.
    [[nodiscard]] send_to_awaiter send_to(std::span<const std::byte> data, const address& peer, int flags = MSG_NOSIGNAL) const noexcept;
    [[nodiscard]] send_to_awaiter send_to(std::string_view data, const address& peer, int flags = MSG_NOSIGNAL) const noexcept;
    /// shutdown(2): SHUT_WR sends FIN (the peer's recv yields 0) and keeps receiving.
    [[nodiscard]] io::shutdown shutdown(int how = SHUT_WR) const noexcept { return io::shutdown(fd(), how); }
    /// Closes the socket through the kernel (IORING_OP_CLOSE). The socket lets go of the
    /// descriptor when the await begins, and it is closed even if the await is cancelled (see
    /// io::close). Closing a closed socket does nothing.
    [[nodiscard]] detail::close_owned close() noexcept { return m_fd.close(); }

private:
    static std::span<const std::byte> as_bytes(std::string_view s) noexcept { return std::as_bytes(std::span(s.data(), s.size())); }

    detail::owned_fd m_fd;
};

/// What accept() yields.
struct socket::accepted {
    socket connection;
    address peer;
};

/// What recv_from() yields.
struct socket::datagram {
    std::size_t size;
    address sender;
    bool truncated;
};

/// co_await socket::open(...): io::socket, adopted into a socket.
class [[nodiscard]] socket::open_awaiter {
public:
    open_awaiter(int family, int type, int protocol) noexcept : m_op(family, type, protocol) {}
    bool await_ready() noexcept { return m_op.await_ready(); }
    bool await_suspend(std::coroutine_handle<> frame) { return m_op.await_suspend(frame); }
    socket await_resume() { return socket(m_op.await_resume()); }

private:
    io::socket m_op;
};

/// co_await s.connect(peer): IORING_OP_CONNECT; the peer's address lives here.
class [[nodiscard]] socket::connect_awaiter final : public detail::io_awaiter<connect_awaiter> {
public:
    connect_awaiter(int fd, const address& peer) noexcept : m_fd(fd), m_peer(peer) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_connect(sqe, m_fd, m_peer.native(), m_peer.size()); }
    [[nodiscard]] std::string describe() const { return "connect(" + m_peer.to_string() + ")"; }
    void await_resume() const { (void)checked_result(); }

private:
    int m_fd;
    address m_peer;
};

/// co_await s.accept(): IORING_OP_ACCEPT; the peer's address is received here.
class [[nodiscard]] socket::accept_awaiter final : public detail::io_awaiter<accept_awaiter> {
public:
    accept_awaiter(int fd, int flags) noexcept : m_fd(fd), m_flags(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        m_length = address::capacity();
        io_uring_prep_accept(sqe, m_fd, m_peer.native_storage(), &m_length, m_flags);
    }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("accept", m_fd); }
    accepted await_resume() {
        socket connection(checked_result());
        m_peer.set_size(m_length);
        return accepted{std::move(connection), m_peer};
    }

private:
    int m_fd;
    int m_flags;
    ::socklen_t m_length = 0;
    address m_peer;
};

/// co_await s.recv_from(buffer): IORING_OP_RECVMSG; msghdr, iovec and sender address live
/// here, and point into this awaiter only from prepare() on (it may move before that).
class [[nodiscard]] socket::recv_from_awaiter final : public detail::io_awaiter<recv_from_awaiter> {
public:
    recv_from_awaiter(int fd, std::span<std::byte> buffer, int flags) noexcept : m_fd(fd), m_buffer(buffer), m_flags(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        m_iov = {m_buffer.data(), m_buffer.size()};
        m_message = {};
        m_message.msg_name = m_sender.native_storage();
        m_message.msg_namelen = address::capacity();
        m_message.msg_iov = &m_iov;
        m_message.msg_iovlen = 1;
        io_uring_prep_recvmsg(sqe, m_fd, &m_message, static_cast<unsigned>(m_flags));
    }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("recvmsg", m_fd); }
    datagram await_resume() {
        const auto n = static_cast<std::size_t>(checked_result());
        m_sender.set_size(m_message.msg_namelen);
        return datagram{n, m_sender, (m_message.msg_flags & MSG_TRUNC) != 0};
    }

private:
    int m_fd;
    std::span<std::byte> m_buffer;
    int m_flags;
    ::iovec m_iov{};
    ::msghdr m_message{};
    address m_sender;
};

/// co_await s.send_to(data, peer): IORING_OP_SENDMSG; msghdr, iovec and the peer's address
/// live here.
class [[nodiscard]] socket::send_to_awaiter final : public detail::io_awaiter<send_to_awaiter> {
public:
    send_to_awaiter(int fd, std::span<const std::byte> data, const address& peer, int flags) noexcept
        : m_fd(fd), m_data(data), m_peer(peer), m_flags(flags) {}
    void prepare(io_uring_sqe* sqe) noexcept {
        m_iov = {const_cast<std::byte*>(m_data.data()), m_data.size()};
        m_message = {};
        m_message.msg_name = const_cast<::sockaddr*>(m_peer.native());
        m_message.msg_namelen = m_peer.size();
        m_message.msg_iov = &m_iov;
        m_message.msg_iovlen = 1;
        io_uring_prep_sendmsg(sqe, m_fd, &m_message, static_cast<unsigned>(m_flags));
    }
    [[nodiscard]] std::string describe() const { return "sendmsg(fd " + std::to_string(m_fd) + " to " + m_peer.to_string() + ")"; }
    std::size_t await_resume() const { return static_cast<std::size_t>(checked_result()); }

private:
    int m_fd;
    std::span<const std::byte> m_data;
    address m_peer;
    int m_flags;
    ::iovec m_iov{};
    ::msghdr m_message{};
};

// ---------------------------------------------------------------------- definitions

inline socket::open_awaiter socket::open(int family, int type, int protocol) noexcept { return open_awaiter(family, type, protocol); }
inline socket::open_awaiter socket::tcp(int family) noexcept { return open_awaiter(family, SOCK_STREAM, IPPROTO_TCP); }
inline socket::open_awaiter socket::udp(int family) noexcept { return open_awaiter(family, SOCK_DGRAM, IPPROTO_UDP); }
inline socket::open_awaiter socket::unix_stream() noexcept { return open_awaiter(AF_UNIX, SOCK_STREAM, 0); }
inline socket::open_awaiter socket::unix_datagram() noexcept { return open_awaiter(AF_UNIX, SOCK_DGRAM, 0); }

inline std::pair<socket, socket> socket::pair(int type) {
    int fds[2];
    if (::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, fds) != 0) detail::throw_errno(errno, "socketpair");
    return {socket(fds[0]), socket(fds[1])};
}

inline socket::connect_awaiter socket::connect(const address& peer) const noexcept { return connect_awaiter(fd(), peer); }
inline socket::accept_awaiter socket::accept(int flags) const noexcept { return accept_awaiter(fd(), flags); }
inline socket::recv_from_awaiter socket::recv_from(std::span<std::byte> buffer, int flags) const noexcept { return recv_from_awaiter(fd(), buffer, flags); }
inline socket::send_to_awaiter socket::send_to(std::span<const std::byte> data, const address& peer, int flags) const noexcept {
    return send_to_awaiter(fd(), data, peer, flags);
}
inline socket::send_to_awaiter socket::send_to(std::string_view data, const address& peer, int flags) const noexcept {
    return send_to_awaiter(fd(), as_bytes(data), peer, flags);
}

inline task<> socket::send_all(std::span<const std::byte> data) const {
    std::size_t done = 0;
    while (done < data.size()) {
        const std::size_t n = co_await send(data.subspan(done));
        // A stream socket reports a broken connection with an errno (EPIPE, ECONNRESET); one that
        // accepts nothing and says nothing would be retried forever: do not spin.
        if (n == 0) detail::throw_errno(EPIPE, detail::describe_fd_op("send", fd()));
        done += n;
    }
}

namespace detail {

/// What is set before bind on a listening socket: open_listener takes the defaults,
/// start_server its server_options.
struct listener_options {
    int backlog = SOMAXCONN;
    bool reuse_port = false;  // SO_REUSEPORT
    bool ipv6_only = false;   // IPV6_V6ONLY, on an IPv6 address
};

inline task<socket> open_listener(address local, listener_options options) {
    const bool ip = local.is_ipv4() || local.is_ipv6();
    socket s = co_await socket::open(local.family(), SOCK_STREAM, ip ? IPPROTO_TCP : 0);
    if (ip) s.set_reuse_address();
    if (options.reuse_port) s.set_reuse_port();
    if (options.ipv6_only && local.is_ipv6()) s.set_option(IPPROTO_IPV6, IPV6_V6ONLY, 1);
    s.bind(local);
    s.listen(options.backlog);
    co_return s;
}

}  // namespace detail

inline task<socket> socket::open_listener(address local, int backlog) { return detail::open_listener(local, {.backlog = backlog}); }

inline task<socket> socket::connect_to(address peer) {
    const bool ip = peer.is_ipv4() || peer.is_ipv6();
    socket s = co_await open(peer.family(), SOCK_STREAM, ip ? IPPROTO_TCP : 0);
    co_await s.connect(peer);
    if (ip) s.set_nodelay();
    co_return s;
}

}  // namespace coring
