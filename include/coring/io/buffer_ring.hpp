#pragma once
// Provided-buffer rings and the kernel side of a multishot receive (io_uring's
// IORING_REGISTER_PBUF_RING, Linux 5.19, and IORING_RECV_MULTISHOT, Linux 6.0): the receive path
// of net/stream.hpp and of io::multishot_recv (io/multishot_recv.hpp), for servers that want the
// kernel's fastest receive.
//
//   io::buffer_ring_ptr ring = io::buffer_ring::create(64, 4096);   // 64 buffers of 4 KiB
//   io::multishot_recv rx(conn.fd(), ring);
//   for (;;) {
//       io::received chunk = co_await rx.next();     // a lease on one of the ring's buffers
//       if (chunk.empty()) break;                     // the peer shut down its side
//       co_await conn.send_all(chunk.data());
//   }                                                 // the lease gives the buffer back
//
// How it works. A buffer ring is a group of buffers that the kernel picks from (IOSQE_BUFFER_SELECT):
// a receive takes a buffer only when data arrives, so ten thousand idle connections hold no
// memory. One multishot recv SQE stays armed per connection and produces one CQE per chunk; the
// CQE names the buffer it filled (IORING_CQE_F_BUFFER, the id in the upper 16 bits of flags).
// Giving a buffer back (recycle) is a store into the ring that the kernel reads: no system call.
//
//   kernel ──fills──▶ buffer 7 ──CQE(bid 7, 64 bytes)──▶ multishot_recv ──lease──▶ your task
//      ▲                                                                              │
//      └────────────────────────── recycle(7) when the lease is dropped ◀─────────────┘
//
// The rules that keep it exact:
// - Re-arm whenever a CQE arrives without IORING_CQE_F_MORE (the kernel ends a multishot request
//   when its completion queue overflows, on a cancel, after an error) unless the owner no longer
//   wants data (paused, closing, or at end of stream).
// - ENOBUFS: the ring ran dry. The kernel took no data from the socket, so nothing is lost: the
//   receive is armed again as soon as a buffer is back in the ring (at once if one is, else on
//   the next recycle). buffer_ring::enobufs_count() counts these events.
// - Kernels without multishot recv (before 6.0) answer -EINVAL before any data: the receive then
//   runs as single shots (IORING_OP_RECV with IOSQE_BUFFER_SELECT), re-armed after each CQE.
// - Kernels without buffer rings (before 5.19): buffer_ring::create throws std::system_error
//   with EINVAL. That, and any other failure to make one (EPERM where a seccomp profile forbids
//   io_uring_register, ENOMEM under a small RLIMIT_MEMLOCK), makes buffer_ring::try_create
//   return null; streams then receive with plain recv into the reader's own buffer.
//
// Lifetimes: a buffer ring is reference counted (buffer_ring_ptr, not atomic: loop thread only).
// Every armed receive and every lease holds a reference, so the ring is unregistered only when
// nothing can use it any more. Destroy rings, receivers and leases before their loop closes (the
// loop waits for armed receives: a receiver that is never destroyed keeps close() waiting).
//
// Thread-safety: loop-bound. A buffer ring (registered with one ring) belongs to the event loop it
// was made on and is used by that loop's tasks; in debug mode, an operation started from another
// thread throws std::logic_error naming both threads. Several cores: one per loop of a loop_group
// (thread/loop_group.hpp).

#include <coring/detail/intrusive_list.hpp>
#include <coring/detail/ref_ptr.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/test_access.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/io/ops.hpp>

#include <liburing.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

