#pragma once
// add_reader / add_writer (asyncio's loop.add_reader and loop.add_writer): a callback runs on
// the loop each time a descriptor is ready, until it is removed.
//
// Level-triggered, as asyncio's selectors are: each registration keeps one single-shot
// IORING_OP_POLL_ADD in flight; its completion queues the callback, and the poll is armed again
// only once the callback has run. A callback that leaves bytes unread runs again on the next
// iteration; one that reads everything waits for more. (A multishot poll posts once per wake-up,
// edge-triggered: a C library that reads one buffer per event would stall on the rest.)
//
// A poll holds the file it was armed on, not its number: a descriptor closed while registered
// never wakes whoever reuses the number, and its registration stays until removed. add_reader
// submits its poll at once, so the file is the one open when it was called. Removing or
// replacing a registration cancels its poll; the registration object lives on until the
// kernel's last completion for it. One window is left: after a callback, the poll is armed
// again by number and reaches the kernel at the end of the loop's iteration, so code that
// closes the descriptor and opens another in between, without remove_reader, watches the new
// one. Remove a reader before closing its descriptor (asyncio asks the same).

#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/errors.hpp>

#include <fcntl.h>
#include <poll.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

namespace coring::detail {

/// One registration: a descriptor, POLLIN or POLLOUT, a callback, and the poll that runs it.
///
/// Invariants: it is deleted once it is neither registered, nor polling (its SQE in the kernel),
/// nor queued (its callback on the ready queue or running).
class fd_watch final : public io_completion, public ready_node {
public:
    fd_watch(scheduler& loop, int fd, unsigned events, std::function<void()> callback, std::size_t& polling_count)
        : io_completion(&on_poll, /*internal=*/true),
          ready_node(operations_),
          m_loop(&loop),
          m_callback(std::move(callback)),
          m_polling_count(&polling_count),
          m_fd(fd),
          m_events(events) {}
    fd_watch(const fd_watch&) = delete;
    fd_watch& operator=(const fd_watch&) = delete;

    void arm(ring& r) {
        io_uring_sqe* sqe = r.get_sqe();
        io_uring_prep_poll_add(sqe, m_fd, m_events);
        io_uring_sqe_set_data(sqe, static_cast<io_completion*>(this));
        m_ring = &r;
        m_polling = true;
        ++*m_polling_count;
    }

    /// No longer registered: the callback does not run again. Cancels the poll (its completion,
    /// -ECANCELED, deletes this), or deletes this now if nothing refers to it.
    void unregister() noexcept {
        m_registered = false;
        if (m_polling) {
            try {
                io_uring_sqe* sqe = m_ring->get_sqe();
                // IORING_OP_ASYNC_CANCEL, not POLL_REMOVE: a removal that meets the poll while its
                // wake-up waits in the ring's deferred task work fails with EALREADY, and if the
                // event is gone by the time that work runs (a library read the bytes meanwhile),
                // the one-shot poll is armed again and stays in the kernel for good. A cancel
                // marks the poll cancelled whoever holds it, so it always ends.
                io_uring_prep_cancel(sqe, static_cast<io_completion*>(this), 0);
                io_uring_sqe_set_data64(sqe, 0);  // its own completion is ignored
            } catch (...) {
                // No SQE: the poll ends when its descriptor is ready or closed, or with the ring.
            }
        }
        delete_if_unused();
    }

private:
    static void on_poll(io_completion* base, int result, unsigned) noexcept {
        auto* self = static_cast<fd_watch*>(base);
        self->m_polling = false;
        --*self->m_polling_count;
        if (!self->m_registered) {
            self->delete_if_unused();
            return;
        }
        if (result < 0) {
            // EBADF and the like: report once, and stay registered but idle until removed.
            self->m_loop->call_exception_handler({"coring: polling descriptor " + std::to_string(self->m_fd) + " for " +
                                                      (self->m_events == POLLIN ? "add_reader" : "add_writer") + ": " + std::strerror(-result),
                                                  nullptr, {}, {}});
            return;
        }
        self->m_queued = true;
        self->m_loop->schedule(*self);
    }

    static void fire(ready_node* node, action what) noexcept {
        auto* self = static_cast<fd_watch*>(node);
        if (what == action::run && self->m_registered) self->m_loop->run_callback(self->m_callback);
        self->m_queued = false;  // only now: the callback may have unregistered this
        if (self->m_registered && what == action::run) {
            try {
                self->arm(*self->m_ring);
            } catch (...) {
                self->m_loop->call_exception_handler({"coring: could not poll descriptor " + std::to_string(self->m_fd) + " again",
                                                      std::current_exception(), {}, {}});
            }
            return;
        }
        self->delete_if_unused();
    }

    void delete_if_unused() noexcept {
        if (!m_registered && !m_polling && !m_queued) delete this;
    }

    static constexpr operations operations_{&fire};

    scheduler* m_loop;
    ring* m_ring = nullptr;
    std::function<void()> m_callback;
    std::size_t* m_polling_count;
    int m_fd;
    unsigned m_events;
    bool m_registered = true;
    bool m_polling = false;
    bool m_queued = false;
};

/// The loop's registrations, by descriptor, one map per direction.
class fd_watcher {
public:
    explicit fd_watcher(scheduler& loop) noexcept : m_loop(&loop) {}
    fd_watcher(const fd_watcher&) = delete;
    fd_watcher& operator=(const fd_watcher&) = delete;
    ~fd_watcher() { remove_all(); }

    /// Registers `callback` for `fd` becoming readable (POLLIN) or writable (POLLOUT), replacing
    /// the registration of the same descriptor and direction. Throws std::system_error (EBADF)
    /// for a descriptor that is not open, std::invalid_argument for an empty callback.
    void add(int fd, unsigned events, std::function<void()> callback, ring& r) {
        const char* what = events == POLLIN ? "add_reader" : "add_writer";
        if (!callback) throw std::invalid_argument(std::string("coring: ") + what + ": empty callback");
        if (::fcntl(fd, F_GETFD) < 0) throw_errno(errno, std::string("coring: ") + what + "(" + std::to_string(fd) + ")");
        auto* watch = new fd_watch(*m_loop, fd, events, std::move(callback), m_polling);
        try {
            watch->arm(r);
        } catch (...) {
            watch->unregister();  // never polled: deleted at once
            throw;
        }
        // The kernel takes the file now, while `fd` is still the caller's descriptor. (A failed
        // submit leaves the SQE queued: the loop submits it with the others.)
        r.submit_now();
        fd_watch*& slot = map(events)[fd];
        if (slot != nullptr) slot->unregister();
        slot = watch;
    }

    /// Ends the registration; false if there was none.
    bool remove(int fd, unsigned events) noexcept {
        auto& m = map(events);
        auto it = m.find(fd);
        if (it == m.end()) return false;
        fd_watch* watch = it->second;
        m.erase(it);
        watch->unregister();
        return true;
    }

    void remove_all() noexcept {
        for (auto* m : {&m_readers, &m_writers}) {
            for (auto& [fd, watch] : *m) watch->unregister();
            m->clear();
        }
    }

    /// Polls of ended registrations may still be in the kernel: close() waits for them.
    [[nodiscard]] bool polling() const noexcept { return m_polling > 0; }

private:
    std::unordered_map<int, fd_watch*>& map(unsigned events) noexcept { return events == POLLIN ? m_readers : m_writers; }

    scheduler* m_loop;
    std::unordered_map<int, fd_watch*> m_readers;
    std::unordered_map<int, fd_watch*> m_writers;
    std::size_t m_polling = 0;  // fd_watch objects whose poll is in the kernel
};

}  // namespace coring::detail
