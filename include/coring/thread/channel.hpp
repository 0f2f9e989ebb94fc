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
// One mutex guards the buffer and the two waiter lists; it is never held across a suspension or
// while a task runs. A waiter is the awaiter in its task's frame. Whoever completes a waiter
// (hands it a value, takes its value, or closes the channel) takes it off its list under the
// mutex and posts it to the loop it waits on (scheduler::post: directly on the same loop,
// through the kernel or the inbox from another), where it resumes its task. The post comes after
// the mutex is released (a message through the kernel is a system call), except in close(). A
// cancel request, on the waiter's own loop, takes the mutex too, and finds the waiter either
// listed or completed; a completed waiter stays suspended until its post arrives.
//
// - send: a waiting receiver gets the value directly; else it goes into the buffer; else the
//   sender waits with its value in its frame until a receiver makes room, which is kept for
//   the first waiting sender (FIFO across senders) until it runs and puts its value in, or
//   until the channel closes (channel_closed: the value was not sent).
// - receive: the oldest buffered value; else, once closed, an empty optional; else it waits
//   until a sender hands it a value or the channel closes.
// - Cancellation takes nothing with it (coring::queue's rules). A waiter still on its list is
//   removed and throws cancelled_error: its value stays with the sender, and no value was taken
//   for the receiver. A receiver cancelled after a value was handed to it, before it resumed,
//   passes the value to the next waiting receiver or puts it back at the front of the buffer
//   (which may then hold one more than the capacity until it drains), and throws
//   cancelled_error. A cancelled sender has sent nothing (room kept for it goes to the next
//   waiting sender), so wait_for(ch.send(v), t) that times out has not sent v. FIFO per sender
//   holds for values no receiver gave back; a value given back comes out after the values that
//   other receivers had already taken.
// - close() wakes every waiter: senders throw channel_closed, receivers drain the buffer and
//   then get empty optionals. It is idempotent.
//
// Thread-safety: every member may be used from any thread, and from tasks of any loop. Values
// are moved between threads: a T must not hold anything bound to the sending loop (a task
// handle, a stream, a coring::event). Destroying a channel while tasks wait on it is a bug, as
// for any object a suspended task refers to.

#include <coring/detail/circular_buffer.hpp>
#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/leaf_awaiter.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/errors.hpp>

#include <coroutine>
#include <cstddef>
#include <exception>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace coring {

template <class T>
class channel {
    static_assert(std::is_nothrow_move_constructible_v<T>, "coring::channel<T>: T must be nothrow move constructible");

    // A suspended sender or receiver: on one of the lists while it waits.
    class waiter : public detail::leaf_awaiter<detail::ready_node>, public detail::list_hook<> {
    protected:
        explicit waiter(channel& owner, const operations& ops) noexcept : leaf_awaiter(ops), m_channel(&owner) {}
        waiter(waiter&& other) noexcept : leaf_awaiter(std::move(other)), m_channel(other.m_channel) {}

        // Under the channel's mutex: registers to wait, on this task's loop.
        void enlist(detail::intrusive_list<waiter>& list) noexcept {
            m_home = &loop();
            list.push_back(*this);
        }

        // A cancel request: true if the waiter was still waiting (and is now off its list).
        // Under the mutex, it then calls completed(), which decides for a completed waiter.
        template <class Completed>
        bool leave_list(Completed&& completed) noexcept {
            std::lock_guard lock(m_channel->m_mutex);
            if (this->linked()) {
                this->unlink();
                return true;
            }
            completed();
            return false;
        }

        channel* m_channel;
        detail::scheduler* m_home = nullptr;
        bool m_closed = false;  // completed by close()

        friend class channel;
    };

public:
    class receive_awaiter;

    class send_awaiter final : public waiter {
    public:
        send_awaiter(channel& owner, T&& value) noexcept : waiter(owner, operations_), m_value(std::move(value)) {}
        send_awaiter(send_awaiter&& other) noexcept : waiter(std::move(other)), m_value(std::move(other.m_value)) {}

