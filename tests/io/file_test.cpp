// Tests of coring/io/file.hpp: coring::file, read_file, write_file.
#include <coring/io/file.hpp>

#include <coring/run.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>

#include "support/bytes.hpp"
#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdlib>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

using coring_test::bytes;
using coring_test::count_open_fds;
using coring_test::temp_dir;
using coring_test::text;

// A megabyte of the alphabet, over and over.
std::string alphabet_megabyte() {
    std::string big(1 << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    return big;
}

}  // namespace

namespace {

// Opens (creating) `path` read-write and writes "0123456789" at offset 0.
coring::task<coring::file> open_with_ten_digits(std::string path) {
    coring::file f = co_await coring::file::open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    const std::size_t w = co_await f.write_at("0123456789", 0);
    CHECK(w == 10);
    co_return f;
}

}  // namespace

TEST_CASE("file - open creates the file with the mode given, close-on-exec", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        coring::file f = co_await coring::file::open(dir.file("a"), O_RDWR | O_CREAT | O_TRUNC, 0600);
        CHECK(f.is_open());
        CHECK((::fcntl(f.fd(), F_GETFD) & FD_CLOEXEC) != 0);
        struct stat st {};
        REQUIRE(::stat(dir.file("a").c_str(), &st) == 0);
        CHECK((st.st_mode & 0777) == 0600);
        co_await f.close();
    }());
}

TEST_CASE("file - write_at and read_at address the file at their offsets", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        coring::file f = co_await open_with_ten_digits(dir.file("a"));
        const std::size_t w2 = co_await f.write_at(bytes("xy"), 3);
        CHECK(w2 == 2);
        std::array<std::byte, 16> buf{};
        const std::size_t r = co_await f.read_at(buf, 2);
        CHECK(text(std::span(buf).first(r)) == "2xy56789");
        co_await f.close();
    }());
}

TEST_CASE("file - read_at past the end returns 0", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        coring::file f = co_await open_with_ten_digits(dir.file("a"));
        std::array<std::byte, 16> buf{};
        const std::size_t past_end = co_await f.read_at(buf, 100);
        CHECK(past_end == 0);
        co_await f.close();
    }());
}

TEST_CASE("file - size is the file's size", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        coring::file f = co_await open_with_ten_digits(dir.file("a"));
        const std::uint64_t size = co_await f.size();
        CHECK(size == 10);
        co_await f.close();
    }());
}

TEST_CASE("file - sync and sync_data succeed on a written file", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        coring::file f = co_await open_with_ten_digits(dir.file("a"));
        const bool sync_threw = co_await coring_test::throws<std::system_error>(f.sync());
        const bool sync_data_threw = co_await coring_test::throws<std::system_error>(f.sync_data());
        CHECK_FALSE(sync_threw);
        CHECK_FALSE(sync_data_threw);
        co_await f.close();
    }());
}

TEST_CASE("file - close is idempotent: the descriptor is freed once", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const int fds_before = count_open_fds();
        coring::file f = co_await open_with_ten_digits(dir.file("a"));
        co_await f.close();
        CHECK_FALSE(f.is_open());
        co_await f.close();
        CHECK(count_open_fds() == fds_before);
    }());
}

TEST_CASE("file - read and write use and advance the file position", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        coring::file f = co_await coring::file::open(dir.file("pos"), O_RDWR | O_CREAT);
        const std::size_t a = co_await f.write("hello ");
        const std::size_t b = co_await f.write("world");
        CHECK(a + b == 11);
        CHECK(::lseek(f.fd(), 0, SEEK_CUR) == 11);
        REQUIRE(::lseek(f.fd(), 0, SEEK_SET) == 0);
        std::array<std::byte, 6> buf{};
        const std::size_t r1 = co_await f.read(buf);
        CHECK(text(std::span(buf).first(r1)) == "hello ");
        const std::size_t r2 = co_await f.read(buf);
        CHECK(text(std::span(buf).first(r2)) == "world");
        const std::size_t r3 = co_await f.read(buf);
        CHECK(r3 == 0);
        co_await f.close();
    }());
}

