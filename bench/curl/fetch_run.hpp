#pragma once
// What the C clients of compare.sh share: `concurrency` easy handles in flight on one multi
// handle, each re-added for the next request when it finishes until `count` have been made,
// the body collected into a string as the bridge does, and the closing report
// "requests N seconds S rps R bytes B failures F". Each client drives the multi handle its own
// way and calls collect_finished() when curl may have finished transfers.
#include <curl/curl.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace fetch {

struct slot {
    CURL* easy = nullptr;
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

inline std::size_t collect_body(char* data, std::size_t size, std::size_t count, void* target) {
    static_cast<slot*>(target)->body.append(data, size * count);
    return size * count;
}

// "Name: value\r\n" lines become pairs; a status line starts them afresh (as the bridge).
inline std::size_t collect_header(char* data, std::size_t size, std::size_t count, void* target) {
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

class run {
public:
    /// Configures the handles (with `same_work`, also the header collection and the bridge's
    /// default options) and adds the first `concurrency` of them to `multi`.
    run(CURLM* multi, const char* url, long count, long concurrency, bool same_work)
        : m_multi(multi), m_count(count), m_slots(static_cast<std::size_t>(concurrency)), m_start(std::chrono::steady_clock::now()) {
        for (slot& s : m_slots) {
            s.easy = curl_easy_init();
            curl_easy_setopt(s.easy, CURLOPT_URL, url);
            curl_easy_setopt(s.easy, CURLOPT_NOSIGNAL, 1L);
            curl_easy_setopt(s.easy, CURLOPT_ACCEPT_ENCODING, "");  // as the bridge (and aiohttp) ask
            curl_easy_setopt(s.easy, CURLOPT_WRITEFUNCTION, &collect_body);
            curl_easy_setopt(s.easy, CURLOPT_WRITEDATA, &s);
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
            start_next(s);
        }
    }
    run(const run&) = delete;
    run& operator=(const run&) = delete;
    ~run() {
        for (slot& s : m_slots) curl_easy_cleanup(s.easy);
    }

    [[nodiscard]] bool done() const noexcept { return m_finished >= m_count; }

    /// Reads curl's finished transfers, counts them and starts the next requests.
    void collect_finished() {
        int left = 0;
        while (CURLMsg* message = curl_multi_info_read(m_multi, &left)) {
            if (message->msg != CURLMSG_DONE) continue;
            slot* s = nullptr;
            curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &s);
            long status = 0;
            curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &status);
            if (message->data.result != CURLE_OK || status != 200) ++m_failures;
            m_bytes += s->body.size();
            s->body.clear();
            s->headers.clear();
            ++m_finished;
            curl_multi_remove_handle(m_multi, s->easy);
            start_next(*s);
        }
    }

    /// Prints the report; the exit status (1 if any request failed).
    int report() const {
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - m_start).count();
        std::printf("requests %ld seconds %.4f rps %.0f bytes %zu failures %ld\n", m_count, seconds, static_cast<double>(m_count) / seconds, m_bytes,
                    m_failures);
        return m_failures == 0 ? 0 : 1;
    }

private:
    void start_next(slot& s) {
        if (m_started >= m_count) return;
        ++m_started;
        curl_multi_add_handle(m_multi, s.easy);
    }

    CURLM* m_multi;
    long m_count;
    long m_started = 0;
    long m_finished = 0;
    long m_failures = 0;
    std::size_t m_bytes = 0;
    std::vector<slot> m_slots;
    std::chrono::steady_clock::time_point m_start;
};

}  // namespace fetch
