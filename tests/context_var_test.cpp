// Tests of coring/context_var.hpp: asyncio's contextvars. Every test leaves the thread's own
// context as it found it (empty), since the thread's context outlives a test.
#include <coring/context_var.hpp>

#include <coring/event_loop.hpp>
#include <coring/gather.hpp>
#include <coring/run.hpp>
#include <coring/task_group.hpp>
#include <coring/task_handle.hpp>
#include <coring/thread/to_thread.hpp>
#include <coring/time.hpp>
#include <coring/wait_for.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

using namespace std::chrono_literals;
using coring_test::live_frames;

namespace {

coring::context_var<int> number{"number", 0};  // with a default
coring::context_var<std::string> text{"text"};  // without one

// Counts its instances, so that a test can tell whether the contexts holding it were freed.
struct counted {
    static inline std::atomic<int> live{0};
    int value;
    explicit counted(int v) : value(v) { ++live; }
    counted(const counted& other) : value(other.value) { ++live; }
    counted& operator=(const counted&) = default;
    ~counted() { --live; }
};
coring::context_var<counted> tracked{"tracked", counted(-1)};  // the default is one instance

bool thread_context_is_empty() { return !number.is_set() && !text.is_set() && !tracked.is_set(); }

coring::task<int> read_number_after_yield() {
    co_await coring::sleep(0s);
    co_return number.get();
}

coring::task<int> set_number_and_read(int value) {
    auto token = number.set(value);
    co_await coring::sleep(0s);
    co_return number.get();
}

// Sets `value`, yields `rounds` times and checks after each that it still reads its own value.
coring::task<bool> keeps_own_value(int value, int rounds) {
    number.set(value);
    bool kept = true;
    for (int i = 0; i < rounds; ++i) {
        co_await coring::sleep(0s);
        kept = kept && number.get() == value;
    }
    co_return kept;
}

// What resetting someone else's token throws: "invalid_argument", "invalid_state" or "none".
template <class Var, class Token>
std::string reset_outcome(Var& var, Token& token) {
    try {
        var.reset(token);
    } catch (const std::invalid_argument&) {
        return "invalid_argument";
    } catch (const coring::invalid_state_error&) {
        return "invalid_state";
    }
    return "none";
}

coring::task<std::string> reset_from_child(coring::context_var<int>::token* token) { co_return reset_outcome(number, *token); }

}  // namespace

// ------------------------------------------------------------------------------- get and set

TEST_CASE("context_var - get() is the default where nothing is set; without one, std::out_of_range", "[context_var]") {
    REQUIRE(thread_context_is_empty());
    CHECK(number.get() == 0);
    CHECK(number.name() == "number");
    CHECK_FALSE(number.is_set());
    CHECK_THROWS_AS(text.get(), std::out_of_range);
    CHECK(text.get("fallback") == "fallback");
    CHECK(number.get(7) == 7);  // get(fallback) ignores the variable's default, as asyncio's
    coring::run([]() -> coring::task<> {
        CHECK(number.get() == 0);
        bool threw = false;
        try {
            (void)text.get();
        } catch (const std::out_of_range& e) {
            threw = std::string(e.what()).find("text") != std::string::npos;
        }
        CHECK(threw);
        co_return;
    }());
}

TEST_CASE("context_var - set() in a task: get() sees it, after suspensions too; the token keeps the old value", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto first = text.set("one");
        CHECK(first.old_value() == nullptr);  // asyncio: Token.MISSING
        CHECK(text.get() == "one");
        CHECK(text.get("fallback") == "one");
        CHECK(text.is_set());
        co_await coring::sleep(1ms);
        CHECK(text.get() == "one");
        auto second = text.set("two");
        REQUIRE(second.old_value() != nullptr);
        CHECK(*second.old_value() == "one");
        CHECK(text.get() == "two");
    }());
    CHECK(thread_context_is_empty());
}

TEST_CASE("context_var - reset() restores the value before the set, then no value at all", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto t1 = number.set(1);
        auto t2 = number.set(2);
        auto t3 = number.set(3);
        number.reset(t3);
        CHECK(number.get() == 2);
        number.reset(t2);
        CHECK(number.get() == 1);
        CHECK(number.is_set());
        number.reset(t1);
        CHECK_FALSE(number.is_set());
        CHECK(number.get() == 0);
        CHECK(t1.used());
        co_return;
    }());
}

