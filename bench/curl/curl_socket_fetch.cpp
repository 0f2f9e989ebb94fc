// The C floor of the interface the bridge uses: the same GETs as coring_fetch with libcurl's
// multi-socket interface (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION, then
// curl_multi_socket_action for each ready socket and each expired timeout) driven by a
// level-triggered epoll loop, as curl's own hiperfifo example does. `concurrency` easy handles
// in flight, each re-added for the next request when it finishes, the body collected into a
// string. Prints "requests N seconds S rps R".
//   curl_socket_fetch URL COUNT CONCURRENCY
#include <curl/curl.h>
#include <sys/epoll.h>
#include <unistd.h>

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

struct driver {
    int epoll_fd = -1;
    long timeout_ms = -1;  // what curl last asked for: -1 none, 0 at once
};

std::size_t collect(char* data, std::size_t size, std::size_t count, void* target) {
    static_cast<std::string*>(target)->append(data, size * count);
    return size * count;
}

int on_socket(CURL*, curl_socket_t fd, int what, void* driver_ptr, void*) {
    const int epoll_fd = static_cast<driver*>(driver_ptr)->epoll_fd;
    if (what == CURL_POLL_REMOVE) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, fd, nullptr);
        return 0;
    }
    epoll_event event{};
    event.data.fd = fd;
    event.events = ((what & CURL_POLL_IN) != 0 ? EPOLLIN : 0u) | ((what & CURL_POLL_OUT) != 0 ? EPOLLOUT : 0u);
    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &event) != 0) epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event);
    return 0;
}

int on_timer(CURLM*, long ms, void* driver_ptr) {
    static_cast<driver*>(driver_ptr)->timeout_ms = ms;
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: curl_socket_fetch URL COUNT CONCURRENCY\n");
        return 2;
    }
    const char* url = argv[1];
    const long count = std::atol(argv[2]);
    const long concurrency = std::atol(argv[3]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    driver d;
    d.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    CURLM* multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &d);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, &d);
    std::vector<slot> slots(static_cast<std::size_t>(concurrency));
    long started = 0, finished = 0, failures = 0;
    std::size_t bytes = 0;
    int running = 0;
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
        if (d.timeout_ms != 0) {
            epoll_event events[64];
            const int ready = epoll_wait(d.epoll_fd, events, 64, d.timeout_ms < 0 ? 1000 : static_cast<int>(d.timeout_ms));
            for (int i = 0; i < ready; ++i) {
                const unsigned got = events[i].events;
                const int what = ((got & EPOLLIN) != 0 ? CURL_CSELECT_IN : 0) | ((got & EPOLLOUT) != 0 ? CURL_CSELECT_OUT : 0) |
                                 ((got & (EPOLLERR | EPOLLHUP)) != 0 ? CURL_CSELECT_ERR : 0);
                curl_multi_socket_action(multi, events[i].data.fd, what, &running);
            }
            if (ready == 0 && d.timeout_ms > 0) d.timeout_ms = 0;  // the wait ran out: curl's timeout is due
        }
        if (d.timeout_ms == 0) {
            d.timeout_ms = -1;
            curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        }
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
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("requests %ld seconds %.4f rps %.0f bytes %zu failures %ld\n", count, seconds, static_cast<double>(count) / seconds, bytes, failures);
    for (slot& s : slots) curl_easy_cleanup(s.easy);
    curl_multi_cleanup(multi);
    close(d.epoll_fd);
    curl_global_cleanup();
    return failures == 0 ? 0 : 1;
}
