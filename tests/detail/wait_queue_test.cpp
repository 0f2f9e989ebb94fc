// Tests of coring/detail/wait_queue.hpp: the FIFO of sync waiters that every primitive owns,
// driven directly through a minimal primitive written here (it hands ints to its waiters one at
// a time): first-in first-out grants, the split between granted and waiting waiters,
// cancellation of a waiting and of a granted waiter, long hand-off chains, and a primitive
// destroyed while waiters wait.
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/wait_queue.hpp>

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/run.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/child_process.hpp"
#include "support/helpers.hpp"
#include "sync/stack_span.hpp"

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdio>
#include <initializer_list>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::virtual_clock;
using coring::detail::ready_node;
using coring::detail::sync_waiter;
using coring::detail::wait_queue;

namespace {

inline constexpr char owner_name[] = "test::handoff_owner";

/// A minimal primitive on a wait_queue: hand(item) gives the item to the waiter that has waited
/// longest, or keeps it when nobody waits. As a real primitive does, it reports waiters left
/// behind when it is destroyed.
struct handoff_owner {
    handoff_owner() = default;
    handoff_owner(const handoff_owner&) = delete;
    handoff_owner& operator=(const handoff_owner&) = delete;
    ~handoff_owner() { waiters.abandon(owner_name); }

    void hand(int item) noexcept;

    wait_queue waiters;
    std::vector<int> kept;  // items handed with nobody waiting
};

/// co_await item_waiter(owner, id): waits for an item of `owner`. Cancelled while it waits, it
/// takes nothing; cancelled after it was handed an item but before it resumed, it passes the
/// item on to the next waiter (or back to the owner).
class item_waiter final : public sync_waiter {
public:
    item_waiter(handoff_owner& owner, int id) noexcept : m_owner(&owner), m_id(id) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> frame) { return suspend_on(m_owner->waiters, frame, operations_); }
    int await_resume() {
        finish_wait(owner_name);
        return m_item;
    }

    [[nodiscard]] int id() const noexcept { return m_id; }
    void give(int item) noexcept { m_item = item; }

private:
    static void on_cancel(ready_node* node) noexcept {
        auto& self = from_node<item_waiter>(node);
        self.cancel_wait([&self] { self.m_owner->hand(self.m_item); });
    }
    static constexpr operations operations_{&resume_frame, &on_cancel};

    handoff_owner* m_owner;
    int m_id;
    int m_item = -1;
};

void handoff_owner::hand(int item) noexcept {
    if (item_waiter* first = waiters.front<item_waiter>()) {
        first->give(item);
        waiters.grant(*first);
    } else {
        kept.push_back(item);
    }
}

/// Waits for one item; logs its id when it resumes.
coring::task<int> take_one(handoff_owner& owner, int id, std::vector<int>& resumed) {
    const int item = co_await item_waiter(owner, id);
    resumed.push_back(id);
    co_return item;
}

/// Waits for one item and expects the owner to be destroyed instead: the error's text, or what
/// happened otherwise.
coring::task<std::string> expect_orphaned(handoff_owner& owner, int id) {
    std::string outcome;
    try {
        const int item = co_await item_waiter(owner, id);
        outcome = "took " + std::to_string(item);
    } catch (const coring::invalid_state_error& e) {
        outcome = e.what();
    }
    co_return outcome;
}

/// Starts take_one for ids 0 to n - 1, in that order.
std::vector<coring::task_handle<int>> start_takers(handoff_owner& owner, int n, std::vector<int>& resumed) {
    std::vector<coring::task_handle<int>> tasks;
    for (int id = 0; id < n; ++id) tasks.push_back(coring::create_task(take_one(owner, id, resumed)));
    return tasks;
}

constexpr const char* orphaned_text = "coring: the test::handoff_owner this task waited on was destroyed while it waited";

}  // namespace

TEST_CASE("wait_queue - waiters are granted first-in first-out", "[detail][wait_queue]") {
    coring::run(
        []() -> coring::task<> {
            handoff_owner owner;
            std::vector<int> resumed;
            std::vector<coring::task_handle<int>> tasks;
            for (int id = 0; id < 5; ++id) tasks.push_back(coring::create_task(take_one(owner, id, resumed)));
            co_await coring::sleep(0s);
            REQUIRE(owner.waiters.waiting_count() == 5);
            owner.hand(100);
            co_await coring::sleep(0s);  // one at a time...
            owner.hand(101);
            owner.hand(102);  // ...and several in one step
            co_await coring::sleep(0s);
            owner.hand(103);
            owner.hand(104);
            for (int id = 0; id < 5; ++id) {
                const int item = co_await tasks[static_cast<std::size_t>(id)];
                CHECK(item == 100 + id);
            }
            CHECK(resumed == std::vector<int>{0, 1, 2, 3, 4});
            CHECK(owner.kept.empty());
            CHECK(owner.waiters.idle());
        }(),
        virtual_clock);
}