TEST_CASE("context_var - reset() out of order restores what each set replaced (as asyncio)", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto t1 = number.set(1);
        auto t2 = number.set(2);
        number.reset(t1);  // back to "no value"
        CHECK_FALSE(number.is_set());
        number.reset(t2);  // back to what t2's set replaced: 1
        CHECK(number.get() == 1);
        co_return;
    }());
}

// ------------------------------------------------------------------------------- token errors

TEST_CASE("context_var - a token used twice is invalid_state_error (asyncio: RuntimeError)", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto token = number.set(5);
        number.reset(token);
        CHECK(reset_outcome(number, token) == "invalid_state");
        // A moved-from token counts as used; the token it moved to still works.
        auto again = number.set(6);
        auto moved = std::move(again);
        CHECK(again.used());  // NOLINT(bugprone-use-after-move): that is the point
        CHECK(reset_outcome(number, again) == "invalid_state");
        CHECK(number.get() == 6);
        number.reset(moved);
        CHECK_FALSE(number.is_set());
        co_return;
    }());
}

TEST_CASE("context_var - a token of another variable is std::invalid_argument (asyncio: ValueError)", "[context_var]") {
    coring::run([]() -> coring::task<> {
        coring::context_var<int> other{"other", 0};
        auto token = other.set(1);
        CHECK(reset_outcome(number, token) == "invalid_argument");
        CHECK_FALSE(token.used());
        CHECK(other.get() == 1);
        other.reset(token);  // still good for its own variable
        CHECK_FALSE(other.is_set());
        co_return;
    }());
}

TEST_CASE("context_var - a token made in another task is std::invalid_argument, and stays usable at home", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto token = number.set(1);
        auto other_task = co_await coring::create_task(reset_from_child(&token));
        CHECK(other_task == "invalid_argument");
        CHECK_FALSE(token.used());
        CHECK(number.get() == 1);
        number.reset(token);
        CHECK_FALSE(number.is_set());
    }());
    CHECK(thread_context_is_empty());
    auto outside = number.set(3);
    coring::run([](coring::context_var<int>::token* token) -> coring::task<> {
        CHECK(number.get() == 3);  // the main task starts from a copy of the thread's context...
        CHECK(reset_outcome(number, *token) == "invalid_argument");  // ...which is another context
        co_return;
    }(&outside));
    number.reset(outside);
    CHECK(thread_context_is_empty());
}

// ------------------------------------------------------------------------------- task copies

TEST_CASE("context_var - a child sees its creator's value at creation, not the creator's later sets", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto token = number.set(1);
        auto before = coring::create_task(read_number_after_yield());  // starts later, reads later
        number.set(2);
        auto after = coring::create_task(read_number_after_yield());
        number.set(3);
        const int seen_before = co_await before;
        const int seen_after = co_await after;
        CHECK(seen_before == 1);
        CHECK(seen_after == 2);
        CHECK(number.get() == 3);
    }());
}

TEST_CASE("context_var - a child's set never reaches its creator", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto token = number.set(1);
        const int child_saw = co_await coring::create_task(set_number_and_read(50));
        CHECK(child_saw == 50);
        CHECK(number.get() == 1);
        // A child of a task that set nothing: the child's set stays in the child too.
        number.reset(token);
        const int second = co_await coring::create_task(set_number_and_read(60));
        CHECK(second == 60);
        CHECK_FALSE(number.is_set());
    }());
}

TEST_CASE("context_var - siblings each keep their own value across interleaved steps", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto token = number.set(100);
        auto a = coring::create_task(keeps_own_value(1, 20));
        auto b = coring::create_task(keeps_own_value(2, 20));
        auto c = coring::create_task(keeps_own_value(3, 20));
        const bool ka = co_await a;
        const bool kb = co_await b;
        const bool kc = co_await c;
        CHECK(ka);
        CHECK(kb);
        CHECK(kc);
        CHECK(number.get() == 100);
    }());
}

TEST_CASE("context_var - a task<T> awaited directly runs in the awaiting task's context", "[context_var]") {
    coring::run([]() -> coring::task<> {
        const int seen = co_await set_number_and_read(8);  // not a new task: the set is ours
        CHECK(seen == 8);
        CHECK(number.get() == 8);
    }());
}

