// CPython's own tests of asyncio.Queue, LifoQueue and PriorityQueue (Lib/test/test_asyncio/
// test_queues.py at 15b059106490, the 3.13 file with shutdown), translated case by case into
// coring. They pin down FIFO hand-offs between getters and putters, that a cancelled getter or
// putter loses and duplicates nothing and is not left registered, join()/task_done(), and
// Python 3.13's shutdown.
//
// Left out, as tests of Python-only things:
//   QueueBasicTests.test_repr, test_str and the mixins' test_format (repr(), str(), _format());
//   QueueBasicTests.test_generic_alias (asyncio.Queue[int] is a types.GenericAlias);
//   QueuePutTests.test_float_maxsize (maxsize=1.3: coring's maxsize is a std::size_t).
// The mixin classes (QueueJoinTests, LifoQueueJoinTests, PriorityQueueJoinTests and the
// three *ShutdownTests) are one TEST_CASE per test, with a SECTION per queue class.
//
// Mapping: Queue / LifoQueue / PriorityQueue -> coring::queue / lifo_queue / priority_queue;
// qsize() -> size(); QueueEmpty / QueueFull / QueueShutDown -> queue_empty / queue_full /
// queue_shut_down; task_done() too often (ValueError) -> invalid_state_error (docs/api.md,
// Differences: queues); CancelledError -> cancelled_error; TimeoutError -> timeout_error;
// `async with asyncio.TaskGroup() as tg` -> a coring::task_group joined at the end of the block.
// `asyncio.sleep(0)` is `co_await coring::sleep(0s)`: one loop iteration. Assertions on the
// private `_getters` / `_putters` lists are replaced by what a left-over waiter would change:
// who receives the next item, or whose item enters the queue next.
//
// The loop runs on virtual time (CPython's call_later(0.01, ...) and wait_for(..., 0.1) take no
// real time); only the order of events matters here.
#include <coring/coring.hpp>
#include <coring/testing/catch2.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <chrono>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using coring_test::throws;

namespace {

// IsolatedAsyncioTestCase's loop, on virtual time (see the header comment).
constexpr coring::testing::test_options test_loop{.loop = coring_test::virtual_clock};

// `asyncio.create_task(q.get())`, `create_task(q.put(item))`, `create_task(q.join())`.
template <class Queue>
coring::task<typename Queue::value_type> get(Queue& q) {
    co_return co_await q.get();
}
template <class Queue>
coring::task<> put(Queue& q, typename Queue::value_type item) {
    co_await q.put(std::move(item));
}
template <class Queue>
coring::task<> join(Queue& q) {
    co_await q.join();
}

// The mixins' q_class: runs `test` (a callable taking std::type_identity<Queue>) once per queue
// class, each in its own SECTION.
template <class T, class Test>
void for_each_q_class(Test test) {
    SECTION("Queue") { test(std::type_identity<coring::queue<T>>{}); }
    SECTION("LifoQueue") { test(std::type_identity<coring::lifo_queue<T>>{}); }
    SECTION("PriorityQueue") { test(std::type_identity<coring::priority_queue<T>>{}); }
}

}  // namespace

// ============================================================================ QueueBasicTests

TEST_CASE("test_empty: empty until a put, empty again after the get", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q;
            CHECK(q.empty());
            co_await q.put(1);
            CHECK_FALSE(q.empty());
            const int got = co_await q.get();
            CHECK(got == 1);
            CHECK(q.empty());
        }(),
        test_loop);
}

TEST_CASE("test_full: an unbounded queue is never full; a queue of 1 with an item is", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> unbounded;
            CHECK_FALSE(unbounded.full());

            coring::queue<int> q(1);
            co_await q.put(1);
            CHECK(q.full());
        }(),
        test_loop);
}

TEST_CASE("test_order: a Queue is first in, first out", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q;
            for (int i : {1, 3, 2}) co_await q.put(i);
            std::vector<int> items;
            for (int n = 0; n < 3; ++n) items.push_back(co_await q.get());
            CHECK(items == std::vector<int>{1, 3, 2});
        }(),
        test_loop);
}

