#pragma once
// The definition of coring::detail::test_access (declared in coring/detail/test_access.hpp):
// the tests' hooks into machinery that the public classes keep private.

#include <coring/event_loop.hpp>
#include <coring/io/buffer_ring.hpp>
#include <coring/io/multishot_accept.hpp>
#include <coring/io/multishot_recv.hpp>
#include <coring/io/ops.hpp>

#include <atomic>

namespace coring::detail {

struct test_access {
    // ---- the loop's call_soon_threadsafe wake-up poll
    /// How many times the poll was armed (1 + the number of re-arms).
    static unsigned wakeup_arm_count(event_loop& loop) noexcept { return loop.m_inbox.arm_count(); }
    /// Cancels the poll as the kernel does when it ends a multishot request.
    static void interrupt_wakeup(event_loop& loop) {
        io_uring_sqe* sqe = loop.get_sqe();
        io_uring_prep_cancel(sqe, static_cast<io_completion*>(&loop.m_inbox), 0);
        io_uring_sqe_set_data64(sqe, 0);
    }

    // ---- the ring
    /// The loop's next io_uring_enter returns -err instead of what the kernel returned (its SQEs
    /// are submitted all the same): EBADR is what the kernel says once after dropping CQEs.
    static void fail_next_enter(event_loop& loop, int err) noexcept { loop.m_ring.m_injected_enter_result = -err; }

    // ---- multishot requests: the re-arm count, and the end the kernel may impose (CQ overflow)
    static unsigned arm_count(const io::multishot_accept& a) noexcept { return a.m_state.get() != nullptr ? a.m_state.get()->arm_count() : 0; }
    static unsigned arm_count(const io::multishot_recv& r) noexcept { return r.m_state.get() != nullptr ? r.m_state.get()->arm_count() : 0; }
    static void interrupt(io::multishot_accept& a) {
        if (a.m_state.get() != nullptr) a.m_state.get()->interrupt_for_testing();
    }
    static void interrupt(io::multishot_recv& r) {
        if (r.m_state.get() != nullptr) r.m_state.get()->interrupt_for_testing();
    }

    // ---- kernels without a feature
    /// io::socket takes the socket() system call, as on a kernel without IORING_OP_SOCKET.
    static void force_socket_fallback(bool on) noexcept { io::socket::s_unsupported.store(on, std::memory_order_relaxed); }
    /// io::buffer_ring::create fails with EINVAL, as on a kernel without buffer rings.
    static void force_no_buffer_rings(bool on) noexcept { io::buffer_ring::s_unsupported.store(on, std::memory_order_relaxed); }
    /// Receives on buffer rings armed from now on use single shots, as without multishot recv.
    static void force_single_shot_recv(bool on) noexcept { detail::force_single_shot_recv.store(on, std::memory_order_relaxed); }
};

}  // namespace coring::detail

namespace coring_test {
using test_access = coring::detail::test_access;
}  // namespace coring_test
