// The C floor of the interface the bridge uses: the same GETs as coring_fetch with libcurl's
// multi-socket interface (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION, then
// curl_multi_socket_action for each ready socket and each expired timeout) driven by a
// level-triggered epoll loop, as curl's own hiperfifo example does; the handles and the report
// as fetch_run.hpp describes.
//   curl_socket_fetch URL COUNT CONCURRENCY
#include "fetch_run.hpp"

#include <curl/curl.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

namespace {

struct driver {
    int epoll_fd = -1;
    long timeout_ms = -1;  // what curl last asked for: -1 none, 0 at once
};

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
    curl_global_init(CURL_GLOBAL_DEFAULT);
    driver d;
    d.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    CURLM* multi = curl_multi_init();
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, &on_socket);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, &d);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, &on_timer);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, &d);
    int status = 0;
    {
        fetch::run run(multi, argv[1], std::atol(argv[2]), std::atol(argv[3]), false);
        int running = 0;
        while (!run.done()) {
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
            run.collect_finished();
        }
        status = run.report();
    }
    curl_multi_cleanup(multi);
    close(d.epoll_fd);
    curl_global_cleanup();
    return status;
}