TEST_CASE("test_maxsize: a putter blocks at maxsize and resumes after a get", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q(2);
            CHECK(q.maxsize() == 2);
            std::vector<int> have_been_put;
            auto putter = [&]() -> coring::task<bool> {
                for (int i = 0; i < 3; ++i) {
                    co_await q.put(i);
                    have_been_put.push_back(i);
                }
                co_return true;
            };
            auto t = coring::create_task(putter());
            for (int i = 0; i < 2; ++i) co_await coring::sleep(0s);

            // The putter is blocked after putting two items.
            CHECK(have_been_put == std::vector<int>{0, 1});
            const int first = co_await q.get();
            CHECK(first == 0);

            // Let the putter resume and put the last item.
            co_await coring::sleep(0s);
            CHECK(have_been_put == std::vector<int>{0, 1, 2});
            const int second = co_await q.get();
            CHECK(second == 1);
            const int third = co_await q.get();
            CHECK(third == 2);

            REQUIRE(t.done());
            CHECK(t.result());
        }(),
        test_loop);
}

// ============================================================================ QueueGetTests

TEST_CASE("test_blocking_get: get takes an item that is there", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q;
            q.put_nowait(1);
            const int got = co_await q.get();
            CHECK(got == 1);
        }(),
        test_loop);
}

// CPython appends a bare future to the private _putters and checks that get() completes it. Here
// a real putter waits: the get makes room, and the putter puts its item when it resumes on the
// next iteration.
TEST_CASE("test_get_with_putters: a get from a full queue wakes the waiting putter", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q(1);
            co_await q.put(1);
            auto putter = coring::create_task(put(q, 2));
            co_await coring::sleep(0s);
            REQUIRE_FALSE(putter.done());

            const int got = co_await q.get();
            CHECK(got == 1);
            co_await coring::sleep(0s);
            CHECK(putter.done());  // waiter.done()
            CHECK_NOTHROW(putter.result());  // assertIsNone(waiter.result())
            CHECK(q.get_nowait() == 2);
        }(),
        test_loop);
}

TEST_CASE("test_blocking_get_wait: a getter waits until an item is put", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q;
            coring::event started;
            bool finished = false;
            auto queue_get = [&]() -> coring::task<int> {
                started.set();
                const int res = co_await q.get();
                finished = true;
                co_return res;
            };
            auto queue_get_task = coring::create_task(queue_get());
            co_await started.wait();
            CHECK_FALSE(finished);
            (void)coring::get_running_loop().call_later(10ms, [&q] { q.put_nowait(1); });
            const int res = co_await queue_get_task;
            CHECK(finished);
            CHECK(res == 1);
        }(),
        test_loop);
}

TEST_CASE("test_nonblocking_get: get_nowait takes an item that is there", "[cpython][queue]") {
    coring::queue<int> q;
    q.put_nowait(1);
    CHECK(q.get_nowait() == 1);
}

TEST_CASE("test_nonblocking_get_exception: get_nowait on an empty queue throws queue_empty", "[cpython][queue]") {
    coring::queue<int> q;
    CHECK_THROWS_AS(q.get_nowait(), coring::queue_empty);
}

TEST_CASE("test_get_cancelled_race: an item put after a getter's cancel goes to the next getter", "[cpython][queue][cancel]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<std::string> q;
            auto t1 = coring::create_task(get(q));
            auto t2 = coring::create_task(get(q));
            co_await coring::sleep(0s);
            (void)t1.cancel();
            co_await coring::sleep(0s);
            CHECK(t1.done());
            co_await q.put("a");
            co_await coring::sleep(0s);
            const std::string got = co_await t2;
            CHECK(got == "a");
            CHECK(t1.cancelled());
        }(),
        test_loop);
}

TEST_CASE("test_get_with_waiting_putters: gets take the waiting putters' items in order", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<std::string> q(1);
            auto put_a = coring::create_task(put(q, "a"));
            auto put_b = coring::create_task(put(q, "b"));
            const std::string first = co_await q.get();
            CHECK(first == "a");
            const std::string second = co_await q.get();
            CHECK(second == "b");
            co_await put_a;
            co_await put_b;
        }(),
        test_loop);
}