TEST_CASE("wait_queue - a new queue is empty and idle, with no front", "[detail][wait_queue]") {
    handoff_owner owner;
    wait_queue& q = owner.waiters;
    CHECK(q.empty());
    CHECK(q.idle());
    CHECK(q.front() == nullptr);
}

TEST_CASE("wait_queue - a grant moves the split: front() is the first waiter not granted", "[detail][wait_queue]") {
    coring::run(
        []() -> coring::task<> {
            handoff_owner owner;
            wait_queue& q = owner.waiters;
            std::vector<int> resumed;
            auto tasks = start_takers(owner, 5, resumed);
            co_await coring::sleep(0s);
            REQUIRE(q.front<item_waiter>() != nullptr);
            CHECK(q.front<item_waiter>()->id() == 0);
            owner.hand(10);
            owner.hand(11);
            CHECK(q.front<item_waiter>()->id() == 2);
            CHECK(q.waiting_count() == 3);
            CHECK(q.granted_count() == 2);
            for (int item = 12; item < 15; ++item) owner.hand(item);
            for (auto& t : tasks) (void)co_await t;
        }(),
        virtual_clock);
}

TEST_CASE("wait_queue - a granted waiter stays linked until it resumes", "[detail][wait_queue]") {
    coring::run(
        []() -> coring::task<> {
            handoff_owner owner;
            wait_queue& q = owner.waiters;
            std::vector<int> resumed;
            auto tasks = start_takers(owner, 5, resumed);
            co_await coring::sleep(0s);
            owner.hand(10);
            owner.hand(11);
            CHECK(q.pending_count() == 5);  // still linked: they have not resumed
            CHECK_FALSE(q.empty());
            CHECK(resumed.empty());
            co_await coring::sleep(0s);  // the granted ones resume and leave
            CHECK(resumed == std::vector<int>{0, 1});
            CHECK(q.granted_count() == 0);
            CHECK(q.pending_count() == 3);
            for (int item = 12; item < 15; ++item) owner.hand(item);
            for (auto& t : tasks) (void)co_await t;
        }(),
        virtual_clock);
}

TEST_CASE("wait_queue - grant_all grants every waiting waiter, in order", "[detail][wait_queue]") {
    coring::run(
        []() -> coring::task<> {
            handoff_owner owner;
            wait_queue& q = owner.waiters;
            std::vector<int> resumed;
            auto tasks = start_takers(owner, 5, resumed);
            co_await coring::sleep(0s);
            q.grant_all<item_waiter>([](item_waiter& w) { w.give(20 + w.id()); });
            CHECK(q.empty());       // nobody waits...
            CHECK_FALSE(q.idle());  // ...but all are granted and queued to resume
            CHECK(q.granted_count() == 5);
            CHECK(q.waiting_count() == 0);
            CHECK(q.front() == nullptr);
            co_await coring::sleep(0s);
            CHECK(q.idle());
            CHECK(resumed == std::vector<int>{0, 1, 2, 3, 4});
            std::vector<int> items;
            for (auto& t : tasks) {
                const int item = co_await t;
                items.push_back(item);
            }
            CHECK(items == std::vector<int>{20, 21, 22, 23, 24});
        }(),
        virtual_clock);
}

