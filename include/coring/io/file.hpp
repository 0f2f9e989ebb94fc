#pragma once
// coring::file: an open file whose reads and writes are io_uring operations (docs/api.md, "Files").
//
//   coring::file f = co_await coring::file::open("data.bin", O_RDWR | O_CREAT);
//   std::size_t n = co_await f.read_at(buffer, 4096);       // one IORING_OP_READ, may be short
//   co_await f.write_all_at(bytes, 0);                      // loops over short writes
//   std::uint64_t size = co_await f.size();                 // IORING_OP_STATX
//   co_await f.sync();                                      // IORING_OP_FSYNC
//   co_await f.close();                                     // IORING_OP_CLOSE
//
//   std::string text = co_await coring::read_file("/etc/hostname");
//   co_await coring::write_file("out.txt", text);
//
// Ownership: a file owns its descriptor (O_CLOEXEC). close() hands it to the kernel; a file that
// is destroyed while still open closes it synchronously (close(2) on a regular file is cheap).
// Buffers are the caller's and must stay valid until the await returns; they do when the
// co_await is one expression in the awaiting coroutine.
//
// Positions: read_at/write_at take an explicit offset (pread/pwrite: files shared by concurrent
// tasks should use these). read/write use and advance the file position, like read(2)/write(2);
// they also work on pipes, FIFOs and character devices.
//
// Errors are std::system_error with the errno: open names the path
// (`open("/no/such"): No such file or directory`), reads and writes name the descriptor
// (`read(fd 7): Is a directory`). Cancelling a task blocked in a read (of a pipe or FIFO) cancels
// it in the kernel; the task resumes, with cancelled_error, only once the kernel has let go of
// the buffer.
//
// Thread-safety: loop-bound. A file belongs to the event loop it was made on and is used by that
// loop's tasks; in debug mode, an operation started from another thread throws std::logic_error
// naming both threads. Several cores: one per loop of a loop_group (thread/loop_group.hpp).

#include <coring/detail/ring.hpp>
#include <coring/errors.hpp>
#include <coring/io/ops.hpp>
#include <coring/io/owned_fd.hpp>
#include <coring/task.hpp>

#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace coring {

class file {
public:
    class open_awaiter;
    class size_awaiter;

    /// A file that is not open.
    file() noexcept = default;
    /// Adopts `fd` (which the file then closes). Movable, not copyable; the destructor (and
    /// move assignment) closes the descriptor synchronously if close() was not awaited.
    explicit file(int fd) noexcept : m_fd(fd) {}

    /// Opens `path` (IORING_OP_OPENAT; O_CLOEXEC is always added). Yields the open file.
    /// Throws std::system_error naming the path: `open("/no/such"): No such file or directory`.
    [[nodiscard]] static open_awaiter open(std::string path, int flags = O_RDONLY, mode_t mode = 0644);

    [[nodiscard]] bool is_open() const noexcept { return m_fd.is_open(); }
    [[nodiscard]] int fd() const noexcept { return m_fd.get(); }
    /// Gives up ownership of the descriptor (the file is then closed) and returns it.
    [[nodiscard]] int release() noexcept { return m_fd.release(); }

    // ------------------------------------------------------------------ one operation each

