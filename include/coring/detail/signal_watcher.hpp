#pragma once
// add_signal_handler / remove_signal_handler: signals become reads on a signalfd.
//
// A handled signal is blocked in the loop's thread (pthread_sigmask) and added to the signalfd's
// mask; a read of one signalfd_siginfo is kept in flight and re-armed after every completion.
// The handler then runs as an ordinary callback on the loop, never inside a signal handler.
//
// Blocking is per thread: a process-directed signal is delivered to any thread that does not
// block it. Add handlers before starting other threads (they inherit the mask), or block the
// signals in those threads too; the loop's own worker threads block every signal.

#include <coring/detail/callback_node.hpp>
#include <coring/detail/internal_operation.hpp>
#include <coring/detail/ring.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/errors.hpp>

#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <algorithm>
#include <functional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace coring::detail {

class signal_watcher final : public internal_operation {
public:
    explicit signal_watcher(scheduler& loop) noexcept : internal_operation(&on_read), m_loop(&loop) {
        sigemptyset(&m_mask);
    }
    signal_watcher(const signal_watcher&) = delete;
    signal_watcher& operator=(const signal_watcher&) = delete;
    ~signal_watcher() {
        remove_all();
        if (m_fd >= 0) ::close(m_fd);
    }

    void add(int sig, std::function<void()> handler, ring& r) {
        if (sig <= 0 || sig >= NSIG || sig == SIGKILL || sig == SIGSTOP)
            throw std::invalid_argument("coring: add_signal_handler: signal " + std::to_string(sig) + " cannot be handled");
        if (!handler) throw std::invalid_argument("coring: add_signal_handler: empty handler");
        if (auto it = find(sig); it != m_handlers.end()) {
            it->second = std::move(handler);
            return;
        }
        sigset_t one;
        sigemptyset(&one);
        sigaddset(&one, sig);
        sigset_t previous;
        if (const int err = pthread_sigmask(SIG_BLOCK, &one, &previous); err != 0) throw_errno(err, "coring: add_signal_handler: pthread_sigmask");
        sigaddset(&m_mask, sig);
        const int fd = ::signalfd(m_fd, &m_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (fd < 0) {
            const int err = errno;
            sigdelset(&m_mask, sig);
            if (!sigismember(&previous, sig)) pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
            throw_errno(err, "coring: add_signal_handler: signalfd");
        }
        m_fd = fd;
        m_handlers.push_back({sig, std::move(handler)});
        if (!sigismember(&previous, sig)) m_unblock_on_remove.push_back(sig);
        if (!armed()) arm(r);
    }

    bool remove(int sig) {
        auto it = find(sig);
        if (it == m_handlers.end()) return false;
        m_handlers.erase(it);
        sigdelset(&m_mask, sig);
        if (m_fd >= 0) ::signalfd(m_fd, &m_mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (auto u = std::find(m_unblock_on_remove.begin(), m_unblock_on_remove.end(), sig); u != m_unblock_on_remove.end()) {
            m_unblock_on_remove.erase(u);
            sigset_t one;
            sigemptyset(&one);
            sigaddset(&one, sig);
            pthread_sigmask(SIG_UNBLOCK, &one, nullptr);
        }
        return true;
    }

    void remove_all() {
        while (!m_handlers.empty()) remove(m_handlers.back().first);
    }

private:
    using entry = std::pair<int, std::function<void()>>;

    std::vector<entry>::iterator find(int sig) {
        return std::find_if(m_handlers.begin(), m_handlers.end(), [sig](const entry& e) { return e.first == sig; });
    }

    void arm(ring& r) {
        io_uring_sqe* sqe = r.get_sqe();
        io_uring_prep_read(sqe, m_fd, &m_info, sizeof m_info, 0);
        armed_with(r, sqe);
    }

    // Hands the handler to the loop as a callback, and reads again.
    static void on_read(io_completion* base, int result, unsigned) noexcept {
        auto* self = static_cast<signal_watcher*>(base);
        const bool rearm = self->ended() && result != -ECANCELED;  // a single-shot read: every CQE ends it
        if (result == static_cast<int>(sizeof(signalfd_siginfo))) {
            const int sig = static_cast<int>(self->m_info.ssi_signo);
            if (auto it = self->find(sig); it != self->m_handlers.end()) {
                try {
                    using node = callback_node<std::function<void()>, true>;
                    self->m_loop->schedule(*new node(*self->m_loop, it->second));  // between callbacks: an empty context
                } catch (...) {
                    self->m_loop->call_exception_handler({"could not queue the handler of signal " + std::to_string(sig), std::current_exception(), {}, {}});
                }
            }
        }
        if (rearm) {
            try {
                self->arm(*self->m_ring);
            } catch (...) {
                self->m_loop->call_exception_handler({"could not re-arm the signal reader", std::current_exception(), {}, {}});
            }
        }
    }

    scheduler* m_loop;
    int m_fd = -1;
    sigset_t m_mask;
    std::vector<entry> m_handlers;
    std::vector<int> m_unblock_on_remove;  // signals that were not blocked before we blocked them
    signalfd_siginfo m_info{};
};

}  // namespace coring::detail
