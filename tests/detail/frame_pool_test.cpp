// Tests of coring/detail/frame_pool.hpp.
#include <coring/detail/frame_pool.hpp>

#include "support/catch.hpp"

#include <cstring>
#include <set>
#include <thread>
#include <vector>

using coring::detail::frame_pool;

TEST_CASE("frame_pool - live_blocks counts the blocks allocated and not freed", "[frame_pool]") {
    const auto before = frame_pool::live_blocks();
    void* a = frame_pool::allocate(100);
    void* b = frame_pool::allocate(100);
    CHECK(frame_pool::live_blocks() == before + 2);
    std::memset(a, 0xab, 100);
    std::memset(b, 0xcd, 100);
    frame_pool::deallocate(a, 100);
    CHECK(frame_pool::live_blocks() == before + 1);
    frame_pool::deallocate(b, 100);
    CHECK(frame_pool::live_blocks() == before);
}

TEST_CASE("frame_pool - the last block freed in a size class is the next one allocated in it", "[frame_pool]") {
    const auto before = frame_pool::live_blocks();
    void* a = frame_pool::allocate(100);
    void* b = frame_pool::allocate(100);
    frame_pool::deallocate(a, 100);
    void* c = frame_pool::allocate(97);  // same 16-byte class as 100
#if !CORING_ASAN
    CHECK(c == a);  // LIFO reuse
#endif
    frame_pool::deallocate(b, 100);
    frame_pool::deallocate(c, 97);
    CHECK(frame_pool::live_blocks() == before);
}

TEST_CASE("frame_pool - large blocks bypass the classes", "[frame_pool]") {
    const auto before = frame_pool::live_blocks();
    void* big = frame_pool::allocate(100000);
    std::memset(big, 1, 100000);
    CHECK(frame_pool::live_blocks() == before + 1);
    frame_pool::deallocate(big, 100000);
    CHECK(frame_pool::live_blocks() == before);
}

TEST_CASE("frame_pool - the cache per class is bounded", "[frame_pool]") {
    // Allocate and free far more than max_cached_bytes of one class; then the pool must not
    // hand back more distinct cached blocks than its limit.
    constexpr std::size_t size = 256;
    constexpr std::size_t count = 3 * frame_pool::max_cached_bytes / size;
    std::vector<void*> blocks;
    for (std::size_t i = 0; i < count; ++i) blocks.push_back(frame_pool::allocate(size));
    for (void* p : blocks) frame_pool::deallocate(p, size);
#if !CORING_ASAN
    CHECK(frame_pool::cached_blocks(size) == frame_pool::cache_limit_for(size));
#endif
    CHECK(frame_pool::cached_blocks(size) <= frame_pool::max_cached_bytes / size);
    frame_pool::trim();
    CHECK(frame_pool::cached_blocks(size) == 0);
}

TEST_CASE("frame_pool - each thread has its own pool", "[frame_pool]") {
    const auto before = frame_pool::live_blocks();
    std::size_t in_thread = 99;
    std::thread t([&] {
        void* p = frame_pool::allocate(64);
        in_thread = frame_pool::live_blocks();
        frame_pool::deallocate(p, 64);
    });
    t.join();
    CHECK(in_thread == 1);
    CHECK(frame_pool::live_blocks() == before);
}