TEST_CASE("context_var - an eager task runs in a copy from its first step", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto token = number.set(3);
        int seen_eagerly = -1;
        int* seen = &seen_eagerly;
        auto h = coring::create_task(
            [](int* out) -> coring::task<int> {
                *out = number.get();  // runs inside create_task
                number.set(4);
                co_await coring::sleep(0s);
                co_return number.get();
            }(seen),
            {.eager_start = true});
        CHECK(seen_eagerly == 3);
        CHECK(number.get() == 3);  // the eager step's set stayed in the child
        const int later = co_await h;
        CHECK(later == 4);
        CHECK(number.get() == 3);
    }());
}

TEST_CASE("context_var - task_group children run in copies; the with_task_group body is the task itself", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto token = text.set("parent");
        coring::task_group group;
        auto child = group.create_task([]() -> coring::task<std::string> {
            std::string seen = text.get();
            text.set("child");
            co_return seen;
        }());
        co_await group.join();
        CHECK(child.result() == "parent");
        CHECK(text.get() == "parent");

        const std::string from_child = co_await coring::with_task_group([](coring::task_group& tg) -> coring::task<std::string> {
            auto h = tg.create_task([]() -> coring::task<std::string> {
                co_await coring::sleep(0s);
                co_return text.get();
            }());
            text.set("body");  // after the child was created: it still sees "parent"
            co_return co_await h;
        });
        CHECK(from_child == "parent");
        CHECK(text.get() == "body");  // an `async with` body sets the task's own context
    }());
}

TEST_CASE("context_var - gather's children run in copies", "[context_var]") {
    coring::run([]() -> coring::task<> {
        auto token = number.set(21);
        auto [a, b] = co_await coring::gather(read_number_after_yield(), set_number_and_read(5));
        CHECK(a == 21);
        CHECK(b == 5);
        CHECK(number.get() == 21);
    }());
}

TEST_CASE("context_var - wait_for runs its awaitable in a task of its own (unlike asyncio 3.12)", "[context_var]") {
    coring::run([]() -> coring::task<> {
        const int seen = co_await coring::wait_for(set_number_and_read(9), 1h);
        CHECK(seen == 9);
        CHECK_FALSE(number.is_set());  // documented in docs/api.md, "Differences from asyncio"
    }());
}

// ------------------------------------------------------------------------------- threads

TEST_CASE("context_var - to_thread runs the call in a copy of the task's context", "[context_var][to_thread]") {
    coring::run([]() -> coring::task<> {
        auto token = text.set("from the task");
        const std::thread::id loop_thread = std::this_thread::get_id();
        auto [seen, where] = co_await coring::to_thread([] { return std::make_pair(text.get(), std::this_thread::get_id()); });
        CHECK(seen == "from the task");
        CHECK(where != loop_thread);
        // The call's own set stays on the pool thread and ends with the call.
        const std::string inside = co_await coring::to_thread([] {
            text.set("from the thread");
            return text.get();
        });
        CHECK(inside == "from the thread");
        CHECK(text.get() == "from the task");
        const std::string next_call = co_await coring::to_thread([] { return text.get(); });
        CHECK(next_call == "from the task");
        // A task with nothing set: the pool thread shows nothing either, whatever ran there.
        const bool empty_in_thread = co_await coring::create_task([]() -> coring::task<bool> {
            text.set("gone");
            auto t = text.set("again");
            text.reset(t);
            co_await coring::to_thread([] { number.set(99); });
            co_return co_await coring::to_thread([] { return number.is_set(); });
        }());
        CHECK_FALSE(empty_in_thread);
    }());
}

TEST_CASE("context_var - a pool thread shows a task without context nothing another call set there", "[context_var][to_thread]") {
    coring::run([]() -> coring::task<> {
        REQUIRE_FALSE(number.is_set());
        for (int i = 0; i < 8; ++i) {
            co_await coring::to_thread([] { number.set(99); });
            const bool leaked = co_await coring::to_thread([] { return number.is_set(); });
            CHECK_FALSE(leaked);
        }
    }());
}

