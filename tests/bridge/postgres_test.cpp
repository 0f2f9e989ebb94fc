// Tests of coring/bridge/postgres.hpp (coring::postgres) against a real PostgreSQL server that
// the binary starts once (tests/support/postgres_server.sh: initdb into a temporary folder,
// postgres on a free port of 127.0.0.1 and a Unix socket there, as the postgres user when run
// as root) and stops at exit. Without the server's programs the binary reports SKIP (77).
//
// The test that kills a server process (SIGKILL) makes the postmaster restart its backends, so
// it waits for the server to accept connections again before it ends.
#include <coring/bridge/postgres.hpp>
#include <coring/coring.hpp>
#include <coring/testing/catch2.hpp>

#include "support/catch.hpp"
#include "support/os.hpp"
#include "support/postgres_server.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

using namespace std::chrono_literals;
namespace pg = coring::postgres;

namespace {

coring_test::postgres_server& server() {
    static std::unique_ptr<coring_test::postgres_server> s = [] {
        try {
            return std::make_unique<coring_test::postgres_server>(/*ssl=*/true);
        } catch (const coring_test::postgres_missing& e) {
            std::printf("SKIP: %s\n", e.what());
            std::fflush(stdout);
            std::_Exit(77);
        }
    }();
    return *s;
}

coring::task<pg::connection> connect_db() { co_return co_await pg::connect(server().conninfo()); }

// What a command threw, if it was a postgres::error.
struct pg_failure {
    bool thrown = false;
    std::string sqlstate;
    std::string message;
    std::string detail;
    std::string what;
    bool from_server = false;
};

template <class T>
coring::task<pg_failure> failure_of(coring::task<T> command) {
    pg_failure f;
    try {
        (void)co_await std::move(command);
    } catch (const pg::error& e) {
        f.thrown = true;
        f.sqlstate = e.sqlstate();
        f.message = e.message();
        f.detail = e.detail();
        f.what = e.what();
        f.from_server = e.from_server();
    }
    co_return f;
}

bool contains(const std::string& text, std::string_view part) { return text.find(part) != std::string::npos; }

// A port of 127.0.0.1 that nothing listens on (the kernel's choice for port 0, released).
std::uint16_t unused_port() {
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    REQUIRE(::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0);
    ::close(fd);
    return ntohs(address.sin_port);
}

// Statements of other connections that are running now and match `pattern` (LIKE).
coring::task<std::int64_t> active_statements(pg::connection& observer, std::string pattern) {
    const pg::result r = co_await observer.query("SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE $1 AND pid <> pg_backend_pid()", pattern);
    co_return r.get<std::int64_t>(0, 0);
}

}  // namespace

// ================================================================== queries and values

CORING_TEST_CASE("postgres - query with parameters: rows, columns, names and values", "[postgres]") {
    pg::connection db = co_await connect_db();
    CHECK(db.is_open());
    CHECK(db.server_version() >= 100000);
    const pg::result r = co_await db.query("SELECT $1::int + $2::int AS sum, $3::text AS greeting", 1, 2, "hello");
    REQUIRE(r.rows() == 1);
    REQUIRE(r.columns() == 2);
    CHECK(r.column_name(0) == "sum");
    CHECK(r.column_name(1) == "greeting");
    CHECK(r.value(0, 0) == std::optional<std::string_view>("3"));
    CHECK(r.value(0, "greeting") == std::optional<std::string_view>("hello"));
    CHECK(r.get<int>(0, "sum") == 3);
    CHECK(r.column_type(0) == pg::oid::int4);
    CHECK(r.command_status() == "SELECT 1");
    CHECK_THROWS_AS(r.value(1, 0), std::out_of_range);
    CHECK_THROWS_AS(r.value(0, 2), std::out_of_range);
    CHECK_THROWS_AS(r.column("nope"), std::out_of_range);

    // Declared parameter types: no casts needed for arithmetic on integers.
    const pg::result sum = co_await db.query("SELECT $1 + $2", 40, 2);
    CHECK(sum.get<int>(0, 0) == 42);
}

