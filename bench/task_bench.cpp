// Task and loop micro-benchmarks, each beside its baseline:
//
//   await_ready_task   create + co_await + destroy of a task that completes at once, beside a
//                      minimal hand-written lazy task with a free-list allocator (this file).
//                      Target: at most 1.2x.
//   await_create_task  co_await coring::create_task(t): a task through the ready queue (one
//                      loop iteration). Target: under 100 ns. asyncio: bench/asyncio_baseline.py.
//   sleep0_round_trip  co_await sleep(0s): yield to the loop and come back, beside a coroutine
//                      that yields to a minimal scheduler (its handle pushed on a std::deque and
//                      resumed from it): the floor for a task switch.
//   call_soon          callbacks scheduled and run, per callback, beside std::function callbacks
//                      pushed on a std::deque and run in order.
//   sleep0_profiled    sleep0_round_trip in profile mode (loop_options::profile), beside the same
//                      without it: the difference is profile mode's cost per task step. Target:
//                      at most 100 ns.
//   sleep0_traced      sleep0_round_trip with tracing (loop_options::trace_file, a file in the
//                      temporary folder, removed afterwards), beside the same without it: what
//                      tracing costs a step (its slice, written to the buffer and the file).
#include <coring/coring.hpp>

#include "support/handwritten_scheduler.hpp"
#include "support/ratio_main.hpp"

#include <benchmark/benchmark.h>

#include <coroutine>
#include <cstddef>
#include <deque>
#include <exception>
#include <filesystem>
#include <functional>
#include <string>
#include <system_error>
#include <utility>

#include <unistd.h>

using namespace std::chrono_literals;

