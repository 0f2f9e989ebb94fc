// Tests of coring/detail/leaf_awaiter.hpp: the protocol every awaiter that suspends a task
// follows, checked on a minimal awaiter written here (a "manual event" that the test wakes by
// hand): begin_suspend and a pending cancel, arm and on_cancel, wake through the ready queue,
// the task that a resumed frame runs as, and awaiting outside a task.
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/state_base.hpp>

#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/run.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using coring_test::virtual_clock;
using coring::detail::ready_node;
using coring::detail::scheduler;
using coring::detail::state_base;

namespace {

class manual_event;

/// The test's side of a manual event: where the awaiter registers while it waits, and what the
/// awaiter saw and did.
struct manual_slot {
    manual_event* waiting = nullptr;    // registered and not yet woken or cancelled
    int registrations = 0;              // await_suspend calls that registered
    int cancels = 0;                    // on_cancel calls
    int cancels_won = 0;                // on_cancel calls that undid the registration
    scheduler* loop_seen = nullptr;     // leaf_awaiter::loop() in await_suspend
    state_base* task_seen = nullptr;    // leaf_awaiter::task() in await_suspend
    bool begin_suspend_result = false;  // what begin_suspend returned
};

/// A minimal leaf awaiter: it waits until the test calls wake_up(slot, value), and follows the
/// protocol of leaf_awaiter.hpp to the letter.
class manual_event final : public coring::detail::leaf_awaiter<ready_node> {
public:
    explicit manual_event(manual_slot& slot) noexcept : leaf_awaiter(operations_), m_slot(&slot) {}

    [[nodiscard]] bool await_ready() const noexcept { return false; }

    bool await_suspend(std::coroutine_handle<> frame) {
        const bool suspend = begin_suspend(frame);
        m_slot->begin_suspend_result = suspend;
        m_slot->loop_seen = &loop();
        m_slot->task_seen = task();
        if (!suspend) return false;  // a pending cancel: resume at once, await_resume throws
        m_slot->waiting = this;
        ++m_slot->registrations;
        arm();
        return true;
    }

    int await_resume() const {
        throw_if_cancelled();
        return m_value;
    }

    /// The awaited thing happened: hand over `value` and wake the frame through the ready queue.
    void fire(int value) noexcept {
        m_value = value;
        m_woken = true;
        m_slot->waiting = nullptr;
        wake();
    }

private:
    static void on_cancel(ready_node* node) noexcept {
        auto& self = static_cast<manual_event&>(*node);
        ++self.m_slot->cancels;
        if (self.m_woken) return;  // the wake-up won: the request stays pending for the next suspension
        ++self.m_slot->cancels_won;
        self.take_cancel_request();
        self.m_slot->waiting = nullptr;  // undo the registration
        self.mark_cancelled();
        self.wake();
    }
    static constexpr operations operations_{&resume_frame, &on_cancel};

    manual_slot* m_slot;
    int m_value = 0;
    bool m_woken = false;
};

/// The test's "set" of the manual event.
void wake_up(manual_slot& slot, int value) {
    REQUIRE(slot.waiting != nullptr);
    slot.waiting->fire(value);
}

/// The running loop, as the scheduler that awaiters see.
scheduler* the_running_loop() { return &coring::detail::running_scheduler(); }

/// A coroutine that is not a coring::task: it starts at once and frees itself at the end. A
/// frame of it runs with no task state.
struct detached {
    struct promise_type {
        detached get_return_object() const noexcept { return {}; }
        [[nodiscard]] std::suspend_never initial_suspend() const noexcept { return {}; }
        [[nodiscard]] std::suspend_never final_suspend() const noexcept { return {}; }
        void return_void() const noexcept {}
        [[noreturn]] void unhandled_exception() const noexcept { std::terminate(); }
    };
};

struct detached_outcome {
    int value = -1;
    bool resumed = false;
    bool resumed_without_task = false;  // a loop ran it, and no task was current
    std::string error;
};

detached await_in_detached(manual_slot& slot, detached_outcome& out) {
    try {
        out.value = co_await manual_event(slot);
    } catch (const std::logic_error& e) {
        out.error = e.what();
    }
    out.resumed = true;
    const scheduler* running = coring::detail::t_running_scheduler;
    out.resumed_without_task = running != nullptr && running->current_task_state() == nullptr;
}

}  // namespace

TEST_CASE("leaf_awaiter - wake resumes the frame through the ready queue with the result", "[detail][leaf_awaiter]") {
    coring::run(
        []() -> coring::task<> {
            auto body = [](manual_slot& slot, bool& resumed) -> coring::task<int> {
                const int v = co_await manual_event(slot);
                resumed = true;
                co_return v;
            };
            manual_slot slot;
            bool resumed = false;
            auto h = coring::create_task(body(slot, resumed));
            co_await coring::sleep(0s);
            REQUIRE(slot.registrations == 1);
            CHECK(slot.begin_suspend_result);
            CHECK(h.native_state()->suspended_in() == static_cast<const ready_node*>(slot.waiting));  // armed
            wake_up(slot, 42);
            CHECK_FALSE(resumed);  // never inline: it waits for the next run phase
            co_await coring::sleep(0s);
            CHECK(resumed);
            const int v = co_await h;
            CHECK(v == 42);
            CHECK(slot.cancels == 0);
        }(),
        virtual_clock);
}

