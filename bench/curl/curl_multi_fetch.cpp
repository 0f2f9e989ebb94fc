// The C floor of coring_fetch: the same GETs with libcurl's multi interface driven by its own
// loop (curl_multi_perform and curl_multi_poll), as fetch_run.hpp describes.
//   curl_multi_fetch URL COUNT CONCURRENCY [same-work]
// With `same-work` it also does what the bridge does beyond that for every response: collects
// the headers as name/value pairs through a header callback and sets the bridge's default
// options (a 300 s timeout as aiohttp's, the body limit, redirects, http and https only).
#include "fetch_run.hpp"

#include <curl/curl.h>

#include <cstdio>
#include <cstdlib>
#include <string_view>

int main(int argc, char** argv) {
    if (argc != 4 && !(argc == 5 && std::string_view(argv[4]) == "same-work")) {
        std::fprintf(stderr, "usage: curl_multi_fetch URL COUNT CONCURRENCY [same-work]\n");
        return 2;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    CURLM* multi = curl_multi_init();
    int status = 0;
    {
        fetch::run run(multi, argv[1], std::atol(argv[2]), std::atol(argv[3]), argc == 5);
        while (!run.done()) {
            int running = 0;
            curl_multi_perform(multi, &running);
            run.collect_finished();
            if (!run.done()) curl_multi_poll(multi, nullptr, 0, 1000, nullptr);
        }
        status = run.report();
    }
    curl_multi_cleanup(multi);
    curl_global_cleanup();
    return status;
}
