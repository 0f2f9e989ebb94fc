#pragma once
// A main() for coring's Google Benchmark binaries that prints, after the usual table, the ratio
// of every "<case>:coring" run to its "<case>:<baseline>" siblings (real time per iteration).
//
//   await_ready_task:coring        6.9 ns
//   await_ready_task:handwritten   6.1 ns
//   -> ratio await_ready_task  coring / handwritten = 1.13
//
// Use: #include "support/ratio_main.hpp" and CORING_BENCHMARK_MAIN() at the end of the file.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace coring_bench {

class ratio_reporter : public benchmark::ConsoleReporter {
public:
    void ReportRuns(const std::vector<Run>& runs) override {
        ConsoleReporter::ReportRuns(runs);
        for (const Run& run : runs) {
            // Plain runs; with repetitions (--benchmark_repetitions or ->Repetitions()), only
            // their median: single repetitions on a noisy machine say little.
            if (run.error_occurred) continue;
            if (run.run_type == Run::RT_Aggregate && run.aggregate_name != "median") continue;
            if (run.run_type == Run::RT_Iteration && run.repetitions > 1) continue;
            std::string name = run.run_name.str();
            // "case:impl/extra..." -> case, impl (the rest stays part of the case)
            const auto colon = name.find(':');
            if (colon == std::string::npos) continue;
            const auto slash = name.find('/', colon);
            std::string impl = name.substr(colon + 1, slash == std::string::npos ? std::string::npos : slash - colon - 1);
            std::string key = name.substr(0, colon) + (slash == std::string::npos ? "" : name.substr(slash));
            m_times[key].emplace_back(impl, run.GetAdjustedRealTime());
        }
    }

    void Finalize() override {
        ConsoleReporter::Finalize();
        bool header = false;
        for (const auto& [key, impls] : m_times) {
            const double* ours = nullptr;
            for (const auto& [impl, t] : impls)
                if (impl == "coring") ours = &t;
            if (ours == nullptr) continue;
            for (const auto& [impl, t] : impls) {
                if (impl == "coring" || t <= 0) continue;
                if (!header) {
                    std::printf("\nratios (real time, lower is better for coring):\n");
                    header = true;
                }
                std::printf("  %-48s coring / %-22s = %6.3f\n", key.c_str(), impl.c_str(), *ours / t);
            }
        }
        std::fflush(stdout);
    }

private:
    std::map<std::string, std::vector<std::pair<std::string, double>>> m_times;
};

inline int run_main(int argc, char** argv) {
    benchmark::Initialize(&argc, argv);
    if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
    ratio_reporter reporter;
    benchmark::RunSpecifiedBenchmarks(&reporter);
    benchmark::Shutdown();
    return 0;
}

}  // namespace coring_bench

#define CORING_BENCHMARK_MAIN() \
    int main(int argc, char** argv) { return coring_bench::run_main(argc, argv); }
