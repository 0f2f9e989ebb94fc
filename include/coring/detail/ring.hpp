#pragma once
// RAII owner of one io_uring instance and the low-level rules for using it (docs/internals.md, "The ring"):
//
// - setup asks for SINGLE_ISSUER | DEFER_TASKRUN, then COOP_TASKRUN, then plain flags, falling
//   back only on EINVAL, and records what the kernel gave;
// - when io_uring is unavailable (EPERM / ENOSYS: kernel.io_uring_disabled, a seccomp profile
//   such as Docker's default) it throws one std::system_error that names cause and remedy;
// - ENOMEM is retried for up to 200 ms (the kernel returns a closed ring's locked memory in the
//   background) before it is thrown, with RLIMIT_MEMLOCK named only where it is charged;
// - get_sqe() never returns null: a full submission queue is submitted to make room, and
//   make_room(n) does so ahead of n SQEs that must reach the kernel together (linked ones);
// - drain() empties the completion queue entry by entry (advancing the head before each handler
//   runs, so a handler may submit or even drain again) and flushes the kernel's overflow list;
// - a full completion queue is survived: the kernel parks the surplus on its overflow list and
//   sets IORING_SQ_CQ_OVERFLOW, drain() moves it back (counted: cq_overflows()). Only when the
//   kernel cannot allocate room on that list does it drop a CQE for good (cq_dropped(), its
//   own counter) and then fail one io_uring_enter with EBADR: that is recorded, not thrown
//   (take_lost_completions(): the loop reports it and goes on);
// - user_data 0 marks an SQE whose completion nobody needs (an async cancel request) and ~0 is
//   liburing's own timeout marker: drain() skips both, so no operation ever uses them.

#include <coring/config.hpp>
#include <coring/detail/test_access.hpp>
#include <coring/errors.hpp>

#include <liburing.h>
#include <sys/resource.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <thread>
#include <utility>

namespace coring::detail {

/// Base of everything whose address is the user_data of an SQE. The loop calls m_complete with
/// every CQE of the operation; the last one arrives without IORING_CQE_F_MORE.
struct io_completion {
    using function = void (*)(io_completion*, int result, unsigned flags) noexcept;
    explicit io_completion(function complete, bool internal = false) noexcept : m_complete(complete), m_internal(internal) {}
    function m_complete;
    bool m_internal;  // the loop's own operations (wake-up, signals) are not user work in flight
    std::uint8_t m_trace_opcode = 0;  // tracing: the opcode it was submitted with
};

/// What decides whether the kernel charges a ring to RLIMIT_MEMLOCK: the limit (in bytes;
/// RLIM_INFINITY for none) and whether the process holds CAP_IPC_LOCK, which exempts it.
struct memlock_facts {
    std::uint64_t limit = RLIM_INFINITY;
    bool exempt = true;

