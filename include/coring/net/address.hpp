#pragma once
// coring::address: a socket address, IPv4, IPv6 or Unix-domain (a value type around
// sockaddr_storage).
//
//   auto a = coring::address::ipv4("127.0.0.1", 8080);     // "127.0.0.1:8080"
//   auto b = coring::address::ipv6("::1", 8080);           // "[::1]:8080"
//   auto c = coring::address::unix_path("/run/app.sock");  // "unix:/run/app.sock"
//   auto d = coring::address::parse("10.0.0.1", 80);       // either family, from a literal
//   a.port(); a.host(); a.family(); a.to_string();
//
// The native form (native(), size()) is what bind, connect, sendmsg take; a received address
// is built with address(const sockaddr*, socklen_t), or filled in place through
// native_storage() / set_size(). An abstract Unix address (Linux) is a path that starts with
// '\0'; it prints as "unix:@name".
//
// Thread-safety: addresses are plain values; they may be copied or moved to any thread (run_on
// carries them between loops).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <ostream>
#include <stdexcept>
#include <string>
#include <string_view>

namespace coring {

class address {
public:
    /// An empty address (family AF_UNSPEC).
    address() noexcept { std::memset(&m_storage, 0, sizeof m_storage); }

    /// Copies a native address. Throws std::invalid_argument if `length` exceeds
    /// sizeof(sockaddr_storage).
    address(const ::sockaddr* native, ::socklen_t length) : address() {
        if (length > sizeof m_storage) throw std::invalid_argument("coring::address: native address too long");
        std::memcpy(&m_storage, native, length);
        m_length = length;
    }

    /// An IPv4 address from dotted-quad text. Throws std::invalid_argument for anything else.
    static address ipv4(std::string_view ip, std::uint16_t port) {
        if (auto a = try_ipv4(ip, port)) return *a;
        throw std::invalid_argument("coring::address: not an IPv4 address: \"" + std::string(ip) + "\"");
    }
    /// An IPv6 address from text ("::1", "fe80::1%eth0" is not accepted: no scope names).
    /// Throws std::invalid_argument for anything else.
    static address ipv6(std::string_view ip, std::uint16_t port) {
        if (auto a = try_ipv6(ip, port)) return *a;
        throw std::invalid_argument("coring::address: not an IPv6 address: \"" + std::string(ip) + "\"");
    }
    /// An IPv4 or IPv6 literal ("[::1]" brackets allowed). Throws std::invalid_argument for a
    /// host name: resolve() those.
    static address parse(std::string_view ip, std::uint16_t port) {
        if (auto a = try_parse(ip, port)) return *a;
        throw std::invalid_argument("coring::address: not an IP address: \"" + std::string(ip) + "\" (use coring::resolve for host names)");
    }
    /// Like parse(), or nothing.
    static std::optional<address> try_parse(std::string_view ip, std::uint16_t port) {
        if (ip.size() >= 2 && ip.front() == '[' && ip.back() == ']') return try_ipv6(ip.substr(1, ip.size() - 2), port);
        if (auto a = try_ipv4(ip, port)) return a;
        return try_ipv6(ip, port);
    }
    /// 0.0.0.0:port, to listen on every IPv4 interface.
    static address any_ipv4(std::uint16_t port = 0) noexcept { return from_in4(INADDR_ANY, port); }
    /// 127.0.0.1:port.
    static address loopback_ipv4(std::uint16_t port = 0) noexcept { return from_in4(INADDR_LOOPBACK, port); }
    /// [::]:port.
    static address any_ipv6(std::uint16_t port = 0) noexcept { return from_in6(in6addr_any, port); }
    /// [::1]:port.
    static address loopback_ipv6(std::uint16_t port = 0) noexcept { return from_in6(in6addr_loopback, port); }

    /// A Unix-domain address. A leading '\0' makes it abstract (no file). Throws
    /// std::invalid_argument if the path does not fit sockaddr_un (107 bytes).
    static address unix_path(std::string_view path) {
        address a;
        auto* un = reinterpret_cast<::sockaddr_un*>(&a.m_storage);
        if (path.empty() || path.size() >= sizeof un->sun_path)
            throw std::invalid_argument("coring::address: Unix socket path empty or longer than " + std::to_string(sizeof un->sun_path - 1) + " bytes");
        un->sun_family = AF_UNIX;
        std::memcpy(un->sun_path, path.data(), path.size());
        // Abstract names are exactly as long as given; file paths include their terminating 0.
        a.m_length = static_cast<::socklen_t>(offsetof(::sockaddr_un, sun_path) + path.size() + (path[0] == '\0' ? 0 : 1));
        return a;
    }

    /// AF_INET, AF_INET6, AF_UNIX, or AF_UNSPEC when empty.
    [[nodiscard]] int family() const noexcept { return m_storage.ss_family; }
    [[nodiscard]] bool empty() const noexcept { return family() == AF_UNSPEC; }
    [[nodiscard]] bool is_ipv4() const noexcept { return family() == AF_INET; }
    [[nodiscard]] bool is_ipv6() const noexcept { return family() == AF_INET6; }
    [[nodiscard]] bool is_unix() const noexcept { return family() == AF_UNIX; }

