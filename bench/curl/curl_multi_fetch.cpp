// The C floor of coring_fetch: the same GETs with libcurl's multi interface driven by its own
// loop (curl_multi_perform and curl_multi_poll), `concurrency` easy handles in flight, each
// re-added for the next request when it finishes, the body collected into a string as the
// bridge does. Prints "requests N seconds S rps R".
//   curl_multi_fetch URL COUNT CONCURRENCY
#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

struct slot {
    CURL* easy = nullptr;
    std::string body;
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* target) {
    static_cast<std::string*>(target)->append(data, size * count);
    return size * count;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: curl_multi_fetch URL COUNT CONCURRENCY\n");
        return 2;
    }
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
