#pragma once
// channel<T>: a bounded FIFO queue between event loops (threads). Tasks on any loops may send
// and receive; besides run_on it is the only coring object that tasks of different loops may
// share.
//
//   coring::channel<job> jobs(64);
//   co_await jobs.send(job{...});                  // waits while 64 are buffered
//   while (std::optional<job> j = co_await jobs.receive()) handle(*j);   // empty once closed and drained
//   jobs.close();                                  // from any thread
//
// The buffer is a lock-free ring of `capacity` slots, each with a sequence number (Vyukov's
// bounded multi-producer multi-consumer queue): a sender claims the next send position with a
// compare-and-swap and fills its slot, a receiver claims the next receive position and empties
// its slot, and the slot's sequence number tells either side whether the slot is ready for it.
// A send or receive that does not wait touches no lock, and the two sides share only the slots
// they pass values through (CPU per value in bench/README.md, "Several cores").
//
// Waiting takes the mutex, which guards the two waiter lists alone and is never held across a
// suspension. A side that must wait lists itself and raises a flag in the position word the
// other side changes (senders in the receive position, receivers in the send position); the
// other side's compare-and-swap then sees the flag, and after its slot operation it wakes the
// first waiter: takes it off its list and posts it to the loop it waits on (scheduler::post,
// after the mutex is released). A woken waiter sends or receives itself when it runs on its own
// loop, and waits again if another task got there first. The flag is raised by an atomic
// read-modify-write of the same word the other side compares-and-swaps, and the waiter looks at
// the buffer once more after raising it, so a wake-up cannot fall between the two. One wake-up
// per side travels at a time: while a woken waiter has not run, more values (or room) wake no
// one else; when it runs it wakes the next waiter if more is there.
//
// - send: into the buffer; else, once closed, channel_closed (the value was not sent); else
//   it waits until a receiver makes room (or the channel closes).
// - receive: the oldest buffered value; else, once closed, an empty optional; else it waits.
// - One that need not wait does not suspend, and so is not a cancellation point (asyncio's
//   Queue.put and Queue.get, coring::queue).
// - Cancellation takes nothing with it (coring::queue's rules): a waiter has sent or taken
//   nothing until it runs, so a cancelled one leaves its list (or, already woken, passes its
//   wake-up to the next waiter of its kind) and throws cancelled_error. wait_for(ch.send(v), t)
//   that times out has not sent v.
// - FIFO per sender. Across senders a woken sender may find its room taken by a sender that did
//   not wait, and waits again (asyncio's Queue.put behaves alike).
// - close() raises a closed flag in the send position, so no send succeeds after it, and wakes
//   every waiter: senders throw channel_closed, receivers drain the buffer and then get empty
//   optionals. It is idempotent.
//
// Thread-safety: every member may be used from any thread, and from tasks of any loop. Values
// are moved between threads: a T must not hold anything bound to the sending loop (a task
// handle, a stream, a coring::event). Destroying a channel while tasks wait on it is a bug, as
// for any object a suspended task refers to.

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/errors.hpp>

#include <atomic>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <utility>

namespace coring {

template <class T>
class channel {
    static_assert(std::is_nothrow_move_constructible_v<T>, "coring::channel<T>: T must be nothrow move constructible");

    // The position words: a count of slots claimed, and flags in the top bits.
    static constexpr std::size_t closed_flag = std::size_t{1} << (sizeof(std::size_t) * 8 - 1);   // in the send position
    static constexpr std::size_t waiting_flag = std::size_t{1} << (sizeof(std::size_t) * 8 - 2);  // in either: the other side waits
    static constexpr std::size_t position_mask = waiting_flag - 1;

    struct slot {
        // 2 pos when free for the send at pos, 2 pos + 1 once filled by it, 2 (pos + capacity)
        // once the receive at pos emptied it (free for the send a lap later). Doubled so that
        // "filled" is never "free" (with one slot, pos + 1 would be both).
        std::atomic<std::size_t> sequence;
        alignas(T) unsigned char storage[sizeof(T)];

        T& value() noexcept { return *std::launder(reinterpret_cast<T*>(storage)); }
    };

