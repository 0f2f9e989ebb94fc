// Tests of coring/net/resolve.hpp: getaddrinfo on the loop's thread pool.
#include <coring/net/resolve.hpp>

#include <coring/run.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <netdb.h>

#include <string>
#include <system_error>
#include <thread>
#include <vector>

TEST_CASE("resolve - IP literals are answered at once, without a thread", "[resolve]") {
    coring::run([]() -> coring::task<> {
        const auto v4 = co_await coring::resolve("127.0.0.1", 80);
        REQUIRE(v4.size() == 1);
        CHECK(v4[0].to_string() == "127.0.0.1:80");
        const auto v6 = co_await coring::resolve("::1", "8080");
        REQUIRE(v6.size() == 1);
        CHECK(v6[0].to_string() == "[::1]:8080");
        const auto bracketed = co_await coring::resolve("[::1]", 1);
        CHECK(bracketed.at(0).is_ipv6());
        // No lookup ran: the pool never started a worker.
        CHECK(coring::get_running_loop().default_executor().thread_count() == 0);
    }());
}

TEST_CASE("resolve - localhost through getaddrinfo on the pool", "[resolve]") {
    coring::run([]() -> coring::task<> {
        const auto addrs = co_await coring::resolve("localhost", 8080);
        REQUIRE_FALSE(addrs.empty());
        for (const auto& a : addrs) {
            CHECK(a.port() == 8080);
            CHECK((a.to_string() == "127.0.0.1:8080" || a.to_string() == "[::1]:8080"));
        }
        CHECK(coring::get_running_loop().default_executor().thread_count() >= 1);
        const auto v4_only = co_await coring::resolve("localhost", 80, {.family = AF_INET});
        REQUIRE_FALSE(v4_only.empty());
        for (const auto& a : v4_only) CHECK(a.is_ipv4());
        const auto udp = co_await coring::resolve("localhost", 53, {.family = AF_INET, .socktype = SOCK_DGRAM});
        CHECK(udp.at(0).to_string() == "127.0.0.1:53");
    }());
}

TEST_CASE("resolve - service names", "[resolve]") {
    coring::run([]() -> coring::task<> {
        std::vector<coring::address> addrs;
        try {
            addrs = co_await coring::resolve("127.0.0.1", "http");
        } catch (const coring::resolve_error&) {
            // No /etc/services on this machine: nothing to check.
        }
        if (!addrs.empty()) CHECK(addrs[0].port() == 80);
    }());
}

TEST_CASE("resolve - an unknown host is a resolve_error with gai_strerror's message", "[resolve]") {
    coring::run([]() -> coring::task<> {
        // .invalid never resolves (RFC 6761); offline machines fail with EAI_AGAIN or similar.
        try {
            (void)co_await coring::resolve("no-such-host.invalid", 80);
            FAIL("no exception");
        } catch (const coring::resolve_error& e) {
            CHECK(e.code().category() == coring::gai_category());
            CHECK(e.code().value() != 0);
            const std::string what = e.what();
            CHECK(what.find("resolve(\"no-such-host.invalid\", 80): ") == 0);
            CHECK(what.find(::gai_strerror(e.code().value())) != std::string::npos);
        } catch (const std::system_error& e) {
            // EAI_SYSTEM: an errno from the resolver's own I/O.
            CHECK(e.code().category() == std::system_category());
        }
        const bool bad_service = co_await coring_test::throws<coring::resolve_error>(coring::resolve("localhost", "no-such-service-name"));
        CHECK(bad_service);
    }());
}

TEST_CASE("resolve_name - the loopback addresses have names in /etc/hosts", "[resolve]") {
    coring::run([]() -> coring::task<> {
        const std::string v4 = co_await coring::resolve_name(coring::address::parse("127.0.0.1", 80));
        CHECK(v4 == "localhost");
        const std::string numeric = co_await coring::resolve_name(coring::address::parse("192.0.2.7", 0), NI_NUMERICHOST);
        CHECK(numeric == "192.0.2.7");
        const std::string v6 = co_await coring::resolve_name(coring::address::parse("::1", 80), NI_NUMERICHOST);
        CHECK(v6 == "::1");
    }());
}

TEST_CASE("resolve_name - an address that is not IP: resolve_error naming it", "[resolve]") {
    coring::run([]() -> coring::task<> {
        std::string what;
        int code = 0;
        try {
            (void)co_await coring::resolve_name(coring::address::unix_path("/tmp/coring-no-such.sock"));
        } catch (const coring::resolve_error& e) {
            what = e.what();
            code = e.code().value();
        }
        CHECK(code == EAI_FAMILY);
        CHECK(what.find("resolve_name(") == 0);
    }());
}
