// Tests of coring/bridge/postgres/conninfo.hpp without a server: a connection string's options as
// libpq parses them, the PG* environment variables behind them, the host and port lists, and
// resolve_hosts(), which turns host names into hostaddr entries before libpq sees them.
#include <coring/bridge/postgres/conninfo.hpp>

#include <coring/net/address.hpp>
#include <coring/net/resolve.hpp>
#include <coring/testing/catch2.hpp>

#include "support/catch.hpp"

#include <cstdlib>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace pg = coring::postgres;
using pg::detail::conninfo_options;

namespace {

// Unsets the PG* variables that resolve_hosts reads (and one of the test's own) for the test's
// length, and puts them back after.
class clean_environment {
public:
    clean_environment() {
        for (const char* name : names) {
            const char* value = std::getenv(name);
            m_saved.emplace_back(name, value != nullptr ? std::optional<std::string>(value) : std::nullopt);
            ::unsetenv(name);
        }
    }
    clean_environment(const clean_environment&) = delete;
    clean_environment& operator=(const clean_environment&) = delete;
    ~clean_environment() {
        for (const auto& [name, value] : m_saved) {
            if (value)
                ::setenv(name, value->c_str(), 1);
            else
                ::unsetenv(name);
        }
    }

private:
    static constexpr const char* names[] = {"PGHOST", "PGHOSTADDR", "PGPORT", "CORING_TEST_PGOPTION"};
    std::vector<std::pair<const char*, std::optional<std::string>>> m_saved;
};

// The error a conninfo_options constructor throws for `conninfo`.
std::optional<pg::error> parse_error(const std::string& conninfo) {
    try {
        conninfo_options options(conninfo);
    } catch (const pg::error& e) {
        return e;
    }
    return std::nullopt;
}

// What resolve_hosts throws, if it throws a postgres::error.
coring::task<std::optional<pg::error>> resolve_error(conninfo_options& options) {
    std::optional<pg::error> failure;
    try {
        co_await pg::detail::resolve_hosts(options);
    } catch (const pg::error& e) {
        failure = e;
    }
    co_return failure;
}

// The distinct addresses of `host`, in coring::resolve's order, as resolve_hosts lists them.
coring::task<std::vector<std::string>> addresses_of(std::string host) {
    const std::vector<coring::address> found = co_await coring::resolve(std::move(host), std::uint16_t{0});
    std::vector<std::string> ips;
    for (const coring::address& a : found) {
        const std::string ip = a.host();
        bool seen = false;
        for (const std::string& s : ips) seen = seen || s == ip;
        if (!seen) ips.push_back(ip);
    }
    co_return ips;
}

std::vector<std::string> repeated(const std::string& item, std::size_t n) { return std::vector<std::string>(n, item); }

std::vector<std::string> concat(std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

}  // namespace

TEST_CASE("postgres conninfo - a keyword/value string: its options, and nothing else", "[postgres][conninfo]") {
    const clean_environment env;
    const conninfo_options options("host=db.example port=5433 dbname=app user=me");
    CHECK(options.get("host", nullptr) == "db.example");
    CHECK(options.get("port", nullptr) == "5433");
    CHECK(options.get("dbname", nullptr) == "app");
    CHECK(options.get("user", nullptr) == "me");
    CHECK(options.get("sslmode", nullptr).empty());  // not given, no default filled in
    const conninfo_options::arrays a = options.view();
    REQUIRE(a.keys.size() == a.values.size());
    REQUIRE(a.keys.back() == nullptr);
    REQUIRE(a.values.back() == nullptr);
    std::vector<std::pair<std::string, std::string>> pairs;
    for (std::size_t i = 0; i + 1 < a.keys.size(); ++i) pairs.emplace_back(a.keys[i], a.values[i]);
    CHECK(pairs.size() == 4);
    for (const auto& [key, value] : pairs) CHECK(options.get(key, nullptr) == value);
}

TEST_CASE("postgres conninfo - a URI gives the same options", "[postgres][conninfo]") {
    const clean_environment env;
    const conninfo_options options("postgresql://me@127.0.0.1:5433/app?sslmode=disable&application_name=coring");
    CHECK(options.get("host", nullptr) == "127.0.0.1");
    CHECK(options.get("port", nullptr) == "5433");
    CHECK(options.get("user", nullptr) == "me");
    CHECK(options.get("dbname", nullptr) == "app");
    CHECK(options.get("sslmode", nullptr) == "disable");
    CHECK(options.get("application_name", nullptr) == "coring");
    const conninfo_options ipv6("postgresql://[::1]:5432,127.0.0.1:5433/app");
    CHECK(ipv6.get("host", nullptr) == "::1,127.0.0.1");
    CHECK(ipv6.get("port", nullptr) == "5432,5433");
}

TEST_CASE("postgres conninfo - an option the string leaves out comes from its environment variable", "[postgres][conninfo]") {
    const clean_environment env;
    const conninfo_options options("host=from-string");
    CHECK(options.get("port", "CORING_TEST_PGOPTION").empty());
    ::setenv("CORING_TEST_PGOPTION", "6543", 1);
    CHECK(options.get("port", "CORING_TEST_PGOPTION") == "6543");
    ::setenv("CORING_TEST_PGOPTION", "from-environment", 1);
    CHECK(options.get("host", "CORING_TEST_PGOPTION") == "from-string");  // the string wins
}

TEST_CASE("postgres conninfo - set() replaces an option or adds it at the end", "[postgres][conninfo]") {
    const clean_environment env;
    conninfo_options options("host=a dbname=d");
    options.set("host", "b");
    options.set("hostaddr", "10.0.0.1");
    CHECK(options.get("host", nullptr) == "b");
    CHECK(options.get("hostaddr", nullptr) == "10.0.0.1");
    const conninfo_options::arrays a = options.view();
    REQUIRE(a.keys.size() == 4);
    CHECK(std::string(a.keys[2]) == "hostaddr");
    CHECK(std::string(a.values[2]) == "10.0.0.1");
    CHECK(a.keys[3] == nullptr);
}

TEST_CASE("postgres conninfo - a string libpq cannot parse throws error 08001 with libpq's reason", "[postgres][conninfo]") {
    const std::optional<pg::error> missing_equals = parse_error("host");
    REQUIRE(missing_equals);
    CHECK(missing_equals->sqlstate() == "08001");
    CHECK(missing_equals->severity() == "FATAL");
    CHECK_FALSE(missing_equals->from_server());
    CHECK(missing_equals->message() == "invalid connection string: missing \"=\" after \"host\" in connection info string");
    const std::optional<pg::error> unknown = parse_error("host=x no_such_option=1");
    REQUIRE(unknown);
    CHECK(unknown->message() == "invalid connection string: invalid connection option \"no_such_option\"");
    CHECK_FALSE(parse_error("host=x port=5432"));
}

TEST_CASE("postgres conninfo - split_list and join_list: comma-separated, empty items kept", "[postgres][conninfo]") {
    CHECK(pg::detail::split_list("a,b,,c") == std::vector<std::string>{"a", "b", "", "c"});
    CHECK(pg::detail::split_list("one") == std::vector<std::string>{"one"});
    CHECK(pg::detail::split_list("") == std::vector<std::string>{""});
    CHECK(pg::detail::split_list(",") == std::vector<std::string>{"", ""});
    CHECK(pg::detail::join_list({"a", "", "b"}) == "a,,b");
    CHECK(pg::detail::join_list({}) == "");
    CHECK(pg::detail::join_list(pg::detail::split_list("x,,y,")) == "x,,y,");
}

CORING_TEST_CASE("postgres conninfo - resolve_hosts leaves addresses, socket directories and hostaddr alone", "[postgres][conninfo]") {
    const clean_environment env;
    conninfo_options none("dbname=app");
    co_await pg::detail::resolve_hosts(none);
    CHECK(none.view().keys.size() == 2);  // dbname, and the terminator: nothing added

    conninfo_options literals("host=127.0.0.1,/tmp,::1,@abstract port=1,2,3,4");
    co_await pg::detail::resolve_hosts(literals);
    CHECK(literals.get("host", nullptr) == "127.0.0.1,/tmp,::1,@abstract");
    CHECK(literals.get("hostaddr", nullptr).empty());
    CHECK(literals.get("port", nullptr) == "1,2,3,4");

    conninfo_options given("host=localhost hostaddr=192.0.2.1");
    co_await pg::detail::resolve_hosts(given);
    CHECK(given.get("host", nullptr) == "localhost");
    CHECK(given.get("hostaddr", nullptr) == "192.0.2.1");
}

CORING_TEST_CASE("postgres conninfo - resolve_hosts gives libpq one host entry per address of a name", "[postgres][conninfo]") {
    const clean_environment env;
    const std::vector<std::string> local = co_await addresses_of("localhost");
    REQUIRE_FALSE(local.empty());

    conninfo_options one("host=localhost port=5432 dbname=app");
    co_await pg::detail::resolve_hosts(one);
    CHECK(pg::detail::split_list(one.get("host", nullptr)) == repeated("localhost", local.size()));
    CHECK(pg::detail::split_list(one.get("hostaddr", nullptr)) == local);
    CHECK(one.get("port", nullptr) == "5432");  // one port for all: left as it is
    CHECK(one.get("dbname", nullptr) == "app");

    // A list with a port per host: each address keeps its host's port; a socket directory and
    // an address literal keep their places (an empty hostaddr for the directory).
    conninfo_options mixed("host=/tmp,localhost,192.0.2.7 port=1,2,3");
    co_await pg::detail::resolve_hosts(mixed);
    const std::vector<std::string> directory{"/tmp"}, no_address{""}, literal{"192.0.2.7"}, port1{"1"}, port3{"3"};
    const std::vector<std::string> names = concat(concat(directory, repeated("localhost", local.size())), literal);
    const std::vector<std::string> addresses = concat(concat(no_address, local), literal);
    const std::vector<std::string> ports = concat(concat(port1, repeated("2", local.size())), port3);
    CHECK(pg::detail::split_list(mixed.get("host", nullptr)) == names);
    CHECK(pg::detail::split_list(mixed.get("hostaddr", nullptr)) == addresses);
    CHECK(pg::detail::split_list(mixed.get("port", nullptr)) == ports);
}

CORING_TEST_CASE("postgres conninfo - resolve_hosts reads PGHOST when the string names no host", "[postgres][conninfo]") {
    const clean_environment env;
    const std::vector<std::string> local = co_await addresses_of("localhost");
    ::setenv("PGHOST", "localhost", 1);
    conninfo_options options("dbname=app");
    co_await pg::detail::resolve_hosts(options);
    ::unsetenv("PGHOST");
    CHECK(pg::detail::split_list(options.get("host", nullptr)) == repeated("localhost", local.size()));
    CHECK(pg::detail::split_list(options.get("hostaddr", nullptr)) == local);
}

CORING_TEST_CASE("postgres conninfo - a name that does not resolve: dropped if another host is left, else error 08001", "[postgres][conninfo]") {
    const clean_environment env;
    conninfo_options only("host=no-such-host.invalid");
    const std::optional<pg::error> failure = co_await resolve_error(only);
    REQUIRE(failure);
    CHECK(failure->sqlstate() == "08001");
    CHECK(failure->severity() == "FATAL");
    const std::string prefix = "could not translate host name \"no-such-host.invalid\" to address: resolve(\"no-such-host.invalid\", 0): ";
    CHECK(failure->message().substr(0, prefix.size()) == prefix);
    CHECK(failure->message().size() > prefix.size());  // and getaddrinfo's reason

    conninfo_options with_other("host=no-such-host.invalid,127.0.0.1 port=1,2");
    const std::optional<pg::error> no_failure = co_await resolve_error(with_other);
    CHECK_FALSE(no_failure);
    CHECK(with_other.get("host", nullptr) == "127.0.0.1");
    CHECK(with_other.get("hostaddr", nullptr) == "127.0.0.1");
    CHECK(with_other.get("port", nullptr) == "2");
}
