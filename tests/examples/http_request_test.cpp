// Tests of examples/http_request.hpp, the request parsing of examples/http_server (fuzzed by
// fuzz/http_request.cpp; these pin what the fuzzer found).
#include "http_request.hpp"

#include "support/catch.hpp"

#include <cstdint>
#include <limits>
#include <optional>

using http_example::parse_decimal;

TEST_CASE("http_request - parse_decimal refuses a number above a bound smaller than a digit", "[http_request]") {
    CHECK(parse_decimal("5", 0) == std::nullopt);
    CHECK(parse_decimal("05", 0) == std::nullopt);
    CHECK(parse_decimal("9", 8) == std::nullopt);
    CHECK(parse_decimal("0", 0) == std::optional<std::uint64_t>(0));
    CHECK(parse_decimal("8", 8) == std::optional<std::uint64_t>(8));
}

TEST_CASE("http_request - parse_decimal stops at 64 bits and at its bound", "[http_request]") {
    CHECK(parse_decimal("18446744073709551615") == std::optional<std::uint64_t>(std::numeric_limits<std::uint64_t>::max()));
    CHECK(parse_decimal("18446744073709551616") == std::nullopt);
    CHECK(parse_decimal("60000", 60'000) == std::optional<std::uint64_t>(60'000));
    CHECK(parse_decimal("60001", 60'000) == std::nullopt);
    CHECK(parse_decimal("") == std::nullopt);
    CHECK(parse_decimal("+1") == std::nullopt);
    CHECK(parse_decimal("1 ") == std::nullopt);
}