TEST_CASE("context_var - call_soon_threadsafe captures the calling thread's context", "[context_var][to_thread]") {
    coring::run([]() -> coring::task<> {
        coring::future<int> seen;
        coring::event_loop* loop = &coring::get_running_loop();
        coring::future<int>* out = &seen;
        co_await coring::to_thread([loop, out] {
            number.set(77);  // the call's context, which the callback copies
            loop->call_soon_threadsafe([out] { out->set_result(number.get()); });
        });
        const int value = co_await seen;
        CHECK(value == 77);
        CHECK_FALSE(number.is_set());
    }());
}

TEST_CASE("context_var - on a thread that never set a variable, a context from another thread still travels", "[context_var][to_thread]") {
    // A fresh thread: nothing was set on it, so its loop starts out skipping context copies.
    int in_callback = -1;
    int in_task = -1;
    std::thread([&] {
        coring::run([](int* callback_saw, int* task_saw) -> coring::task<> {
            coring::future<coring::task_handle<int>> made;
            coring::event_loop* loop = &coring::get_running_loop();
            auto* out = &made;
            co_await coring::to_thread([loop, out, callback_saw] {
                number.set(55);  // on the pool thread; the callback copies it
                loop->call_soon_threadsafe([out, callback_saw] {
                    *callback_saw = number.get();
                    out->set_result(coring::create_task(read_number_after_yield()));  // copies it again
                });
            });
            coring::task_handle<int> child = co_await made;
            *task_saw = co_await child;
            CHECK_FALSE(number.is_set());
        }(&in_callback, &in_task));
    }).join();
    CHECK(in_callback == 55);
    CHECK(in_task == 55);
}

TEST_CASE("context_var - on a fresh thread, the first set() makes create_task and call_soon copy", "[context_var]") {
    int child_saw = -1;
    int callback_saw = -1;
    std::thread([&] {
        coring::run([](int* child, int* callback) -> coring::task<> {
            auto token = number.set(88);
            coring::get_running_loop().call_soon([callback] { *callback = number.get(); });
            *child = co_await coring::create_task(read_number_after_yield());
        }(&child_saw, &callback_saw));
    }).join();
    CHECK(child_saw == 88);
    CHECK(callback_saw == 88);
}

TEST_CASE("context_var - a to_thread call hands its context on to call_soon_threadsafe", "[context_var][to_thread]") {
    coring::run([]() -> coring::task<> {
        auto token = number.set(66);
        coring::future<int> seen;
        coring::event_loop* loop = &coring::get_running_loop();
        coring::future<int>* out = &seen;
        // The call sets nothing: its thread (new, with this loop's pool) only carries the task's.
        co_await coring::to_thread([loop, out] { loop->call_soon_threadsafe([out] { out->set_result(number.get()); }); });
        const int value = co_await seen;
        CHECK(value == 66);
    }());
}

TEST_CASE("context_var - another thread of the program has its own context", "[context_var]") {
    auto token = number.set(5);
    bool other_sees = true;
    std::thread([&] {
        other_sees = number.is_set();
        number.set(6);  // freed when the thread ends
    }).join();
    CHECK_FALSE(other_sees);
    CHECK(number.get() == 5);
    number.reset(token);
    CHECK(thread_context_is_empty());
}

// ------------------------------------------------------------------------------- callbacks

TEST_CASE("context_var - call_soon, call_later and call_at run in a copy of the creator's context", "[context_var][callbacks]") {
    std::vector<std::string> seen;
    coring::run([](std::vector<std::string>* out) -> coring::task<> {
        coring::event_loop& loop = coring::get_running_loop();
        auto token = text.set("at call_soon");
        loop.call_soon([out] {
            out->push_back("soon:" + text.get());
            text.set("set by a callback");  // ends with this callback
        });
        text.set("at call_later");
        loop.call_later(5ms, [out] { out->push_back("later:" + text.get()); });
        text.set("at call_at");
        loop.call_at(loop.time() + 10ms, [out] { out->push_back("at:" + text.get()); });
        text.set("after");
        co_await coring::sleep(0s);
        loop.call_soon([out] { out->push_back("soon 2:" + text.get()); });
        co_await coring::sleep(30ms);
        CHECK(text.get() == "after");
    }(&seen));
    const std::vector<std::string> expected{"soon:at call_soon", "soon 2:after", "later:at call_later", "at:at call_at"};
    CHECK(seen == expected);
    CHECK(thread_context_is_empty());
}

