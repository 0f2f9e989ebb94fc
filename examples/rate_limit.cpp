// rate_limit: a semaphore that limits how many tasks do their work at the same time, as the
// asyncio guides do with `async with semaphore:` around a download.
//
// Twelve "downloads" (each a 50 ms sleep) start at once, but a coring::semaphore(4) lets only
// four run at a time: the others wait for a permit, first come first served. So the whole batch
// takes three rounds, about 150 ms, and never more than four run concurrently.
//
//   $ ./rate_limit
//   download 0 started
//   ...
//   12 downloads done in 0.15 s, at most 4 at a time (limit 4)
#include <coring/coring.hpp>
#include <coring/sync/semaphore.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct counters {
    int running = 0;
    int most_running = 0;
    int done = 0;
};

coring::task<> download(coring::semaphore& limit, counters& c, int id) {
    auto permit = co_await limit.scoped_acquire();  // released when `permit` goes out of scope
    ++c.running;
    c.most_running = std::max(c.most_running, c.running);
    std::printf("download %d started (%d running)\n", id, c.running);
    co_await coring::sleep(50ms);  // the work: a request, a file, ...
    --c.running;
    ++c.done;
}

coring::task<> amain() {
    constexpr int downloads = 12;
    constexpr int limit = 4;
    coring::semaphore slots(limit);
    counters c;

    const auto start = std::chrono::steady_clock::now();
    std::vector<coring::task_handle<>> tasks;
    for (int i = 0; i < downloads; ++i) tasks.push_back(coring::create_task(download(slots, c, i)));
    for (auto& t : tasks) co_await t;
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;

    std::printf("%d downloads done in %.2f s, at most %d at a time (limit %d)\n", c.done, took.count(), c.most_running, limit);
}

}  // namespace

int main() {
    // Where io_uring is unavailable (switched off, a seccomp profile) the loop cannot start:
    // one line that says why, and status 1.
    try {
        coring::run(amain());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "rate_limit: %s\n", e.what());
        return 1;
    }
    return 0;
}