TEST_CASE("test_why_are_getters_waiting: a producer and a consumer through a queue of 1", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            constexpr int producer_num_items = 5;
            coring::queue<int> q(1);
            std::vector<int> consumed;
            auto consumer = [&](int num_expected) -> coring::task<> {
                for (int n = 0; n < num_expected; ++n) consumed.push_back(co_await q.get());
            };
            auto producer = [&](int num_items) -> coring::task<> {
                for (int i = 0; i < num_items; ++i) co_await q.put(i);
            };
            coring::task_group tg;
            (void)tg.create_task(producer(producer_num_items));
            (void)tg.create_task(consumer(producer_num_items));
            co_await tg.join();  // does not hang
            CHECK(consumed == std::vector<int>{0, 1, 2, 3, 4});
        }(),
        test_loop);
}

TEST_CASE("test_cancelled_getters_not_being_held_in_self_getters: a timed-out get leaves no getter", "[cpython][queue][cancel]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q(5);
            auto timed = coring::wait_for(q.get(), 100ms);
            const bool timed_out = co_await throws<coring::timeout_error>(std::move(timed));
            CHECK(timed_out);
            // len(queue._getters) == 0: an item put now stays in the queue.
            q.put_nowait(1);
            CHECK(q.size() == 1);
        }(),
        test_loop);
}

// ============================================================================ QueuePutTests

TEST_CASE("test_blocking_put: put into an unbounded queue does not block", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q;
            co_await q.put(1);  // no maxsize: does not block
            const int got = co_await q.get();
            CHECK(got == 1);
        }(),
        test_loop);
}

TEST_CASE("test_blocking_put_wait: a putter waits until a get makes room", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q(1);
            coring::event started;
            bool finished = false;
            auto queue_put = [&]() -> coring::task<> {
                started.set();
                co_await q.put(1);
                co_await q.put(2);
                finished = true;
            };
            (void)coring::get_running_loop().call_later(10ms, [&q] { (void)q.get_nowait(); });
            auto queue_put_task = coring::create_task(queue_put());
            co_await started.wait();
            CHECK_FALSE(finished);
            co_await queue_put_task;
            CHECK(finished);
            CHECK(q.get_nowait() == 2);
        }(),
        test_loop);
}

TEST_CASE("test_nonblocking_put: put_nowait puts an item get_nowait takes", "[cpython][queue]") {
    coring::queue<int> q;
    q.put_nowait(1);
    CHECK(q.get_nowait() == 1);
}

TEST_CASE("test_get_cancel_drop_one_pending_reader: a cancelled reader drops no item", "[cpython][queue][cancel]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q;
            auto reader = coring::create_task(get(q));
            co_await coring::sleep(0s);

            q.put_nowait(1);
            q.put_nowait(2);
            (void)reader.cancel();

            const bool cancelled = co_await throws<coring::cancelled_error>(reader);
            if (cancelled) {  // try again
                reader = coring::create_task(get(q));
                co_await reader;
            }
            const int result = reader.result();
            CHECK(result == 1);  // 2 would mean that 1 was dropped
        }(),
        test_loop);
}

TEST_CASE("test_get_cancel_drop_many_pending_readers: a cancelled reader's item goes to another", "[cpython][queue][cancel]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q;
            coring::task_group tg;
            auto reader1 = tg.create_task(get(q));
            auto reader2 = tg.create_task(get(q));
            auto reader3 = tg.create_task(get(q));
            co_await coring::sleep(0s);

            q.put_nowait(1);
            q.put_nowait(2);
            (void)reader1.cancel();

            const bool cancelled = co_await throws<coring::cancelled_error>(reader1);
            CHECK(cancelled);
            co_await reader3;
            co_await tg.join();

            // It is undefined in which order concurrent readers receive results.
            CHECK(std::set<int>{reader2.result(), reader3.result()} == std::set<int>{1, 2});
        }(),
        test_loop);
}

TEST_CASE("test_put_cancel_drop: a cancelled putter neither loses nor duplicates its item", "[cpython][queue][cancel]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q(1);
            q.put_nowait(1);

            // Putting a second item in the queue has to block (qsize == 1).
            auto writer = coring::create_task(put(q, 2));
            co_await coring::sleep(0s);

            const int value1 = q.get_nowait();
            CHECK(value1 == 1);

            (void)writer.cancel();
            const bool cancelled = co_await throws<coring::cancelled_error>(writer);
            if (cancelled) {  // try again
                writer = coring::create_task(put(q, 2));
                co_await writer;
            }

            const int value2 = q.get_nowait();
            CHECK(value2 == 2);
            CHECK(q.size() == 0);
        }(),
        test_loop);
}

