// Tests of coring/thread/channel.hpp: a bounded queue between loops.
//
// Catch2 is not thread-safe: the loops of a group return what they saw, and the checks are
// made on this thread.
#include <coring/thread/channel.hpp>

#include <coring/gather.hpp>
#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/thread/loop_group.hpp>
#include <coring/time.hpp>
#include <coring/wait_for.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

namespace {

// What one receiver saw: the count and sum of the values, and whether each sender's values
// arrived in increasing order.
struct receiver_log {
    std::uint64_t count = 0;
    std::uint64_t sum = 0;
    bool in_order = true;
};

struct item {
    std::uint32_t sender;
    std::uint32_t sequence;
};

}  // namespace

TEST_CASE("channel - FIFO on one loop; receive after close drains, then is empty", "[channel]") {
    std::vector<int> received;
    bool empty_after = false;
    coring::run([](std::vector<int>& out, bool& empty) -> coring::task<> {
        coring::channel<int> ch(4);
        CHECK(ch.capacity() == 4);
        for (int i = 0; i < 4; ++i) co_await ch.send(i);
        CHECK(ch.size() == 4);
        ch.close();
        CHECK(ch.closed());
        while (std::optional<int> v = co_await ch.receive()) out.push_back(*v);
        std::optional<int> after = co_await ch.receive();
        empty = !after.has_value();
    }(received, empty_after));
    CHECK(received == std::vector<int>{0, 1, 2, 3});
    CHECK(empty_after);
}

TEST_CASE("channel - a capacity of 0 is refused", "[channel]") {
    CHECK_THROWS_AS(coring::channel<int>(0), std::invalid_argument);
}

TEST_CASE("channel - send on a closed channel throws channel_closed", "[channel]") {
    bool threw = false;
    std::string what;
    coring::run([](bool& out, std::string& message) -> coring::task<> {
        coring::channel<std::string> ch(1);
        ch.close();
        try {
            co_await ch.send("late");
        } catch (const coring::channel_closed& e) {
            out = true;
            message = e.what();
        }
    }(threw, what));
    CHECK(threw);
    CHECK(what.find("closed") != std::string::npos);
}

TEST_CASE("channel - a sender waits while the channel is full, and move-only values pass", "[channel]") {
    std::vector<std::string> order;
    coring::run([](std::vector<std::string>& log) -> coring::task<> {
        coring::channel<std::unique_ptr<int>> ch(1);
        co_await ch.send(std::make_unique<int>(1));
        auto second = coring::get_running_loop().create_task([](coring::channel<std::unique_ptr<int>>& c, std::vector<std::string>& l) -> coring::task<> {
            l.push_back("sending 2");
            co_await c.send(std::make_unique<int>(2));
            l.push_back("sent 2");
        }(ch, log));
        co_await coring::sleep(10ms);
        log.push_back("receiving");
        std::optional<std::unique_ptr<int>> first = co_await ch.receive();
        log.push_back("got " + std::to_string(**first));
        co_await second;
        std::optional<std::unique_ptr<int>> next = co_await ch.receive();
        log.push_back("got " + std::to_string(**next));
    }(order));
    CHECK(order == std::vector<std::string>{"sending 2", "receiving", "got 1", "sent 2", "got 2"});
}

TEST_CASE("channel - close wakes waiting senders with channel_closed and receivers with nothing", "[channel]") {
    struct {
        int senders_refused = 0;
        int receivers_empty = 0;
        std::optional<int> buffered;
    } seen;
    coring::run([](decltype(seen)& out) -> coring::task<> {
        coring::channel<int> full(1);
        coring::channel<int> empty(1);
        co_await full.send(0);
        auto& loop = coring::get_running_loop();
        std::vector<coring::task_handle<bool>> senders;
        std::vector<coring::task_handle<bool>> receivers;
        for (int i = 0; i < 3; ++i) {
            senders.push_back(loop.create_task(coring_test::throws<coring::channel_closed>(full.send(i + 1))));
            receivers.push_back(loop.create_task([](coring::channel<int>& c) -> coring::task<bool> { co_return !(co_await c.receive()).has_value(); }(empty)));
        }
        co_await coring::sleep(5ms);
        full.close();
        empty.close();
        for (auto& s : senders) out.senders_refused += (co_await s) ? 1 : 0;
        for (auto& r : receivers) out.receivers_empty += (co_await r) ? 1 : 0;
        out.buffered = co_await full.receive();  // what was buffered before the close
    }(seen));
    CHECK(seen.senders_refused == 3);
    CHECK(seen.receivers_empty == 3);
    CHECK(seen.buffered == std::optional<int>(0));
}

