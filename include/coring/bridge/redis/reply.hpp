#pragma once
// coring::redis::reply, error and message: the values the Redis bridge hands back
// (coring/bridge/redis.hpp explains the bridge).
//
//   coring::redis::reply r = co_await conn.command("LRANGE", "jobs", 0, -1);
//   if (r.is_array()) for (const auto& item : r.array()) use(item.str());
//
// A reply is a plain value (RESP2, what hiredis 0.14 speaks): nil, an integer, a string (a bulk
// string or a status such as "OK"; str() gives either), or an array of replies. An error reply
// at the top level is not a reply: command() throws redis::error with the server's message. An
// error nested in an array (the results of EXEC) is an element whose is_error() is true and
// whose str() is the message. Asking a reply for what it is not (integer() of a string, say)
// throws coring::invalid_state_error naming both kinds.
//
// Thread-safety: plain values, copied and moved freely; they may cross loops and threads.

#include <coring/errors.hpp>

#include <cstddef>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace coring::redis {

/// A reply of the server (see the header comment).
class reply {
public:
    enum class kind : unsigned char { nil, integer, string, status, array, error };

    /// A nil reply (GET of a missing key, XREADGROUP that timed out).
    reply() noexcept = default;

    [[nodiscard]] static reply from_integer(long long value) {
        reply r(kind::integer);
        r.m_integer = value;
        return r;
    }
    /// A bulk string (kind::string), a status (kind::status) or a nested error (kind::error).
    [[nodiscard]] static reply from_string(std::string text, kind k = kind::string) {
        if (k != kind::string && k != kind::status && k != kind::error) throw std::invalid_argument("coring::redis::reply::from_string: not a string kind");
        reply r(k);
        r.m_string = std::move(text);
        return r;
    }
    [[nodiscard]] static reply from_array(std::vector<reply> elements) {
        reply r(kind::array);
        r.m_array = std::move(elements);
        return r;
    }

    [[nodiscard]] kind type() const noexcept { return m_kind; }
    [[nodiscard]] bool is_nil() const noexcept { return m_kind == kind::nil; }
    [[nodiscard]] bool is_integer() const noexcept { return m_kind == kind::integer; }
    /// A bulk string or a status ("OK", "PONG").
    [[nodiscard]] bool is_string() const noexcept { return m_kind == kind::string || m_kind == kind::status; }
    [[nodiscard]] bool is_status() const noexcept { return m_kind == kind::status; }
    [[nodiscard]] bool is_array() const noexcept { return m_kind == kind::array; }
    /// Only inside arrays (a failed command of a transaction): top-level errors are thrown.
    [[nodiscard]] bool is_error() const noexcept { return m_kind == kind::error; }

    /// The integer; throws invalid_state_error for any other kind.
    [[nodiscard]] long long integer() const {
        if (m_kind != kind::integer) wrong_kind("an integer");
        return m_integer;
    }
    /// The bytes of a bulk string, the text of a status, or the message of a nested error
    /// (binary-safe: may hold '\0'); throws invalid_state_error for nil, integers and arrays.
    [[nodiscard]] const std::string& str() const& {
        if (!is_string() && m_kind != kind::error) wrong_kind("a string");
        return m_string;
    }
    /// On an rvalue reply: the string moved out.
    [[nodiscard]] std::string str() && {
        if (!is_string() && m_kind != kind::error) wrong_kind("a string");
        return std::move(m_string);
    }
    /// The elements; throws invalid_state_error for any other kind.
    [[nodiscard]] const std::vector<reply>& array() const& {
        if (m_kind != kind::array) wrong_kind("an array");
        return m_array;
    }
    [[nodiscard]] std::vector<reply> array() && {
        if (m_kind != kind::array) wrong_kind("an array");
        return std::move(m_array);
    }

    /// "nil", "integer", "string", "status", "array", "error".
    [[nodiscard]] static const char* kind_name(kind k) noexcept {
        switch (k) {
            case kind::nil: return "nil";
            case kind::integer: return "integer";
            case kind::string: return "string";
            case kind::status: return "status";
            case kind::array: return "array";
            case kind::error: return "error";
        }
        return "?";
    }

    /// Same kind and same value, elements compared in turn.
    friend bool operator==(const reply& a, const reply& b) noexcept {
        return a.m_kind == b.m_kind && a.m_integer == b.m_integer && a.m_string == b.m_string && a.m_array == b.m_array;
    }

private:
    explicit reply(kind k) noexcept : m_kind(k) {}

    [[noreturn]] void wrong_kind(const char* wanted) const {
        throw invalid_state_error(std::string("coring::redis::reply: asked for ") + wanted + ", but the reply is " + kind_name(m_kind));
    }

    kind m_kind = kind::nil;
    long long m_integer = 0;
    std::string m_string;       // string, status, error
    std::vector<reply> m_array;  // array
};

/// An error reply of the server. what() is the server's message exactly ("WRONGTYPE Operation
/// against a key holding the wrong kind of value"); code() is its first word ("WRONGTYPE",
/// "ERR", "NOGROUP", "BUSYGROUP"), the error's kind by Redis's convention.
class error : public std::runtime_error {
public:
    explicit error(const std::string& message) : std::runtime_error(message) {}

    [[nodiscard]] std::string_view code() const noexcept {
        const std::string_view text(what());
        return text.substr(0, text.find(' '));
    }
};

/// One message of a subscription: the channel it was published to, and its payload (binary-safe).
struct message {
    std::string channel;
    std::string payload;

    friend bool operator==(const message&, const message&) = default;
};

}  // namespace coring::redis