        [[nodiscard]] bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> frame) {
            if (!this->begin_suspend(frame)) return false;
            waiter* receiver = nullptr;
            {
                std::lock_guard lock(this->m_channel->m_mutex);
                channel& ch = *this->m_channel;
                if (ch.m_closed) {
                    this->m_closed = true;
                    return false;
                }
                if (ch.m_receivers.empty() && !ch.has_room()) {
                    this->enlist(ch.m_senders);
                    this->arm();  // completed from another thread, it resumes only once this loop runs again
                    return true;
                }
                receiver = ch.deliver(std::move(m_value));
            }
            if (receiver != nullptr) post_home(*receiver);
            return false;
        }
        void await_resume() {
            this->throw_if_cancelled();
            if (m_granted) {
                // Room was kept for this value: it goes in now, as this task runs again (so a
                // cancel before this point sends nothing).
                waiter* to_wake = nullptr;
                std::exception_ptr no_memory;
                {
                    std::lock_guard lock(this->m_channel->m_mutex);
                    channel& ch = *this->m_channel;
                    m_granted = false;
                    --ch.m_reserved;
                    if (ch.m_closed) {
                        this->m_closed = true;
                    } else {
                        try {
                            to_wake = ch.deliver(std::move(m_value));  // a waiting receiver
                        } catch (...) {
                            no_memory = std::current_exception();
                            to_wake = ch.grant_room();  // the room goes to the next sender
                        }
                    }
                }
                if (to_wake != nullptr) post_home(*to_wake);
                if (no_memory) std::rethrow_exception(no_memory);
            }
            if (this->m_closed) throw channel_closed();
        }

    private:
        // The cancel wins, and nothing is sent (asyncio's Queue.put): a waiting sender leaves
        // its list; one granted room gives it to the next waiting sender.
        static void on_cancel(detail::ready_node* node) noexcept {
            auto* self = static_cast<send_awaiter*>(node);
            waiter* next_sender = nullptr;
            const bool waiting = self->leave_list([&] {
                if (!self->m_granted) return;  // woken by close()
                self->m_granted = false;
                --self->m_channel->m_reserved;
                next_sender = self->m_channel->grant_room();
            });
            if (next_sender != nullptr) post_home(*next_sender);
            self->take_cancel_request();
            self->mark_cancelled();
            if (waiting) self->wake();
        }
        static void describe(const detail::ready_node*, detail::await_description& out) { out.what = "channel send (full)"; }
        static constexpr detail::ready_node::operations operations_{&waiter::resume_frame, &on_cancel, false, &describe};

