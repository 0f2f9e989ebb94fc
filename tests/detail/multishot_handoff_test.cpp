// Tests of coring/detail/multishot_handoff.hpp on its own, with a toy state of int results:
// results go to waiters first come first served, or are queued; a waiter handed a result and
// cancelled before it ran gives it back (to the next waiter, else to the front of the queue);
// detaching discards what is queued and wakes every waiter. io::multishot_accept and
// io::multishot_recv are built on it (tests/io/multishot_test.cpp).
#include <coring/detail/multishot_handoff.hpp>
#include <coring/run.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <chrono>
#include <coroutine>
#include <vector>

using namespace std::chrono_literals;
using coring::detail::multishot_handoff;
using coring::detail::multishot_waiter;

namespace {

constexpr int detached_value = coring::detail::pinned_by_waiters<struct toy_state>::detached_result;

/// Results are ints; negative ones are final (as an end of stream is); discarding records them.
struct toy_state : multishot_handoff<toy_state, int> {
    std::vector<int> discarded;
    void discard(int& result) noexcept { discarded.push_back(result); }
    static bool is_final(int result) noexcept { return result < 0 && result != detached_value; }
    void free_if_unused() noexcept {}
};

/// next(): a queued result at once, else the next one handed over.
class toy_waiter final : public multishot_waiter<toy_state, int> {
public:
    explicit toy_waiter(toy_state& state) noexcept : multishot_waiter(operations_, &state) {}

    bool await_ready() noexcept {
        if (!m_state->has_queued()) return false;
        m_item = m_state->pop_queued();
        return true;
    }
    bool await_suspend(std::coroutine_handle<> frame) {
        if (!begin_suspend(frame)) return false;
        wait_for_result();
        arm();
        return true;
    }
    int await_resume() const {
        throw_if_cancelled();
        return m_item;
    }

private:
    static constexpr operations operations_{&resume_frame, &on_cancel};
};

/// Awaits one result into `out`; records a cancellation as `cancelled`.
constexpr int cancelled = -1000;
coring::task<> take_one(toy_state& state, int& out) {
    try {
        out = co_await toy_waiter(state);
    } catch (const coring::cancelled_error&) {
        out = cancelled;
    }
}

/// Lets every ready task run until it suspends again.
coring::task<> settle() {
    for (int i = 0; i < 3; ++i) co_await coring::sleep(0s);
}

}  // namespace

TEST_CASE("multishot_handoff - results go to the waiters in the order they began waiting", "[detail][multishot_handoff]") {
    coring::run([]() -> coring::task<> {
        toy_state state;
        int a = 0, b = 0;
        auto ta = coring::create_task(take_one(state, a));
        auto tb = coring::create_task(take_one(state, b));
        co_await settle();
        CHECK(state.deliver(1));
        CHECK(state.deliver(2));
        CHECK_FALSE(state.has_queued());
        co_await ta;
        co_await tb;
        CHECK(a == 1);
        CHECK(b == 2);
    }(), coring_test::virtual_clock);
}

TEST_CASE("multishot_handoff - results that arrive while nobody waits are queued in order", "[detail][multishot_handoff]") {
    coring::run([]() -> coring::task<> {
        toy_state state;
        state.deliver(1);
        state.deliver(2);
        CHECK(state.queued() == 2);
        int a = 0, b = 0;
        co_await take_one(state, a);
        co_await take_one(state, b);
        CHECK(a == 1);
        CHECK(b == 2);
    }(), coring_test::virtual_clock);
}

TEST_CASE("multishot_handoff - a result handed to a waiter cancelled before it ran goes to the next waiter", "[detail][multishot_handoff][cancel]") {
    coring::run([]() -> coring::task<> {
        toy_state state;
        int a = 0, b = 0;
        auto ta = coring::create_task(take_one(state, a));
        auto tb = coring::create_task(take_one(state, b));
        co_await settle();
        state.deliver(7);  // handed to a, which has not run yet
        ta.cancel();
        co_await ta;
        co_await tb;
        CHECK(a == cancelled);
        CHECK(b == 7);
        CHECK(state.discarded.empty());
    }(), coring_test::virtual_clock);
}

TEST_CASE("multishot_handoff - with no other waiter, a given-back result returns to the front of the queue", "[detail][multishot_handoff][cancel]") {
    coring::run([]() -> coring::task<> {
        toy_state state;
        int a = 0;
        auto ta = coring::create_task(take_one(state, a));
        co_await settle();
        state.deliver(7);  // handed to a
        state.deliver(8);  // queued
        ta.cancel();
        co_await ta;
        CHECK(a == cancelled);
        REQUIRE(state.queued() == 2);
        CHECK(state.pop_queued() == 7);
        CHECK(state.pop_queued() == 8);
    }(), coring_test::virtual_clock);
}

TEST_CASE("multishot_handoff - a final result given back is not queued", "[detail][multishot_handoff][cancel]") {
    coring::run([]() -> coring::task<> {
        toy_state state;
        int a = 0;
        auto ta = coring::create_task(take_one(state, a));
        co_await settle();
        state.deliver(-5);  // the end, handed to a
        ta.cancel();
        co_await ta;
        CHECK(a == cancelled);
        CHECK_FALSE(state.has_queued());
        CHECK(state.discarded.empty());
    }(), coring_test::virtual_clock);
}

TEST_CASE("multishot_handoff - detach discards the queue and hands every waiter the detached result", "[detail][multishot_handoff]") {
    coring::run([]() -> coring::task<> {
        toy_state queued_state;
        queued_state.deliver(1);
        queued_state.deliver(2);
        queued_state.detach_waiters(detached_value);
        CHECK(queued_state.discarded == std::vector<int>{1, 2});
        CHECK_FALSE(queued_state.has_queued());

        toy_state waited_state;
        int a = 0, b = 0;
        auto ta = coring::create_task(take_one(waited_state, a));
        auto tb = coring::create_task(take_one(waited_state, b));
        co_await settle();
        waited_state.detach_waiters(detached_value);
        co_await ta;
        co_await tb;
        CHECK(a == detached_value);
        CHECK(b == detached_value);
        CHECK(waited_state.detached());
    }(), coring_test::virtual_clock);
}

TEST_CASE("multishot_handoff - after detach, a result given back is discarded", "[detail][multishot_handoff][cancel]") {
    coring::run([]() -> coring::task<> {
        toy_state state;
        int a = 0;
        auto ta = coring::create_task(take_one(state, a));
        co_await settle();
        state.deliver(7);  // handed to a
        state.detach_waiters(detached_value);
        ta.cancel();
        co_await ta;
        CHECK(a == cancelled);
        CHECK(state.discarded == std::vector<int>{7});
        CHECK_FALSE(state.has_queued());
    }(), coring_test::virtual_clock);
}
