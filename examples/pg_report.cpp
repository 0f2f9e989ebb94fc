// pg_report: a sales report from PostgreSQL, its queries run at the same time on several
// connections with gather (the asyncpg tutorial's pattern), through coring's PostgreSQL bridge
// (<coring/bridge/postgres.hpp>).
//
//   $ ./pg_report --connections 4 --orders 5000 "host=127.0.0.1 port=5432 user=postgres"
//   connected 4 connections in 15.0 ms
//   created pg_report_orders and inserted 5000 orders in 31.1 ms (4 connections, 100 rows per INSERT)
//
//   Revenue by region (7.1 ms)
//   region | orders | units | revenue   | average order
//   -------+--------+-------+-----------+--------------
//   north  |   1299 |  7251 | 345140.35 |        265.70
//   ...
//   4 reports on 4 connections in 7.6 ms (the slowest alone took 7.6 ms)
//   check: revenue 1344119.82 and 5000 orders, as generated
//
// What it shows:
//   - several connections opened at once (gather over connect);
//   - a table created (execute of a script) and filled concurrently: each connection inserts
//     its share of pseudo-random orders in transactions of multi-row INSERTs whose values are
//     server-side parameters (coring::postgres::parameters), never formatted into the SQL;
//   - four report queries (aggregates, a window function, DISTINCT ON) gathered over the
//     connections, each printed as a table from the result's column names and values;
//   - a check of the server's totals against the generated data (in cents, exactly).
// The table (pg_report_orders) is dropped at the end unless --keep is given. The connection
// string is libpq's (or a postgresql:// URI); what it leaves out comes from PG* variables.
// Exit status 1 with the server's error (SQLSTATE and message) if anything fails.
#include <coring/bridge/postgres.hpp>
#include <coring/coring.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <string_view>
#include <vector>

namespace pg = coring::postgres;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
    int connections = 4;
    int orders = 20000;
    int batch = 100;  // rows per INSERT
    bool keep = false;
    std::string conninfo;
};

double ms_since(clock_type::time_point start) { return std::chrono::duration<double, std::milli>(clock_type::now() - start).count(); }

// ------------------------------------------------------------------ the data

struct order {
    std::int64_t id;
    std::string_view region;
    std::string_view product;
    int quantity;
    std::int64_t unit_cents;
    std::string day;  // ISO date in the first half of 2024
};

constexpr std::string_view regions[] = {"north", "south", "east", "west"};
constexpr std::string_view products[] = {"anvil", "bellows", "chisel", "drill", "easel", "file", "gimlet", "hammer", "jigsaw", "kettle"};

// Deterministic pseudo-random orders (a 64-bit LCG): the same table on every run.
std::vector<order> generate(int count) {
    std::uint64_t state = 0x9e3779b97f4a7c15ULL;
    const auto next = [&state](std::uint64_t bound) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        return (state >> 33) % bound;
    };
    static constexpr int month_days[] = {31, 29, 31, 30, 31, 30};
    std::vector<order> out;
    out.reserve(static_cast<std::size_t>(count));
    for (int i = 0; i < count; ++i) {
        const int month = static_cast<int>(next(6));
        const int day = 1 + static_cast<int>(next(static_cast<std::uint64_t>(month_days[month])));
        char date[32];
        std::snprintf(date, sizeof date, "2024-%02d-%02d", month + 1, day);
        const std::size_t product = next(std::size(products));
        out.push_back(order{i + 1, regions[next(std::size(regions))], products[product], 1 + static_cast<int>(next(10)),
                            static_cast<std::int64_t>(500 + product * 750 + next(2000)), date});
    }
    return out;
}

// ------------------------------------------------------------------ filling the table

