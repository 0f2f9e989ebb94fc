// Tests of coring/detail/intrusive_list.hpp and coring/detail/ready_queue.hpp.
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/ready_queue.hpp>

#include "support/catch.hpp"

#include <vector>

namespace {
struct item : coring::detail::list_hook<> {
    explicit item(int v) : value(v) {}
    int value;
};
struct qnode : coring::detail::ready_node {
    static constexpr operations ops{+[](ready_node*, action) noexcept {}};
    explicit qnode(int v) : ready_node(ops), value(v) {}
    int value;
};
}  // namespace

TEST_CASE("intrusive_list - pops in the order of the pushes", "[intrusive_list]") {
    coring::detail::intrusive_list<item> list;
    item a(1), b(2), c(3);
    CHECK(list.empty());
    list.push_back(a);
    list.push_back(b);
    list.push_back(c);
    CHECK(list.size() == 3);
    std::vector<int> order;
    while (item* i = list.pop_front()) order.push_back(i->value);
    CHECK(order == std::vector<int>{1, 2, 3});
    CHECK(list.empty());
}

TEST_CASE("intrusive_list - unlink takes an item out of the middle, harmlessly twice", "[intrusive_list]") {
    coring::detail::intrusive_list<item> list;
    item a(1), b(2), c(3);
    list.push_back(a);
    list.push_back(b);
    list.push_back(c);
    b.unlink();
    CHECK_FALSE(b.linked());
    b.unlink();
    CHECK(list.size() == 2);
    std::vector<int> order;
    while (item* i = list.pop_front()) order.push_back(i->value);
    CHECK(order == std::vector<int>{1, 3});
}

TEST_CASE("intrusive_list - an unlinked item can be pushed again, at the back", "[intrusive_list]") {
    coring::detail::intrusive_list<item> list;
    item a(1), b(2), c(3);
    list.push_back(a);
    list.push_back(b);
    list.push_back(c);
    b.unlink();
    list.push_back(b);
    std::vector<int> order;
    while (item* i = list.pop_front()) order.push_back(i->value);
    CHECK(order == std::vector<int>{1, 3, 2});
    CHECK(list.empty());
}

TEST_CASE("ready_queue - pops in the order of the pushes", "[ready_queue]") {
    coring::detail::ready_queue q;
    qnode a(1), b(2), c(3);
    q.push(&a);
    q.push(&b);
    q.push(&c);
    CHECK(static_cast<qnode*>(q.pop())->value == 1);
    CHECK(static_cast<qnode*>(q.pop())->value == 2);
    CHECK(static_cast<qnode*>(q.pop())->value == 3);
    CHECK(q.pop() == nullptr);
}

TEST_CASE("ready_queue - take_all moves the queued nodes into a batch; later pushes stay queued", "[ready_queue]") {
    coring::detail::ready_queue q;
    qnode a(1), b(2), c(3);
    q.push(&a);
    q.push(&b);
    auto batch = q.take_all();
    CHECK(q.empty());
    q.push(&c);
    CHECK_FALSE(batch.empty());
    CHECK(static_cast<qnode*>(batch.pop())->value == 1);
    CHECK(static_cast<qnode*>(batch.pop())->value == 2);
    CHECK(batch.pop() == nullptr);
    CHECK(static_cast<qnode*>(q.pop())->value == 3);
}