CORING_TEST_CASE("postgres - parameters travel apart from the SQL: quotes and injections are data", "[postgres]") {
    pg::connection db = co_await connect_db();
    const std::string evil = "O'Reilly\"; DROP TABLE pg_class; --";
    const pg::result r = co_await db.query("SELECT $1::text, length($1::text)", evil);
    CHECK(r.value(0, 0) == std::optional<std::string_view>(evil));
    CHECK(r.get<std::size_t>(0, 1) == evil.size());
    const std::string unicode = "Grüße, 世界";
    const pg::result u = co_await db.query("SELECT $1::text, char_length($1::text)", std::string_view(unicode));
    CHECK(u.get<std::string>(0, 0) == unicode);
    CHECK(u.get<int>(0, 1) == 9);
    // A string parameter is of unknown type: the server reads it as what the context needs.
    const pg::result d = co_await db.query("SELECT $1::date + 1, $2::numeric * 2, $3::jsonb ->> 'k'", "2024-02-28", "1.25", R"({"k": "v"})");
    CHECK(d.value(0, 0) == std::optional<std::string_view>("2024-02-29"));
    CHECK(d.value(0, 1) == std::optional<std::string_view>("2.50"));
    CHECK(d.value(0, 2) == std::optional<std::string_view>("v"));
    bool refused = false;
    try {
        (void)co_await db.query("SELECT $1::text", std::string("a\0b", 3));
    } catch (const std::invalid_argument&) {
        refused = true;
    }
    CHECK(refused);
}

CORING_TEST_CASE("postgres - parameter types: integers, floating point, bool, bytes, optional", "[postgres]") {
    pg::connection db = co_await connect_db();
    const std::int16_t small = -12;
    const std::int64_t big = std::numeric_limits<std::int64_t>::max();
    const std::uint64_t huge = std::numeric_limits<std::uint64_t>::max();
    const pg::result types = co_await db.query("SELECT pg_typeof($1)::text, pg_typeof($2)::text, pg_typeof($3)::text, pg_typeof($4)::text, pg_typeof($5)::text, "
                                               "pg_typeof($6)::text, pg_typeof($7)::text, $1, $2, $3, $4",
                                               small, 7, big, huge, 2.5, true, 1.5f);
    CHECK(types.value(0, 0) == std::optional<std::string_view>("smallint"));
    CHECK(types.value(0, 1) == std::optional<std::string_view>("integer"));
    CHECK(types.value(0, 2) == std::optional<std::string_view>("bigint"));
    CHECK(types.value(0, 3) == std::optional<std::string_view>("numeric"));
    CHECK(types.value(0, 4) == std::optional<std::string_view>("double precision"));
    CHECK(types.value(0, 5) == std::optional<std::string_view>("boolean"));
    CHECK(types.value(0, 6) == std::optional<std::string_view>("real"));
    CHECK(types.get<std::int16_t>(0, 7) == -12);
    CHECK(types.get<int>(0, 8) == 7);
    CHECK(types.get<std::int64_t>(0, 9) == big);
    CHECK(types.get<std::uint64_t>(0, 10) == huge);

    const double third = 1.0 / 3.0;
    const pg::result f = co_await db.query("SELECT $1::float8, $2::float8, $3::float8, $4::float8 = 'NaN', $5, NOT $6", third,
                                           std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity(), std::nan(""), false, false);
    CHECK(f.get<double>(0, 0) == third);  // the shortest round-trip text, both ways
    CHECK(f.get<double>(0, 1) == std::numeric_limits<double>::infinity());
    CHECK(f.get<double>(0, 2) == -std::numeric_limits<double>::infinity());
    CHECK(f.get<bool>(0, 3));
    CHECK(f.value(0, 4) == std::optional<std::string_view>("f"));
    CHECK(f.get<bool>(0, 5));
    CHECK_THROWS_AS(f.get<int>(0, 0), std::invalid_argument);  // "0.333..." is not an int

    const std::vector<std::byte> bytes{std::byte{0}, std::byte{0xff}, std::byte{'A'}, std::byte{0}};
    const pg::result b = co_await db.query("SELECT $1::bytea, length($1), pg_typeof($1)::text", bytes);
    CHECK(b.value(0, 0) == std::optional<std::string_view>("\\x00ff4100"));
    CHECK(b.get<int>(0, 1) == 4);
    CHECK(b.value(0, 2) == std::optional<std::string_view>("bytea"));

    const std::optional<int> none;
    const std::optional<int> five = 5;
    const pg::result o = co_await db.query("SELECT $1 IS NULL, pg_typeof($1)::text, $2, $3::text IS NULL, $4::text IS NULL", none, five, std::nullopt, nullptr);
    CHECK(o.get<bool>(0, 0));
    CHECK(o.value(0, 1) == std::optional<std::string_view>("integer"));  // a typed NULL
    CHECK(o.get<int>(0, 2) == 5);
    CHECK(o.get<bool>(0, 3));
    CHECK(o.get<bool>(0, 4));
}

