#pragma once
// coring::http: an HTTP(S) client on libcurl, run by the event loop (asyncio's aiohttp).
//
//   coring::http::client c;                                     // on the running loop
//   coring::http::response r = co_await c.get("https://example.org/", {.timeout = 10s});
//   if (r.status == 200) use(r.body, r.header("content-type"));
//   std::vector<std::pair<std::string, std::string>> json_headers{{"Content-Type", "application/json"}};
//   auto posted = co_await c.request({.method = "POST", .url = u, .headers = json_headers, .body = json});
//   auto page = co_await coring::http::get(url);                // the loop's default client
//
// A client is one curl multi handle driven through libcurl's multi-socket interface: curl says
// which sockets it waits on (CURLMOPT_SOCKETFUNCTION) and when it next needs time
// (CURLMOPT_TIMERFUNCTION); the client maps them onto the loop's add_reader / add_writer and a
// call_later timer, and tells curl what became ready (curl_multi_socket_action). So every
// transfer of a client shares its connections: kept alive between requests, several requests
// multiplexed over one HTTP/2 connection where the server offers it (https with ALPN), TLS
// sessions reused. curl does the protocol work (redirects, chunked and compressed bodies,
// certificate verification) as it does for the curl tool. A task that awaits a request holds
// the transfer's easy handle in its frame.
//
// Options per request (http::options): .timeout for the whole transfer (300 s by default, as
// aiohttp's; nullopt for none), .connect_timeout, .max_body_bytes (64 MiB by default; 0 for no
// limit), .follow_redirects (up to .max_redirects, 10), .verify (the server's certificate and
// host name, on by default), .cafile (a CA bundle to trust instead of the system's). Only
// http:// and https:// URLs are accepted, also in redirects.
//
// options and outgoing_request borrow their strings (const char*, string_view, a span of the
// headers): what they point to must live until request() or get() returns the task, which
// copies it. That is what makes `co_await c.request({...}, {...})` safe on g++ 12, which
// destroys twice an aggregate temporary with std::string or std::vector members written inside
// a co_await expression (docs/internals.md, "g++ 12 traps"); these aggregates own nothing. A
// braced list of headers inside the co_await is rejected by g++ 12 too: name the vector first.
//
// Results and errors:
//   - Any HTTP status is a response, not an exception (as aiohttp without raise_for_status):
//     status, headers (in the order received; header(name) is case-insensitive) and body, of
//     the last response after redirects; url is where it came from.
//   - A transport failure (refused or reset connection, DNS, TLS verification, a malformed
//     response) throws http::error: curl's message, its CURLcode, the URL, and the errno of a
//     failed system call ("Connection refused").
//   - A body larger than max_body_bytes throws http::error (CURLE_FILESIZE_EXCEEDED when the
//     server announced its length, else CURLE_WRITE_ERROR); nothing more is kept in memory.
//   - .timeout expiring throws coring::timeout_error.
// Cancellation: cancelling the awaiting task (wait_for, task_group, cancel()) removes the
// transfer from the client at once: its connection is closed if it was mid-transfer, and other
// transfers go on.
//
// Thread-safety: loop-bound. A client belongs to the loop it was made on and serves that loop's
// tasks; it must not outlive the loop, nor be destroyed while a task awaits one of its requests.
// The default client of http::get lives until the loop closes. On several loops (loop_group),
// give each loop its own client.

#include <coring/event_loop.hpp>
#include <coring/sync/event.hpp>
#include <coring/task.hpp>

#include <curl/curl.h>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace coring::http {

/// Per-request settings (see the header comment). Owns nothing: `cafile` is borrowed.
struct options {
    std::optional<std::chrono::milliseconds> timeout = std::chrono::seconds(300);
    std::optional<std::chrono::milliseconds> connect_timeout{};
    std::size_t max_body_bytes = std::size_t{64} << 20;  // 0: no limit
    bool follow_redirects = true;
    long max_redirects = 10;
    bool verify = true;
    const char* cafile = nullptr;  // a PEM bundle to trust instead of the system's
};