    /// Reads into `buffer` at `offset`; yields the bytes read (fewer at end of file, 0 past it).
    [[nodiscard]] io::read read_at(std::span<std::byte> buffer, std::uint64_t offset) const noexcept {
        return io::read(fd(), buffer, static_cast<std::int64_t>(offset));
    }
    /// Writes `data` at `offset`; yields the bytes written, which may be fewer.
    [[nodiscard]] io::write write_at(std::span<const std::byte> data, std::uint64_t offset) const noexcept {
        return io::write(fd(), data, static_cast<std::int64_t>(offset));
    }
    [[nodiscard]] io::write write_at(std::string_view data, std::uint64_t offset) const noexcept { return write_at(as_bytes(data), offset); }
    /// Reads at the file position and advances it; yields the bytes read, 0 at end of file.
    [[nodiscard]] io::read read(std::span<std::byte> buffer) const noexcept { return io::read(fd(), buffer, -1); }
    /// Writes at the file position (the end, with O_APPEND) and advances it; may be short.
    [[nodiscard]] io::write write(std::span<const std::byte> data) const noexcept { return io::write(fd(), data, -1); }
    [[nodiscard]] io::write write(std::string_view data) const noexcept { return write(as_bytes(data)); }
    /// Flushes data and metadata to the device (fsync).
    [[nodiscard]] io::fsync sync() const noexcept { return io::fsync(fd()); }
    /// Flushes data, and only the metadata needed to read it back (fdatasync).
    [[nodiscard]] io::fsync sync_data() const noexcept { return io::fsync(fd(), IORING_FSYNC_DATASYNC); }
    /// The file's size in bytes (IORING_OP_STATX on the descriptor).
    [[nodiscard]] size_awaiter size() const noexcept;
    /// Closes the file through the kernel (IORING_OP_CLOSE). The file lets go of the descriptor
    /// when the await begins, and it is closed even if the await is cancelled (see io::close).
    /// Closing a closed file does nothing.
    [[nodiscard]] detail::close_owned close() noexcept { return m_fd.close(); }

    // ------------------------------------------------------------------ loops over short I/O

    /// Reads until `buffer` is full or the file ends; yields the bytes read (fewer than
    /// buffer.size() only at end of file).
    [[nodiscard]] task<std::size_t> read_full_at(std::span<std::byte> buffer, std::uint64_t offset) const;
    /// The same at the file position.
    [[nodiscard]] task<std::size_t> read_full(std::span<std::byte> buffer) const;
    /// Writes all of `data` at `offset`, however many operations it takes.
    [[nodiscard]] task<> write_all_at(std::span<const std::byte> data, std::uint64_t offset) const;
    [[nodiscard]] task<> write_all_at(std::string_view data, std::uint64_t offset) const { return write_all_at(as_bytes(data), offset); }
    /// Writes all of `data` at the file position.
    [[nodiscard]] task<> write_all(std::span<const std::byte> data) const;
    [[nodiscard]] task<> write_all(std::string_view data) const { return write_all(as_bytes(data)); }

private:
    static std::span<const std::byte> as_bytes(std::string_view s) noexcept { return std::as_bytes(std::span(s.data(), s.size())); }

    detail::owned_fd m_fd;
};

/// co_await file::open(...): IORING_OP_OPENAT; the path lives here, in the awaiting frame.
class [[nodiscard]] file::open_awaiter final : public detail::io_awaiter<open_awaiter> {
public:
    open_awaiter(std::string path, int flags, mode_t mode) : m_path(std::move(path)), m_flags(flags | O_CLOEXEC), m_mode(mode) {}
    // The kernel reads the path when the SQE is submitted, from this awaiter, which does not
    // move once awaited; so prepare() takes the pointer then, not at construction.
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_openat(sqe, AT_FDCWD, m_path.c_str(), m_flags, m_mode); }
    [[nodiscard]] std::string describe() const { return detail::describe_path_op("open", m_path.c_str()); }
    file await_resume() const { return file(checked_result()); }

private:
    std::string m_path;
    int m_flags;
    mode_t m_mode;
};

/// co_await f.size(): IORING_OP_STATX with AT_EMPTY_PATH; the statx buffer lives here.
class [[nodiscard]] file::size_awaiter final : public detail::io_awaiter<size_awaiter> {
public:
    explicit size_awaiter(int fd) noexcept : m_fd(fd) {}
    void prepare(io_uring_sqe* sqe) noexcept { io_uring_prep_statx(sqe, m_fd, "", AT_EMPTY_PATH, STATX_SIZE, &m_statx); }
    [[nodiscard]] std::string describe() const { return detail::describe_fd_op("statx", m_fd); }
    std::uint64_t await_resume() const {
        (void)checked_result();
        return m_statx.stx_size;
    }

private:
    int m_fd;
    struct ::statx m_statx {};
};

inline file::open_awaiter file::open(std::string path, int flags, mode_t mode) { return open_awaiter(std::move(path), flags, mode); }

inline file::size_awaiter file::size() const noexcept { return size_awaiter(fd()); }

