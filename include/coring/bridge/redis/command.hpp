#pragma once
// A Redis command in flight: its arguments encoded as RESP (a binary-safe argument vector), and
// the awaiter that sends it and resumes with the reply (coring/bridge/redis.hpp explains the
// bridge; connection::command() makes these).
//
//   coring::redis::reply r = co_await conn.command("HSET", "user:1", "name", name, "age", 42);
//
// Arguments: anything convertible to std::string_view (std::string, const char*, string
// literals; bytes are sent as they are, '\0' included), integers (not bool, not char), floating
// point (the shortest text that reads back the same, as redis-py sends it), and ranges of those
// (a std::vector<std::string> of keys), which add one argument per element. Redis has no NULL:
// nullptr does not compile, and a null const char* throws std::invalid_argument.
//
// The awaiter is lazy: nothing is sent until it is awaited (so a command made and never awaited
// is never sent, and commands go out in the order they are awaited). Awaited, it hands the
// command to hiredis, whose output buffer the connection sends once per loop iteration for all
// the commands issued in it (detail/link.hpp), and suspends until the reply. Replies come in
// the order the commands were sent, on one connection for every task that uses it.
//
// Cancellation: a command whose awaiting task is cancelled before it was sent is never sent.
// Once sent it cannot be taken back: the server runs it, and its reply is discarded when it
// arrives, so the replies of the other commands stay matched to their commands and the
// connection stays usable. A cancel that arrives after the reply did loses: the task resumes
// with the reply, and the cancellation is delivered at its next suspension.

#include <coring/bridge/redis/link.hpp>
#include <coring/bridge/redis/reply.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ref_ptr.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cctype>
#include <charconv>
#include <concepts>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <iterator>
#include <ranges>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>
#include <utility>

namespace coring::redis {

class command_awaiter;

namespace detail {

// Not nullptr: it converts to std::string_view until C++23, as a C string at address 0.
template <class T>
concept string_argument = std::is_convertible_v<const T&, std::string_view> && !std::is_same_v<std::remove_cv_t<T>, std::nullptr_t>;

template <class T>
concept char_type = std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
                    std::is_same_v<T, char32_t>;

template <class T>
concept integer_argument = std::integral<T> && !std::is_same_v<T, bool> && !char_type<T>;

template <class T>
concept scalar_argument = string_argument<T> || integer_argument<T> || std::floating_point<T>;

template <class T>
concept range_argument = !scalar_argument<T> && std::ranges::forward_range<const T> && scalar_argument<std::ranges::range_value_t<const T>>;

/// What command() accepts as one argument (see the header comment).
template <class T>
concept argument = scalar_argument<T> || range_argument<T>;

/// The RESP encoding of a command: "*<argc>\r\n" then "$<length>\r\n<bytes>\r\n" per argument.
class command_encoder {
public:
    template <class... Args>
    static std::string encode(const Args&... args) {
        const std::size_t argc = (count(args) + ... + 0);
        if (argc == 0) throw std::invalid_argument("coring::redis: a command needs at least its name");
        std::string out;
        out.reserve(16 + (size_hint(args) + ... + 0));
        out += '*';
        append_number(out, argc);
        out += "\r\n";
        (add(out, args), ...);
        return out;
    }

    /// The first argument (the command's name) of an encoded command.
    static std::string_view name_of(std::string_view encoded) noexcept {
        const std::size_t dollar = encoded.find('$');
        const std::size_t eol = encoded.find("\r\n", dollar);
        std::size_t length = 0;
        std::from_chars(encoded.data() + dollar + 1, encoded.data() + eol, length);
        return encoded.substr(eol + 2, length);
    }

private:
    template <class T>
    static std::size_t count(const T& arg) {
        if constexpr (range_argument<T>)
            return static_cast<std::size_t>(std::ranges::distance(arg));
        else
            return 1;
    }
    template <class T>
    static std::size_t size_hint(const T& arg) {
        if constexpr (string_argument<T>)
            return bytes_of(arg).size() + 16;
        else if constexpr (range_argument<T>)
            return 0;  // grows as it goes
        else
            return 40;
    }

    // A null char pointer has no bytes: std::string_view of it would read from address 0.
    template <class T>
    static std::string_view bytes_of(const T& arg) {
        if constexpr (std::is_pointer_v<T>) {
            if (arg == nullptr) throw std::invalid_argument("coring::redis: a null const char* argument (Redis has no NULL: send an empty string)");
        }
        return std::string_view(arg);
    }