// --------------------------------------------------------------------------- the baseline task
// The least a lazy task can do: a free-list frame allocator, symmetric transfer, a value slot.
namespace handwritten {

struct free_list {
    struct block {
        block* next;
    };
    static inline thread_local block* head = nullptr;
    static void* allocate(std::size_t n) {
        if (head != nullptr) {
            block* b = head;
            head = b->next;
            return b;
        }
        return ::operator new(n < 256 ? 256 : n);
    }
    static void deallocate(void* p) noexcept {
        auto* b = static_cast<block*>(p);
        b->next = head;
        head = b;
    }
};

template <class T>
struct task {
    struct promise_type {
        T value{};
        std::coroutine_handle<> continuation;
        task get_return_object() { return task{std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        struct final_awaiter {
            bool await_ready() noexcept { return false; }
            std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> h) noexcept { return h.promise().continuation; }
            void await_resume() noexcept {}
        };
        final_awaiter final_suspend() noexcept { return {}; }
        void return_value(T v) { value = v; }
        void unhandled_exception() { std::terminate(); }
        static void* operator new(std::size_t n) { return free_list::allocate(n); }
        static void operator delete(void* p) noexcept { free_list::deallocate(p); }
    };
    std::coroutine_handle<promise_type> h;
    explicit task(std::coroutine_handle<promise_type> handle) : h(handle) {}
    task(task&& o) noexcept : h(std::exchange(o.h, {})) {}
    ~task() {
        if (h) h.destroy();
    }
    bool await_ready() noexcept { return false; }
    std::coroutine_handle<> await_suspend(std::coroutine_handle<> c) noexcept {
        h.promise().continuation = c;
        return h;
    }
    T await_resume() noexcept { return h.promise().value; }
};

// A coroutine that is started by hand and never suspends for long: the benchmark driver.
struct driver {
    struct promise_type {
        driver get_return_object() { return driver{std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_always final_suspend() noexcept { return {}; }
        void return_void() {}
        void unhandled_exception() { std::terminate(); }
    };
    std::coroutine_handle<promise_type> h;
    ~driver() { h.destroy(); }
    void run() { h.resume(); }
};

task<int> leaf(int v) { co_return v + 1; }

driver await_loop(benchmark::State& state) {
    long sum = 0;
    for (auto _ : state) sum += co_await leaf(static_cast<int>(sum & 1));
    benchmark::DoNotOptimize(sum);
}

using scheduler = coring_bench::handwritten_scheduler;

struct yield_awaiter {
    scheduler& s;
    bool await_ready() const noexcept { return false; }
    void await_suspend(std::coroutine_handle<> h) { s.ready.push_back(h); }
    void await_resume() const noexcept {}
};

driver yield_loop(scheduler& s, benchmark::State& state) {
    for (auto _ : state) co_await yield_awaiter{s};
}

}  // namespace handwritten

// --------------------------------------------------------------------------- coring

namespace {

coring::task<int> leaf(int v) { co_return v + 1; }
coring::task<> noop_task() { co_return; }

// Symmetric transfer is a tail call only where the compiler guarantees it: clang always, g++
// only when optimizing and without ASan (GCC PR 100897). Elsewhere the baseline's stack grows
// with every await and overflows; coring's task does not (that is what it pays the
// difference in await_ready_task for).
#if defined(__clang__) || (defined(__OPTIMIZE__) && !CORING_ASAN)
constexpr bool handwritten_baseline_is_safe = true;
#else
constexpr bool handwritten_baseline_is_safe = false;
#endif

void await_ready_task_handwritten(benchmark::State& state) {
    if (!handwritten_baseline_is_safe) {
        state.SkipWithError("the hand-written baseline needs tail calls for symmetric transfer (g++ -O0 / ASan lack them)");
        return;
    }
    auto d = handwritten::await_loop(state);
    d.run();
}

void await_ready_task_coring(benchmark::State& state) {
    coring::run([](benchmark::State& st) -> coring::task<> {
        long sum = 0;
        for (auto _ : st) sum += co_await leaf(static_cast<int>(sum & 1));
        benchmark::DoNotOptimize(sum);
    }(state));
}

void await_create_task_coring(benchmark::State& state) {
    coring::run([](benchmark::State& st) -> coring::task<> {
        for (auto _ : st) co_await coring::create_task(noop_task());
    }(state));
}

void sleep0_round_trip_coring(benchmark::State& state) {
    coring::run([](benchmark::State& st) -> coring::task<> {
        for (auto _ : st) co_await coring::sleep(0s);
    }(state));
}

void sleep0_profiled(benchmark::State& state, bool profile) {
    coring::run([](benchmark::State& st) -> coring::task<> {
        for (auto _ : st) co_await coring::sleep(0s);
    }(state), {.profile = profile});
}

void sleep0_traced(benchmark::State& state, bool trace) {
    // One file for the process: a trace file stays open until exit, and the loops of the
    // benchmark's repeated runs share it.
    const std::string file = (std::filesystem::temp_directory_path() / ("coring_task_bench_trace_" + std::to_string(::getpid()) + ".json")).string();
    coring::loop_options options;
    if (trace) options.trace_file = file.c_str();
    coring::run([](benchmark::State& st) -> coring::task<> {
        for (auto _ : st) co_await coring::sleep(0s);
    }(state), options);
    std::error_code ignored;
    std::filesystem::remove(file, ignored);
}

void sleep0_round_trip_handwritten(benchmark::State& state) {
    handwritten::scheduler s;
    auto d = handwritten::yield_loop(s, state);
    s.ready.push_back(d.h);
    s.run();
}

constexpr int call_soon_batch = 1000;

void call_soon_coring(benchmark::State& state) {
    constexpr int batch = call_soon_batch;
    coring::run([](benchmark::State& st) -> coring::task<> {
        auto& loop = coring::get_running_loop();
        long ran = 0;
        for (auto _ : st) {
            for (int i = 0; i < batch; ++i) loop.call_soon([&ran] { ++ran; });
            co_await coring::sleep(0s);  // one iteration runs the whole batch
        }
        benchmark::DoNotOptimize(ran);
    }(state));
    state.SetItemsProcessed(state.iterations() * batch);
}

void call_soon_handwritten(benchmark::State& state) {
    std::deque<std::function<void()>> callbacks;
    long ran = 0;
    for (auto _ : state) {
        for (int i = 0; i < call_soon_batch; ++i) callbacks.emplace_back([&ran] { ++ran; });
        while (!callbacks.empty()) {
            std::function<void()> callback = std::move(callbacks.front());
            callbacks.pop_front();
            callback();
        }
    }
    benchmark::DoNotOptimize(ran);
    state.SetItemsProcessed(state.iterations() * call_soon_batch);
}

}  // namespace

BENCHMARK(await_ready_task_coring)->Name("await_ready_task:coring");
BENCHMARK(await_ready_task_handwritten)->Name("await_ready_task:handwritten");
BENCHMARK(await_create_task_coring)->Name("await_create_task:coring");
BENCHMARK(sleep0_round_trip_coring)->Name("sleep0_round_trip:coring");
BENCHMARK(sleep0_round_trip_handwritten)->Name("sleep0_round_trip:handwritten");
BENCHMARK_CAPTURE(sleep0_profiled, on, true)->Name("sleep0_profiled:coring");
BENCHMARK_CAPTURE(sleep0_profiled, off, false)->Name("sleep0_profiled:without_profile");
BENCHMARK_CAPTURE(sleep0_traced, on, true)->Name("sleep0_traced:coring");
BENCHMARK_CAPTURE(sleep0_traced, off, false)->Name("sleep0_traced:without_trace");
BENCHMARK(call_soon_coring)->Name("call_soon_x1000:coring");
BENCHMARK(call_soon_handwritten)->Name("call_soon_x1000:std_function_deque");

CORING_BENCHMARK_MAIN()