CORING_TEST_CASE("postgres - NULLs are empty values", "[postgres]") {
    pg::connection db = co_await connect_db();
    const pg::result r = co_await db.query("SELECT NULL::int AS n, ''::text AS e, 0 AS z");
    CHECK_FALSE(r.value(0, 0).has_value());
    CHECK(r.is_null(0, 0));
    CHECK(r.value(0, 1) == std::optional<std::string_view>(""));  // empty is not NULL
    CHECK_FALSE(r.is_null(0, 1));
    CHECK(r.get<std::optional<int>>(0, "n") == std::nullopt);
    CHECK(r.get<std::optional<int>>(0, "z") == std::optional<int>(0));
    CHECK_THROWS_AS(r.get<int>(0, "n"), std::invalid_argument);
}

CORING_TEST_CASE("postgres - a result of many rows arrives whole and in order", "[postgres]") {
    pg::connection db = co_await connect_db();
    const pg::result r = co_await db.query("SELECT i, md5(i::text) FROM generate_series(1, $1::int) AS i ORDER BY i", 200000);
    REQUIRE(r.rows() == 200000);
    std::int64_t sum = 0;
    bool ordered = true;
    for (int row = 0; row < r.rows(); ++row) {
        const int i = r.get<int>(row, 0);
        ordered = ordered && i == row + 1;
        sum += i;
    }
    CHECK(ordered);
    CHECK(sum == std::int64_t{200000} * 200001 / 2);
    const pg::result check = co_await db.query("SELECT md5('200000')");
    CHECK(r.value(199999, 1) == check.value(0, 0));
    CHECK(r.affected_rows() == 200000);
}

CORING_TEST_CASE("postgres - execute returns affected rows; without parameters it runs a script", "[postgres]") {
    pg::connection db = co_await connect_db();
    const std::int64_t created = co_await db.execute("CREATE TEMP TABLE items (id int PRIMARY KEY, name text); CREATE INDEX ON items (name)");
    CHECK(created == 0);
    for (int i = 1; i <= 5; ++i) {
        const std::int64_t inserted = co_await db.execute("INSERT INTO items VALUES ($1, $2)", i, "item " + std::to_string(i));
        CHECK(inserted == 1);
    }
    const std::int64_t updated = co_await db.execute("UPDATE items SET name = upper(name) WHERE id > $1", 2);
    CHECK(updated == 3);
    const std::int64_t deleted = co_await db.execute("DELETE FROM items WHERE id % 2 = 0");
    CHECK(deleted == 2);
    const pg::result rest = co_await db.query("SELECT id, name FROM items ORDER BY id");
    REQUIRE(rest.rows() == 3);
    CHECK(rest.value(0, 1) == std::optional<std::string_view>("item 1"));
    CHECK(rest.value(1, 1) == std::optional<std::string_view>("ITEM 3"));
    CHECK(rest.get<int>(2, "id") == 5);
    const pg::result returning = co_await db.query("INSERT INTO items VALUES ($1, $2) RETURNING id * 10", 6, "six");
    CHECK(returning.get<int>(0, 0) == 60);
    CHECK(returning.affected_rows() == 1);

    // A list of parameters built at run time, between fixed ones.
    pg::parameters rows;
    std::string sql = "INSERT INTO items SELECT * FROM (VALUES ";
    for (int id = 10; id < 15; ++id) {
        sql += rows.empty() ? "" : ", ";
        sql += rows.placeholders(2);
        rows.add(id, "batch " + std::to_string(id));
    }
    sql += ") AS v (id, name) WHERE id <> $11";
    const std::int64_t batch = co_await db.execute(sql, rows, 12);
    CHECK(batch == 4);
    const pg::result in_list = co_await db.query("SELECT string_agg(name, ',' ORDER BY id) FROM items WHERE id > $1", 9);
    CHECK(in_list.value(0, 0) == std::optional<std::string_view>("batch 10,batch 11,batch 13,batch 14"));
}

// ================================================================== errors

CORING_TEST_CASE("postgres - server errors throw postgres::error with SQLSTATE, and the connection goes on", "[postgres][error]") {
    pg::connection db = co_await connect_db();
    const pg_failure missing = co_await failure_of(db.query("SELECT * FROM no_such_table"));
    CHECK(missing.thrown);
    CHECK(missing.sqlstate == "42P01");
    CHECK(missing.message == "relation \"no_such_table\" does not exist");
    CHECK(missing.from_server);
    CHECK(contains(missing.what, "ERROR 42P01: relation \"no_such_table\" does not exist"));

    const pg_failure zero = co_await failure_of(db.query("SELECT $1::int / $2::int", 1, 0));
    CHECK(zero.sqlstate == "22012");
    CHECK(zero.message == "division by zero");

    const pg_failure syntax = co_await failure_of(db.execute("SELEC 1"));
    CHECK(syntax.sqlstate == "42601");

    (void)co_await db.execute("CREATE TEMP TABLE uniq (k int PRIMARY KEY)");
    (void)co_await db.execute("INSERT INTO uniq VALUES ($1)", 1);
    const pg_failure duplicate = co_await failure_of(db.execute("INSERT INTO uniq VALUES ($1)", 1));
    CHECK(duplicate.sqlstate == "23505");
    CHECK(duplicate.detail == "Key (k)=(1) already exists.");

    // A script stops at its first error.
    const pg_failure script = co_await failure_of(db.execute("INSERT INTO uniq VALUES (2); SELECT 1/0; INSERT INTO uniq VALUES (3)"));
    CHECK(script.sqlstate == "22012");
    const pg::result after = co_await db.query("SELECT count(*) FROM uniq");
    CHECK(after.get<int>(0, 0) == 1);  // the script was one implicit transaction
    CHECK(db.is_open());
}

