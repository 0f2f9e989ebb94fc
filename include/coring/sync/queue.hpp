#pragma once
// coring::queue<T>, coring::priority_queue<T, Compare>, coring::lifo_queue<T> (asyncio.Queue,
// PriorityQueue, LifoQueue, including Python 3.13's shutdown): hand items between tasks.
//
//   coring::queue<job> jobs(100);                 // at most 100 items; 0 = unbounded
//   co_await jobs.put(std::move(j));              // waits while the queue is full
//   job j = co_await jobs.get();                  // waits while it is empty
//   ... jobs.task_done();                         // one per item taken
//   co_await jobs.join();                         // until every item put has been task_done()
//   jobs.shutdown();                              // put() throws queue_shut_down from now on;
//                                                 // get() does once the queue is empty
//
// Move-only items work: put(T) moves the item in, get() moves it out, and try_put / put_nowait
// take the item from the caller only when they succeed.
//
// Fair, first-in first-out among the waiters: a put() with getters waiting hands its item
// straight to the first of them (moved, never copied; size() does not count it), and a get()
// that makes room in a full queue reserves that room for the first waiting putter, which puts
// its item itself when it resumes (full() counts reserved room as taken). So tasks that call
// put() or get() meanwhile cannot overtake a waiter. get() on a non-empty queue and put() on a
// queue with room do not suspend.
//
// Cancellation (nothing is lost or duplicated):
//   - a getter cancelled while it waits takes nothing; one cancelled after an item was handed to
//     it, but before it resumed, passes the item to the next waiting getter, or puts it back at
//     the head of the queue (LIFO: the bottom; priority: in its place), and throws
//     cancelled_error;
//   - a putter cancelled while it waits, or after room was reserved for it but before it
//     resumed, puts nothing (its item is destroyed with the awaiter) and throws
//     cancelled_error; reserved room passes to the next waiting putter. So a put() that throws
//     has not put, and wait_for(q.put(x), t) that times out has not put x (asyncio alike).
//
// Differences from asyncio: size() does not count an item that was handed to a waiting getter
// and not yet returned by its get(). If such a getter is cancelled, its item goes back into the
// queue even if that makes the queue hold one more than maxsize for a while (putters wait until
// it drains). try_put() returns false where asyncio's put_nowait() raises QueueFull, and
// try_get() returns an empty optional where get_nowait() raises QueueEmpty or QueueShutDown;
// put_nowait() and get_nowait() are there too and throw queue_full / queue_empty /
// queue_shut_down. task_done() called too often throws invalid_state_error (asyncio: ValueError).
// priority_queue yields the smallest item under Compare first, as asyncio's heapq does (unlike
// std::priority_queue, which yields the largest).
//
// Thread-safety: loop-bound. A queue serves the tasks of one event loop; between loops use
// coring::channel (thread/channel.hpp). In debug mode, waking its waiters from another thread, or
// waiting on it from a second loop, is reported with both thread ids, and the process aborts (the
// call cannot throw).

#include <coring/config.hpp>
#include <coring/detail/circular_buffer.hpp>
#include <coring/detail/wait_queue.hpp>
#include <coring/errors.hpp>

#include <algorithm>
#include <coroutine>
#include <cstddef>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring {

namespace detail {

inline constexpr char queue_put_text[] = "queue.put";
inline constexpr char queue_get_text[] = "queue.get";

// ---------------------------------------------------------------------- storage policies
// What the three queue flavours differ in: the order items leave in, where an item that a
// cancelled getter gives back goes (where it would be had it never left the queue), and the
// name used in error reports.

template <class T>
class fifo_storage {
public:
    static constexpr const char* name = "coring::queue";

    void push(T&& item) { m_items.push_back(std::move(item)); }
    T pop() noexcept { return m_items.pop_front(); }
    /// It was put before everything in the queue now: it leaves first.
    void push_returned(T&& item) { m_items.push_front(std::move(item)); }
    [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }
    [[nodiscard]] bool empty() const noexcept { return m_items.empty(); }

private:
    circular_buffer<T> m_items;  // not std::deque: no allocation in a steady state
};

template <class T>
class lifo_storage {
public:
    static constexpr const char* name = "coring::lifo_queue";

