#pragma once
// coring::postgres::result: the rows a command returned (part of <coring/bridge/postgres.hpp>).
//
//   coring::postgres::result r = co_await db.query("SELECT id, name FROM users ORDER BY id");
//   for (int row = 0; row < r.rows(); ++row) {
//       std::optional<std::string_view> name = r.value(row, 1);   // empty for NULL
//       std::int64_t id = r.get<std::int64_t>(row, "id");          // parsed from the text
//   }
//
// Values come in PostgreSQL's text format (what psql prints: t/f for booleans, \x... for
// bytea, ISO dates). value() yields a view into the result: valid while the result lives.
// get<T>() parses a value: integers, floating point (Infinity, NaN included), bool,
// std::string, std::string_view, and std::optional<T> for columns that may be NULL; a NULL
// read as a non-optional T, or text that does not parse as T, throws std::invalid_argument.
// Rows and columns are numbered from 0; out of range they throw std::out_of_range. A column
// named by a string is looked up by its exact name (the first of that name).
//
// A result owns its PGresult (native() lends it, for anything libpq offers beyond this). Move-only.
// Thread-safety: a result is plain memory once returned; it may be read from any thread, one at
// a time.

#include <libpq-fe.h>

#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <type_traits>

namespace coring::postgres {

namespace detail {
struct pgresult_deleter {
    void operator()(PGresult* r) const noexcept { PQclear(r); }
};
using pgresult_ptr = std::unique_ptr<PGresult, pgresult_deleter>;

template <class T>
struct is_std_optional : std::false_type {};
template <class T>
struct is_std_optional<std::optional<T>> : std::true_type {};
template <class T>
inline constexpr bool dependent_false = false;
}  // namespace detail

class result {
public:
    /// An empty result: no rows, no columns.
    result() noexcept = default;
    explicit result(detail::pgresult_ptr r) noexcept : m_result(std::move(r)) {}

    [[nodiscard]] int rows() const noexcept { return m_result ? PQntuples(m_result.get()) : 0; }
    [[nodiscard]] int columns() const noexcept { return m_result ? PQnfields(m_result.get()) : 0; }
    [[nodiscard]] bool empty() const noexcept { return rows() == 0; }

    /// The value at (row, col) as text; empty for NULL.
    [[nodiscard]] std::optional<std::string_view> value(int row, int col) const {
        check(row, col);
        if (PQgetisnull(m_result.get(), row, col) != 0) return std::nullopt;
        return std::string_view(PQgetvalue(m_result.get(), row, col), static_cast<std::size_t>(PQgetlength(m_result.get(), row, col)));
    }
    [[nodiscard]] std::optional<std::string_view> value(int row, std::string_view column_name) const { return value(row, column(column_name)); }
    [[nodiscard]] bool is_null(int row, int col) const {
        check(row, col);
        return PQgetisnull(m_result.get(), row, col) != 0;
    }

    /// The name of column `col` (its alias in the SELECT list).
    [[nodiscard]] std::string_view column_name(int col) const {
        check_column(col);
        return PQfname(m_result.get(), col);
    }
    /// The index of the first column named `name`; std::out_of_range if there is none.
    [[nodiscard]] int column(std::string_view name) const {
        for (int c = 0; c < columns(); ++c)
            if (name == PQfname(m_result.get(), c)) return c;
        throw std::out_of_range("coring::postgres::result: no column named \"" + std::string(name) + "\"");
    }
    /// The type OID of column `col` (23 for integer, 25 for text, ...: pg_type.oid).
    [[nodiscard]] Oid column_type(int col) const {
        check_column(col);
        return PQftype(m_result.get(), col);
    }

    /// The value at (row, col) parsed as T (see the header comment).
    template <class T>
    [[nodiscard]] T get(int row, int col) const {
        const std::optional<std::string_view> text = value(row, col);
        if constexpr (detail::is_std_optional<T>::value) {
            if (!text) return std::nullopt;
            return T(parse<typename T::value_type>(*text, row, col));
        } else {
            if (!text) throw std::invalid_argument("coring::postgres::result: the value at row " + std::to_string(row) + ", column " + std::to_string(col) + " is NULL (read it as a std::optional)");
            return parse<T>(*text, row, col);
        }
    }
    template <class T>
    [[nodiscard]] T get(int row, std::string_view column_name) const {
        return get<T>(row, column(column_name));
    }

    /// Rows an INSERT, UPDATE, DELETE, MERGE, SELECT, MOVE, FETCH or COPY affected or returned
    /// (PQcmdTuples); 0 for other commands.
    [[nodiscard]] std::int64_t affected_rows() const noexcept {
        if (!m_result) return 0;
        const char* text = PQcmdTuples(m_result.get());
        std::int64_t n = 0;
        if (text != nullptr) std::from_chars(text, text + std::char_traits<char>::length(text), n);
        return n;
    }
    /// The command tag: "SELECT 3", "INSERT 0 1", "CREATE TABLE".
    [[nodiscard]] std::string_view command_status() const noexcept { return m_result ? PQcmdStatus(m_result.get()) : ""; }

    /// The PGresult, still owned by this result (null for an empty result).
    [[nodiscard]] PGresult* native() const noexcept { return m_result.get(); }

private:
    void check_column(int col) const {
        if (col < 0 || col >= columns())
            throw std::out_of_range("coring::postgres::result: column " + std::to_string(col) + " out of range (" + std::to_string(columns()) + " columns)");
    }
    void check(int row, int col) const {
        if (row < 0 || row >= rows()) throw std::out_of_range("coring::postgres::result: row " + std::to_string(row) + " out of range (" + std::to_string(rows()) + " rows)");
        check_column(col);
    }

    template <class T>
    static T parse(std::string_view text, int row, int col) {
        using U = std::remove_cv_t<T>;
        const auto fail = [&]() -> T {
            throw std::invalid_argument("coring::postgres::result: the value at row " + std::to_string(row) + ", column " + std::to_string(col) + " (\"" +
                                        std::string(text.substr(0, 40)) + "\") is not a valid " + type_name<U>());
        };
        if constexpr (std::is_same_v<U, std::string>) {
            return std::string(text);
        } else if constexpr (std::is_same_v<U, std::string_view>) {
            return text;
        } else if constexpr (std::is_same_v<U, bool>) {
            if (text == "t" || text == "true") return true;
            if (text == "f" || text == "false") return false;
            return fail();
        } else if constexpr (std::is_integral_v<U>) {
            U n{};
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
            if (ec != std::errc() || end != text.data() + text.size()) return fail();
            return n;
        } else if constexpr (std::is_floating_point_v<U>) {
            if (text == "NaN") return std::numeric_limits<U>::quiet_NaN();
            if (text == "Infinity") return std::numeric_limits<U>::infinity();
            if (text == "-Infinity") return -std::numeric_limits<U>::infinity();
            U x{};
            const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), x);
            if (ec != std::errc() || end != text.data() + text.size()) return fail();
            return x;
        } else {
            static_assert(detail::dependent_false<U>, "coring::postgres::result::get: unsupported type");
        }
    }
    template <class U>
    static const char* type_name() {
        if constexpr (std::is_same_v<U, bool>) return "bool";
        else if constexpr (std::is_integral_v<U>) return "integer of that size";
        else return "floating-point number";
    }

    detail::pgresult_ptr m_result;
};

}  // namespace coring::postgres
