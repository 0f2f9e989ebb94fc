#pragma once
// detail::owned_fd: the descriptor ownership that coring::file and coring::socket share. Move-only;
// the destructor (and move assignment) closes synchronously, close() through the kernel. It
// lives in the I/O layer, beside the IORING_OP_CLOSE it awaits, because it is built on it.
//
// Thread-safety: as the file or socket that holds it (loop-bound).

#include <coring/io/ops.hpp>

#include <unistd.h>

#include <utility>

namespace coring::detail {

class owned_fd {
public:
    owned_fd() noexcept = default;
    explicit owned_fd(int fd) noexcept : m_fd(fd) {}
    owned_fd(owned_fd&& other) noexcept : m_fd(other.release()) {}
    owned_fd& operator=(owned_fd&& other) noexcept {
        if (this != &other) {
            close_now();
            m_fd = other.release();
        }
        return *this;
    }
    owned_fd(const owned_fd&) = delete;
    owned_fd& operator=(const owned_fd&) = delete;
    ~owned_fd() { close_now(); }

    [[nodiscard]] int get() const noexcept { return m_fd; }
    [[nodiscard]] bool is_open() const noexcept { return m_fd >= 0; }
    /// Gives up ownership (the owner is then closed) and returns the descriptor.
    [[nodiscard]] int release() noexcept { return std::exchange(m_fd, -1); }
    /// IORING_OP_CLOSE; the descriptor is taken when the await begins (see close_owned).
    [[nodiscard]] close_owned close() noexcept { return close_owned(m_fd); }

private:
    void close_now() noexcept {
        if (m_fd >= 0) ::close(release());
    }

    int m_fd = -1;
};

}  // namespace coring::detail
