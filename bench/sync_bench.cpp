// Synchronisation micro-benchmarks (sync/*.hpp), each beside its baseline:
//
//   mutex_lock_unlock          co_await m.lock(); m.unlock(); on a free mutex (uncontended, one
//                              thread), beside std::mutex and beside a handwritten lock: a bool
//                              flag and a minimal awaiter over it, co_awaited in a coring task the
//                              same way (this file), the floor for the uncontended path. Target:
//                              under 5 ns.
//   semaphore_acquire_release  co_await s.acquire(); s.release(); with permits left, beside
//                              std::counting_semaphore and a handwritten counter awaiter.
//   queue_put_get              co_await q.put(v); co_await q.get(); in one task (neither
//                              suspends): the queue's own cost, beside std::deque push + pop.
//   queue_ping_pong            one producer task puts 1,000,000 ints into a queue of maxsize 1,
//                              one consumer task gets them; per item. Beside the same hand-off
//                              written by hand: a std::deque of items, FIFOs of waiting
//                              coroutines, and a minimal scheduler that resumes coroutine
//                              handles directly from a std::deque (this file). Target: at most
//                              1.5x. asyncio.Queue: bench/asyncio_baseline.py.
//
// With maxsize 1 both versions run the same schedule (asyncio's): the producer hands an item to
// the waiting consumer, puts one more into the queue, and waits for room; the consumer takes
// both, the first making room that is kept for the waiting producer, and waits again; the
// producer, resumed, puts its item straight to the waiting consumer: two task switches per two
// items. (The room is reserved rather than filled with the putter's item at once so that a
// putter cancelled before it resumes has put nothing.)
#include <coring/run.hpp>
#include <coring/sync/mutex.hpp>
#include <coring/sync/queue.hpp>
#include <coring/sync/semaphore.hpp>
#include <coring/task_handle.hpp>

#include "support/handwritten_scheduler.hpp"
#include "support/ratio_main.hpp"

#include <benchmark/benchmark.h>

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <semaphore>
#include <utility>

