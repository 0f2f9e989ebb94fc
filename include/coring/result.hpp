#pragma once
// result<T>: a value or the exception that replaced it; what gather(return_exceptions, ...)
// yields for each child (asyncio returns the exception object in the child's place).
//
//   auto [a, b] = co_await coring::gather(coring::return_exceptions, f(), g());
//   if (a.has_value()) use(a.value()); else log(a.error());
//
// Thread-safety: result<T> objects are plain values; they may be copied or moved to any thread
// (run_on carries them between loops).

#include <exception>
#include <type_traits>
#include <utility>
#include <variant>

namespace coring {

template <class T>
class result {
    using stored = std::conditional_t<std::is_reference_v<T>, std::remove_reference_t<T>*, T>;

public:
    /// A value.
    template <class U = T>
        requires std::is_constructible_v<T, U&&>
    explicit result(std::in_place_t, U&& value) : m_outcome(std::in_place_index<0>, wrap(std::forward<U>(value))) {}
    /// An exception in place of the value.
    explicit result(std::exception_ptr error) noexcept : m_outcome(std::in_place_index<1>, std::move(error)) {}

    [[nodiscard]] bool has_value() const noexcept { return m_outcome.index() == 0; }
    [[nodiscard]] explicit operator bool() const noexcept { return has_value(); }

    /// The value; rethrows the exception when there is none.
    decltype(auto) value() & {
        rethrow_if_error();
        return unwrap(std::get<0>(m_outcome));
    }
    decltype(auto) value() const& {
        rethrow_if_error();
        return unwrap(std::get<0>(m_outcome));
    }
    decltype(auto) value() && {
        rethrow_if_error();
        if constexpr (std::is_reference_v<T>)
            return unwrap(std::get<0>(m_outcome));
        else
            return T(std::move(std::get<0>(m_outcome)));
    }

    /// The exception, or null when there is a value.
    [[nodiscard]] std::exception_ptr error() const noexcept { return has_value() ? nullptr : std::get<1>(m_outcome); }

private:
    void rethrow_if_error() const {
        if (!has_value()) std::rethrow_exception(std::get<1>(m_outcome));
    }
    template <class U>
    static stored wrap(U&& value) {
        if constexpr (std::is_reference_v<T>)
            return &value;
        else
            return stored(std::forward<U>(value));
    }
    static T& unwrap(stored& s) noexcept
        requires(!std::is_reference_v<T>)
    {
        return s;
    }
    static const T& unwrap(const stored& s) noexcept
        requires(!std::is_reference_v<T>)
    {
        return s;
    }
    static T unwrap(stored s) noexcept
        requires(std::is_reference_v<T>)
    {
        return *s;
    }

    std::variant<stored, std::exception_ptr> m_outcome;
};

template <>
class result<void> {
public:
    explicit result(std::in_place_t) noexcept {}
    explicit result(std::exception_ptr error) noexcept : m_error(std::move(error)) {}

    [[nodiscard]] bool has_value() const noexcept { return m_error == nullptr; }
    [[nodiscard]] explicit operator bool() const noexcept { return has_value(); }
    void value() const {
        if (m_error) std::rethrow_exception(m_error);
    }
    [[nodiscard]] std::exception_ptr error() const noexcept { return m_error; }

private:
    std::exception_ptr m_error;
};

}  // namespace coring