CORING_TEST_CASE("postgres - a refused connection throws error 08001 with libpq's message", "[postgres][error]") {
    const std::uint16_t port = unused_port();
    const pg_failure refused = co_await failure_of(pg::connect("host=127.0.0.1 port=" + std::to_string(port) + " user=postgres connect_timeout=5"));
    CHECK(refused.thrown);
    CHECK(refused.sqlstate == "08001");
    CHECK_FALSE(refused.from_server);
    CHECK(contains(refused.message, "Connection refused"));
    CHECK(contains(refused.message, std::to_string(port)));

    const pg_failure no_database = co_await failure_of(pg::connect(server().conninfo() + " dbname=no_such_db"));
    CHECK(no_database.sqlstate == "08001");
    CHECK(contains(no_database.message, "database \"no_such_db\" does not exist"));

    const pg_failure bad_string = co_await failure_of(pg::connect("host=127.0.0.1 nonsense_option=1"));
    CHECK(bad_string.sqlstate == "08001");
    CHECK(contains(bad_string.message, "invalid connection string"));

    const pg_failure no_host = co_await failure_of(pg::connect("host=no-such-host.invalid port=5432 user=postgres"));
    CHECK(no_host.sqlstate == "08001");
    CHECK(contains(no_host.message, "no-such-host.invalid"));

    pg::connection empty;
    CHECK_FALSE(empty.is_open());
    const pg_failure closed = co_await failure_of(empty.query("SELECT 1"));
    CHECK(closed.sqlstate == "08003");
    const pg_failure closed_execute = co_await failure_of(empty.execute("SELECT 1"));
    CHECK(closed_execute.sqlstate == "08003");
    const pg_failure closed_notification = co_await failure_of(empty.notification());
    CHECK(closed_notification.sqlstate == "08003");
}

CORING_TEST_CASE("postgres - connect over the Unix socket, by URI, and by host name", "[postgres]") {
    pg::connection local = co_await pg::connect(server().unix_conninfo());
    const pg::result via_socket = co_await local.query("SELECT inet_server_addr() IS NULL");  // NULL over a Unix socket
    CHECK(via_socket.get<bool>(0, 0));
    pg::connection by_uri = co_await pg::connect("postgresql://postgres@127.0.0.1:" + std::to_string(server().port()) + "/postgres");
    const pg::result one = co_await by_uri.query("SELECT 1");
    CHECK(one.get<int>(0, 0) == 1);
    // "localhost" is resolved by coring::resolve; the server listens on 127.0.0.1 only, so an
    // ::1 first in the answer must be skipped for the next address, as libpq would.
    pg::connection by_name = co_await pg::connect("host=localhost port=" + std::to_string(server().port()) + " user=postgres dbname=postgres");
    const pg::result addr = co_await by_name.query("SELECT host(inet_server_addr())");
    CHECK(addr.value(0, 0) == std::optional<std::string_view>("127.0.0.1"));
    CHECK(by_name.parameter("server_encoding") == std::optional<std::string_view>("UTF8"));
}

CORING_TEST_CASE("postgres - over SSL: large results and many round trips", "[postgres][ssl]") {
    pg::connection db = co_await pg::connect("host=127.0.0.1 port=" + std::to_string(server().port()) + " user=postgres dbname=postgres sslmode=require");
    const pg::result ssl = co_await db.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    CHECK(ssl.get<bool>(0, 0));
    // Messages of every size: SSL records that libpq reads in pieces must not stall the reader.
    for (int n : {1, 100, 1000, 5000, 20000, 100000}) {
        const pg::result r = co_await db.query("SELECT repeat('x', $1::int) FROM generate_series(1, 3)", n);
        REQUIRE(r.rows() == 3);
        CHECK(r.value(2, 0)->size() == static_cast<std::size_t>(n));
    }
    const pg::result big = co_await db.query("SELECT i, md5(i::text) FROM generate_series(1, 100000) AS i");
    CHECK(big.rows() == 100000);
    for (int i = 0; i < 200; ++i) {
        const pg::result r = co_await db.query("SELECT $1::int", i);
        CHECK(r.get<int>(0, 0) == i);
    }
}