namespace coring {
namespace io {
class buffer_ring;
}

namespace detail {

/// Buffer group ids: unique among the rings of this thread, hence unique within each io_uring
/// instance (an instance is used by the thread of its loop only).
class buffer_group_ids {
public:
    static std::uint16_t acquire() {
        registry& r = get();
        if (!r.free.empty()) {
            const std::uint16_t id = r.free.back();
            r.free.pop_back();
            return id;
        }
        if (r.next > 0xffffu) throw std::runtime_error("coring: more than 65536 provided-buffer rings in one thread");
        return static_cast<std::uint16_t>(r.next++);
    }
    static void release(std::uint16_t id) noexcept {
        try {
            get().free.push_back(id);
        } catch (...) {
            // The id is lost: harmless.
        }
    }

private:
    struct registry {
        std::vector<std::uint16_t> free;
        std::uint32_t next = 0;
    };
    static registry& get() {
        static thread_local registry r;
        return r;
    }
};

struct buffer_waiter_tag {};

/// Tests (detail::test_access): every receive on a buffer ring armed from now on uses single
/// shots (IORING_OP_RECV with IOSQE_BUFFER_SELECT, re-armed after each CQE), as on a kernel
/// without multishot recv.
inline std::atomic<bool> force_single_shot_recv{false};

/// A receive that ran dry (ENOBUFS) and waits until a buffer is back in the ring.
struct buffer_waiter : list_hook<buffer_waiter_tag> {
    using function = void (*)(buffer_waiter*) noexcept;
    explicit buffer_waiter(function on_buffer) noexcept : m_on_buffer(on_buffer) {}
    function m_on_buffer;
};

}  // namespace detail

namespace io {

using buffer_ring_ptr = detail::ref_ptr<buffer_ring>;

/// A provided-buffer ring registered with the loop's io_uring: count() buffers of buffer_size()
/// bytes in group group(). Create it with create(); share it through buffer_ring_ptr.
///
/// Invariants: m_available counts the buffers in the kernel's ring as far as the CQEs reaped so
/// far tell (claim() on each CQE that carries a buffer, recycle() when it comes back); it can only
/// overestimate, by the buffers of CQEs not reaped yet. Waiters (receives that ran dry) are
/// called back, first to last, on the next recycle().
class buffer_ring {
public:
    /// A ring of `count` buffers (rounded up to a power of two, at most 32768) of `size` bytes on
    /// `loop`. Throws std::system_error: EINVAL on kernels without buffer rings (before 5.19).
    [[nodiscard]] static buffer_ring_ptr create(event_loop& loop, unsigned count, std::size_t size) {
        return buffer_ring_ptr::adopt(new buffer_ring(loop, count, size));
    }
    /// The same on the running loop.
    [[nodiscard]] static buffer_ring_ptr create(unsigned count = 64, std::size_t size = 16384) {
        return create(get_running_loop(), count, size);
    }
    /// As create(), but null where no ring can be made, whatever the errno (no buffer rings in
    /// the kernel, io_uring_register forbidden, no locked memory left), for callers that fall
    /// back to plain recv. A ring is an optimisation: nothing is lost without one.
    [[nodiscard]] static buffer_ring_ptr try_create(event_loop& loop, unsigned count, std::size_t size) {
        try {
            return create(loop, count, size);
        } catch (const std::system_error&) {
            return nullptr;
        }
    }
    /// The same on the running loop.
    [[nodiscard]] static buffer_ring_ptr try_create(unsigned count = 64, std::size_t size = 16384) {
        return try_create(get_running_loop(), count, size);
    }

    buffer_ring(const buffer_ring&) = delete;
    buffer_ring& operator=(const buffer_ring&) = delete;

    [[nodiscard]] std::uint16_t group() const noexcept { return m_group; }
    [[nodiscard]] unsigned count() const noexcept { return m_count; }
    [[nodiscard]] std::size_t buffer_size() const noexcept { return m_size; }
    /// Buffers in the kernel's ring (an upper bound: see the class invariants).
    [[nodiscard]] unsigned available() const noexcept { return m_available; }
    /// How many times a receive on this ring ran dry (ENOBUFS) and was re-armed: for tests and
    /// tuning (a ring that runs dry often is too small).
    [[nodiscard]] std::uint64_t enobufs_count() const noexcept { return m_enobufs; }
    [[nodiscard]] event_loop& loop() const noexcept { return *m_loop; }

    /// The memory of buffer `bid`.
    [[nodiscard]] std::byte* data(std::uint16_t bid) const noexcept { return m_buffers + static_cast<std::size_t>(bid) * m_size; }

    /// A CQE handed buffer `bid` to the application.
    void claim(std::uint16_t) noexcept { --m_available; }

    /// Gives buffer `bid` back to the kernel, and re-arms the receives that ran dry.
    void recycle(std::uint16_t bid) noexcept {
        io_uring_buf_ring_add(m_ring, data(bid), static_cast<unsigned>(m_size), bid, static_cast<int>(m_count - 1), 0);
        io_uring_buf_ring_advance(m_ring, 1);
        ++m_available;
        if (!m_waiters.empty()) wake_waiters();
    }