inline task<std::size_t> file::read_full_at(std::span<std::byte> buffer, std::uint64_t offset) const {
    std::size_t done = 0;
    while (done < buffer.size()) {
        const std::size_t n = co_await read_at(buffer.subspan(done), offset + done);
        if (n == 0) break;
        done += n;
    }
    co_return done;
}

inline task<std::size_t> file::read_full(std::span<std::byte> buffer) const {
    std::size_t done = 0;
    while (done < buffer.size()) {
        const std::size_t n = co_await read(buffer.subspan(done));
        if (n == 0) break;
        done += n;
    }
    co_return done;
}

inline task<> file::write_all_at(std::span<const std::byte> data, std::uint64_t offset) const {
    std::size_t done = 0;
    while (done < data.size()) {
        const std::size_t n = co_await write_at(data.subspan(done), offset + done);
        // A regular file that accepts nothing is full in all but name (the kernel reports
        // ENOSPC for a real failure): do not spin.
        if (n == 0) detail::throw_errno(ENOSPC, detail::describe_fd_op("write", fd()));
        done += n;
    }
}

inline task<> file::write_all(std::span<const std::byte> data) const {
    std::size_t done = 0;
    while (done < data.size()) {
        const std::size_t n = co_await write(data.subspan(done));
        if (n == 0) detail::throw_errno(ENOSPC, detail::describe_fd_op("write", fd()));
        done += n;
    }
}

// ---------------------------------------------------------------------- whole files

namespace detail {

/// A string that reads of unknown total length fill: room() is the free space after what was
/// read, doubling the string when none is left (so each byte is zero-filled once, amortized);
/// take() trims it to what was read.
class read_buffer {
public:
    explicit read_buffer(std::size_t capacity) : m_data(capacity > 0 ? capacity : 1, '\0') {}
    [[nodiscard]] std::span<std::byte> room() {
        if (m_length == m_data.size()) m_data.resize(m_data.size() * 2);
        return std::as_writable_bytes(std::span(m_data).subspan(m_length));
    }
    void commit(std::size_t n) noexcept { m_length += n; }
    [[nodiscard]] std::size_t length() const noexcept { return m_length; }
    [[nodiscard]] std::string take() {
        m_data.resize(m_length);
        return std::move(m_data);
    }

private:
    std::string m_data;
    std::size_t m_length = 0;
};

}  // namespace detail

/// The whole content of the file at `path`. Works for files whose size statx does not know
/// (/proc files report 0) and files that grow while being read.
/// Throws std::system_error naming the path: `open("/no/such"): No such file or directory`,
/// `read("/some/dir"): Is a directory`.
[[nodiscard]] inline task<std::string> read_file(std::string path) {
    file f = co_await file::open(path, O_RDONLY);
    std::string content;
    try {
        const std::uint64_t size = co_await f.size();
        // One byte more than the size, so that the read that finds the end needs no new buffer.
        detail::read_buffer buffer(size > 0 ? static_cast<std::size_t>(size) + 1 : 4096);
        for (;;) {
            const std::size_t n = co_await f.read_at(buffer.room(), buffer.length());
            if (n == 0) break;
            buffer.commit(n);
        }
        content = buffer.take();
    } catch (const std::system_error& e) {
        throw std::system_error(e.code(), detail::describe_path_op("read", path.c_str()));
    }
    co_await f.close();
    co_return content;
}

/// Replaces the content of `path` with `data` (created with `mode` if missing; `flags` as
/// open(2)). `data` must stay valid until the task finishes: it does in
/// `co_await write_file(path, data)`.
[[nodiscard]] inline task<> write_file(std::string path, std::span<const std::byte> data, int flags = O_WRONLY | O_CREAT | O_TRUNC,
                                       mode_t mode = 0644) {
    file f = co_await file::open(path, flags, mode);
    try {
        co_await f.write_all_at(data, 0);
    } catch (const std::system_error& e) {
        throw std::system_error(e.code(), detail::describe_path_op("write", path.c_str()));
    }
    co_await f.close();
}

[[nodiscard]] inline task<> write_file(std::string path, std::string_view data, int flags = O_WRONLY | O_CREAT | O_TRUNC, mode_t mode = 0644) {
    return write_file(std::move(path), std::as_bytes(std::span(data.data(), data.size())), flags, mode);
}

}  // namespace coring
