// scrape: the asyncio guides' web-scraping example done properly. A crawler that starts from one
// or more URLs, fetches pages concurrently through the curl bridge, parses each page with a real
// HTML parser (gumbo, as BeautifulSoup parses for Python) to collect its title and its links,
// follows the links that stay on the same site, and prints a report.
//
//   $ ./scrape --per-host 4 --timeout 5 --retries 3 http://127.0.0.1:8080/
//   200  http://127.0.0.1:8080/              Home
//   200  http://127.0.0.1:8080/a/1.html      Page a1
//   404  http://127.0.0.1:8080/gone.html     (broken link, from http://127.0.0.1:8080/a/1.html)
//   ...
//   32 pages in 0.21 s: 30 ok, 1 broken link, 1 failed; at most 4 requests at once to a host
//
// The shape is asyncio's worker pool: a queue of URLs to visit, workers that take from it and
// put the new links they find, and queue.join() to know when the site is exhausted. Around each
// fetch: a semaphore per host (--per-host requests at once), a timeout (--timeout seconds), and
// retries with exponential back-off (--retries, starting at 100 ms and doubling, with jitter)
// for transport errors, timeouts and 5xx answers. At most --max-pages pages are visited. Links
// are resolved against the page's URL (RFC 3986's relative references: "../b.html", "/c",
// "?q", "//host/x"), fragments dropped, and only http(s) links on the start URL's scheme, host
// and port are followed. The exit status is 1 if a page could not be fetched at all.
#include <coring/bridge/curl.hpp>
#include <coring/coring.hpp>

#include <gumbo.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;

namespace {

// ------------------------------------------------------------------ URLs

struct url_parts {
    std::string scheme;     // "http"
    std::string authority;  // "host:port"
    std::string path;       // "/a/b.html" (never empty)
    std::string query;      // "?x=1" or ""
};

std::optional<url_parts> split_url(std::string_view text) {
    const std::size_t colon = text.find("://");
    if (colon == std::string_view::npos) return std::nullopt;
    url_parts u;
    u.scheme = std::string(text.substr(0, colon));
    std::transform(u.scheme.begin(), u.scheme.end(), u.scheme.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    text.remove_prefix(colon + 3);
    const std::size_t path_at = text.find_first_of("/?");
    u.authority = std::string(text.substr(0, path_at));
    if (u.authority.empty()) return std::nullopt;
    text = path_at == std::string_view::npos ? std::string_view() : text.substr(path_at);
    const std::size_t query_at = text.find('?');
    u.path = std::string(text.substr(0, query_at));
    if (query_at != std::string_view::npos) u.query = std::string(text.substr(query_at));
    if (u.path.empty()) u.path = "/";
    return u;
}

std::string join_url(const url_parts& u) { return u.scheme + "://" + u.authority + u.path + u.query; }

// RFC 3986, 5.2.4: "/a/b/../c/./d" -> "/a/c/d".
std::string remove_dot_segments(std::string_view path) {
    std::vector<std::string_view> kept;
    std::size_t at = 1;  // after the leading '/'
    while (at <= path.size()) {
        const std::size_t slash = path.find('/', at);
        const std::string_view segment = path.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at);
        if (segment == "..") {
            if (!kept.empty()) kept.pop_back();
        } else if (segment != ".") {
            kept.push_back(segment);
        }
        if (slash == std::string_view::npos) {
            if (segment == "." || segment == "..") kept.emplace_back();  // "/a/.." is the directory "/"
            break;
        }
        at = slash + 1;
    }
    std::string out;
    for (const std::string_view segment : kept) {
        out += '/';
        out += segment;
    }
    return out.empty() ? "/" : out;
}

// The absolute URL `ref` refers to from the page `base`, or nothing for other schemes
// (mailto:, javascript:, ...). The fragment is dropped.
std::optional<std::string> resolve(const url_parts& base, std::string_view ref) {
    while (!ref.empty() && (ref.front() == ' ' || ref.front() == '\n' || ref.front() == '\t')) ref.remove_prefix(1);
    while (!ref.empty() && (ref.back() == ' ' || ref.back() == '\n' || ref.back() == '\t')) ref.remove_suffix(1);
    ref = ref.substr(0, ref.find('#'));
    url_parts target = base;
    if (ref.empty()) return join_url(base);
    const std::size_t scheme_end = ref.find(':');
    if (scheme_end != std::string_view::npos && ref.find_first_of("/?") > scheme_end) {
        std::optional<url_parts> absolute = split_url(ref);
        if (!absolute || (absolute->scheme != "http" && absolute->scheme != "https")) return std::nullopt;
        absolute->path = remove_dot_segments(absolute->path);
        return join_url(*absolute);
    }
    if (ref.starts_with("//")) return resolve(base, base.scheme + ":" + std::string(ref));
    const std::size_t query_at = ref.find('?');
    const std::string_view ref_path = ref.substr(0, query_at);
    target.query = query_at == std::string_view::npos ? std::string() : std::string(ref.substr(query_at));
    if (ref_path.empty()) {
        // "?q": the same path
    } else if (ref_path.front() == '/') {
        target.path = remove_dot_segments(ref_path);
    } else {
        const std::string directory = base.path.substr(0, base.path.rfind('/') + 1);
        target.path = remove_dot_segments(directory + std::string(ref_path));
    }
    return join_url(target);
}

// ------------------------------------------------------------------ HTML

struct page_contents {
    std::string title;
    std::vector<std::string> links;  // href values, as written
};

void walk(const GumboNode* node, page_contents& out) {
    if (node->type != GUMBO_NODE_ELEMENT) return;
    const GumboElement& element = node->v.element;
    if (element.tag == GUMBO_TAG_TITLE && out.title.empty()) {
        for (unsigned i = 0; i < element.children.length; ++i) {
            const auto* child = static_cast<const GumboNode*>(element.children.data[i]);
            if (child->type == GUMBO_NODE_TEXT || child->type == GUMBO_NODE_WHITESPACE) out.title += child->v.text.text;
        }
    } else if (element.tag == GUMBO_TAG_A) {
        if (const GumboAttribute* href = gumbo_get_attribute(&element.attributes, "href")) out.links.emplace_back(href->value);
    }
    for (unsigned i = 0; i < element.children.length; ++i) walk(static_cast<const GumboNode*>(element.children.data[i]), out);
}

page_contents parse_html(const std::string& html) {
    GumboOutput* output = gumbo_parse_with_options(&kGumboDefaultOptions, html.data(), html.size());
    page_contents contents;
    walk(output->root, contents);
    gumbo_destroy_output(&kGumboDefaultOptions, output);
    // Titles as a reader sees them: runs of white space collapsed.
    std::string title;
    for (const char c : contents.title) {
        const bool space = c == ' ' || c == '\n' || c == '\t' || c == '\r';
        if (space && (title.empty() || title.back() == ' ')) continue;
        title += space ? ' ' : c;
    }
    while (!title.empty() && title.back() == ' ') title.pop_back();
    contents.title = title;
    return contents;
}

// ------------------------------------------------------------------ the crawl

struct settings {
    std::size_t per_host = 4;
    std::size_t max_pages = 1000;
    double timeout_seconds = 10;
    int retries = 3;
};

struct page_report {
    int status = 0;           // 0: not fetched
    std::string title;
    std::string error;        // why it could not be fetched
    std::string found_on;     // the first page that linked to it
    int attempts = 0;
};

class crawler {
public:
    explicit crawler(settings s) : m_settings(s) {}