TEST_CASE("test_nonblocking_put_exception: put_nowait on a full queue throws queue_full", "[cpython][queue]") {
    coring::queue<int> q(1);
    q.put_nowait(1);
    CHECK_THROWS_AS(q.put_nowait(2), coring::queue_full);
}

TEST_CASE("test_put_cancelled: a put handed to a waiting getter completes the putter", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> q;
            auto queue_put = [&]() -> coring::task<bool> {
                co_await q.put(1);
                co_return true;
            };
            auto t = coring::create_task(queue_put());
            const int got = co_await q.get();
            CHECK(got == 1);
            REQUIRE(t.done());
            CHECK(t.result());
        }(),
        test_loop);
}

TEST_CASE("test_put_cancelled_race: a putter cancelled while waiting puts nothing; the next one does", "[cpython][queue][cancel]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<std::string> q(1);
            auto put_a = coring::create_task(put(q, "a"));
            auto put_b = coring::create_task(put(q, "b"));
            auto put_c = coring::create_task(put(q, "X"));

            co_await coring::sleep(0s);
            CHECK(put_a.done());
            CHECK_FALSE(put_b.done());

            (void)put_c.cancel();
            co_await coring::sleep(0s);
            CHECK(put_c.done());
            CHECK(q.get_nowait() == "a");
            co_await coring::sleep(0s);
            CHECK(q.get_nowait() == "b");

            co_await put_b;
            CHECK(put_c.cancelled());
            CHECK(q.empty());  // "X" was never put
        }(),
        test_loop);
}

TEST_CASE("test_put_with_waiting_getters: a put goes to the waiting getter", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<std::string> q;
            auto t = coring::create_task(get(q));
            co_await coring::sleep(0s);
            co_await q.put("a");
            const std::string got = co_await t;
            CHECK(got == "a");
        }(),
        test_loop);
}

TEST_CASE("test_why_are_putters_waiting: get_nowait lets the waiting putters in", "[cpython][queue]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> queue(2);
            auto putter = [&](int item) -> coring::task<> { co_await queue.put(item); };
            auto getter = [&]() -> coring::task<> {
                co_await coring::sleep(0s);
                const std::size_t num = queue.size();
                for (std::size_t n = 0; n < num; ++n) (void)queue.get_nowait();
            };
            coring::task_group tg;
            (void)tg.create_task(getter());
            for (int item = 0; item < 4; ++item) (void)tg.create_task(putter(item));
            co_await tg.join();  // does not hang
            CHECK(queue.size() == 2);
            CHECK(queue.get_nowait() == 2);
            CHECK(queue.get_nowait() == 3);
        }(),
        test_loop);
}

TEST_CASE("test_cancelled_puts_not_being_held_in_self_putters: a cancelled putter leaves no putter", "[cpython][queue][cancel]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> queue(1);  // full
            queue.put_nowait(1);

            // A task waiting for room to put an item in the queue.
            auto put_task = coring::create_task(put(queue, 2));
            co_await coring::sleep(0s);
            REQUIRE_FALSE(put_task.done());  // len(queue._putters) == 1

            (void)put_task.cancel();
            const bool cancelled = co_await throws<coring::cancelled_error>(put_task);
            CHECK(cancelled);
            // len(queue._putters) == 0: a get makes room and no putter's item takes it.
            CHECK(queue.get_nowait() == 1);
            CHECK(queue.empty());
        }(),
        test_loop);
}

TEST_CASE("test_cancelled_put_silence_value_error_exception: cancel after get_nowait woke the putter", "[cpython][queue][cancel]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::queue<int> queue(1);  // full
            queue.put_nowait(1);

            // A task waiting for room to put an item in the queue.
            auto put_task = coring::create_task(put(queue, 2));
            co_await coring::sleep(0s);

            // get_nowait() takes the putter off the waiting list; the cancel comes after.
            CHECK(queue.get_nowait() == 1);
            (void)put_task.cancel();

            // No internal error escapes: the task ends with cancelled_error.
            const bool cancelled = co_await throws<coring::cancelled_error>(put_task);
            CHECK(cancelled);
            // As in asyncio, the cancelled putter put nothing (CPython checks only that no
            // exception other than CancelledError escapes).
            CHECK(queue.empty());
        }(),
        test_loop);
}

