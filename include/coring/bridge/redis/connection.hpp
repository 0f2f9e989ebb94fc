#pragma once
// coring::redis::connection, connect and connect_unix (coring/bridge/redis.hpp explains the
// bridge as a whole).
//
//   coring::redis::connection r = co_await coring::redis::connect("127.0.0.1", 6379);
//   co_await r.command("SET", "greeting", "hello");
//   coring::redis::reply v = co_await r.command("GET", "greeting");   // v.str() == "hello"
//
// Thread-safety: loop-bound. A connection belongs to the loop it was made on and serves that
// loop's tasks (any number at once: their commands are pipelined); it must not be used from
// another thread or loop. On several loops, give each loop its own connection.

#include <coring/bridge/redis/command.hpp>
#include <coring/bridge/redis/link.hpp>
#include <coring/bridge/redis/subscription.hpp>
#include <coring/detail/ref_ptr.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/net/address.hpp>
#include <coring/net/resolve.hpp>
#include <coring/task.hpp>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace coring::redis {

class connection {
public:
    /// No connection: command() throws invalid_state_error (a place to move one into).
    connection() noexcept = default;
    connection(connection&&) noexcept = default;
    connection& operator=(connection&&) noexcept = default;
    /// Drops this handle. Commands still in flight keep the hiredis context alive until their
    /// replies are in (so no task is left without its reply); then it is closed. A subscription
    /// made from it keeps it open too.
    ~connection() = default;

    /// Encodes the command now and returns its awaiter; sent when awaited (command.hpp: the
    /// arguments, pipelining, cancellation). co_await yields the reply; an error reply throws
    /// redis::error, a lost connection std::system_error. SUBSCRIBE and its kin throw
    /// std::invalid_argument here (use subscribe()), as does MONITOR.
    template <class... Args>
        requires(sizeof...(Args) >= 1 && (detail::argument<Args> && ...))
    [[nodiscard]] command_awaiter command(const Args&... args) const {
        if (!m_link) throw invalid_state_error("coring::redis: command on an empty connection");
        std::string encoded = detail::command_encoder::encode(args...);
        const std::string_view name = detail::command_encoder::name_of(encoded);
        if (detail::reserved_command(name))
            throw std::invalid_argument("coring::redis: " + std::string(name) + " is not sent through command(): " +
                                        (name.size() == 7 ? "MONITOR is not supported" : "use connection::subscribe()"));
        return command_awaiter(m_link, std::move(encoded));
    }

    /// Subscribes to `channels` (at least one) and returns the subscription once the server has
    /// confirmed them; the connection turns to subscriber mode (subscription.hpp). A second call
    /// throws invalid_state_error: add channels with subscription::subscribe.
    [[nodiscard]] task<subscription> subscribe(std::vector<std::string> channels) const { return subscribe_on(m_link, std::move(channels)); }

    /// Closes the connection now: commands in flight (of any task) fail with std::system_error
    /// (ECONNABORTED), as does a subscription's next(); later commands throw it at once.
    void close() noexcept {
        if (m_link) m_link->close();
    }

    /// True while connected: false after close() or once the connection was lost.
    [[nodiscard]] bool is_open() const noexcept { return m_link && m_link->current_state() == detail::link::state::open; }

    /// Commands sent and not yet answered (cancelled ones included, until their replies come).
    [[nodiscard]] std::size_t in_flight() const noexcept { return m_link ? m_link->in_flight() : 0; }

    /// "127.0.0.1:6379", "[::1]:6379" or the Unix socket's path.
    [[nodiscard]] std::string where() const { return m_link ? m_link->where() : std::string(); }

    /// The socket (for diagnostics; the connection owns it), or -1.
    [[nodiscard]] int native_handle() const noexcept {
        return m_link && m_link->context() != nullptr ? m_link->context()->c.fd : -1;
    }

private:
    friend task<connection> connect(std::string host, int port);
    friend task<connection> connect_unix(std::string path);
    explicit connection(coring::detail::ref_ptr<detail::link> l) noexcept : m_link(std::move(l)) {}

    // Connects to one address (an IP literal, or a Unix socket's path with port < 0).
    static task<connection> open(std::string address, int port) {
        auto l = detail::link::start(get_running_loop(), address, port);
        co_await l->connected.wait();
        if (l->current_state() != detail::link::state::open) std::rethrow_exception(l->failure());
        co_return connection(std::move(l));
    }

    static task<subscription> subscribe_on(coring::detail::ref_ptr<detail::link> l, std::vector<std::string> channels) {
        if (!l) throw invalid_state_error("coring::redis: subscribe on an empty connection");
        if (l->subscribed()) throw invalid_state_error("coring::redis: " + l->where() + " is subscribed already: use subscription::subscribe()");
        co_await detail::subscribe_channels(l, std::move(channels));
        co_return subscription(std::move(l));
    }

    coring::detail::ref_ptr<detail::link> m_link;
};

/// Connects over TCP. `host` is an address literal or a name, resolved first with
/// coring::resolve (on the loop's thread pool; a literal is answered at once); the addresses are
/// tried in order and the last failure is thrown: std::system_error (ECONNREFUSED, ...), or
/// coring::resolve_error for a name that does not resolve. Throws std::invalid_argument for a
/// port out of 1..65535. Connecting has no timeout of its own: wrap it in coring::wait_for.
[[nodiscard]] inline task<connection> connect(std::string host, int port) {
    if (port < 1 || port > 65535) throw std::invalid_argument("coring::redis::connect: port " + std::to_string(port) + " is out of range");
    const std::vector<address> addresses = co_await resolve(host, static_cast<std::uint16_t>(port));
    std::exception_ptr last;
    for (const address& a : addresses) {
        try {
            co_return co_await connection::open(a.host(), port);
        } catch (const std::system_error&) {
            last = std::current_exception();
        }
    }
    if (!last) throw std::system_error(EADDRNOTAVAIL, std::generic_category(), "coring::redis::connect: " + host + " has no address");
    std::rethrow_exception(last);
}

/// Connects to the Unix socket at `path`; std::system_error (ENOENT, ECONNREFUSED, ...) if it
/// cannot.
[[nodiscard]] inline task<connection> connect_unix(std::string path) {
    if (path.empty()) throw std::invalid_argument("coring::redis::connect_unix: empty path");
    return connection::open(std::move(path), -1);
}

}  // namespace coring::redis
