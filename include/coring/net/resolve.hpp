#pragma once
// resolve (asyncio's loop.getaddrinfo): host name to socket addresses, through getaddrinfo(3)
// on the loop's thread pool (glibc's resolver blocks, and io_uring has no DNS); resolve_name
// (loop.getnameinfo) the other way.
//
//   std::vector<coring::address> addrs = co_await coring::resolve("example.com", 443);
//   for (auto& a : addrs) std::cout << a << "\n";        // "93.184.215.14:443", "[2606:...]:443"
//
// An IP literal ("127.0.0.1", "::1", "[::1]") is answered at once, without a thread (asyncio
// does the same). Results keep getaddrinfo's order (RFC 6724: the preferred address first).
//
// Errors: resolve_error, a std::system_error in gai_category() whose code is the EAI_* value
// and whose message comes from gai_strerror:
//   resolve("no.such.host.invalid", 80): Name or service not known
// EAI_SYSTEM becomes a std::system_error carrying the errno instead.
//
// Cancellation: the lookup itself cannot be stopped (see to_thread.hpp); a cancelled task
// resumes with cancelled_error once getaddrinfo has returned.
//
// Thread-safety: resolve is awaited by a task on its own loop; the addresses it yields are plain
// values.

#include <coring/errors.hpp>
#include <coring/net/address.hpp>
#include <coring/task.hpp>
#include <coring/thread/to_thread.hpp>

#include <netdb.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace coring {

/// getaddrinfo's error codes (EAI_NONAME, EAI_AGAIN, ...), with gai_strerror's messages.
inline const std::error_category& gai_category() noexcept {
    class category final : public std::error_category {
    public:
        const char* name() const noexcept override { return "getaddrinfo"; }
        std::string message(int code) const override { return ::gai_strerror(code); }
    };
    static const category instance;
    return instance;
}

/// A failed lookup; code() is the EAI_* value in gai_category().
class resolve_error : public std::system_error {
public:
    resolve_error(int gai_code, const std::string& what) : std::system_error(gai_code, gai_category(), what) {}
};

/// What to ask getaddrinfo for.
struct resolve_options {
    /// AF_UNSPEC (both), AF_INET or AF_INET6.
    int family = AF_UNSPEC;
    /// SOCK_STREAM (TCP) or SOCK_DGRAM (UDP); one result per address either way.
    int socktype = SOCK_STREAM;
    /// AI_* flags, e.g. AI_PASSIVE (with an empty host: the wildcard address, to listen on).
    int flags = 0;
};

namespace detail {

/// `resolve("example.com", 443)`, for error messages; built only when there is an error.
inline std::string describe_resolve(const std::string& host, const std::string& service) { return "resolve(\"" + host + "\", " + service + ")"; }

/// The blocking part, run on a worker thread.
inline std::vector<address> resolve_blocking(const std::string& host, const std::string& service, resolve_options options) {
    ::addrinfo hints{};
    hints.ai_family = options.family;
    hints.ai_socktype = options.socktype;
    hints.ai_flags = options.flags;
    ::addrinfo* list = nullptr;
    const int rc = ::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(), &hints, &list);
    const int err = errno;  // EAI_SYSTEM's cause, before anything else can change it
    if (rc == EAI_SYSTEM) detail::throw_errno(err, describe_resolve(host, service));
    if (rc != 0) throw resolve_error(rc, describe_resolve(host, service));
    std::unique_ptr<::addrinfo, void (*)(::addrinfo*)> owner(list, ::freeaddrinfo);
    std::vector<address> out;
    for (const ::addrinfo* ai = list; ai != nullptr; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6) continue;
        address a(ai->ai_addr, ai->ai_addrlen);
        bool seen = false;
        for (const address& b : out) seen = seen || b == a;
        if (!seen) out.push_back(a);
    }
    if (out.empty()) throw resolve_error(EAI_NODATA, describe_resolve(host, service));
    return out;
}

/// An IP literal `host` of a family that `options` allow needs no lookup (nor a thread).
inline std::optional<address> resolve_literal(const std::string& host, std::uint16_t port, const resolve_options& options) {
    std::optional<address> literal = address::try_parse(host, port);
    if (literal && options.family != AF_UNSPEC && options.family != literal->family()) return std::nullopt;
    return literal;
}

}  // namespace detail

/// The addresses of `host` for `service` (a port number or a name from /etc/services, "http").
[[nodiscard]] inline task<std::vector<address>> resolve(std::string host, std::string service, resolve_options options = resolve_options()) {
    // A numeric service is the common case.
    if (!service.empty() && service.find_first_not_of("0123456789") == std::string::npos && service.size() <= 5) {
        const unsigned long port = std::stoul(service);
        if (port <= 65535) {
            if (auto literal = detail::resolve_literal(host, static_cast<std::uint16_t>(port), options)) co_return std::vector<address>{*literal};
        }
    }
    co_return co_await to_thread(detail::resolve_blocking, std::move(host), std::move(service), options);
}

/// The addresses of `host` with `port`.
[[nodiscard]] inline task<std::vector<address>> resolve(std::string host, std::uint16_t port, resolve_options options = resolve_options()) {
    if (auto literal = detail::resolve_literal(host, port, options)) co_return std::vector<address>{*literal};
    co_return co_await to_thread(detail::resolve_blocking, std::move(host), std::to_string(port), options);
}

/// The host name of `addr` (asyncio's loop.getnameinfo, whose host part this is): getnameinfo(3)
/// on the loop's thread pool, since a reverse lookup may ask a DNS server. `flags` are NI_*:
/// without NI_NAMEREQD an address that has no name comes back in numeric form; NI_NUMERICHOST
/// asks for that form at once. Errors: resolve_error ("resolve_name(192.0.2.1:0): Name or
/// service not known"), as resolve's; EAI_FAMILY for an address that is not IPv4 or IPv6.
[[nodiscard]] inline task<std::string> resolve_name(address addr, int flags = 0) {
    // glibc answers a Unix address with this machine's name: not what a name of it means.
    if (addr.family() != AF_INET && addr.family() != AF_INET6) throw resolve_error(EAI_FAMILY, "resolve_name(" + addr.to_string() + ")");
    co_return co_await to_thread(
        [](address a, int f) {
            char host[NI_MAXHOST];
            const int rc = ::getnameinfo(a.native(), a.size(), host, sizeof host, nullptr, 0, f);
            const int err = errno;
            if (rc == EAI_SYSTEM) detail::throw_errno(err, "resolve_name(" + a.to_string() + ")");
            if (rc != 0) throw resolve_error(rc, "resolve_name(" + a.to_string() + ")");
            return std::string(host);
        },
        std::move(addr), flags);
}

}  // namespace coring
