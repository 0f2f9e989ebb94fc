// producer_consumer: a bounded queue between producer tasks and a pool of worker tasks, as in
// the asyncio.Queue guide.
//
// Three producers put 10 jobs each into a coring::queue of at most 5 items: when it is full a
// producer waits (back-pressure) until a worker takes a job. Four workers take jobs, "process"
// each one (a short sleep), and mark it task_done(). main waits for the producers, then uses
// queue.join() to wait until every job has been processed, and finally cancels the idle workers
// (they wait on get() forever) and waits for them to finish.
//
//   $ ./producer_consumer
//   producers done: 30 jobs put, queue never held more than 5
//   all jobs processed: 30 jobs, sum of results 465
//   workers: 4 cancelled while idle
//   worker shares: ...
#include <coring/coring.hpp>
#include <coring/sync/queue.hpp>

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

struct job {
    int producer;
    int number;
};

struct stats {
    std::size_t put = 0;
    std::size_t largest_queue = 0;
    std::size_t processed = 0;
    long sum = 0;
    std::vector<int> per_worker;
};

coring::task<> producer(coring::queue<job>& jobs, stats& s, int id, int count) {
    for (int n = 0; n < count; ++n) {
        co_await jobs.put(job{id, n});  // waits while the queue is full
        ++s.put;
        s.largest_queue = std::max(s.largest_queue, jobs.size());
        co_await coring::sleep(1ms);  // producing takes a little time too
    }
}

coring::task<> worker(coring::queue<job>& jobs, stats& s, int id) {
    for (;;) {
        job j = co_await jobs.get();  // waits while the queue is empty; cancelled here at the end
        co_await coring::sleep(std::chrono::milliseconds(2 + (j.number % 3)));  // "process" it
        s.sum += j.producer * 10 + j.number + 1;
        ++s.processed;
        ++s.per_worker[static_cast<std::size_t>(id)];
        jobs.task_done();
    }
}

coring::task<> amain() {
    constexpr int producers = 3;
    constexpr int jobs_each = 10;
    constexpr int workers = 4;

    coring::queue<job> jobs(5);
    stats s;
    s.per_worker.assign(workers, 0);

    std::vector<coring::task_handle<>> worker_tasks;
    for (int w = 0; w < workers; ++w) worker_tasks.push_back(coring::create_task(worker(jobs, s, w), "worker-" + std::to_string(w)));
    std::vector<coring::task_handle<>> producer_tasks;
    for (int p = 0; p < producers; ++p) producer_tasks.push_back(coring::create_task(producer(jobs, s, p, jobs_each)));

    for (auto& p : producer_tasks) co_await p;
    std::printf("producers done: %zu jobs put, queue never held more than %zu\n", s.put, s.largest_queue);

    co_await jobs.join();  // every job put has been task_done()
    std::printf("all jobs processed: %zu jobs, sum of results %ld\n", s.processed, s.sum);

    // The workers now wait on an empty queue: cancel them and wait until they have finished.
    int cancelled = 0;
    for (auto& w : worker_tasks) w.cancel();
    for (auto& w : worker_tasks) {
        try {
            co_await w;
        } catch (const coring::cancelled_error&) {
            ++cancelled;
        }
    }
    std::printf("workers: %d cancelled while idle\n", cancelled);
    std::printf("worker shares:");
    for (int n : s.per_worker) std::printf(" %d", n);
    std::printf("\n");
}

}  // namespace

int main() {
    // Where io_uring is unavailable (switched off, a seccomp profile) the loop cannot start:
    // one line that says why, and status 1.
    try {
        coring::run(amain());
    } catch (const std::exception& e) {
        std::fprintf(stderr, "producer_consumer: %s\n", e.what());
        return 1;
    }
    return 0;
}
