// Tests of coring/errors.hpp and coring/config.hpp.
#include <coring/config.hpp>
#include <coring/errors.hpp>

#include "support/catch.hpp"

#include <cerrno>
#include <string>
#include <system_error>
#include <type_traits>

static_assert(CORING_VERSION_MAJOR == 0 && CORING_VERSION_MINOR >= 1);

TEST_CASE("errors - the hierarchy follows asyncio", "[errors]") {
    STATIC_REQUIRE_FALSE(std::is_base_of_v<std::exception, coring::cancelled_error>);
    STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, coring::timeout_error>);
    STATIC_REQUIRE(std::is_base_of_v<std::logic_error, coring::invalid_state_error>);
    STATIC_REQUIRE(std::is_base_of_v<std::exception, coring::queue_empty>);
    STATIC_REQUIRE(std::is_base_of_v<std::exception, coring::queue_full>);
    STATIC_REQUIRE(std::is_base_of_v<std::exception, coring::queue_shut_down>);
    STATIC_REQUIRE(std::is_base_of_v<std::exception, coring::broken_barrier_error>);
    CHECK(std::string(coring::cancelled_error{}.what()).find("cancelled") != std::string::npos);
    CHECK(std::string(coring::timeout_error{}.what()).find("timed out") != std::string::npos);
}

TEST_CASE("errors - throw_errno carries the errno and names the operation", "[errors]") {
    try {
        coring::detail::throw_errno(ECONNREFUSED, "connect(fd 3)");
        FAIL("no exception");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == ECONNREFUSED);
        CHECK(e.code().category() == std::system_category());
        CHECK(e.code() == std::errc::connection_refused);
        CHECK(std::string(e.what()).find("connect(fd 3)") == 0);
    }
}