    static void append_number(std::string& out, std::size_t n) {
        char digits[24];
        const auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
        out.append(digits, end);
    }
    static void add_bytes(std::string& out, std::string_view bytes) {
        out += '$';
        append_number(out, bytes.size());
        out += "\r\n";
        out.append(bytes);
        out += "\r\n";
    }
    template <class T>
    static void add(std::string& out, const T& arg) {
        if constexpr (string_argument<T>) {
            add_bytes(out, bytes_of(arg));
        } else if constexpr (integer_argument<T> || std::floating_point<T>) {
            char text[64];
            const auto [end, ec] = std::to_chars(text, text + sizeof text, arg);
            if (ec != std::errc()) throw std::invalid_argument("coring::redis: a number argument could not be written");
            add_bytes(out, std::string_view(text, static_cast<std::size_t>(end - text)));
        } else {
            for (const auto& element : arg) add(out, element);
        }
    }
};

/// Commands that change how hiredis reads the connection: subscribe() and its subscription do
/// the publish/subscribe ones; MONITOR and the sharded channels are not supported.
inline bool reserved_command(std::string_view name) noexcept {
    constexpr std::string_view reserved[] = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE", "MONITOR"};
    for (std::string_view r : reserved) {
        if (r.size() != name.size()) continue;
        bool same = true;
        for (std::size_t i = 0; i < r.size() && same; ++i) same = std::toupper(static_cast<unsigned char>(name[i])) == r[i];
        if (same) return true;
    }
    return false;
}

/// A sent command in hiredis's callback list: the privdata of its reply callback. hiredis calls
/// the callback exactly once (with the reply, or with none when the connection goes), which
/// deletes this; the awaiter, while it waits, points here, and a cancelled one leaves.
struct pending_command {
    command_awaiter* waiter;
};

}  // namespace detail

/// What connection::command() returns: co_await it for the reply (see the header comment).
/// Movable until awaited; awaited once.
class [[nodiscard]] command_awaiter final : public coring::detail::leaf_awaiter<> {
public:
    command_awaiter(coring::detail::ref_ptr<detail::link> link, std::string encoded) noexcept
        : leaf_awaiter(operations_), m_link(std::move(link)), m_encoded(std::move(encoded)) {}
    command_awaiter(command_awaiter&& other) noexcept
        : leaf_awaiter(std::move(other)), m_link(std::move(other.m_link)), m_encoded(std::move(other.m_encoded)) {}
    ~command_awaiter() {
        if (m_pending != nullptr) m_pending->waiter = nullptr;  // the frame went while waiting: its reply is discarded
    }

    /// Throws before anything is sent: invalid_state_error for a connection in subscriber mode
    /// or a moved-from one, std::system_error for one that is closed or lost.
    bool await_ready() const {
        if (!m_link) throw invalid_state_error("coring::redis: command on a moved-from connection");
        m_link->check_can_send();
        return false;
    }

    std::coroutine_handle<> await_suspend(std::coroutine_handle<> frame) {
        if (!begin_suspend(frame)) return frame;  // cancelled before sending: nothing goes out
        auto* pending = new detail::pending_command{this};
        if (!m_link->send(&on_reply, pending, m_encoded)) {
            delete pending;
            m_failure = m_link->failure();
            return frame;
        }
        m_link->count_sent();
        m_pending = pending;
        arm();
        return switch_away(frame);
    }

    /// The reply; throws redis::error for an error reply, std::system_error if the connection
    /// was lost before the reply came, cancelled_error if the task was cancelled first.
    reply await_resume() {
        throw_if_cancelled();
        if (m_failure) std::rethrow_exception(m_failure);
        if (m_server_error) throw error(m_reply.str());
        return std::move(m_reply);
    }

    /// The encoded command (RESP), for diagnostics.
    [[nodiscard]] std::string_view encoded() const noexcept { return m_encoded; }

private:
    // hiredis's reply callback: never runs user code, only stores the outcome and wakes.
    static void on_reply(redisAsyncContext* ac, void* r, void* privdata) {
        auto* pending = static_cast<detail::pending_command*>(privdata);
        command_awaiter* self = pending->waiter;
        delete pending;
        detail::link& l = detail::link::of(ac);
        l.count_answered();
        if (self == nullptr) return;  // cancelled: the reply is discarded
        self->m_pending = nullptr;
        const auto* rep = static_cast<const redisReply*>(r);
        try {
            if (rep == nullptr) {
                self->m_failure = l.failure_of(ac);
            } else if (rep->type == REDIS_REPLY_ERROR) {
                self->m_server_error = true;
                self->m_reply = reply::from_string(std::string(rep->str, rep->len), reply::kind::error);
            } else {
                self->m_reply = detail::convert_reply(*rep);
            }
        } catch (...) {
            self->m_failure = std::current_exception();  // std::bad_alloc
        }
        self->wake();
    }

    // A cancel request while suspended: a command still waiting for its reply leaves hiredis's
    // list entry behind (the reply is discarded when it comes); one whose reply came has won.
    static void on_cancel(coring::detail::ready_node* node) noexcept {
        auto& self = static_cast<command_awaiter&>(static_cast<leaf_awaiter&>(*node));
        if (self.m_pending == nullptr) return;
        self.take_cancel_request();
        self.m_pending->waiter = nullptr;
        self.m_pending = nullptr;
        self.mark_cancelled();
        self.wake();
    }

    static void describe(const coring::detail::ready_node* node, coring::detail::await_description& out) {
        const auto& self = static_cast<const command_awaiter&>(static_cast<const leaf_awaiter&>(*node));
        out.what = "redis " + std::string(detail::command_encoder::name_of(self.m_encoded));
        if (self.m_link) out.what += " on " + self.m_link->where();
    }

    static constexpr coring::detail::ready_node::operations operations_{&resume_frame, &on_cancel, false, &describe, ::coring::detail::wait_kind::io};

    coring::detail::ref_ptr<detail::link> m_link;
    std::string m_encoded;
    detail::pending_command* m_pending = nullptr;  // while waiting for the reply
    reply m_reply;
    std::exception_ptr m_failure;
    bool m_server_error = false;
};

}  // namespace coring::redis
