#pragma once
// thread_pool: the small pool of worker threads behind to_thread and resolve (asyncio's default
// executor). Each event loop owns one, created on first use (event_loop::default_executor()) and
// joined when the loop closes.
//
//   loop  ──submit(work)──▶  FIFO (mutex) ──▶ worker threads (at most max_threads, started
//                                             on demand, all signals blocked)
//   worker: work.run() ──▶ the work item reports back itself (to_thread: call_soon_threadsafe)
//
// Work items are intrusive (detail::pool_work) and live in the awaiting frame, so a to_thread
// costs no allocation for the queue; post(f) wraps a callable in a heap item for fire-and-forget
// use. Threads start lazily, one whenever work is queued and no idle thread is waiting for it,
// up to max_threads; they then stay until shutdown (asyncio's ThreadPoolExecutor does the same).
//
// The pool does not know the loop: it is plain threads, a mutex and a condition variable.

#include <coring/errors.hpp>

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <condition_variable>
#include <cstddef>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

namespace coring {

namespace detail {

/// One unit of work for a thread_pool. `m_run` is called on a worker thread; once it returns the
/// pool never touches the item again (so the item may have been destroyed by then, from
/// another thread, as soon as it signalled completion).
struct pool_work {
    using function = void (*)(pool_work*) noexcept;
    explicit pool_work(function run) noexcept : m_run(run) {}
    function m_run;
    pool_work* m_next = nullptr;
    bool m_queued = false;  // guarded by the pool's mutex
};

}  // namespace detail

class thread_pool {
public:
    /// asyncio's default for its executor: min(32, cores + 4) threads. Blocking calls (DNS,
    /// file system metadata, user code) mostly wait, so a few more threads than cores pay off.
    static std::size_t default_max_threads() noexcept {
        const std::size_t cores = std::max(1u, std::thread::hardware_concurrency());
        return std::min<std::size_t>(32, cores + 4);
    }

    explicit thread_pool(std::size_t max_threads = default_max_threads()) : m_max_threads(max_threads == 0 ? 1 : max_threads) {}
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    /// shutdown(): waits for queued and running work.
    ~thread_pool() { shutdown(); }

    /// Any thread. Queues `work`; a worker runs it soon. Throws std::logic_error after
    /// shutdown(), std::system_error if no thread exists and none can be started.
    void submit(detail::pool_work& work) {
        std::unique_lock lock(m_mutex);
        if (m_shutting_down) throw std::logic_error("coring: thread_pool::submit after shutdown");
        work.m_next = nullptr;
        work.m_queued = true;
        if (m_tail != nullptr)
            m_tail->m_next = &work;
        else
            m_head = &work;
        m_tail = &work;
        ++m_queued;
        if (m_queued > m_idle && m_threads.size() < m_max_threads) {
            try {
                start_thread();
            } catch (...) {
                if (!m_threads.empty()) return;  // the running threads will get to it
                unlink(work);
                throw;
            }
        } else {
            m_wake.notify_one();
        }
    }

    /// Any thread. Takes `work` back if no worker has started it: true if it was still queued
    /// (it will never run), false if it runs or ran.
    bool try_cancel(detail::pool_work& work) noexcept {
        std::lock_guard lock(m_mutex);
        if (!work.m_queued) return false;
        unlink(work);
        return true;
    }

    /// Any thread. Runs f() on a worker, fire-and-forget; an exception from f terminates the
    /// process (there is nobody to report it to: use to_thread to get results and errors).
    template <class F>
    void post(F f) {
        auto* item = new posted<F>(std::move(f));
        try {
            submit(*item);
        } catch (...) {
            delete item;
            throw;
        }
    }

    /// Stops accepting work, lets the workers finish what is queued and running, and joins them.
    /// Idempotent. Must not be called from a worker.
    void shutdown() noexcept {
        std::vector<std::thread> threads;
        {
            std::lock_guard lock(m_mutex);
            m_shutting_down = true;
            threads.swap(m_threads);
        }
        m_wake.notify_all();
        for (std::thread& t : threads) t.join();
    }

    [[nodiscard]] std::size_t max_threads() const noexcept { return m_max_threads; }
    /// Worker threads started so far.
    [[nodiscard]] std::size_t thread_count() const {
        std::lock_guard lock(m_mutex);
        return m_threads.size();
    }

private:
    template <class F>
    struct posted final : detail::pool_work {
        explicit posted(F f) : pool_work(&run), m_f(std::move(f)) {}
        static void run(pool_work* base) noexcept {
            auto* self = static_cast<posted*>(base);
            self->m_f();
            delete self;
        }
        F m_f;
    };

    // Called with m_mutex held.
    void unlink(detail::pool_work& work) noexcept {
        detail::pool_work* previous = nullptr;
        for (detail::pool_work* current = m_head; current != nullptr; previous = current, current = current->m_next) {
            if (current != &work) continue;
            (previous != nullptr ? previous->m_next : m_head) = current->m_next;
            if (m_tail == current) m_tail = previous;
            break;
        }
        work.m_next = nullptr;
        work.m_queued = false;
        --m_queued;
    }

    // Called with m_mutex held. Workers block every signal, so that a process-directed signal
    // reaches the loop's thread (whose signalfd handles it) or a thread of the user's, never a
    // worker that would take the default action on the loop's behalf.
    void start_thread() {
        sigset_t all;
        sigset_t previous;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &previous);  // inherited by the new thread
        try {
            m_threads.emplace_back([this] { work_loop(); });
        } catch (...) {
            pthread_sigmask(SIG_SETMASK, &previous, nullptr);
            throw;
        }
        pthread_sigmask(SIG_SETMASK, &previous, nullptr);
    }

    void work_loop() noexcept {
        std::unique_lock lock(m_mutex);
        for (;;) {
            ++m_idle;
            m_wake.wait(lock, [this] { return m_head != nullptr || m_shutting_down; });
            --m_idle;
            if (m_head == nullptr) return;  // shutting down and nothing left to do
            detail::pool_work* work = m_head;
            m_head = work->m_next;
            if (m_head == nullptr) m_tail = nullptr;
            work->m_next = nullptr;
            work->m_queued = false;
            --m_queued;
            lock.unlock();
            work->m_run(work);  // may destroy *work
            lock.lock();
        }
    }

    mutable std::mutex m_mutex;
    std::condition_variable m_wake;
    detail::pool_work* m_head = nullptr;  // FIFO of queued work
    detail::pool_work* m_tail = nullptr;
    std::size_t m_queued = 0;  // items in the FIFO
    std::size_t m_idle = 0;    // workers waiting for work
    std::vector<std::thread> m_threads;
    std::size_t m_max_threads;
    bool m_shutting_down = false;
};

}  // namespace coring
