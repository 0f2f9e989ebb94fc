// Tests of coring/bridge/redis.hpp (coring::redis) against a real redis-server that the test
// starts itself (tests/support/redis_server.hpp): one shared by most tests, and fresh ones for
// the tests that kill theirs. Without redis-server the binary reports SKIP (77).
#include <coring/bridge/redis.hpp>
#include <coring/coring.hpp>
#include <coring/testing/catch2.hpp>

#include "support/catch.hpp"
#include "support/os.hpp"
#include "support/redis_server.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
namespace redis = coring::redis;

namespace {

// ------------------------------------------------------------------ the servers

// Starts a redis-server, or ends the binary with SKIP (77) when there is none.
std::unique_ptr<coring_test::redis_server> start_redis() {
    try {
        return std::make_unique<coring_test::redis_server>();
    } catch (const coring_test::redis_missing& e) {
        std::printf("SKIP: %s\n", e.what());
        std::fflush(stdout);
        std::_Exit(77);
    }
}

// The server most tests share (each uses keys of its own).
coring_test::redis_server& shared_server() {
    static std::unique_ptr<coring_test::redis_server> server = start_redis();
    return *server;
}

coring::task<redis::connection> connect_shared() { return redis::connect("127.0.0.1", shared_server().port()); }

// What an awaitable threw, when it was a std::system_error: its code (0 if nothing was thrown).
struct system_failure {
    int code = 0;
    std::string what;
};

template <class Awaitable>
coring::task<system_failure> system_failure_of(Awaitable op) {
    system_failure f;
    try {
        (void)co_await std::move(op);
    } catch (const std::system_error& e) {
        f.code = e.code().value();
        f.what = e.what();
    }
    co_return f;
}

// True if awaiting `op` threw an E.
template <class E, class Awaitable>
coring::task<bool> throws(Awaitable op) {
    try {
        (void)co_await std::move(op);
    } catch (const E&) {
        co_return true;
    }
    co_return false;
}

template <class Awaitable>
coring::task<std::string> redis_error_of(Awaitable op) {
    std::string what;
    try {
        (void)co_await std::move(op);
    } catch (const redis::error& e) {
        what = e.what();
    }
    co_return what;
}

}  // namespace

// ================================================================== commands and replies

CORING_TEST_CASE("redis - SET and GET round-trip binary-safe strings; a missing key is nil", "[redis]") {
    redis::connection r = co_await connect_shared();
    CHECK(r.is_open());
    CHECK(r.where() == "127.0.0.1:" + std::to_string(shared_server().port()));
    static constexpr char bytes[] = "line one\r\nline two\0with a nul byte\r\n$3\r\n*";
    const std::string value(bytes, sizeof bytes - 1);
    const redis::reply set = co_await r.command("SET", "basic:value", value);
    CHECK(set.is_status());
    CHECK(set.is_string());
    CHECK(set.str() == "OK");
    const redis::reply got = co_await r.command("GET", "basic:value");
    CHECK(got.type() == redis::reply::kind::string);
    CHECK(got.str() == value);
    CHECK(got.str().size() == sizeof bytes - 1);
    CHECK(got.str().find('\0') == 18);
    const redis::reply missing = co_await r.command("GET", "basic:no-such-key");
    CHECK(missing.is_nil());
    CHECK_FALSE(missing.is_string());
    const redis::reply pong = co_await r.command("PING");
    CHECK(pong.str() == "PONG");
    std::string empty;
    co_await r.command("SET", "basic:empty", empty);
    const redis::reply got_empty = co_await r.command("GET", "basic:empty");
    CHECK(got_empty.is_string());
    CHECK(got_empty.str().empty());
}