    enum class attempt { done, blocked, closed };

    // A suspended sender or receiver: on its side's list while it waits, then posted home, where
    // it tries again (on_woken). The two awaiters differ only in what they try and which side
    // they are on; the waking and cancelling here and the waiting below serve both.
    class waiter : public detail::leaf_awaiter<detail::ready_node>, public detail::list_hook<> {
    protected:
        explicit waiter(channel& owner, const operations& ops) noexcept : leaf_awaiter(ops), m_channel(&owner) {}
        waiter(waiter&& other) noexcept : leaf_awaiter(std::move(other)), m_channel(other.m_channel) {}

        channel* m_channel;
        detail::scheduler* m_home = nullptr;

        // A woken waiter, run on its loop: it tries again, or waits again. Cancelled (or its loop
        // closing), what it was woken for goes to the next waiter; having succeeded, it wakes the
        // next if there is more for it.
        template <class Awaiter>
        static void on_woken(detail::ready_node* node, detail::ready_node::action what) noexcept {
            auto& self = *static_cast<Awaiter*>(node);
            channel& ch = *self.m_channel;
            waiting_side& side = Awaiter::own_side(ch);
            woken_arrived(side.woken);
            if (what == detail::ready_node::action::discard || self.cancelled()) {
                ch.wake_one(side);
            } else {
                if (ch.try_once(self) == attempt::blocked && ch.wait(self)) return;
                if (self.succeeded() && Awaiter::more_for_next(ch)) ch.wake_one(side);
            }
            Awaiter::resume_frame(node, what);
        }

        // A cancel request, on the waiter's loop. One still listed leaves its list and resumes at
        // once; one woken already is resumed by that wake-up, and on_woken passes it on.
        template <class Awaiter>
        static void on_cancel(detail::ready_node* node) noexcept {
            auto& self = *static_cast<Awaiter*>(node);
            const bool was_listed = self.m_channel->leave(self, Awaiter::own_side(*self.m_channel));
            self.take_cancel_request();
            self.mark_cancelled();
            if (was_listed) self.wake();
        }

        friend class channel;
    };

    // One side's waiters: the list, how many were woken and have not run yet, and the position
    // word the other side compares-and-swaps, which carries their waiting flag.
    struct waiting_side {
        explicit waiting_side(std::atomic<std::size_t>& flag) noexcept : flag_word(flag) {}
        detail::intrusive_list<waiter> list;
        std::atomic<std::size_t> woken{0};  // raised under the mutex
        std::atomic<std::size_t>& flag_word;
    };

public:
    class send_awaiter final : public waiter {
    public:
        send_awaiter(channel& owner, T&& value) noexcept : waiter(owner, operations_), m_value(std::move(value)) {}
        send_awaiter(send_awaiter&& other) noexcept : waiter(std::move(other)), m_value(std::move(other.m_value)) {}

        /// Room (or closed): no suspension, so no cancellation point (asyncio's Queue.put).
        [[nodiscard]] bool await_ready() noexcept { return this->m_channel->try_once(*this) != attempt::blocked; }
        bool await_suspend(std::coroutine_handle<> frame) {
            if (!this->begin_suspend(frame)) return false;  // cancelled before waiting: nothing sent
            this->m_home = &this->loop();
            return this->m_channel->wait(*this);
        }
        void await_resume() {
            this->throw_if_cancelled();
            if (m_outcome == attempt::closed) throw channel_closed();
        }

    private:
        friend class channel;
        friend waiter;

        static waiting_side& own_side(channel& ch) noexcept { return ch.m_senders; }
        static waiting_side& other_side(channel& ch) noexcept { return ch.m_receivers; }
        attempt attempt_once(bool& wake_other) noexcept { return m_outcome = this->m_channel->try_send(m_value, wake_other); }
        [[nodiscard]] bool succeeded() const noexcept { return m_outcome == attempt::done; }
        static bool more_for_next(const channel& ch) noexcept { return ch.size() < ch.m_capacity; }  // room
        static void describe(const detail::ready_node*, detail::await_description& out) { out.what = "channel send (full)"; }
        static constexpr detail::ready_node::operations operations_{&waiter::template on_woken<send_awaiter>, &waiter::template on_cancel<send_awaiter>, false,
                                                                    &describe, detail::wait_kind::queue};

