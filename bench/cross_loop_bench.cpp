// Messages between event loops (issue 18), each beside the hand-written floor it must approach.
//
// run_on_round_trip: a task on the benchmark thread's loop awaits run_on(other loop, trivial
// task), one at a time: real time per round trip. Floors, two threads ping-ponging:
//   eventfd_pingpong   - blocking read/write on two eventfds (the plain floor);
//   msg_ring_pingpong  - each thread submits IORING_OP_MSG_RING to the other's ring and waits
//                        for the CQE in the same io_uring_enter (the kernel floor);
//   msg_ring_pingpong_defer_taskrun - the same with the rings coring makes (SINGLE_ISSUER |
//                        DEFER_TASKRUN), whose waits this VM wakes faster.
// Target: coring at most 1.3x the faster floor. `run_on_round_trip_via_inbox` is the same with
// loop_options::msg_ring off (the inbox and its eventfd), beside the same floors.
//
// channel_*_cpu: values through a coring::channel between two loops, the senders' tasks on one
// and the receivers' on the other (1 and 1; 4 and 4), beside a hand-written single-producer
// single-consumer ring between two threads that wakes a sleeping side through an eventfd (for
// 4 and 4 its producer takes turns among four sequences), in two correct variants: a fence per
// value (spsc_eventfd) and an asymmetric fence paid only by a side going to sleep
// (spsc_asymmetric; see spsc_ring). The time column is the process CPU time per batch of
// 200,000 values (manual time), so the ratio compares CPU per value. Target: coring at most
// 1.5x the faster ring.
//
// channel_4to4_loops_cpu (beyond the target): 4 senders and 4 receivers each on its own loop,
// all through one channel, beside 4 independent SPSC rings: eight threads on this machine's two
// cores, where the channel's shared send and receive positions move between the cores with
// every value and the independent rings share nothing.
#include <coring/coring.hpp>

#include "support/ratio_main.hpp"

#include <benchmark/benchmark.h>
#include <liburing.h>
#include <linux/membarrier.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <stdexcept>
#include <thread>
#include <vector>

namespace {

// ---------------------------------------------------------------------- run_on round trip

coring::task<int> trivial() { co_return 1; }

coring::task<> round_trips(benchmark::State& state, coring::event_loop& target) {
    std::int64_t sum = 0;
    for (auto _ : state) sum += co_await coring::run_on(target, [] { return trivial(); });
    benchmark::DoNotOptimize(sum);
}

void run_on_round_trip(benchmark::State& state, bool msg_ring) {
    coring::loop_group group({.threads = 1, .loop = {.msg_ring = msg_ring}});
    coring::event_loop caller({.msg_ring = msg_ring});
    caller.run_until_complete(round_trips(state, group.loop(0)));
    caller.close();
}

void run_on_round_trip_coring(benchmark::State& state) { run_on_round_trip(state, true); }
void run_on_round_trip_via_inbox_coring(benchmark::State& state) { run_on_round_trip(state, false); }

void eventfd_pingpong(benchmark::State& state) {
    const int there = ::eventfd(0, EFD_CLOEXEC);
    const int back = ::eventfd(0, EFD_CLOEXEC);
    std::thread peer([&] {
        eventfd_t value;
        for (;;) {
            ::eventfd_read(there, &value);
            if (value > 1) break;  // the stop value
            ::eventfd_write(back, 1);
        }
    });
    eventfd_t value;
    for (auto _ : state) {
        ::eventfd_write(there, 1);
        ::eventfd_read(back, &value);
    }
    ::eventfd_write(there, 2);
    peer.join();
    ::close(there);
    ::close(back);
}

// One ring per thread, made on that thread; a message's len is 1 to continue, 2 to stop.
void msg_ring_pingpong(benchmark::State& state, unsigned flags) {
    std::atomic<int> peer_fd{-1};
    io_uring mine;
    if (io_uring_queue_init(8, &mine, flags) < 0) {
        state.SkipWithError("io_uring_queue_init failed");
        return;
    }
    auto send = [](io_uring& ring, int to, unsigned len) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        io_uring_prep_msg_ring(sqe, to, len, 0, 0);
        sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
    };
    std::thread peer([&] {
        io_uring ring;
        if (io_uring_queue_init(8, &ring, flags) < 0) std::abort();
        peer_fd = ring.ring_fd;
        for (;;) {
            io_uring_cqe* cqe = nullptr;
            io_uring_wait_cqe(&ring, &cqe);
            const int len = cqe->res;
            io_uring_cqe_seen(&ring, cqe);
            if (len == 2) break;
            send(ring, mine.ring_fd, 1);
            io_uring_submit(&ring);
        }
        io_uring_queue_exit(&ring);
    });
    while (peer_fd < 0) std::this_thread::yield();
    for (auto _ : state) {
        send(mine, peer_fd, 1);
        io_uring_submit_and_wait(&mine, 1);  // the message out, and the reply's CQE
        io_uring_cqe* cqe = nullptr;
        io_uring_peek_cqe(&mine, &cqe);
        io_uring_cqe_seen(&mine, cqe);
    }
    send(mine, peer_fd, 2);
    io_uring_submit(&mine);
    peer.join();
    io_uring_queue_exit(&mine);
}

