// A user's program: the umbrella header, a task, a sleep, create_task and run.
#include <coring/coring.hpp>

#include <cstdio>
#include <system_error>

using namespace std::chrono_literals;

coring::task<int> half(int v) {
    co_await coring::sleep(1ms);
    co_return v / 2;
}

coring::task<int> amain() {
    auto h = coring::create_task(half(84));
    co_return co_await h;
}

int main() {
    try {
        std::printf("consumer: %d\n", coring::run(amain()));
    } catch (const std::system_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return 77;
    }
}