        T m_value;
        attempt m_outcome = attempt::blocked;
    };

    class receive_awaiter final : public waiter {
    public:
        explicit receive_awaiter(channel& owner) noexcept : waiter(owner, operations_) {}
        receive_awaiter(receive_awaiter&& other) noexcept : waiter(std::move(other)) {}

        /// A value (or closed and drained): no suspension, so no cancellation point (asyncio's
        /// Queue.get).
        [[nodiscard]] bool await_ready() noexcept { return this->m_channel->try_once(*this) != attempt::blocked; }
        bool await_suspend(std::coroutine_handle<> frame) {
            if (!this->begin_suspend(frame)) return false;  // cancelled before waiting: nothing taken
            this->m_home = &this->loop();
            return this->m_channel->wait(*this);
        }
        std::optional<T> await_resume() {
            this->throw_if_cancelled();
            return std::move(m_value);
        }

    private:
        friend class channel;
        friend waiter;

        static waiting_side& own_side(channel& ch) noexcept { return ch.m_receivers; }
        static waiting_side& other_side(channel& ch) noexcept { return ch.m_senders; }
        attempt attempt_once(bool& wake_other) noexcept { return this->m_channel->try_receive(m_value, wake_other); }
        [[nodiscard]] bool succeeded() const noexcept { return m_value.has_value(); }
        static bool more_for_next(const channel& ch) noexcept { return ch.size() > 0; }  // values
        static void describe(const detail::ready_node*, detail::await_description& out) { out.what = "channel receive (empty)"; }
        static constexpr detail::ready_node::operations operations_{&waiter::template on_woken<receive_awaiter>, &waiter::template on_cancel<receive_awaiter>,
                                                                    false, &describe, detail::wait_kind::queue};

        std::optional<T> m_value;
    };

    /// A channel buffering at most `capacity` values (at least 1: std::invalid_argument otherwise).
    explicit channel(std::size_t capacity) : m_capacity(capacity), m_index_mask(capacity > 1 && (capacity & (capacity - 1)) == 0 ? capacity - 1 : 0) {
        if (capacity == 0) throw std::invalid_argument("coring::channel: the capacity must be at least 1");
        if (capacity > position_mask / 4) throw std::invalid_argument("coring::channel: the capacity is too large");
        m_slots = std::make_unique<slot[]>(capacity);
        for (std::size_t i = 0; i < capacity; ++i) m_slots[i].sequence.store(2 * i, std::memory_order_relaxed);
    }
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;
    ~channel() {
        const std::size_t end = m_send_position.load(std::memory_order_acquire) & position_mask;
        for (std::size_t pos = m_receive_position.load(std::memory_order_acquire) & position_mask; pos != end; ++pos) slot_of(pos).value().~T();
    }

    /// co_await send(v): buffers v, waiting while the channel is full; throws channel_closed
    /// once the channel is closed (v is then not sent).
    [[nodiscard]] send_awaiter send(T value) noexcept { return send_awaiter(*this, std::move(value)); }
    /// co_await receive(): the oldest value, waiting while the channel is empty; an empty
    /// optional once the channel is closed and drained.
    [[nodiscard]] receive_awaiter receive() noexcept { return receive_awaiter(*this); }

    /// Any thread: no more sends; waiting senders throw channel_closed, waiting receivers get
    /// an empty optional. Buffered values can still be received. Idempotent.
    void close() noexcept {
        std::lock_guard lock(m_mutex);
        m_send_position.fetch_or(closed_flag, std::memory_order_acq_rel);
        // Posted under the mutex (close is rare): a cancel request racing with this finds the
        // waiter unlisted and leaves it to this wake-up. Each tries again, and finds it closed.
        for (waiting_side* side : {&m_senders, &m_receivers}) {
            side->flag_word.fetch_and(~waiting_flag, std::memory_order_acq_rel);
            while (waiter* w = side->list.pop_front()) {
                side->woken.fetch_add(1, std::memory_order_relaxed);
                post_home(*w);
            }
        }
    }