    void push(T&& item) { m_items.push_back(std::move(item)); }
    T pop() {
        T item = std::move(m_items.back());
        m_items.pop_back();
        return item;
    }
    /// It was put before everything in the queue now: it goes to the bottom of the stack.
    void push_returned(T&& item) { m_items.insert(m_items.begin(), std::move(item)); }
    [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }
    [[nodiscard]] bool empty() const noexcept { return m_items.empty(); }

private:
    std::vector<T> m_items;
};

/// A binary heap whose top is the smallest item under Compare (asyncio's heapq order).
template <class T, class Compare>
class priority_storage {
public:
    static constexpr const char* name = "coring::priority_queue";

    priority_storage() = default;
    explicit priority_storage(Compare compare) : m_compare(std::move(compare)) {}

    void push(T&& item) {
        m_items.push_back(std::move(item));
        std::push_heap(m_items.begin(), m_items.end(), greater());
    }
    T pop() {
        std::pop_heap(m_items.begin(), m_items.end(), greater());
        T item = std::move(m_items.back());
        m_items.pop_back();
        return item;
    }
    void push_returned(T&& item) { push(std::move(item)); }
    [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }
    [[nodiscard]] bool empty() const noexcept { return m_items.empty(); }

private:
    // std's heap algorithms keep the largest on top; inverting the order keeps the smallest.
    auto greater() {
        return [this](const T& a, const T& b) { return m_compare(b, a); };
    }

    std::vector<T> m_items;
    [[no_unique_address]] Compare m_compare;
};

}  // namespace detail

/// The queue machinery; use queue<T>, priority_queue<T, Compare> or lifo_queue<T>.
template <class T, class Storage>
class basic_queue {
    static_assert(std::is_nothrow_move_constructible_v<T>, "coring queues hand items over by moving them: T's move constructor must not throw");

public:
    using value_type = T;
    class put_awaiter;
    class get_awaiter;

    /// `maxsize` 0 means unbounded.
    explicit basic_queue(std::size_t maxsize = 0) : m_full_at(maxsize == 0 ? unbounded : maxsize) {}
    basic_queue(std::size_t maxsize, Storage storage) : m_items(std::move(storage)), m_full_at(maxsize == 0 ? unbounded : maxsize) {}
    basic_queue(const basic_queue&) = delete;
    basic_queue& operator=(const basic_queue&) = delete;
    /// Reports (stderr, and an assertion in debug builds) if tasks still wait on the queue.
    ~basic_queue() { detail::wait_queue::abandon_all(Storage::name, {&m_getters, &m_putters, &m_joiners}); }

    // ------------------------------------------------------------------ putting

    /// Awaitable: puts `item`, waiting while the queue is full. Throws queue_shut_down if the
    /// queue is (or, while this waits, gets) shut down; the item is then not put.
    [[nodiscard]] put_awaiter put(T item) noexcept { return put_awaiter(*this, std::move(item)); }

    /// Puts `item` if the queue has room (not counting room reserved for a waiting putter); false
    /// if it is full (the item is then left untouched).
    /// Throws queue_shut_down if the queue was shut down.
    bool try_put(T&& item) {
        throw_if_shut_down();
        if (full()) return false;
        deliver(std::move(item));
        return true;
    }
    bool try_put(const T& item) {
        throw_if_shut_down();
        if (full()) return false;
        deliver(T(item));
        return true;
    }

    /// asyncio's put_nowait: as try_put, but throws queue_full when full.
    void put_nowait(T&& item) {
        if (!try_put(std::move(item))) throw queue_full();
    }
    void put_nowait(const T& item) {
        if (!try_put(item)) throw queue_full();
    }

    // ------------------------------------------------------------------ getting

    /// Awaitable: takes an item, waiting while the queue is empty. Throws queue_shut_down if the
    /// queue is empty and shut down (or gets shut down while this waits).
    [[nodiscard]] get_awaiter get() noexcept { return get_awaiter(*this); }

    /// Takes an item if there is one; never suspends, never throws queue errors.
    std::optional<T> try_get() {
        if (m_items.empty()) return std::nullopt;
        return std::optional<T>(take());
    }

