// Tests of coring/detail/timer_heap.hpp.
#include <coring/detail/timer_heap.hpp>

#include "support/catch.hpp"

#include <algorithm>
#include <memory>
#include <random>
#include <vector>

using coring::detail::timer_heap;
using coring::detail::timer_node;
using tp = timer_heap::time_point;

namespace {
struct node : timer_node {
    static constexpr operations ops{+[](coring::detail::ready_node*, action) noexcept {}};
    node() : timer_node(ops) {}
    int id = 0;
    long when = 0;
};
tp at(long ns) { return tp(std::chrono::nanoseconds(ns)); }
}  // namespace

TEST_CASE("timer_heap - pops in deadline order, ties in insertion order", "[timer_heap]") {
    timer_heap heap;
    std::vector<std::unique_ptr<node>> nodes;
    std::mt19937 rng(7);
    for (int i = 0; i < 2000; ++i) {
        auto n = std::make_unique<node>();
        n->id = i;
        n->when = static_cast<long>(rng() % 50);  // many ties
        heap.push(*n, at(n->when));
        nodes.push_back(std::move(n));
    }
    std::vector<std::pair<long, int>> popped;
    while (auto* t = heap.pop()) {
        auto* n = static_cast<node*>(t);
        CHECK_FALSE(n->scheduled());
        popped.emplace_back(n->when, n->id);
    }
    CHECK(popped.size() == 2000);
    CHECK(std::is_sorted(popped.begin(), popped.end()));
}

TEST_CASE("timer_heap - erase from the middle keeps the heap valid", "[timer_heap]") {
    timer_heap heap;
    std::vector<std::unique_ptr<node>> nodes;
    std::mt19937 rng(11);
    for (int i = 0; i < 1000; ++i) {
        auto n = std::make_unique<node>();
        n->id = i;
        n->when = static_cast<long>(rng() % 100000);
        heap.push(*n, at(n->when));
        nodes.push_back(std::move(n));
    }
    for (int i = 0; i < 1000; i += 3) heap.erase(*nodes[i]);
    CHECK(heap.size() == 1000 - 334);
    long last = -1;
    std::size_t count = 0;
    while (auto* t = heap.pop()) {
        auto* n = static_cast<node*>(t);
        CHECK(n->id % 3 != 0);
        CHECK(n->when >= last);
        last = n->when;
        ++count;
    }
    CHECK(count == 666);
}

TEST_CASE("timer_heap - next_deadline is the earliest deadline", "[timer_heap]") {
    timer_heap heap;
    node a, b;
    heap.push(a, at(100));
    heap.push(b, at(50));
    CHECK(heap.next_deadline() == at(50));
}

TEST_CASE("timer_heap - pop_expired pops only what is due at the given time, earliest first", "[timer_heap]") {
    timer_heap heap;
    node a, b;
    heap.push(a, at(100));
    heap.push(b, at(50));
    CHECK(heap.pop_expired(at(49)) == nullptr);
    CHECK(heap.pop_expired(at(50)) == &b);
    CHECK(heap.pop_expired(at(99)) == nullptr);
    CHECK(heap.pop_expired(at(1000)) == &a);
    CHECK(heap.empty());
}
