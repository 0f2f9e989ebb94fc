// Tests of coring/bridge/redis/command.hpp without a server: the RESP bytes a command's arguments
// become, the name read back from them, the commands command() refuses, and what an awaiter
// without a connection throws. (Sending and replies: tests/bridge/redis_test.cpp.)
#include <coring/bridge/redis/command.hpp>

#include "support/catch.hpp"

#include <array>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <list>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace redis = coring::redis;
using redis::detail::command_encoder;

namespace {

// The bytes of a string literal, '\0' included (without the terminating one).
template <std::size_t N>
std::string bytes_of(const char (&literal)[N]) {
    return std::string(literal, N - 1);
}

}  // namespace

TEST_CASE("redis command - string arguments: a RESP array of bulk strings", "[redis][command]") {
    CHECK(command_encoder::encode("PING") == "*1\r\n$4\r\nPING\r\n");
    CHECK(command_encoder::encode("SET", "key", "value") == "*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n");
    const std::string key = "user:1";
    const std::string_view field = "name";
    const char* value = "Ada";
    CHECK(command_encoder::encode("HSET", key, field, value) == "*4\r\n$4\r\nHSET\r\n$6\r\nuser:1\r\n$4\r\nname\r\n$3\r\nAda\r\n");
    const std::string empty;
    CHECK(command_encoder::encode("SET", "k", empty) == "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n");
}

TEST_CASE("redis command - binary arguments go as they are, '\\0' and CRLF included", "[redis][command]") {
    const std::string value = bytes_of("a\0b\r\n$3\r\n*\xff");
    REQUIRE(value.size() == 11);
    CHECK(command_encoder::encode("SET", "k", value) == bytes_of("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$11\r\na\0b\r\n$3\r\n*\xff\r\n"));
    const std::string_view view(value.data(), 3);  // "a\0b"
    CHECK(command_encoder::encode("ECHO", view) == bytes_of("*2\r\n$4\r\nECHO\r\n$3\r\na\0b\r\n"));
}

TEST_CASE("redis command - integers are sent as decimal text", "[redis][command]") {
    CHECK(command_encoder::encode("INCRBY", "n", 42) == "*3\r\n$6\r\nINCRBY\r\n$1\r\nn\r\n$2\r\n42\r\n");
    CHECK(command_encoder::encode("LRANGE", "l", 0, -1) == "*4\r\n$6\r\nLRANGE\r\n$1\r\nl\r\n$1\r\n0\r\n$2\r\n-1\r\n");
    CHECK(command_encoder::encode("X", std::numeric_limits<long long>::min()) == "*2\r\n$1\r\nX\r\n$20\r\n-9223372036854775808\r\n");
    CHECK(command_encoder::encode("X", std::numeric_limits<std::uint64_t>::max()) == "*2\r\n$1\r\nX\r\n$20\r\n18446744073709551615\r\n");
    CHECK(command_encoder::encode("X", static_cast<short>(-300), 7u, std::uint8_t{200}, std::int8_t{-5}) ==
          "*5\r\n$1\r\nX\r\n$4\r\n-300\r\n$1\r\n7\r\n$3\r\n200\r\n$2\r\n-5\r\n");
}

TEST_CASE("redis command - floating point: the shortest text that reads back the same", "[redis][command]") {
    CHECK(command_encoder::encode("ZADD", "z", 1.5, "a") == "*4\r\n$4\r\nZADD\r\n$1\r\nz\r\n$3\r\n1.5\r\n$1\r\na\r\n");
    CHECK(command_encoder::encode("X", 0.1) == "*2\r\n$1\r\nX\r\n$3\r\n0.1\r\n");
    CHECK(command_encoder::encode("X", -0.25f) == "*2\r\n$1\r\nX\r\n$5\r\n-0.25\r\n");
    CHECK(command_encoder::encode("X", 1e300) == "*2\r\n$1\r\nX\r\n$6\r\n1e+300\r\n");
    CHECK(command_encoder::encode("X", 3.0L) == "*2\r\n$1\r\nX\r\n$1\r\n3\r\n");
    // ZADD and ZRANGEBYSCORE read "inf" and "-inf" as the infinities.
    CHECK(command_encoder::encode("X", std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()) ==
          "*3\r\n$1\r\nX\r\n$3\r\ninf\r\n$4\r\n-inf\r\n");
}