CORING_TEST_CASE("redis - integer, floating-point and range arguments; integer and array replies", "[redis]") {
    redis::connection r = co_await connect_shared();
    co_await r.command("DEL", "args:counter", "args:list", "args:zset");
    const redis::reply n = co_await r.command("INCRBY", "args:counter", 41);
    CHECK(n.is_integer());
    CHECK(n.integer() == 41);
    const long long big = -9007199254740993LL;
    const redis::reply m = co_await r.command("INCRBY", "args:counter", big);
    CHECK(m.integer() == 41 + big);
    const std::vector<std::string> items{"one", "two", "three"};
    const redis::reply pushed = co_await r.command("RPUSH", "args:list", items, "four", 5u);
    CHECK(pushed.integer() == 5);
    const redis::reply range = co_await r.command("LRANGE", "args:list", 0, -1);
    REQUIRE(range.is_array());
    REQUIRE(range.array().size() == 5);
    std::vector<std::string> got;
    for (const redis::reply& item : range.array()) got.push_back(item.str());
    CHECK(got == std::vector<std::string>{"one", "two", "three", "four", "5"});
    co_await r.command("ZADD", "args:zset", 1.5, "a", -0.25f, "b");
    const redis::reply score = co_await r.command("ZSCORE", "args:zset", "b");
    CHECK(score.str() == "-0.25");
    co_await r.command("SET", "args:float", 0.1);  // the shortest text that reads back the same
    const redis::reply text = co_await r.command("GET", "args:float");
    CHECK(text.str() == "0.1");
    const redis::reply empty = co_await r.command("LRANGE", "args:nothing", 0, -1);
    CHECK(empty.is_array());
    CHECK(empty.array().empty());
}

CORING_TEST_CASE("redis - a reply asked for another kind throws invalid_state_error", "[redis]") {
    redis::connection r = co_await connect_shared();
    const redis::reply s = co_await r.command("ECHO", "text");
    CHECK_THROWS_AS(s.integer(), coring::invalid_state_error);
    CHECK_THROWS_AS(s.array(), coring::invalid_state_error);
    const redis::reply nil = co_await r.command("GET", "kinds:missing");
    CHECK_THROWS_AS(nil.str(), coring::invalid_state_error);
    try {
        (void)nil.integer();
        FAIL("integer() of nil returned");
    } catch (const coring::invalid_state_error& e) {
        CHECK(std::string(e.what()) == "coring::redis::reply: asked for an integer, but the reply is nil");
    }
}

CORING_TEST_CASE("redis - an error reply throws redis::error with the server's message; the connection goes on", "[redis]") {
    redis::connection r = co_await connect_shared();
    const std::string unknown = co_await redis_error_of(r.command("NOSUCHCOMMAND", "x"));
    CHECK(unknown.starts_with("ERR unknown command 'NOSUCHCOMMAND'"));
    co_await r.command("SET", "errors:string", "v");
    try {
        (void)co_await r.command("LPUSH", "errors:string", "x");
        FAIL("LPUSH on a string did not throw");
    } catch (const redis::error& e) {
        CHECK(std::string(e.what()) == "WRONGTYPE Operation against a key holding the wrong kind of value");
        CHECK(e.code() == "WRONGTYPE");
    }
    const redis::reply after = co_await r.command("GET", "errors:string");
    CHECK(after.str() == "v");
    CHECK(r.is_open());
}

CORING_TEST_CASE("redis - a transaction's results: an array with a nested error element", "[redis]") {
    redis::connection r = co_await connect_shared();
    co_await r.command("SET", "multi:text", "abc");
    const redis::reply queued = co_await r.command("MULTI");
    CHECK(queued.str() == "OK");
    const redis::reply q1 = co_await r.command("INCR", "multi:text");
    CHECK(q1.str() == "QUEUED");
    co_await r.command("SET", "multi:other", 7);
    const redis::reply results = co_await r.command("EXEC");
    REQUIRE(results.is_array());
    REQUIRE(results.array().size() == 2);
    CHECK(results.array()[0].is_error());
    CHECK(results.array()[0].str() == "ERR value is not an integer or out of range");
    CHECK(results.array()[1].str() == "OK");
}

CORING_TEST_CASE("redis - a value of 4 MiB goes out and comes back whole", "[redis]") {
    redis::connection r = co_await connect_shared();
    const std::string big = coring_test::pattern(3, 4u << 20);
    co_await r.command("SET", "big:value", big);
    const redis::reply got = co_await r.command("GET", "big:value");
    CHECK(got.str().size() == big.size());
    CHECK(got.str() == big);
    const redis::reply length = co_await r.command("STRLEN", "big:value");
    CHECK(length.integer() == static_cast<long long>(big.size()));
}

