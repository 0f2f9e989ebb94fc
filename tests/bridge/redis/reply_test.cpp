// Tests of coring/bridge/redis/reply.hpp: reply's kinds and accessors (and what they throw for
// the wrong kind), equality, redis::error's code, and message.
#include <coring/bridge/redis/reply.hpp>

#include "support/catch.hpp"

#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace redis = coring::redis;
using kind = redis::reply::kind;

namespace {

// The message of the invalid_state_error that `access` throws ("" if it throws none).
template <class Access>
std::string wrong_kind_message(Access access) {
    try {
        (void)access();
    } catch (const coring::invalid_state_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("redis reply - a default reply is nil, and only nil", "[redis][reply]") {
    const redis::reply r;
    CHECK(r.type() == kind::nil);
    CHECK(r.is_nil());
    CHECK_FALSE(r.is_integer());
    CHECK_FALSE(r.is_string());
    CHECK_FALSE(r.is_status());
    CHECK_FALSE(r.is_array());
    CHECK_FALSE(r.is_error());
    CHECK(wrong_kind_message([&] { return r.integer(); }) == "coring::redis::reply: asked for an integer, but the reply is nil");
    CHECK(wrong_kind_message([&] { return r.str(); }) == "coring::redis::reply: asked for a string, but the reply is nil");
    CHECK(wrong_kind_message([&] { return r.array(); }) == "coring::redis::reply: asked for an array, but the reply is nil");
}

TEST_CASE("redis reply - an integer", "[redis][reply]") {
    const redis::reply r = redis::reply::from_integer(-9007199254740993LL);
    CHECK(r.type() == kind::integer);
    CHECK(r.is_integer());
    CHECK_FALSE(r.is_nil());
    CHECK_FALSE(r.is_string());
    CHECK(r.integer() == -9007199254740993LL);
    CHECK(wrong_kind_message([&] { return r.str(); }) == "coring::redis::reply: asked for a string, but the reply is integer");
    CHECK(wrong_kind_message([&] { return r.array(); }) == "coring::redis::reply: asked for an array, but the reply is integer");
}

TEST_CASE("redis reply - a bulk string is binary-safe; a status is a string too", "[redis][reply]") {
    const std::string bytes("a\0b\r\n", 5);
    const redis::reply bulk = redis::reply::from_string(bytes);
    CHECK(bulk.type() == kind::string);
    CHECK(bulk.is_string());
    CHECK_FALSE(bulk.is_status());
    CHECK(bulk.str() == bytes);
    CHECK(bulk.str().size() == 5);
    CHECK(wrong_kind_message([&] { return bulk.integer(); }) == "coring::redis::reply: asked for an integer, but the reply is string");

    const redis::reply ok = redis::reply::from_string("OK", kind::status);
    CHECK(ok.type() == kind::status);
    CHECK(ok.is_status());
    CHECK(ok.is_string());
    CHECK(ok.str() == "OK");
    CHECK(wrong_kind_message([&] { return ok.array(); }) == "coring::redis::reply: asked for an array, but the reply is status");
}

TEST_CASE("redis reply - a nested error: its message is str(), and it is not a string", "[redis][reply]") {
    const redis::reply e = redis::reply::from_string("ERR value is not an integer or out of range", kind::error);
    CHECK(e.type() == kind::error);
    CHECK(e.is_error());
    CHECK_FALSE(e.is_string());
    CHECK(e.str() == "ERR value is not an integer or out of range");
    CHECK(wrong_kind_message([&] { return e.integer(); }) == "coring::redis::reply: asked for an integer, but the reply is error");
}

TEST_CASE("redis reply - from_string refuses the kinds that are not strings", "[redis][reply]") {
    for (const kind k : {kind::nil, kind::integer, kind::array}) {
        INFO(redis::reply::kind_name(k));
        try {
            (void)redis::reply::from_string("x", k);
            FAIL("from_string made a reply of a non-string kind");
        } catch (const std::invalid_argument& e) {
            CHECK(std::string(e.what()) == "coring::redis::reply::from_string: not a string kind");
        }
    }
}

TEST_CASE("redis reply - an array holds replies of any kind, nested", "[redis][reply]") {
    std::vector<redis::reply> inner{redis::reply::from_integer(1), redis::reply()};
    std::vector<redis::reply> elements{redis::reply::from_string("a"), redis::reply::from_array(std::move(inner)),
                                       redis::reply::from_string("ERR x", kind::error)};
    const redis::reply r = redis::reply::from_array(std::move(elements));
    CHECK(r.type() == kind::array);
    CHECK(r.is_array());
    REQUIRE(r.array().size() == 3);
    CHECK(r.array()[0].str() == "a");
    REQUIRE(r.array()[1].array().size() == 2);
    CHECK(r.array()[1].array()[0].integer() == 1);
    CHECK(r.array()[1].array()[1].is_nil());
    CHECK(r.array()[2].is_error());
    CHECK(wrong_kind_message([&] { return r.integer(); }) == "coring::redis::reply: asked for an integer, but the reply is array");
    CHECK(wrong_kind_message([&] { return r.str(); }) == "coring::redis::reply: asked for a string, but the reply is array");
    const redis::reply empty = redis::reply::from_array({});
    CHECK(empty.is_array());
    CHECK(empty.array().empty());
}

TEST_CASE("redis reply - on an rvalue, str() and array() move the value out", "[redis][reply]") {
    STATIC_REQUIRE(std::is_same_v<decltype(std::declval<redis::reply>().str()), std::string>);
    STATIC_REQUIRE(std::is_same_v<decltype(std::declval<const redis::reply&>().str()), const std::string&>);
    STATIC_REQUIRE(std::is_same_v<decltype(std::declval<redis::reply>().array()), std::vector<redis::reply>>);
    const std::string long_text(100, 'x');  // past the small-string buffer: a move leaves it empty
    redis::reply s = redis::reply::from_string(long_text);
    const std::string taken = std::move(s).str();
    CHECK(taken == long_text);
    std::vector<redis::reply> elements{redis::reply::from_integer(7)};
    redis::reply a = redis::reply::from_array(std::move(elements));
    const std::vector<redis::reply> items = std::move(a).array();
    REQUIRE(items.size() == 1);
    CHECK(items[0].integer() == 7);
    // The wrong kind throws on an rvalue too.
    CHECK(wrong_kind_message([] { return redis::reply::from_integer(1).str(); }) == "coring::redis::reply: asked for a string, but the reply is integer");
    CHECK(wrong_kind_message([] { return redis::reply().array(); }) == "coring::redis::reply: asked for an array, but the reply is nil");
}

TEST_CASE("redis reply - equality: the same kind and the same value", "[redis][reply]") {
    CHECK(redis::reply() == redis::reply());
    CHECK(redis::reply::from_integer(3) == redis::reply::from_integer(3));
    CHECK_FALSE(redis::reply::from_integer(3) == redis::reply::from_integer(4));
    CHECK_FALSE(redis::reply::from_integer(0) == redis::reply());
    CHECK(redis::reply::from_string("OK") == redis::reply::from_string("OK"));
    CHECK_FALSE(redis::reply::from_string("OK") == redis::reply::from_string("OK", kind::status));
    CHECK_FALSE(redis::reply::from_string("OK", kind::error) == redis::reply::from_string("OK", kind::status));
    CHECK_FALSE(redis::reply::from_string("") == redis::reply());
    std::vector<redis::reply> one{redis::reply::from_string("a"), redis::reply::from_integer(1)};
    std::vector<redis::reply> same{redis::reply::from_string("a"), redis::reply::from_integer(1)};
    std::vector<redis::reply> other{redis::reply::from_string("a"), redis::reply::from_integer(2)};
    CHECK(redis::reply::from_array(one) == redis::reply::from_array(same));
    CHECK_FALSE(redis::reply::from_array(one) == redis::reply::from_array(other));
    CHECK_FALSE(redis::reply::from_array({}) == redis::reply());
}

TEST_CASE("redis reply - kind_name names every kind", "[redis][reply]") {
    CHECK(std::string(redis::reply::kind_name(kind::nil)) == "nil");
    CHECK(std::string(redis::reply::kind_name(kind::integer)) == "integer");
    CHECK(std::string(redis::reply::kind_name(kind::string)) == "string");
    CHECK(std::string(redis::reply::kind_name(kind::status)) == "status");
    CHECK(std::string(redis::reply::kind_name(kind::array)) == "array");
    CHECK(std::string(redis::reply::kind_name(kind::error)) == "error");
}

TEST_CASE("redis reply - redis::error: what() is the server's message, code() its first word", "[redis][reply]") {
    STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, redis::error>);
    const redis::error wrongtype("WRONGTYPE Operation against a key holding the wrong kind of value");
    CHECK(std::string(wrongtype.what()) == "WRONGTYPE Operation against a key holding the wrong kind of value");
    CHECK(wrongtype.code() == "WRONGTYPE");
    CHECK(redis::error("ERR unknown command 'FOO'").code() == "ERR");
    CHECK(redis::error("NOGROUP").code() == "NOGROUP");  // one word: all of it
    CHECK(redis::error("").code().empty());
}

TEST_CASE("redis reply - message compares channel and payload", "[redis][reply]") {
    const redis::message m{"news", std::string("a\0b", 3)};
    CHECK(m == redis::message{"news", std::string("a\0b", 3)});
    CHECK_FALSE(m == redis::message{"news", "a"});
    CHECK_FALSE(m == redis::message{"other", std::string("a\0b", 3)});
    const redis::message empty;
    CHECK(empty.channel.empty());
    CHECK(empty.payload.empty());
}