TEST_CASE("redis command - a range adds one argument per element, in order", "[redis][command]") {
    const std::vector<std::string> keys{"a", "bb", "ccc"};
    CHECK(command_encoder::encode("DEL", keys) == "*4\r\n$3\r\nDEL\r\n$1\r\na\r\n$2\r\nbb\r\n$3\r\nccc\r\n");
    const std::vector<int> numbers{10, -2};
    const std::array<std::string_view, 2> names{"x", "y"};
    CHECK(command_encoder::encode("CMD", numbers, "mid", names) == "*6\r\n$3\r\nCMD\r\n$2\r\n10\r\n$2\r\n-2\r\n$3\r\nmid\r\n$1\r\nx\r\n$1\r\ny\r\n");
    const std::list<double> scores{0.5};  // any forward range
    CHECK(command_encoder::encode("S", scores) == "*2\r\n$1\r\nS\r\n$3\r\n0.5\r\n");
    const std::vector<std::string> whole{"GET", "k"};  // the name may come from the range too
    CHECK(command_encoder::encode(whole) == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
}

TEST_CASE("redis command - an empty range adds nothing; a command of nothing is refused", "[redis][command]") {
    const std::vector<std::string> none;
    CHECK(command_encoder::encode("DEL", none) == "*1\r\n$3\r\nDEL\r\n");
    try {
        (void)command_encoder::encode(none);
        FAIL("an empty command was encoded");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()) == "coring::redis: a command needs at least its name");
    }
}

TEST_CASE("redis command - a null const char* is refused, not read", "[redis][command]") {
    const char* none = nullptr;
    const std::string expected = "coring::redis: a null const char* argument (Redis has no NULL: send an empty string)";
    try {
        (void)command_encoder::encode("SET", "k", none);
        FAIL("a null const char* was encoded");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()) == expected);
    }
    const std::vector<const char*> keys{"a", nullptr};
    try {
        (void)command_encoder::encode("DEL", keys);
        FAIL("a null const char* in a range was encoded");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()) == expected);
    }
    char* mutable_none = nullptr;
    CHECK_THROWS_AS(command_encoder::encode("SET", "k", mutable_none), std::invalid_argument);
}

TEST_CASE("redis command - what counts as an argument", "[redis][command]") {
    STATIC_REQUIRE(redis::detail::argument<std::string>);
    STATIC_REQUIRE(redis::detail::argument<std::string_view>);
    STATIC_REQUIRE(redis::detail::argument<const char*>);
    STATIC_REQUIRE(redis::detail::argument<char[4]>);
    STATIC_REQUIRE(redis::detail::argument<int>);
    STATIC_REQUIRE(redis::detail::argument<unsigned long long>);
    STATIC_REQUIRE(redis::detail::argument<float>);
    STATIC_REQUIRE(redis::detail::argument<std::vector<std::string>>);
    STATIC_REQUIRE(redis::detail::argument<std::vector<long>>);
    // bool and char are ambiguous (a flag? a character or a number?): refused at compile time.
    STATIC_REQUIRE_FALSE(redis::detail::argument<bool>);
    STATIC_REQUIRE_FALSE(redis::detail::argument<char>);
    STATIC_REQUIRE_FALSE(redis::detail::argument<char8_t>);
    STATIC_REQUIRE_FALSE(redis::detail::argument<std::vector<bool>>);
    STATIC_REQUIRE_FALSE(redis::detail::argument<std::vector<char>>);
    // Ranges do not nest, and bytes travel as strings (std::string holds them).
    STATIC_REQUIRE_FALSE(redis::detail::argument<std::vector<std::vector<std::string>>>);
    STATIC_REQUIRE_FALSE(redis::detail::argument<std::span<const std::byte>>);
    // Redis has no NULL.
    STATIC_REQUIRE_FALSE(redis::detail::argument<std::nullptr_t>);
    STATIC_REQUIRE_FALSE(redis::detail::argument<std::vector<std::nullptr_t>>);
}

TEST_CASE("redis command - name_of reads the first argument back", "[redis][command]") {
    CHECK(command_encoder::name_of(command_encoder::encode("get", "k")) == "get");
    CHECK(command_encoder::name_of(command_encoder::encode("PING")) == "PING");
    const std::vector<std::string> whole{"XREADGROUP", "GROUP", "g", "c"};
    CHECK(command_encoder::name_of(command_encoder::encode(whole)) == "XREADGROUP");
    const std::string long_name(300, 'N');  // a length of three digits
    CHECK(command_encoder::name_of(command_encoder::encode(long_name, "x")) == long_name);
}

TEST_CASE("redis command - the commands that change the protocol are reserved, in any case", "[redis][command]") {
    for (const char* name : {"SUBSCRIBE", "subscribe", "PSubscribe", "SSUBSCRIBE", "UNSUBSCRIBE", "punsubscribe", "SUNSUBSCRIBE", "monitor"}) {
        INFO(name);
        CHECK(redis::detail::reserved_command(name));
    }
    for (const char* name : {"PUBLISH", "SUBSCRIBER", "SUB", "MONITORS", "", "GET", "PUBSUB"}) {
        INFO(name);
        CHECK_FALSE(redis::detail::reserved_command(name));
    }
}

TEST_CASE("redis command - an awaiter keeps its encoded command; without a connection it throws", "[redis][command]") {
    redis::command_awaiter first({}, command_encoder::encode("GET", "k"));
    CHECK(first.encoded() == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    redis::command_awaiter second(std::move(first));
    CHECK(second.encoded() == "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    try {
        (void)second.await_ready();
        FAIL("await_ready without a connection returned");
    } catch (const coring::invalid_state_error& e) {
        CHECK(std::string(e.what()) == "coring::redis: command on a moved-from connection");
    }
}
