// Tests of coring/bridge/redis/connection.hpp without a redis-server: an empty connection, the
// arguments connect() refuses, and a connection to a peer that the test plays
// (scripted_peer.hpp): the bytes that go out, replies matched to their commands, error replies,
// a lost connection, close(), a cancelled command. (Against a real server:
// tests/bridge/redis_test.cpp.)
#include <coring/bridge/redis/connection.hpp>

#include <coring/task_handle.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/time.hpp>
#include <coring/wait_for.hpp>

#include "bridge/redis/failure_of.hpp"
#include "bridge/redis/scripted_peer.hpp"
#include "support/catch.hpp"
#include "support/os.hpp"

#include <cerrno>
#include <chrono>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
namespace redis = coring::redis;

namespace {

coring::task<redis::reply> run(redis::command_awaiter command) { co_return co_await std::move(command); }

using coring_test::redis_bridge::failure;
using coring_test::redis_bridge::failure_of;

// Lets the loop run (flushes, replies) for a moment.
coring::task<> settle() { co_await coring::sleep(20ms); }

}  // namespace

CORING_TEST_CASE("redis connection - an empty connection refuses commands and subscriptions", "[redis][connection]") {
    const redis::connection empty;
    CHECK_FALSE(empty.is_open());
    CHECK(empty.in_flight() == 0);
    CHECK(empty.where().empty());
    CHECK(empty.native_handle() == -1);
    const failure command = co_await failure_of([&] { return run(empty.command("PING")); });
    CHECK(command.kind == "invalid_state_error");
    CHECK(command.what == "coring::redis: command on an empty connection");
    const std::vector<std::string> channels{"news"};
    const failure subscribe = co_await failure_of([&] { return empty.subscribe(channels); });
    CHECK(subscribe.kind == "invalid_state_error");
    CHECK(subscribe.what == "coring::redis: subscribe on an empty connection");
    redis::connection closed;
    closed.close();  // nothing to close
    CHECK_FALSE(closed.is_open());
}

CORING_TEST_CASE("redis connection - connect refuses a port out of range, connect_unix an empty path", "[redis][connection]") {
    const std::vector<int> ports{0, -1, 65536};
    for (const int port : ports) {
        const failure f = co_await failure_of([&] { return redis::connect("127.0.0.1", port); });
        CHECK(f.kind == "invalid_argument");
        CHECK(f.what == "coring::redis::connect: port " + std::to_string(port) + " is out of range");
    }
    const failure empty = co_await failure_of([] { return redis::connect_unix(""); });
    CHECK(empty.kind == "invalid_argument");
    CHECK(empty.what == "coring::redis::connect_unix: empty path");
    coring_test::temp_dir dir;
    const failure missing = co_await failure_of([&] { return redis::connect_unix(dir.file("none.sock")); });
    CHECK(missing.kind == "system_error");
    CHECK(missing.code == ENOENT);
}

CORING_TEST_CASE("redis connection - commands of one iteration leave together; replies go in order", "[redis][connection]") {
    coring_test::scripted_peer peer;
    redis::connection r = co_await redis::connect("127.0.0.1", peer.port());
    peer.accept();
    CHECK(r.is_open());
    CHECK(r.where() == "127.0.0.1:" + std::to_string(peer.port()));
    CHECK(r.native_handle() >= 0);
    CHECK(r.in_flight() == 0);

    auto set = coring::create_task(run(r.command("SET", "k", "v")));
    auto get = coring::create_task(run(r.command("GET", "k")));
    const std::string sent = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    const std::string received = co_await peer.receive(sent.size());
    CHECK(received == sent);
    CHECK(r.in_flight() == 2);
    peer.send("+OK\r\n$5\r\nhello\r\n");
    const redis::reply set_reply = co_await set;
    const redis::reply get_reply = co_await get;
    CHECK(set_reply == redis::reply::from_string("OK", redis::reply::kind::status));
    CHECK(get_reply == redis::reply::from_string("hello"));
    CHECK(r.in_flight() == 0);
}

CORING_TEST_CASE("redis connection - replies of every kind arrive as redis::reply; an error reply throws", "[redis][connection]") {
    coring_test::scripted_peer peer;
    redis::connection r = co_await redis::connect("127.0.0.1", peer.port());
    peer.accept();

    auto wrong = coring::create_task(failure_of([&] { return run(r.command("LPUSH", "s", "x")); }));
    auto number = coring::create_task(run(r.command("INCR", "n")));
    auto missing = coring::create_task(run(r.command("GET", "none")));
    auto exec = coring::create_task(run(r.command("EXEC")));
    const std::string sent = "*3\r\n$5\r\nLPUSH\r\n$1\r\ns\r\n$1\r\nx\r\n*2\r\n$4\r\nINCR\r\n$1\r\nn\r\n*2\r\n$3\r\nGET\r\n$4\r\nnone\r\n*1\r\n$4\r\nEXEC\r\n";
    const std::string received = co_await peer.receive(sent.size());
    CHECK(received == sent);
    peer.send("-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:5\r\n$-1\r\n*2\r\n:1\r\n-ERR not an integer\r\n");
    const failure wrong_failure = co_await wrong;
    CHECK(wrong_failure.kind == "redis::error");
    CHECK(wrong_failure.what == "WRONGTYPE Operation against a key holding the wrong kind of value");
    const redis::reply n = co_await number;
    CHECK(n == redis::reply::from_integer(5));
    const redis::reply nil = co_await missing;
    CHECK(nil.is_nil());
    const redis::reply results = co_await exec;
    std::vector<redis::reply> expected{redis::reply::from_integer(1), redis::reply::from_string("ERR not an integer", redis::reply::kind::error)};
    CHECK(results == redis::reply::from_array(expected));
    CHECK(r.is_open());
}

