// hello: the classic first asyncio program, in coring.
//
// Three tasks each print "started", sleep one second and print "completed". They run
// concurrently on one thread, so the whole program takes about one second, not three.
//
//   $ ./hello
//   task A started
//   task B started
//   task C started
//   task A completed
//   task B completed
//   task C completed
//   all done in 1.00 s
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

using namespace std::chrono_literals;

coring::task<> say_after(std::string name, std::chrono::milliseconds delay) {
    std::printf("task %s started\n", name.c_str());
    co_await coring::sleep(delay);
    std::printf("task %s completed\n", name.c_str());
}

coring::task<> amain() {
    const auto start = std::chrono::steady_clock::now();
    auto a = coring::create_task(say_after("A", 1s));
    auto b = coring::create_task(say_after("B", 1s));
    auto c = coring::create_task(say_after("C", 1s));
    co_await a;
    co_await b;
    co_await c;
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("all done in %.2f s\n", took.count());
}

int main() {
    // Where io_uring is unavailable (switched off, a seccomp profile) the loop cannot start:
    // one line that says why, and status 1.
    try {
        coring::run(amain());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "hello: %s\n", e.what());
        return 1;
    }
    return 0;
}