TEST_CASE("leaf_awaiter - a pending cancel: begin_suspend returns false and await_resume throws without suspending", "[detail][leaf_awaiter]") {
    coring::run(
        []() -> coring::task<> {
            struct observed {
                bool accepted = false;
                bool threw = false;
                std::uint64_t iterations_before = 0;
                std::uint64_t iterations_after = 0;
                bool pending_after = true;
            };
            auto body = [](manual_slot& slot, observed& o) -> coring::task<> {
                o.accepted = coring::current_task().cancel();
                o.iterations_before = coring::get_running_loop().stats().iterations;
                try {
                    (void)co_await manual_event(slot);
                } catch (const coring::cancelled_error&) {
                    o.threw = true;
                }
                o.iterations_after = coring::get_running_loop().stats().iterations;
                o.pending_after = coring::current_task().native_state()->cancel_requested();
            };
            manual_slot slot;
            observed o;
            auto h = coring::create_task(body(slot, o));
            co_await h;
            CHECK(o.accepted);
            CHECK(o.threw);
            CHECK_FALSE(slot.begin_suspend_result);
            CHECK(slot.registrations == 0);                   // it never registered
            CHECK(o.iterations_after == o.iterations_before);  // nor suspended: the same step went on
            CHECK_FALSE(o.pending_after);                      // the request was delivered, and spent
            CHECK(slot.task_seen == h.native_state());
            CHECK_FALSE(h.cancelled());  // the body caught it and ended normally
        }(),
        virtual_clock);
}

TEST_CASE("leaf_awaiter - a cancel while suspended goes through on_cancel and resumes with cancelled_error", "[detail][leaf_awaiter]") {
    coring::run(
        []() -> coring::task<> {
            auto body = [](manual_slot& slot, int& stage) -> coring::task<int> {
                stage = 1;
                try {
                    const int v = co_await manual_event(slot);
                    stage = 3;
                    co_return v;
                } catch (const coring::cancelled_error&) {
                    stage = 2;
                    throw;
                }
            };
            manual_slot slot;
            int stage = 0;
            auto h = coring::create_task(body(slot, stage));
            co_await coring::sleep(0s);
            REQUIRE(slot.waiting != nullptr);
            CHECK(h.cancel());
            CHECK(slot.cancels == 1);  // synchronously, inside cancel()
            CHECK(slot.cancels_won == 1);
            CHECK(slot.waiting == nullptr);  // unregistered
            CHECK(stage == 1);               // and not resumed inline
            CHECK_FALSE(h.native_state()->cancel_requested());  // on_cancel consumed it
            CHECK(h.native_state()->suspended_in() == nullptr);  // the slot was taken
            const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
            CHECK(cancelled);
            CHECK(stage == 2);
            CHECK(h.cancelled());
            CHECK(slot.cancels == 1);
        }(),
        virtual_clock);
}

TEST_CASE("leaf_awaiter - a wake before the cancel wins; the request is delivered at the next suspension point", "[detail][leaf_awaiter]") {
    coring::run(
        []() -> coring::task<> {
            auto body = [](manual_slot& slot, std::vector<std::string>& log) -> coring::task<> {
                const int v = co_await manual_event(slot);
                log.push_back("got " + std::to_string(v));
                co_await coring::sleep(0s);  // the pending request is delivered here
                log.push_back("not reached");
            };
            manual_slot slot;
            std::vector<std::string> log;
            auto h = coring::create_task(body(slot, log));
            co_await coring::sleep(0s);
            wake_up(slot, 7);
            CHECK(h.cancel());  // in the same step: the wake-up is already queued
            CHECK(slot.cancels == 1);
            CHECK(slot.cancels_won == 0);
            CHECK(h.native_state()->cancel_requested());  // pending
            const bool cancelled = co_await coring_test::throws<coring::cancelled_error>(h);
            CHECK(cancelled);
            CHECK(log == std::vector<std::string>{"got 7"});
            CHECK(h.cancelled());
        }(),
        virtual_clock);
}

