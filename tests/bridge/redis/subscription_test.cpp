// Tests of coring/bridge/redis/subscription.hpp without a redis-server: an empty subscription,
// and subscriptions on a connection to a peer that the test plays (scripted_peer.hpp): the
// SUBSCRIBE sent, the wait for every confirmation, messages in order, subscriber mode, a refusal,
// a peer that goes away. (Against a real server: tests/bridge/redis_test.cpp.)
#include <coring/bridge/redis/subscription.hpp>

#include <coring/bridge/redis/connection.hpp>
#include <coring/task_handle.hpp>
#include <coring/testing/catch2.hpp>
#include <coring/time.hpp>

#include "bridge/redis/failure_of.hpp"
#include "bridge/redis/scripted_peer.hpp"
#include "support/catch.hpp"

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

using coring_test::redis_bridge::failure;
using coring_test::redis_bridge::failure_of;

coring::task<redis::reply> run(redis::command_awaiter command) { co_return co_await std::move(command); }

// The server's confirmation of one channel, and a message on it.
std::string confirmation(const std::string& channel, int count) {
    return "*3\r\n$9\r\nsubscribe\r\n$" + std::to_string(channel.size()) + "\r\n" + channel + "\r\n:" + std::to_string(count) + "\r\n";
}
std::string published(const std::string& channel, const std::string& payload) {
    return "*3\r\n$7\r\nmessage\r\n$" + std::to_string(channel.size()) + "\r\n" + channel + "\r\n$" + std::to_string(payload.size()) + "\r\n" + payload + "\r\n";
}

// A connection to `peer`, subscribed to "news" (confirmed).
coring::task<redis::subscription> subscribe_news(coring_test::scripted_peer& peer, redis::connection& r) {
    r = co_await redis::connect("127.0.0.1", peer.port());
    peer.accept();
    const std::vector<std::string> channels{"news"};
    auto subscribing = coring::create_task(r.subscribe(channels));
    const std::string sent = "*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n";
    const std::string received = co_await peer.receive(sent.size());
    REQUIRE(received == sent);
    peer.send(confirmation("news", 1));
    co_return co_await subscribing;
}

}  // namespace

CORING_TEST_CASE("redis subscription - an empty subscription refuses next() and subscribe()", "[redis][subscription]") {
    redis::subscription empty;
    CHECK_FALSE(empty.is_open());
    CHECK(empty.pending() == 0);
    const failure next = co_await failure_of([&] { return empty.next(); });
    CHECK(next.kind == "invalid_state_error");
    CHECK(next.what == "coring::redis: an empty subscription");
    const std::vector<std::string> channels{"news"};
    const failure more = co_await failure_of([&] { return empty.subscribe(channels); });
    CHECK(more.kind == "invalid_state_error");
    CHECK(more.what == "coring::redis: an empty subscription");
}

CORING_TEST_CASE("redis subscription - subscribe() returns once the server confirmed every channel", "[redis][subscription]") {
    coring_test::scripted_peer peer;
    redis::connection r = co_await redis::connect("127.0.0.1", peer.port());
    peer.accept();
    const std::vector<std::string> channels{"news", "alerts"};
    auto subscribing = coring::create_task(r.subscribe(channels));
    const std::string sent = "*3\r\n$9\r\nSUBSCRIBE\r\n$4\r\nnews\r\n$6\r\nalerts\r\n";
    const std::string received = co_await peer.receive(sent.size());
    CHECK(received == sent);
    peer.send(confirmation("news", 1));
    co_await coring::sleep(20ms);
    CHECK_FALSE(subscribing.done());  // one confirmation of two
    peer.send(confirmation("alerts", 2));
    redis::subscription sub = co_await subscribing;
    CHECK(sub.is_open());
    CHECK(sub.pending() == 0);
}

