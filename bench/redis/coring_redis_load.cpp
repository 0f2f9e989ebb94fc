// coring_redis_load: the Redis bridge's side of bench/redis/compare.sh. It does what
// `redis-benchmark -c CLIENTS -n REQUESTS -t set,get` does, on coring: CLIENTS tasks, each with a
// connection of its own (redis-benchmark's clients are connections), each sending one request
// at a time and waiting for its reply, until REQUESTS requests of the test have been answered;
// SET key:__rand_int__ to a 3-byte value, then GET it (redis-benchmark's keys and -d 3).
//
//   coring_redis_load PORT [REQUESTS [CLIENTS [shared]]]
//   set rps 123456 requests 100000 failures 0
//   get rps 123456 requests 100000 failures 0
//
// With "shared", the tasks share one connection instead (their commands pipelined by the
// bridge): not what redis-benchmark does, shown for what pipelining buys.
#include <coring/bridge/redis.hpp>
#include <coring/coring.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>
#include <vector>

namespace redis = coring::redis;

namespace {

struct load {
    long left = 0;     // requests not yet started
    long failures = 0;
};

coring::task<> client(redis::connection& r, load& l, bool set) {
    const std::string key = "key:__rand_int__";
    const std::string value = "xxx";
    while (l.left > 0) {
        --l.left;
        try {
            if (set) {
                const redis::reply ok = co_await r.command("SET", key, value);
                if (!ok.is_status()) ++l.failures;
            } else {
                const redis::reply v = co_await r.command("GET", key);
                if (!v.is_string() || v.str() != value) ++l.failures;
            }
        } catch (const std::exception&) {
            ++l.failures;
        }
    }
}

coring::task<int> amain(int port, long requests, int clients, bool shared) {
    std::vector<redis::connection> connections;
    for (int i = 0; i < (shared ? 1 : clients); ++i) connections.push_back(co_await redis::connect("127.0.0.1", port));
    for (const bool set : {true, false}) {
        load l{requests, 0};
        const auto start = std::chrono::steady_clock::now();
        std::vector<coring::task_handle<void>> tasks;
        for (int i = 0; i < clients; ++i) tasks.push_back(coring::create_task(client(connections[shared ? 0 : static_cast<std::size_t>(i)], l, set)));
        for (auto& t : tasks) co_await t;
        const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        std::printf("%s rps %.0f requests %ld failures %ld\n", set ? "set" : "get", static_cast<double>(requests) / seconds, requests, l.failures);
    }
    co_return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: coring_redis_load PORT [REQUESTS [CLIENTS [shared]]]\n");
        return 2;
    }
    const int port = std::atoi(argv[1]);
    const long requests = argc > 2 ? std::atol(argv[2]) : 100000;
    const int clients = argc > 3 ? std::atoi(argv[3]) : 50;
    const bool shared = argc > 4 && std::string_view(argv[4]) == "shared";
    try {
        return coring::run(amain(port, requests, clients, shared));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "coring_redis_load: %s\n", e.what());
        return 1;
    }
}
