#pragma once
// The storage behind context_var (context_var.hpp): an immutable, reference-counted map from
// variable to value, and the slots that hold the current one.
//
//   task state ──m_extras──▶ context_slot ──┐
//   callback node, to_thread awaiter ───────┼──▶ context_map (immutable; atomic count)
//   t_context (the thread, outside tasks) ──┘      [var 3 ─▶ value_box<int>]
//                                                  [var 7 ─▶ value_box<std::string>] (shared)
//
// Copying a context copies one pointer (create_task, call_soon, to_thread). set() builds a new
// map with one entry changed (copy on write) and swaps it into the current slot: a map is never
// written after it is built, so any number of threads may read one. The counts are atomic
// because to_thread hands a map to a pool thread, which may drop it last; only programs that
// set a variable ever touch them.
//
// A map is a sorted array after a small header, one allocation: a set() costs O(variables set
// in the context), which stays small in practice (Python's contextvars uses a HAMT for
// O(log n)). Allocations use the global heap, not the per-thread frame pool, since maps and
// values may be freed on another thread.

#include <coring/config.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <new>
#include <utility>

namespace coring::detail {

/// One variable's value, shared by every map that holds it. Immutable once built.
class value_box_base {
public:
    value_box_base(const value_box_base&) = delete;
    value_box_base& operator=(const value_box_base&) = delete;

    void add_ref() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) m_destroy(this);
    }

protected:
    using destroy_function = void (*)(value_box_base*) noexcept;
    explicit value_box_base(destroy_function destroy) noexcept : m_destroy(destroy) {}
    ~value_box_base() = default;

private:
    std::atomic<std::uint32_t> m_refs{1};
    destroy_function m_destroy;
};

template <class T>
class value_box final : public value_box_base {
public:
    template <class... Args>
    explicit value_box(std::in_place_t, Args&&... args) : value_box_base(&destroy), m_value(std::forward<Args>(args)...) {}
    [[nodiscard]] const T& value() const noexcept { return m_value; }

private:
    static void destroy(value_box_base* box) noexcept { delete static_cast<value_box*>(box); }
    T m_value;
};

/// An immutable map from variable id to value. Built by with() and without() only; an empty
/// context is a null map, never an empty one.
class context_map {
public:
    struct entry {
        std::uint64_t key;
        value_box_base* value;  // one reference per entry
    };

    context_map(const context_map&) = delete;
    context_map& operator=(const context_map&) = delete;

    void add_ref() noexcept { m_refs.fetch_add(1, std::memory_order_relaxed); }
    void release() noexcept {
        if (m_refs.fetch_sub(1, std::memory_order_acq_rel) == 1) destroy(this);
    }

    [[nodiscard]] std::size_t size() const noexcept { return m_size; }

    /// The value of variable `key`, or null. (Not const: a value is shared, and whoever finds it
    /// may take a reference.)
    [[nodiscard]] value_box_base* find(std::uint64_t key) const noexcept {
        const entry* e = lower_bound(key);
        return e != end() && e->key == key ? e->value : nullptr;
    }

    /// A new map: `base` (null: empty) with `key` bound to `value` (the new map takes a reference
    /// of its own). Throws std::bad_alloc.
    static context_map* with(const context_map* base, std::uint64_t key, value_box_base* value) {
        const entry* first = base != nullptr ? base->begin() : nullptr;
        const entry* last = base != nullptr ? base->end() : nullptr;
        const entry* at = base != nullptr ? base->lower_bound(key) : nullptr;
        const bool replaces = at != last && at->key == key;
        context_map* map = allocate(static_cast<std::size_t>(last - first) + (replaces ? 0 : 1));
        entry* out = map->begin();
        for (const entry* e = first; e != at; ++e) *out++ = share(*e);
        value->add_ref();
        *out++ = entry{key, value};
        for (const entry* e = replaces ? at + 1 : at; e != last; ++e) *out++ = share(*e);
        return map;
    }

    /// A new map: `base` without `key`; null if that leaves it empty. `base` must hold `key`.
    static context_map* without(const context_map* base, std::uint64_t key) {
        if (base->m_size == 1) return nullptr;
        context_map* map = allocate(base->m_size - 1);
        entry* out = map->begin();
        for (const entry* e = base->begin(); e != base->end(); ++e)
            if (e->key != key) *out++ = share(*e);
        return map;
    }

private:
    explicit context_map(std::uint32_t size) noexcept : m_size(size) {}
    ~context_map() = default;