    [[nodiscard]] bool closed() const noexcept { return (m_send_position.load(std::memory_order_acquire) & closed_flag) != 0; }
    /// Values buffered now, counting those being written or read (another thread may change
    /// it at once).
    [[nodiscard]] std::size_t size() const noexcept {
        const std::size_t received = m_receive_position.load(std::memory_order_acquire) & position_mask;
        const std::size_t sent = m_send_position.load(std::memory_order_acquire) & position_mask;
        return sent > received ? sent - received : 0;
    }
    [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }

private:
    // ---- the buffer (any thread, no lock)

    // Moves value into the buffer (done), or leaves it: blocked (full) or closed. Done with the
    // waiting flag up: wake_receiver is set, for the caller to wake one once it holds no lock.
    attempt try_send(T& value, bool& wake_receiver) noexcept {
        std::size_t word = m_send_position.load(std::memory_order_relaxed);
        for (unsigned spins = 0;; ++spins) {
            if ((word & closed_flag) != 0) return attempt::closed;
            const std::size_t pos = word & position_mask;
            slot& s = slot_of(pos);
            const std::size_t sequence = s.sequence.load(std::memory_order_acquire);
            if (sequence == 2 * pos) {
                // The flags stay as they are; a receiver raising its flag meanwhile fails this.
                if (m_send_position.compare_exchange_weak(word, word + 1, std::memory_order_relaxed, std::memory_order_relaxed)) {
                    ::new (static_cast<void*>(s.storage)) T(std::move(value));
                    s.sequence.store(2 * pos + 1, std::memory_order_release);
                    wake_receiver = (word & waiting_flag) != 0;
                    return attempt::done;
                }
            } else if (static_cast<std::ptrdiff_t>(sequence - 2 * pos) < 0) {
                // The slot still holds the value of the send a lap before: full, unless a
                // receiver has claimed it and is moving it out.
                const std::size_t received = m_receive_position.load(std::memory_order_acquire) & position_mask;
                if (received + m_capacity <= pos) return attempt::blocked;
                pause(spins);
                word = m_send_position.load(std::memory_order_relaxed);
            } else {
                word = m_send_position.load(std::memory_order_relaxed);  // another sender took pos
            }
        }
    }

    // Moves the oldest value into `out` (done), or: closed (and drained), or blocked (empty).
    // Done with the waiting flag up: wake_sender is set, as for try_send.
    attempt try_receive(std::optional<T>& out, bool& wake_sender) noexcept {
        std::size_t word = m_receive_position.load(std::memory_order_relaxed);
        for (unsigned spins = 0;; ++spins) {
            const std::size_t pos = word & position_mask;
            slot& s = slot_of(pos);
            const std::size_t sequence = s.sequence.load(std::memory_order_acquire);
            if (sequence == 2 * pos + 1) {
                if (m_receive_position.compare_exchange_weak(word, word + 1, std::memory_order_relaxed, std::memory_order_relaxed)) {
                    out.emplace(std::move(s.value()));
                    s.value().~T();
                    s.sequence.store(2 * (pos + m_capacity), std::memory_order_release);
                    wake_sender = (word & waiting_flag) != 0;
                    return attempt::done;
                }
            } else if (static_cast<std::ptrdiff_t>(sequence - (2 * pos + 1)) < 0) {
                // Not filled yet: empty, unless a sender has claimed the slot and is writing it.
                const std::size_t sent = m_send_position.load(std::memory_order_acquire);
                if ((sent & position_mask) == pos) return (sent & closed_flag) != 0 ? attempt::closed : attempt::blocked;
                pause(spins);
                word = m_receive_position.load(std::memory_order_relaxed);
            } else {
                word = m_receive_position.load(std::memory_order_relaxed);  // another receiver took pos
            }
        }
    }

    // A mask for the usual power-of-two capacity: a 64-bit division costs as much as the rest of
    // a send.
    slot& slot_of(std::size_t pos) noexcept { return m_slots[m_index_mask != 0 ? pos & m_index_mask : pos % m_capacity]; }

