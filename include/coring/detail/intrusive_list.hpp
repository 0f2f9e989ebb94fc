#pragma once
// A doubly-linked, circular, sentinel-based intrusive list: O(1) push, pop and unlink of any
// element, no allocation. Used for FIFO waiter lists and the loop's registry of task states.
//
// An element type derives from list_hook<Tag> once per list it can be on; the Tag tells the
// hooks apart when a type sits on two lists. A hook is "linked" while it is on a list.

#include <coring/detail/no_init.hpp>

#include <cassert>
#include <cstddef>

namespace coring::detail {

template <class Tag = void>
struct list_hook {
    list_hook() noexcept : m_prev(nullptr), m_next(nullptr) {}
    /// Unlinked without saying so: linked() and unlink() must not be called until a list has
    /// linked it (intrusive_list::insert_before writes both links without reading them).
    explicit list_hook(no_init_t) noexcept {}

    list_hook* m_prev;
    list_hook* m_next;

    [[nodiscard]] bool linked() const noexcept { return m_next != nullptr; }

    /// Removes this element, which is on a list, and leaves its own links stale (linked() stays
    /// true): for owners that know by other means whether it is linked (sync_waiter's phase).
    void unlink_linked() noexcept {
        m_prev->m_next = m_next;
        m_next->m_prev = m_prev;
    }

    /// Removes this element from whatever list holds it. Safe on an unlinked hook.
    void unlink() noexcept {
        if (m_next != nullptr) {
            m_prev->m_next = m_next;
            m_next->m_prev = m_prev;
            m_prev = m_next = nullptr;
        }
    }
};

template <class T, class Tag = void>
class intrusive_list {
    using hook = list_hook<Tag>;

public:
    intrusive_list() noexcept { m_root.m_prev = m_root.m_next = &m_root; }
    intrusive_list(const intrusive_list&) = delete;
    intrusive_list& operator=(const intrusive_list&) = delete;
    ~intrusive_list() { assert(empty() && "intrusive_list destroyed while elements are linked"); }

    [[nodiscard]] bool empty() const noexcept { return m_root.m_next == &m_root; }

    void push_back(T& element) noexcept {
        assert(!static_cast<hook&>(element).linked());
        link_before(m_root, element);
    }

    /// Links `element`, which is on no list, before `position` (null: at the end). The
    /// element's links are written, never read, so a no_init hook may be linked this way.
    void insert_before(T* position, T& element) noexcept { link_before(position != nullptr ? static_cast<hook&>(*position) : m_root, element); }

    [[nodiscard]] T* front() noexcept { return empty() ? nullptr : from_hook(m_root.m_next); }

    /// The element after `element` (which is on this list), or null at the end.
    [[nodiscard]] T* next(T& element) noexcept {
        hook* h = static_cast<hook&>(element).m_next;
        return h == &m_root ? nullptr : from_hook(h);
    }

    /// Unlinks and returns the first element, or nullptr.
    T* pop_front() noexcept {
        if (empty()) return nullptr;
        hook* h = m_root.m_next;
        h->unlink();
        return from_hook(h);
    }

    static void erase(T& element) noexcept { static_cast<hook&>(element).unlink(); }

    [[nodiscard]] std::size_t size() const noexcept {
        std::size_t n = 0;
        for (const hook* h = m_root.m_next; h != &m_root; h = h->m_next) ++n;
        return n;
    }

    /// Calls f(T&) for each element in order; f must not unlink elements other than the current one.
    template <class F>
    void for_each(F&& f) {
        for (hook* h = m_root.m_next; h != &m_root;) {
            hook* next = h->m_next;
            f(*from_hook(h));
            h = next;
        }
    }

private:
    static T* from_hook(hook* h) noexcept { return static_cast<T*>(h); }

    void link_before(hook& position, T& element) noexcept {
        hook& h = element;
        hook* const before = position.m_prev;
        // In this order, g++ does not pack h's two links into one vector store (which takes
        // more instructions than the two stores).
        h.m_next = &position;
        before->m_next = &h;
        h.m_prev = before;
        position.m_prev = &h;
    }

    hook m_root;
};

}  // namespace coring::detail
