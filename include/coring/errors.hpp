#pragma once
// The error types of coring (docs/api.md, "Errors" and "Cancellation").
//
// cancelled_error deliberately does not derive from std::exception, just as asyncio's
// CancelledError is not an Exception since Python 3.8: `catch (const std::exception&)` in user
// code must not swallow a cancellation by accident.
//
// Thread-safety: the error types are plain values; they may be copied or moved to any thread
// (run_on carries them between loops).

#include <coring/detail/source_location.hpp>

#include <cerrno>
#include <exception>
#include <stdexcept>
#include <string>
#include <system_error>
#include <utility>

namespace coring {

/// What the loop's exception handler receives (asyncio's context dict): an unretrieved task
/// exception, an exception a callback threw, a slow step in debug mode.
struct exception_context {
    std::string message;
    std::exception_ptr exception;
    /// The task concerned ("Task-3"), or empty.
    std::string task_name;
    /// Where that task was created, when known.
    source_location task_site{};
};

/// Thrown at the suspension point of a task that was cancelled. Not a std::exception. It carries
/// the message of the cancel(msg) that caused it (asyncio's CancelledError(msg)), or none.
class cancelled_error {
public:
    cancelled_error() noexcept = default;
    explicit cancelled_error(std::string message) noexcept : m_message(std::move(message)) {}

    /// The cancel message; empty when cancel() was called without one.
    [[nodiscard]] const std::string& message() const noexcept { return m_message; }
    /// The message, or a fixed text when there is none.
    [[nodiscard]] const char* what() const noexcept {
        return m_message.empty() ? "coring::cancelled_error: the task was cancelled" : m_message.c_str();
    }

private:
    std::string m_message;
};

/// An operation did not finish before its deadline (wait_for, timeout_at, as_completed with a
/// timeout, io::with_timeout).
class timeout_error : public std::runtime_error {
public:
    timeout_error() : std::runtime_error("coring::timeout_error: the operation timed out") {}
    explicit timeout_error(const std::string& what) : std::runtime_error(what) {}
};

/// An operation that is not allowed in the object's current state, such as reading the result of
/// a task that has not finished or setting the result of a future twice.
class invalid_state_error : public std::logic_error {
public:
    explicit invalid_state_error(const std::string& what) : std::logic_error(what) {}
};

/// get_nowait() on an empty queue (try_get() returns an empty optional instead).
class queue_empty : public std::runtime_error {
public:
    queue_empty() : std::runtime_error("coring::queue_empty: the queue is empty") {}
};

/// put_nowait() on a full queue.
class queue_full : public std::runtime_error {
public:
    queue_full() : std::runtime_error("coring::queue_full: the queue is full") {}
};

/// put() or get() on a queue that was shut down.
class queue_shut_down : public std::runtime_error {
public:
    queue_shut_down() : std::runtime_error("coring::queue_shut_down: the queue was shut down") {}
};

/// co_await channel.send(v) on a channel that is closed (thread/channel.hpp); the value is not sent.
class channel_closed : public std::runtime_error {
public:
    channel_closed() : std::runtime_error("coring::channel_closed: send on a closed channel") {}
};

/// A barrier was aborted or reset while tasks were waiting on it.
class broken_barrier_error : public std::runtime_error {
public:
    broken_barrier_error() : std::runtime_error("coring::broken_barrier_error: the barrier is broken") {}
};

namespace detail {

/// Throws std::system_error in the system category. `what` names the operation and its subject,
/// for example "read(fd 7)", so the message reads "read(fd 7): Connection reset by peer".
[[noreturn]] inline void throw_errno(int err, const std::string& what) {
    throw std::system_error(err, std::system_category(), what);
}

}  // namespace detail
}  // namespace coring