TEST_CASE("channel - cancelled waiters take nothing with them", "[channel]") {
    std::vector<int> received;
    struct {
        bool sender_cancelled = false;
        bool receiver_cancelled = false;
    } seen;
    coring::run([](std::vector<int>& out, decltype(seen)& flags) -> coring::task<> {
        auto& loop = coring::get_running_loop();
        coring::channel<int> ch(1);
        co_await ch.send(1);
        // A sender waiting with 2 is cancelled: 2 is never sent.
        auto sender = loop.create_task(coring_test::throws<coring::cancelled_error>(ch.send(2)));
        co_await coring::sleep(2ms);
        sender.cancel();
        flags.sender_cancelled = co_await sender;
        std::optional<int> first = co_await ch.receive();
        out.push_back(first.value_or(-1));
        // A receiver waiting on the empty channel is cancelled: the next value is not its.
        auto receiver = loop.create_task(coring_test::throws<coring::cancelled_error>(ch.receive()));
        co_await coring::sleep(2ms);
        receiver.cancel();
        flags.receiver_cancelled = co_await receiver;
        co_await ch.send(3);
        ch.close();
        while (std::optional<int> v = co_await ch.receive()) out.push_back(*v);
    }(received, seen));
    CHECK(seen.sender_cancelled);
    CHECK(seen.receiver_cancelled);
    CHECK(received == std::vector<int>{1, 3});
}

TEST_CASE("channel - a woken receiver cancelled before it runs passes the value to the next", "[channel]") {
    struct {
        bool first_cancelled = false;
        std::optional<int> second;
    } seen;
    coring::run([](decltype(seen)& out) -> coring::task<> {
        auto& loop = coring::get_running_loop();
        coring::channel<int> ch(4);
        auto first = loop.create_task(coring_test::throws<coring::cancelled_error>(ch.receive()));
        auto second = loop.create_task([](coring::channel<int>& c) -> coring::task<std::optional<int>> { co_return co_await c.receive(); }(ch));
        co_await coring::sleep(2ms);  // both wait, first in line
        co_await ch.send(7);          // wakes the first receiver: it will take 7 when it runs
        first.cancel();               // before it runs: it takes nothing, and wakes the second
        out.first_cancelled = co_await first;
        out.second = co_await second;
    }(seen));
    CHECK(seen.first_cancelled);
    CHECK(seen.second == std::optional<int>(7));
}

namespace {

// Loop `index` of a group: the first `senders` loops send `per_sender` items each, then the last
// sender to finish closes the channel; the others receive until it is closed and drained.
coring::task<receiver_log> sender_or_receiver(coring::channel<item>& ch, std::size_t index, std::size_t senders, std::uint32_t per_sender,
                                              std::atomic<std::size_t>& senders_left) {
    receiver_log log;
    if (index < senders) {
        for (std::uint32_t k = 0; k < per_sender; ++k) co_await ch.send(item{static_cast<std::uint32_t>(index), k});
        if (senders_left.fetch_sub(1) == 1) ch.close();
        co_return log;
    }
    std::vector<std::int64_t> last(senders, -1);
    while (std::optional<item> got = co_await ch.receive()) {
        if (static_cast<std::int64_t>(got->sequence) <= last[got->sender]) log.in_order = false;
        last[got->sender] = got->sequence;
        ++log.count;
        log.sum += got->sequence;
    }
    co_return log;
}

}  // namespace

