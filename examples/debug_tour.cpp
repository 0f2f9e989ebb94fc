// debug_tour: coring's debugging tools on a small program.
//
//   1. Debug mode (loop_options{.debug = true}, or CORING_DEBUG=1) reports a task step that
//      holds the loop too long: here a "hog" that busy-waits 150 ms instead of sleeping.
//   2. dump_tasks prints the live task tree: who awaits whom, what each task awaits, and where
//      it was created. (kill -USR1 <pid> prints the same from a live program once
//      dump_tasks_on_signal() was called.)
//   3. stats() says what the loop has done.
#include <coring/coring.hpp>
#include <coring/debug.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <iostream>

using namespace std::chrono_literals;

coring::task<> download(std::chrono::milliseconds how_long) { co_await coring::sleep(how_long); }

coring::task<> crawler() {
    // A gather of two downloads: both show under the crawler in the dump.
    co_await coring::gather(download(300ms), download(500ms));
}

coring::task<> hog() {
    co_await coring::sleep(0s);
    const auto until = std::chrono::steady_clock::now() + 150ms;
    while (std::chrono::steady_clock::now() < until) {
        // Busy work that should have been co_await coring::to_thread(...) or a sleep.
    }
}

coring::task<> amain() {
    std::printf("1. a step that blocks the loop for 150 ms (the report goes to stderr):\n");
    std::fflush(stdout);
    co_await coring::create_task(hog(), "hog");

    std::printf("\n2. the live task tree:\n");
    coring::task_group workers;
    workers.create_task(crawler(), "crawler");
    workers.create_task(download(1s), "big-download");
    auto& loop = coring::get_running_loop();
    loop.call_later(100ms, [&loop] {  // while this task awaits the group's join
        coring::dump_tasks(loop, std::cout);
        std::cout.flush();
    });
    co_await workers.join();

    std::printf("\n3. loop statistics:\n%s\n", coring::format_stats(coring::get_running_loop().stats()).c_str());
}

int main() {
    // Where io_uring is unavailable (switched off, a seccomp profile) the loop cannot start:
    // one line that says why, and status 1.
    try {
        coring::run(amain(), coring::loop_options{.debug = true});
    } catch (const std::exception& e) {
        std::fprintf(stderr, "debug_tour: %s\n", e.what());
        return 1;
    }
    return 0;
}
