// gather: the asyncio guides' concurrent "fetch_data" example, in coring.
//
// Three fetches that each take about a second run concurrently; gather returns their results
// in argument order (not completion order) after about one second in all.
//
//   $ ./gather
//   fetching url1 ...
//   fetching url2 ...
//   fetching url3 ...
//   done fetching url3
//   done fetching url2
//   done fetching url1
//   results: [data from url1, data from url2, data from url3] in 1.00 s
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <exception>
#include <string>

using namespace std::chrono_literals;

coring::task<std::string> fetch_data(std::string url, std::chrono::milliseconds delay) {
    std::printf("fetching %s ...\n", url.c_str());
    co_await coring::sleep(delay);  // stands in for the network round trip
    std::printf("done fetching %s\n", url.c_str());
    co_return "data from " + url;
}

coring::task<> amain() {
    const auto start = std::chrono::steady_clock::now();
    // Slightly different delays, so that they finish in the reverse order of the arguments.
    auto [a, b, c] = co_await coring::gather(fetch_data("url1", 1020ms), fetch_data("url2", 1010ms), fetch_data("url3", 1000ms));
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    std::printf("results: [%s, %s, %s] in %.2f s\n", a.c_str(), b.c_str(), c.c_str(), took.count());
}

int main() {
    // Where io_uring is unavailable (switched off, a seccomp profile) the loop cannot start:
    // one line that says why, and status 1.
    try {
        coring::run(amain());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "gather: %s\n", e.what());
        return 1;
    }
    return 0;
}