CORING_TEST_CASE("redis - connect_unix talks over the Unix socket", "[redis]") {
    redis::connection r = co_await redis::connect_unix(shared_server().socket_path());
    CHECK(r.where() == shared_server().socket_path());
    co_await r.command("SET", "unix:key", "over a unix socket");
    redis::connection tcp = co_await connect_shared();
    const redis::reply got = co_await tcp.command("GET", "unix:key");
    CHECK(got.str() == "over a unix socket");
}

CORING_TEST_CASE("redis - connect resolves a name: localhost", "[redis]") {
    // localhost may be ::1 first, where nothing listens (the server binds 127.0.0.1): the next
    // address is tried.
    redis::connection r = co_await redis::connect("localhost", shared_server().port());
    const redis::reply pong = co_await r.command("PING");
    CHECK(pong.str() == "PONG");
}

CORING_TEST_CASE("redis - commands that change the protocol are refused by command()", "[redis]") {
    redis::connection r = co_await connect_shared();
    CHECK_THROWS_AS(r.command("subscribe", "news"), std::invalid_argument);
    CHECK_THROWS_AS(r.command("PSUBSCRIBE", "n*"), std::invalid_argument);
    CHECK_THROWS_AS(r.command("MONITOR"), std::invalid_argument);
    const std::vector<std::string> nothing;
    CHECK_THROWS_AS(r.command(nothing), std::invalid_argument);
    redis::connection empty;
    CHECK_THROWS_AS(empty.command("PING"), coring::invalid_state_error);
    const redis::reply pong = co_await r.command("PING");
    CHECK(pong.str() == "PONG");
}

CORING_TEST_CASE("redis - the task tree says which command a task waits for, and where", "[redis]") {
    redis::connection r = co_await connect_shared();
    auto blpop = [&]() -> coring::task<redis::reply> { co_return co_await r.command("BLPOP", "tree:never", "0.2"); };
    auto blocked = coring::create_task(blpop(), "blpop-waiter");
    co_await coring::sleep(20ms);
    const std::string tree = coring::format_tasks(coring::get_running_loop());
    INFO(tree);
    CHECK(tree.find("redis BLPOP on 127.0.0.1:" + std::to_string(shared_server().port())) != std::string::npos);
    const redis::reply nil = co_await blocked;
    CHECK(nil.is_nil());
}

// ================================================================== connecting

CORING_TEST_CASE("redis - a refused connection throws std::system_error with ECONNREFUSED", "[redis]") {
    const std::uint16_t port = coring_test::redis_support::free_port();  // nobody listens there
    const system_failure refused = co_await system_failure_of(redis::connect("127.0.0.1", port));
    CHECK(refused.code == ECONNREFUSED);
    CHECK(refused.what == "coring::redis: connect 127.0.0.1:" + std::to_string(port) + ": Connection refused");

    coring_test::temp_dir dir;
    const system_failure missing = co_await system_failure_of(redis::connect_unix(dir.file("none.sock")));
    CHECK(missing.code == ENOENT);
    const bool bad_port = co_await throws<std::invalid_argument>(redis::connect("127.0.0.1", 0));
    CHECK(bad_port);
}

// ================================================================== pipelining

CORING_TEST_CASE("redis - commands of many tasks share one connection, pipelined, each reply to its task", "[redis]") {
    redis::connection r = co_await connect_shared();
    co_await r.command("DEL", "pipe:counter");
    constexpr int tasks = 100;
    std::vector<long long> got(tasks, -1);
    std::vector<coring::task_handle<void>> handles;
    auto one = [&](int i) -> coring::task<> {
        const redis::reply n = co_await r.command("INCR", "pipe:counter");
        got[static_cast<std::size_t>(i)] = n.integer();
        const redis::reply echo = co_await r.command("ECHO", "task " + std::to_string(i));
        if (echo.str() != "task " + std::to_string(i)) got[static_cast<std::size_t>(i)] = -2;
    };
    for (int i = 0; i < tasks; ++i) handles.push_back(coring::create_task(one(i), {.eager_start = true}));
    // Every task has sent its INCR, and none has its reply yet: they are all in flight at once.
    CHECK(r.in_flight() == tasks);
    for (auto& h : handles) co_await h;
    for (int i = 0; i < tasks; ++i) CHECK(got[static_cast<std::size_t>(i)] == i + 1);  // in the order they were sent
    CHECK(r.in_flight() == 0);
}