    /// asyncio's get_nowait: takes an item or throws queue_empty (queue_shut_down if the queue
    /// is shut down and empty).
    T get_nowait() {
        if (m_items.empty()) throw_empty();
        return take();
    }

    // ------------------------------------------------------------------ completion tracking

    /// Marks one item taken from the queue as processed. Throws invalid_state_error when
    /// called more times than items were put.
    void task_done() {
        if (m_unfinished == 0) throw invalid_state_error("coring: queue::task_done() called more times than items were put");
        if (--m_unfinished == 0) finish_all();
    }

    /// Awaitable: waits until every item put so far has been marked task_done() (returns at
    /// once if none is outstanding).
    [[nodiscard]] detail::flag_awaiter join() noexcept { return detail::flag_awaiter(m_joiners, &all_done, this, Storage::name, "queue.join", detail::wait_kind::queue); }

    // ------------------------------------------------------------------ shutting down

    /// Shuts the queue down (Python 3.13's Queue.shutdown): put() throws queue_shut_down from now
    /// on, waiting putters and getters wake and throw it, and get() throws it once the queue is
    /// empty. With `immediate`, the items still in the queue are discarded (each counts as
    /// task_done, so join() returns once the items already taken are done).
    void shutdown(bool immediate = false) {
        m_shut_down = true;
        if (immediate) {
            m_discard_returned = true;
            while (!m_items.empty()) {
                (void)m_items.pop();
                if (m_unfinished > 0) --m_unfinished;
            }
            if (m_unfinished == 0) finish_all();
        }
        // Woken without an item (getters) or without having put theirs (putters): they throw.
        m_getters.grant_all();
        m_putters.grant_all();
    }

    [[nodiscard]] bool is_shut_down() const noexcept { return m_shut_down; }

    // ------------------------------------------------------------------ observers

    /// Items in the queue (not counting one handed to a getter that has not resumed yet).
    [[nodiscard]] std::size_t size() const noexcept { return m_items.size(); }
    [[nodiscard]] bool empty() const noexcept { return m_items.empty(); }
    /// True if put() would wait: the items and the room reserved for woken putters reach
    /// maxsize. Never true for an unbounded queue.
    [[nodiscard]] bool full() const noexcept { return m_items.size() + m_reserved >= m_full_at; }
    [[nodiscard]] std::size_t maxsize() const noexcept { return m_full_at == unbounded ? 0 : m_full_at; }

private:
    static constexpr std::size_t unbounded = std::numeric_limits<std::size_t>::max();

    void throw_if_shut_down() const {
        if (m_shut_down) throw queue_shut_down();
    }

    [[noreturn]] CORING_NOINLINE void throw_empty() const {
        if (m_shut_down) throw queue_shut_down();
        throw queue_empty();
    }

    /// A new item enters the queue (there is room, and the queue is not shut down): straight
    /// to the first waiting getter, or into the container.
    CORING_ALWAYS_INLINE void deliver(T&& item) {
        if (m_getters.empty())
            m_items.push(std::move(item));  // may throw (allocation): then nothing changed
        else
            hand_to_first_getter(std::move(item));
        ++m_unfinished;
    }

    /// join()'s readiness: every item put was task_done().
    static bool all_done(const void* self) noexcept { return static_cast<const basic_queue*>(self)->m_unfinished == 0; }

    // Out of line: it keeps the fast paths of put and get small enough to inline.
    CORING_NOINLINE void hand_to_first_getter(T&& item) noexcept {
        get_awaiter* getter = m_getters.template front<get_awaiter>();
        getter->hand(std::move(item));
        m_getters.grant(*getter);
    }

    /// Takes the next item (the queue is not empty), then reserves the room for the first
    /// waiting putter.
    T take() {
        T item = m_items.pop();
        if (!m_putters.empty()) admit_putters();
        return item;
    }

    // While putters wait and there is room: the first one is granted a reserved place, and puts
    // its item itself when it resumes (put_awaiter::put_admitted). Its item stays with it until
    // then, so a cancel that arrives first still wins.
    CORING_NOINLINE void admit_putters() noexcept {
        while (!m_putters.empty() && !full()) {
            auto* putter = m_putters.template front<put_awaiter>();
            ++m_reserved;
            putter->m_admitted = true;
            m_putters.grant(*putter);
        }
    }

