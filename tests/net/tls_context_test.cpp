// Tests of coring/net/tls_context.hpp and net/tls_session.hpp without OpenSSL: an empty context,
// the borrowed reference that stream_options holds, tls_error and tls_info. (Contexts made by
// OpenSSL, and sessions, are tested in tests/net/tls_test.cpp.)
#include <coring/net/tls_context.hpp>
#include <coring/net/tls_session.hpp>

#include "support/catch.hpp"

#include <string>
#include <type_traits>

TEST_CASE("tls_context - a default-constructed context is empty: plaintext", "[tls_context]") {
    const coring::tls_context ctx;
    CHECK_FALSE(static_cast<bool>(ctx));
    CHECK_FALSE(ctx.is_server());
    CHECK(ctx.engine() == nullptr);
}

TEST_CASE("tls_context_ref - empty by default and when it refers to an empty context", "[tls_context]") {
    const coring::tls_context_ref none;
    CHECK_FALSE(static_cast<bool>(none));
    const coring::tls_context empty;
    const coring::tls_context_ref to_empty = empty;
    CHECK_FALSE(static_cast<bool>(to_empty));
    CHECK(&*to_empty == &empty);
}

TEST_CASE("tls_context_ref - trivially destructible, so an options aggregate may hold it", "[tls_context]") {
    // g++ 12 destroys an aggregate temporary twice inside a co_await expression.
    STATIC_REQUIRE(std::is_trivially_destructible_v<coring::tls_context_ref>);
    STATIC_REQUIRE(std::is_trivially_copyable_v<coring::tls_context_ref>);
}

TEST_CASE("tls_error - what() carries the prefix and the text; verify_result when given", "[tls_context]") {
    const coring::tls_error plain("handshake with 127.0.0.1:443: wrong version number");
    CHECK(std::string(plain.what()) == "coring::tls_error: handshake with 127.0.0.1:443: wrong version number");
    CHECK_FALSE(plain.verify_result().has_value());
    const coring::tls_error refused("certificate verify failed for localhost: certificate has expired", 10L);
    REQUIRE(refused.verify_result().has_value());
    CHECK(*refused.verify_result() == 10L);
}