    /// This process's.
    static memlock_facts current() noexcept {
        memlock_facts facts;
        rlimit limit{};
        if (::getrlimit(RLIMIT_MEMLOCK, &limit) == 0) facts.limit = limit.rlim_cur;
        facts.exempt = false;
        if (std::FILE* status = std::fopen("/proc/self/status", "re")) {
            char line[256];
            unsigned long long effective = 0;
            while (std::fgets(line, sizeof line, status) != nullptr)
                if (std::sscanf(line, "CapEff: %llx", &effective) == 1) break;
            std::fclose(status);
            constexpr int cap_ipc_lock = 14;
            facts.exempt = ((effective >> cap_ipc_lock) & 1U) != 0;
        }
        return facts;
    }
    [[nodiscard]] bool charged() const noexcept { return !exempt && limit != RLIM_INFINITY; }
};

/// Explains why io_uring_setup failed and what to do about it.
inline std::string io_uring_setup_failure_message(int err, const memlock_facts& memlock = memlock_facts::current()) {
    std::string msg = "coring: cannot create an io_uring instance (io_uring_setup failed with ";
    msg += err == EPERM ? "EPERM" : err == ENOSYS ? "ENOSYS" : err == ENOMEM ? "ENOMEM" : std::to_string(err);
    msg += "). ";
    switch (err) {
        case EPERM:
            msg += "io_uring is switched off for this process: the sysctl kernel.io_uring_disabled is set (set it to 0, "
                   "or to 1 and add the user to kernel.io_uring_group), or a seccomp profile forbids it (Docker's default "
                   "profile does: run the container with --security-opt seccomp=unconfined or a profile that allows "
                   "io_uring_setup, io_uring_enter and io_uring_register)";
            break;
        case ENOSYS:
            msg += "the kernel has no io_uring (built without CONFIG_IO_URING, older than 5.1) or a seccomp filter "
                   "hides it; coring needs Linux 5.11 or newer with io_uring allowed";
            break;
        case ENOMEM:
            // Kernels before 5.12, and again those whose rings live in accounted memory regions
            // (6.18 does), charge rings to RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK.
            if (memlock.charged()) {
                msg += "the ring does not fit in the locked-memory limit (RLIMIT_MEMLOCK, " + std::to_string(memlock.limit / 1024) +
                       " KiB; the kernel returns a closed ring's share a moment after it closes): raise `ulimit -l` or lower "
                       "loop_options.queue_depth";
            } else {
                msg += "the kernel could not allocate the ring's memory (a memory cgroup's limit?): lower loop_options.queue_depth";
            }
            break;
        default:
            msg += "check the kernel version (5.11 or newer) and loop_options.queue_depth";
            break;
    }
    return msg;
}

/// 0 if this process can create an io_uring instance, else the errno io_uring_setup fails with.
inline int io_uring_probe() noexcept {
    io_uring probe{};
    const int r = io_uring_queue_init(2, &probe, 0);
    if (r < 0) return -r;
    io_uring_queue_exit(&probe);
    return 0;
}

class ring {
public:
    using duration = std::chrono::nanoseconds;

    ring(unsigned sq_entries, unsigned cq_entries) {
        // Most wanted first; each later attempt drops what an older kernel rejects with EINVAL.
        const unsigned attempts[] = {
            IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL,
            IORING_SETUP_COOP_TASKRUN | IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL,
            IORING_SETUP_CQSIZE,
            0,
        };
        int err = EINVAL;
        for (unsigned flags : attempts) {
            io_uring_params params{};
            params.flags = flags;
            params.cq_entries = cq_entries;
            err = -io_uring_queue_init_params(sq_entries, &m_ring, &params);
            // Where rings count against RLIMIT_MEMLOCK, the kernel releases a closed ring's share
            // in the background: a program restarted at once (or a ring made right after
            // another closed) can find the limit still taken for a few milliseconds.
            for (int retry = 0; err == ENOMEM && retry < enomem_retries; ++retry) {
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
                params = io_uring_params{};
                params.flags = flags;
                params.cq_entries = cq_entries;
                err = -io_uring_queue_init_params(sq_entries, &m_ring, &params);
            }
            if (err == 0) {
                m_setup_flags = flags;
                m_features = params.features;
                return;
            }
            if (err != EINVAL) break;
        }
        throw std::system_error(err, std::system_category(), io_uring_setup_failure_message(err));
    }

    ring(const ring&) = delete;
    ring& operator=(const ring&) = delete;
    ~ring() { close(); }

    /// ENOMEM retries of io_uring_setup, 10 ms apart (see the constructor).
    static constexpr int enomem_retries = 20;

    void close() noexcept {
        if (m_open) {
            m_dropped_at_close = read_dropped();  // the counter lives in memory unmapped with the ring
            io_uring_queue_exit(&m_ring);
            m_open = false;
        }
    }

