// pg_select1: `SELECT 1` round trips from --clients connections (one task each) through coring's
// PostgreSQL bridge, for --seconds; prints the transactions per second. The counterpart of
// `pgbench -n -f select1.sql -c N -M extended|simple` (compare.sh runs both against one server).
//
//   pg_select1 [--clients 10] [--seconds 5] [--simple] CONNINFO
//   coring: 10 clients, extended protocol: 123456 transactions in 5.000 s = 24691.2 tps
//
// The extended protocol (default) is connection::query("SELECT 1"): PQsendQueryParams, an
// unnamed statement parsed, bound and executed per call, as pgbench -M extended does. --simple
// is connection::execute("SELECT 1"): PQsendQuery, as pgbench -M simple. The clock starts once
// every connection is open (pgbench's tps excludes connection time too).
#include <coring/bridge/postgres.hpp>
#include <coring/coring.hpp>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace pg = coring::postgres;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
    int clients = 10;
    double seconds = 5;
    bool simple = false;
    std::string conninfo;
};

coring::task<> client(pg::connection& db, clock_type::time_point end, bool simple, std::uint64_t& count) {
    while (clock_type::now() < end) {
        if (simple) {
            (void)co_await db.execute("SELECT 1");
        } else {
            const pg::result r = co_await db.query("SELECT 1");
            if (r.rows() != 1) throw std::runtime_error("SELECT 1 returned " + std::to_string(r.rows()) + " rows");
        }
        ++count;
    }
}

coring::task<> bench(settings s) {
    std::vector<coring::task<pg::connection>> opening;
    for (int i = 0; i < s.clients; ++i) opening.push_back(pg::connect(s.conninfo));
    std::vector<pg::connection> db = co_await coring::gather(std::move(opening));
    std::vector<std::uint64_t> counts(db.size(), 0);
    const auto start = clock_type::now();
    const auto end = start + std::chrono::duration_cast<clock_type::duration>(std::chrono::duration<double>(s.seconds));
    std::vector<coring::task<>> clients;
    for (std::size_t i = 0; i < db.size(); ++i) clients.push_back(client(db[i], end, s.simple, counts[i]));
    co_await coring::gather(std::move(clients));
    const double took = std::chrono::duration<double>(clock_type::now() - start).count();
    std::uint64_t total = 0;
    for (std::uint64_t n : counts) total += n;
    std::printf("coring: %d clients, %s protocol: %llu transactions in %.3f s = %.1f tps\n", s.clients, s.simple ? "simple" : "extended",
                static_cast<unsigned long long>(total), took, static_cast<double>(total) / took);
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "--clients" && i + 1 < argc)
            s.clients = std::atoi(argv[++i]);
        else if (arg == "--seconds" && i + 1 < argc)
            s.seconds = std::atof(argv[++i]);
        else if (arg == "--simple")
            s.simple = true;
        else if (!arg.starts_with("--"))
            s.conninfo = arg;
        else {
            std::fprintf(stderr, "usage: pg_select1 [--clients N] [--seconds S] [--simple] CONNINFO\n");
            return 2;
        }
    }
    if (s.clients < 1 || s.seconds <= 0) {
        std::fprintf(stderr, "pg_select1: --clients and --seconds must be positive\n");
        return 2;
    }
    try {
        coring::run(bench(s));
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pg_select1: %s\n", e.what());
        return 1;
    }
}