TEST_CASE("channel - two senders and two receivers on four loops: a million items, none lost, FIFO per sender", "[channel]") {
    constexpr std::uint32_t per_sender = 500'000;
    const bool msg_ring = GENERATE(true, false);  // messages through the kernel, or the inboxes
    INFO("msg_ring: " << msg_ring);
    coring::loop_group group({.threads = 4, .loop = {.msg_ring = msg_ring}});
    coring::channel<item> ch(256);
    std::atomic<std::size_t> senders_left{2};
    const std::vector<receiver_log> logs =
        group.run([&](std::size_t i) { return sender_or_receiver(ch, i, 2, per_sender, senders_left); });
    std::uint64_t count = 0;
    std::uint64_t sum = 0;
    for (std::size_t i = 2; i < 4; ++i) {
        CHECK(logs[i].in_order);
        CHECK(logs[i].count > 0);  // both receivers took part
        count += logs[i].count;
        sum += logs[i].sum;
    }
    CHECK(count == 2ull * per_sender);
    CHECK(sum == 2ull * (static_cast<std::uint64_t>(per_sender) * (per_sender - 1) / 2));
}

namespace {

// Sends (or receives) under random tiny timeouts, so that cancellations race with hand-offs on
// other threads; a timed-out send is retried with the same value.
coring::task<receiver_log> impatient(coring::channel<std::uint32_t>& ch, std::size_t index, std::uint32_t per_sender,
                                     std::atomic<std::size_t>& senders_left, std::uint64_t& timeouts) {
    std::mt19937 random(static_cast<unsigned>(index) + 1);
    std::uniform_int_distribution<int> micros(0, 40);
    receiver_log log;
    if (index < 2) {
        for (std::uint32_t k = 0; k < per_sender;) {
            try {
                co_await coring::wait_for(ch.send(k), std::chrono::microseconds(micros(random)));
                ++k;
            } catch (const coring::timeout_error&) {
                ++timeouts;
            }
        }
        if (senders_left.fetch_sub(1) == 1) ch.close();
        co_return log;
    }
    for (;;) {
        std::optional<std::uint32_t> got;
        try {
            got = co_await coring::wait_for(ch.receive(), std::chrono::microseconds(micros(random)));
        } catch (const coring::timeout_error&) {
            ++timeouts;
            continue;
        }
        if (!got) break;
        ++log.count;
        log.sum += *got;
    }
    co_return log;
}

}  // namespace

TEST_CASE("channel - send and receive cancelled at random across loops: nothing lost or doubled", "[channel]") {
    constexpr std::uint32_t per_sender = 20'000;
    const bool msg_ring = GENERATE(true, false);
    INFO("msg_ring: " << msg_ring);
    coring::loop_group group({.threads = 4, .loop = {.msg_ring = msg_ring}});
    coring::channel<std::uint32_t> ch(8);
    std::atomic<std::size_t> senders_left{2};
    std::vector<std::uint64_t> timeouts(4, 0);
    const std::vector<receiver_log> logs =
        group.run([&](std::size_t i) { return impatient(ch, i, per_sender, senders_left, timeouts[i]); });
    std::uint64_t total_timeouts = 0;
    for (std::uint64_t t : timeouts) total_timeouts += t;
    CHECK(total_timeouts > 0);  // the race was run
    CHECK(logs[2].count + logs[3].count == 2ull * per_sender);
    CHECK(logs[2].sum + logs[3].sum == 2ull * (static_cast<std::uint64_t>(per_sender) * (per_sender - 1) / 2));
}

TEST_CASE("channel - close from another thread wakes a receiver waiting on a loop", "[channel]") {
    coring::loop_group group({.threads = 1});
    coring::channel<int> ch(1);
    std::atomic<bool> waiting{false};
    std::thread closer([&] {
        while (!waiting) std::this_thread::sleep_for(1ms);
        std::this_thread::sleep_for(5ms);
        ch.close();
    });
    const std::vector<bool> empty = group.run([&](std::size_t) -> coring::task<bool> {
        waiting = true;
        co_return !(co_await ch.receive()).has_value();
    });
    closer.join();
    CHECK(empty == std::vector<bool>{true});
}