// ================================================================== sharing and concurrency

CORING_TEST_CASE("postgres - tasks sharing one connection take turns, in order", "[postgres]") {
    pg::connection db = co_await connect_db();
    std::vector<int> finished;
    const auto one = [&](int i) -> coring::task<int> {
        const pg::result r = co_await db.query("SELECT $1::int * 2, pg_sleep(0.001)", i);
        finished.push_back(i);
        co_return r.get<int>(0, 0);
    };
    std::vector<coring::task<int>> all;
    for (int i = 0; i < 20; ++i) all.push_back(one(i));
    const std::vector<int> doubled = co_await coring::gather(std::move(all));
    for (int i = 0; i < 20; ++i) CHECK(doubled[static_cast<std::size_t>(i)] == 2 * i);
    std::vector<int> expected;
    for (int i = 0; i < 20; ++i) expected.push_back(i);
    CHECK(finished == expected);
}

CORING_TEST_CASE("postgres - queries on several connections run at the same time", "[postgres]") {
    std::vector<pg::connection> connections;
    for (int i = 0; i < 5; ++i) connections.push_back(co_await connect_db());
    const auto sleeper = [](pg::connection& c) -> coring::task<int> {
        const pg::result r = co_await c.query("SELECT pg_backend_pid() FROM pg_sleep(0.4)");
        co_return r.get<int>(0, 0);
    };
    std::vector<coring::task<int>> all;
    for (pg::connection& c : connections) all.push_back(sleeper(c));
    const auto start = std::chrono::steady_clock::now();
    const std::vector<int> pids = co_await coring::gather(std::move(all));
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(took >= 390ms);
    CHECK(took < 1500ms);  // 5 x 0.4 s one after another would be 2 s
    for (std::size_t i = 0; i < pids.size(); ++i) CHECK(pids[i] == connections[i].backend_pid());
}

// ================================================================== cancellation