    /// A receive that ran dry: `w` is called back on the next recycle().
    void wait_for_buffer(detail::buffer_waiter& w) noexcept { m_waiters.push_back(w); }
    static void stop_waiting(detail::buffer_waiter& w) noexcept { w.unlink(); }
    void note_enobufs() noexcept { ++m_enobufs; }

    void add_ref() noexcept { ++m_refs; }
    void release() noexcept {
        if (--m_refs == 0) delete this;
    }

private:
    friend struct detail::test_access;  // makes create() fail with EINVAL as on a kernel without buffer rings
    buffer_ring(event_loop& loop, unsigned count, std::size_t size) : m_loop(&loop), m_size(size) {
        if (size == 0 || size > 0xffff'ffffu) throw std::invalid_argument("coring::io::buffer_ring: buffer size must be 1 byte to 4 GiB");
        if (count == 0 || count > 32768) throw std::invalid_argument("coring::io::buffer_ring: count must be 1 to 32768");
        m_count = 1;
        while (m_count < count) m_count <<= 1;
        if (s_unsupported.load(std::memory_order_relaxed))
            detail::throw_errno(EINVAL, "io_uring_register_buf_ring (provided-buffer rings need Linux 5.19)");

        const long page = ::sysconf(_SC_PAGESIZE);
        m_ring_bytes = round_up(m_count * sizeof(io_uring_buf), static_cast<std::size_t>(page));
        m_buffer_bytes = round_up(m_count * m_size, static_cast<std::size_t>(page));
        void* ring_memory = ::mmap(nullptr, m_ring_bytes + m_buffer_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (ring_memory == MAP_FAILED) detail::throw_errno(errno, "mmap for a provided-buffer ring");
        m_ring = static_cast<io_uring_buf_ring*>(ring_memory);
        m_buffers = static_cast<std::byte*>(ring_memory) + m_ring_bytes;

        try {
            m_group = detail::buffer_group_ids::acquire();
        } catch (...) {
            ::munmap(ring_memory, m_ring_bytes + m_buffer_bytes);
            throw;
        }
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uint64_t>(m_ring);
        reg.ring_entries = m_count;
        reg.bgid = m_group;
        const int r = io_uring_register_buf_ring(loop.native_ring(), &reg, 0);
        if (r < 0) {
            detail::buffer_group_ids::release(m_group);
            ::munmap(ring_memory, m_ring_bytes + m_buffer_bytes);
            detail::throw_errno(-r, r == -EINVAL ? "io_uring_register_buf_ring (provided-buffer rings need Linux 5.19)" : "io_uring_register_buf_ring");
        }
        io_uring_buf_ring_init(m_ring);
        for (unsigned bid = 0; bid < m_count; ++bid)
            io_uring_buf_ring_add(m_ring, data(static_cast<std::uint16_t>(bid)), static_cast<unsigned>(m_size), static_cast<unsigned short>(bid),
                                  static_cast<int>(m_count - 1), static_cast<int>(bid));
        io_uring_buf_ring_advance(m_ring, static_cast<int>(m_count));
        m_available = m_count;
    }

    ~buffer_ring() {
        // Nothing refers to the ring any more (every armed receive holds a reference), so the
        // kernel is done with it. A loop that was closed first has freed the registration with
        // its io_uring instance.
        if (!m_loop->is_closed()) io_uring_unregister_buf_ring(m_loop->native_ring(), m_group);
        detail::buffer_group_ids::release(m_group);
        ::munmap(m_ring, m_ring_bytes + m_buffer_bytes);
    }

    void wake_waiters() noexcept {
        // Each callback arms a receive (or unlinks itself); take the list first so a callback that
        // runs dry again at once waits for the next recycle instead of looping here.
        detail::intrusive_list<detail::buffer_waiter, detail::buffer_waiter_tag> batch;
        while (detail::buffer_waiter* w = m_waiters.pop_front()) batch.push_back(*w);
        while (detail::buffer_waiter* w = batch.pop_front()) w->m_on_buffer(w);
    }

    static std::size_t round_up(std::size_t n, std::size_t to) noexcept { return (n + to - 1) / to * to; }

    static inline std::atomic<bool> s_unsupported{false};

    event_loop* m_loop;
    io_uring_buf_ring* m_ring = nullptr;
    std::byte* m_buffers = nullptr;
    std::size_t m_size;
    std::size_t m_ring_bytes = 0;
    std::size_t m_buffer_bytes = 0;
    std::uint64_t m_enobufs = 0;
    unsigned m_count = 0;
    unsigned m_available = 0;
    unsigned m_refs = 1;
    std::uint16_t m_group = 0;
    detail::intrusive_list<detail::buffer_waiter, detail::buffer_waiter_tag> m_waiters;
};

/// A lease on one buffer of a ring: the bytes a receive delivered. Move-only; gives the buffer
/// back to the kernel when destroyed (or on release()). An empty lease marks the end of the
/// stream. The lease keeps its ring alive.
class received {
public:
    received() noexcept = default;
    received(buffer_ring_ptr ring, std::uint16_t bid, std::size_t size) noexcept : m_ring(std::move(ring)), m_size(size), m_bid(bid) {}
    received(received&& other) noexcept : m_ring(std::move(other.m_ring)), m_size(std::exchange(other.m_size, 0)), m_bid(other.m_bid) {}
    received& operator=(received&& other) noexcept {
        if (this != &other) {
            release();
            m_ring = std::move(other.m_ring);
            m_size = std::exchange(other.m_size, 0);
            m_bid = other.m_bid;
        }
        return *this;
    }
    received(const received&) = delete;
    received& operator=(const received&) = delete;
    ~received() { release(); }

    [[nodiscard]] bool empty() const noexcept { return m_size == 0; }
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }
    [[nodiscard]] std::span<std::byte> data() const noexcept { return m_ring ? std::span(m_ring->data(m_bid), m_size) : std::span<std::byte>(); }
    [[nodiscard]] std::string_view view() const noexcept {
        return m_ring ? std::string_view(reinterpret_cast<const char*>(m_ring->data(m_bid)), m_size) : std::string_view();
    }
    [[nodiscard]] std::uint16_t buffer_id() const noexcept { return m_bid; }

    /// Gives the buffer back now; the lease is then empty.
    void release() noexcept {
        if (m_ring) {
            m_ring->recycle(m_bid);
            m_ring.reset();
        }
        m_size = 0;
    }

private:
    buffer_ring_ptr m_ring;
    std::size_t m_size = 0;
    std::uint16_t m_bid = 0;
};

}  // namespace io

namespace detail {

/// The kernel side of a multishot receive on a buffer ring, shared by io::multishot_recv and the
/// streams' socket transport (net/socket_transport.hpp). Derived (CRTP) provides:
///   void on_chunk(std::uint16_t bid, std::size_t size) noexcept;  // the buffer is Derived's now:
///                                                                  // it must recycle it
///   void on_end(int result) noexcept;   // 0: end of stream; -errno: an error. Final.
///   bool wants_data() const noexcept;   // arm (again) when the request has ended?
///   void on_idle() noexcept;            // the request ended and was not re-armed; may free Derived
///
/// Invariants: m_armed from an arm() until the CQE without IORING_CQE_F_MORE (the loop counts it
/// in flight meanwhile); m_starving while linked on the ring's waiter list (not armed); after
/// m_ended the receive is never armed again.
template <class Derived>
class multishot_recv_core : public io_completion, public buffer_waiter {
public:
    multishot_recv_core(event_loop& loop, int fd, io::buffer_ring_ptr ring) noexcept
        : io_completion(&on_cqe), buffer_waiter(&on_buffer), m_loop(&scheduler_of(loop)), m_ring(std::move(ring)), m_fd(fd) {}
    multishot_recv_core(const multishot_recv_core&) = delete;
    multishot_recv_core& operator=(const multishot_recv_core&) = delete;
    ~multishot_recv_core() { buffer_ring_unlink(); }