    static context_map* allocate(std::size_t size) {
        void* block = ::operator new(sizeof(context_map) + size * sizeof(entry));
        return ::new (block) context_map(static_cast<std::uint32_t>(size));
    }
    static void destroy(context_map* map) noexcept {
        for (entry* e = map->begin(); e != map->end(); ++e) e->value->release();
        map->~context_map();
        ::operator delete(map);
    }
    static entry share(const entry& e) noexcept {
        e.value->add_ref();
        return e;
    }

    // The entries follow the header, sorted by key (the header's size keeps them aligned).
    entry* begin() noexcept { return reinterpret_cast<entry*>(this + 1); }
    entry* end() noexcept { return begin() + m_size; }
    const entry* begin() const noexcept { return reinterpret_cast<const entry*>(this + 1); }
    const entry* end() const noexcept { return begin() + m_size; }
    const entry* lower_bound(std::uint64_t key) const noexcept {
        const entry* first = begin();
        std::size_t count = m_size;
        while (count > 0) {
            const std::size_t half = count / 2;
            if (first[half].key < key) {
                first += half + 1;
                count -= half + 1;
            } else {
                count = half;
            }
        }
        return first;
    }

    std::atomic<std::uint32_t> m_refs{1};
    std::uint32_t m_size;
};
static_assert(sizeof(context_map) % alignof(context_map::entry) == 0);

/// Owns one reference to a map (or none): what a callback node or a to_thread awaiter captured.
class context_ref {
public:
    context_ref() noexcept = default;
    /// Adopts a reference the caller holds (null: the empty context).
    static context_ref adopt(context_map* map) noexcept {
        context_ref ref;
        ref.m_map = map;
        return ref;
    }
    context_ref(context_ref&& other) noexcept : m_map(std::exchange(other.m_map, nullptr)) {}
    context_ref& operator=(context_ref other) noexcept {
        std::swap(m_map, other.m_map);
        return *this;
    }
    ~context_ref() {
        if (m_map != nullptr) m_map->release();
    }
    [[nodiscard]] context_map* get() const noexcept { return m_map; }
    /// Hands the reference to the caller.
    [[nodiscard]] context_map* detach() noexcept { return std::exchange(m_map, nullptr); }

private:
    context_map* m_map = nullptr;
};

/// Where a context lives while code runs in it: a task's (in its state's extras), or a thread's
/// (t_context). Trivially destructible, so that t_context needs no TLS guard; its owner calls
/// clear().
struct context_slot {
    context_map* map = nullptr;  // one reference; null: nothing set
    // The context's identity for tokens (asyncio's Token remembers its Context): 0 until a set()
    // here first needs one, then unique in the process.
    std::uint64_t serial = 0;

    [[nodiscard]] bool in_use() const noexcept { return (reinterpret_cast<std::uintptr_t>(map) | serial) != 0; }
    void clear() noexcept {
        if (map != nullptr) release(std::exchange(map, nullptr));
        serial = 0;
    }
    // Out of line, so that the destructors and the callback path that clear a slot stay small
    // enough to inline where no context was ever set.
    CORING_NOINLINE static void release(context_map* map) noexcept { map->release(); }
    /// Replaces the map with `fresh` (adopted), and gives the slot an identity if it has none.
    void replace(context_map* fresh) noexcept {
        if (map != nullptr) map->release();
        map = fresh;
        if (serial == 0) serial = next_serial();
    }
    static std::uint64_t next_serial() noexcept {
        static constinit std::atomic<std::uint64_t> last{0};
        return last.fetch_add(1, std::memory_order_relaxed) + 1;
    }
};

/// True once this thread has seen a context: a context_var was set or reset here, or a callback
/// or to_thread call brought one from elsewhere. Sticky. Until then every context this thread
/// can see is empty, so create_task and the callbacks do not look for one to copy: a program that
/// never sets a variable pays one predictable branch per task or callback.
constinit inline thread_local bool t_contexts_used = false;

/// The context of code that runs in this thread outside any task: on a thread without a running
/// loop, the thread's own (set before run() is seen by the main task, which starts from a copy);
/// on the loop's thread while it runs, the context of the callback that runs (empty between
/// callbacks: the loop saves the thread's own while it runs); on a pool thread, the context a
/// to_thread call carried. The running task's context is in its state instead.
constinit inline thread_local context_slot t_context;

/// Frees the thread's context when the thread ends. Touched by set() only (the first set() on a
/// thread registers it), so reading t_context never pays for the registration.
inline void release_thread_context_at_exit() noexcept {
    struct releaser {
        releaser() = default;
        releaser(const releaser&) = delete;
        releaser& operator=(const releaser&) = delete;
        ~releaser() { t_context.clear(); }
    };
    static thread_local releaser at_exit;
    (void)at_exit;
}

}  // namespace coring::detail
