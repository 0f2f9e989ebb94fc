// timeouts: asyncio's three ways of not waiting forever, side by side.
//
//   1. wait_for: give an operation a deadline; on expiry it is cancelled (and finishes its
//      cleanup) before timeout_error is thrown.
//   2. wait(first_completed): race several tasks, take the first, decide what to do with the
//      rest (here: cancel them).
//   3. shield: let an operation that must not be interrupted finish, even when the caller gives
//      up waiting for it.
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

using namespace std::chrono_literals;

coring::task<std::string> slow_query(std::string name, std::chrono::milliseconds delay) {
    try {
        co_await coring::sleep(delay);
    } catch (const coring::cancelled_error&) {
        std::printf("  %s: cancelled, cleaning up\n", name.c_str());
        throw;
    }
    co_return name + " answered after " + std::to_string(delay.count()) + " ms";
}

coring::task<> save_state(int& saved) {
    co_await coring::sleep(150ms);
    saved = 1;
    std::printf("  save_state: finished saving\n");
}

coring::task<> amain() {
    std::printf("1. wait_for\n");
    std::string quick = co_await coring::wait_for(slow_query("quick", 20ms), 200ms);
    std::printf("  %s\n", quick.c_str());
    try {
        (void)co_await coring::wait_for(slow_query("slow", 2000ms), 100ms);
    } catch (const coring::timeout_error&) {
        std::printf("  slow: timed out after 100 ms\n");
    }

    std::printf("2. wait(first_completed)\n");
    std::vector<coring::task_handle<std::string>> racers{coring::create_task(slow_query("mirror-a", 300ms)),
                                                         coring::create_task(slow_query("mirror-b", 50ms)),
                                                         coring::create_task(slow_query("mirror-c", 200ms))};
    auto [done, pending] = co_await coring::wait(racers, coring::return_when::first_completed);
    std::printf("  winner: %s\n", done.front().result().c_str());
    for (auto& loser : pending) loser.cancel();
    for (auto& loser : pending) {
        try {
            co_await loser;
        } catch (const coring::cancelled_error&) {
        }
    }

    std::printf("3. shield\n");
    int saved = 0;
    auto saving = coring::create_task(save_state(saved));
    try {
        co_await coring::wait_for(coring::shield(saving), 50ms);
    } catch (const coring::timeout_error&) {
        std::printf("  stopped waiting after 50 ms; the save goes on\n");
    }
    co_await saving;
    std::printf("  saved=%d\n", saved);
}

int main() {
    // Where io_uring is unavailable (switched off, a seccomp profile) the loop cannot start:
    // one line that says why, and status 1.
    try {
        coring::run(amain());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "timeouts: %s\n", e.what());
        return 1;
    }
    return 0;
}