TEST_CASE("context_var - a callback's set reaches neither the next callback nor the task", "[context_var][callbacks]") {
    coring::run([]() -> coring::task<> {
        coring::event_loop& loop = coring::get_running_loop();
        bool first_saw = true;
        bool second_saw = true;
        bool* first = &first_saw;
        bool* second = &second_saw;
        loop.call_soon([first] {
            *first = number.is_set();
            number.set(1);
        });
        loop.call_soon([second] { *second = number.is_set(); });
        co_await coring::sleep(1ms);
        CHECK_FALSE(first_saw);
        CHECK_FALSE(second_saw);
        CHECK_FALSE(number.is_set());
    }());
}

TEST_CASE("context_var - a task created in a callback copies the callback's context", "[context_var][callbacks]") {
    coring::run([]() -> coring::task<> {
        coring::event_loop& loop = coring::get_running_loop();
        coring::task_handle<int> made;
        coring::task_handle<int>* out = &made;
        auto token = number.set(12);
        loop.call_soon([out] {
            number.set(number.get() + 1);  // 13, in the callback's copy
            *out = coring::create_task(read_number_after_yield());
        });
        number.set(14);
        co_await coring::sleep(1ms);
        REQUIRE(made);
        const int child = co_await made;
        CHECK(child == 13);
        CHECK(number.get() == 14);
    }());
}

TEST_CASE("context_var - done callbacks run in the context of the code that added them", "[context_var][callbacks]") {
    coring::run([]() -> coring::task<> {
        auto h = coring::create_task(read_number_after_yield());
        auto token = number.set(31);
        int seen = -1;
        int* out = &seen;
        h.add_done_callback([out] { *out = number.get(); });
        number.set(32);
        co_await h;
        co_await coring::sleep(0s);
        CHECK(seen == 31);
    }());
}

TEST_CASE("context_var - the thread's own context: the main task starts from a copy, callbacks of main too", "[context_var]") {
    auto token = number.set(40);
    coring::event_loop loop;
    int early_callback = -1;
    loop.call_soon([&early_callback] { early_callback = number.get(); });  // captured before the run
    number.set(41);
    const int main_saw = loop.run_until_complete([]() -> coring::task<int> {
        const int seen = number.get();
        number.set(42);  // the main task's copy only
        co_await coring::sleep(0s);
        co_return seen;
    }());
    CHECK(early_callback == 40);
    CHECK(main_saw == 41);
    CHECK(number.get() == 41);
    loop.close();
    number.reset(token);
    CHECK(thread_context_is_empty());
}

// ------------------------------------------------------------------------------- values

TEST_CASE("context_var - a move-only value: copying a context shares it, never copies it", "[context_var]") {
    coring::context_var<std::unique_ptr<int>> owned{"owned"};
    coring::run([](coring::context_var<std::unique_ptr<int>>* var) -> coring::task<> {
        auto token = var->set(std::make_unique<int>(9));
        const int* here = var->get().get();
        const int* in_child = co_await coring::create_task([](coring::context_var<std::unique_ptr<int>>* v) -> coring::task<const int*> {
            co_await coring::sleep(0s);
            co_return v->get().get();
        }(var));
        CHECK(in_child == here);
        CHECK(*var->get() == 9);
        var->reset(token);
        CHECK_FALSE(var->is_set());
    }(&owned));
}