TEST_CASE("file - write_all and read_full go on through short writes and reads", "[file]") {
    coring::run([]() -> coring::task<> {
        // A pipe gives short reads (the reader sees what was written so far) and, with a full
        // pipe buffer, short writes: write_all / read_full must loop.
        int fds[2];
        REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
        coring::file reader(fds[0]);
        coring::file writer(fds[1]);
        const std::string big = alphabet_megabyte();
        auto write_side = [](coring::file& w, const std::string& data) -> coring::task<> {
            co_await w.write_all(data);
            co_await w.close();
        };
        auto h = coring::create_task(write_side(writer, big));
        std::string got(big.size() + 10, '\0');
        const std::size_t n = co_await reader.read_full(std::as_writable_bytes(std::span(got)));
        co_await h;
        CHECK(n == big.size());  // fewer than asked only at end of file
        got.resize(n);
        CHECK(got == big);
    }());
}

TEST_CASE("file - write_all_at and read_full_at round trip a large buffer at an offset", "[file]") {
    coring::run([]() -> coring::task<> {
        const std::string big = alphabet_megabyte();
        temp_dir dir;
        coring::file f = co_await coring::file::open(dir.file("big"), O_RDWR | O_CREAT);
        co_await f.write_all_at(big, 4096);
        std::string back(big.size() + 4096, 'z');
        const std::size_t m = co_await f.read_full_at(std::as_writable_bytes(std::span(back)), 0);
        CHECK(m == big.size() + 4096);
        CHECK(back.substr(4096) == big);
        CHECK(back[0] == '\0');  // the hole reads as zeros
        co_await f.close();
    }());
}

TEST_CASE("file - open of a missing path: ENOENT naming the path", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string missing = dir.file("missing/file");
        try {
            (void)co_await coring::file::open(missing);
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code() == std::error_code(ENOENT, std::system_category()));
            CHECK(std::string(e.what()).find("open(\"" + missing + "\")") == 0);
        }
    }());
}

TEST_CASE("file - read_file of a missing path: ENOENT naming the path", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string missing = dir.file("missing/file");
        try {
            (void)co_await coring::read_file(missing);
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == ENOENT);
            CHECK(std::string(e.what()).find(missing) != std::string::npos);
        }
    }());
}

TEST_CASE("file - read_file of a directory: EISDIR naming the read and the path", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        try {
            (void)co_await coring::read_file(dir.path);  // a directory opens, but cannot be read
            FAIL("no exception");
        } catch (const std::system_error& e) {
            CHECK(e.code().value() == EISDIR);
            CHECK(std::string(e.what()).find("read(\"" + dir.path + "\")") == 0);
        }
    }());
}

TEST_CASE("file - write_file into a missing directory throws system_error", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string missing = dir.file("missing/file");
        const bool threw = co_await coring_test::throws<std::system_error>(coring::write_file(missing, "x"));
        CHECK(threw);
    }());
}

TEST_CASE("file - read_file gives back what write_file wrote", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const int fds_before = count_open_fds();
        const std::string path = dir.file("whole");
        std::string content;
        for (int i = 0; i < 100000; ++i) content += std::to_string(i) + "\n";
        co_await coring::write_file(path, content);
        const std::string back = co_await coring::read_file(path);
        CHECK(back == content);
        CHECK(count_open_fds() == fds_before);
    }());
}

TEST_CASE("file - write_file truncates a longer file", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string path = dir.file("whole");
        co_await coring::write_file(path, std::string(1000, 'l'));
        co_await coring::write_file(path, "short");
        const std::string again = co_await coring::read_file(path);
        CHECK(again == "short");
    }());
}