    /// Arms the receive if it is not armed (or waiting for a buffer) and has not ended.
    void start() {
        if (m_armed || m_ended || m_starving) return;
        arm();
    }

    /// Stops receiving: cancels an armed request (its last CQE still arrives; data it carries is
    /// delivered) or stops waiting for a buffer. True while a request is still armed.
    bool stop() noexcept {
        if (m_starving) buffer_ring_unlink();
        if (m_armed && !m_stopping) {
            try {
                m_loop->cancel_io(*this);
                m_stopping = true;
            } catch (...) {
                // No SQE could be had: the request ends with the connection instead.
            }
        }
        return m_armed;
    }

    [[nodiscard]] bool armed() const noexcept { return m_armed; }
    /// Armed, or waiting for a buffer to re-arm.
    [[nodiscard]] bool active() const noexcept { return m_armed || m_starving; }
    [[nodiscard]] unsigned arm_count() const noexcept { return m_arm_count; }
    [[nodiscard]] int fd() const noexcept { return m_fd; }
    [[nodiscard]] io::buffer_ring& ring() const noexcept { return *m_ring; }
    [[nodiscard]] bool has_ring() const noexcept { return static_cast<bool>(m_ring); }
    [[nodiscard]] scheduler& loop() const noexcept { return *m_loop; }