CORING_TEST_CASE("redis subscription - messages come in order, binary-safe, buffered until taken", "[redis][subscription]") {
    coring_test::scripted_peer peer;
    redis::connection r;
    redis::subscription sub = co_await subscribe_news(peer, r);
    const std::string binary("a\0b\r\n", 5);
    peer.send(published("news", "one") + published("news", binary) + published("news", ""));
    for (int i = 0; i < 200 && sub.pending() < 3; ++i) co_await coring::sleep(1ms);
    CHECK(sub.pending() == 3);
    const redis::message first = co_await sub.next();
    CHECK(first == redis::message{"news", "one"});
    const redis::message second = co_await sub.next();
    CHECK(second == redis::message{"news", binary});
    const redis::message third = co_await sub.next();
    CHECK(third == redis::message{"news", ""});
    CHECK(sub.pending() == 0);

    auto waiting = coring::create_task(sub.next());  // waits for the next one
    co_await coring::sleep(20ms);
    CHECK_FALSE(waiting.done());
    peer.send(published("news", "four"));
    const redis::message fourth = co_await waiting;
    CHECK(fourth == redis::message{"news", "four"});
}

CORING_TEST_CASE("redis subscription - the connection is in subscriber mode; more channels go through the subscription", "[redis][subscription]") {
    coring_test::scripted_peer peer;
    redis::connection r;
    redis::subscription sub = co_await subscribe_news(peer, r);
    const std::string where = r.where();
    const failure command = co_await failure_of([&] { return run(r.command("GET", "k")); });
    CHECK(command.kind == "invalid_state_error");
    CHECK(command.what == "coring::redis: " + where + " is in subscriber mode: only its subscription may use it (open another connection for commands)");
    const std::vector<std::string> again{"other"};
    const failure second = co_await failure_of([&] { return r.subscribe(again); });
    CHECK(second.kind == "invalid_state_error");
    CHECK(second.what == "coring::redis: " + where + " is subscribed already: use subscription::subscribe()");
    const std::vector<std::string> none;
    const failure empty = co_await failure_of([&] { return sub.subscribe(none); });
    CHECK(empty.kind == "invalid_argument");
    CHECK(empty.what == "coring::redis: subscribe needs at least one channel");

    const std::vector<std::string> more{"sports"};
    auto adding = coring::create_task(sub.subscribe(more));
    const std::string sent = "*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\nsports\r\n";
    const std::string received = co_await peer.receive(sent.size());
    CHECK(received == sent);
    peer.send(confirmation("sports", 2) + published("sports", "goal"));
    co_await adding;
    const redis::message m = co_await sub.next();
    CHECK(m == redis::message{"sports", "goal"});
}

CORING_TEST_CASE("redis subscription - a peer that goes away: next() gives what came, then throws", "[redis][subscription]") {
    coring_test::scripted_peer peer;
    redis::connection r;
    redis::subscription sub = co_await subscribe_news(peer, r);
    peer.send(published("news", "last"));
    peer.close();
    const redis::message last = co_await sub.next();
    CHECK(last == redis::message{"news", "last"});
    const failure gone = co_await failure_of([&] { return sub.next(); });
    CHECK(gone.kind == "system_error");
    CHECK(gone.code == ECONNRESET);
    CHECK_FALSE(sub.is_open());
    CHECK_FALSE(r.is_open());
}

CORING_TEST_CASE("redis subscription - a refused SUBSCRIBE throws redis::error; the connection is closed", "[redis][subscription]") {
    coring_test::scripted_peer peer;
    redis::connection r = co_await redis::connect("127.0.0.1", peer.port());
    peer.accept();
    const std::vector<std::string> channels{"secret"};
    auto subscribing = coring::create_task(failure_of([&] { return r.subscribe(channels); }));
    const std::string sent = "*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\nsecret\r\n";
    const std::string received = co_await peer.receive(sent.size());
    CHECK(received == sent);
    peer.send("-NOPERM this user has no permissions to access one of the channels used as arguments\r\n");
    const failure refused = co_await subscribing;
    CHECK(refused.kind == "redis::error");
    CHECK(refused.what == "NOPERM this user has no permissions to access one of the channels used as arguments");
    CHECK_FALSE(r.is_open());
}