CORING_TEST_CASE("redis - gather pipelines the commands of one task", "[redis]") {
    redis::connection r = co_await connect_shared();
    co_await r.command("MSET", "gather:a", "1", "gather:b", "2");
    auto [a, b, c] = co_await coring::gather(r.command("GET", "gather:a"), r.command("GET", "gather:b"), r.command("INCR", "gather:a"));
    CHECK(a.str() == "1");
    CHECK(b.str() == "2");
    CHECK(c.integer() == 2);
}

// ================================================================== cancellation

CORING_TEST_CASE("redis - a cancelled command's reply is discarded; the others stay matched", "[redis]") {
    redis::connection r = co_await connect_shared();
    co_await r.command("DEL", "cancel:sent", "cancel:unsent");
    co_await r.command("SET", "cancel:value", "mine");

    // Sent, then cancelled before its reply: the server runs it, the reply is dropped.
    auto incr = [&](std::string key) -> coring::task<long long> {
        const redis::reply n = co_await r.command("INCR", key);
        co_return n.integer();
    };
    auto sent = coring::create_task(incr("cancel:sent"), {.eager_start = true});
    CHECK(r.in_flight() == 1);
    CHECK(sent.cancel());
    const redis::reply value = co_await r.command("GET", "cancel:value");
    CHECK(value.str() == "mine");  // not the INCR's 1
    const bool threw1 = co_await throws<coring::cancelled_error>(sent);
    CHECK(threw1);
    const redis::reply ran = co_await r.command("GET", "cancel:sent");
    CHECK(ran.str() == "1");
    CHECK(r.in_flight() == 0);

    // Cancelled before it was awaited: never sent.
    auto unsent = coring::create_task(incr("cancel:unsent"));
    CHECK(unsent.cancel());
    const bool threw2 = co_await throws<coring::cancelled_error>(unsent);
    CHECK(threw2);
    const redis::reply never = co_await r.command("GET", "cancel:unsent");
    CHECK(never.is_nil());
}

CORING_TEST_CASE("redis - a timed-out command behind which others wait: replies stay matched", "[redis]") {
    redis::connection r = co_await connect_shared();
    co_await r.command("DEL", "timeout:empty-list");
    co_await r.command("SET", "timeout:value", "after the block");
    // BLPOP holds the connection for 0.3 s and then answers nil; wait_for gives up at 50 ms. The
    // GET queued behind it must get its own reply, not BLPOP's nil.
    auto block = [&]() -> coring::task<redis::reply> { co_return co_await coring::wait_for(r.command("BLPOP", "timeout:empty-list", "0.3"), 50ms); };
    auto blocked = coring::create_task(block());
    co_await coring::sleep(10ms);  // BLPOP is sent
    CHECK(r.in_flight() == 1);
    auto behind = [&]() -> coring::task<redis::reply> { co_return co_await r.command("GET", "timeout:value"); };
    auto queued = coring::create_task(behind());
    const bool threw3 = co_await throws<coring::timeout_error>(blocked);
    CHECK(threw3);
    const redis::reply got = co_await queued;
    CHECK(got.str() == "after the block");
    CHECK(r.in_flight() == 0);
    const redis::reply again = co_await r.command("ECHO", "still usable");
    CHECK(again.str() == "still usable");
}

// ================================================================== a lost connection

