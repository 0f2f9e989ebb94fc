#pragma once
// Storage for the value a task or future produces: an optional object, a pointer for reference
// results, nothing for void. Shared by task promises and task states.

#include <optional>
#include <type_traits>
#include <utility>

namespace coring::detail {

template <class T>
class value_slot {
public:
    template <class... Args>
    void emplace(Args&&... args) {
        m_value.emplace(std::forward<Args>(args)...);
    }
    [[nodiscard]] bool has_value() const noexcept { return m_value.has_value(); }
    T& get() noexcept { return *m_value; }
    void reset() noexcept { m_value.reset(); }

private:
    std::optional<T> m_value;
};

template <class T>
class value_slot<T&> {
public:
    void emplace(T& ref) noexcept { m_ptr = &ref; }
    [[nodiscard]] bool has_value() const noexcept { return m_ptr != nullptr; }
    T& get() noexcept { return *m_ptr; }
    void reset() noexcept { m_ptr = nullptr; }

private:
    T* m_ptr = nullptr;
};

template <>
class value_slot<void> {
public:
    void emplace() noexcept { m_set = true; }
    [[nodiscard]] bool has_value() const noexcept { return m_set; }
    void get() noexcept {}
    void reset() noexcept { m_set = false; }

private:
    bool m_set = false;
};

}  // namespace coring::detail
