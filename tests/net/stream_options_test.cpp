// Tests of coring/net/stream_options.hpp and net/stream_errors.hpp: asyncio's defaults, the
// rule that keeps the options aggregate safe inside co_await expressions, and the errors' texts.
#include <coring/net/stream_errors.hpp>
#include <coring/net/stream_options.hpp>

#include "support/catch.hpp"

#include <chrono>
#include <string>
#include <string_view>
#include <type_traits>

TEST_CASE("stream_options - asyncio's limit and water marks, TLS off, a 60 s handshake", "[stream_options]") {
    const coring::stream_options o;
    CHECK(o.limit == 64 * 1024);
    CHECK(o.high_water == 64 * 1024);
    CHECK(o.low_water == 16 * 1024);
    CHECK(o.use_buffer_ring);
    CHECK_FALSE(static_cast<bool>(o.tls));
    CHECK(o.server_hostname.empty());
    CHECK(o.tls_handshake_timeout == std::chrono::seconds(60));
}

TEST_CASE("stream_options - the TLS members are trivially destructible (g++ 12 co_await trap)", "[stream_options]") {
    STATIC_REQUIRE(std::is_trivially_destructible_v<decltype(coring::stream_options::tls)>);
    STATIC_REQUIRE(std::is_trivially_destructible_v<decltype(coring::stream_options::server_hostname)>);
}

TEST_CASE("incomplete_read - the partial bytes, the expected count and asyncio's message", "[stream_errors]") {
    const coring::incomplete_read counted("abc", 10);
    CHECK(counted.partial() == "abc");
    CHECK(counted.expected() == 10u);
    CHECK(std::string(counted.what()) == "coring::incomplete_read: 3 bytes read on a total of 10 expected bytes");
    const coring::incomplete_read open_ended("", std::nullopt);
    CHECK_FALSE(open_ended.expected().has_value());
    CHECK(std::string(open_ended.what()).find("an undefined number of expected bytes") != std::string::npos);
}

TEST_CASE("limit_overrun - consumed() and the message", "[stream_errors]") {
    const coring::limit_overrun e("Separator is not found, and chunk exceed the limit", 42);
    CHECK(e.consumed() == 42u);
    CHECK(std::string(e.what()) == "coring::limit_overrun: Separator is not found, and chunk exceed the limit");
}