    [[nodiscard]] unsigned setup_flags() const noexcept { return m_setup_flags; }
    [[nodiscard]] bool has_feature(unsigned feature) const noexcept { return (m_features & feature) != 0; }
    /// The ring's descriptor: what IORING_OP_MSG_RING addresses.
    [[nodiscard]] int fd() const noexcept { return m_ring.ring_fd; }
    /// Whether the kernel knows `opcode` (io_uring_register's probe; false if it cannot say).
    [[nodiscard]] bool supports(int opcode) const noexcept {
        struct io_uring_probe* probe = io_uring_get_probe_ring(const_cast<io_uring*>(&m_ring));
        if (probe == nullptr) return false;
        const bool supported = io_uring_opcode_supported(probe, opcode) != 0;
        io_uring_free_probe(probe);
        return supported;
    }
    /// Submits until the kernel has consumed every queued SQE.
    void submit_all() { make_room(m_ring.sq.ring_entries); }
    [[nodiscard]] unsigned pending_submissions() const noexcept { return io_uring_sq_ready(&m_ring); }
    /// True if SQEs were prepared since the last submit. Unlike pending_submissions() it reads
    /// only the process's own copy of the tail, not the kernel's head in the ring shared with it:
    /// the busy loop asks this every iteration, and a read of memory the kernel writes is a
    /// cache miss on the hot path (bench/README.md has the figures). An SQE that the kernel left
    /// unconsumed after a submit is not counted here: the loop polls anyway while user
    /// operations are in flight.
    [[nodiscard]] bool has_unsubmitted() const noexcept { return m_ring.sq.sqe_tail != m_ring.sq.sqe_head; }
    /// The submission queue's local tail: it moves with every SQE prepared, through get_sqe()
    /// or on native() (liburing's io_uring_get_sqe), so comparing two readings tells whether
    /// any SQE was prepared in between (wrapping is harmless for that).
    [[nodiscard]] unsigned sq_tail() const noexcept { return m_ring.sq.sqe_tail; }
    [[nodiscard]] io_uring* native() noexcept { return &m_ring; }

    /// SQEs handed out and CQEs reaped since the ring was created (loop statistics).
    [[nodiscard]] std::uint64_t sqes_prepared() const noexcept { return m_sqes; }
    [[nodiscard]] std::uint64_t cqes_reaped() const noexcept { return m_cqes; }
    /// Times the kernel's overflow list was seen in use (IORING_SQ_CQ_OVERFLOW set: completions
    /// did not fit in the CQ and waited there); one stretch of overflow counts once.
    [[nodiscard]] std::uint64_t cq_overflows() const noexcept { return m_cq_overflows; }
    /// CQEs the kernel dropped since the ring was created (its cq.koverflow counter): completions
    /// that are lost, whose operations will never see their result.
    [[nodiscard]] std::uint64_t cq_dropped() const noexcept { return m_open ? read_dropped() : m_dropped_at_close; }
    /// How many times io_uring_enter failed with EBADR (the kernel dropped CQEs) since the last
    /// call; the count restarts at 0. The kernel reports each loss once, so the loop must.
    [[nodiscard]] unsigned take_lost_completions() noexcept { return std::exchange(m_lost_reports, 0u); }
    [[nodiscard]] bool has_lost_completions() const noexcept { return m_lost_reports != 0; }

    /// A free submission queue entry; submits what is queued when the queue is full.
    io_uring_sqe* get_sqe() {
        ++m_sqes;
        io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
        if (sqe == nullptr) {
            make_room(1);
            sqe = io_uring_get_sqe(&m_ring);
        }
        return sqe;
    }

    /// Submits what is queued until at least `n` submission queue entries are free, so that the
    /// next `n` get_sqe() calls hand out consecutive entries and none of them submits: SQEs
    /// chained with IOSQE_IO_LINK must reach the kernel together. A ring smaller than `n` can
    /// never hold them: std::logic_error.
    void make_room(unsigned n) {
        if (n > m_ring.sq.ring_entries)
            throw std::logic_error("coring: " + std::to_string(n) + " linked SQEs need a ring of at least " + std::to_string(n) +
                                   " entries (loop_options.queue_depth)");
        while (io_uring_sq_space_left(&m_ring) < n) {
            const int r = io_uring_submit(&m_ring);
            // EBADR: nothing was submitted, and the kernel, having said it dropped CQEs, has
            // cleared the condition: record it for the loop and submit again.
            if (r == -EBADR) {
                ++m_lost_reports;
                continue;
            }
            // EBUSY/EAGAIN: the kernel wants its completion backlog reaped first. Nobody here
            // can reap (we may be inside a completion handler), so give the kernel the CQ
            // entries it needs by flushing the overflow list, then try again.
            if (r < 0 && r != -EBUSY && r != -EAGAIN && r != -EINTR) throw_errno(-r, "io_uring_submit");
            if (r < 0) get_events();
        }
    }

    /// Hands what is queued to the kernel now, collecting nothing. A failure leaves the SQEs
    /// queued for the loop's next submission, which reports what is wrong.
    void submit_now() noexcept {
        if (io_uring_submit(&m_ring) == -EBADR) ++m_lost_reports;
    }