TEST_CASE("leaf_awaiter - the slot is disarmed before the frame resumes: a later cancel waits for the next suspension", "[detail][leaf_awaiter]") {
    coring::run(
        []() -> coring::task<> {
            struct observed {
                int value = 0;
                bool disarmed_after = false;
                int cancels_after = -1;
                bool threw = false;
            };
            auto body = [](manual_slot& slot, observed& o) -> coring::task<> {
                o.value = co_await manual_event(slot);
                o.disarmed_after = coring::current_task().native_state()->suspended_in() == nullptr;
                coring::current_task().cancel();
                o.cancels_after = slot.cancels;  // nothing to fire: the leaf is no longer the slot
                try {
                    co_await coring::sleep(0s);
                } catch (const coring::cancelled_error&) {
                    o.threw = true;
                }
            };
            manual_slot slot;
            observed o;
            auto h = coring::create_task(body(slot, o));
            co_await coring::sleep(0s);
            wake_up(slot, 3);
            co_await h;
            CHECK(o.value == 3);
            CHECK(o.disarmed_after);
            CHECK(o.cancels_after == 0);
            CHECK(o.threw);
        }(),
        virtual_clock);
}

namespace {

// Awaits a manual_event on `slot`; records the task it runs as once resumed.
coring::task<int> await_and_note_task(manual_slot& slot, state_base*& seen) {
    const int v = co_await manual_event(slot);
    seen = coring::current_task().native_state();
    co_return v;
}

}  // namespace

TEST_CASE("leaf_awaiter - a frame woken by a callback resumes as the task that awaited", "[detail][leaf_awaiter]") {
    coring::run(
        []() -> coring::task<> {
            manual_slot slot_a, slot_b;
            state_base* seen_a = nullptr;
            state_base* seen_b = nullptr;
            auto a = coring::create_task(await_and_note_task(slot_a, seen_a));
            auto b = coring::create_task(await_and_note_task(slot_b, seen_b));
            co_await coring::sleep(0s);
            CHECK(slot_a.task_seen == a.native_state());
            CHECK(slot_b.task_seen == b.native_state());
            // Woken by a callback (no current task), b first.
            bool callback_had_task = true;
            auto wake_both = [&] {
                callback_had_task = static_cast<bool>(coring::current_task());
                wake_up(slot_b, 2);
                wake_up(slot_a, 1);
            };
            coring::get_running_loop().call_soon(wake_both);
            const int va = co_await a;
            const int vb = co_await b;
            CHECK_FALSE(callback_had_task);
            CHECK(va == 1);
            CHECK(vb == 2);
            CHECK(seen_a == a.native_state());
            CHECK(seen_b == b.native_state());
        }(),
        virtual_clock);
}

TEST_CASE("leaf_awaiter - a frame woken by another task resumes as the task that awaited", "[detail][leaf_awaiter]") {
    coring::run(
        []() -> coring::task<> {
            manual_slot slot_c;
            state_base* seen_c = nullptr;
            auto c = coring::create_task(await_and_note_task(slot_c, seen_c));
            co_await coring::sleep(0s);
            wake_up(slot_c, 3);
            const int vc = co_await c;
            CHECK(vc == 3);
            CHECK(seen_c == c.native_state());
            CHECK(seen_c != coring::current_task().native_state());
        }(),
        virtual_clock);
}

TEST_CASE("leaf_awaiter - loop() is the running scheduler", "[detail][leaf_awaiter]") {
    coring::run(
        []() -> coring::task<> {
            manual_slot slot;
            auto body = [](manual_slot& s) -> coring::task<int> { co_return co_await manual_event(s); };
            auto h = coring::create_task(body(slot));
            co_await coring::sleep(0s);
            CHECK(slot.loop_seen == the_running_loop());
            CHECK(slot.loop_seen == coring::detail::t_running_scheduler);
            CHECK(slot.task_seen->loop() == slot.loop_seen);
            wake_up(slot, 1);
            const int v = co_await h;
            CHECK(v == 1);
        }(),
        virtual_clock);
}

TEST_CASE("leaf_awaiter - a coroutine that is not a created task suspends and resumes without a task state", "[detail][leaf_awaiter]") {
    coring::run(
        []() -> coring::task<> {
            manual_slot slot;
            detached_outcome out;
            auto start_it = [&slot, &out] { await_in_detached(slot, out); };
            coring::get_running_loop().call_soon(start_it);  // a callback: no current task
            co_await coring::sleep(0s);
            REQUIRE(slot.registrations == 1);
            CHECK(slot.begin_suspend_result);
            CHECK(slot.task_seen == nullptr);
            CHECK(slot.loop_seen == the_running_loop());  // found through the running loop
            CHECK_FALSE(out.resumed);
            wake_up(slot, 11);
            CHECK_FALSE(out.resumed);
            co_await coring::sleep(0s);
            CHECK(out.resumed);
            CHECK(out.value == 11);
            CHECK(out.error.empty());
            CHECK(out.resumed_without_task);
        }(),
        virtual_clock);
}

TEST_CASE("leaf_awaiter - awaiting with no running loop throws std::logic_error before registering", "[detail][leaf_awaiter]") {
    REQUIRE(coring::detail::t_running_scheduler == nullptr);
    manual_slot slot;
    detached_outcome out;
    await_in_detached(slot, out);
    CHECK(out.resumed);
    CHECK(out.error == coring::detail::no_running_loop_text);
    CHECK(slot.registrations == 0);
    CHECK(slot.loop_seen == nullptr);
}