CORING_TEST_CASE("redis connection - command() refuses the commands that change the protocol", "[redis][connection]") {
    coring_test::scripted_peer peer;
    redis::connection r = co_await redis::connect("127.0.0.1", peer.port());
    const failure subscribe = co_await failure_of([&] { return run(r.command("subscribe", "news")); });
    CHECK(subscribe.kind == "invalid_argument");
    CHECK(subscribe.what == "coring::redis: subscribe is not sent through command(): use connection::subscribe()");
    const failure monitor = co_await failure_of([&] { return run(r.command("MONITOR")); });
    CHECK(monitor.kind == "invalid_argument");
    CHECK(monitor.what == "coring::redis: MONITOR is not sent through command(): MONITOR is not supported");
    CHECK(r.in_flight() == 0);
}

CORING_TEST_CASE("redis connection - a peer that closes fails the command in flight and every later one", "[redis][connection]") {
    coring_test::scripted_peer peer;
    redis::connection r = co_await redis::connect("127.0.0.1", peer.port());
    peer.accept();
    const std::string where = r.where();
    auto pending = coring::create_task(failure_of([&] { return run(r.command("GET", "k")); }));
    const std::string get = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    const std::string received = co_await peer.receive(get.size());
    CHECK(received == get);
    peer.close();
    const failure lost = co_await pending;
    CHECK(lost.kind == "system_error");
    CHECK(lost.code == ECONNRESET);
    CHECK(lost.what == "coring::redis: " + where + ": Server closed the connection: " + std::generic_category().message(ECONNRESET));
    CHECK_FALSE(r.is_open());
    CHECK(r.in_flight() == 0);
    const failure later = co_await failure_of([&] { return run(r.command("PING")); });
    CHECK(later.kind == "system_error");
    CHECK(later.code == ECONNRESET);
}

CORING_TEST_CASE("redis connection - a reply hiredis cannot parse fails the connection with EPROTO", "[redis][connection]") {
    coring_test::scripted_peer peer;
    redis::connection r = co_await redis::connect("127.0.0.1", peer.port());
    peer.accept();
    auto pending = coring::create_task(failure_of([&] { return run(r.command("PING")); }));
    const std::string ping = "*1\r\n$4\r\nPING\r\n";
    const std::string received = co_await peer.receive(ping.size());
    CHECK(received == ping);
    peer.send("?what\r\n");
    const failure garbled = co_await pending;
    CHECK(garbled.kind == "system_error");
    CHECK(garbled.code == EPROTO);
    CHECK_FALSE(r.is_open());
}

CORING_TEST_CASE("redis connection - close() fails the commands in flight with ECONNABORTED", "[redis][connection]") {
    coring_test::scripted_peer peer;
    redis::connection r = co_await redis::connect("127.0.0.1", peer.port());
    peer.accept();
    const std::string where = r.where();
    auto pending = coring::create_task(failure_of([&] { return run(r.command("GET", "k")); }));
    const std::string get = "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    const std::string received = co_await peer.receive(get.size());
    CHECK(received == get);
    r.close();
    const failure aborted = co_await pending;
    CHECK(aborted.kind == "system_error");
    CHECK(aborted.code == ECONNABORTED);
    CHECK(aborted.what == "coring::redis: " + where + ": the connection was closed: " + std::generic_category().message(ECONNABORTED));
    CHECK_FALSE(r.is_open());
    CHECK(r.native_handle() == -1);
    const failure later = co_await failure_of([&] { return run(r.command("PING")); });
    CHECK(later.code == ECONNABORTED);
    const std::string rest = co_await peer.receive(1);
    CHECK(rest.empty());  // the client closed its end
}

CORING_TEST_CASE("redis connection - a timed-out command's late reply is discarded; the next reply is matched", "[redis][connection]") {
    coring_test::scripted_peer peer;
    redis::connection r = co_await redis::connect("127.0.0.1", peer.port());
    peer.accept();
    const failure timed_out = co_await failure_of([&] { return coring::wait_for(run(r.command("GET", "slow")), 30ms); });
    CHECK(timed_out.kind == "timeout_error");
    CHECK(r.in_flight() == 1);  // sent: its reply is still due
    auto ping = coring::create_task(run(r.command("PING")));
    const std::string sent = "*2\r\n$3\r\nGET\r\n$4\r\nslow\r\n*1\r\n$4\r\nPING\r\n";
    const std::string received = co_await peer.receive(sent.size());
    CHECK(received == sent);
    peer.send("$4\r\nlate\r\n+PONG\r\n");
    const redis::reply pong = co_await ping;
    CHECK(pong == redis::reply::from_string("PONG", redis::reply::kind::status));
    CHECK(r.in_flight() == 0);
    CHECK(r.is_open());
}

CORING_TEST_CASE("redis connection - a command never awaited is never sent", "[redis][connection]") {
    coring_test::scripted_peer peer;
    redis::connection r = co_await redis::connect("127.0.0.1", peer.port());
    peer.accept();
    {
        redis::command_awaiter unused = r.command("DEL", "everything");
        CHECK(unused.encoded() == "*2\r\n$3\r\nDEL\r\n$10\r\neverything\r\n");
    }
    auto ping = coring::create_task(run(r.command("PING")));
    const std::string sent = "*1\r\n$4\r\nPING\r\n";
    const std::string received = co_await peer.receive(sent.size());
    CHECK(received == sent);
    peer.send("+PONG\r\n");
    (void)co_await ping;
    co_await settle();
    CHECK(r.in_flight() == 0);
}