// ============================================================================ LifoQueueTests, PriorityQueueTests

TEST_CASE("test_order: a LifoQueue is last in, first out", "[cpython][queue][lifo]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::lifo_queue<int> q;
            for (int i : {1, 3, 2}) co_await q.put(i);
            std::vector<int> items;
            for (int n = 0; n < 3; ++n) items.push_back(co_await q.get());
            CHECK(items == std::vector<int>{2, 3, 1});
        }(),
        test_loop);
}

TEST_CASE("test_order: a PriorityQueue yields the smallest first", "[cpython][queue][priority]") {
    coring::testing::run_test(
        []() -> coring::task<> {
            coring::priority_queue<int> q;
            for (int i : {1, 3, 2}) co_await q.put(i);
            std::vector<int> items;
            for (int n = 0; n < 3; ++n) items.push_back(co_await q.get());
            CHECK(items == std::vector<int>{1, 2, 3});
        }(),
        test_loop);
}

// ============================================================================ _QueueJoinTestMixin

TEST_CASE("test_task_done_underflow: task_done with nothing put is an invalid_state_error", "[cpython][queue][join]") {
    for_each_q_class<int>([](auto q_class) {
        typename decltype(q_class)::type q;
        CHECK_THROWS_AS(q.task_done(), coring::invalid_state_error);
    });
}

namespace {

template <class Queue>
coring::task<> test_task_done() {
    Queue q;
    for (int i = 0; i < 100; ++i) q.put_nowait(i);

    // Two workers get items from the queue and call task_done after each. Join the queue and
    // assert that all items have been processed.
    int accumulator = 0;
    bool running = true;
    auto worker = [&]() -> coring::task<> {
        while (running) {
            const int item = co_await q.get();
            accumulator += item;
            q.task_done();
        }
    };
    coring::task_group tg;
    std::vector<coring::task_handle<>> tasks;
    for (int index = 0; index < 2; ++index) tasks.push_back(tg.create_task(worker()));

    co_await q.join();
    CHECK(accumulator == 4950);  // sum(range(100))

    // Stop the workers.
    running = false;
    for (std::size_t i = 0; i < tasks.size(); ++i) q.put_nowait(0);
    co_await tg.join();
    CHECK(accumulator == 4950);
}

template <class Queue>
coring::task<> test_join_empty_queue() {
    Queue q;
    bool other_ran = false;
    auto other = [&]() -> coring::task<> {
        other_ran = true;
        co_return;
    };
    auto t = coring::create_task(other());
    // A queue join()s successfully, and before anything else (done twice for insurance).
    co_await q.join();
    co_await q.join();
    CHECK_FALSE(other_ran);
    co_await t;
}

}  // namespace

TEST_CASE("test_task_done: join returns once two workers marked every item done", "[cpython][queue][join]") {
    for_each_q_class<int>([](auto q_class) { coring::testing::run_test(test_task_done<typename decltype(q_class)::type>(), test_loop); });
}

TEST_CASE("test_join_empty_queue: join on a queue with nothing put returns at once", "[cpython][queue][join]") {
    for_each_q_class<int>([](auto q_class) { coring::testing::run_test(test_join_empty_queue<typename decltype(q_class)::type>(), test_loop); });
}

// ============================================================================ _QueueShutdownTestMixin

