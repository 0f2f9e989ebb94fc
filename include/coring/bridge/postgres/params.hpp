#pragma once
// How coring::postgres sends query parameters (part of <coring/bridge/postgres.hpp>).
//
//   co_await db.query("SELECT * FROM t WHERE id = $1 AND name = $2", 42, name);
//
// Parameters travel apart from the SQL text ($1, $2, ... in the extended protocol's Bind
// message): they are never formatted into the SQL, so no quoting is needed and none can go
// wrong. Each C++ type is sent in PostgreSQL's text format with a declared type, the way
// psycopg 3 does it, so that `SELECT $1 + $2` works without casts:
//
//   C++ type                                 sent as                 declared type
//   bool                                     t / f                   boolean
//   int8/int16 (signed char, short)          decimal                 smallint
//   int32, uint8, uint16                     decimal                 integer
//   int64, uint32                            decimal                 bigint
//   uint64                                   decimal                 numeric
//   float                                    shortest round-trip     real
//   double, long double (as double)          shortest round-trip     double precision
//                                            (Infinity, -Infinity, NaN as PostgreSQL spells them)
//   std::string, std::string_view,           the text itself         unknown: the server gives it
//     const char*, string literals                                   the type the context needs
//                                                                    (a date, json, numeric, text)
//   std::span<const std::byte>,              the bytes (binary)      bytea
//     std::vector<std::byte>
//   std::optional<T>                         T, or NULL when empty   T's
//   std::nullopt, nullptr                    NULL                    unknown
//
// char is refused at compile time (a character or a number? pass a string or an int). A string
// holding a '\0' byte throws std::invalid_argument: PostgreSQL's text cannot hold one (send
// bytes as bytea). A null const char* is NULL.
//
// Thread-safety: parameters is a plain value (its values are copied in when added).

#include <libpq-fe.h>

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring::postgres {

/// Type OIDs of PostgreSQL's built-in types that parameters use (pg_type.oid).
namespace oid {
inline constexpr Oid unknown = 0;
inline constexpr Oid boolean = 16;
inline constexpr Oid bytea = 17;
inline constexpr Oid int8 = 20;
inline constexpr Oid int2 = 21;
inline constexpr Oid int4 = 23;
inline constexpr Oid text = 25;
inline constexpr Oid float4 = 700;
inline constexpr Oid float8 = 701;
inline constexpr Oid numeric = 1700;
}  // namespace oid

namespace detail {

template <class T>
inline constexpr bool always_false = false;

template <class T>
struct is_optional : std::false_type {};
template <class T>
struct is_optional<std::optional<T>> : std::true_type {};

template <class T>
inline constexpr bool is_char_type = std::is_same_v<T, char> || std::is_same_v<T, wchar_t> || std::is_same_v<T, char8_t> || std::is_same_v<T, char16_t> ||
                                     std::is_same_v<T, char32_t>;

/// One parameter, encoded. `data` is text (format 0) or bytes (format 1).
struct param {
    Oid type = oid::unknown;
    int format = 0;
    bool null = false;
    std::string data;
};

/// The declared type of a parameter of C++ type T (see the table above).
template <class T>
constexpr Oid type_oid() {
    using U = std::remove_cvref_t<T>;
    if constexpr (is_optional<U>::value)
        return type_oid<typename U::value_type>();
    else if constexpr (std::is_same_v<U, bool>)
        return oid::boolean;
    else if constexpr (std::is_integral_v<U> && !is_char_type<U>) {
        if constexpr (std::is_signed_v<U>)
            return sizeof(U) <= 2 ? oid::int2 : sizeof(U) <= 4 ? oid::int4 : oid::int8;
        else
            return sizeof(U) <= 2 ? oid::int4 : sizeof(U) <= 4 ? oid::int8 : oid::numeric;
    } else if constexpr (std::is_same_v<U, float>)
        return oid::float4;
    else if constexpr (std::is_floating_point_v<U>)
        return oid::float8;
    else if constexpr (std::is_convertible_v<const U&, std::span<const std::byte>>)
        return oid::bytea;
    else
        return oid::unknown;
}

template <class F>
std::string float_text(F value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "Infinity" : "-Infinity";
    char buffer[64];
    const auto [end, ec] = std::to_chars(buffer, buffer + sizeof buffer, value);
    if (ec != std::errc()) throw std::invalid_argument("coring::postgres: cannot format a floating-point parameter");
    return std::string(buffer, end);
}

inline param text_param(std::string_view text, Oid type) {
    if (text.find('\0') != std::string_view::npos)
        throw std::invalid_argument("coring::postgres: a text parameter holds a '\\0' byte, which PostgreSQL's text cannot store (send bytes as bytea)");
    return param{type, 0, false, std::string(text)};
}

template <class T>
param encode(const T& value) {
    using U = std::remove_cvref_t<T>;
    static_assert(!is_char_type<U>, "coring::postgres: a char parameter is ambiguous: pass a string, or cast to int");
    if constexpr (std::is_same_v<U, std::nullopt_t> || std::is_same_v<U, std::nullptr_t>) {
        return param{oid::unknown, 0, true, {}};
    } else if constexpr (is_optional<U>::value) {
        if (!value) return param{type_oid<U>(), 0, true, {}};
        return encode(*value);
    } else if constexpr (std::is_same_v<U, bool>) {
        return param{oid::boolean, 0, false, value ? "t" : "f"};
    } else if constexpr (std::is_integral_v<U>) {
        return param{type_oid<U>(), 0, false, std::to_string(value)};
    } else if constexpr (std::is_same_v<U, float>) {
        return param{oid::float4, 0, false, float_text(value)};
    } else if constexpr (std::is_floating_point_v<U>) {
        return param{oid::float8, 0, false, float_text(static_cast<double>(value))};
    } else if constexpr (std::is_pointer_v<U> && std::is_convertible_v<U, const char*>) {
        if (value == nullptr) return param{oid::unknown, 0, true, {}};
        return text_param(std::string_view(value), oid::unknown);
    } else if constexpr (std::is_convertible_v<const U&, std::string_view>) {
        return text_param(std::string_view(value), oid::unknown);
    } else if constexpr (std::is_convertible_v<const U&, std::span<const std::byte>>) {
        const std::span<const std::byte> bytes(value);
        return param{oid::bytea, 1, false, std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size())};
    } else {
        static_assert(always_false<U>, "coring::postgres: unsupported parameter type (see <coring/bridge/postgres/params.hpp>)");
        return {};
    }
}

}  // namespace detail