// One connection's share of the orders (every n-th), in one transaction of batched INSERTs.
coring::task<> insert_share(pg::connection& db, const std::vector<order>& all, int first, int step, int batch) {
    const auto body = [&](pg::transaction& tx) -> coring::task<> {
        pg::parameters values;
        std::string sql;
        int in_batch = 0;
        for (std::size_t i = static_cast<std::size_t>(first); i < all.size(); i += static_cast<std::size_t>(step)) {
            const order& o = all[i];
            if (in_batch == 0) sql = "INSERT INTO pg_report_orders (id, region, product, quantity, unit_price, ordered_on) VALUES ";
            sql += in_batch == 0 ? "" : ", ";
            sql += values.placeholders(6);
            // unit_price: cents as text with two decimals, read by the server as numeric(10,2).
            values.add(o.id, o.region, o.product, o.quantity, std::to_string(o.unit_cents / 100) + "." + std::to_string(100 + o.unit_cents % 100).substr(1), o.day);
            if (++in_batch == batch) {
                (void)co_await tx.execute(sql, values);
                values = pg::parameters();
                in_batch = 0;
            }
        }
        if (in_batch > 0) (void)co_await tx.execute(sql, values);
    };
    co_await db.transaction(body);
}

// ------------------------------------------------------------------ reports

struct report {
    std::string title;
    std::string sql;
};

struct report_result {
    pg::result rows;
    double ms = 0;
};

coring::task<report_result> run_report(pg::connection& db, const report& r) {
    const auto start = clock_type::now();
    pg::result rows = co_await db.query(r.sql);
    co_return report_result{std::move(rows), ms_since(start)};
}

bool is_number_column(const pg::result& r, int col) {
    switch (r.column_type(col)) {
        case pg::oid::int2:
        case pg::oid::int4:
        case pg::oid::int8:
        case pg::oid::float4:
        case pg::oid::float8:
        case pg::oid::numeric:
            return true;
        default:
            return false;
    }
}

// Prints a result as psql does: headers, a rule, numbers to the right.
void print_table(const std::string& title, const report_result& rr) {
    const pg::result& r = rr.rows;
    std::printf("\n%s (%.1f ms)\n", title.c_str(), rr.ms);
    std::vector<std::size_t> width(static_cast<std::size_t>(r.columns()));
    for (int c = 0; c < r.columns(); ++c) {
        std::size_t w = r.column_name(c).size();
        for (int row = 0; row < r.rows(); ++row) w = std::max(w, r.value(row, c).value_or("").size());
        width[static_cast<std::size_t>(c)] = w;
    }
    const auto cell = [&](std::string_view text, int c, bool right) {
        // The last column, left-aligned, is not padded: no trailing blanks.
        const int w = right || c + 1 < r.columns() ? static_cast<int>(width[static_cast<std::size_t>(c)]) : 0;
        std::printf("%s%*.*s", c == 0 ? "" : " | ", right ? w : -w, static_cast<int>(text.size()), text.data());
    };
    for (int c = 0; c < r.columns(); ++c) cell(r.column_name(c), c, false);
    std::printf("\n");
    for (int c = 0; c < r.columns(); ++c) std::printf("%s%s", c == 0 ? "" : "-+-", std::string(width[static_cast<std::size_t>(c)], '-').c_str());
    std::printf("\n");
    for (int row = 0; row < r.rows(); ++row) {
        for (int c = 0; c < r.columns(); ++c) cell(r.value(row, c).value_or(""), c, is_number_column(r, c));
        std::printf("\n");
    }
}

const std::vector<report>& reports() {
    static const std::vector<report> all{
        {"Revenue by region",
         "SELECT region, count(*) AS orders, sum(quantity) AS units, sum(quantity * unit_price) AS revenue, "
         "round(sum(quantity * unit_price) / count(*), 2) AS \"average order\" "
         "FROM pg_report_orders GROUP BY region ORDER BY revenue DESC"},
        {"Top 5 products",
         "SELECT rank() OVER (ORDER BY sum(quantity * unit_price) DESC) AS rank, product, sum(quantity) AS units, "
         "sum(quantity * unit_price) AS revenue FROM pg_report_orders GROUP BY product ORDER BY revenue DESC LIMIT 5"},
        {"Revenue by month, with the running total",
         "SELECT to_char(date_trunc('month', ordered_on), 'YYYY-MM') AS month, count(*) AS orders, "
         "sum(quantity * unit_price) AS revenue, sum(sum(quantity * unit_price)) OVER (ORDER BY date_trunc('month', ordered_on)) AS \"running total\" "
         "FROM pg_report_orders GROUP BY date_trunc('month', ordered_on) ORDER BY 1"},
        {"Best day of each region",
         "SELECT DISTINCT ON (region) region, ordered_on AS day, count(*) AS orders, sum(quantity * unit_price) AS revenue "
         "FROM pg_report_orders GROUP BY region, ordered_on ORDER BY region, revenue DESC, day"},
    };
    return all;
}