CORING_TEST_CASE("redis - a server killed mid-request fails the pending commands with std::system_error", "[redis]") {
    coring_test::redis_server own;
    redis::connection r = co_await redis::connect("127.0.0.1", own.port());
    co_await r.command("SET", "k", "v");
    auto blocked = coring::create_task(system_failure_of(r.command("BLPOP", "never", 0)));
    auto behind = coring::create_task(system_failure_of(r.command("GET", "k")));
    co_await coring::sleep(50ms);  // both sent; BLPOP blocks on the server
    CHECK(r.in_flight() == 2);
    own.kill();
    const system_failure first = co_await blocked;
    const system_failure second = co_await behind;
    CHECK(first.code == ECONNRESET);
    CHECK(second.code == ECONNRESET);
    CHECK(first.what == "coring::redis: 127.0.0.1:" + std::to_string(own.port()) + ": Server closed the connection: Connection reset by peer");
    CHECK_FALSE(r.is_open());
    CHECK(r.in_flight() == 0);
    const system_failure later = co_await system_failure_of(r.command("PING"));
    CHECK(later.code == ECONNRESET);
}

CORING_TEST_CASE("redis - writing to a server that died is a std::system_error, never a SIGPIPE", "[redis]") {
    coring_test::redis_server own;
    redis::connection r = co_await redis::connect("127.0.0.1", own.port());
    co_await r.command("PING");
    own.kill();
    // The first send may still be taken by the kernel (the peer answers it with a reset); the
    // ones after it fail with EPIPE or ECONNRESET, which hiredis's own write() would turn into a
    // SIGPIPE that ends the process.
    const std::string big = coring_test::pattern(0, 1u << 20);
    system_failure f;
    for (int i = 0; i < 20 && f.code == 0; ++i) f = co_await system_failure_of(r.command("SET", "k", big));
    CHECK((f.code == EPIPE || f.code == ECONNRESET));
    CHECK_FALSE(r.is_open());
}

CORING_TEST_CASE("redis - a connection dropped by its owner still answers the commands in flight", "[redis]") {
    auto r = std::make_unique<redis::connection>(co_await connect_shared());
    co_await r->command("SET", "dropped:key", "answered");
    auto get = [](redis::command_awaiter op) -> coring::task<std::string> { co_return (co_await std::move(op)).str(); };
    auto pending = coring::create_task(get(r->command("GET", "dropped:key")), {.eager_start = true});
    r.reset();  // the command in flight keeps the hiredis context until its reply is in
    const std::string got = co_await pending;
    CHECK(got == "answered");
}

CORING_TEST_CASE("redis - close() fails the commands in flight with ECONNABORTED", "[redis]") {
    redis::connection r = co_await connect_shared();
    auto blocked = coring::create_task(system_failure_of(r.command("BLPOP", "close:never", 0)));
    co_await coring::sleep(10ms);
    r.close();
    const system_failure f = co_await blocked;
    CHECK(f.code == ECONNABORTED);
    CHECK_FALSE(r.is_open());
    const system_failure later = co_await system_failure_of(r.command("PING"));
    CHECK(later.code == ECONNABORTED);
}

CORING_TEST_CASE("redis - a connection the server drops (CLIENT KILL) fails its next command", "[redis]") {
    redis::connection victim = co_await connect_shared();
    redis::connection admin = co_await connect_shared();
    const redis::reply id = co_await victim.command("CLIENT", "ID");
    const redis::reply killed = co_await admin.command("CLIENT", "KILL", "ID", id.integer());
    CHECK(killed.integer() == 1);
    const system_failure f = co_await system_failure_of(victim.command("PING"));
    CHECK((f.code == ECONNRESET || f.code == EPIPE));
    CHECK_FALSE(victim.is_open());
}

// ================================================================== publish/subscribe

