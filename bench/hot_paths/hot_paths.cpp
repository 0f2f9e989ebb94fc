// The loop's hot paths, each repeated N times, for counting instructions per iteration under
// callgrind (bench/hot_paths/compare.sh). Timed benchmarks on this VM move by several percent
// when the compiler merely places code differently; an instruction count does not, so it is
// what shows whether a change to the centre (a hook, a branch) added work to these paths.
//
//   hot_paths PATH N     PATH: one of the names in `paths` below
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

using namespace std::chrono_literals;

namespace {

coring::task<int> ready_leaf(int x) { co_return x + 1; }

coring::task<> await_ready_task(long n) {
    long sum = 0;
    for (long i = 0; i < n; ++i) sum += co_await ready_leaf(static_cast<int>(sum & 1));
    std::printf("%ld\n", sum);
}

coring::task<> await_create_task(long n) {
    long sum = 0;
    for (long i = 0; i < n; ++i) sum += co_await coring::create_task(ready_leaf(1));
    std::printf("%ld\n", sum);
}

coring::task<> sleep0(long n) {
    for (long i = 0; i < n; ++i) co_await coring::sleep(0s);
}

coring::task<> mutex_lock_unlock(long n) {
    coring::mutex m;
    long sum = 0;
    for (long i = 0; i < n; ++i) {
        co_await m.lock();
        ++sum;
        m.unlock();
    }
    std::printf("%ld\n", sum);
}

coring::task<> queue_put_get(long n) {
    coring::queue<int> q;
    long sum = 0;
    for (long i = 0; i < n; ++i) {
        co_await q.put(static_cast<int>(i));
        sum += co_await q.get();
    }
    std::printf("%ld\n", sum);
}

coring::task<> echo_back(coring::queue<int>& in, coring::queue<int>& out, long n) {
    for (long i = 0; i < n; ++i) co_await out.put(co_await in.get());
}

// Two tasks handing an item back and forth: every get suspends and every put wakes a task.
coring::task<> queue_ping_pong(long n) {
    coring::queue<int> there(1);
    coring::queue<int> back(1);
    auto peer = coring::create_task(echo_back(there, back, n));
    long sum = 0;
    for (long i = 0; i < n; ++i) {
        co_await there.put(static_cast<int>(i));
        sum += co_await back.get();
    }
    co_await peer;
    std::printf("%ld\n", sum);
}

struct path {
    const char* name;
    coring::task<> (*body)(long);
};
constexpr path paths[] = {
    {"await_ready_task", &await_ready_task}, {"await_create_task", &await_create_task}, {"sleep0", &sleep0},
    {"mutex_lock_unlock", &mutex_lock_unlock}, {"queue_put_get", &queue_put_get},   {"queue_ping_pong", &queue_ping_pong},
};

}  // namespace

int main(int argc, char** argv) {
    if (argc == 2 && std::strcmp(argv[1], "--list") == 0) {
        for (const path& p : paths) std::printf("%s\n", p.name);
        return 0;
    }
    if (argc != 3) {
        std::fprintf(stderr, "usage: hot_paths PATH N | hot_paths --list\n");
        return 2;
    }
    const long n = std::atol(argv[2]);
    for (const path& p : paths)
        if (std::strcmp(argv[1], p.name) == 0) {
            coring::run(p.body(n));
            return 0;
        }
    std::fprintf(stderr, "hot_paths: no path named '%s' (--list names them)\n", argv[1]);
    return 2;
}
