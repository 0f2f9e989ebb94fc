#pragma once
// Per-thread size-class pool for coroutine frames and task states.
//
// A steady-state program creates and destroys frames of a handful of sizes over and over. Each
// size class keeps a LIFO free list, so a frame allocation is a pointer pop from thread-local
// storage. Blocks come from operator new one at a time (no slabs) so that a class whose cache is
// full hands the block straight back to the system allocator: the cache never holds more than
// max_cached_bytes per class, whatever the peak was.
//
// Each free block records the length of the list below it (depth), so the cap is checked on
// free by reading the head, and allocation updates no counter but `live`.
//
// Block sizes are 16k + 8 bytes: glibc adds an 8-byte header and rounds to 16, so such a block
// wastes nothing (a 100-byte frame takes a 104-byte block in a 112-byte chunk, not 128).
//
// The pool also knows how many blocks it has handed out and not yet taken back (live_blocks):
// tests use it to prove that shutdown destroys every frame. The fast paths count nothing for
// it: live = blocks obtained from the system - blocks returned to it - blocks cached.

#include <coring/config.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <new>

namespace coring::detail {

class frame_pool {
public:
    static constexpr std::size_t granule = 16;
    static constexpr std::size_t max_pooled_size = 4096;
    static constexpr std::size_t class_count = max_pooled_size / granule;
    static constexpr std::size_t max_cached_bytes = std::size_t{1} << 20;

    [[nodiscard]] static void* allocate(std::size_t size);
    static void deallocate(void* block, std::size_t size) noexcept;

    /// Blocks allocated by this thread's pool and not yet deallocated (frames plus task states).
    [[nodiscard]] static std::size_t live_blocks() noexcept;

    /// Free blocks this thread's pool keeps for reuse in the size class of `size` bytes.
    [[nodiscard]] static std::size_t cached_blocks(std::size_t size) noexcept {
        if (size > max_pooled_size) return 0;
        const free_block* head = t_state.heads[class_of(size)];
        return head != nullptr ? head->depth : 0;
    }

    /// The most free blocks the pool keeps for the size class of `size` bytes.
    [[nodiscard]] static constexpr std::size_t cache_limit_for(std::size_t size) noexcept {
        return size <= max_pooled_size ? cache_limit(class_of(size)) : 0;
    }

    /// Returns every cached block of this thread to the system allocator.
    static void trim() noexcept;

private:
    struct free_block {
        free_block* next;
        std::size_t depth;  // blocks on the list from this one down, itself included
    };
    static_assert(sizeof(free_block) <= granule);
    struct thread_state {
        std::array<free_block*, class_count> heads;
        std::size_t from_system;  // blocks obtained from operator new
        std::size_t to_system;    // blocks given back to operator delete
        bool cleanup_registered;
    };
    // constinit: accesses need no TLS init guard; the cleanup object below is only touched on the
    // slow path, so the fast path is a plain thread-local load.
    static constinit inline thread_local thread_state t_state{};

    struct thread_cleanup {
        ~thread_cleanup() { trim(); }
    };

    // Class c holds blocks of 16c + 24 bytes (24, 40, 56, ...); sizes up to 24 share class 0.
    static constexpr std::size_t class_of(std::size_t size) noexcept { return size <= 24 ? 0 : (size - 9) / granule; }
    static constexpr std::size_t block_size(std::size_t cls) noexcept { return cls * granule + 24; }
    static constexpr std::size_t cache_limit(std::size_t cls) noexcept { return max_cached_bytes / block_size(cls); }
    // Out of line: the fast path above stays small enough to inline everywhere.
    static CORING_NOINLINE void* allocate_slow(std::size_t cls) {
        thread_state& st = t_state;
        if (!st.cleanup_registered) {
            // Registers the destructor that gives cached blocks back when this thread exits.
            static thread_local thread_cleanup cleanup;
            (void)&cleanup;
            st.cleanup_registered = true;
        }
        void* p = ::operator new(block_size(cls));
        ++st.from_system;
        return p;
    }

    static CORING_NOINLINE void* allocate_large(std::size_t size) {
        void* p = ::operator new(size);
        ++t_state.from_system;
        return p;
    }

    static CORING_NOINLINE void release_to_system(void* block) noexcept {
        ++t_state.to_system;
        ::operator delete(block);
    }
};

// Always inlined: every coroutine's frame comes from here, and g++ stops inlining even this fast
// path once a translation unit is large (a call per frame costs await_ready_task 15%).
CORING_ALWAYS_INLINE void* frame_pool::allocate(std::size_t size) {
    thread_state& st = t_state;
#if CORING_ASAN
    void* p = ::operator new(size);
    ++st.from_system;
    return p;
#else
    if (CORING_LIKELY(size <= max_pooled_size)) {
        const std::size_t cls = class_of(size);
        if (free_block* b = st.heads[cls]; CORING_LIKELY(b != nullptr)) {
            st.heads[cls] = b->next;
            return b;
        }
        return allocate_slow(cls);
    }
    return allocate_large(size);
#endif
}

inline void frame_pool::deallocate(void* block, std::size_t size) noexcept {
    thread_state& st = t_state;
#if CORING_ASAN
    (void)st;
    (void)size;
    release_to_system(block);
#else
    if (CORING_LIKELY(size <= max_pooled_size)) {
        const std::size_t cls = class_of(size);
        free_block* head = st.heads[cls];
        const std::size_t depth = head != nullptr ? head->depth : 0;
        if (CORING_LIKELY(depth < cache_limit(cls))) {
            auto* b = static_cast<free_block*>(block);
            b->next = head;
            b->depth = depth + 1;
            st.heads[cls] = b;
            return;
        }
    }
    release_to_system(block);
#endif
}

inline std::size_t frame_pool::live_blocks() noexcept {
    const thread_state& st = t_state;
    std::size_t cached = 0;
    for (const free_block* head : st.heads) cached += head != nullptr ? head->depth : 0;
    return st.from_system - st.to_system - cached;
}

inline void frame_pool::trim() noexcept {
    thread_state& st = t_state;
    for (std::size_t cls = 0; cls < class_count; ++cls) {
        while (free_block* b = st.heads[cls]) {
            st.heads[cls] = b->next;
            ++st.to_system;
            ::operator delete(b);
        }
    }
}

}  // namespace coring::detail
