#pragma once
// internal_operation: one of the loop's own long-lived kernel operations (the inbox's poll on
// its eventfd, the signal read on the signalfd). It is kept in flight: armed once, armed again
// whenever a completion ends it (a CQE without IORING_CQE_F_MORE), and cancelled at close,
// where the loop waits for its last CQE. It is not user work: it does not count as in flight.

#include <coring/detail/ring.hpp>

namespace coring::detail {

class internal_operation : public io_completion {
public:
    internal_operation(const internal_operation&) = delete;
    internal_operation& operator=(const internal_operation&) = delete;

    /// Its SQE is in the kernel.
    [[nodiscard]] bool armed() const noexcept { return m_armed; }

    /// At close: stop re-arming and cancel the operation; its CQE still arrives.
    void disarm(ring& r) {
        m_closing = true;
        if (!m_armed) return;
        io_uring_sqe* sqe = r.get_sqe();
        io_uring_prep_cancel(sqe, static_cast<io_completion*>(this), 0);
        io_uring_sqe_set_data64(sqe, 0);
    }

protected:
    explicit internal_operation(function complete) noexcept : io_completion(complete, /*internal=*/true) {}
    ~internal_operation() = default;

    /// For arm(): `sqe`, prepared from `r`, carries this operation, now in flight.
    void armed_with(ring& r, io_uring_sqe* sqe) noexcept {
        m_ring = &r;
        io_uring_sqe_set_data(sqe, static_cast<io_completion*>(this));
        m_armed = true;
    }
    /// For the completion that ended the operation: false once disarmed (do not arm again).
    [[nodiscard]] bool ended() noexcept {
        m_armed = false;
        return !m_closing;
    }

    ring* m_ring = nullptr;

private:
    bool m_armed = false;
    bool m_closing = false;
};

}  // namespace coring::detail