/// Parameters gathered at run time, for a statement whose parameter count is not fixed (a
/// multi-row INSERT, an IN list). Pass it as an argument of query() or execute(): its values
/// take the places it holds, between the arguments around it.
///
///   coring::postgres::parameters values;
///   std::string sql = "INSERT INTO t (a, b) VALUES ";
///   for (const row& r : rows) { sql += values.empty() ? "" : ", "; sql += values.placeholders(2); values.add(r.a, r.b); }
///   co_await db.execute(sql, values);
///
/// Values are encoded (copied) when added. At most 65535 per statement (the protocol's limit).
class parameters {
public:
    parameters() = default;

    /// Appends values (the types of the table in this header's comment).
    template <class... Args>
    parameters& add(const Args&... args) {
        (append(args), ...);
        return *this;
    }
    /// "($n+1, $n+2, ..., $n+count)": the places of the next `count` values to be added, for
    /// building a VALUES list.
    [[nodiscard]] std::string placeholders(std::size_t count) const {
        std::string text = "(";
        for (std::size_t i = 1; i <= count; ++i) text += (i == 1 ? "$" : ", $") + std::to_string(m_items.size() + i);
        return text + ")";
    }
    [[nodiscard]] bool empty() const noexcept { return m_items.empty(); }
    [[nodiscard]] int size() const noexcept { return static_cast<int>(m_items.size()); }

    /// The arrays PQsendQueryParams takes. They point into this object: build them where the
    /// object stays put until the call returns (libpq copies the values into its buffer).
    struct arrays {
        std::vector<Oid> types;
        std::vector<const char*> values;
        std::vector<int> lengths;
        std::vector<int> formats;
    };
    [[nodiscard]] arrays view() const {
        arrays a;
        const std::size_t n = m_items.size();
        a.types.reserve(n);
        a.values.reserve(n);
        a.lengths.reserve(n);
        a.formats.reserve(n);
        for (const detail::param& p : m_items) {
            a.types.push_back(p.type);
            a.values.push_back(p.null ? nullptr : p.data.c_str());
            a.lengths.push_back(static_cast<int>(p.data.size()));
            a.formats.push_back(p.format);
        }
        return a;
    }

    /// The parameters of one command, copied at the call (so temporaries may be passed).
    template <class... Args>
    static parameters of(const Args&... args) {
        parameters p;
        if constexpr (sizeof...(Args) > 0) {
            p.m_items.reserve(sizeof...(Args));
            p.add(args...);
        }
        return p;
    }

private:
    template <class T>
    void append(const T& value) {
        if constexpr (std::is_same_v<T, parameters>) {
            m_items.insert(m_items.end(), value.m_items.begin(), value.m_items.end());
        } else {
            m_items.push_back(detail::encode(value));
        }
    }

    std::vector<detail::param> m_items;
};

namespace detail {
using params = parameters;
}  // namespace detail
}  // namespace coring::postgres
