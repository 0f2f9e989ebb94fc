// fetch_urls: the asyncio guides' concurrent web fetcher (aiohttp's), in coring.
//
// Every URL is fetched by its own task; a semaphore lets at most --concurrency of them talk to
// servers at once, and each fetch gets --timeout seconds (a fetch that takes longer fails with
// timeout_error and its transfer is dropped). Each finished fetch prints a progress line; a
// summary ends the run. The HTTP work is libcurl's, through coring's curl bridge
// (<coring/bridge/curl.hpp>): one http::client for the run, so fetches from the same server
// reuse kept-alive connections, and https ones to an HTTP/2 server share a connection.
//
//   $ ./fetch_urls --concurrency 4 --timeout 2 http://127.0.0.1:8080/ https://example.org/ ...
//   [ 1/12] 200       107 B    0.9 ms  http://127.0.0.1:8080/
//   ...
//   [12/12] timed out after 2.0 s     http://127.0.0.1:8080/sleep/5000
//   12 URLs in 2.01 s: 10 ok, 1 HTTP error, 1 failed; 1070 bytes; at most 4 at once
//
// http:// and https:// URLs alike: https verifies the server against the system's trust store
// (or --cafile FILE, for a private CA) and its host name. The exit status is 1 if a fetch
// failed (an HTTP error status is not a failure). URLs come from the command line, or from
// standard input, one per line.
#include <coring/bridge/curl.hpp>
#include <coring/coring.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct run_state {
    coring::http::client client;
    coring::semaphore slots;
    std::chrono::duration<double> timeout;
    std::string cafile;
    std::size_t total = 0;
    std::size_t finished = 0;
    std::size_t ok = 0;
    std::size_t http_errors = 0;
    std::size_t failed = 0;
    std::size_t bytes = 0;
    std::size_t active = 0;
    std::size_t most_active = 0;

    run_state(std::size_t concurrency, std::chrono::duration<double> t) : slots(static_cast<std::ptrdiff_t>(concurrency)), timeout(t) {}
};

coring::task<> fetch_one(run_state& run, std::string text) {
    auto permit = co_await run.slots.scoped_acquire();  // at most --concurrency fetches at once
    run.most_active = std::max(run.most_active, ++run.active);
    const auto start = std::chrono::steady_clock::now();
    std::string error;
    coring::http::response result;
    if (text.starts_with("http://") || text.starts_with("https://")) {
        coring::http::options options;
        options.timeout = std::chrono::duration_cast<std::chrono::milliseconds>(run.timeout);
        if (!run.cafile.empty()) options.cafile = run.cafile.c_str();
        try {
            result = co_await run.client.get(text, options);
        } catch (const coring::timeout_error&) {
            char message[64];
            std::snprintf(message, sizeof message, "timed out after %.1f s", run.timeout.count());
            error = message;
        } catch (const coring::http::error& e) {
            error = e.reason();
        }
    } else {
        error = "not an http:// or https:// URL";
    }
    --run.active;
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    ++run.finished;
    const int width = static_cast<int>(std::to_string(run.total).size());
    if (error.empty()) {
        ++(result.status >= 200 && result.status < 300 ? run.ok : run.http_errors);
        run.bytes += result.body.size();
        std::printf("[%*zu/%zu] %3d %9zu B %8.1f ms  %s\n", width, run.finished, run.total, result.status, result.body.size(), ms, text.c_str());
    } else {
        ++run.failed;
        std::printf("[%*zu/%zu] %-31s %s\n", width, run.finished, run.total, error.c_str(), text.c_str());
    }
    std::fflush(stdout);
}

coring::task<int> amain(std::vector<std::string> urls, std::size_t concurrency, double timeout_seconds, std::string cafile) {
    run_state run(concurrency, std::chrono::duration<double>(timeout_seconds));
    run.cafile = std::move(cafile);
    run.total = urls.size();
    const auto start = std::chrono::steady_clock::now();
    std::vector<coring::task<>> fetches;
    fetches.reserve(urls.size());
    for (std::string& u : urls) fetches.push_back(fetch_one(run, std::move(u)));
    co_await coring::gather(std::move(fetches));
    const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%zu URLs in %.2f s: %zu ok, %zu HTTP error%s, %zu failed; %zu bytes; at most %zu at once\n", run.total, took, run.ok, run.http_errors,
                run.http_errors == 1 ? "" : "s", run.failed, run.bytes, run.most_active);
    co_return run.failed == 0 ? 0 : 1;
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: fetch_urls [--concurrency N] [--timeout SECONDS] [--cafile FILE] URL... (or URLs on standard input)\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t concurrency = 10;
    double timeout = 10;
    std::vector<std::string> urls;
    std::string cafile;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--concurrency" && i + 1 < argc)
            concurrency = static_cast<std::size_t>(std::atol(argv[++i]));
        else if (arg == "--timeout" && i + 1 < argc)
            timeout = std::atof(argv[++i]);
        else if (arg == "--cafile" && i + 1 < argc)
            cafile = argv[++i];
        else if (arg.starts_with("--"))
            usage();
        else
            urls.push_back(arg);
    }
    if (concurrency == 0 || timeout <= 0) usage();
    if (urls.empty())
        for (std::string line; std::getline(std::cin, line);)
            if (!line.empty()) urls.push_back(line);
    if (urls.empty()) usage();
    try {
        return coring::run(amain(std::move(urls), concurrency, timeout, std::move(cafile)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fetch_urls: %s\n", e.what());
        return 1;
    }
}
