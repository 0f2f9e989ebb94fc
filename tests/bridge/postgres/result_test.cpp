// Tests of coring/bridge/postgres/result.hpp without a server: results built with libpq's own
// PQmakeEmptyPGresult, PQsetResultAttrs and PQsetvalue (as a server's would arrive, in text
// format), read through result: sizes, values and NULLs, names, get<T>() and its errors, the
// range checks. (Results of real commands, affected_rows and command_status included:
// tests/bridge/postgres_test.cpp.)
#include <coring/bridge/postgres/result.hpp>

#include "support/catch.hpp"

#include <libpq-fe.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace pg = coring::postgres;

namespace {

struct column {
    std::string name;
    Oid type = 0;
};

// A tuples result with `columns` and `rows` (text values; nullopt is NULL), as libpq would hold
// the answer of a SELECT.
pg::result make_result(const std::vector<column>& columns, const std::vector<std::vector<std::optional<std::string>>>& rows) {
    pg::detail::pgresult_ptr r(PQmakeEmptyPGresult(nullptr, PGRES_TUPLES_OK));
    REQUIRE(r != nullptr);
    std::vector<PGresAttDesc> attributes(columns.size());
    for (std::size_t c = 0; c < columns.size(); ++c) {
        attributes[c].name = const_cast<char*>(columns[c].name.c_str());  // copied by libpq
        attributes[c].typid = columns[c].type;
        attributes[c].typlen = -1;
        attributes[c].atttypmod = -1;
    }
    REQUIRE(PQsetResultAttrs(r.get(), static_cast<int>(attributes.size()), attributes.data()) == 1);
    for (std::size_t row = 0; row < rows.size(); ++row) {
        for (std::size_t c = 0; c < rows[row].size(); ++c) {
            const std::optional<std::string>& v = rows[row][c];
            char* text = v ? const_cast<char*>(v->data()) : nullptr;
            REQUIRE(PQsetvalue(r.get(), static_cast<int>(row), static_cast<int>(c), text, v ? static_cast<int>(v->size()) : -1) == 1);
        }
    }
    return pg::result(std::move(r));
}

template <class E, class F>
std::string message_of(F f) {
    try {
        (void)f();
    } catch (const E& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("postgres result - an empty result has no rows and no columns", "[postgres][result]") {
    STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<pg::result>);
    STATIC_REQUIRE(std::is_nothrow_move_constructible_v<pg::result>);
    const pg::result r;
    CHECK(r.rows() == 0);
    CHECK(r.columns() == 0);
    CHECK(r.empty());
    CHECK(r.native() == nullptr);
    CHECK(r.affected_rows() == 0);
    CHECK(r.command_status().empty());
    CHECK(message_of<std::out_of_range>([&] { return r.value(0, 0); }) == "coring::postgres::result: row 0 out of range (0 rows)");
    CHECK(message_of<std::out_of_range>([&] { return r.column_name(0); }) == "coring::postgres::result: column 0 out of range (0 columns)");
    CHECK(message_of<std::out_of_range>([&] { return r.column("id"); }) == "coring::postgres::result: no column named \"id\"");
}

TEST_CASE("postgres result - sizes, names, types and text values; NULL is an empty optional", "[postgres][result]") {
    const pg::result r = make_result({{"id", 23}, {"name", 25}}, {{"1", "ada"}, {"2", std::nullopt}, {"3", ""}});
    CHECK(r.rows() == 3);
    CHECK(r.columns() == 2);
    CHECK_FALSE(r.empty());
    CHECK(r.native() != nullptr);
    CHECK(r.column_name(0) == "id");
    CHECK(r.column_name(1) == "name");
    CHECK(r.column("name") == 1);
    CHECK(r.column_type(0) == 23);
    CHECK(r.column_type(1) == 25);
    CHECK(r.value(0, 0) == std::optional<std::string_view>("1"));
    CHECK(r.value(0, "name") == std::optional<std::string_view>("ada"));
    CHECK(r.value(1, 1) == std::nullopt);
    CHECK(r.is_null(1, 1));
    CHECK_FALSE(r.is_null(1, 0));
    CHECK(r.value(2, 1) == std::optional<std::string_view>(""));  // empty text, not NULL
    CHECK_FALSE(r.is_null(2, 1));
}

TEST_CASE("postgres result - values hold any bytes, '\\0' included", "[postgres][result]") {
    const std::string bytes("a\0b", 3);
    const pg::result r = make_result({{"b", 25}}, {{bytes}});
    REQUIRE(r.value(0, 0).has_value());
    CHECK(r.value(0, 0)->size() == 3);
    CHECK(*r.value(0, 0) == bytes);
    CHECK(r.get<std::string>(0, 0) == bytes);
}

TEST_CASE("postgres result - rows and columns out of range throw std::out_of_range", "[postgres][result]") {
    const pg::result r = make_result({{"a", 23}}, {{"1"}, {"2"}});
    CHECK(message_of<std::out_of_range>([&] { return r.value(2, 0); }) == "coring::postgres::result: row 2 out of range (2 rows)");
    CHECK(message_of<std::out_of_range>([&] { return r.value(-1, 0); }) == "coring::postgres::result: row -1 out of range (2 rows)");
    CHECK(message_of<std::out_of_range>([&] { return r.value(0, 1); }) == "coring::postgres::result: column 1 out of range (1 columns)");
    CHECK(message_of<std::out_of_range>([&] { return r.is_null(0, -1); }) == "coring::postgres::result: column -1 out of range (1 columns)");
    CHECK(message_of<std::out_of_range>([&] { return r.column_type(1); }) == "coring::postgres::result: column 1 out of range (1 columns)");
    CHECK(message_of<std::out_of_range>([&] { return r.get<int>(0, "b"); }) == "coring::postgres::result: no column named \"b\"");
}

TEST_CASE("postgres result - a name finds the first column of that name, exactly", "[postgres][result]") {
    const pg::result r = make_result({{"x", 23}, {"X", 23}, {"x", 23}}, {{"1", "2", "3"}});
    CHECK(r.column("x") == 0);
    CHECK(r.column("X") == 1);
    CHECK(r.get<int>(0, "x") == 1);
    CHECK(message_of<std::out_of_range>([&] { return r.column("x "); }) == "coring::postgres::result: no column named \"x \"");
}

TEST_CASE("postgres result - get<T> parses integers, floating point, bool and strings", "[postgres][result]") {
    const pg::result r = make_result({{"v", 25}}, {{"42"}, {"-9223372036854775808"}, {"1.5"}, {"Infinity"}, {"-Infinity"}, {"NaN"}, {"t"}, {"false"}, {"text"}});
    CHECK(r.get<int>(0, 0) == 42);
    CHECK(r.get<std::uint8_t>(0, 0) == 42);
    CHECK(r.get<std::int64_t>(1, 0) == std::numeric_limits<std::int64_t>::min());
    CHECK(r.get<double>(2, 0) == 1.5);
    CHECK(r.get<float>(2, 0) == 1.5f);
    CHECK(r.get<double>(3, 0) == std::numeric_limits<double>::infinity());
    CHECK(r.get<float>(4, 0) == -std::numeric_limits<float>::infinity());
    CHECK(std::isnan(r.get<double>(5, 0)));
    CHECK(r.get<bool>(6, 0));
    CHECK_FALSE(r.get<bool>(7, 0));
    CHECK(r.get<std::string>(8, 0) == "text");
    CHECK(r.get<std::string_view>(8, 0) == "text");
    CHECK(r.get<std::optional<int>>(0, 0) == std::optional<int>(42));
}

TEST_CASE("postgres result - get<T> of text that is not a T throws std::invalid_argument naming it", "[postgres][result]") {
    const pg::result r = make_result({{"v", 25}}, {{"12abc"}, {"70000"}, {"yes"}, {""}, {"1.5"}, {std::string(50, '7')}});
    CHECK(message_of<std::invalid_argument>([&] { return r.get<int>(0, 0); }) ==
          "coring::postgres::result: the value at row 0, column 0 (\"12abc\") is not a valid integer of that size");
    CHECK(message_of<std::invalid_argument>([&] { return r.get<std::int16_t>(1, 0); }) ==
          "coring::postgres::result: the value at row 1, column 0 (\"70000\") is not a valid integer of that size");
    CHECK(message_of<std::invalid_argument>([&] { return r.get<bool>(2, 0); }) ==
          "coring::postgres::result: the value at row 2, column 0 (\"yes\") is not a valid bool");
    CHECK(message_of<std::invalid_argument>([&] { return r.get<double>(3, 0); }) ==
          "coring::postgres::result: the value at row 3, column 0 (\"\") is not a valid floating-point number");
    CHECK(message_of<std::invalid_argument>([&] { return r.get<int>(4, 0); }) ==
          "coring::postgres::result: the value at row 4, column 0 (\"1.5\") is not a valid integer of that size");
    CHECK(message_of<std::invalid_argument>([&] { return r.get<std::optional<unsigned>>(1, 0); }).empty());  // 70000 fits
    // Long text is cut to its first 40 characters.
    CHECK(message_of<std::invalid_argument>([&] { return r.get<int>(5, 0); }) ==
          "coring::postgres::result: the value at row 5, column 0 (\"" + std::string(40, '7') + "\") is not a valid integer of that size");
}

TEST_CASE("postgres result - a NULL read as a non-optional throws; as an optional it is empty", "[postgres][result]") {
    const pg::result r = make_result({{"a", 23}, {"b", 23}}, {{"1", std::nullopt}});
    CHECK(r.get<std::optional<int>>(0, 1) == std::nullopt);
    CHECK(r.get<std::optional<std::string>>(0, "b") == std::nullopt);
    CHECK(message_of<std::invalid_argument>([&] { return r.get<int>(0, 1); }) ==
          "coring::postgres::result: the value at row 0, column 1 is NULL (read it as a std::optional)");
    CHECK(message_of<std::invalid_argument>([&] { return r.get<std::string>(0, "b"); }) ==
          "coring::postgres::result: the value at row 0, column 1 is NULL (read it as a std::optional)");
}

TEST_CASE("postgres result - a result moved from is empty", "[postgres][result]") {
    pg::result a = make_result({{"a", 23}}, {{"1"}});
    const pg::result b = std::move(a);
    CHECK(b.rows() == 1);
    CHECK(a.rows() == 0);  // NOLINT(bugprone-use-after-move): the PGresult went with the move
    CHECK(a.columns() == 0);
    CHECK(a.native() == nullptr);
}
