#pragma once
// The request parsing of examples/http_server: the request line and header fields of an
// HTTP/1.1 request head, and decimal numbers without overflow. A header of its own so that the
// fuzzer (fuzz/http_request.cpp) exercises the very code the server runs.
//
// Lines may end in CRLF or in a bare LF: RFC 9112, section 2.2, lets a server accept LF alone,
// and servers that do (nginx, Apache) answer hand-typed requests. A CR anywhere else is refused
// (400): a bare CR is how requests are smuggled past proxies that read lines differently.

#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace http_example {

/// ASCII case-insensitive equality (header names, "close", "keep-alive").
inline bool iequals(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
    return true;
}

struct request {
    std::string method;
    std::string target;
    std::string version;
    std::vector<std::pair<std::string, std::string>> headers;

    /// The first field of that name (names compare case-insensitively).
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const {
        for (const auto& [key, value] : headers)
            if (iequals(key, name)) return value;
        return std::nullopt;
    }
};

/// A decimal number of digits only (no sign, no space), at most `max`; nothing for anything
/// else, including a number too large for 64 bits.
inline std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t max = std::numeric_limits<std::uint64_t>::max()) {
    if (text.empty()) return std::nullopt;
    std::uint64_t value = 0;
    for (const char c : text) {
        if (c < '0' || c > '9') return std::nullopt;
        const auto digit = static_cast<std::uint64_t>(c - '0');
        // value * 10 + digit > max, without wrapping below 0 when max is a single digit.
        if (digit > max || value > (max - digit) / 10) return std::nullopt;
        value = value * 10 + digit;
    }
    return value;
}

/// The line that ends a head: "\r\n" or a bare "\n".
inline bool is_head_end(std::string_view line) { return line == "\r\n" || line == "\n"; }

namespace detail {

inline std::string_view trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    return s;
}

inline bool is_token(std::string_view s) {
    if (s.empty()) return false;
    for (const char c : s)
        if (!(std::isalnum(static_cast<unsigned char>(c)) || std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos)) return false;
    return true;
}

/// A field value may hold visible characters, spaces, tabs and obs-text, no other controls.
inline bool is_field_value(std::string_view s) {
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) return false;
    }
    return true;
}

/// The line starting at `at` without its line ending, and where the next one starts; nothing
/// if no LF follows.
inline std::optional<std::pair<std::string_view, std::size_t>> next_line(std::string_view head, std::size_t at) {
    const std::size_t lf = head.find('\n', at);
    if (lf == std::string_view::npos) return std::nullopt;
    std::string_view line = head.substr(at, lf - at);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    return std::pair{line, lf + 1};
}

}  // namespace detail

/// Parses a request head: the request line, then header fields, each line ending in CRLF or LF,
/// up to the empty line (or the end of `head`). Nothing for a malformed one: a bad request line,
/// a version other than HTTP/1.0 and 1.1, a target not starting with '/', a field without a
/// token name and a colon, a folded line, or a control character (a bare CR included).
inline std::optional<request> parse_head(std::string_view head) {
    request r;
    const auto first = detail::next_line(head, 0);
    const std::string_view line = first ? first->first : head;
    if (line.find('\r') != std::string_view::npos) return std::nullopt;
    const std::size_t sp1 = line.find(' ');
    const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
    if (sp2 == std::string_view::npos || line.find(' ', sp2 + 1) != std::string_view::npos) return std::nullopt;
    r.method = line.substr(0, sp1);
    r.target = line.substr(sp1 + 1, sp2 - sp1 - 1);
    r.version = line.substr(sp2 + 1);
    if (!detail::is_token(r.method) || r.target.empty() || r.target[0] != '/' || !detail::is_field_value(r.target)) return std::nullopt;
    if (r.version != "HTTP/1.1" && r.version != "HTTP/1.0") return std::nullopt;
    std::size_t at = first ? first->second : head.size();
    while (at < head.size()) {
        const auto next = detail::next_line(head, at);
        const std::string_view field = next ? next->first : head.substr(at);
        if (field.empty()) break;  // the empty line
        const std::size_t colon = field.find(':');
        if (colon == std::string_view::npos || !detail::is_token(field.substr(0, colon))) return std::nullopt;
        const std::string_view value = detail::trim(field.substr(colon + 1));
        if (!detail::is_field_value(value)) return std::nullopt;
        r.headers.emplace_back(field.substr(0, colon), value);
        at = next ? next->second : head.size();
    }
    return r;
}

}  // namespace http_example
