// Tests of coring/thread/thread_pool.hpp: the loop's worker threads.
#include <coring/thread/thread_pool.hpp>

#include <coring/run.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <pthread.h>
#include <signal.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("thread_pool - a thread starts only when work is posted", "[thread_pool]") {
    coring::thread_pool pool(4);
    CHECK(pool.thread_count() == 0);
    std::promise<void> ran;
    pool.post([&] { ran.set_value(); });
    ran.get_future().wait();
    CHECK(pool.thread_count() == 1);
    pool.shutdown();
}

TEST_CASE("thread_pool - posted work runs on another thread", "[thread_pool]") {
    coring::thread_pool pool(4);
    std::promise<std::thread::id> where;
    auto id = where.get_future();
    pool.post([&] { where.set_value(std::this_thread::get_id()); });
    CHECK(id.get() != std::this_thread::get_id());
    pool.shutdown();
}

TEST_CASE("thread_pool - never more threads than max_threads", "[thread_pool]") {
    coring::thread_pool pool(3);
    std::atomic<int> running{0};
    std::atomic<int> peak{0};
    std::atomic<int> finished{0};
    for (int i = 0; i < 20; ++i) {
        pool.post([&] {
            const int now = ++running;
            int seen = peak.load();
            while (now > seen && !peak.compare_exchange_weak(seen, now)) {
            }
            std::this_thread::sleep_for(5ms);
            --running;
            ++finished;
        });
    }
    pool.shutdown();  // waits for queued and running work
    CHECK(finished == 20);
    CHECK(peak <= 3);
    CHECK(peak >= 2);
    CHECK(pool.thread_count() == 0);  // joined
}

TEST_CASE("thread_pool - workers block every signal", "[thread_pool]") {
    coring::thread_pool pool(1);
    std::promise<sigset_t> mask;
    auto got = mask.get_future();
    pool.post([&] {
        sigset_t m;
        pthread_sigmask(SIG_BLOCK, nullptr, &m);
        mask.set_value(m);
    });
    const sigset_t m = got.get();
    CHECK(sigismember(&m, SIGINT) == 1);
    CHECK(sigismember(&m, SIGTERM) == 1);
    CHECK(sigismember(&m, SIGCHLD) == 1);
    CHECK(sigismember(&m, SIGUSR1) == 1);
    // The submitting thread's mask is untouched.
    sigset_t mine;
    pthread_sigmask(SIG_BLOCK, nullptr, &mine);
    CHECK(sigismember(&mine, SIGUSR1) == 0);
}

TEST_CASE("thread_pool - queued work can be taken back, running work cannot", "[thread_pool]") {
    coring::thread_pool pool(1);
    std::mutex m;
    std::condition_variable cv;
    bool release = false;
    bool started = false;
    pool.post([&] {
        std::unique_lock lock(m);
        started = true;
        cv.notify_all();
        cv.wait(lock, [&] { return release; });
    });
    {
        std::unique_lock lock(m);
        cv.wait(lock, [&] { return started; });
    }
    struct item : coring::detail::pool_work {
        std::atomic<bool> ran{false};
        item() : pool_work(&run) {}
        static void run(pool_work* w) noexcept { static_cast<item*>(w)->ran = true; }
    } queued;
    pool.submit(queued);  // the only thread is busy: it waits in the queue
    CHECK(pool.try_cancel(queued));
    CHECK_FALSE(pool.try_cancel(queued));  // not queued any more
    {
        std::lock_guard lock(m);
        release = true;
    }
    cv.notify_all();
    pool.shutdown();
    CHECK_FALSE(queued.ran);
}

TEST_CASE("thread_pool - submit after shutdown throws", "[thread_pool]") {
    coring::thread_pool pool(2);
    pool.shutdown();
    pool.shutdown();  // idempotent
    CHECK_THROWS_AS(pool.post([] {}), std::logic_error);
}

TEST_CASE("thread_pool - the default size is asyncio's min(32, cores + 4)", "[thread_pool]") {
    const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
    CHECK(coring::thread_pool::default_max_threads() == std::min<std::size_t>(32, cores + 4));
}

TEST_CASE("thread_pool - default_executor is the loop's one pool", "[thread_pool]") {
    coring::run([]() -> coring::task<> {
        coring::thread_pool& pool = coring::get_running_loop().default_executor();
        CHECK(&pool == &coring::get_running_loop().default_executor());
        co_return;
    }());
}

TEST_CASE("thread_pool - the loop joins its pool when it closes", "[thread_pool]") {
    std::atomic<bool> finished{false};
    coring::run([](std::atomic<bool>& done) -> coring::task<> {
        coring::thread_pool& pool = coring::get_running_loop().default_executor();
        pool.post([&done] {
            std::this_thread::sleep_for(30ms);
            done = true;
        });
        co_return;
    }(finished));
    CHECK(finished);  // run() returned only after the pool was joined
}