void msg_ring_pingpong_plain(benchmark::State& state) { msg_ring_pingpong(state, 0); }
void msg_ring_pingpong_defer_taskrun(benchmark::State& state) {
    msg_ring_pingpong(state, IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN);
}

// ---------------------------------------------------------------------- channel throughput

constexpr std::uint64_t batch = 200'000;

double process_cpu_seconds() {
    timespec t{};
    ::clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_nsec) * 1e-9;
}

coring::task<std::uint64_t> send_values(coring::channel<std::uint64_t>& ch, std::uint64_t count, std::atomic<std::size_t>& senders_left) {
    for (std::uint64_t i = 0; i < count; ++i) co_await ch.send(i);
    if (senders_left.fetch_sub(1) == 1) ch.close();
    co_return 0;
}

coring::task<std::uint64_t> receive_values(coring::channel<std::uint64_t>& ch) {
    std::uint64_t sum = 0;
    while (std::optional<std::uint64_t> v = co_await ch.receive()) sum += *v;
    co_return sum;
}

// `tasks` senders and as many receivers; loop 0 runs the senders, loop 1 the receivers.
coring::task<std::uint64_t> channel_side(coring::channel<std::uint64_t>& ch, std::size_t loop, std::size_t tasks, std::atomic<std::size_t>& senders_left) {
    std::vector<coring::task<std::uint64_t>> sides;
    for (std::size_t t = 0; t < tasks; ++t) {
        if (loop == 0)
            sides.push_back(send_values(ch, batch / tasks, senders_left));
        else
            sides.push_back(receive_values(ch));
    }
    const std::vector<std::uint64_t> parts = co_await coring::gather(std::move(sides));
    std::uint64_t sum = 0;
    for (std::uint64_t part : parts) sum += part;
    co_return sum;
}