    /// Ends the armed request as the kernel does on a completion queue overflow: for tests.
    /// The request ends with ECANCELED and, unlike after stop(), is re-armed.
    void interrupt_for_testing() {
        if (m_armed) m_loop->cancel_io(*this);
    }

private:
    void arm() {
        io_uring_sqe* sqe = m_loop->get_sqe();
        if (m_multishot && !force_single_shot_recv.load(std::memory_order_relaxed))
            io_uring_prep_recv_multishot(sqe, m_fd, nullptr, 0, 0);
        else
            io_uring_prep_recv(sqe, m_fd, nullptr, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = m_ring->group();
        m_loop->submit(sqe, *this);
        m_armed = true;
        ++m_arm_count;
    }

    void buffer_ring_unlink() noexcept {
        if (m_starving) {
            io::buffer_ring::stop_waiting(*this);
            m_starving = false;
        }
    }

    void rearm_or_idle(bool ran_dry) noexcept {
        auto* self = static_cast<Derived*>(this);
        if (m_ended || !self->wants_data()) {
            self->on_idle();
            return;
        }
        if (ran_dry && m_ring->available() == 0) {
            m_starving = true;
            m_ring->wait_for_buffer(*this);
            return;
        }
        try {
            arm();
        } catch (const std::system_error& e) {
            m_ended = true;
            self->on_end(-e.code().value());
            self->on_idle();
        } catch (...) {
            m_ended = true;
            self->on_end(-ENOMEM);
            self->on_idle();
        }
    }

    static void on_cqe(io_completion* base, int result, unsigned flags) noexcept {
        auto* self = static_cast<Derived*>(static_cast<multishot_recv_core*>(base));
        auto& core = *static_cast<multishot_recv_core*>(base);
        const bool last = (flags & IORING_CQE_F_MORE) == 0;
        if (last) {
            core.m_armed = false;
            core.m_stopping = false;
        }
        bool ran_dry = false;
        if ((flags & IORING_CQE_F_BUFFER) != 0) {
            const auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
            core.m_ring->claim(bid);
            core.m_had_data = true;
            if (result > 0)
                self->on_chunk(bid, static_cast<std::size_t>(result));
            else
                core.m_ring->recycle(bid);  // defensive: a buffer with no bytes
        } else if (result == 0) {
            core.m_ended = true;
            self->on_end(0);
        } else if (result == -ENOBUFS) {
            // The ring ran dry; the data is still in the socket.
            ran_dry = true;
            core.m_ring->note_enobufs();
        } else if (result == -ECANCELED || result == -EINTR) {
            // Stopped by stop(), or by someone who cancels it: re-armed below if data is wanted.
        } else if (result == -EINVAL && core.m_multishot && !core.m_had_data && last) {
            core.m_multishot = false;  // no multishot recv on this kernel (before 6.0): single shots
        } else if (result < 0) {
            core.m_ended = true;
            self->on_end(result);
        }
        if (last) core.rearm_or_idle(ran_dry);
    }

    static void on_buffer(buffer_waiter* w) noexcept {
        auto& core = *static_cast<multishot_recv_core*>(w);
        core.m_starving = false;
        core.rearm_or_idle(false);
    }

    scheduler* m_loop;
    io::buffer_ring_ptr m_ring;
    int m_fd;
    unsigned m_arm_count = 0;
    bool m_armed = false;
    bool m_stopping = false;   // a cancel was sent for the armed request
    bool m_starving = false;   // ran dry; on the ring's waiter list
    bool m_ended = false;      // end of stream or an error: never armed again
    bool m_multishot = true;   // false on kernels without IORING_RECV_MULTISHOT
    bool m_had_data = false;
};

}  // namespace detail
}  // namespace coring