namespace {

// The four assertRaisesShutdown blocks that end each shutdown test: put, put_nowait, get and
// get_nowait all throw queue_shut_down.
template <class Queue>
coring::task<> check_raises_shutdown(Queue& q) {
    const bool put_raised = co_await throws<coring::queue_shut_down>(q.put("data"));
    CHECK(put_raised);
    CHECK_THROWS_AS(q.put_nowait("data"), coring::queue_shut_down);
    const bool get_raised = co_await throws<coring::queue_shut_down>(q.get());
    CHECK(get_raised);
    CHECK_THROWS_AS(q.get_nowait(), coring::queue_shut_down);
}

template <class Queue>
coring::task<> test_shutdown_empty() {
    // An empty queue, and a get() task.
    Queue q;
    auto get_task = coring::create_task(get(q));
    co_await coring::sleep(0s);  // the get task is pending before the shutdown

    q.shutdown(false);  // unfinished tasks: 0 -> 0
    CHECK(q.size() == 0);

    // join() finishes.
    co_await q.join();

    // The get() task has finished by raising queue_shut_down.
    co_await coring::sleep(0s);
    CHECK(get_task.done());
    const bool raised = co_await throws<coring::queue_shut_down>(get_task);
    CHECK(raised);

    co_await check_raises_shutdown(q);
}

template <class Queue>
coring::task<> test_shutdown_nonempty() {
    // A full queue with 1 item, and join() and put() tasks.
    Queue q(1);
    q.put_nowait("data");
    auto join_task = coring::create_task(join(q));
    auto put_task = coring::create_task(put(q, "data2"));

    // The put() task is not finished.
    co_await coring::sleep(0s);
    CHECK_FALSE(put_task.done());

    q.shutdown(false);  // unfinished tasks: 1 -> 1
    CHECK(q.size() == 1);

    // The put() task has finished by raising queue_shut_down.
    co_await coring::sleep(0s);
    CHECK(put_task.done());
    const bool put_raised = co_await throws<coring::queue_shut_down>(put_task);
    CHECK(put_raised);

    // get() succeeds on the queued item.
    const std::string got = co_await q.get();
    CHECK(got == "data");

    // The join() task is not finished.
    co_await coring::sleep(0s);
    CHECK_FALSE(join_task.done());

    co_await check_raises_shutdown(q);

    // There is 1 unfinished task, and the join() task succeeds.
    q.task_done();
    co_await coring::sleep(0s);
    CHECK(join_task.done());
    co_await join_task;

    CHECK_THROWS_AS(q.task_done(), coring::invalid_state_error);  // all tasks were marked done
}

template <class Queue>
coring::task<> test_shutdown_immediate() {
    // A queue with 1 item, and a join() task.
    Queue q;
    q.put_nowait("data");
    auto join_task = coring::create_task(join(q));

    q.shutdown(true);  // unfinished tasks: 1 -> 0
    CHECK(q.size() == 0);

    // The join() task has finished.
    co_await coring::sleep(0s);
    CHECK(join_task.done());
    co_await join_task;

    co_await check_raises_shutdown(q);

    CHECK_THROWS_AS(q.task_done(), coring::invalid_state_error);  // no unfinished tasks
}

template <class Queue>
coring::task<> test_shutdown_immediate_with_unfinished() {
    // A queue with 2 items (1 taken), and a join() task.
    Queue q;
    q.put_nowait("data");
    q.put_nowait("data");
    auto join_task = coring::create_task(join(q));
    const std::string got = co_await q.get();
    CHECK(got == "data");

    q.shutdown(true);  // unfinished tasks: 2 -> 1
    CHECK(q.size() == 0);

    // The join() task is not finished.
    co_await coring::sleep(0s);
    CHECK_FALSE(join_task.done());

    co_await check_raises_shutdown(q);

    // There is 1 unfinished task.
    q.task_done();
    CHECK_THROWS_AS(q.task_done(), coring::invalid_state_error);

    // The join() task has finished.
    co_await coring::sleep(0s);
    CHECK(join_task.done());
    co_await join_task;
}

}  // namespace

TEST_CASE("test_shutdown_empty: shutdown wakes a waiting getter with queue_shut_down", "[cpython][queue][shutdown]") {
    for_each_q_class<std::string>([](auto q_class) { coring::testing::run_test(test_shutdown_empty<typename decltype(q_class)::type>(), test_loop); });
}

TEST_CASE("test_shutdown_nonempty: after shutdown the queued item can be taken; a waiting putter fails", "[cpython][queue][shutdown]") {
    for_each_q_class<std::string>([](auto q_class) { coring::testing::run_test(test_shutdown_nonempty<typename decltype(q_class)::type>(), test_loop); });
}

TEST_CASE("test_shutdown_immediate: shutdown(immediate) discards the items and releases join", "[cpython][queue][shutdown]") {
    for_each_q_class<std::string>([](auto q_class) { coring::testing::run_test(test_shutdown_immediate<typename decltype(q_class)::type>(), test_loop); });
}

TEST_CASE("test_shutdown_immediate_with_unfinished: join still waits for the items taken", "[cpython][queue][shutdown]") {
    for_each_q_class<std::string>([](auto q_class) {
        coring::testing::run_test(test_shutdown_immediate_with_unfinished<typename decltype(q_class)::type>(), test_loop);
    });
}