    /// The port (host byte order); 0 for Unix-domain and empty addresses.
    [[nodiscard]] std::uint16_t port() const noexcept {
        if (is_ipv4()) return ntohs(in4().sin_port);
        if (is_ipv6()) return ntohs(in6().sin6_port);
        return 0;
    }
    /// The same address with another port (IP addresses only).
    [[nodiscard]] address with_port(std::uint16_t port) const noexcept {
        address a = *this;
        if (is_ipv4()) a.in4_mut().sin_port = htons(port);
        if (is_ipv6()) a.in6_mut().sin6_port = htons(port);
        return a;
    }

    /// The IP address as text ("127.0.0.1", "::1"); the path of a Unix address ('@' for the
    /// leading '\0' of an abstract one, "" for an unnamed one); "" when empty.
    [[nodiscard]] std::string host() const {
        char text[INET6_ADDRSTRLEN] = {};
        if (is_ipv4()) return ::inet_ntop(AF_INET, &in4().sin_addr, text, sizeof text) != nullptr ? text : "";
        if (is_ipv6()) return ::inet_ntop(AF_INET6, &in6().sin6_addr, text, sizeof text) != nullptr ? text : "";
        if (is_unix()) return unix_name();
        return {};
    }

    /// "127.0.0.1:8080", "[::1]:8080", "unix:/run/app.sock", "unix:@abstract", "unix:" for an
    /// unnamed socket, "(none)" when empty.
    [[nodiscard]] std::string to_string() const {
        if (is_ipv4()) return host() + ":" + std::to_string(port());
        if (is_ipv6()) return "[" + host() + "]:" + std::to_string(port());
        if (is_unix()) return "unix:" + unix_name();
        return "(none)";
    }

    [[nodiscard]] const ::sockaddr* native() const noexcept { return reinterpret_cast<const ::sockaddr*>(&m_storage); }
    [[nodiscard]] ::socklen_t size() const noexcept { return m_length; }
    /// For the kernel to fill in (accept, recvfrom, getsockname): capacity() bytes; then
    /// set_size() with the length it reported.
    [[nodiscard]] ::sockaddr* native_storage() noexcept { return reinterpret_cast<::sockaddr*>(&m_storage); }
    [[nodiscard]] static constexpr ::socklen_t capacity() noexcept { return sizeof(::sockaddr_storage); }
    void set_size(::socklen_t length) noexcept { m_length = length < capacity() ? length : capacity(); }

    friend bool operator==(const address& a, const address& b) noexcept {
        return a.m_length == b.m_length && std::memcmp(&a.m_storage, &b.m_storage, a.m_length) == 0;
    }
    friend std::ostream& operator<<(std::ostream& out, const address& a) { return out << a.to_string(); }

private:
    /// inet_pton of `ip` (not 0-terminated) into `out`, an in_addr or in6_addr as `family` says.
    static bool pton(int family, std::string_view ip, void* out) noexcept {
        char text[INET6_ADDRSTRLEN] = {};  // longer text is no address of either family
        if (ip.size() >= sizeof text) return false;
        std::memcpy(text, ip.data(), ip.size());
        return ::inet_pton(family, text, out) == 1;
    }
    static std::optional<address> try_ipv4(std::string_view ip, std::uint16_t port) {
        ::in_addr in{};
        if (!pton(AF_INET, ip, &in)) return std::nullopt;
        return from_in4(ntohl(in.s_addr), port);
    }
    static std::optional<address> try_ipv6(std::string_view ip, std::uint16_t port) {
        ::in6_addr in{};
        if (!pton(AF_INET6, ip, &in)) return std::nullopt;
        return from_in6(in, port);
    }
    static address from_in4(std::uint32_t host_order, std::uint16_t port) noexcept {
        address a;
        ::sockaddr_in& in = a.in4_mut();
        in.sin_family = AF_INET;
        in.sin_port = htons(port);
        in.sin_addr.s_addr = htonl(host_order);
        a.m_length = sizeof(::sockaddr_in);
        return a;
    }
    static address from_in6(const ::in6_addr& ip, std::uint16_t port) noexcept {
        address a;
        ::sockaddr_in6& in = a.in6_mut();
        in.sin6_family = AF_INET6;
        in.sin6_port = htons(port);
        in.sin6_addr = ip;
        a.m_length = sizeof(::sockaddr_in6);
        return a;
    }

    std::string unix_name() const {
        const auto* un = reinterpret_cast<const ::sockaddr_un*>(&m_storage);
        const std::size_t header = offsetof(::sockaddr_un, sun_path);
        if (m_length <= header) return {};  // unnamed (an unbound or socketpair socket)
        std::size_t n = m_length - header;
        if (un->sun_path[0] == '\0') return "@" + std::string(un->sun_path + 1, n - 1);
        return std::string(un->sun_path, ::strnlen(un->sun_path, n));
    }

    const ::sockaddr_in& in4() const noexcept { return *reinterpret_cast<const ::sockaddr_in*>(&m_storage); }
    const ::sockaddr_in6& in6() const noexcept { return *reinterpret_cast<const ::sockaddr_in6*>(&m_storage); }
    ::sockaddr_in& in4_mut() noexcept { return *reinterpret_cast<::sockaddr_in*>(&m_storage); }
    ::sockaddr_in6& in6_mut() noexcept { return *reinterpret_cast<::sockaddr_in6*>(&m_storage); }

    ::sockaddr_storage m_storage;
    ::socklen_t m_length = 0;  // bytes of m_storage in use
};

}  // namespace coring
