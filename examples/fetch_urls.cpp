// fetch_urls: the asyncio guides' concurrent web fetcher, in coring.
//
// Every URL is fetched by its own task; a semaphore lets at most --concurrency of them talk to
// servers at once, and wait_for gives each fetch --timeout seconds (a fetch that takes longer is
// cancelled: its connection is closed). Each finished fetch prints a progress line; a summary
// ends the run. The HTTP client is a few lines on open_connection: a GET with "Connection:
// close", readuntil for the response head, readexactly (or read to EOF) for the body.
//
//   $ ./fetch_urls --concurrency 4 --timeout 2 http://127.0.0.1:8080/ http://127.0.0.1:8080/sleep/5000 ...
//   [ 1/12] 200       107 B    0.9 ms  http://127.0.0.1:8080/
//   ...
//   [12/12] timed out after 2.0 s     http://127.0.0.1:8080/sleep/5000
//   12 URLs in 2.01 s: 10 ok, 1 HTTP error, 1 failed; 1070 bytes; at most 4 at once
//
// http:// and https:// URLs: https verifies the server against the system's trust store (plus
// --cafile FILE, for a private CA) and its host name, through a shared client tls_context. The
// exit status is 1 if a fetch failed (an HTTP error status is not a failure). URLs come from the
// command line, or from standard input, one per line.
#include <coring/coring.hpp>
#include <coring/net/stream.hpp>
#include <coring/net/tls.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct url {
    bool https = false;
    std::string host;
    std::uint16_t port = 80;
    std::string path;
};

// One client context for every https fetch (as asyncio code shares one ssl.SSLContext).
coring::tls_context g_tls;

// "http://host[:port][/path]" or "https://host[:port][/path]"
std::optional<url> parse_url(std::string_view text) {
    url u;
    if (text.starts_with("https://")) {
        u.https = true;
        u.port = 443;
        text.remove_prefix(8);
    } else if (text.starts_with("http://")) {
        text.remove_prefix(7);
    } else {
        return std::nullopt;
    }
    const std::size_t slash = text.find('/');
    std::string_view authority = text.substr(0, slash);
    u.path = slash == std::string_view::npos ? "/" : std::string(text.substr(slash));
    const std::size_t colon = authority.rfind(':');
    if (colon != std::string_view::npos && authority.find(']', colon) == std::string_view::npos) {
        const int port = std::atoi(std::string(authority.substr(colon + 1)).c_str());
        if (port <= 0 || port > 65535) return std::nullopt;
        u.port = static_cast<std::uint16_t>(port);
        authority = authority.substr(0, colon);
    }
    if (authority.size() >= 2 && authority.front() == '[' && authority.back() == ']') authority = authority.substr(1, authority.size() - 2);
    if (authority.empty()) return std::nullopt;
    u.host = authority;
    return u;
}

struct fetched {
    int status = 0;
    std::size_t bytes = 0;
};

// One GET. Throws std::system_error (connection errors), std::runtime_error (a malformed
// response) or coring::incomplete_read (the server closed too early).
coring::task<fetched> fetch(url u) {
    coring::stream_options options;
    if (u.https) options.tls = g_tls;  // the host name checked is u.host
    auto [reader, writer] = co_await coring::open_connection(u.host, u.port, options);
    writer.write("GET " + u.path + " HTTP/1.1\r\nHost: " + u.host + "\r\nUser-Agent: coring-fetch-urls\r\nConnection: close\r\n\r\n");
    co_await writer.drain();
    const std::string head = co_await reader.readuntil("\r\n\r\n");
    // "HTTP/1.1 200 OK"
    if (!head.starts_with("HTTP/1.") || head.size() < 12) throw std::runtime_error("not an HTTP response");
    fetched result;
    result.status = std::atoi(head.substr(9, 3).c_str());
    std::optional<std::size_t> length;
    for (std::size_t at = head.find("\r\n") + 2; at < head.size();) {
        const std::size_t end = head.find("\r\n", at);
        std::string line = head.substr(at, end - at);
        for (std::size_t i = 0; i < line.size() && line[i] != ':'; ++i) line[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(line[i])));
        if (line.starts_with("content-length:")) length = static_cast<std::size_t>(std::strtoull(line.c_str() + 15, nullptr, 10));
        at = end + 2;
    }
    std::string body;
    if (length)
        body = co_await reader.readexactly(*length);
    else
        body = co_await reader.read();  // to EOF (the server closes: "Connection: close")
    result.bytes = body.size();
    writer.close();
    co_await writer.wait_closed();
    co_return result;
}

struct run_state {
    coring::semaphore slots;
    std::chrono::duration<double> timeout;
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
    fetched result;
    if (const std::optional<url> u = parse_url(text)) {
        try {
            result = co_await coring::wait_for(fetch(*u), run.timeout);
        } catch (const coring::timeout_error&) {
            char message[64];
            std::snprintf(message, sizeof message, "timed out after %.1f s", run.timeout.count());
            error = message;
        } catch (const std::exception& e) {
            error = e.what();
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
        run.bytes += result.bytes;
        std::printf("[%*zu/%zu] %3d %9zu B %8.1f ms  %s\n", width, run.finished, run.total, result.status, result.bytes, ms, text.c_str());
    } else {
        ++run.failed;
        std::printf("[%*zu/%zu] %-31s %s\n", width, run.finished, run.total, error.c_str(), text.c_str());
    }
    std::fflush(stdout);
}

coring::task<int> amain(std::vector<std::string> urls, std::size_t concurrency, double timeout_seconds) {
    run_state run(concurrency, std::chrono::duration<double>(timeout_seconds));
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
        g_tls = coring::tls_context::client();
        if (!cafile.empty()) g_tls.load_verify_locations(cafile);
        return coring::run(amain(std::move(urls), concurrency, timeout));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "fetch_urls: %s\n", e.what());
        return 1;
    }
}