TEST_CASE("file - read_file of an empty file is empty", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string path = dir.file("whole");
        co_await coring::write_file(path, "");
        const std::string empty = co_await coring::read_file(path);
        CHECK(empty.empty());
    }());
}

TEST_CASE("file - read_file reads a file whose size statx does not know", "[file]") {
    coring::run([]() -> coring::task<> {
        const int fds_before = count_open_fds();
        const std::string status = co_await coring::read_file("/proc/self/status");
        CHECK(status.find("Pid:") != std::string::npos);
        CHECK(count_open_fds() == fds_before);
    }());
}

TEST_CASE("file - the destructor closes a file that was not closed", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const int fds_before = count_open_fds();
        int fd = -1;
        {
            coring::file f = co_await coring::file::open(dir.file("x"), O_WRONLY | O_CREAT);
            fd = f.fd();
            coring::file moved = std::move(f);
            CHECK_FALSE(f.is_open());
            CHECK(moved.fd() == fd);
        }
        CHECK(::fcntl(fd, F_GETFD) == -1);
        {
            coring::file g = co_await coring::file::open(dir.file("y"), O_WRONLY | O_CREAT);
            (void)g.close();  // never awaited: the file keeps its descriptor
            CHECK(g.is_open());
            fd = g.fd();
        }
        CHECK(::fcntl(fd, F_GETFD) == -1);
        CHECK(count_open_fds() == fds_before);
    }());
}

TEST_CASE("file - cancelling a blocked read of a FIFO: prompt, buffer not written after", "[file][cancel]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string fifo = dir.file("fifo");
        REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
        // O_RDWR: opening a FIFO this way does not wait for a writer (Linux).
        coring::file f = co_await coring::file::open(fifo, O_RDWR);
        std::array<std::byte, 16> buffer{};
        buffer.fill(std::byte{0x5a});
        auto reader = [](coring::file& file, std::span<std::byte> buf) -> coring::task<std::size_t> { co_return co_await file.read(buf); };
        auto h = coring::create_task(reader(f, buffer));
        co_await coring::sleep(5ms);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 1);
        const coring_test::cancel_outcome ended = co_await coring_test::cancel_and_await(h);
        CHECK(ended.by_cancelled_error);
        CHECK(ended.ms_after_cancel < 1000);
        CHECK(coring::detail::scheduler_of(coring::get_running_loop()).user_ops_in_flight() == 0);
        // Write into the FIFO after the cancel: the buffer stays as it was, the data stays queued.
        const int w = ::open(fifo.c_str(), O_WRONLY | O_CLOEXEC);
        REQUIRE(w >= 0);
        REQUIRE(::write(w, "late", 4) == 4);
        co_await coring::sleep(5ms);
        CHECK(buffer[0] == std::byte{0x5a});
        std::array<std::byte, 4> back{};
        const std::size_t n = co_await f.read(back);
        CHECK(text(std::span(back).first(n)) == "late");
        ::close(w);
        co_await f.close();
    }());
}

TEST_CASE("file - O_DIRECT reads with an aligned buffer", "[file]") {
    coring::run([]() -> coring::task<> {
        temp_dir dir;
        const std::string path = dir.file("direct");
        std::string block(8192, 'q');
        co_await coring::write_file(path, block);
        coring::file f;
        try {
            f = co_await coring::file::open(path, O_RDONLY | O_DIRECT);
        } catch (const std::system_error& e) {
            if (e.code().value() != EINVAL) throw;
        }
        if (!f.is_open()) co_return;  // a file system without O_DIRECT (tmpfs)
        void* mem = nullptr;
        REQUIRE(::posix_memalign(&mem, 4096, 4096) == 0);
        std::span<std::byte> buf(static_cast<std::byte*>(mem), 4096);
        const std::size_t n = co_await f.read_at(buf, 4096);
        CHECK(n == 4096);
        CHECK(static_cast<char>(buf[0]) == 'q');
        std::free(mem);
        co_await f.close();
    }());
}