    // Another thread is between claiming a slot and filling or emptying it: a few instructions,
    // unless it was preempted there.
    static void pause(unsigned spins) noexcept {
        if (spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        } else {
            std::this_thread::yield();
        }
    }

    // ---- waiting and waking (Awaiter: send_awaiter or receive_awaiter)

    // Any thread, no lock: one attempt; the other side's first waiter is woken if this attempt's
    // compare-and-swap saw its flag.
    template <class Awaiter>
    attempt try_once(Awaiter& w) noexcept {
        bool wake_other = false;
        const attempt outcome = w.attempt_once(wake_other);
        if (wake_other) wake_one(Awaiter::other_side(*this));
        return outcome;
    }

    // The waiter's loop, after a blocked attempt: true if it now waits (listed, its flag raised,
    // armed); false if the last attempt succeeded (or found the channel closed).
    template <class Awaiter>
    bool wait(Awaiter& w) noexcept {
        waiting_side& side = Awaiter::own_side(*this);
        bool wake_other = false;
        {
            std::lock_guard lock(m_mutex);
            side.flag_word.fetch_or(waiting_flag, std::memory_order_acq_rel);
            // From here the other side's change sees the flag and wakes the first waiter; a
            // change made before is seen by this last attempt. If it succeeds, the flag stays
            // up: at worst one spurious wake-up.
            if (w.attempt_once(wake_other) == attempt::blocked) {
                side.list.push_back(w);
                w.arm();
                return true;
            }
        }
        if (wake_other) wake_one(Awaiter::other_side(*this));
        return false;
    }

    // True if the waiter was listed (and now is not).
    bool leave(waiter& w, waiting_side& side) noexcept {
        std::lock_guard lock(m_mutex);
        if (!w.linked()) return false;
        w.unlink();
        if (side.list.empty()) side.flag_word.fetch_and(~waiting_flag, std::memory_order_acq_rel);
        return true;
    }

    // Wakes the first waiter of a side, unless one woken before has not run yet: that one, when
    // it runs, wakes the next if there is more for it (on_woken), so one wake-up at a time
    // crosses threads however many values arrive meanwhile, and the values that arrive while
    // it travels cost no lock. The caller has just changed the buffer; the fence pairs with
    // woken_arrived's: either the woken waiter sees that change, or this sees it arrived.
    void wake_one(waiting_side& side) noexcept {
        std::atomic_thread_fence(std::memory_order_seq_cst);
        if (side.woken.load(std::memory_order_relaxed) != 0) return;
        waiter* w = nullptr;
        {
            std::lock_guard lock(m_mutex);
            if (side.woken.load(std::memory_order_relaxed) != 0) return;
            w = side.list.pop_front();
            if (w != nullptr) side.woken.fetch_add(1, std::memory_order_relaxed);
            if (side.list.empty()) side.flag_word.fetch_and(~waiting_flag, std::memory_order_acq_rel);
        }
        // After the mutex: a message through the kernel is a system call. The waiter stays
        // suspended until this arrives, even if a cancel request comes first.
        if (w != nullptr) post_home(*w);
    }

    // A woken waiter, as it runs on its loop, before it looks at the buffer.
    static void woken_arrived(std::atomic<std::size_t>& woken) noexcept {
        woken.fetch_sub(1, std::memory_order_relaxed);
        std::atomic_thread_fence(std::memory_order_seq_cst);
    }

    static void post_home(waiter& w) noexcept {
        // The waiter's loop is open: it cannot close while one of its tasks waits here.
        (void)w.m_home->post(w);
    }

    // Each word on its own cache line: senders change the first, receivers the second.
    alignas(64) std::atomic<std::size_t> m_send_position{0};     // + closed_flag, + waiting_flag: receivers wait
    alignas(64) std::atomic<std::size_t> m_receive_position{0};  // + waiting_flag: senders wait
    alignas(64) std::unique_ptr<slot[]> m_slots;
    const std::size_t m_capacity;
    const std::size_t m_index_mask;  // capacity - 1 for a power of two (but 1), else 0
    mutable std::mutex m_mutex;  // the lists below
    waiting_side m_senders{m_receive_position};
    waiting_side m_receivers{m_send_position};
};

}  // namespace coring
