#pragma once
// The least machinery that lets coroutines take turns: a FIFO of handles resumed one after
// another. The hand-written baselines of task_bench (a yield) and sync_bench (the queue
// ping-pong) switch through it, where coring switches through its event loop.

#include <coroutine>
#include <deque>

namespace coring_bench {

struct handwritten_scheduler {
    std::deque<std::coroutine_handle<>> ready;

    void run() {
        while (!ready.empty()) {
            std::coroutine_handle<> next = ready.front();
            ready.pop_front();
            next.resume();
        }
    }
};

}  // namespace coring_bench
