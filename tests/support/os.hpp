#pragma once
// Helpers of the I/O tests: counting descriptors, reading a pipe to its end, temporary
// directories, test data.

#include <dirent.h>
#include <stdlib.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdlib>
#include <string>
#include <system_error>

namespace coring_test {

/// Descriptors open in this process, not counting 0, 1 and 2 (and the one opendir uses, which
/// takes the place of "." or ".." in the count).
inline int count_open_fds() {
    int n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (::readdir(d) != nullptr) ++n;
        ::closedir(d);
    }
    return n - 3;
}

/// Reads `fd` until end of file (every writer closed it); returns everything read.
inline std::string read_until_eof(int fd) {
    std::string text;
    char buffer[4096];
    for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) text.append(buffer, static_cast<std::size_t>(n));
    return text;
}

/// A temporary directory under /tmp, removed with its files.
struct temp_dir {
    std::string path;
    temp_dir() {
        char tmpl[] = "/tmp/coring_test_XXXXXX";
        if (::mkdtemp(tmpl) == nullptr) throw std::system_error(errno, std::generic_category(), "mkdtemp");
        path = tmpl;
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;
    ~temp_dir() { [[maybe_unused]] int rc = std::system(("rm -rf " + path).c_str()); }
    [[nodiscard]] std::string file(const std::string& name) const { return path + "/" + name; }
};

/// `n` bytes of a pattern that does not repeat with any short period, starting at `offset`:
/// a byte lost, duplicated or reordered anywhere in a stream shows.
inline std::string pattern(std::size_t offset, std::size_t n) {
    std::string s(n, '\0');
    for (std::size_t i = 0; i < n; ++i) s[i] = static_cast<char>('a' + ((offset + i) * 7 + (offset + i) / 251) % 26);
    return s;
}

}  // namespace coring_test