CORING_TEST_CASE("redis - a subscription receives what is published, in order", "[redis]") {
    redis::connection subscriber = co_await connect_shared();
    redis::connection publisher = co_await connect_shared();
    const std::vector<std::string> channels{"pubsub:news", "pubsub:alerts"};
    redis::subscription sub = co_await subscriber.subscribe(channels);
    CHECK(sub.is_open());
    const redis::reply receivers = co_await publisher.command("PUBLISH", "pubsub:news", "first");
    CHECK(receivers.integer() == 1);
    co_await publisher.command("PUBLISH", "pubsub:alerts", std::string("binary\0payload", 14));
    co_await publisher.command("PUBLISH", "pubsub:elsewhere", "not subscribed");
    co_await publisher.command("PUBLISH", "pubsub:news", "third");
    const redis::message m1 = co_await sub.next();
    const redis::message m2 = co_await sub.next();
    const redis::message m3 = co_await sub.next();
    CHECK(m1 == redis::message{"pubsub:news", "first"});
    CHECK(m2 == redis::message{"pubsub:alerts", std::string("binary\0payload", 14)});
    CHECK(m3 == redis::message{"pubsub:news", "third"});
    CHECK(sub.pending() == 0);

    // Subscriber mode: the connection serves its subscription only.
    const bool threw4 = co_await throws<coring::invalid_state_error>(subscriber.command("PING"));
    CHECK(threw4);
    const bool threw5 = co_await throws<coring::invalid_state_error>(subscriber.subscribe(channels));
    CHECK(threw5);

    // More channels on the same subscription.
    const std::vector<std::string> more{"pubsub:more"};
    co_await sub.subscribe(more);
    co_await publisher.command("PUBLISH", "pubsub:more", "added");
    const redis::message m4 = co_await sub.next();
    CHECK(m4 == redis::message{"pubsub:more", "added"});
}

CORING_TEST_CASE("redis - a subscription's next() waits, and messages wait for next()", "[redis]") {
    redis::connection subscriber = co_await connect_shared();
    redis::connection publisher = co_await connect_shared();
    const std::vector<std::string> channels{"wait:ch"};
    redis::subscription sub = co_await subscriber.subscribe(channels);
    auto publish_later = [&]() -> coring::task<> {
        co_await coring::sleep(20ms);
        co_await publisher.command("PUBLISH", "wait:ch", "late");
    };
    auto later = coring::create_task(publish_later());
    const redis::message late = co_await sub.next();
    CHECK(late.payload == "late");
    co_await later;
    for (int i = 0; i < 5; ++i) co_await publisher.command("PUBLISH", "wait:ch", i);
    co_await publisher.command("PING");  // the server has sent the five messages before this reply
    co_await coring::sleep(20ms);
    CHECK(sub.pending() == 5);
    for (int i = 0; i < 5; ++i) {
        const redis::message m = co_await sub.next();
        CHECK(m.payload == std::to_string(i));
    }
    // A next() that times out takes nothing.
    const bool threw6 = co_await throws<coring::timeout_error>(coring::wait_for(sub.next(), 20ms));
    CHECK(threw6);
    co_await publisher.command("PUBLISH", "wait:ch", "after the timeout");
    const redis::message after = co_await sub.next();
    CHECK(after.payload == "after the timeout");
}

CORING_TEST_CASE("redis - a subscription whose connection drops: next() gives what came, then throws", "[redis]") {
    redis::connection subscriber = co_await connect_shared();
    redis::connection admin = co_await connect_shared();
    const std::vector<std::string> channels{"drop:ch"};
    redis::subscription sub = co_await subscriber.subscribe(channels);
    co_await admin.command("PUBLISH", "drop:ch", "before");
    auto waiting = [&]() -> coring::task<std::vector<std::string>> {
        std::vector<std::string> got;
        try {
            for (;;) got.push_back((co_await sub.next()).payload);
        } catch (const std::system_error& e) {
            got.push_back("system_error " + std::to_string(e.code().value()));
        }
        co_return got;
    };
    auto reader = coring::create_task(waiting());
    co_await coring::sleep(20ms);
    const redis::reply killed = co_await admin.command("CLIENT", "KILL", "TYPE", "pubsub");
    CHECK(killed.integer() >= 1);
    const std::vector<std::string> got = co_await reader;
    CHECK(got == std::vector<std::string>{"before", "system_error " + std::to_string(ECONNRESET)});
    CHECK_FALSE(sub.is_open());
    const bool threw7 = co_await throws<std::system_error>(sub.next());
    CHECK(threw7);
}

