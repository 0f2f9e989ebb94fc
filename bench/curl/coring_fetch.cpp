// GETs of one URL through coring's curl bridge: `count` requests, `concurrency` at a time (one
// task per slot, each fetching until the count is reached), all on one http::client. Prints
// "requests N seconds S rps R". Beside it in compare.sh: curl_multi_fetch.cpp (libcurl's multi
// interface in its own curl_multi_poll loop) and aiohttp_fetch.py.
//   coring_fetch URL COUNT CONCURRENCY
#include <coring/bridge/curl.hpp>
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct run_state {
    std::string url;
    long remaining;
    long failures = 0;
    std::size_t bytes = 0;
};

coring::task<> fetcher(coring::http::client& c, run_state& run) {
    while (run.remaining > 0) {
        --run.remaining;
        const coring::http::response r = co_await c.get(run.url);
        if (r.status != 200) ++run.failures;
        run.bytes += r.body.size();
    }
}

coring::task<int> amain(std::string url, long count, long concurrency) {
    coring::http::client c;
    run_state run{std::move(url), count};
    const auto start = std::chrono::steady_clock::now();
    std::vector<coring::task<>> fetchers;
    for (long i = 0; i < concurrency; ++i) fetchers.push_back(fetcher(c, run));
    co_await coring::gather(std::move(fetchers));
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("requests %ld seconds %.4f rps %.0f bytes %zu failures %ld\n", count, seconds, static_cast<double>(count) / seconds, run.bytes, run.failures);
    co_return run.failures == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: coring_fetch URL COUNT CONCURRENCY\n");
        return 2;
    }
    return coring::run(amain(argv[1], std::atol(argv[2]), std::atol(argv[3])));
}
