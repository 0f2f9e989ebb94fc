// Tests of coring/detail/circular_buffer.hpp: FIFO order across wrap-around and growth,
// push_front, move-only items, and that every item is destroyed exactly once.
#include <coring/detail/circular_buffer.hpp>

#include "support/catch.hpp"

#include <memory>
#include <utility>
#include <vector>

namespace {

// Counts live instances, so the tests can prove nothing leaks or is destroyed twice.
struct counted {
    static inline int live = 0;
    int value;
    explicit counted(int v) : value(v) { ++live; }
    counted(counted&& other) noexcept : value(other.value) { ++live; }
    counted& operator=(counted&&) = delete;
    ~counted() { --live; }
};

}  // namespace

TEST_CASE("circular_buffer - FIFO across wrap-around and growth", "[circular_buffer]") {
    coring::detail::circular_buffer<int> b;
    CHECK(b.empty());
    std::vector<int> out;
    int next = 0;
    // Keep 5 items in flight while 1,003 pass through: the head wraps many times, and ends at
    // slot 3 of the 8 (1003 % 8), so the 5 items fill slots 3..7.
    for (int i = 0; i < 5; ++i) b.push_back(int(next++));
    for (int i = 0; i < 1003; ++i) {
        b.push_back(int(next++));
        out.push_back(b.pop_front());
    }
    CHECK(b.size() == 5);
    // Three more wrap into slots 0..2; the fourth grows the full, wrapped array: order must
    // survive the copy into the new one.
    for (int i = 0; i < 4; ++i) b.push_back(int(next++));
    REQUIRE(b.size() == 9);
    for (int expected = next - 9; expected < next; ++expected) {
        const int item = b.pop_front();
        CHECK(item == expected);
        out.push_back(item);
    }
    // The head is now at slot 9 of 16: growing to 32 happens wrapped again, to 64 unwrapped.
    for (int i = 0; i < 40; ++i) b.push_back(int(next++));
    while (!b.empty()) out.push_back(b.pop_front());
    REQUIRE(out.size() == static_cast<std::size_t>(next));
    for (int i = 0; i < next; ++i) CHECK(out[static_cast<std::size_t>(i)] == i);
}

TEST_CASE("circular_buffer - push_front puts an item first, also into an empty buffer", "[circular_buffer]") {
    coring::detail::circular_buffer<int> b;
    b.push_front(2);
    b.push_back(3);
    b.push_front(1);
    for (int i = 0; i < 20; ++i) b.push_back(4 + i);  // grows with the head at the array's end
    b.push_front(0);
    for (int expected = 0; expected < 24; ++expected) CHECK(b.pop_front() == expected);
    CHECK(b.empty());
}

TEST_CASE("circular_buffer - owns move-only items until they are popped, also when moved", "[circular_buffer]") {
    {
        coring::detail::circular_buffer<std::unique_ptr<counted>> b;
        for (int i = 0; i < 100; ++i) b.push_back(std::make_unique<counted>(i));
        for (int i = 0; i < 50; ++i) CHECK(b.pop_front()->value == i);
        CHECK(counted::live == 50);
        coring::detail::circular_buffer<std::unique_ptr<counted>> moved(std::move(b));
        CHECK(b.empty());
        CHECK(moved.size() == 50);
    }
    CHECK(counted::live == 0);  // the rest were destroyed with the buffer
}

TEST_CASE("circular_buffer - an item stored by value is destroyed exactly once", "[circular_buffer]") {
    {
        coring::detail::circular_buffer<counted> b;
        for (int i = 0; i < 30; ++i) b.push_back(counted(i));
        CHECK(counted::live == 30);
        CHECK(b.pop_front().value == 0);
        CHECK(counted::live == 29);
    }
    CHECK(counted::live == 0);
}
