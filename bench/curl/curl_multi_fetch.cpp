// The C floor of coring_fetch: the same GETs with libcurl's multi interface driven by its own
// loop (curl_multi_perform and curl_multi_poll), `concurrency` easy handles in flight, each
// re-added for the next request when it finishes, the body collected into a string as the
// bridge does. Prints "requests N seconds S rps R".
//   curl_multi_fetch URL COUNT CONCURRENCY [same-work]
// With `same-work` it also does what the bridge does beyond that for every response: collects
// the headers as name/value pairs through a header callback and sets the bridge's default
// options (a 300 s timeout as aiohttp's, the body limit, redirects, http and https only).
#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace {

struct slot {
    CURL* easy = nullptr;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* target) {
    static_cast<std::string*>(target)->append(data, size * count);
    return size * count;
}

// "Name: value\r\n" lines become pairs; a status line starts them afresh (as the bridge).
std::size_t collect_header(char* data, std::size_t size, std::size_t count, void* target) {
    auto& headers = static_cast<slot*>(target)->headers;
    std::string_view line(data, size * count);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (line.compare(0, 5, "HTTP/") == 0) {
        headers.clear();
    } else if (const std::size_t colon = line.find(':'); colon != std::string_view::npos) {
        std::string_view value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
        headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
    }
    return size * count;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4 && !(argc == 5 && std::string_view(argv[4]) == "same-work")) {
        std::fprintf(stderr, "usage: curl_multi_fetch URL COUNT CONCURRENCY [same-work]\n");
        return 2;
    }
    const bool same_work = argc == 5;
    const char* url = argv[1];
    const long count = std::atol(argv[2]);
    const long concurrency = std::atol(argv[3]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM* multi = curl_multi_init();
    std::vector<slot> slots(static_cast<std::size_t>(concurrency));
    long started = 0, finished = 0, failures = 0;
    std::size_t bytes = 0;
    const auto start = std::chrono::steady_clock::now();
    for (slot& s : slots) {
        s.easy = curl_easy_init();
        curl_easy_setopt(s.easy, CURLOPT_URL, url);
        curl_easy_setopt(s.easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(s.easy, CURLOPT_ACCEPT_ENCODING, "");  // as the bridge (and aiohttp) ask
        curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, &collect);
        curl_easy_setopt(s.easy, CURLOPT_WRITEDATA, &s.body);
        curl_easy_setopt(s.easy, CURLOPT_PRIVATE, &s);
        if (same_work) {
            curl_easy_setopt(s.easy, CURLOPT_HEADERFUNCTION, &collect_header);
            curl_easy_setopt(s.easy, CURLOPT_HEADERDATA, &s);
            curl_easy_setopt(s.easy, CURLOPT_TIMEOUT_MS, 300'000L);
            curl_easy_setopt(s.easy, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(64) << 20);
            curl_easy_setopt(s.easy, CURLOPT_FOLLOWLOCATION, 1L);
            curl_easy_setopt(s.easy, CURLOPT_MAXREDIRS, 10L);
#if LIBCURL_VERSION_NUM >= 0x075500
            curl_easy_setopt(s.easy, CURLOPT_PROTOCOLS_STR, "http,https");
            curl_easy_setopt(s.easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#endif
        }
        if (started < count) {
            ++started;
            curl_multi_add_handle(multi, s.easy);
        }
    }
    while (finished < count) {
        int running = 0;
        curl_multi_perform(multi, &running);
        int left = 0;
        while (CURLMsg* message = curl_multi_info_read(multi, &left)) {
            if (message->msg != CURLMSG_DONE) continue;
            slot* s = nullptr;
            curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &s);
            long status = 0;
            curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
            if (message->data.result != CURLE_OK || status != 200) ++failures;
            bytes += s->body.size();
            s->body.clear();
            s->headers.clear();
            ++finished;
            curl_multi_remove_handle(multi, s->easy);
            if (started < count) {
                ++started;
                curl_multi_add_handle(multi, s->easy);
            }
        }
        if (finished < count) curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("requests %ld seconds %.4f rps %.0f bytes %zu failures %ld\n", count, seconds, static_cast<double>(count) / seconds, bytes, failures);
    for (slot& s : slots) curl_easy_cleanup(s.easy);
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return failures == 0 ? 0 : 1;
}