    /// Submits what is queued and collects completions without waiting.
    void submit_and_poll() { check(io_uring_submit_and_get_events(&m_ring), "io_uring_enter"); }

    /// Submits what is queued and waits until a completion arrives or `timeout` passes.
    void submit_and_wait(duration timeout) {
        if (timeout <= duration::zero()) return submit_and_poll();
        __kernel_timespec ts{};
        const auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
        ts.tv_sec = secs.count();
        ts.tv_nsec = (timeout - secs).count();
        io_uring_cqe* cqe = nullptr;
        check(io_uring_submit_and_wait_timeout(&m_ring, &cqe, 1, &ts, nullptr), "io_uring_enter");
    }

    /// Submits what is queued and waits until a completion arrives, however long that takes.
    void submit_and_wait() { check(io_uring_submit_and_wait(&m_ring, 1), "io_uring_enter"); }

    /// Calls on_completion(io_completion*, res, flags) for every CQE, including the ones the
    /// kernel parked on its overflow list while the completion queue was full.
    template <class F>
    unsigned drain(F&& on_completion) {
        unsigned handled = 0;
        for (;;) {
            if (io_uring_cq_ready(&m_ring) == 0) {
                if (!io_uring_cq_has_overflow(&m_ring)) {
                    m_in_overflow = false;
                    break;
                }
                get_events();  // moves overflowed CQEs into the ring
                if (io_uring_cq_ready(&m_ring) == 0) break;
            }
            const unsigned head = *m_ring.cq.khead;
            const io_uring_cqe& cqe = m_ring.cq.cqes[io_uring_cqe_index(&m_ring, head, m_ring.cq.ring_mask)];
            const std::uint64_t user_data = cqe.user_data;
            const int result = cqe.res;
            const unsigned flags = cqe.flags;
            io_uring_cq_advance(&m_ring, 1);
            ++handled;
            ++m_cqes;
            if (user_data == 0 || user_data == LIBURING_UDATA_TIMEOUT) continue;
            on_completion(reinterpret_cast<io_completion*>(static_cast<std::uintptr_t>(user_data)), result, flags);
        }
        return handled;
    }

private:
    friend struct test_access;

    // Waiting can end early for harmless reasons: the timeout passed (ETIME), a signal arrived
    // (EINTR: the caller recomputes its deadline on the next iteration), or the kernel asks us
    // to reap first (EBUSY, EAGAIN). EBADR says the kernel dropped CQEs: recorded for the loop
    // to report (the kernel says it once, then clears it), and the ring goes on working.
    // Anything else is a bug or a dead ring.
    void check(int r, const char* what) {
        if (CORING_UNLIKELY(m_injected_enter_result != 0)) r = std::exchange(m_injected_enter_result, 0);
        if (r >= 0 || r == -ETIME || r == -EINTR || r == -EAGAIN || r == -EBUSY) return;
        if (r == -EBADR) {
            ++m_lost_reports;
            return;
        }
        throw_errno(-r, what);
    }

    // Flushes the kernel's overflow list into the CQ, counting the overflow the first time it
    // is seen (the flag stays set until the list is empty).
    void get_events() noexcept {
        if (io_uring_cq_has_overflow(&m_ring)) {
            if (!m_in_overflow) ++m_cq_overflows;
            m_in_overflow = true;
        }
        if (io_uring_get_events(&m_ring) == -EBADR) ++m_lost_reports;
    }

    [[nodiscard]] std::uint64_t read_dropped() const noexcept { return IO_URING_READ_ONCE(*m_ring.cq.koverflow); }

    io_uring m_ring{};
    std::uint64_t m_sqes = 0;
    std::uint64_t m_cqes = 0;
    std::uint64_t m_cq_overflows = 0;
    std::uint64_t m_dropped_at_close = 0;
    unsigned m_lost_reports = 0;  // EBADR returns the loop has not taken yet
    int m_injected_enter_result = 0;  // tests: the next enter's result, as if the kernel returned it
    bool m_in_overflow = false;  // IORING_SQ_CQ_OVERFLOW was set when last looked at
    unsigned m_setup_flags = 0;
    unsigned m_features = 0;
    bool m_open = true;
};

}  // namespace coring::detail
