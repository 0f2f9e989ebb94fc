// profile_tour: where a small service spends its time, as coring's profile mode shows it.
//
// An order pipeline with three problems that a CPU profiler would not tell apart, because all
// it sees is the loop:
//   - a queue backlog: "intake" puts 200 orders into a queue of 10 faster than the packers
//     take them out, so it spends its time waiting on the queue;
//   - a contended lock: four "packer" tasks record each order under one "ledger" lock and hold
//     it across a 2 ms write, so they spend their time waiting on the lock;
//   - a slow handler: every 25th order, "pricing" computes for 15 ms in one step, holding the
//     loop (its longest step says so).
// Receipts go through a pipe to an "auditor" task, which waits on kernel reads.
//
// Profile mode is on (loop_options{.profile = true}; CORING_PROFILE=1 does the same for any
// program): the table is printed at the end, and again on stderr when the loop closes.
//   profile_tour
#include <coring/coring.hpp>
#include <coring/profile.hpp>

#include <unistd.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <stdexcept>
#include <string>

using namespace std::chrono_literals;

namespace {

constexpr int orders_to_pack = 200;
constexpr int packers = 4;

struct shop {
    coring::queue<int> orders{10};
    coring::mutex ledger;
    long total_cents = 0;
    int receipt_fd = -1;
};

coring::task<> intake(shop& s) {
    for (int order = 0; order < orders_to_pack; ++order) co_await s.orders.put(order);
    for (int i = 0; i < packers; ++i) co_await s.orders.put(-1);  // one "closed" sign per packer
}

// CPU work that belongs in coring::to_thread: here it holds the loop for 15 ms.
coring::task<long> price(int order) {
    const auto until = std::chrono::steady_clock::now() + 15ms;
    long cents = 0;
    while (std::chrono::steady_clock::now() < until) cents = (cents * 31 + order) % 100'000;
    co_return cents;
}

coring::task<> packer(shop& s) {
    for (;;) {
        const int order = co_await s.orders.get();
        if (order < 0) co_return;
        long cents = 100 + order;
        if (order % 25 == 0) cents += co_await coring::create_task(price(order), "pricing");
        {
            auto guard = co_await s.ledger.scoped_lock();
            co_await coring::sleep(2ms);  // the ledger's write, under the lock
            s.total_cents += cents;
        }
        char receipt[16] = {};
        std::snprintf(receipt, sizeof receipt, "%-15d", order);
        co_await coring::io::write(s.receipt_fd, std::as_bytes(std::span(receipt, 15)));
    }
}

coring::task<int> auditor(int fd) {
    int receipts = 0;
    std::array<std::byte, 15 * 16> buffer{};
    std::size_t pending = 0;
    while (receipts < orders_to_pack) {
        const std::size_t got = co_await coring::io::read(fd, std::span(buffer).subspan(pending));
        if (got == 0) throw std::runtime_error("profile_tour: the receipt pipe closed early");
        pending += got;
        receipts += static_cast<int>(pending / 15);
        pending %= 15;
    }
    co_return receipts;
}

coring::task<> amain() {
    int pipe_ends[2];
    if (::pipe(pipe_ends) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    shop s;
    s.receipt_fd = pipe_ends[1];
    const auto start = std::chrono::steady_clock::now();
    auto audit = coring::create_task(auditor(pipe_ends[0]), "auditor");
    coring::task_group workers;
    workers.create_task(intake(s), "intake");
    for (int i = 0; i < packers; ++i) workers.create_task(packer(s), "packer");
    co_await workers.join();
    const int receipts = co_await audit;
    ::close(pipe_ends[0]);
    ::close(pipe_ends[1]);
    std::printf("packed %d orders (%d receipts, %ld cents) in %.2f s\n\n", orders_to_pack, receipts, s.total_cents,
                std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    coring::profile_report(std::cout);
}

}  // namespace

int main() {
    try {
        coring::run(amain(), {.profile = true});
        return 0;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "profile_tour: %s\n", e.what());
        return 1;
    }
}