TEST_CASE("wait_queue - a waiter popped off one queue can be granted on another", "[detail][wait_queue]") {
    coring::run(
        []() -> coring::task<> {
            handoff_owner first, second;
            std::vector<int> resumed;
            auto a = coring::create_task(take_one(first, 0, resumed));
            auto b = coring::create_task(take_one(first, 1, resumed));
            co_await coring::sleep(0s);
            sync_waiter* moved = first.waiters.pop_front();
            REQUIRE(moved != nullptr);
            CHECK(static_cast<item_waiter*>(moved)->id() == 0);
            CHECK(first.waiters.pending_count() == 1);  // off the list, not granted
            CHECK(first.waiters.front<item_waiter>()->id() == 1);
            co_await coring::sleep(0s);
            CHECK(resumed.empty());  // nobody woke it

            static_cast<item_waiter*>(moved)->give(7);
            second.waiters.grant(*moved);  // on no list: it joins the granted ones of `second`
            CHECK(second.waiters.granted_count() == 1);
            CHECK(second.waiters.empty());
            CHECK_FALSE(second.waiters.idle());
            const int va = co_await a;
            CHECK(va == 7);
            CHECK(second.waiters.idle());  // it left the list it was granted on

            first.hand(8);
            const int vb = co_await b;
            CHECK(vb == 8);
            CHECK(resumed == std::vector<int>{0, 1});
        }(),
        virtual_clock);
}

TEST_CASE("wait_queue - a cancelled waiting waiter is unlinked and takes nothing", "[detail][wait_queue][cancel]") {
    coring::run(
        []() -> coring::task<> {
            handoff_owner owner;
            wait_queue& q = owner.waiters;
            std::vector<int> resumed;
            std::vector<coring::task_handle<int>> tasks;
            for (int id = 0; id < 4; ++id) tasks.push_back(coring::create_task(take_one(owner, id, resumed)));
            co_await coring::sleep(0s);

            CHECK(tasks[2].cancel());  // a middle one
            CHECK(q.waiting_count() == 3);
            CHECK(q.front<item_waiter>()->id() == 0);
            CHECK(tasks[0].cancel());  // the first: the split moves
            CHECK(q.waiting_count() == 2);
            CHECK(q.front<item_waiter>()->id() == 1);
            CHECK(tasks[3].cancel());  // the last
            CHECK(q.waiting_count() == 1);
            CHECK(q.granted_count() == 0);  // nothing was granted to them

            owner.hand(50);
            const int v = co_await tasks[1];
            CHECK(v == 50);
            for (std::size_t i : {0u, 2u, 3u}) {
                const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(tasks[i]);
                CHECK(cancelled);
            }
            CHECK(resumed == std::vector<int>{1});
            CHECK(owner.kept.empty());
            CHECK(q.idle());
        }(),
        virtual_clock);
}

TEST_CASE("wait_queue - a granted waiter cancelled before it resumes passes its item to the next waiter", "[detail][wait_queue][cancel]") {
    coring::run(
        []() -> coring::task<> {
            handoff_owner owner;
            wait_queue& q = owner.waiters;
            std::vector<int> resumed;
            auto a = coring::create_task(take_one(owner, 0, resumed));
            auto b = coring::create_task(take_one(owner, 1, resumed));
            auto c = coring::create_task(take_one(owner, 2, resumed));
            co_await coring::sleep(0s);

            owner.hand(10);  // to a, which has not resumed yet
            CHECK(a.cancel());
            CHECK(q.granted_count() == 1);  // now b's
            CHECK(q.waiting_count() == 1);
            CHECK(q.front<item_waiter>()->id() == 2);
            const bool a_cancelled = co_await coring_test::throws<coring::cancelled_error>(a);
            CHECK(a_cancelled);
            const int vb = co_await b;
            CHECK(vb == 10);

            owner.hand(20);  // to c, the last one: cancelled, it gives the item back
            CHECK(c.cancel());
            CHECK(q.idle());
            CHECK(owner.kept == std::vector<int>{20});
            const bool c_cancelled = co_await coring_test::throws<coring::cancelled_error>(c);
            CHECK(c_cancelled);
            CHECK(resumed == std::vector<int>{1});
        }(),
        virtual_clock);
}

