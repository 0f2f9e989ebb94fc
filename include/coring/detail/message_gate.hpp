#pragma once
// message_gate: keeps a loop's ring open while other loops address messages to it through
// IORING_OP_MSG_RING (scheduler::post).
//
// A sender names the target ring by its descriptor. The kernel takes its own reference to the
// ring when it consumes the sender's SQE; before that, a target that closed its ring could have
// its descriptor number reused by an unrelated file, and the message would go there. So a
// sender enters the gate before it reads the descriptor and leaves once its SQE is consumed
// (it submits at once), and the target, closing, shuts the gate and waits until no sender is
// inside. Senders that find it shut use the inbox, which refuses them too once the loop closes.
//
// Dekker's pattern in sequentially consistent order: a sender counts itself in, then reads the
// flag; the target sets the flag, then reads the count. One of them sees the other.

#include <atomic>
#include <thread>

namespace coring::detail {

class message_gate {
public:
    /// Any thread: true if the target may be addressed until leave().
    [[nodiscard]] bool enter() noexcept {
        m_senders.fetch_add(1);
        if (m_shut.load()) {
            leave();
            return false;
        }
        return true;
    }
    void leave() noexcept { m_senders.fetch_sub(1); }

    /// The target's thread, closing: refuses later senders and waits for those inside (each
    /// is a submission away from leaving).
    void shut() noexcept {
        m_shut.store(true);
        while (m_senders.load() != 0) std::this_thread::yield();
    }

private:
    std::atomic<unsigned> m_senders{0};
    std::atomic<bool> m_shut{false};
};

}  // namespace coring::detail