    coring::task<int> run(std::vector<std::string> starts) {
        const auto began = std::chrono::steady_clock::now();
        for (const std::string& start : starts) {
            std::optional<url_parts> u = split_url(start);
            if (!u || (u->scheme != "http" && u->scheme != "https")) {
                std::fprintf(stderr, "scrape: not an http:// or https:// URL: %s\n", start.c_str());
                co_return 2;
            }
            m_sites.insert(u->scheme + "://" + u->authority);
            enqueue(join_url(*u), "");
        }
        // As many workers as the hosts together may serve at once.
        std::vector<coring::task_handle<>> workers;
        for (std::size_t i = 0; i < m_settings.per_host * m_sites.size(); ++i) workers.push_back(coring::create_task(worker()));
        co_await m_queue.join();
        for (coring::task_handle<>& w : workers) w.cancel();
        for (coring::task_handle<>& w : workers) {
            try {
                co_await w;
            } catch (const coring::cancelled_error&) {
            }
        }
        co_return report(std::chrono::steady_clock::now() - began);
    }

private:
    void enqueue(const std::string& url, const std::string& found_on) {
        if (m_pages.contains(url) || m_pages.size() >= m_settings.max_pages) return;
        m_pages[url].found_on = found_on;
        m_queue.put_nowait(url);
    }

    coring::task<> worker() {
        for (;;) {
            const std::string url = co_await m_queue.get();
            co_await visit(url);
            m_queue.task_done();
        }
    }

    coring::semaphore& host_slots(const std::string& authority) {
        std::unique_ptr<coring::semaphore>& slots = m_per_host[authority];
        if (!slots) slots = std::make_unique<coring::semaphore>(static_cast<std::ptrdiff_t>(m_settings.per_host));
        return *slots;
    }

