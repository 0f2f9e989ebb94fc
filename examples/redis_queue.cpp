// redis_queue: a message queue between services on Redis Streams, with a consumer group, through
// coring's Redis bridge (<coring/bridge/redis.hpp>).
//
// Producers append jobs to a stream (XADD); a pool of workers reads them through a consumer
// group (XREADGROUP ... >: each job goes to one worker), processes each and acknowledges it
// (XACK). A job read and not acknowledged stays in the group's pending list, in the name of the
// worker that read it: so when a worker dies mid-batch, nothing is lost. Here worker-0 dies
// after its first batch, on purpose; a janitor task finds the jobs it left (idle longer than
// --min-idle ms) and claims them for itself: XAUTOCLAIM by default, or XPENDING + XCLAIM with
// --claim xpending (Redis before 6.2). Each job's outcome is recorded with HSETNX, so a job
// processed twice would show as a duplicate (the delivery is at-least-once: a worker that dies
// after processing and before XACK gets its job run again).
//
//   $ ./redis_queue --port 6379 --jobs 200
//   stream coring:jobs, group workers: 4 producers, 3 workers, a janitor (XAUTOCLAIM)
//   worker-0: dies holding 5 unacknowledged jobs
//   producers: 200 jobs added
//   janitor: XPENDING: 5 pending, held by worker-0 (5)
//   janitor: claimed 5 jobs idle for 200 ms or more (XAUTOCLAIM)
//   done: 200 jobs, 200 processed (worker-0 0, worker-1 99, worker-2 96, janitor 5), 5 reclaimed, 0 pending, 0 duplicates
//
// Producers share one connection: their XADDs are pipelined. Each worker has a connection of
// its own, since XREADGROUP ... BLOCK holds its connection while it waits. The stream and its
// results hash (<stream>:results) are deleted first: this is a demonstration. The exit status is
// 0 when every job was processed exactly once and nothing is left pending, 1 otherwise (or when
// Redis cannot be reached: the error is printed).
//
//   --host H --port P | --unix PATH   where Redis is (127.0.0.1:6379 by default)
//   --stream NAME   --jobs N   --producers N   --workers N   --min-idle MS   --claim auto|xpending
#include <coring/bridge/redis.hpp>
#include <coring/coring.hpp>

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
namespace redis = coring::redis;