using header_list = std::vector<std::pair<std::string, std::string>>;

/// What client::request sends; borrowed, copied by the call. A non-empty body is sent as is
/// (set Content-Type yourself); a header with an empty value is sent empty.
struct outgoing_request {
    std::string_view method = "GET";
    std::string_view url{};
    std::span<const std::pair<std::string, std::string>> headers{};
    std::string_view body{};
};

struct response {
    int status = 0;
    header_list headers;
    std::string body;
    std::string url;  // the URL of this response, after redirects

    /// The first header of that name, compared without regard to case.
    [[nodiscard]] std::optional<std::string_view> header(std::string_view name) const {
        for (const auto& [n, v] : headers)
            if (std::equal(n.begin(), n.end(), name.begin(), name.end(), [](char a, char b) { return lower(a) == lower(b); })) return v;
        return std::nullopt;
    }

private:
    static char lower(char c) noexcept { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
};

/// A transfer that failed below HTTP: curl's message, its code, the URL, and the errno of the
/// failed system call where there was one (a refused connection: ECONNREFUSED).
class error : public std::runtime_error {
public:
    error(CURLcode code, std::string url, std::string message, int os_errno = 0)
        : std::runtime_error("coring::http: " + url + ": " + message), m_code(code), m_url(std::move(url)), m_reason(std::move(message)), m_errno(os_errno) {}
    [[nodiscard]] CURLcode code() const noexcept { return m_code; }
    [[nodiscard]] const std::string& url() const noexcept { return m_url; }
    /// what() without the URL: curl's message (and the system call's).
    [[nodiscard]] const std::string& reason() const noexcept { return m_reason; }
    /// 0 when the failure was not a system call's.
    [[nodiscard]] int os_errno() const noexcept { return m_errno; }

private:
    CURLcode m_code;
    std::string m_url;
    std::string m_reason;
    int m_errno;
};

class client {
public:
    /// A client on the running loop (std::logic_error if none runs).
    client() : client(get_running_loop()) {}
    explicit client(event_loop& loop) : m_loop(&loop) {
        init_curl_once();
        m_multi = curl_multi_init();
        if (m_multi == nullptr) throw std::runtime_error("coring::http: curl_multi_init failed");
        curl_multi_setopt(m_multi, CURLMOPT_SOCKETFUNCTION, &on_socket);
        curl_multi_setopt(m_multi, CURLMOPT_SOCKETDATA, this);
        curl_multi_setopt(m_multi, CURLMOPT_TIMERFUNCTION, &on_timer);
        curl_multi_setopt(m_multi, CURLMOPT_TIMERDATA, this);
        curl_multi_setopt(m_multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    }
    client(const client&) = delete;
    client& operator=(const client&) = delete;
    ~client() {
        m_closing = true;
        m_timer.cancel();
        if (!m_loop->is_closed()) {
            for (const auto& [fd, what] : m_watched) unwatch(fd, what);
        }
        m_watched.clear();
        for (const pooled_easy& spare : m_spare_easy) curl_easy_cleanup(spare.easy);
        curl_multi_cleanup(m_multi);  // closes the kept-alive connections
    }

    /// GET `url`.
    [[nodiscard]] task<response> get(std::string url, options opts = {}) {
        return perform(owned_request{.method = "GET", .url = std::move(url), .headers = {}, .body = {}, .cafile = copy(opts.cafile)}, opts);
    }

    /// Sends `req` and returns the response (see the header comment for errors).
    [[nodiscard]] task<response> request(outgoing_request req, options opts = {}) {
        return perform(owned_request{.method = std::string(req.method),
                                     .url = std::string(req.url),
                                     .headers = header_list(req.headers.begin(), req.headers.end()),
                                     .body = std::string(req.body),
                                     .cafile = copy(opts.cafile)},
                       opts);
    }

    /// Transfers in progress.
    [[nodiscard]] std::size_t active() const noexcept { return m_active; }

private:
    // A request's own copy of what outgoing_request and options lend.
    struct owned_request {
        std::string method;
        std::string url;
        header_list headers;
        std::string body;
        std::string cafile;
    };
    static std::string copy(const char* text) { return text != nullptr ? std::string(text) : std::string(); }

    // The settings of a plain GET (see transfer::configure), compared to reuse a handle as is.
    struct easy_settings {
        std::optional<std::chrono::milliseconds> timeout{};
        std::optional<std::chrono::milliseconds> connect_timeout{};
        std::size_t max_body_bytes = 0;
        bool follow_redirects = true;
        long max_redirects = 0;
        bool verify = true;
        std::string cafile{};
        bool https = false;

        static easy_settings of(const options& o, const std::string& cafile, bool https) {
            return {.timeout = o.timeout,
                    .connect_timeout = o.connect_timeout,
                    .max_body_bytes = o.max_body_bytes,
                    .follow_redirects = o.follow_redirects,
                    .max_redirects = o.max_redirects,
                    .verify = o.verify,
                    .cafile = cafile,
                    .https = https};
        }
        bool operator==(const easy_settings&) const = default;
    };

    // An easy handle of the pool, and what it was last configured with.
    struct pooled_easy {
        CURL* easy = nullptr;
        bool used = false;                        // configured before: reset it to change anything
        std::optional<easy_settings> settings{};  // set when its options are exactly these
    };

    task<response> perform(owned_request req, options opts) {
        transfer t(*this, std::move(req), opts);
        t.start();
        co_await t.finished.wait();
        co_return t.take_response();
    }

    // One request: its easy handle, what it sends, and what comes back. It lives in the frame of
    // the task that awaits it; its destructor takes the handle out of the multi handle, which
    // is how a cancelled task stops its transfer.
    class transfer {
    public:
        transfer(client& owner, owned_request req, options opts) : m_client(owner), m_request(std::move(req)), m_options(opts) {
            m_handle = m_client.take_easy();
            m_easy = m_handle.easy;
        }
        transfer(const transfer&) = delete;
        transfer& operator=(const transfer&) = delete;
        ~transfer() {
            if (m_added) {
                curl_multi_remove_handle(m_client.m_multi, m_easy);
                --m_client.m_active;
            }
            m_client.give_back_easy(std::move(m_handle));
            curl_slist_free_all(m_header_list);
        }

        void start() {
            configure();
            const CURLMcode added = curl_multi_add_handle(m_client.m_multi, m_easy);
            if (added != CURLM_OK) throw error(CURLE_FAILED_INIT, m_request.url, curl_multi_strerror(added));
            m_added = true;
            ++m_client.m_active;
        }

        // Called by the client when curl reports the transfer done.
        void done(CURLcode result) noexcept {
            m_result = result;
            finished.set();
        }

        response take_response() {
            if (m_result == CURLE_OK) {
                long status = 0;
                curl_easy_getinfo(m_easy, CURLINFO_RESPONSE_CODE, &status);
                m_response.status = static_cast<int>(status);
                const char* effective = nullptr;
                curl_easy_getinfo(m_easy, CURLINFO_EFFECTIVE_URL, &effective);
                if (effective == nullptr || m_request.url == effective)
                    m_response.url = std::move(m_request.url);
                else
                    m_response.url = effective;
                return std::move(m_response);
            }
            if (m_result == CURLE_OPERATION_TIMEDOUT)
                throw timeout_error("coring::http: " + m_request.url + ": timed out (" + detail() + ")");
            if (m_body_too_large || m_result == CURLE_FILESIZE_EXCEEDED)
                throw error(m_body_too_large ? CURLE_WRITE_ERROR : CURLE_FILESIZE_EXCEEDED, m_request.url,
                            "the response body is larger than max_body_bytes (" + std::to_string(m_options.max_body_bytes) + ")");
            long os_errno = 0;
            curl_easy_getinfo(m_easy, CURLINFO_OS_ERRNO, &os_errno);
            std::string message = detail();
            if (os_errno != 0) message += std::string(": ") + std::strerror(static_cast<int>(os_errno));
            throw error(m_result, m_request.url, message, static_cast<int>(os_errno));
        }

        event finished;

    private:
        std::string detail() const {
            std::string text = curl_easy_strerror(m_result);
            if (m_error_text[0] != '\0') text += std::string(" (") + m_error_text + ")";
            return text;
        }

        void configure() {
            // A plain GET with the settings this handle last had needs only its own pointers
            // and URL; any other request starts from a reset handle, and leaves it to be reset.
            std::optional<easy_settings> wanted;
            if (m_request.method == "GET" && m_request.body.empty() && m_request.headers.empty())
                wanted = easy_settings::of(m_options, m_request.cafile, m_request.url.starts_with("https:"));
            const bool reuse = wanted && m_handle.settings == wanted;
            if (!reuse) {
                if (m_handle.used) curl_easy_reset(m_easy);
                m_handle.used = true;
                m_handle.settings.reset();
            }
            set(CURLOPT_PRIVATE, static_cast<void*>(this));
            set(CURLOPT_ERRORBUFFER, m_error_text);
            set(CURLOPT_URL, m_request.url.c_str());
            set(CURLOPT_WRITEDATA, static_cast<void*>(this));
            set(CURLOPT_HEADERDATA, static_cast<void*>(this));
            if (reuse) return;
            configure_settings();
            m_handle.settings = std::move(wanted);
        }

        // Everything but the per-request pointers and the URL.
        void configure_settings() {
            set(CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500
            set(CURLOPT_PROTOCOLS_STR, "http,https");
            set(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
            set(CURLOPT_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
            set(CURLOPT_REDIR_PROTOCOLS, static_cast<long>(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
            set(CURLOPT_ACCEPT_ENCODING, "");  // every encoding curl can decode, decoded
            // https may negotiate HTTP/2: requests started together wait for the first connection
            // and share it, instead of each opening its own. http:// is HTTP/1.1 here, where
            // waiting would only serialise them.
            if (m_request.url.starts_with("https:")) set(CURLOPT_PIPEWAIT, 1L);
            set(CURLOPT_WRITEFUNCTION, &on_body);
            set(CURLOPT_HEADERFUNCTION, &on_header);
            set(CURLOPT_FOLLOWLOCATION, m_options.follow_redirects ? 1L : 0L);
            set(CURLOPT_MAXREDIRS, m_options.max_redirects);
            set(CURLOPT_SSL_VERIFYPEER, m_options.verify ? 1L : 0L);
            set(CURLOPT_SSL_VERIFYHOST, m_options.verify ? 2L : 0L);
            if (!m_request.cafile.empty()) set(CURLOPT_CAINFO, m_request.cafile.c_str());
            if (m_options.timeout) set(CURLOPT_TIMEOUT_MS, static_cast<long>(std::max<std::int64_t>(1, m_options.timeout->count())));
            if (m_options.connect_timeout)
                set(CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(std::max<std::int64_t>(1, m_options.connect_timeout->count())));
            if (m_options.max_body_bytes != 0) set(CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(m_options.max_body_bytes));

            const std::string& method = m_request.method;
            if (method == "HEAD") {
                set(CURLOPT_NOBODY, 1L);
            } else if (method != "GET" || !m_request.body.empty()) {
                if (method != "POST") set(CURLOPT_CUSTOMREQUEST, method.c_str());
                set(CURLOPT_POSTFIELDS, m_request.body.data());
                set(CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(m_request.body.size()));
            }
            for (const auto& [name, value] : m_request.headers) {
                const std::string line = value.empty() ? name + ";" : name + ": " + value;  // "Name;" sends an empty value
                curl_slist* grown = curl_slist_append(m_header_list, line.c_str());
                if (grown == nullptr) throw std::bad_alloc();
                m_header_list = grown;
            }
            if (m_header_list != nullptr) set(CURLOPT_HTTPHEADER, m_header_list);
        }

        template <class Value>
        void set(CURLoption option, Value value) {
            const CURLcode code = curl_easy_setopt(m_easy, option, value);
            if (code != CURLE_OK) throw error(code, m_request.url, std::string("curl_easy_setopt: ") + curl_easy_strerror(code));
        }

        // curl hands the body over in pieces; beyond the limit the transfer fails (0 is an error
        // return for a non-empty piece).
        static std::size_t on_body(char* data, std::size_t size, std::size_t count, void* self_ptr) {
            auto& self = *static_cast<transfer*>(self_ptr);
            const std::size_t bytes = size * count;
            const std::size_t limit = self.m_options.max_body_bytes;
            if (limit != 0 && self.m_response.body.size() + bytes > limit) {
                self.m_body_too_large = true;
                return 0;
            }
            try {
                self.m_response.body.append(data, bytes);
            } catch (...) {
                return 0;
            }
            return bytes;
        }

        // One header line at a time, including each response's status line: a new status line
        // (after a redirect or a 100 Continue) starts the headers afresh.
        static std::size_t on_header(char* data, std::size_t size, std::size_t count, void* self_ptr) {
            auto& self = *static_cast<transfer*>(self_ptr);
            const std::size_t bytes = size * count;
            std::string_view line(data, bytes);
            while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
            try {
                if (line.starts_with("HTTP/")) {
                    self.m_response.headers.clear();
                    self.m_response.headers.reserve(16);
                } else if (const std::size_t colon = line.find(':'); colon != std::string_view::npos) {
                    std::string_view value = line.substr(colon + 1);
                    while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
                    while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
                    self.m_response.headers.emplace_back(std::string(line.substr(0, colon)), std::string(value));
                }
            } catch (...) {
                return 0;
            }
            return bytes;
        }

        client& m_client;
        owned_request m_request;
        options m_options;
        pooled_easy m_handle;
        CURL* m_easy = nullptr;
        curl_slist* m_header_list = nullptr;
        bool m_added = false;
        bool m_body_too_large = false;
        CURLcode m_result = CURLE_OK;
        response m_response;
        char m_error_text[CURL_ERROR_SIZE] = {};
    };

    // Easy handles are kept for the next requests: making one costs more than a request's other
    // work on a kept-alive connection, and so do curl_easy_reset and the twenty options set
    // after it, which a plain GET with the same settings as the handle's last request skips.
    CURL* new_easy_handle() {
        CURL* easy = curl_easy_init();
        if (easy == nullptr) throw std::runtime_error("coring::http: curl_easy_init failed");
        return easy;
    }
    pooled_easy take_easy() {
        if (!m_spare_easy.empty()) {
            pooled_easy spare = std::move(m_spare_easy.back());
            m_spare_easy.pop_back();
            return spare;
        }
        return pooled_easy{.easy = new_easy_handle(), .used = false, .settings = std::nullopt};
    }
    void give_back_easy(pooled_easy&& handle) noexcept {
        // The error buffer was the finished transfer's.
        curl_easy_setopt(handle.easy, CURLOPT_ERRORBUFFER, static_cast<char*>(nullptr));
        if (m_spare_easy.size() < max_spare_easy) {
            try {
                m_spare_easy.push_back(std::move(handle));
                return;
            } catch (...) {
            }
        }
        curl_easy_cleanup(handle.easy);
    }
    static constexpr std::size_t max_spare_easy = 64;

    static void init_curl_once() {
        static const CURLcode initialised = curl_global_init(CURL_GLOBAL_DEFAULT);
        if (initialised != CURLE_OK) throw std::runtime_error(std::string("coring::http: curl_global_init failed: ") + curl_easy_strerror(initialised));
    }

    // ---- curl's requests to the loop (called from inside curl: they must not throw)

    // CURLMOPT_SOCKETFUNCTION: curl now waits on `fd` for `what` (or no more: CURL_POLL_REMOVE).
    static int on_socket(CURL*, curl_socket_t fd, int what, void* self_ptr, void*) noexcept {
        auto& self = *static_cast<client*>(self_ptr);
        if (self.m_closing) return 0;
        try {
            const auto found = self.m_watched.find(fd);
            const int before = found == self.m_watched.end() ? CURL_POLL_REMOVE : found->second;
            if (what == before) return 0;
            self.unwatch(fd, before & ~what);
            self.watch(fd, what & ~before);
            if (what == CURL_POLL_REMOVE)
                self.m_watched.erase(fd);
            else
                self.m_watched[fd] = what;
            return 0;
        } catch (...) {
            return -1;  // curl fails the transfers on this socket
        }
    }

    // Starts watching `fd` for the CURL_POLL_IN / CURL_POLL_OUT bits of `what`.
    void watch(curl_socket_t fd, int what) {
        if ((what & CURL_POLL_IN) != 0) m_loop->add_reader(fd, [this, fd] { socket_ready(fd, CURL_CSELECT_IN); });
        if ((what & CURL_POLL_OUT) != 0) m_loop->add_writer(fd, [this, fd] { socket_ready(fd, CURL_CSELECT_OUT); });
    }
    void unwatch(curl_socket_t fd, int what) noexcept {
        try {
            if ((what & CURL_POLL_IN) != 0) m_loop->remove_reader(fd);
            if ((what & CURL_POLL_OUT) != 0) m_loop->remove_writer(fd);
        } catch (...) {
        }
    }

    // CURLMOPT_TIMERFUNCTION: curl wants to be called after `ms` milliseconds (-1: never).
    // Never calls curl back from here (curl forbids it): a zero delay runs on the next iteration.
    static int on_timer(CURLM*, long ms, void* self_ptr) noexcept {
        auto& self = *static_cast<client*>(self_ptr);
        self.m_timer.cancel();
        if (ms < 0 || self.m_closing) return 0;
        try {
            self.m_timer = self.m_loop->call_later(std::chrono::milliseconds(ms), [&self] { self.socket_ready(CURL_SOCKET_TIMEOUT, 0); });
            return 0;
        } catch (...) {
            return -1;
        }
    }

    void socket_ready(curl_socket_t fd, int events) {
        int running = 0;
        curl_multi_socket_action(m_multi, fd, events, &running);
        collect_finished();
    }

    // Transfers curl has finished: their tasks resume on the next iteration and read the result.
    void collect_finished() noexcept {
        int left = 0;
        while (CURLMsg* message = curl_multi_info_read(m_multi, &left)) {
            if (message->msg != CURLMSG_DONE) continue;
            void* owner = nullptr;
            curl_easy_getinfo(message->easy_handle, CURLINFO_PRIVATE, &owner);
            static_cast<transfer*>(owner)->done(message->data.result);
        }
    }

    event_loop* m_loop;
    CURLM* m_multi = nullptr;
    std::unordered_map<curl_socket_t, int> m_watched;  // what curl waits for on each socket
    std::vector<pooled_easy> m_spare_easy;             // at most max_spare_easy
    timer_handle m_timer;
    std::size_t m_active = 0;
    bool m_closing = false;
};

/// The running loop's default client, made on first use and destroyed when the loop closes.
[[nodiscard]] inline client& default_client() {
    event_loop& loop = get_running_loop();
    return loop.resources().get<client>([&loop] { return std::make_unique<client>(loop); });
}

/// GET `url` with the running loop's default client.
[[nodiscard]] inline task<response> get(std::string url, options opts = {}) { return default_client().get(std::move(url), std::move(opts)); }

/// client::request with the running loop's default client.
[[nodiscard]] inline task<response> request(outgoing_request req, options opts = {}) { return default_client().request(std::move(req), std::move(opts)); }

}  // namespace coring::http