CORING_TEST_CASE("postgres - a cancelled query is cancelled on the server, and the connection is usable", "[postgres][cancel]") {
    pg::connection db = co_await connect_db();
    pg::connection observer = co_await connect_db();
    const auto start = std::chrono::steady_clock::now();
    bool timed_out = false;
    try {
        (void)co_await coring::wait_for(db.query("SELECT pg_sleep(10)"), 100ms);
    } catch (const coring::timeout_error&) {
        timed_out = true;
    }
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(timed_out);
    CHECK(took >= 100ms);
    CHECK(took < 2s);
    const std::int64_t sleeping = co_await active_statements(observer, "SELECT pg_sleep(10)%");
    CHECK(sleeping == 0);  // the server stopped it
    CHECK(db.is_open());
    const pg::result next = co_await db.query("SELECT $1::int", 7);
    CHECK(next.get<int>(0, 0) == 7);

    // The same through a task handle's cancel().
    coring::task_handle<pg::result> running = coring::create_task(db.query("SELECT pg_sleep(10)"));
    co_await coring::sleep(100ms);
    const std::int64_t during = co_await active_statements(observer, "SELECT pg_sleep(10)%");
    CHECK(during == 1);
    running.cancel();
    bool cancelled = false;
    try {
        (void)co_await running;
    } catch (const coring::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    const std::int64_t after = co_await active_statements(observer, "SELECT pg_sleep(10)%");
    CHECK(after == 0);
    const pg::result again = co_await db.query("SELECT 'still here'");
    CHECK(again.value(0, 0) == std::optional<std::string_view>("still here"));
}

CORING_TEST_CASE("postgres - a task cancelled while it waits for the connection sends nothing", "[postgres][cancel]") {
    pg::connection db = co_await connect_db();
    (void)co_await db.execute("CREATE TEMP TABLE log (n int)");
    coring::task_handle<pg::result> first = coring::create_task(db.query("SELECT pg_sleep(0.3)"));
    coring::task_handle<std::int64_t> queued = coring::create_task(db.execute("INSERT INTO log VALUES ($1)", 1));
    co_await coring::sleep(50ms);
    queued.cancel();
    bool cancelled = false;
    try {
        (void)co_await queued;
    } catch (const coring::cancelled_error&) {
        cancelled = true;
    }
    CHECK(cancelled);
    const pg::result slept = co_await first;  // not disturbed
    CHECK(slept.rows() == 1);
    const pg::result rows = co_await db.query("SELECT count(*) FROM log");
    CHECK(rows.get<int>(0, 0) == 0);
}

// ================================================================== transactions

CORING_TEST_CASE("postgres - transaction commits the body's work and yields its value", "[postgres][transaction]") {
    pg::connection db = co_await connect_db();
    pg::connection other = co_await connect_db();
    (void)co_await db.execute("DROP TABLE IF EXISTS accounts; CREATE TABLE accounts (id int PRIMARY KEY, balance int NOT NULL CHECK (balance >= 0))");
    (void)co_await db.execute("INSERT INTO accounts VALUES (1, 100), (2, 0)");
    const auto transfer = [&](pg::transaction& tx) -> coring::task<int> {
        (void)co_await tx.execute("UPDATE accounts SET balance = balance - $1 WHERE id = 1", 30);
        // Not visible to others before COMMIT.
        const pg::result seen = co_await other.query("SELECT balance FROM accounts WHERE id = 1");
        CHECK(seen.get<int>(0, 0) == 100);
        (void)co_await tx.execute("UPDATE accounts SET balance = balance + $1 WHERE id = 2", 30);
        const pg::result mine = co_await tx.query("SELECT balance FROM accounts WHERE id = 2");
        co_return mine.get<int>(0, 0);
    };
    const int inside = co_await db.transaction(transfer);
    CHECK(inside == 30);
    const pg::result after = co_await other.query("SELECT balance FROM accounts ORDER BY id");
    CHECK(after.get<int>(0, 0) == 70);
    CHECK(after.get<int>(1, 0) == 30);
    (void)co_await db.execute("DROP TABLE accounts");
}

CORING_TEST_CASE("postgres - transaction rolls back when the body throws, and rethrows", "[postgres][transaction]") {
    pg::connection db = co_await connect_db();
    (void)co_await db.execute("CREATE TEMP TABLE t (n int CHECK (n < 10))");
    const auto failing = [](pg::transaction& tx) -> coring::task<> {
        (void)co_await tx.execute("INSERT INTO t VALUES ($1)", 1);
        (void)co_await tx.execute("INSERT INTO t VALUES ($1)", 99);  // violates the check: 23514
    };
    const pg_failure check = co_await failure_of(db.transaction(failing));
    CHECK(check.sqlstate == "23514");
    const pg::result none = co_await db.query("SELECT count(*) FROM t");
    CHECK(none.get<int>(0, 0) == 0);

    struct app_error {};
    const auto throwing = [](pg::transaction& tx) -> coring::task<> {
        (void)co_await tx.execute("INSERT INTO t VALUES ($1)", 2);
        throw app_error{};
    };
    bool rethrown = false;
    try {
        co_await db.transaction(throwing);
    } catch (const app_error&) {
        rethrown = true;
    }
    CHECK(rethrown);
    const pg::result still_none = co_await db.query("SELECT count(*) FROM t");
    CHECK(still_none.get<int>(0, 0) == 0);
    CHECK(PQtransactionStatus(db.native_handle()) == PQTRANS_IDLE);  // not left inside a transaction

    // A body that swallows a failed command cannot commit.
    const auto swallowing = [](pg::transaction& tx) -> coring::task<> {
        (void)co_await tx.execute("INSERT INTO t VALUES ($1)", 3);
        try {
            (void)co_await tx.execute("INSERT INTO t VALUES ($1)", 100);
        } catch (const pg::error&) {
        }
    };
    const pg_failure swallowed = co_await failure_of(db.transaction(swallowing));
    CHECK(swallowed.sqlstate == "25P02");
    const pg::result rolled_back = co_await db.query("SELECT count(*) FROM t");
    CHECK(rolled_back.get<int>(0, 0) == 0);
}

CORING_TEST_CASE("postgres - transaction: options, and the connection's own methods are refused inside", "[postgres][transaction]") {
    pg::connection db = co_await connect_db();
    const auto isolation_of = [](pg::transaction& tx) -> coring::task<std::string> {
        const pg::result r = co_await tx.query("SELECT current_setting('transaction_isolation'), current_setting('transaction_read_only')");
        co_return std::string(*r.value(0, 0)) + "/" + std::string(*r.value(0, 1));
    };
    const std::string serializable = co_await db.transaction(isolation_of, {.level = pg::isolation::serializable, .read_only = true});
    CHECK(serializable == "serializable/on");
    const std::string plain = co_await db.transaction(isolation_of);
    CHECK(plain == "read committed/off");

    bool refused = false;
    std::string unlisten_refusal;
    const auto misuse = [&](pg::transaction&) -> coring::task<> {
        try {
            (void)co_await db.query("SELECT 1");
        } catch (const coring::invalid_state_error&) {
            refused = true;
        }
        try {
            co_await db.unlisten("jobs");
        } catch (const coring::invalid_state_error& e) {
            unlisten_refusal = e.what();
        }
    };
    co_await db.transaction(misuse);
    CHECK(refused);
    CHECK(unlisten_refusal.find("connection::unlisten inside the body of connection::transaction") != std::string::npos);
}

CORING_TEST_CASE("postgres - a transaction cancelled mid-command is rolled back on the server", "[postgres][transaction][cancel]") {
    pg::connection db = co_await connect_db();
    (void)co_await db.execute("DROP TABLE IF EXISTS cancelled_tx; CREATE TABLE cancelled_tx (n int)");
    const auto slow = [](pg::transaction& tx) -> coring::task<> {
        (void)co_await tx.execute("INSERT INTO cancelled_tx VALUES ($1)", 1);
        (void)co_await tx.query("SELECT pg_sleep(10)");
    };
    bool timed_out = false;
    const auto start = std::chrono::steady_clock::now();
    try {
        co_await coring::wait_for(db.transaction(slow), 200ms);
    } catch (const coring::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    const pg::result rows = co_await db.query("SELECT count(*) FROM cancelled_tx");
    CHECK(rows.get<int>(0, 0) == 0);
    (void)co_await db.execute("DROP TABLE cancelled_tx");
}

// ================================================================== LISTEN / NOTIFY

CORING_TEST_CASE("postgres - LISTEN/NOTIFY: notifications arrive in order, with channel, payload and sender", "[postgres][notify]") {
    pg::connection listener = co_await connect_db();
    pg::connection sender = co_await connect_db();
    co_await listener.listen("Jobs Channel");  // quoted: the exact name
    co_await listener.listen("other");
    for (int i = 0; i < 3; ++i) co_await sender.notify("Jobs Channel", "job " + std::to_string(i));
    (void)co_await sender.execute("NOTIFY other");
    for (int i = 0; i < 3; ++i) {
        const pg::notification n = co_await listener.notification();  // the listener runs no command meanwhile
        CHECK(n.channel == "Jobs Channel");
        CHECK(n.payload == "job " + std::to_string(i));
        CHECK(n.backend_pid == sender.backend_pid());
    }
    const pg::notification bare = co_await listener.notification();
    CHECK(bare.channel == "other");
    CHECK(bare.payload.empty());
    CHECK_FALSE(listener.try_notification().has_value());

    // A waiting task wakes when one comes; one sent in a transaction comes at COMMIT.
    const auto waiter = [&]() -> coring::task<pg::notification> { co_return co_await listener.notification(); };
    coring::task_handle<pg::notification> waiting = coring::create_task(waiter());
    bool early = true;
    const auto in_tx = [&](pg::transaction& tx) -> coring::task<> {
        (void)co_await tx.query("SELECT pg_notify($1, $2)", "other", "committed");
        co_await coring::sleep(100ms);
        early = waiting.done();
    };
    co_await sender.transaction(in_tx);
    CHECK_FALSE(early);
    const pg::notification late = co_await coring::wait_for(waiting, 5s);
    CHECK(late.payload == "committed");

    // Notifications that arrive while the listener runs its own commands are kept.
    co_await sender.notify("other", "during");
    const pg::result busy = co_await listener.query("SELECT pg_sleep(0.1)");
    CHECK(busy.rows() == 1);
    const pg::notification kept = co_await coring::wait_for(listener.notification(), 5s);
    CHECK(kept.payload == "during");

    co_await listener.unlisten("other");
    co_await sender.notify("other", "not heard");
    co_await sender.notify("Jobs Channel", "heard");
    const pg::notification heard = co_await coring::wait_for(listener.notification(), 5s);
    CHECK(heard.payload == "heard");
}

CORING_TEST_CASE("postgres - notices reach on_notice", "[postgres]") {
    pg::connection db = co_await connect_db();
    std::vector<pg::notice> notices;
    db.on_notice([&](const pg::notice& n) { notices.push_back(n); });
    (void)co_await db.execute("DO $$ BEGIN RAISE NOTICE 'hello %', 42; RAISE WARNING 'careful'; END $$");
    REQUIRE(notices.size() == 2);
    CHECK(notices[0].severity == "NOTICE");
    CHECK(notices[0].message == "hello 42");
    CHECK(notices[1].severity == "WARNING");
    CHECK(notices[1].sqlstate == "01000");
}

// ================================================================== the server goes away

CORING_TEST_CASE("postgres - the server ends the connection mid-query: error 57P01, then 08006", "[postgres][error]") {
    pg::connection db = co_await connect_db();
    pg::connection admin = co_await connect_db();
    co_await db.listen("gone");
    const int pid = db.backend_pid();
    coring::task_handle<pg_failure> running = coring::create_task(failure_of(db.query("SELECT pg_sleep(10)")));
    const auto waiter = [&]() -> coring::task<pg_failure> { co_return co_await failure_of(db.notification()); };
    coring::task_handle<pg_failure> listening = coring::create_task(waiter());
    co_await coring::sleep(100ms);
    const pg::result terminated = co_await admin.query("SELECT pg_terminate_backend($1)", pid);
    CHECK(terminated.get<bool>(0, 0));
    const pg_failure f = co_await coring::wait_for(running, 5s);
    CHECK(f.thrown);
    CHECK(f.sqlstate == "57P01");
    CHECK(f.from_server);
    CHECK(contains(f.message, "terminating connection due to administrator command"));
    CHECK_FALSE(db.is_open());
    const pg_failure lost = co_await coring::wait_for(listening, 5s);  // the notification waiter too
    CHECK(lost.sqlstate == "08006");
    const pg_failure next = co_await failure_of(db.query("SELECT 1"));
    CHECK(next.sqlstate == "08006");
    CHECK_FALSE(next.from_server);
}

CORING_TEST_CASE("postgres - the server process dies mid-query (SIGKILL): the query fails, nothing hangs", "[postgres][error]") {
    pg::connection db = co_await connect_db();
    const pid_t pid = db.backend_pid();
    coring::task_handle<pg_failure> running = coring::create_task(failure_of(db.query("SELECT pg_sleep(10)")));
    co_await coring::sleep(100ms);
    REQUIRE(::kill(pid, SIGKILL) == 0);
    const auto start = std::chrono::steady_clock::now();
    const pg_failure f = co_await coring::wait_for(running, 5s);
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK(f.thrown);
    CHECK(f.sqlstate == "08006");
    CHECK_FALSE(f.from_server);
    CHECK(contains(f.message, "server closed the connection unexpectedly"));
    CHECK_FALSE(db.is_open());

    // The postmaster restarts its processes after a crash: wait until it accepts connections.
    bool back = false;
    for (int attempt = 0; attempt < 80 && !back; ++attempt) {
        try {
            pg::connection again = co_await connect_db();
            const pg::result one = co_await again.query("SELECT 1");
            back = one.get<int>(0, 0) == 1;
        } catch (const pg::error&) {
            back = false;
        }
        if (!back) co_await coring::sleep(100ms);
    }
    CHECK(back);
}

// ================================================================== resources

TEST_CASE("postgres - run() ends promptly with a query still running in a task it cancels", "[postgres][cancel]") {
    coring_test::postgres_server& s = server();
    static int observed_running = 0;
    const auto start = std::chrono::steady_clock::now();
    coring::run([](coring_test::postgres_server& srv) -> coring::task<> {
        const auto sleeper = [](std::string conninfo) -> coring::task<> {
            pg::connection db = co_await pg::connect(conninfo);
            (void)co_await db.query("SELECT pg_sleep(10)");
        };
        coring::task_handle<> background = coring::create_task(sleeper(srv.conninfo()));
        pg::connection observer = co_await pg::connect(srv.conninfo());
        co_await coring::sleep(200ms);
        observed_running = static_cast<int>(co_await active_statements(observer, "SELECT pg_sleep(10)%"));
        (void)background;  // left running: run() cancels it when this task returns
    }(s));
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(observed_running == 1);
    CHECK(took < 3s);
    // The server no longer runs it.
    const std::int64_t left = coring::run([](coring_test::postgres_server& srv) -> coring::task<std::int64_t> {
        pg::connection observer = co_await pg::connect(srv.conninfo());
        co_return co_await active_statements(observer, "SELECT pg_sleep(10)%");
    }(s));
    CHECK(left == 0);
}

TEST_CASE("postgres - connections, cancellations and their loop leave no descriptor open", "[postgres]") {
    coring_test::postgres_server& s = server();
    const int before = coring_test::count_open_fds();
    coring::run([](coring_test::postgres_server& srv) -> coring::task<> {
        for (int i = 0; i < 3; ++i) {
            pg::connection db = co_await pg::connect(srv.conninfo());
            (void)co_await db.query("SELECT $1::int", i);
            try {
                (void)co_await coring::wait_for(db.query("SELECT pg_sleep(5)"), 50ms);
            } catch (const coring::timeout_error&) {
            }
        }
        pg::connection kept = co_await pg::connect(srv.unix_conninfo());  // destroyed with the frame
        co_await kept.listen("x");
    }(s));
    CHECK(coring_test::count_open_fds() == before);
}
