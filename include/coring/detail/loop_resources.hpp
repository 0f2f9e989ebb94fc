#pragma once
// Objects a library keeps once per event loop, such as coring::http's default client (one curl
// multi handle per loop, so that http::get keeps connections alive between calls): created on
// first use, and destroyed by event_loop::close() once every task has finished and before the
// loop lets go of its descriptors, so that they can still remove their readers and writers.
//
//   http::client& c = loop.resources().get<http::client>([] { return std::make_unique<http::client>(); });
//
// One object per type. Destroyed in the reverse order of their creation.
//
// Thread-safety: loop-bound, like the loop's other members.

#include <memory>
#include <utility>
#include <vector>

namespace coring::detail {

class loop_resources {
public:
    loop_resources() = default;
    loop_resources(const loop_resources&) = delete;
    loop_resources& operator=(const loop_resources&) = delete;
    ~loop_resources() { clear(); }

    /// The loop's T, made by `make()` (which returns a std::unique_ptr<T>) the first time.
    template <class T, class Make>
    T& get(Make&& make) {
        for (const entry& e : m_entries)
            if (e.key == key_of<T>()) return *static_cast<T*>(e.object);
        std::unique_ptr<T> made = std::forward<Make>(make)();
        T* object = made.get();
        m_entries.push_back(entry{key_of<T>(), object, &destroy<T>});
        made.release();
        return *object;
    }

    /// Destroys every object, the newest first. Objects made meanwhile go too.
    void clear() noexcept {
        while (!m_entries.empty()) {
            const entry e = m_entries.back();
            m_entries.pop_back();
            e.destroy(e.object);
        }
    }

private:
    struct entry {
        const void* key;
        void* object;
        void (*destroy)(void*) noexcept;
    };

    // A distinct address per type, without RTTI.
    template <class T>
    static const void* key_of() noexcept {
        static const char key = 0;
        return &key;
    }
    template <class T>
    static void destroy(void* object) noexcept {
        delete static_cast<T*>(object);
    }

    std::vector<entry> m_entries;
};

}  // namespace coring::detail