CORING_TEST_CASE("redis - a subscription the server refuses (ACL) throws redis::error; the connection is closed", "[redis]") {
    redis::connection admin = co_await connect_shared();
    co_await admin.command("ACL", "SETUSER", "acl-limited", "on", "nopass", "resetchannels", "&allowed:*", "+@all", "~*");
    redis::connection limited = co_await connect_shared();
    co_await limited.command("AUTH", "acl-limited", "any");
    const std::vector<std::string> forbidden{"forbidden:ch"};
    const std::string refused = co_await redis_error_of(limited.subscribe(forbidden));
    CHECK(refused == "NOPERM this user has no permissions to access one of the channels used as arguments");
    CHECK_FALSE(limited.is_open());
    // The channels it may use work.
    redis::connection allowed = co_await connect_shared();
    co_await allowed.command("AUTH", "acl-limited", "any");
    const std::vector<std::string> ok{"allowed:ch"};
    redis::subscription sub = co_await allowed.subscribe(ok);
    co_await admin.command("PUBLISH", "allowed:ch", "hello");
    const redis::message m = co_await sub.next();
    CHECK(m.payload == "hello");
    co_await admin.command("ACL", "DELUSER", "acl-limited");
}

CORING_TEST_CASE("redis - a subscription outlives its connection object; a server that dies ends it", "[redis]") {
    coring_test::redis_server own;
    redis::subscription sub;
    {
        redis::connection subscriber = co_await redis::connect("127.0.0.1", own.port());
        const std::vector<std::string> channels{"own:ch"};
        sub = co_await subscriber.subscribe(channels);
    }
    redis::connection publisher = co_await redis::connect_unix(own.socket_path());
    co_await publisher.command("PUBLISH", "own:ch", "still here");
    const redis::message m = co_await sub.next();
    CHECK(m.payload == "still here");
    own.kill();
    const system_failure f = co_await system_failure_of(sub.next());
    CHECK(f.code == ECONNRESET);
}

// ================================================================== streams

CORING_TEST_CASE("redis - streams with a consumer group: XADD, XREADGROUP, XACK, XAUTOCLAIM", "[redis]") {
    redis::connection r = co_await connect_shared();
    co_await r.command("DEL", "stream:jobs");
    co_await r.command("XGROUP", "CREATE", "stream:jobs", "workers", "$", "MKSTREAM");
    const std::string busy = co_await redis_error_of(r.command("XGROUP", "CREATE", "stream:jobs", "workers", "$"));
    CHECK(busy == "BUSYGROUP Consumer Group name already exists");
    const redis::reply id1 = co_await r.command("XADD", "stream:jobs", "*", "job", "first");
    const redis::reply id2 = co_await r.command("XADD", "stream:jobs", "*", "job", "second");
    const redis::reply read = co_await r.command("XREADGROUP", "GROUP", "workers", "alice", "COUNT", 10, "STREAMS", "stream:jobs", ">");
    // [[stream, [[id, [field, value]], ...]]]
    REQUIRE(read.is_array());
    REQUIRE(read.array().size() == 1);
    CHECK(read.array()[0].array()[0].str() == "stream:jobs");
    const auto& entries = read.array()[0].array()[1].array();
    REQUIRE(entries.size() == 2);
    CHECK(entries[0].array()[0].str() == id1.str());
    CHECK(entries[0].array()[1].array()[1].str() == "first");
    CHECK(entries[1].array()[0].str() == id2.str());
    const redis::reply acked = co_await r.command("XACK", "stream:jobs", "workers", id1.str());
    CHECK(acked.integer() == 1);
    // alice never acknowledges the second: bob claims it.
    const redis::reply claimed = co_await r.command("XAUTOCLAIM", "stream:jobs", "workers", "bob", 0, "0-0");
    REQUIRE(claimed.array().size() >= 2);
    REQUIRE(claimed.array()[1].array().size() == 1);
    CHECK(claimed.array()[1].array()[0].array()[0].str() == id2.str());
    const redis::reply nothing = co_await r.command("XREADGROUP", "GROUP", "workers", "bob", "STREAMS", "stream:jobs", ">");
    CHECK(nothing.is_nil());
}
