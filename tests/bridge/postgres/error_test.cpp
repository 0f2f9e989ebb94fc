// Tests of coring/bridge/postgres/error.hpp without a server: the fields of an error, the text of
// what(), and the errors made from libpq's connection and result objects when libpq itself
// failed (no SQLSTATE from a server). (Errors a server sends: tests/bridge/postgres_test.cpp.)
#include <coring/bridge/postgres/error.hpp>

#include "support/catch.hpp"

#include <libpq-fe.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

namespace pg = coring::postgres;

namespace {

struct conn_deleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
struct result_deleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};

// A connection that libpq refused before it reached for a server: an unknown option.
std::unique_ptr<PGconn, conn_deleter> refused_connection() {
    std::unique_ptr<PGconn, conn_deleter> c(PQconnectdb("no_such_option=1"));
    REQUIRE(c != nullptr);
    REQUIRE(PQstatus(c.get()) == CONNECTION_BAD);
    return c;
}

}  // namespace

TEST_CASE("postgres error - the fields, and what() with DETAIL and HINT lines", "[postgres][error]") {
    STATIC_REQUIRE(std::is_base_of_v<std::runtime_error, pg::error>);
    const pg::error e("23505", "duplicate key value violates unique constraint \"users_pkey\"", "ERROR", "Key (id)=(1) already exists.",
                      "Use another id.", true);
    CHECK(e.sqlstate() == "23505");
    CHECK(e.message() == "duplicate key value violates unique constraint \"users_pkey\"");
    CHECK(e.severity() == "ERROR");
    CHECK(e.detail() == "Key (id)=(1) already exists.");
    CHECK(e.hint() == "Use another id.");
    CHECK(e.from_server());
    CHECK(std::string(e.what()) ==
          "coring::postgres: ERROR 23505: duplicate key value violates unique constraint \"users_pkey\"\n"
          "DETAIL: Key (id)=(1) already exists.\n"
          "HINT: Use another id.");
}

TEST_CASE("postgres error - the defaults: ERROR, no detail or hint, not from the server", "[postgres][error]") {
    const pg::error e("22012", "division by zero");
    CHECK(e.severity() == "ERROR");
    CHECK(e.detail().empty());
    CHECK(e.hint().empty());
    CHECK_FALSE(e.from_server());
    CHECK(std::string(e.what()) == "coring::postgres: ERROR 22012: division by zero");
    const pg::error only_hint("42P01", "relation \"t\" does not exist", "ERROR", "", "Create it first.");
    CHECK(std::string(only_hint.what()) == "coring::postgres: ERROR 42P01: relation \"t\" does not exist\nHINT: Create it first.");
}

TEST_CASE("postgres error - without a SQLSTATE, what() has none either", "[postgres][error]") {
    const pg::error e("", "something libpq said", "FATAL");
    CHECK(e.sqlstate().empty());
    CHECK(std::string(e.what()) == "coring::postgres: FATAL: something libpq said");
}

TEST_CASE("postgres error - from_connection: libpq's message under a client-side SQLSTATE", "[postgres][error]") {
    const auto conn = refused_connection();
    const pg::error e = pg::error::from_connection("08001", conn.get());
    CHECK(e.sqlstate() == "08001");
    CHECK(e.message() == "invalid connection option \"no_such_option\"");  // libpq's, its newline trimmed
    CHECK(e.severity() == "FATAL");
    CHECK_FALSE(e.from_server());
    CHECK(std::string(e.what()) == "coring::postgres: FATAL 08001: invalid connection option \"no_such_option\"");

    const pg::error with_context = pg::error::from_connection("08006", conn.get(), "sending the command");
    CHECK(with_context.message() == "sending the command: invalid connection option \"no_such_option\"");

    // No connection at all: libpq could not allocate one.
    const pg::error no_conn = pg::error::from_connection("08001", nullptr);
    CHECK(no_conn.message() == "out of memory");
    const pg::error no_conn_context = pg::error::from_connection("08001", nullptr, "connecting");
    CHECK(no_conn_context.message() == "connecting: out of memory");
}

TEST_CASE("postgres error - from_result of a result libpq made: 08006 on a broken connection, its message", "[postgres][error]") {
    const auto conn = refused_connection();
    // The error result libpq makes itself (no server fields): it takes the connection's message.
    const std::unique_ptr<PGresult, result_deleter> made(PQmakeEmptyPGresult(conn.get(), PGRES_FATAL_ERROR));
    REQUIRE(made != nullptr);
    const pg::error e = pg::error::from_result(made.get(), conn.get());
    CHECK(e.sqlstate() == "08006");
    CHECK(e.message() == "invalid connection option \"no_such_option\"");
    CHECK(e.severity() == "ERROR");
    CHECK(e.detail().empty());
    CHECK(e.hint().empty());
    CHECK_FALSE(e.from_server());

    // Without a connection to ask, no SQLSTATE is made up.
    const std::unique_ptr<PGresult, result_deleter> bare(PQmakeEmptyPGresult(nullptr, PGRES_FATAL_ERROR));
    REQUIRE(bare != nullptr);
    const pg::error orphan = pg::error::from_result(bare.get(), nullptr);
    CHECK(orphan.sqlstate().empty());
    CHECK(orphan.message().empty());
    CHECK(orphan.severity() == "ERROR");
    CHECK_FALSE(orphan.from_server());
    CHECK(std::string(orphan.what()) == "coring::postgres: ERROR: ");
}
