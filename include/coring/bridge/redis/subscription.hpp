#pragma once
// coring::redis::subscription: the receiving end of publish/subscribe (coring/bridge/redis.hpp
// explains the bridge; connection::subscribe() makes one).
//
//   std::vector<std::string> channels{"news", "alerts"};   // named: g++ 12 rejects a braced list in co_await
//   coring::redis::subscription sub = co_await conn.subscribe(channels);
//   for (;;) {
//       coring::redis::message m = co_await sub.next();   // m.channel, m.payload
//   }
//
// subscribe() sends SUBSCRIBE and returns once the server has confirmed every channel, so a
// message published after it returns is received. From then on the connection is in subscriber
// mode (as RESP2 requires): its command() throws invalid_state_error, and it serves the
// subscription only (open another connection for commands, as redis-py's PubSub does). More
// channels: co_await sub.subscribe(more). The mode lasts as long as the connection.
//
// Messages are kept in arrival order until next() takes them; several tasks may call next() at
// once, each message going to one of them. Messages that arrive while nobody waits are buffered
// without limit (pending() counts them); a subscriber that cannot keep up should drop or batch.
//
// Errors: once the connection is lost (the server went away, connection::close()), next()
// returns the messages received before, then throws std::system_error. A subscription the server
// refuses (ACL: NOPERM) throws redis::error from subscribe() with the server's message; hiredis
// 0.14 closes the connection on such a reply, so it is closed too.
//
// Cancellation: a task cancelled in next() takes no message; the next call gets it. A task
// cancelled in subscribe() leaves the SUBSCRIBE sent: the connection is in subscriber mode.
//
// Thread-safety: loop-bound, like its connection: used by tasks of the loop it was made on. It
// shares the connection's hiredis context (kept alive by either): it may outlive the connection
// object it came from, and must not be destroyed while a task waits in its next().

#include <coring/bridge/redis/command.hpp>
#include <coring/bridge/redis/link.hpp>
#include <coring/bridge/redis/reply.hpp>
#include <coring/detail/ref_ptr.hpp>
#include <coring/errors.hpp>
#include <coring/task.hpp>

#include <cstddef>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace coring::redis {

namespace detail {

/// Sends SUBSCRIBE for `channels` on `l` and waits until the server has confirmed them all.
[[nodiscard]] inline task<> subscribe_channels(coring::detail::ref_ptr<link> l, std::vector<std::string> channels) {
    if (channels.empty()) throw std::invalid_argument("coring::redis: subscribe needs at least one channel");
    l->send_subscribe(command_encoder::encode("SUBSCRIBE", channels), channels.size());
    while (l->confirmations_due() && l->current_state() == link::state::open) {
        l->subscribed_event.clear();
        co_await l->subscribed_event.wait();
    }
    if (!l->refusal().empty()) throw error(l->refusal());  // hiredis closed the connection with it
    if (l->current_state() != link::state::open) std::rethrow_exception(l->failure());
}

}  // namespace detail

class subscription {
public:
    /// A subscription to nothing: next() throws invalid_state_error.
    subscription() noexcept = default;
    subscription(subscription&&) noexcept = default;
    subscription& operator=(subscription&&) noexcept = default;

    /// The next message, waiting for one if none is buffered (see the header comment).
    [[nodiscard]] task<message> next() {
        coring::detail::ref_ptr<detail::link> l = checked();
        for (;;) {
            if (!l->messages.empty()) {
                message m = std::move(l->messages.front());
                l->messages.pop_front();
                co_return m;
            }
            if (l->current_state() != detail::link::state::open) std::rethrow_exception(l->failure());
            l->message_arrived.clear();
            co_await l->message_arrived.wait();
        }
    }

    /// Adds channels; returns once the server has confirmed them.
    [[nodiscard]] task<> subscribe(std::vector<std::string> channels) { return detail::subscribe_channels(checked(), std::move(channels)); }

    /// Messages received and not yet taken by next().
    [[nodiscard]] std::size_t pending() const noexcept { return m_link ? m_link->messages.size() : 0; }

    /// False once the connection is lost or closed (buffered messages may remain).
    [[nodiscard]] bool is_open() const noexcept { return m_link && m_link->current_state() == detail::link::state::open; }

private:
    friend class connection;
    explicit subscription(coring::detail::ref_ptr<detail::link> l) noexcept : m_link(std::move(l)) {}

    [[nodiscard]] coring::detail::ref_ptr<detail::link> checked() const {
        if (!m_link) throw invalid_state_error("coring::redis: an empty subscription");
        return m_link;
    }

    coring::detail::ref_ptr<detail::link> m_link;
};

}  // namespace coring::redis
