#pragma once
// What a task's body produced, kept in its promise: nothing yet, a value, or an exception, in
// one tagged union so that setting, reading and destroying it each test one byte. A task's
// outcome is read once (by the awaiter, or by the task state for a created task).

#include <coring/config.hpp>
#include <coring/errors.hpp>

#include <exception>
#include <memory>
#include <new>
#include <type_traits>
#include <utility>

namespace coring::detail {

template <class T>
class task_outcome {
    // T& is kept as a pointer; void as nothing.
    struct nothing {};
    using stored = std::conditional_t<std::is_void_v<T>, nothing, std::conditional_t<std::is_reference_v<T>, std::remove_reference_t<T>*, T>>;

public:
    task_outcome() noexcept {}
    task_outcome(const task_outcome&) = delete;
    task_outcome& operator=(const task_outcome&) = delete;
    ~task_outcome() { reset(); }

    // Set once, on an empty outcome (a body returns or throws, never both).
    template <class... Args>
    void set_value(Args&&... args) {
        if constexpr (std::is_reference_v<T>)
            ::new (static_cast<void*>(std::addressof(m_value))) stored(std::addressof(args...));
        else
            ::new (static_cast<void*>(std::addressof(m_value))) stored(std::forward<Args>(args)...);
        m_kind = value_bit;
    }

    void set_error(std::exception_ptr error) noexcept {
        ::new (static_cast<void*>(std::addressof(m_error))) std::exception_ptr(std::move(error));
        m_kind = error_bit;
    }

    [[nodiscard]] bool has_error() const noexcept { return (m_kind & error_bit) != 0; }
    [[nodiscard]] std::exception_ptr take_error() noexcept {
        std::exception_ptr e = std::move(m_error);
        reset();
        return e;
    }

    /// For a task state: the stored value, to move from (precondition: a value is stored).
    [[nodiscard]] stored& value() noexcept { return m_value; }

    /// For an awaiter: the value (moved out) or the exception (rethrown); only once.
    T take() {
        if (m_kind == value_bit) {
            m_kind |= taken_bit;
            if constexpr (std::is_void_v<T>)
                return;
            else if constexpr (std::is_reference_v<T>)
                return *m_value;
            else
                return std::move(m_value);
        }
        return take_slow();
    }

private:
    static constexpr unsigned char value_bit = 1;
    static constexpr unsigned char error_bit = 2;
    static constexpr unsigned char taken_bit = 4;

    CORING_NOINLINE T take_slow() {
        if (m_kind == error_bit) {
            m_kind |= taken_bit;
            std::rethrow_exception(m_error);
        }
        throw invalid_state_error("coring: a task<T> was awaited twice (await a task_handle to share a result)");
    }

    void reset() noexcept {
        if constexpr (!std::is_trivially_destructible_v<stored>) {
            if ((m_kind & value_bit) != 0) m_value.~stored();
        }
        if ((m_kind & error_bit) != 0) m_error.~exception_ptr();
        m_kind = 0;
    }

    union {
        stored m_value;
        std::exception_ptr m_error;
    };
    unsigned char m_kind = 0;
};

}  // namespace coring::detail
