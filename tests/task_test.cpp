// Tests of coring/task.hpp: laziness, results of every kind, exceptions, and the flat stack.
#include <coring/task.hpp>

#include <coring/run.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;

namespace {

coring::task<int> ready_value(int v) { co_return v; }

coring::task<void> ready_void(int& counter) {
    ++counter;
    co_return;
}

coring::task<int&> ready_ref(int& target) { co_return target; }

coring::task<std::unique_ptr<int>> move_only(int v) { co_return std::make_unique<int>(v); }

coring::task<std::string> suspending_string() {
    co_await coring::sleep(0s);
    co_return std::string(100, 'x');  // long enough to live on the heap
}

struct custom_error : std::runtime_error {
    explicit custom_error(int c) : std::runtime_error("custom error"), code(c) {}
    int code;
};

coring::task<int> throws_after(int depth) {
    if (depth == 0) {
        co_await coring::sleep(0s);
        throw custom_error(depth + 7);
    }
    co_return co_await throws_after(depth - 1);
}

coring::task<int> throws_inline() {
    throw std::out_of_range("inline");
    co_return 0;
}

}  // namespace

TEST_CASE("task - is lazy: the body starts only when awaited", "[task]") {
    bool started = false;
    auto body = [&]() -> coring::task<int> {
        started = true;
        co_return 1;
    };
    auto t = body();
    CHECK_FALSE(started);
    CHECK(t.valid());
    CHECK_FALSE(t.done());
    int v = coring::run([](coring::task<int> inner) -> coring::task<int> { co_return co_await inner; }(std::move(t)));
    CHECK(started);
    CHECK(v == 1);
}

TEST_CASE("task - a task that is never awaited never runs and frees its frame", "[task]") {
    const auto before = live_frames();
    bool started = false;
    {
        auto body = [](bool& flag) -> coring::task<> {
            flag = true;
            co_return;
        };
        // Kept in a vector so the frame escapes: clang would otherwise elide its allocation.
        std::vector<coring::task<>> kept;
        kept.push_back(body(started));
        CHECK(live_frames() == before + 1);
    }
    CHECK_FALSE(started);
    CHECK(live_frames() == before);
}

TEST_CASE("task - co_await gives the value a task<T> returns", "[task]") {
    coring::run([]() -> coring::task<> {
        const int v = co_await ready_value(41);
        CHECK(v == 41);
    }());
}

TEST_CASE("task - co_await of a task<void> runs its body to the end", "[task]") {
    coring::run([]() -> coring::task<> {
        int counter = 0;
        co_await ready_void(counter);
        CHECK(counter == 1);
    }());
}

TEST_CASE("task - a task<T&> gives a reference to the object it returned", "[task]") {
    coring::run([]() -> coring::task<> {
        int target = 5;
        int& ref = co_await ready_ref(target);
        ref = 6;
        CHECK(target == 6);
    }());
}

TEST_CASE("task - a move-only result is moved out to the awaiter", "[task]") {
    coring::run([]() -> coring::task<> {
        std::unique_ptr<int> p = co_await move_only(9);
        REQUIRE(p);
        CHECK(*p == 9);
    }());
}

TEST_CASE("task - a result returned after a suspension reaches the awaiter intact", "[task]") {
    coring::run([]() -> coring::task<> {
        std::string s = co_await suspending_string();
        CHECK(s == std::string(100, 'x'));
    }());
}

TEST_CASE("task - an exception keeps its type and data through nested awaits", "[task]") {
    coring::run([]() -> coring::task<> {
        int code = 0;
        try {
            (void)co_await throws_after(5);
        } catch (const custom_error& e) {
            code = e.code;
        }
        CHECK(code == 7);
    }());
}

TEST_CASE("task - an exception thrown before the first suspension reaches the awaiter", "[task]") {
    coring::run([]() -> coring::task<> {
        bool caught = false;
        try {
            (void)co_await throws_inline();
        } catch (const std::out_of_range& e) {
            caught = std::string(e.what()) == "inline";
        }
        CHECK(caught);
    }());
}

TEST_CASE("task - a million awaits of tasks that finish without suspending keep the stack flat", "[task][stack]") {
    // g++ 12 does not tail-call symmetric transfer at -O0 or under ASan; this overflows an
    // 8 MiB stack unless the synchronous path returns to the awaiter instead.
    const long result = coring::run([]() -> coring::task<long> {
        long sum = 0;
        for (int i = 0; i < 1'000'000; ++i) sum += co_await ready_value(i & 7);
        co_return sum;
    }());
    long expected = 0;
    for (int i = 0; i < 1'000'000; ++i) expected += i & 7;
    CHECK(result == expected);
}

TEST_CASE("task - deep nesting with suspension at the bottom", "[task][stack]") {
    struct rec {
        static coring::task<int> depth(int n) {
            if (n == 0) {
                co_await coring::sleep(0s);
                co_return 0;
            }
            co_return 1 + co_await depth(n - 1);
        }
    };
    CHECK(coring::run(rec::depth(2000)) == 2000);
}

TEST_CASE("task - awaiting a task twice throws invalid_state_error", "[task]") {
    coring::run([]() -> coring::task<> {
        auto t = ready_value(3);
        const int first = co_await t;
        CHECK(first == 3);
        bool threw = false;
        try {
            (void)co_await t;
        } catch (const coring::invalid_state_error&) {
            threw = true;
        }
        CHECK(threw);
    }());
}

TEST_CASE("task - awaiting an empty task throws invalid_state_error", "[task]") {
    coring::run([]() -> coring::task<> {
        coring::task<int> empty;
        CHECK_FALSE(empty.valid());
        bool threw = false;
        try {
            (void)co_await empty;
        } catch (const coring::invalid_state_error&) {
            threw = true;
        }
        CHECK(threw);
    }());
}

TEST_CASE("task - move assignment destroys the old frame", "[task]") {
    const auto before = live_frames();
    {
        std::vector<coring::task<int>> tasks;  // escaping frames: no allocation elision
        tasks.push_back(ready_value(1));
        tasks.push_back(ready_value(2));
        CHECK(live_frames() == before + 2);
        tasks[0] = std::move(tasks[1]);
        CHECK(live_frames() == before + 1);
        CHECK_FALSE(tasks[1].valid());  // NOLINT(bugprone-use-after-move): moved-from state is specified
    }
    CHECK(live_frames() == before);
}

TEST_CASE("task - frames come from the pool and are reused", "[task][frame_pool]") {
    coring::run([]() -> coring::task<> {
        for (int i = 0; i < 100; ++i) (void)co_await ready_value(i);
        const auto before = live_frames();
        for (int i = 0; i < 1000; ++i) (void)co_await ready_value(i);
        CHECK(live_frames() == before);
    }());
}
