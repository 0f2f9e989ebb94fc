#pragma once
// ref_ptr<T>: intrusive reference counting for objects of one loop thread (buffer rings, stream
// and server states): no atomics.

#include <cstddef>
#include <utility>

namespace coring::detail {

/// Intrusive reference counting for objects of one loop thread: no atomics. T provides
/// add_ref() and release() (which frees the object when the count reaches zero).
template <class T>
class ref_ptr {
public:
    ref_ptr() noexcept = default;
    ref_ptr(std::nullptr_t) noexcept {}
    /// Adopts one reference that the caller already holds.
    static ref_ptr adopt(T* p) noexcept {
        ref_ptr r;
        r.m_p = p;
        return r;
    }
    /// Takes a new reference to `p`.
    static ref_ptr share(T* p) noexcept {
        if (p != nullptr) p->add_ref();
        return adopt(p);
    }
    ref_ptr(const ref_ptr& other) noexcept : m_p(other.m_p) {
        if (m_p != nullptr) m_p->add_ref();
    }
    ref_ptr(ref_ptr&& other) noexcept : m_p(std::exchange(other.m_p, nullptr)) {}
    ref_ptr& operator=(ref_ptr other) noexcept {
        std::swap(m_p, other.m_p);
        return *this;
    }
    ~ref_ptr() {
        if (m_p != nullptr) m_p->release();
    }

    [[nodiscard]] T* get() const noexcept { return m_p; }
    T* operator->() const noexcept { return m_p; }
    T& operator*() const noexcept { return *m_p; }
    explicit operator bool() const noexcept { return m_p != nullptr; }
    void reset() noexcept {
        if (T* p = std::exchange(m_p, nullptr)) p->release();
    }
    friend bool operator==(const ref_ptr& a, const ref_ptr& b) noexcept { return a.m_p == b.m_p; }

private:
    T* m_p = nullptr;
};

}  // namespace coring::detail
