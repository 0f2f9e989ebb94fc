// gather of 10,000 children, beside the same work done by hand (create_task for each, then a
// loop of co_awaits on the handles). Target: at most 1.2x the hand-written loop per child.
//
//   gather_10k_ready        children that finish without suspending
//   gather_10k_sleep_1ms    children that each sleep 1 ms
#include <coring/coring.hpp>
#include <coring/gather.hpp>

#include "support/ratio_main.hpp"

#include <benchmark/benchmark.h>

#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr int children = 10'000;

coring::task<int> ready_child(int v) { co_return v; }

coring::task<int> sleeping_child(int v) {
    co_await coring::sleep(1ms);
    co_return v;
}

template <class Make>
coring::task<long> with_gather(Make make) {
    std::vector<coring::task<int>> tasks;
    tasks.reserve(children);
    for (int i = 0; i < children; ++i) tasks.push_back(make(i));
    std::vector<int> results = co_await coring::gather(std::move(tasks));
    long sum = 0;
    for (int v : results) sum += v;
    co_return sum;
}

template <class Make>
coring::task<long> by_hand(Make make) {
    std::vector<coring::task_handle<int>> handles;
    handles.reserve(children);
    for (int i = 0; i < children; ++i) handles.push_back(coring::create_task(make(i)));
    std::vector<int> results;
    results.reserve(children);
    for (auto& h : handles) results.push_back(co_await h);
    long sum = 0;
    for (int v : results) sum += v;
    co_return sum;
}

template <class Body>
void run_rounds(benchmark::State& state, Body body) {
    coring::run([](benchmark::State& st, Body b) -> coring::task<> {
        for (auto _ : st) benchmark::DoNotOptimize(co_await b());
    }(state, body));
    state.counters["ns_per_child"] = benchmark::Counter(static_cast<double>(state.iterations()) * children,
                                                        benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

void gather_ready(benchmark::State& s) { run_rounds(s, [] { return with_gather(ready_child); }); }
void by_hand_ready(benchmark::State& s) { run_rounds(s, [] { return by_hand(ready_child); }); }
void gather_sleeping(benchmark::State& s) { run_rounds(s, [] { return with_gather(sleeping_child); }); }
void by_hand_sleeping(benchmark::State& s) { run_rounds(s, [] { return by_hand(sleeping_child); }); }

}  // namespace

BENCHMARK(gather_ready)->Name("gather_10k_ready:coring")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(by_hand_ready)->Name("gather_10k_ready:create_task_loop")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(gather_sleeping)->Name("gather_10k_sleep_1ms:coring")->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(by_hand_sleeping)->Name("gather_10k_sleep_1ms:create_task_loop")->UseRealTime()->Unit(benchmark::kMicrosecond);

CORING_BENCHMARK_MAIN()
