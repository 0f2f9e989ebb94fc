// Tests of coring/bridge/postgres/session.hpp without a server: the values a session delivers
// (notification, notice), its closed error, and its entry points given no session (what an
// empty connection hands them). A live session needs a server: tests/bridge/postgres_test.cpp.
#include <coring/bridge/postgres/session.hpp>

#include <coring/testing/catch2.hpp>

#include "bridge/postgres/error_of.hpp"
#include "support/catch.hpp"

#include <optional>
#include <string>
#include <utility>

namespace pg = coring::postgres;
using pg::detail::session;

namespace {

using coring_test::postgres_bridge::error_of;

}  // namespace

TEST_CASE("postgres session - notification and notice start empty", "[postgres][session]") {
    const pg::notification n;
    CHECK(n.channel.empty());
    CHECK(n.payload.empty());
    CHECK(n.backend_pid == 0);
    const pg::notice notice;
    CHECK(notice.severity.empty());
    CHECK(notice.sqlstate.empty());
    CHECK(notice.message.empty());
}

TEST_CASE("postgres session - closed_error is 08003, FATAL, from the client", "[postgres][session]") {
    const pg::error e = session::closed_error();
    CHECK(e.sqlstate() == "08003");
    CHECK(e.message() == "the connection is closed (or was moved from)");
    CHECK(e.severity() == "FATAL");
    CHECK_FALSE(e.from_server());
    CHECK(std::string(e.what()) == "coring::postgres: FATAL 08003: the connection is closed (or was moved from)");
}

CORING_TEST_CASE("postgres session - without a session, enter() passes it on and every command task throws 08003", "[postgres][session]") {
    CHECK(session::enter(nullptr, "query") == nullptr);
    const std::optional<pg::error> run = co_await error_of([] { return session::locked_run(nullptr, "SELECT 1", {}, false); });
    REQUIRE(run);
    CHECK(run->sqlstate() == "08003");
    const std::optional<pg::error> execute = co_await error_of([] { return session::locked_execute(nullptr, "SELECT 1", {}, true); });
    REQUIRE(execute);
    CHECK(execute->sqlstate() == "08003");
    const std::optional<pg::error> notification = co_await error_of([] { return session::next_notification(nullptr); });
    REQUIRE(notification);
    CHECK(notification->sqlstate() == "08003");
}
