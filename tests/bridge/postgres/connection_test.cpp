// Tests of coring/bridge/postgres/connection.hpp without a server: an empty connection (every
// call throws error 08003), connect() failures that need no server, channel names quoted for
// LISTEN, transaction options. (A connection to a real server: tests/bridge/postgres_test.cpp.)
#include <coring/bridge/postgres/connection.hpp>

#include <coring/testing/catch2.hpp>

#include "bridge/postgres/error_of.hpp"
#include "support/catch.hpp"
#include "support/os.hpp"

#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace pg = coring::postgres;

namespace {

using coring_test::postgres_bridge::error_of;

// The postgres::error of a plain call.
template <class Call>
std::optional<pg::error> call_error(Call call) {
    try {
        call();
    } catch (const pg::error& e) {
        return e;
    }
    return std::nullopt;
}

bool is_closed_error(const std::optional<pg::error>& e) {
    return e && e->sqlstate() == "08003" && e->message() == "the connection is closed (or was moved from)" && e->severity() == "FATAL" &&
           !e->from_server() && std::string(e->what()) == "coring::postgres: FATAL 08003: the connection is closed (or was moved from)";
}

coring::task<int> body(pg::transaction&) { co_return 1; }

}  // namespace

TEST_CASE("postgres connection - an empty connection: closed, and its accessors throw 08003", "[postgres][connection]") {
    pg::connection empty;
    CHECK_FALSE(empty.is_open());
    CHECK_FALSE(static_cast<bool>(empty));
    CHECK(is_closed_error(call_error([&] { (void)empty.try_notification(); })));
    CHECK(is_closed_error(call_error([&] { (void)empty.server_version(); })));
    CHECK(is_closed_error(call_error([&] { (void)empty.backend_pid(); })));
    CHECK(is_closed_error(call_error([&] { (void)empty.parameter("server_version"); })));
    CHECK(is_closed_error(call_error([&] { (void)empty.native_handle(); })));
    CHECK(is_closed_error(call_error([&] { empty.on_notice([](const pg::notice&) {}); })));
    empty.close();  // nothing to close
    CHECK_FALSE(empty.is_open());
    pg::connection moved_to = std::move(empty);
    CHECK_FALSE(moved_to.is_open());
}

CORING_TEST_CASE("postgres connection - an empty connection's commands fail with 08003 when awaited", "[postgres][connection]") {
    pg::connection empty;
    const std::optional<pg::error> query = co_await error_of([&] { return empty.query("SELECT $1", 1); });
    CHECK(is_closed_error(query));
    const std::optional<pg::error> execute = co_await error_of([&] { return empty.execute("DELETE FROM t"); });
    CHECK(is_closed_error(execute));
    const std::optional<pg::error> transaction = co_await error_of([&] { return empty.transaction(body); });
    CHECK(is_closed_error(transaction));
    const std::optional<pg::error> listen = co_await error_of([&] { return empty.listen("jobs"); });
    CHECK(is_closed_error(listen));
    const std::optional<pg::error> unlisten = co_await error_of([&] { return empty.unlisten("jobs"); });
    CHECK(is_closed_error(unlisten));
    const std::optional<pg::error> notify = co_await error_of([&] { return empty.notify("jobs", "payload"); });
    CHECK(is_closed_error(notify));
    const std::optional<pg::error> notification = co_await error_of([&] { return empty.notification(); });
    CHECK(is_closed_error(notification));
}

CORING_TEST_CASE("postgres connection - connect() fails with 08001 on a bad string or a missing socket", "[postgres][connection]") {
    const std::optional<pg::error> bad = co_await error_of([] { return pg::connect("host"); });
    REQUIRE(bad);
    CHECK(bad->sqlstate() == "08001");
    CHECK(bad->message() == "invalid connection string: missing \"=\" after \"host\" in connection info string");

    coring_test::temp_dir dir;  // a socket directory where no server listens
    const std::optional<pg::error> missing = co_await error_of([&] { return pg::connect("host=" + dir.path + " port=5999 user=nobody"); });
    REQUIRE(missing);
    CHECK(missing->sqlstate() == "08001");
    CHECK(missing->severity() == "FATAL");
    CHECK_FALSE(missing->from_server());
    INFO(missing->message());
    CHECK(missing->message().find(dir.path + "/.s.PGSQL.5999") != std::string::npos);
    CHECK(missing->message().find("No such file or directory") != std::string::npos);
}

TEST_CASE("postgres connection - channel names are quoted as identifiers, quotes doubled", "[postgres][connection]") {
    CHECK(pg::detail::quote_identifier("jobs") == "\"jobs\"");
    CHECK(pg::detail::quote_identifier("Mixed Case") == "\"Mixed Case\"");
    CHECK(pg::detail::quote_identifier("a\"b") == "\"a\"\"b\"");
    CHECK(pg::detail::quote_identifier("\"; DROP TABLE t; --") == "\"\"\"; DROP TABLE t; --\"");
    CHECK(pg::detail::quote_identifier("") == "\"\"");
    try {
        (void)pg::detail::quote_identifier(std::string_view("a\0b", 3));
        FAIL("an identifier with '\\0' was quoted");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()) == "coring::postgres: an identifier holds a '\\0' byte");
    }
    // listen() quotes before it makes its task: the misuse throws at the call.
    pg::connection empty;
    CHECK_THROWS_AS(empty.listen(std::string_view("a\0b", 3)), std::invalid_argument);
}

TEST_CASE("postgres connection - transaction options default to the server's BEGIN", "[postgres][connection]") {
    const pg::transaction_options options;
    CHECK(options.level == pg::isolation::server_default);
    CHECK_FALSE(options.read_only);
    CHECK_FALSE(options.deferrable);
    STATIC_REQUIRE(std::is_same_v<pg::detail::body_value_t<decltype(&body)>, int>);
    const auto void_body = [](pg::transaction&) -> coring::task<> { co_return; };
    STATIC_REQUIRE(std::is_same_v<pg::detail::body_value_t<decltype(void_body)>, void>);
}