namespace {

constexpr std::int64_t ping_pong_items = 1'000'000;

// --------------------------------------------------------------------------- mutex, semaphore

void mutex_lock_unlock_coring(benchmark::State& state) {
    coring::run([](benchmark::State& st) -> coring::task<> {
        coring::mutex m;
        for (auto _ : st) {
            co_await m.lock();
            m.unlock();
        }
    }(state));
}

// The least a lock or a semaphore does when nothing waits: test and update a flag or a counter
// in await_ready. Neither is ever contended here, so neither can suspend; a real one would need
// a list of waiters and a wake-up, which is what coring's awaiters add (and skip on this path).
namespace handwritten_sync {

class flag_lock {
public:
    struct lock_awaiter {
        flag_lock& lock;
        bool await_ready() noexcept {
            if (lock.m_locked) return false;
            lock.m_locked = true;
            return true;
        }
        void await_suspend(std::coroutine_handle<>) noexcept { std::terminate(); }  // uncontended only
        void await_resume() noexcept {}
    };
    lock_awaiter lock() noexcept { return lock_awaiter{*this}; }
    void unlock() noexcept { m_locked = false; }

private:
    bool m_locked = false;
};

class counter_semaphore {
public:
    explicit counter_semaphore(std::size_t permits) noexcept : m_permits(permits) {}
    struct acquire_awaiter {
        counter_semaphore& sem;
        bool await_ready() noexcept {
            if (sem.m_permits == 0) return false;
            --sem.m_permits;
            return true;
        }
        void await_suspend(std::coroutine_handle<>) noexcept { std::terminate(); }  // permits left only
        void await_resume() noexcept {}
    };
    acquire_awaiter acquire() noexcept { return acquire_awaiter{*this}; }
    void release() noexcept { ++m_permits; }

private:
    std::size_t m_permits;
};

}  // namespace handwritten_sync

void mutex_lock_unlock_handwritten(benchmark::State& state) {
    coring::run([](benchmark::State& st) -> coring::task<> {
        handwritten_sync::flag_lock m;
        for (auto _ : st) {
            co_await m.lock();
            m.unlock();
        }
    }(state));
}

void mutex_lock_unlock_std_mutex(benchmark::State& state) {
    std::mutex m;
    for (auto _ : state) {
        m.lock();
        m.unlock();
    }
}

void semaphore_acquire_release_coring(benchmark::State& state) {
    coring::run([](benchmark::State& st) -> coring::task<> {
        coring::semaphore s(4);
        for (auto _ : st) {
            co_await s.acquire();
            s.release();
        }
    }(state));
}

void semaphore_acquire_release_handwritten(benchmark::State& state) {
    coring::run([](benchmark::State& st) -> coring::task<> {
        handwritten_sync::counter_semaphore s(4);
        for (auto _ : st) {
            co_await s.acquire();
            s.release();
        }
    }(state));
}

void semaphore_acquire_release_std(benchmark::State& state) {
    std::counting_semaphore<> s(4);
    for (auto _ : state) {
        s.acquire();
        s.release();
    }
}

// --------------------------------------------------------------------------- put + get, one task
// The queue's own cost, without task switches: a put into a queue with room and a get from a
// non-empty queue, neither of which suspends.

void queue_put_get_coring(benchmark::State& state) {
    coring::run([](benchmark::State& st) -> coring::task<> {
        coring::queue<std::int64_t> q(1);
        std::int64_t sum = 0;
        for (auto _ : st) {
            co_await q.put(sum);
            sum += co_await q.get();
        }
        benchmark::DoNotOptimize(sum);
    }(state));
}

void queue_put_get_std_deque(benchmark::State& state) {
    std::deque<std::int64_t> q;
    std::int64_t sum = 0;
    for (auto _ : state) {
        q.push_back(sum);
        benchmark::DoNotOptimize(q);
        sum += q.front();
        q.pop_front();
    }
    benchmark::DoNotOptimize(sum);
}

// --------------------------------------------------------------------------- ping-pong: coring

coring::task<> produce(coring::queue<std::int64_t>& q, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) co_await q.put(i);
}

void queue_ping_pong_coring(benchmark::State& state) {
    coring::run([](benchmark::State& st) -> coring::task<> {
        coring::queue<std::int64_t> q(1);
        auto producer = coring::create_task(produce(q, st.max_iterations));
        std::int64_t sum = 0;
        for (auto _ : st) sum += co_await q.get();
        co_await producer;
        benchmark::DoNotOptimize(sum);
    }(state));
    state.SetItemsProcessed(state.iterations());
}

}  // namespace

// --------------------------------------------------------------------------- ping-pong: by hand
// The least machinery that performs the same hand-off: a scheduler that resumes handles from a
// std::deque, a std::deque of items, and std::deques of waiting getters and putters.
namespace handwritten {

using scheduler = coring_bench::handwritten_scheduler;

// A coroutine started by the scheduler; it frees its frame when it finishes.
struct job {
    struct promise_type {
        job get_return_object() { return job{std::coroutine_handle<promise_type>::from_promise(*this)}; }
        std::suspend_always initial_suspend() noexcept { return {}; }
        std::suspend_never final_suspend() noexcept { return {}; }
        void return_void() {}
        void unhandled_exception() { std::terminate(); }
    };
    std::coroutine_handle<promise_type> handle;
};

template <class T>
class queue {
public:
    queue(scheduler& s, std::size_t maxsize) : m_scheduler(s), m_maxsize(maxsize) {}

    struct get_awaiter {
        queue& q;
        std::coroutine_handle<> frame;
        std::optional<T> handed;
        bool await_ready() const noexcept { return !q.m_items.empty(); }
        void await_suspend(std::coroutine_handle<> h) {
            frame = h;
            q.m_getters.push_back(this);
        }
        T await_resume() {
            if (handed) return std::move(*handed);
            T item = std::move(q.m_items.front());
            q.m_items.pop_front();
            if (!q.m_putters.empty()) {  // room again, kept for the first waiting putter
                put_awaiter* p = q.m_putters.front();
                q.m_putters.pop_front();
                ++q.m_reserved;
                p->admitted = true;
                q.m_scheduler.ready.push_back(p->frame);
            }
            return item;
        }
    };

