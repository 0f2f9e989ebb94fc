#pragma once
// coring::source_location: std::source_location where the standard library has it, otherwise
// an equivalent built on the __builtin_FILE / __builtin_LINE / __builtin_FUNCTION intrinsics.
// clang 14 with libstdc++ 12 is such a pair: the library's <source_location> needs
// __builtin_source_location, which clang gained only in version 15.

#if __has_include(<source_location>)
#include <source_location>
#endif

namespace coring {

#if defined(__cpp_lib_source_location)
using source_location = std::source_location;
#else
class source_location {
public:
    static constexpr source_location current(const char* file = __builtin_FILE(), const char* function = __builtin_FUNCTION(),
                                             unsigned line = __builtin_LINE()) noexcept {
        source_location where;
        where.m_file = file;
        where.m_function = function;
        where.m_line = line;
        return where;
    }
    constexpr source_location() noexcept = default;
    [[nodiscard]] constexpr const char* file_name() const noexcept { return m_file; }
    [[nodiscard]] constexpr const char* function_name() const noexcept { return m_function; }
    [[nodiscard]] constexpr unsigned line() const noexcept { return m_line; }
    [[nodiscard]] constexpr unsigned column() const noexcept { return 0; }

private:
    const char* m_file = "";
    const char* m_function = "";
    unsigned m_line = 0;
};
#endif

}  // namespace coring
