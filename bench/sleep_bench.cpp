// 100,000 concurrent tasks each sleeping 1 ms, beside 100,000 raw IORING_OP_TIMEOUTs submitted
// and reaped through liburing by hand: wall time per round (create, sleep, wake, finish).
// Target: coring at most 1.0x the raw ring's wall time.
//
// Also reported: resident memory per sleeping task (rss_per_task), measured in a fresh child
// process at the moment all 100,000 tasks sleep. Target: under 300 bytes. (The raw ring's
// timeouts live in kernel memory, which RSS does not show; Boost.Asio spends about 1.25 KB per
// waiting timer.)
#include <coring/coring.hpp>

#include "support/ratio_main.hpp"

#include <benchmark/benchmark.h>
#include <liburing.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace {

constexpr int sleepers = 100'000;

coring::task<> sleeper() { co_await coring::sleep(1ms); }

coring::task<> sleep_round(int n) {
    std::vector<coring::task_handle<>> handles;
    handles.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) handles.push_back(coring::create_task(sleeper()));
    for (auto& h : handles) co_await h;
}

void sleepers_coring(benchmark::State& state) {
    for (auto _ : state) coring::run(sleep_round(sleepers));
    state.SetItemsProcessed(state.iterations() * sleepers);
}

// The floor: the same number of 1 ms timeouts, each its own SQE, through one ring.
void sleepers_raw_liburing(benchmark::State& state) {
    for (auto _ : state) {
        io_uring ring;
        io_uring_params params{};
        params.flags = IORING_SETUP_CQSIZE;
        params.cq_entries = 8192;
        if (io_uring_queue_init_params(4096, &ring, &params) < 0) {
            state.SkipWithError("io_uring_queue_init failed");
            return;
        }
        __kernel_timespec ts{0, 1'000'000};  // copied by the kernel at submission
        int submitted = 0;
        int reaped = 0;
        while (reaped < sleepers) {
            while (submitted < sleepers) {
                io_uring_sqe* sqe = io_uring_get_sqe(&ring);
                if (sqe == nullptr) break;
                io_uring_prep_timeout(sqe, &ts, 0, 0);
                io_uring_sqe_set_data64(sqe, static_cast<unsigned long long>(submitted) + 1);
                ++submitted;
            }
            io_uring_submit_and_wait(&ring, submitted == sleepers ? 1 : 0);
            io_uring_cqe* cqe;
            unsigned head;
            unsigned n = 0;
            io_uring_for_each_cqe(&ring, head, cqe) ++n;
            io_uring_cq_advance(&ring, n);
            reaped += static_cast<int>(n);
        }
        io_uring_queue_exit(&ring);
    }
    state.SetItemsProcessed(state.iterations() * sleepers);
}

long rss_bytes() {
    long pages_total = 0, pages_resident = 0;
    FILE* f = std::fopen("/proc/self/statm", "r");
    if (f == nullptr) return 0;
    if (std::fscanf(f, "%ld %ld", &pages_total, &pages_resident) != 2) pages_resident = 0;
    std::fclose(f);
    return pages_resident * sysconf(_SC_PAGESIZE);
}

// Resident bytes per sleeping task. Runs in a freshly executed copy of this program (see
// main): a forked child would reuse memory the parent already made resident.
double rss_per_task_in_this_process() {
    double per_task = -1;
    coring::run([](double& out) -> coring::task<> {
        co_await coring::sleep(0s);
        const long before = rss_bytes();
        std::vector<coring::task_handle<>> handles;
        handles.reserve(sleepers);
        for (int i = 0; i < sleepers; ++i) handles.push_back(coring::create_task([]() -> coring::task<> { co_await coring::sleep(50ms); }()));
        co_await coring::sleep(0s);  // every task has started and sits in the timer heap
        out = static_cast<double>(rss_bytes() - before) / sleepers;
        for (auto& h : handles) co_await h;
    }(per_task));
    return per_task;
}

double measure_rss_per_task() {
    char self[4096];
    const ssize_t len = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return -1;
    self[len] = '\0';
    const std::string command = std::string("'") + self + "' --measure-rss-per-task";
    FILE* child = ::popen(command.c_str(), "r");
    if (child == nullptr) return -1;
    double per_task = -1;
    if (std::fscanf(child, "%lf", &per_task) != 1) per_task = -1;
    ::pclose(child);
    return per_task;
}

void rss_per_sleeping_task(benchmark::State& state) {
    double per_task = 0;
    for (auto _ : state) per_task = measure_rss_per_task();
    state.counters["rss_per_task"] = per_task;
}

}  // namespace

BENCHMARK(sleepers_coring)->Name("sleep_100k_tasks_1ms:coring")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(sleepers_raw_liburing)->Name("sleep_100k_tasks_1ms:raw_liburing")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(rss_per_sleeping_task)->Name("rss_bytes_per_sleeping_task")->Iterations(1)->Unit(benchmark::kMillisecond);

int main(int argc, char** argv) {
    if (argc == 2 && std::string_view(argv[1]) == "--measure-rss-per-task") {
        std::printf("%.1f\n", rss_per_task_in_this_process());
        return 0;
    }
    return coring_bench::run_main(argc, argv);
}