    // An admitted putter gives its reserved place up: it resumed, or it was cancelled first.
    void release_reservation() noexcept {
        --m_reserved;
        if (!m_putters.empty()) admit_putters();
    }

    /// An item a cancelled getter gives back (already counted in m_unfinished). Called from
    /// on_cancel, which cannot report a failure: running out of memory here terminates.
    void give_back(T&& item) noexcept {
        if (m_discard_returned) {  // shut down immediately meanwhile: discarded, as the rest were
            if (m_unfinished > 0 && --m_unfinished == 0) finish_all();
            return;
        }
        if (m_getters.empty())
            m_items.push_returned(std::move(item));
        else
            hand_to_first_getter(std::move(item));
    }

    void finish_all() noexcept { m_joiners.grant_all(); }

    Storage m_items;
    std::size_t m_full_at;  // the size at which it is full (maxsize, or `unbounded`): full() is one comparison
    std::size_t m_reserved = 0;  // room granted to putters that have not resumed yet
    std::size_t m_unfinished = 0;  // items put and not yet task_done()
    detail::wait_queue m_getters;  // waiting only while m_items is empty
    detail::wait_queue m_putters;  // waiting only while full() (so getters may wait too, with all room reserved)
    detail::wait_queue m_joiners;  // waiting only while m_unfinished != 0
    bool m_shut_down = false;
    bool m_discard_returned = false;  // after shutdown(true)
};

// ---------------------------------------------------------------------- put

/// co_await q.put(item). Holds the item until it enters the queue. Movable before it is awaited.
template <class T, class Storage>
class basic_queue<T, Storage>::put_awaiter final : public detail::sync_waiter {
public:
    put_awaiter(basic_queue& q, T&& item) noexcept : m_queue(&q), m_item(std::move(item)) {}
    put_awaiter(put_awaiter&& other) noexcept : sync_waiter(std::move(other)), m_queue(other.m_queue), m_item(std::move(other.m_item)) {}
    /// A frame destroyed after room was reserved for it (and before it resumed) frees the room.
    /// Waiting putters are not granted from here (a frame may be destroyed as its loop closes):
    /// the next get() admits them.
    // This and the other members on every put's path are always inlined: g++ calls them out of
    // line in a large translation unit, which costs a put and get 30%.
    CORING_ALWAYS_INLINE ~put_awaiter() {
        if (m_admitted && m_phase == phase::granted) --m_queue->m_reserved;
    }

    /// Puts at once when there is room; throws queue_shut_down when the queue is shut down.
    [[nodiscard]] CORING_ALWAYS_INLINE bool await_ready() {
        m_queue->throw_if_shut_down();
        if (m_queue->full()) return false;
        m_queue->deliver(std::move(m_item));
        return true;  // the phase stays idle: await_resume reads that as "put"
    }

    std::coroutine_handle<> await_suspend(std::coroutine_handle<> frame) { return suspend_on(m_queue->m_putters, frame, operations_); }

    CORING_ALWAYS_INLINE void await_resume() {
        if (m_phase == phase::idle) return;  // put without waiting
        finish_wait(Storage::name);
        if (!m_admitted) throw queue_shut_down();  // woken by shutdown()
        put_admitted();
    }

private:
    friend class basic_queue;

    // Resumed into the room reserved for it: the item goes in now (to a getter that waits
    // meanwhile, or into the container). A shutdown since the grant wins, as in asyncio, whose
    // woken putter calls put_nowait.
    void put_admitted() {
        m_admitted = false;
        basic_queue& q = *m_queue;
        --q.m_reserved;
        if (q.m_shut_down) throw queue_shut_down();  // shutdown() woke every other putter
        try {
            q.deliver(std::move(m_item));  // may throw (allocation): then nothing was put
        } catch (...) {
            q.admit_putters();  // the room is free again
            throw;
        }
        // Handed to a getter, the reserved room is free again: the next putter's.
        if (!q.m_putters.empty()) q.admit_putters();
    }