TEST_CASE("wait_queue - 10,000 waiters are handed off in order at a flat stack depth", "[detail][wait_queue][stack]") {
    coring::run(
        []() -> coring::task<> {
            constexpr int n = 10'000;
            auto relay = [](handoff_owner& owner, int id, std::vector<int>& order, bool& in_order, coring_test::stack_span& span) -> coring::task<> {
                const int item = co_await item_waiter(owner, id);
                span.note();
                if (item != id) in_order = false;
                order.push_back(id);
                owner.hand(item + 1);  // to the next waiter
            };
            handoff_owner owner;
            std::vector<int> order;
            order.reserve(n);
            bool in_order = true;
            coring_test::stack_span span;
            std::vector<coring::task_handle<>> tasks;
            tasks.reserve(n);
            for (int id = 0; id < n; ++id) tasks.push_back(coring::create_task(relay(owner, id, order, in_order, span)));
            co_await coring::sleep(0s);
            REQUIRE(owner.waiters.waiting_count() == static_cast<std::size_t>(n));
            owner.hand(0);
            for (auto& t : tasks) co_await t;
            CHECK(in_order);
            REQUIRE(order.size() == static_cast<std::size_t>(n));
            bool ids_in_order = true;
            for (int i = 0; i < n; ++i) ids_in_order = ids_in_order && order[static_cast<std::size_t>(i)] == i;
            CHECK(ids_in_order);
            CHECK(owner.kept == std::vector<int>{n});  // the last hand found nobody waiting
            CHECK(owner.waiters.idle());
            CHECK(span.bytes() < coring_test::stack_span::flat_limit);
        }(),
        virtual_clock);
}

TEST_CASE("wait_queue - orphan_all detaches every waiter: waiting and granted ones resume with invalid_state_error", "[detail][wait_queue]") {
    coring::run(
        []() -> coring::task<> {
            handoff_owner owner;
            auto granted = coring::create_task(expect_orphaned(owner, 0));
            auto waiting1 = coring::create_task(expect_orphaned(owner, 1));
            auto waiting2 = coring::create_task(expect_orphaned(owner, 2));
            co_await coring::sleep(0s);
            owner.hand(5);  // granted, queued to resume
            REQUIRE(owner.waiters.granted_count() == 1);
            REQUIRE(owner.waiters.waiting_count() == 2);
            owner.waiters.orphan_all();  // what abandon() does after its report
            CHECK(owner.waiters.idle());
            CHECK(owner.waiters.empty());
            CHECK(owner.waiters.pending_count() == 0);
            const std::string g = co_await granted;
            const std::string w1 = co_await waiting1;
            const std::string w2 = co_await waiting2;
            CHECK(g == orphaned_text);  // the item it was handed goes with the primitive
            CHECK(w1 == orphaned_text);
            CHECK(w2 == orphaned_text);
        }(),
        virtual_clock);
}

TEST_CASE("wait_queue - a cancel of an orphaned waiter stays pending; it resumes with invalid_state_error", "[detail][wait_queue][cancel]") {
    coring::run(
        []() -> coring::task<> {
            auto body = [](handoff_owner& owner, std::vector<std::string>& log) -> coring::task<> {
                try {
                    (void)co_await item_waiter(owner, 0);
                    log.push_back("took an item");
                } catch (const coring::invalid_state_error&) {
                    log.push_back("orphaned");
                }
                co_await coring::sleep(0s);  // the request is delivered here
                log.push_back("not reached");
            };
            handoff_owner owner;
            std::vector<std::string> log;
            auto h = coring::create_task(body(owner, log));
            co_await coring::sleep(0s);
            owner.waiters.orphan_all();
            CHECK(h.cancel());
            CHECK(h.native_state()->cancel_requested());  // the waiter left it pending
            const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
            CHECK(cancelled);
            CHECK(log == std::vector<std::string>{"orphaned"});
        }(),
        virtual_clock);
}

TEST_CASE("wait_queue - abandon reports the waiters left behind; asserts in debug builds, orphans them otherwise", "[detail][wait_queue]") {
    auto [status, text] = coring_test::run_in_child([] {
        std::vector<std::string> outcomes;
        coring::run([](std::vector<std::string>& out) -> coring::task<> {
            auto* owner = new handoff_owner;
            auto granted = coring::create_task(expect_orphaned(*owner, 0));
            auto waiting = coring::create_task(expect_orphaned(*owner, 1));
            co_await coring::sleep(0s);
            owner->hand(1);
            delete owner;  // the bug: one task granted and one waiting
            const std::string first = co_await granted;
            const std::string second = co_await waiting;
            out.push_back(first);
            out.push_back(second);
        }(outcomes));
        for (const std::string& o : outcomes) std::printf("outcome: %s\n", o.c_str());
    });
    INFO(text);
    CHECK(text.find("coring: error: a test::handoff_owner was destroyed while 2 tasks still waited on it") != std::string::npos);
    CHECK(coring_test::stopped_by_assertion_or_exited_cleanly(status));
#ifdef NDEBUG
    const std::string expected = std::string("outcome: ") + orphaned_text + "\n";
    CHECK(text.find(expected + expected) != std::string::npos);
#endif
}