// ------------------------------------------------------------------ the run

coring::task<int> report_main(settings s) {
    // Connections, opened at once.
    auto start = clock_type::now();
    std::vector<coring::task<pg::connection>> opening;
    for (int i = 0; i < s.connections; ++i) opening.push_back(pg::connect(s.conninfo));
    std::vector<pg::connection> db = co_await coring::gather(std::move(opening));
    std::printf("connected %d connections in %.1f ms\n", s.connections, ms_since(start));

    // The table, filled by every connection at once.
    start = clock_type::now();
    (void)co_await db[0].execute(
        "DROP TABLE IF EXISTS pg_report_orders; "
        "CREATE TABLE pg_report_orders (id bigint PRIMARY KEY, region text NOT NULL, product text NOT NULL, "
        "quantity int NOT NULL CHECK (quantity > 0), unit_price numeric(10, 2) NOT NULL, ordered_on date NOT NULL)");
    const std::vector<order> data = generate(s.orders);
    std::vector<coring::task<>> filling;
    for (int i = 0; i < s.connections; ++i) filling.push_back(insert_share(db[static_cast<std::size_t>(i)], data, i, s.connections, s.batch));
    co_await coring::gather(std::move(filling));
    std::printf("created pg_report_orders and inserted %d orders in %.1f ms (%d connections, %d rows per INSERT)\n", s.orders, ms_since(start), s.connections,
                s.batch);

    // The reports, gathered over the connections (several per connection if there are fewer).
    start = clock_type::now();
    std::vector<coring::task<report_result>> running;
    for (std::size_t i = 0; i < reports().size(); ++i) running.push_back(run_report(db[i % db.size()], reports()[i]));
    const std::vector<report_result> results = co_await coring::gather(std::move(running));
    const double all_ms = ms_since(start);
    double slowest = 0;
    for (std::size_t i = 0; i < results.size(); ++i) {
        print_table(reports()[i].title, results[i]);
        slowest = std::max(slowest, results[i].ms);
    }
    std::printf("\n%zu reports on %zu connections in %.1f ms (the slowest alone took %.1f ms)\n", results.size(), std::min(db.size(), results.size()), all_ms,
                slowest);

    // The server's totals against the generated data, in cents.
    std::int64_t cents = 0;
    for (const order& o : data) cents += o.quantity * o.unit_cents;
    const pg::result totals = co_await db[0].query("SELECT (sum(quantity * unit_price) * 100)::bigint, count(*) FROM pg_report_orders");
    const std::int64_t server_cents = totals.get<std::int64_t>(0, 0);
    const std::int64_t server_orders = totals.get<std::int64_t>(0, 1);
    const bool ok = server_cents == cents && server_orders == s.orders;
    std::printf("check: revenue %lld.%02lld and %lld orders, %s\n", static_cast<long long>(server_cents / 100), static_cast<long long>(server_cents % 100),
                static_cast<long long>(server_orders), ok ? "as generated" : "NOT as generated");
    if (!s.keep) (void)co_await db[0].execute("DROP TABLE pg_report_orders");
    co_return ok ? 0 : 1;
}

void usage() {
    std::fprintf(stderr, "usage: pg_report [--connections N] [--orders N] [--batch N] [--keep] [CONNINFO]\n");
    std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        const auto number = [&](int low) {
            if (i + 1 >= argc) usage();
            const int n = std::atoi(argv[++i]);
            if (n < low) usage();
            return n;
        };
        if (arg == "--connections")
            s.connections = number(1);
        else if (arg == "--orders")
            s.orders = number(1);
        else if (arg == "--batch")
            s.batch = std::min(number(1), 10000);  // 6 values per row, 65535 at most per statement
        else if (arg == "--keep")
            s.keep = true;
        else if (arg.starts_with("--"))
            usage();
        else
            s.conninfo = arg;
    }
    try {
        return coring::run(report_main(s));
    } catch (const pg::error& e) {
        std::fprintf(stderr, "pg_report: %s\n", e.what());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "pg_report: %s\n", e.what());
    }
    return 1;
}
