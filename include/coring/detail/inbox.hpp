#pragma once
// The loop's thread-safe inbox, behind call_soon_threadsafe.
//
// Other threads push callback nodes under a mutex. The loop takes the whole batch at the start
// of an iteration. A loop about to block in the kernel first marks itself asleep (under the same
// mutex, so a push either lands before the check or sees the mark); a push that sees the mark
// writes the eventfd once, and the multishot poll on that eventfd completes the loop's wait. A
// busy loop is never woken through the kernel: it finds the batch on its next iteration.
//
// The poll is the loop's model multishot operation: whenever a CQE arrives without
// IORING_CQE_F_MORE (the kernel ends multishot requests when its completion queue is full, and
// kernels before 5.13 only do single shots) it is armed again (detail/internal_operation.hpp).

#include <coring/detail/internal_operation.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ring.hpp>
#include <coring/errors.hpp>

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <atomic>
#include <mutex>

namespace coring::detail {

class inbox final : public internal_operation {
public:
    inbox() : internal_operation(&on_wake) {
        m_eventfd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (m_eventfd < 0) throw_errno(errno, "coring: eventfd for call_soon_threadsafe");
    }
    inbox(const inbox&) = delete;
    inbox& operator=(const inbox&) = delete;
    ~inbox() { ::close(m_eventfd); }

    /// Any thread. Takes ownership of the node, which the loop runs on its next iteration, and
    /// returns true; false once the loop has closed its inbox (the node stays the caller's).
    [[nodiscard]] bool try_push(ready_node* node) noexcept {
        bool wake = false;
        {
            std::lock_guard lock(m_mutex);
            if (m_closed) return false;
            m_queue.push(node);
            m_has_items.store(true, std::memory_order_relaxed);
            if (m_sleeping && !m_wake_sent) wake = m_wake_sent = true;
        }
        if (wake) {
            const eventfd_t one = 1;
            [[maybe_unused]] int r = ::eventfd_write(m_eventfd, one);
        }
        return true;
    }

    /// Loop thread, while closing: refuses every later push. Under the mutex, so a message either
    /// lands before (and the close's take() finds it) or is refused and stays its sender's: none
    /// is lost between the two.
    void close() noexcept {
        std::lock_guard lock(m_mutex);
        m_closed = true;
    }

    /// Loop thread: a cheap hint that take() has work.
    [[nodiscard]] bool has_items() const noexcept { return m_has_items.load(std::memory_order_relaxed); }

    /// Loop thread: everything pushed so far.
    ready_queue take() noexcept {
        std::lock_guard lock(m_mutex);
        m_has_items.store(false, std::memory_order_relaxed);
        return m_queue.take_all();
    }

    /// Loop thread, before blocking in the kernel: false if there is work, so do not block.
    bool prepare_to_sleep() noexcept {
        std::lock_guard lock(m_mutex);
        if (!m_queue.empty()) return false;
        m_sleeping = true;
        m_wake_sent = false;
        return true;
    }

    /// Loop thread, after the kernel returned.
    void woke() noexcept {
        std::lock_guard lock(m_mutex);
        m_sleeping = false;
    }

    /// Loop thread: (re)arms the poll on the eventfd.
    void arm(ring& r) {
        io_uring_sqe* sqe = r.get_sqe();
        if (m_multishot)
            io_uring_prep_poll_multishot(sqe, m_eventfd, POLLIN);
        else
            io_uring_prep_poll_add(sqe, m_eventfd, POLLIN);
        armed_with(r, sqe);
        ++m_arm_count;
    }

    /// How many times the poll was armed (1 + the number of re-arms): for tests.
    [[nodiscard]] unsigned arm_count() const noexcept { return m_arm_count; }

private:
    static void on_wake(io_completion* self_base, int result, unsigned flags) noexcept {
        auto* self = static_cast<inbox*>(self_base);
        if (result >= 0) {
            eventfd_t value;
            [[maybe_unused]] int r = ::eventfd_read(self->m_eventfd, &value);
        } else if (result == -EINVAL && self->m_multishot) {
            self->m_multishot = false;  // a kernel without multishot poll: single shots from now on
        }
        if ((flags & IORING_CQE_F_MORE) == 0) {
            if (self->ended()) {
                try {
                    self->arm(*self->m_ring);
                } catch (...) {
                    // The ring is unusable; the loop notices on its next submission.
                }
            }
        }
    }

    std::mutex m_mutex;
    ready_queue m_queue;
    std::atomic<bool> m_has_items{false};
    bool m_sleeping = false;   // guarded by m_mutex
    bool m_wake_sent = false;  // guarded by m_mutex
    bool m_closed = false;     // guarded by m_mutex
    int m_eventfd = -1;
    bool m_multishot = true;
    unsigned m_arm_count = 0;
};

}  // namespace coring::detail