namespace {

struct options {
    std::string host = "127.0.0.1";
    int port = 6379;
    std::string unix_path;
    std::string stream = "coring:jobs";
    std::string group = "workers";
    int jobs = 200;
    int producers = 4;
    int workers = 3;
    int min_idle_ms = 200;
    bool xautoclaim = true;
};

struct run_state {
    const options& opts;
    std::string results;                   // the hash of outcomes: job -> who processed it
    std::map<std::string, int> processed;  // by consumer name
    int total_processed = 0;
    int duplicates = 0;
    int died_holding = 0;
    int reclaimed = 0;
    bool stopping = false;
};

coring::task<redis::connection> open(const options& o) {
    if (!o.unix_path.empty()) co_return co_await redis::connect_unix(o.unix_path);
    co_return co_await redis::connect(o.host, o.port);
}

// One entry of a stream: its id and its fields.
struct entry {
    std::string id;
    std::map<std::string, std::string> fields;
};

// [[id, [field, value, ...]], ...]; an entry deleted meanwhile has nil fields and is skipped.
std::vector<entry> parse_entries(const redis::reply& list) {
    std::vector<entry> out;
    for (const redis::reply& item : list.array()) {
        const auto& parts = item.array();
        if (parts.size() < 2 || !parts[1].is_array()) continue;
        entry e{parts[0].str(), {}};
        const auto& kv = parts[1].array();
        for (std::size_t i = 0; i + 1 < kv.size(); i += 2) e.fields[kv[i].str()] = kv[i + 1].str();
        out.push_back(std::move(e));
    }
    return out;
}

// The work itself: the sum of 1..n, after a short pause (a call to another service, say).
coring::task<long long> process(const entry& e) {
    co_await coring::sleep(1ms);
    const long long n = std::atoll(e.fields.at("n").c_str());
    co_return n * (n + 1) / 2;
}

// Records the outcome (once per job) and acknowledges the entry.
coring::task<> finish(run_state& run, redis::connection& r, const std::string& who, const entry& e, long long result) {
    const std::string outcome = who + " " + std::to_string(result);
    const redis::reply fresh = co_await r.command("HSETNX", run.results, e.fields.at("job"), outcome);
    if (fresh.integer() == 0) ++run.duplicates;
    co_await r.command("XACK", run.opts.stream, run.opts.group, e.id);
    ++run.processed[who];
    ++run.total_processed;
}

coring::task<> producer(run_state& run, redis::connection& r, int index) {
    for (int job = index; job < run.opts.jobs; job += run.opts.producers) {
        co_await r.command("XADD", run.opts.stream, "*", "job", job, "n", job % 1000, "from", "producer-" + std::to_string(index));
        if (job % 20 == index) co_await coring::sleep(1ms);  // spread out a little, as real traffic is
    }
}

// Reads batches for `name` until the run stops; worker-0 dies after its first batch.
coring::task<> worker(run_state& run, int index) {
    const std::string name = "worker-" + std::to_string(index);
    redis::connection r = co_await open(run.opts);
    run.processed[name] = 0;
    while (!run.stopping) {
        const redis::reply batch =
            co_await r.command("XREADGROUP", "GROUP", run.opts.group, name, "COUNT", 5, "BLOCK", 100, "STREAMS", run.opts.stream, ">");
        if (batch.is_nil()) continue;  // nothing within 100 ms
        const std::vector<entry> entries = parse_entries(batch.array()[0].array()[1]);
        if (index == 0) {
            run.died_holding = static_cast<int>(entries.size());
            std::printf("%s: dies holding %zu unacknowledged jobs\n", name.c_str(), entries.size());
            co_return;  // its connection closes; the jobs stay pending in its name
        }
        for (const entry& e : entries) {
            const long long result = co_await process(e);
            co_await finish(run, r, name, e, result);
        }
    }
}

// XPENDING's summary form: how many entries are pending, and who holds them.
struct pending_summary {
    long long count = 0;
    std::string holders;  // "worker-0 (5), worker-1 (2)"
};
coring::task<pending_summary> pending_entries(run_state& run, redis::connection& r) {
    const redis::reply summary = co_await r.command("XPENDING", run.opts.stream, run.opts.group);
    pending_summary s{summary.array()[0].integer(), {}};
    if (s.count > 0)
        for (const redis::reply& c : summary.array()[3].array())
            s.holders += (s.holders.empty() ? "" : ", ") + c.array()[0].str() + " (" + c.array()[1].str() + ")";
    co_return s;
}

// Claims the entries left idle longer than --min-idle by consumers that went away.
coring::task<std::vector<entry>> claim_idle(run_state& run, redis::connection& r) {
    const options& o = run.opts;
    if (o.xautoclaim) {
        // [next start id, [[id, fields]...], [deleted ids]]
        const redis::reply claimed = co_await r.command("XAUTOCLAIM", o.stream, o.group, "janitor", o.min_idle_ms, "0-0", "COUNT", 100);
        co_return parse_entries(claimed.array()[1]);
    }
    // XPENDING's extended form lists the idle entries ([[id, consumer, idle ms, deliveries]...]);
    // XCLAIM takes them over (it checks the idle time again: a worker may have acked meanwhile).
    const redis::reply idle = co_await r.command("XPENDING", o.stream, o.group, "IDLE", o.min_idle_ms, "-", "+", 100);
    std::vector<std::string> ids;
    for (const redis::reply& p : idle.array())
        if (p.array()[1].str() != "janitor") ids.push_back(p.array()[0].str());
    if (ids.empty()) co_return std::vector<entry>{};
    const redis::reply claimed = co_await r.command("XCLAIM", o.stream, o.group, "janitor", o.min_idle_ms, ids);
    co_return parse_entries(claimed);
}

coring::task<> janitor(run_state& run) {
    redis::connection r = co_await open(run.opts);
    run.processed["janitor"] = 0;
    while (!run.stopping) {
        co_await coring::sleep(std::chrono::milliseconds(run.opts.min_idle_ms / 2));
        const pending_summary pending = co_await pending_entries(run, r);
        if (pending.count == 0) continue;
        const std::vector<entry> claimed = co_await claim_idle(run, r);
        if (claimed.empty()) continue;  // pending, but in the hands of live workers
        std::printf("janitor: XPENDING: %lld pending, held by %s\n", pending.count, pending.holders.c_str());
        std::printf("janitor: claimed %zu jobs idle for %d ms or more (%s)\n", claimed.size(), run.opts.min_idle_ms,
                    run.opts.xautoclaim ? "XAUTOCLAIM" : "XPENDING + XCLAIM");
        for (const entry& e : claimed) {
            const long long result = co_await process(e);
            co_await finish(run, r, "janitor", e, result);
            ++run.reclaimed;
        }
    }
}

coring::task<int> amain(options o) {
    run_state run{o, o.stream + ":results", {}};
    redis::connection admin = co_await open(o);
    co_await admin.command("DEL", o.stream, run.results);
    co_await admin.command("XGROUP", "CREATE", o.stream, o.group, "$", "MKSTREAM");
    std::printf("stream %s, group %s: %d producers, %d workers, a janitor (%s)\n", o.stream.c_str(), o.group.c_str(), o.producers, o.workers,
                o.xautoclaim ? "XAUTOCLAIM" : "XPENDING + XCLAIM");
    std::fflush(stdout);

    redis::connection producers = co_await open(o);  // shared: their XADDs are pipelined
    std::vector<coring::task_handle<void>> adding;
    for (int i = 0; i < o.producers; ++i) adding.push_back(coring::create_task(producer(run, producers, i)));
    co_await coring::sleep(10ms);  // a backlog builds up: the workers' first batches are full

    std::vector<coring::task_handle<void>> services;
    for (int i = 0; i < o.workers; ++i) services.push_back(coring::create_task(worker(run, i)));
    services.push_back(coring::create_task(janitor(run)));
    for (auto& p : adding) co_await p;
    std::printf("producers: %d jobs added\n", o.jobs);
    std::fflush(stdout);

    const auto deadline = coring::clock::now() + 30s;
    while (run.total_processed < o.jobs && coring::clock::now() < deadline) co_await coring::sleep(10ms);
    run.stopping = true;
    for (auto& s : services) co_await s;

    const pending_summary left = co_await pending_entries(run, admin);
    const int pending = static_cast<int>(left.count);
    const redis::reply recorded = co_await admin.command("HLEN", run.results);
    const redis::reply length = co_await admin.command("XLEN", o.stream);
    std::string shares;
    for (const auto& [who, n] : run.processed) shares += (shares.empty() ? "" : ", ") + who + " " + std::to_string(n);
    std::printf("done: %lld jobs, %lld processed (%s), %d reclaimed, %d pending, %d duplicates\n", length.integer(), recorded.integer(),
                shares.c_str(), run.reclaimed, pending, run.duplicates);
    const bool ok = length.integer() == o.jobs && recorded.integer() == o.jobs && pending == 0 && run.duplicates == 0 &&
                    run.reclaimed == run.died_holding;
    co_return ok ? 0 : 1;
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: redis_queue [--host H] [--port P] [--unix PATH] [--stream NAME] [--jobs N] [--producers N] [--workers N]\n"
                 "                   [--min-idle MS] [--claim auto|xpending]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (i + 1 >= argc) usage();
        const char* value = argv[++i];
        if (arg == "--host")
            o.host = value;
        else if (arg == "--port")
            o.port = std::atoi(value);
        else if (arg == "--unix")
            o.unix_path = value;
        else if (arg == "--stream")
            o.stream = value;
        else if (arg == "--jobs")
            o.jobs = std::atoi(value);
        else if (arg == "--producers")
            o.producers = std::atoi(value);
        else if (arg == "--workers")
            o.workers = std::atoi(value);
        else if (arg == "--min-idle")
            o.min_idle_ms = std::atoi(value);
        else if (arg == "--claim" && (std::string_view(value) == "auto" || std::string_view(value) == "xpending"))
            o.xautoclaim = std::string_view(value) == "auto";
        else
            usage();
    }
    if (o.jobs < 1 || o.producers < 1 || o.workers < 2 || o.min_idle_ms < 2) usage();  // worker-0 dies: one must live
    try {
        return coring::run(amain(std::move(o)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "redis_queue: %s\n", e.what());
        return 1;
    }
}
