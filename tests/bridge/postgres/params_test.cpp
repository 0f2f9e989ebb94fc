// Tests of coring/bridge/postgres/params.hpp: what each C++ type becomes as a query parameter
// (text, declared type OID, format, NULL), the arrays handed to PQsendQueryParams, and
// parameters built at run time. (What the server makes of them: tests/bridge/postgres_test.cpp.)
#include <coring/bridge/postgres/params.hpp>

#include "support/catch.hpp"

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace pg = coring::postgres;
using pg::detail::encode;

namespace {

// One parameter as its fields, for comparing in one CHECK.
struct encoded {
    Oid type = 0;
    int format = 0;
    bool null = false;
    std::string data;
    friend bool operator==(const encoded&, const encoded&) = default;
};

template <class T>
encoded of(const T& value) {
    const pg::detail::param p = encode(value);
    return encoded{p.type, p.format, p.null, p.data};
}

std::string invalid_argument_message(auto make) {
    try {
        (void)make();
    } catch (const std::invalid_argument& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("postgres params - the built-in type OIDs are PostgreSQL's", "[postgres][params]") {
    CHECK(pg::oid::unknown == 0);
    CHECK(pg::oid::boolean == 16);
    CHECK(pg::oid::bytea == 17);
    CHECK(pg::oid::int8 == 20);
    CHECK(pg::oid::int2 == 21);
    CHECK(pg::oid::int4 == 23);
    CHECK(pg::oid::text == 25);
    CHECK(pg::oid::float4 == 700);
    CHECK(pg::oid::float8 == 701);
    CHECK(pg::oid::numeric == 1700);
}

TEST_CASE("postgres params - bool is t or f, declared boolean", "[postgres][params]") {
    CHECK(of(true) == encoded{pg::oid::boolean, 0, false, "t"});
    CHECK(of(false) == encoded{pg::oid::boolean, 0, false, "f"});
}

TEST_CASE("postgres params - integers are decimal, declared the smallest type that holds them all", "[postgres][params]") {
    CHECK(of(std::int8_t{-128}) == encoded{pg::oid::int2, 0, false, "-128"});
    CHECK(of(std::int16_t{-32768}) == encoded{pg::oid::int2, 0, false, "-32768"});
    CHECK(of(std::int32_t{42}) == encoded{pg::oid::int4, 0, false, "42"});
    CHECK(of(std::numeric_limits<std::int32_t>::min()) == encoded{pg::oid::int4, 0, false, "-2147483648"});
    CHECK(of(std::numeric_limits<std::int64_t>::min()) == encoded{pg::oid::int8, 0, false, "-9223372036854775808"});
    CHECK(of(std::uint8_t{255}) == encoded{pg::oid::int4, 0, false, "255"});
    CHECK(of(std::uint16_t{65535}) == encoded{pg::oid::int4, 0, false, "65535"});
    CHECK(of(std::numeric_limits<std::uint32_t>::max()) == encoded{pg::oid::int8, 0, false, "4294967295"});
    CHECK(of(std::numeric_limits<std::uint64_t>::max()) == encoded{pg::oid::numeric, 0, false, "18446744073709551615"});
}

TEST_CASE("postgres params - floating point: the shortest round-trip text, and PostgreSQL's special values", "[postgres][params]") {
    CHECK(of(0.1f) == encoded{pg::oid::float4, 0, false, "0.1"});
    CHECK(of(0.1) == encoded{pg::oid::float8, 0, false, "0.1"});
    CHECK(of(-2.5e-300) == encoded{pg::oid::float8, 0, false, "-2.5e-300"});
    CHECK(of(1e300) == encoded{pg::oid::float8, 0, false, "1e+300"});
    CHECK(of(0.5L) == encoded{pg::oid::float8, 0, false, "0.5"});  // long double travels as double
    CHECK(of(std::numeric_limits<double>::infinity()) == encoded{pg::oid::float8, 0, false, "Infinity"});
    CHECK(of(-std::numeric_limits<double>::infinity()) == encoded{pg::oid::float8, 0, false, "-Infinity"});
    CHECK(of(std::numeric_limits<double>::quiet_NaN()) == encoded{pg::oid::float8, 0, false, "NaN"});
    CHECK(of(-std::numeric_limits<float>::infinity()) == encoded{pg::oid::float4, 0, false, "-Infinity"});
    CHECK(of(std::numeric_limits<float>::quiet_NaN()) == encoded{pg::oid::float4, 0, false, "NaN"});
}

TEST_CASE("postgres params - strings are their text, declared unknown (the server picks the type)", "[postgres][params]") {
    const std::string s = "it's \"quoted\"; DROP TABLE x; --";
    CHECK(of(s) == encoded{pg::oid::unknown, 0, false, s});
    CHECK(of(std::string_view("view")) == encoded{pg::oid::unknown, 0, false, "view"});
    const char* pointer = "pointer";
    CHECK(of(pointer) == encoded{pg::oid::unknown, 0, false, "pointer"});
    CHECK(of("literal") == encoded{pg::oid::unknown, 0, false, "literal"});
    CHECK(of(std::string()) == encoded{pg::oid::unknown, 0, false, ""});  // empty, not NULL
    CHECK(of("\xc3\xa9t\xc3\xa9") == encoded{pg::oid::unknown, 0, false, "\xc3\xa9t\xc3\xa9"});
}

TEST_CASE("postgres params - a text holding '\\0' is refused: PostgreSQL's text cannot store it", "[postgres][params]") {
    const std::string with_nul("a\0b", 3);
    const std::string expected = "coring::postgres: a text parameter holds a '\\0' byte, which PostgreSQL's text cannot store (send bytes as bytea)";
    CHECK(invalid_argument_message([&] { return encode(with_nul); }) == expected);
    CHECK(invalid_argument_message([&] { return encode(std::string_view(with_nul)); }) == expected);
    CHECK(invalid_argument_message([&] { return pg::parameters::of(1, with_nul); }) == expected);
}

TEST_CASE("postgres params - bytes are sent as they are, in binary format, declared bytea", "[postgres][params]") {
    const std::vector<std::byte> bytes{std::byte{0x00}, std::byte{0xff}, std::byte{'\\'}, std::byte{'x'}};
    CHECK(of(bytes) == encoded{pg::oid::bytea, 1, false, std::string("\0\xff\\x", 4)});
    const std::span<const std::byte> span(bytes.data(), 2);
    CHECK(of(span) == encoded{pg::oid::bytea, 1, false, std::string("\0\xff", 2)});
    CHECK(of(std::vector<std::byte>{}) == encoded{pg::oid::bytea, 1, false, ""});
}

TEST_CASE("postgres params - NULL: nullopt, nullptr, a null const char*, an empty optional of its type", "[postgres][params]") {
    CHECK(of(std::nullopt) == encoded{pg::oid::unknown, 0, true, ""});
    CHECK(of(nullptr) == encoded{pg::oid::unknown, 0, true, ""});
    const char* none = nullptr;
    CHECK(of(none) == encoded{pg::oid::unknown, 0, true, ""});
    CHECK(of(std::optional<int>()) == encoded{pg::oid::int4, 0, true, ""});
    CHECK(of(std::optional<std::int64_t>()) == encoded{pg::oid::int8, 0, true, ""});
    CHECK(of(std::optional<bool>()) == encoded{pg::oid::boolean, 0, true, ""});
    CHECK(of(std::optional<double>()) == encoded{pg::oid::float8, 0, true, ""});
    CHECK(of(std::optional<std::string>()) == encoded{pg::oid::unknown, 0, true, ""});
    CHECK(of(std::optional<std::vector<std::byte>>()) == encoded{pg::oid::bytea, 0, true, ""});
    // A full optional is its value.
    CHECK(of(std::optional<int>(7)) == encoded{pg::oid::int4, 0, false, "7"});
    CHECK(of(std::optional<std::string>("x")) == encoded{pg::oid::unknown, 0, false, "x"});
}

TEST_CASE("postgres params - type_oid follows the table for every supported type", "[postgres][params]") {
    STATIC_REQUIRE(pg::detail::type_oid<bool>() == pg::oid::boolean);
    STATIC_REQUIRE(pg::detail::type_oid<signed char>() == pg::oid::int2);
    STATIC_REQUIRE(pg::detail::type_oid<short>() == pg::oid::int2);
    STATIC_REQUIRE(pg::detail::type_oid<int>() == pg::oid::int4);
    STATIC_REQUIRE(pg::detail::type_oid<long long>() == pg::oid::int8);
    STATIC_REQUIRE(pg::detail::type_oid<unsigned char>() == pg::oid::int4);
    STATIC_REQUIRE(pg::detail::type_oid<unsigned short>() == pg::oid::int4);
    STATIC_REQUIRE(pg::detail::type_oid<unsigned>() == pg::oid::int8);
    STATIC_REQUIRE(pg::detail::type_oid<unsigned long long>() == pg::oid::numeric);
    STATIC_REQUIRE(pg::detail::type_oid<float>() == pg::oid::float4);
    STATIC_REQUIRE(pg::detail::type_oid<double>() == pg::oid::float8);
    STATIC_REQUIRE(pg::detail::type_oid<long double>() == pg::oid::float8);
    STATIC_REQUIRE(pg::detail::type_oid<std::string>() == pg::oid::unknown);
    STATIC_REQUIRE(pg::detail::type_oid<const char*>() == pg::oid::unknown);
    STATIC_REQUIRE(pg::detail::type_oid<std::vector<std::byte>>() == pg::oid::bytea);
    STATIC_REQUIRE(pg::detail::type_oid<std::span<const std::byte>>() == pg::oid::bytea);
    STATIC_REQUIRE(pg::detail::type_oid<std::optional<short>>() == pg::oid::int2);
    STATIC_REQUIRE(pg::detail::type_oid<const std::optional<float>&>() == pg::oid::float4);
}

TEST_CASE("postgres params - view() gives PQsendQueryParams's arrays, NULL as a null pointer", "[postgres][params]") {
    const std::vector<std::byte> bytes{std::byte{1}, std::byte{0}};
    const pg::parameters p = pg::parameters::of(42, "text", std::nullopt, bytes, true);
    CHECK(p.size() == 5);
    CHECK_FALSE(p.empty());
    const pg::parameters::arrays a = p.view();
    CHECK(a.types == std::vector<Oid>{pg::oid::int4, pg::oid::unknown, pg::oid::unknown, pg::oid::bytea, pg::oid::boolean});
    CHECK(a.lengths == std::vector<int>{2, 4, 0, 2, 1});
    CHECK(a.formats == std::vector<int>{0, 0, 0, 1, 0});
    REQUIRE(a.values.size() == 5);
    CHECK(std::string(a.values[0]) == "42");
    CHECK(std::string(a.values[1]) == "text");
    CHECK(a.values[2] == nullptr);
    CHECK(std::string(a.values[3], 2) == std::string("\x01\0", 2));
    CHECK(std::string(a.values[4]) == "t");

    const pg::parameters none = pg::parameters::of();
    CHECK(none.empty());
    CHECK(none.size() == 0);
    const pg::parameters::arrays empty = none.view();
    CHECK(empty.types.empty());
    CHECK(empty.values.empty());
}

TEST_CASE("postgres params - parameters built at run time take their place among the arguments", "[postgres][params]") {
    pg::parameters values;
    CHECK(values.empty());
    CHECK(values.placeholders(2) == "($1, $2)");
    values.add(1, "a");
    CHECK(values.placeholders(2) == "($3, $4)");
    values.add(2).add("b");
    CHECK(values.size() == 4);
    CHECK(values.placeholders(1) == "($5)");
    CHECK(values.placeholders(0) == "()");

    // of(first, values, last): $1 is first, $2..$5 the list, $6 last.
    const pg::parameters all = pg::parameters::of(std::int64_t{0}, values, false);
    const pg::parameters::arrays a = all.view();
    REQUIRE(a.values.size() == 6);
    std::vector<std::string> texts;
    for (const char* v : a.values) texts.emplace_back(v);
    CHECK(texts == std::vector<std::string>{"0", "1", "a", "2", "b", "f"});
    CHECK(a.types == std::vector<Oid>{pg::oid::int8, pg::oid::int4, pg::oid::unknown, pg::oid::int4, pg::oid::unknown, pg::oid::boolean});
    CHECK(values.size() == 4);  // copied, not moved
}