        T m_value;
        bool m_granted = false;  // room was kept for this value (under the mutex until it resumes)
        friend class channel;
        friend class receive_awaiter;
    };

    class receive_awaiter final : public waiter {
    public:
        explicit receive_awaiter(channel& owner) noexcept : waiter(owner, operations_) {}
        receive_awaiter(receive_awaiter&& other) noexcept : waiter(std::move(other)) {}

        [[nodiscard]] bool await_ready() const noexcept { return false; }
        bool await_suspend(std::coroutine_handle<> frame) {
            if (!this->begin_suspend(frame)) return false;
            waiter* sender = nullptr;
            {
                std::lock_guard lock(this->m_channel->m_mutex);
                channel& ch = *this->m_channel;
                if (ch.m_buffer.empty()) {
                    if (ch.m_closed) return false;  // closed and drained: the empty optional
                    this->enlist(ch.m_receivers);
                    // Another thread may complete this waiter from here on; it resumes only
                    // once this loop runs again, after the slot is armed.
                    this->arm();
                    return true;
                }
                m_value.emplace(ch.m_buffer.pop_front());
                sender = ch.grant_room();
            }
            if (sender != nullptr) post_home(*sender);
            return false;
        }
        std::optional<T> await_resume() {
            this->throw_if_cancelled();
            return std::move(m_value);
        }

    private:
        // The cancel wins. A value handed over while this waiter was on its way home goes to
        // the next waiting receiver or back to the front of the buffer.
        static void on_cancel(detail::ready_node* node) noexcept {
            auto* self = static_cast<receive_awaiter*>(node);
            waiter* next_receiver = nullptr;
            const bool waiting = self->leave_list([&] {
                if (!self->m_value) return;  // woken by close()
                next_receiver = self->m_channel->give_back(std::move(*self->m_value));
                self->m_value.reset();
            });
            if (next_receiver != nullptr) post_home(*next_receiver);
            self->take_cancel_request();
            self->mark_cancelled();
            if (waiting) self->wake();
        }
        static void describe(const detail::ready_node*, detail::await_description& out) { out.what = "channel receive (empty)"; }
        static constexpr detail::ready_node::operations operations_{&waiter::resume_frame, &on_cancel, false, &describe};

        std::optional<T> m_value;
        friend class channel;
        friend class send_awaiter;
    };

    /// A channel buffering at most `capacity` values (at least 1: std::invalid_argument otherwise).
    explicit channel(std::size_t capacity) : m_capacity(capacity) {
        if (capacity == 0) throw std::invalid_argument("coring::channel: the capacity must be at least 1");
    }
    channel(const channel&) = delete;
    channel& operator=(const channel&) = delete;

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
        m_closed = true;
        // Posted under the mutex: a cancel request racing with this finds the waiter unlinked
        // and leaves it to this completion.
        while (waiter* w = m_senders.pop_front()) {
            w->m_closed = true;
            post_home(*w);
        }
        while (waiter* w = m_receivers.pop_front()) post_home(*w);  // the buffer is empty while receivers wait
    }

    [[nodiscard]] bool closed() const {
        std::lock_guard lock(m_mutex);
        return m_closed;
    }
    /// Values buffered now (another thread may change it at once).
    [[nodiscard]] std::size_t size() const {
        std::lock_guard lock(m_mutex);
        return m_buffer.size();
    }
    [[nodiscard]] std::size_t capacity() const noexcept { return m_capacity; }

private:
    // Under the mutex. Room in the buffer, counting the room kept for granted senders.
    [[nodiscard]] bool has_room() const noexcept { return m_buffer.size() + m_reserved < m_capacity; }

    // Under the mutex, with room or a waiting receiver: the value goes to the first waiting
    // receiver, returned to be posted home, or into the buffer. Throws std::bad_alloc only if
    // the buffer cannot grow, and then the value is untouched.
    waiter* deliver(T&& value) {
        if (waiter* receiver = m_receivers.pop_front()) {
            static_cast<receive_awaiter*>(receiver)->m_value.emplace(std::move(value));
            return receiver;
        }
        m_buffer.push_back(std::move(value));
        return nullptr;
    }

    // Under the mutex, when room may have appeared: the first waiting sender is granted it and
    // returned, to be posted home once the mutex is released; its value goes in when it runs.
    [[nodiscard]] waiter* grant_room() noexcept {
        if (!has_room()) return nullptr;
        waiter* sender = m_senders.pop_front();
        if (sender != nullptr) {
            ++m_reserved;
            static_cast<send_awaiter*>(sender)->m_granted = true;
        }
        return sender;
    }

    // Under the mutex: a value a cancelled receiver was handed. It was the oldest in the
    // channel then; the buffer may hold one more than the capacity until it drains. Cannot
    // report a failure (it runs in a cancel): running out of memory here terminates. Returns
    // the receiver it went to, to be posted home once the mutex is released.
    [[nodiscard]] waiter* give_back(T&& value) noexcept {
        waiter* next = m_receivers.pop_front();
        if (next != nullptr)
            static_cast<receive_awaiter*>(next)->m_value.emplace(std::move(value));
        else
            m_buffer.push_front(std::move(value));
        return next;
    }

    static void post_home(waiter& w) noexcept {
        // The waiter's loop is open: it cannot close while one of its tasks waits here.
        (void)w.m_home->post(w);
    }

    mutable std::mutex m_mutex;
    detail::circular_buffer<T> m_buffer;
    detail::intrusive_list<waiter> m_senders;
    detail::intrusive_list<waiter> m_receivers;
    const std::size_t m_capacity;
    std::size_t m_reserved = 0;  // room kept for granted senders that have not run yet
    bool m_closed = false;
};

}  // namespace coring
