// Tests of coring/bridge/redis/link.hpp without a server: the errno read back from hiredis's
// error text, the copy of hiredis's replies into redis::reply, and a connection that fails at
// once. (The link on a live connection: tests/bridge/redis_test.cpp, and connection_test.cpp
// here, against a socket the test plays the server on.)
#include <coring/bridge/redis/link.hpp>

#include <coring/testing/catch2.hpp>

#include "support/catch.hpp"
#include "support/os.hpp"

#include <hiredis/hiredis.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <system_error>
#include <vector>

namespace redis = coring::redis;

namespace {

// A hiredis reply made by hand: the strings point into `text`, which must outlive it.
redisReply make_reply(int type, const std::string& text = {}, long long integer = 0) {
    redisReply r{};
    r.type = type;
    r.integer = integer;
    r.str = const_cast<char*>(text.data());
    r.len = text.size();
    return r;
}

}  // namespace

TEST_CASE("redis link - errno_from_text reads the errno whose message ends hiredis's text", "[redis][link]") {
    CHECK(redis::detail::errno_from_text("connect: Connection refused") == ECONNREFUSED);
    CHECK(redis::detail::errno_from_text("No such file or directory") == ENOENT);
    CHECK(redis::detail::errno_from_text(std::string("connect: ") + std::strerror(ETIMEDOUT)) == ETIMEDOUT);
    CHECK(redis::detail::errno_from_text("Server closed the connection") == 0);
    CHECK(redis::detail::errno_from_text("Connection refused: later") == 0);  // at the end only
    CHECK(redis::detail::errno_from_text("") == 0);
}

TEST_CASE("redis link - convert_reply copies each kind of hiredis reply", "[redis][link]") {
    const redis::reply integer = redis::detail::convert_reply(make_reply(REDIS_REPLY_INTEGER, {}, -42));
    CHECK(integer == redis::reply::from_integer(-42));

    const std::string bytes("x\0y", 3);
    const redis::reply bulk = redis::detail::convert_reply(make_reply(REDIS_REPLY_STRING, bytes));
    CHECK(bulk.type() == redis::reply::kind::string);
    CHECK(bulk.str() == bytes);

    const std::string ok = "OK";
    const redis::reply status = redis::detail::convert_reply(make_reply(REDIS_REPLY_STATUS, ok));
    CHECK(status == redis::reply::from_string("OK", redis::reply::kind::status));

    const std::string message = "ERR no such key";
    const redis::reply error = redis::detail::convert_reply(make_reply(REDIS_REPLY_ERROR, message));
    CHECK(error == redis::reply::from_string("ERR no such key", redis::reply::kind::error));

    CHECK(redis::detail::convert_reply(make_reply(REDIS_REPLY_NIL)).is_nil());
}

TEST_CASE("redis link - convert_reply copies arrays deeply, in order", "[redis][link]") {
    const std::string a = "a";
    redisReply first = make_reply(REDIS_REPLY_STRING, a);
    redisReply nil = make_reply(REDIS_REPLY_NIL);
    redisReply seven = make_reply(REDIS_REPLY_INTEGER, {}, 7);
    std::vector<redisReply*> inner_elements{&nil, &seven};
    redisReply inner = make_reply(REDIS_REPLY_ARRAY);
    inner.elements = inner_elements.size();
    inner.element = inner_elements.data();
    std::vector<redisReply*> outer_elements{&first, &inner};
    redisReply outer = make_reply(REDIS_REPLY_ARRAY);
    outer.elements = outer_elements.size();
    outer.element = outer_elements.data();

    const redis::reply r = redis::detail::convert_reply(outer);
    std::vector<redis::reply> expected_inner{redis::reply(), redis::reply::from_integer(7)};
    std::vector<redis::reply> expected{redis::reply::from_string("a"), redis::reply::from_array(expected_inner)};
    CHECK(r == redis::reply::from_array(expected));

    redisReply empty = make_reply(REDIS_REPLY_ARRAY);  // no elements: element may be null
    CHECK(redis::detail::convert_reply(empty) == redis::reply::from_array({}));
}

CORING_TEST_CASE("redis link - start on a Unix socket that does not exist throws ENOENT at once", "[redis][link]") {
    coring_test::temp_dir dir;
    const std::string path = dir.file("none.sock");
    try {
        (void)redis::detail::link::start(coring::get_running_loop(), path, -1);
        FAIL("start on a missing socket returned");
    } catch (const std::system_error& e) {
        CHECK(e.code() == std::error_code(ENOENT, std::generic_category()));
        CHECK(std::string(e.what()) == "coring::redis: connect " + path + ": No such file or directory");
    }
    co_return;
}