    static void on_cancel(detail::ready_node* node) noexcept {
        auto& self = from_node<put_awaiter>(node);
        // Waiting, or granted (room reserved, or woken by shutdown) and not resumed yet: the
        // cancel wins and the item goes with the awaiter; reserved room passes on.
        self.cancel_wait([&self] {
            if (!self.m_admitted) return;
            self.m_admitted = false;
            self.m_queue->release_reservation();
        });
    }
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe_as<detail::queue_put_text>, ::coring::detail::wait_kind::queue};

    basic_queue* m_queue;
    T m_item;
    bool m_admitted = false;  // granted with room reserved for its item
};

// ---------------------------------------------------------------------- get

/// co_await q.get(). A putter hands its item straight into the awaiter's slot. Movable before it
/// is awaited.
template <class T, class Storage>
class basic_queue<T, Storage>::get_awaiter final : public detail::sync_waiter {
public:
    explicit get_awaiter(basic_queue& q) noexcept : m_queue(&q) {}
    get_awaiter(get_awaiter&& other) noexcept : sync_waiter(std::move(other)), m_queue(other.m_queue) {}

    /// No suspension when an item is there (or when the queue is shut down and empty:
    /// await_resume throws).
    [[nodiscard]] bool await_ready() const noexcept { return !m_queue->m_items.empty() || m_queue->m_shut_down; }

    std::coroutine_handle<> await_suspend(std::coroutine_handle<> frame) { return suspend_on(m_queue->m_getters, frame, operations_); }

    // Always inlined: on every get's path, and g++ calls it out of line in a large translation unit.
    CORING_ALWAYS_INLINE T await_resume() {
        if (m_phase != phase::idle) {  // it suspended
            finish_wait(Storage::name);
            if (m_handed) return take_handed();
        }
        // Not suspended (an item was there), or woken by shutdown (then it throws).
        if (m_queue->m_items.empty()) m_queue->throw_empty();
        return m_queue->take();
    }

private:
    friend class basic_queue;

    void hand(T&& item) noexcept { m_handed.emplace(std::move(item)); }

    /// The item a putter handed over; the slot is empty again.
    T take_handed() noexcept {
        T item = std::move(*m_handed);
        m_handed.reset();
        return item;
    }

    static void on_cancel(detail::ready_node* node) noexcept {
        auto& self = from_node<get_awaiter>(node);
        // Handed an item in this iteration but not resumed yet: the item goes to the next
        // getter or back into the queue. (Woken by shutdown: there is none.)
        self.cancel_wait([&self] {
            if (self.m_handed) self.m_queue->give_back(self.take_handed());
        });
    }
    static constexpr operations operations_{&resume_frame, &on_cancel, false, &describe_as<detail::queue_get_text>, ::coring::detail::wait_kind::queue};

    basic_queue* m_queue;
    // The item handed over by a putter (or by a cancelled getter's give_back) while it waited.
    // It goes with the awaiter if the getter never takes it (its queue or its frame was
    // destroyed first).
    std::optional<T> m_handed;
};

/// asyncio.Queue: first in, first out.
template <class T>
class queue : public basic_queue<T, detail::fifo_storage<T>> {
public:
    /// `maxsize` 0 means unbounded.
    explicit queue(std::size_t maxsize = 0) : basic_queue<T, detail::fifo_storage<T>>(maxsize) {}
};

/// asyncio.LifoQueue: last in, first out.
template <class T>
class lifo_queue : public basic_queue<T, detail::lifo_storage<T>> {
public:
    /// `maxsize` 0 means unbounded.
    explicit lifo_queue(std::size_t maxsize = 0) : basic_queue<T, detail::lifo_storage<T>>(maxsize) {}
};

/// asyncio.PriorityQueue: the smallest item under Compare first (with the default std::less,
/// `std::pair{1, "urgent"}` leaves before `std::pair{5, "later"}`).
template <class T, class Compare = std::less<T>>
class priority_queue : public basic_queue<T, detail::priority_storage<T, Compare>> {
    using base = basic_queue<T, detail::priority_storage<T, Compare>>;

public:
    /// `maxsize` 0 means unbounded.
    explicit priority_queue(std::size_t maxsize = 0, Compare compare = Compare())
        : base(maxsize, detail::priority_storage<T, Compare>(std::move(compare))) {}
};

}  // namespace coring
