// Tests of coring/net/address.hpp: IPv4, IPv6 and Unix-domain socket addresses.
#include <coring/net/address.hpp>

#include "support/catch.hpp"

#include <netinet/in.h>
#include <sys/un.h>

#include <cstddef>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <string>

TEST_CASE("address - IPv4", "[address]") {
    const auto a = coring::address::ipv4("127.0.0.1", 8080);
    CHECK(a.family() == AF_INET);
    CHECK(a.is_ipv4());
    CHECK(a.port() == 8080);
    CHECK(a.host() == "127.0.0.1");
    CHECK(a.to_string() == "127.0.0.1:8080");
    CHECK(a.size() == sizeof(sockaddr_in));
    const auto* in = reinterpret_cast<const sockaddr_in*>(a.native());
    CHECK(in->sin_port == htons(8080));
    CHECK(in->sin_addr.s_addr == htonl(INADDR_LOOPBACK));
    CHECK(a == coring::address::loopback_ipv4(8080));
    CHECK(a.with_port(1).to_string() == "127.0.0.1:1");
    CHECK(coring::address::any_ipv4().to_string() == "0.0.0.0:0");
    CHECK_THROWS_AS(coring::address::ipv4("::1", 1), std::invalid_argument);
    CHECK_THROWS_AS(coring::address::ipv4("256.0.0.1", 1), std::invalid_argument);
    CHECK_THROWS_AS(coring::address::ipv4("localhost", 1), std::invalid_argument);
}

TEST_CASE("address - IPv6", "[address]") {
    const auto a = coring::address::ipv6("::1", 443);
    CHECK(a.is_ipv6());
    CHECK(a.port() == 443);
    CHECK(a.host() == "::1");
    CHECK(a.to_string() == "[::1]:443");
    CHECK(a.size() == sizeof(sockaddr_in6));
    CHECK(a == coring::address::loopback_ipv6(443));
    CHECK(coring::address::any_ipv6(5).to_string() == "[::]:5");
    CHECK(coring::address::ipv6("2001:db8::42", 1).host() == "2001:db8::42");
    CHECK_THROWS_AS(coring::address::ipv6("127.0.0.1", 1), std::invalid_argument);
}

TEST_CASE("address - parse takes IPv4 and IPv6 text, IPv6 in brackets too", "[address]") {
    CHECK(coring::address::parse("10.1.2.3", 80).to_string() == "10.1.2.3:80");
    CHECK(coring::address::parse("::1", 80).to_string() == "[::1]:80");
    CHECK(coring::address::parse("[fe80::1]", 80).to_string() == "[fe80::1]:80");
}

TEST_CASE("address - parse does not resolve host names: try_parse is empty, parse throws", "[address]") {
    CHECK_FALSE(coring::address::try_parse("example.com", 80).has_value());
    CHECK_FALSE(coring::address::try_parse("", 80).has_value());
    CHECK_THROWS_AS(coring::address::parse("example.com", 80), std::invalid_argument);
}

TEST_CASE("address - a Unix-domain path: no port, the path as host, sized to the path", "[address]") {
    const auto a = coring::address::unix_path("/run/app.sock");
    CHECK(a.is_unix());
    CHECK(a.port() == 0);
    CHECK(a.host() == "/run/app.sock");
    CHECK(a.to_string() == "unix:/run/app.sock");
    CHECK(a.size() == offsetof(sockaddr_un, sun_path) + 14);
}

TEST_CASE("address - an abstract Unix-domain name is shown with @", "[address]") {
    const auto b = coring::address::unix_path(std::string("\0hidden", 7));
    CHECK(b.to_string() == "unix:@hidden");
    CHECK(b.size() == offsetof(sockaddr_un, sun_path) + 7);
}

TEST_CASE("address - an unnamed Unix-domain address is shown as unix:", "[address]") {
    sockaddr_un unnamed{};
    unnamed.sun_family = AF_UNIX;
    const coring::address c(reinterpret_cast<const sockaddr*>(&unnamed), sizeof(sa_family_t));
    CHECK(c.to_string() == "unix:");
}

TEST_CASE("address - unix_path refuses an empty path and one too long", "[address]") {
    CHECK_THROWS_AS(coring::address::unix_path(std::string(200, 'x')), std::invalid_argument);
    CHECK_THROWS_AS(coring::address::unix_path(""), std::invalid_argument);
}

TEST_CASE("address - a default address is empty", "[address]") {
    coring::address empty;
    CHECK(empty.empty());
    CHECK(empty.family() == AF_UNSPEC);
    CHECK(empty.to_string() == "(none)");
    CHECK(empty.port() == 0);
}

TEST_CASE("address - a copy of a sockaddr compares equal; another port does not", "[address]") {
    const auto a = coring::address::ipv4("192.168.0.1", 22);
    const coring::address copy(a.native(), a.size());
    CHECK(copy == a);
    CHECK_FALSE(copy == a.with_port(23));
}

TEST_CASE("address - streams as its to_string", "[address]") {
    const auto a = coring::address::ipv4("192.168.0.1", 22);
    std::ostringstream out;
    out << a;
    CHECK(out.str() == "192.168.0.1:22");
}

TEST_CASE("address - filled through native_storage and set_size, as a system call fills it", "[address]") {
    const auto a = coring::address::ipv4("192.168.0.1", 22);
    coring::address filled;
    std::memcpy(filled.native_storage(), a.native(), a.size());
    filled.set_size(a.size());
    CHECK(filled == a);
}