    // Fetches with retries: transport errors, timeouts and 5xx answers are tried again after
    // 100 ms, 200 ms, 400 ms, ... (each with up to 50% jitter), the rest are final.
    coring::task<std::optional<coring::http::response>> fetch(const std::string& url, const url_parts& parts, page_report& report) {
        std::chrono::milliseconds backoff = 100ms;
        for (int attempt = 0;; ++attempt) {
            report.attempts = attempt + 1;
            std::string failure;
            std::optional<coring::http::response> response;
            {
                auto permit = co_await host_slots(parts.authority).scoped_acquire();
                m_most_at_once = std::max(m_most_at_once, ++m_in_flight);
                coring::http::options options;
                options.timeout = std::chrono::milliseconds(static_cast<long>(m_settings.timeout_seconds * 1000));
                try {
                    response = co_await m_client.get(url, options);
                } catch (const coring::timeout_error&) {
                    failure = "timed out";
                } catch (const coring::http::error& e) {
                    failure = e.reason();
                }
                --m_in_flight;
            }
            if (response && response->status < 500) co_return response;
            if (response) failure = "HTTP " + std::to_string(response->status);
            if (attempt == m_settings.retries) {
                report.error = failure + " (after " + std::to_string(attempt + 1) + " attempts)";
                if (response) co_return response;
                co_return std::nullopt;
            }
            const auto jitter = std::chrono::milliseconds(std::uniform_int_distribution<long>(0, backoff.count() / 2)(m_random));
            co_await coring::sleep(backoff + jitter);
            backoff *= 2;
        }
    }

    coring::task<> visit(const std::string& url) {
        page_report& report = m_pages[url];
        const url_parts parts = *split_url(url);
        const std::optional<coring::http::response> response = co_await fetch(url, parts, report);
        if (!response) co_return;
        report.status = response->status;
        const std::optional<std::string_view> type = response->header("content-type");
        if (response->status != 200 || !type || type->find("text/html") == std::string_view::npos) co_return;
        const page_contents contents = parse_html(response->body);
        report.title = contents.title;
        // Links are relative to where the page came from (after redirects).
        const url_parts here = split_url(response->url).value_or(parts);
        for (const std::string& href : contents.links) {
            const std::optional<std::string> link = resolve(here, href);
            if (!link) continue;
            const std::optional<url_parts> target = split_url(*link);
            if (target && m_sites.contains(target->scheme + "://" + target->authority)) enqueue(*link, url);
        }
    }

    int report(std::chrono::steady_clock::duration took) const {
        std::size_t ok = 0, broken = 0, failed = 0, width = 0;
        for (const auto& [url, page] : m_pages) width = std::max(width, url.size());
        for (const auto& [url, page] : m_pages) {
            const int w = static_cast<int>(width);
            if (page.status == 0) {
                ++failed;
                std::printf("---  %-*s  (failed: %s)\n", w, url.c_str(), page.error.c_str());
            } else if (page.status >= 400) {
                ++(page.status >= 500 ? failed : broken);
                std::printf("%3d  %-*s  (%s, from %s)\n", page.status, w, url.c_str(), page.status >= 500 ? page.error.c_str() : "broken link",
                            page.found_on.empty() ? "the command line" : page.found_on.c_str());
            } else {
                ++ok;
                std::printf("%3d  %-*s  %s\n", page.status, w, url.c_str(), page.title.c_str());
            }
        }
        std::printf("%zu pages in %.2f s: %zu ok, %zu broken link%s, %zu failed; at most %zu requests at once to a host\n", m_pages.size(),
                    std::chrono::duration<double>(took).count(), ok, broken, broken == 1 ? "" : "s", failed, m_most_at_once);
        return failed == 0 ? 0 : 1;
    }

    settings m_settings;
    coring::http::client m_client;
    coring::queue<std::string> m_queue;  // URLs to visit
    std::map<std::string, page_report> m_pages;  // every URL queued so far, sorted for the report
    std::set<std::string> m_sites;                // "scheme://authority" of the start URLs
    std::map<std::string, std::unique_ptr<coring::semaphore>> m_per_host;
    std::size_t m_in_flight = 0;
    std::size_t m_most_at_once = 0;
    std::mt19937 m_random{std::random_device{}()};
};

// The crawler lives in the loop: its http::client belongs to the running loop.
coring::task<int> crawl(settings s, std::vector<std::string> starts) {
    crawler c(s);
    co_return co_await c.run(std::move(starts));
}

[[noreturn]] void usage() {
    std::fprintf(stderr, "usage: scrape [--per-host N] [--max-pages N] [--timeout SECONDS] [--retries N] URL...\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    std::vector<std::string> starts;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        const bool has_value = i + 1 < argc;
        if (arg == "--per-host" && has_value)
            s.per_host = static_cast<std::size_t>(std::atol(argv[++i]));
        else if (arg == "--max-pages" && has_value)
            s.max_pages = static_cast<std::size_t>(std::atol(argv[++i]));
        else if (arg == "--timeout" && has_value)
            s.timeout_seconds = std::atof(argv[++i]);
        else if (arg == "--retries" && has_value)
            s.retries = std::atoi(argv[++i]);
        else if (arg.starts_with("--"))
            usage();
        else
            starts.push_back(arg);
    }
    if (starts.empty() || s.per_host == 0 || s.max_pages == 0 || s.timeout_seconds <= 0 || s.retries < 0) usage();
    try {
        return coring::run(crawl(s, std::move(starts)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "scrape: %s\n", e.what());
        return 1;
    }
}