void channel_cpu(benchmark::State& state, std::size_t tasks) {
    coring::loop_group group({.threads = 2});
    for (auto _ : state) {
        coring::channel<std::uint64_t> ch(1024);
        std::atomic<std::size_t> senders_left{tasks};
        const double start = process_cpu_seconds();
        const std::vector<std::uint64_t> sums = group.run([&](std::size_t i) { return channel_side(ch, i, tasks, senders_left); });
        state.SetIterationTime(process_cpu_seconds() - start);
        benchmark::DoNotOptimize(sums.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

void channel_1to1_cpu_coring(benchmark::State& state) { channel_cpu(state, 1); }
void channel_4to4_cpu_coring(benchmark::State& state) { channel_cpu(state, 4); }

// Loop i < pairs sends, the others receive.
void channel_loops_cpu(benchmark::State& state, std::size_t pairs) {
    coring::loop_group group({.threads = 2 * pairs});
    for (auto _ : state) {
        coring::channel<std::uint64_t> ch(1024);
        std::atomic<std::size_t> senders_left{pairs};
        const double start = process_cpu_seconds();
        const std::vector<std::uint64_t> sums = group.run([&](std::size_t i) {
            return i < pairs ? send_values(ch, batch / pairs, senders_left) : receive_values(ch);
        });
        state.SetIterationTime(process_cpu_seconds() - start);
        benchmark::DoNotOptimize(sums.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

void channel_4to4_loops_cpu_coring(benchmark::State& state) { channel_loops_cpu(state, 4); }

// A bounded single-producer single-consumer ring. Each side keeps a copy of the other's
// position and reads the shared one only when its copy says full (empty). A side that finds it
// empty (full) says it sleeps, checks again, and blocks on its eventfd; the other side writes
// that eventfd once.
//
// The side that publishes a position must then see a sleeping flag raised before it (Dekker's
// pattern: store, then load of the other's word). Two ways to order that store and load:
//   fence::per_value  - the position store is sequentially consistent (an xchg on x86) on every
//                       value: the plain correct design.
//   fence::asymmetric - the publisher only stops the compiler reordering them; the side going
//                       to sleep pays instead, with membarrier(PRIVATE_EXPEDITED), which runs a
//                       full barrier on every other running thread of the process. Values cost
//                       no fence; only a sleep (already a syscall) costs one more.
// With a plain release store and nothing else, a side that just said it sleeps can miss the
// wake-up (a run hung for hours that way).
enum class fence { per_value, asymmetric };

// The process must register once before using membarrier(PRIVATE_EXPEDITED) (Linux 4.14+).
bool membarrier_registered() {
    static const bool registered = ::syscall(SYS_membarrier, MEMBARRIER_CMD_REGISTER_PRIVATE_EXPEDITED, 0, 0) == 0;
    return registered;
}

template <fence Fence>
class spsc_ring {
public:
    explicit spsc_ring(std::size_t capacity) : m_slots(capacity), m_mask(capacity - 1) {
        m_consumer_wake = ::eventfd(0, EFD_CLOEXEC);
        m_producer_wake = ::eventfd(0, EFD_CLOEXEC);
    }
    ~spsc_ring() {
        ::close(m_consumer_wake);
        ::close(m_producer_wake);
    }

    void push(std::uint64_t value) {
        const std::size_t tail = m_tail.load(std::memory_order_relaxed);
        if (tail - m_cached_head == m_slots.size()) {
            m_cached_head = m_head.load(std::memory_order_acquire);
            while (tail - m_cached_head == m_slots.size()) {
                wait(m_producer_sleeps, m_producer_wake, [&] {
                    m_cached_head = m_head.load(std::memory_order_acquire);
                    return tail - m_cached_head != m_slots.size();
                });
            }
        }
        m_slots[tail & m_mask] = value;
        publish(m_tail, tail + 1);
        wake(m_consumer_sleeps, m_consumer_wake);
    }

    // False once the producer has finished and everything was taken.
    bool pop(std::uint64_t& value) {
        const std::size_t head = m_head.load(std::memory_order_relaxed);
        if (head == m_cached_tail) {
            m_cached_tail = m_tail.load(std::memory_order_acquire);
            while (head == m_cached_tail) {
                if (m_done.load(std::memory_order_acquire)) {
                    m_cached_tail = m_tail.load(std::memory_order_acquire);
                    if (head == m_cached_tail) return false;
                    break;
                }
                wait(m_consumer_sleeps, m_consumer_wake, [&] {
                    m_cached_tail = m_tail.load(std::memory_order_acquire);
                    return head != m_cached_tail || m_done.load(std::memory_order_acquire);
                });
            }
        }
        value = m_slots[head & m_mask];
        publish(m_head, head + 1);
        wake(m_producer_sleeps, m_producer_wake);
        return true;
    }

    void finish() {
        publish(m_done, true);
        wake(m_consumer_sleeps, m_consumer_wake);
    }

private:
    // Store, ordered before the caller's next look at the other side's sleeping flag.
    template <class Value>
    static void publish(std::atomic<Value>& word, Value value) {
        if constexpr (Fence == fence::per_value) {
            word.store(value, std::memory_order_seq_cst);
        } else {
            word.store(value, std::memory_order_release);
            std::atomic_signal_fence(std::memory_order_seq_cst);
        }
    }

    template <class Ready>
    static void wait(std::atomic<bool>& sleeps, int fd, Ready ready) {
        sleeps.store(true, std::memory_order_seq_cst);
        if constexpr (Fence == fence::asymmetric) ::syscall(SYS_membarrier, MEMBARRIER_CMD_PRIVATE_EXPEDITED, 0, 0);
        if (!ready()) {
            eventfd_t value;
            ::eventfd_read(fd, &value);
        }
        sleeps.store(false, std::memory_order_relaxed);
    }

    static void wake(std::atomic<bool>& sleeps, int fd) {
        if (sleeps.load(Fence == fence::per_value ? std::memory_order_seq_cst : std::memory_order_relaxed) && sleeps.exchange(false))
            ::eventfd_write(fd, 1);
    }

    std::vector<std::uint64_t> m_slots;
    std::size_t m_mask;
    alignas(64) std::atomic<std::size_t> m_head{0};
    std::size_t m_cached_tail = 0;  // the consumer's copy
    alignas(64) std::atomic<std::size_t> m_tail{0};
    std::size_t m_cached_head = 0;  // the producer's copy
    alignas(64) std::atomic<bool> m_consumer_sleeps{false};
    std::atomic<bool> m_producer_sleeps{false};
    std::atomic<bool> m_done{false};
    int m_consumer_wake;
    int m_producer_wake;
};

// One ring between two threads; the producer takes turns among `sequences` counters (the
// four senders of channel_4to4_cpu), so its values interleave as theirs do.
template <fence Fence>
bool skip_without_membarrier(benchmark::State& state) {
    if (Fence == fence::per_value || membarrier_registered()) return false;
    state.SkipWithError("membarrier(PRIVATE_EXPEDITED) is not available");
    return true;
}

template <fence Fence>
void spsc_eventfd_cpu(benchmark::State& state, std::size_t sequences) {
    if (skip_without_membarrier<Fence>(state)) return;
    for (auto _ : state) {
        spsc_ring<Fence> ring(1024);
        std::uint64_t sum = 0;
        const double start = process_cpu_seconds();
        std::thread producer([&] {
            const std::uint64_t per_sequence = batch / sequences;
            for (std::uint64_t i = 0; i < per_sequence; ++i)
                for (std::size_t s = 0; s < sequences; ++s) ring.push(i);
            ring.finish();
        });
        std::thread consumer([&] {
            std::uint64_t v;
            while (ring.pop(v)) sum += v;
        });
        producer.join();
        consumer.join();
        state.SetIterationTime(process_cpu_seconds() - start);
        benchmark::DoNotOptimize(sum);
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

void channel_1to1_cpu_spsc_eventfd(benchmark::State& state) { spsc_eventfd_cpu<fence::per_value>(state, 1); }
void channel_4to4_cpu_spsc_eventfd(benchmark::State& state) { spsc_eventfd_cpu<fence::per_value>(state, 4); }
void channel_1to1_cpu_spsc_asymmetric(benchmark::State& state) { spsc_eventfd_cpu<fence::asymmetric>(state, 1); }
void channel_4to4_cpu_spsc_asymmetric(benchmark::State& state) { spsc_eventfd_cpu<fence::asymmetric>(state, 4); }

// `pairs` independent rings, each between its own two threads.
template <fence Fence>
void spsc_pairs_eventfd_cpu(benchmark::State& state, std::size_t pairs) {
    if (skip_without_membarrier<Fence>(state)) return;
    for (auto _ : state) {
        std::vector<std::unique_ptr<spsc_ring<Fence>>> rings;
        for (std::size_t p = 0; p < pairs; ++p) rings.push_back(std::make_unique<spsc_ring<Fence>>(1024));
        std::vector<std::uint64_t> sums(pairs, 0);
        const double start = process_cpu_seconds();
        std::vector<std::thread> threads;
        for (std::size_t p = 0; p < pairs; ++p) {
            threads.emplace_back([&, p] {
                for (std::uint64_t i = 0; i < batch / pairs; ++i) rings[p]->push(i);
                rings[p]->finish();
            });
            threads.emplace_back([&, p] {
                std::uint64_t v;
                while (rings[p]->pop(v)) sums[p] += v;
            });
        }
        for (std::thread& t : threads) t.join();
        state.SetIterationTime(process_cpu_seconds() - start);
        benchmark::DoNotOptimize(sums.data());
    }
    state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(batch));
}

void channel_4to4_loops_cpu_spsc_pairs_eventfd(benchmark::State& state) { spsc_pairs_eventfd_cpu<fence::per_value>(state, 4); }
void channel_4to4_loops_cpu_spsc_pairs_asymmetric(benchmark::State& state) { spsc_pairs_eventfd_cpu<fence::asymmetric>(state, 4); }

}  // namespace

BENCHMARK(run_on_round_trip_coring)->Name("run_on_round_trip:coring")->UseRealTime();
BENCHMARK(eventfd_pingpong)->Name("run_on_round_trip:eventfd_pingpong")->UseRealTime();
BENCHMARK(msg_ring_pingpong_plain)->Name("run_on_round_trip:msg_ring_pingpong")->UseRealTime();
BENCHMARK(msg_ring_pingpong_defer_taskrun)->Name("run_on_round_trip:msg_ring_pingpong_defer_taskrun")->UseRealTime();
BENCHMARK(run_on_round_trip_via_inbox_coring)->Name("run_on_round_trip_via_inbox:coring")->UseRealTime();
BENCHMARK(eventfd_pingpong)->Name("run_on_round_trip_via_inbox:eventfd_pingpong")->UseRealTime();
BENCHMARK(msg_ring_pingpong_plain)->Name("run_on_round_trip_via_inbox:msg_ring_pingpong")->UseRealTime();
BENCHMARK(channel_1to1_cpu_coring)->Name("channel_1to1_cpu:coring")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(channel_1to1_cpu_spsc_eventfd)->Name("channel_1to1_cpu:spsc_eventfd")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(channel_1to1_cpu_spsc_asymmetric)->Name("channel_1to1_cpu:spsc_asymmetric")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(channel_4to4_cpu_coring)->Name("channel_4to4_cpu:coring")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(channel_4to4_cpu_spsc_eventfd)->Name("channel_4to4_cpu:spsc_eventfd")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(channel_4to4_cpu_spsc_asymmetric)->Name("channel_4to4_cpu:spsc_asymmetric")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(channel_4to4_loops_cpu_coring)->Name("channel_4to4_loops_cpu:coring")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(channel_4to4_loops_cpu_spsc_pairs_eventfd)->Name("channel_4to4_loops_cpu:spsc_pairs_eventfd")->UseManualTime()->Unit(benchmark::kMillisecond);
BENCHMARK(channel_4to4_loops_cpu_spsc_pairs_asymmetric)->Name("channel_4to4_loops_cpu:spsc_pairs_asymmetric")->UseManualTime()->Unit(benchmark::kMillisecond);

CORING_BENCHMARK_MAIN();