TEST_CASE("context_var - many variables, set in any order, each keeps its own value", "[context_var]") {
    coring::run([]() -> coring::task<> {
        constexpr int count = 200;
        std::vector<std::unique_ptr<coring::context_var<int>>> vars;
        for (int i = 0; i < count; ++i) vars.push_back(std::make_unique<coring::context_var<int>>("v" + std::to_string(i), -1));
        std::vector<int> order(count);
        for (int i = 0; i < count; ++i) order[static_cast<std::size_t>(i)] = (i * 37) % count;  // 37 is prime to 200
        std::vector<coring::context_var<int>::token> tokens;
        for (int i : order) tokens.push_back(vars[static_cast<std::size_t>(i)]->set(i * i));
        bool all = true;
        for (int i = 0; i < count; ++i) all = all && vars[static_cast<std::size_t>(i)]->get() == i * i;
        CHECK(all);
        auto* all_vars = &vars;
        const bool child_ok = co_await coring::create_task([](std::vector<std::unique_ptr<coring::context_var<int>>>* vs) -> coring::task<bool> {
            bool ok = true;
            for (std::size_t i = 0; i < vs->size(); i += 2) (*vs)[i]->set(0);
            co_await coring::sleep(0s);
            for (std::size_t i = 0; i < vs->size(); ++i) ok = ok && (*vs)[i]->get() == (i % 2 == 0 ? 0 : static_cast<int>(i * i));
            co_return ok;
        }(all_vars));
        CHECK(child_ok);
        all = true;
        for (int i = 0; i < count; ++i) all = all && vars[static_cast<std::size_t>(i)]->get() == i * i;
        CHECK(all);
        for (auto it = tokens.rbegin(); it != tokens.rend(); ++it) {
            // Each token belongs to one of the variables; only that one accepts it.
            const int index = order[static_cast<std::size_t>(tokens.rend() - it - 1)];
            vars[static_cast<std::size_t>(index)]->reset(*it);
        }
        const bool none_set = std::none_of(vars.begin(), vars.end(), [](const auto& v) { return v->is_set(); });
        CHECK(none_set);
    }());
}

TEST_CASE("context_var - a variable's identity is never reused by a later one", "[context_var]") {
    coring::run([]() -> coring::task<> {
        for (int i = 0; i < 3; ++i) {
            coring::context_var<int> local{"local"};  // likely the same address each time
            CHECK_FALSE(local.is_set());
            local.set(i);
        }
        co_return;
    }());
}

// ------------------------------------------------------------------------------- lifetimes

TEST_CASE("context_var - contexts are freed with the last task, callback, call or token that holds them", "[context_var][leaks]") {
    const std::size_t frames_before = live_frames();
    REQUIRE(counted::live == 1);  // tracked's default
    coring::task_handle<int> kept;
    coring::run([](coring::task_handle<int>* keep) -> coring::task<> {
        auto token = tracked.set(counted(1));
        auto replaced = tracked.set(counted(2));  // the token holds counted(1)'s box
        *keep = coring::create_task([]() -> coring::task<int> {
            tracked.set(counted(3));
            co_return tracked.get().value;
        }());
        auto first = coring::create_task(read_number_after_yield());
        coring::get_running_loop().call_soon([] { tracked.set(counted(4)); });
        coring::get_running_loop().call_later(1h, [] {});  // never runs: dropped at close
        const int in_thread = co_await coring::to_thread([] {
            tracked.set(counted(5));
            return tracked.get().value;
        });
        CHECK(in_thread == 5);
        co_await first;
        co_await coring::sleep(1ms);
        CHECK(counted::live >= 4);  // default, 1 (token), 2 (here), 3 (kept's context)
    }(&kept));
    // The finished task's state lives on in `kept`, and with it its context.
    CHECK(kept.result() == 3);
    CHECK(counted::live == 2);  // the default and counted(3)
    kept = {};
    CHECK(counted::live == 1);
    CHECK(live_frames() == frames_before);
    CHECK(thread_context_is_empty());
}

TEST_CASE("context_var - a to_thread cancelled before it started frees its context", "[context_var][leaks][to_thread]") {
    coring::run([]() -> coring::task<> {
        auto token = tracked.set(counted(7));
        // Occupy every pool thread, so that the next call stays queued and is taken back.
        const std::size_t threads = coring::thread_pool::default_max_threads();
        std::atomic<bool> release{false};
        std::atomic<bool>* gate = &release;
        std::vector<coring::task_handle<>> blockers;
        for (std::size_t i = 0; i < threads; ++i)
            blockers.push_back(coring::create_task([](std::atomic<bool>* g) -> coring::task<> {
                co_await coring::to_thread([g] {
                    while (!g->load()) std::this_thread::sleep_for(1ms);
                });
            }(gate)));
        co_await coring::sleep(20ms);
        auto queued = coring::create_task([]() -> coring::task<> { co_await coring::to_thread([] {}); }());
        co_await coring::sleep(1ms);
        queued.cancel();
        const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(queued);
        CHECK(cancelled);
        release = true;
        for (auto& b : blockers) co_await b;
    }());
    CHECK(counted::live == 1);
}