    struct put_awaiter {
        queue& q;
        T item;
        std::coroutine_handle<> frame;
        bool admitted = false;
        bool await_ready() {
            if (q.m_items.size() + q.m_reserved >= q.m_maxsize) return false;
            q.deliver(std::move(item));
            return true;
        }
        void await_suspend(std::coroutine_handle<> h) {
            frame = h;
            q.m_putters.push_back(this);
        }
        void await_resume() {
            if (!admitted) return;
            --q.m_reserved;
            q.deliver(std::move(item));
        }
    };

    get_awaiter get() { return get_awaiter{*this, {}, {}}; }
    put_awaiter put(T item) { return put_awaiter{*this, std::move(item), {}, false}; }

private:
    void deliver(T&& item) {
        if (!m_getters.empty()) {
            get_awaiter* g = m_getters.front();
            m_getters.pop_front();
            g->handed.emplace(std::move(item));
            m_scheduler.ready.push_back(g->frame);
        } else {
            m_items.push_back(std::move(item));
        }
    }

    scheduler& m_scheduler;
    std::size_t m_maxsize;
    std::size_t m_reserved = 0;  // room kept for woken putters
    std::deque<T> m_items;
    std::deque<get_awaiter*> m_getters;
    std::deque<put_awaiter*> m_putters;
};

job produce(queue<std::int64_t>& q, std::int64_t n) {
    for (std::int64_t i = 0; i < n; ++i) co_await q.put(i);
}

job consume(queue<std::int64_t>& q, benchmark::State& state) {
    std::int64_t sum = 0;
    for (auto _ : state) sum += co_await q.get();
    benchmark::DoNotOptimize(sum);
}

}  // namespace handwritten

namespace {

void queue_ping_pong_handwritten(benchmark::State& state) {
    handwritten::scheduler s;
    handwritten::queue<std::int64_t> q(s, 1);
    s.ready.push_back(handwritten::consume(q, state).handle);
    s.ready.push_back(handwritten::produce(q, state.max_iterations).handle);
    s.run();
    state.SetItemsProcessed(state.iterations());
}

}  // namespace

BENCHMARK(mutex_lock_unlock_coring)->Name("mutex_lock_unlock:coring");
BENCHMARK(mutex_lock_unlock_handwritten)->Name("mutex_lock_unlock:handwritten");
BENCHMARK(mutex_lock_unlock_std_mutex)->Name("mutex_lock_unlock:std_mutex");
BENCHMARK(semaphore_acquire_release_coring)->Name("semaphore_acquire_release:coring");
BENCHMARK(semaphore_acquire_release_handwritten)->Name("semaphore_acquire_release:handwritten");
BENCHMARK(semaphore_acquire_release_std)->Name("semaphore_acquire_release:std_counting_semaphore");
BENCHMARK(queue_put_get_coring)->Name("queue_put_get:coring");
BENCHMARK(queue_put_get_std_deque)->Name("queue_put_get:std_deque");
// One run is 10-30 ms, short enough for a noisy neighbour to double it: the ratio is taken
// between the medians of several repetitions (bench/run_all.sh also interleaves them at random).
constexpr int ping_pong_repetitions = 9;
BENCHMARK(queue_ping_pong_coring)->Name("queue_ping_pong:coring")->Iterations(ping_pong_items)->Repetitions(ping_pong_repetitions)->ReportAggregatesOnly(true);
BENCHMARK(queue_ping_pong_handwritten)->Name("queue_ping_pong:handwritten")->Iterations(ping_pong_items)->Repetitions(ping_pong_repetitions)->ReportAggregatesOnly(true);

CORING_BENCHMARK_MAIN()
