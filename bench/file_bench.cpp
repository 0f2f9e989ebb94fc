// 4 KiB random reads from a 1 GiB file at queue depth 32 (issue 5's file benchmark).
//
//   randread_4k_qd32:coring        32 tasks, each looping co_await file.read_at(buf, random offset)
//   randread_4k_qd32:raw_liburing  the same 32 reads kept in flight by hand through liburing
//   randread_4k_qd32_busy_poll:*   the same two, polling instead of sleeping in the kernel while
//                                  reads are in flight: coring with loop_options::busy_poll,
//                                  liburing with io_uring_submit_and_get_events
//   randread_4k_qd32_fio_like:*    busy_poll, and each read submitted the moment it is prepared
//                                  (coring: loop_options::eager_submit). fio's io_uring engine
//                                  works this way: one io_uring_enter per I/O, never with
//                                  min_complete > 0.
//
// The default loop submits what the tasks queued once per iteration and sleeps in the kernel
// when no task is ready; on a virtual machine's disk, fio's policy (start each I/O at once, do
// not wait in the kernel) gets more IOPS out of the device. The three cases separate that
// policy from coring's own cost (see bench/README.md, "Files").
//
// items_per_second is the IOPS. The target compares coring with fio's io_uring engine, which
// bench/file_vs_fio.sh runs beside this binary on the same file: coring >= 0.95x fio's IOPS.
// The raw liburing loops here are the in-process floors for each policy.
//
// The data file is created once and reused: CORING_FILE_BENCH_PATH (default: file_bench.data
// next to this binary) of CORING_FILE_BENCH_BYTES bytes (default 1 GiB; ctest sets 4 MiB).
// It is written with real data, because reads of unwritten extents never reach the device. Reads
// use O_DIRECT (CORING_FILE_BENCH_DIRECT=0 turns it off); a file system without it (tmpfs) falls
// back to buffered reads, which the "direct" counter reports (0), and the figures then measure
// the page cache, not the device.
#include <coring/coring.hpp>
#include <coring/io/file.hpp>

#include "support/ratio_main.hpp"

#include <benchmark/benchmark.h>
#include <fcntl.h>
#include <liburing.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <coroutine>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

constexpr std::size_t block = 4096;
constexpr int depth = 32;
constexpr int reads_per_iteration = 4096;

struct bench_file {
    std::string path;
    std::uint64_t size = 0;
    bool direct = false;
};

std::uint64_t env_u64(const char* name, std::uint64_t fallback) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0' ? std::strtoull(v, nullptr, 10) : fallback;
}

std::string default_path() {
    char self[4096];
    const ssize_t len = ::readlink("/proc/self/exe", self, sizeof self - 1);
    if (len <= 0) return "file_bench.data";
    self[len] = '\0';
    std::string dir(self);
    dir.resize(dir.rfind('/') + 1);
    return dir + "file_bench.data";
}

// Creates the data file once (or again if its size differs), with non-zero content.
const bench_file& data_file() {
    static const bench_file file = [] {
        bench_file f;
        const char* p = std::getenv("CORING_FILE_BENCH_PATH");
        f.path = p != nullptr && *p != '\0' ? p : default_path();
        f.size = env_u64("CORING_FILE_BENCH_BYTES", std::uint64_t{1} << 30) / block * block;
        if (f.size < block * depth) f.size = block * depth;
        struct stat st {};
        if (::stat(f.path.c_str(), &st) != 0 || static_cast<std::uint64_t>(st.st_size) != f.size) {
            std::fprintf(stderr, "file_bench: writing %llu bytes to %s (once)\n", static_cast<unsigned long long>(f.size), f.path.c_str());
            const int fd = ::open(f.path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0) throw std::runtime_error("file_bench: cannot create " + f.path + ": " + std::strerror(errno));
            std::vector<char> chunk(1 << 20);
            std::uint64_t x = 0x9e3779b97f4a7c15ull;
            for (std::uint64_t done = 0; done < f.size; done += chunk.size()) {
                for (auto& c : chunk) c = static_cast<char>((x ^= x << 13, x ^= x >> 7, x ^= x << 17) & 0xff);
                const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(chunk.size(), f.size - done));
                if (::pwrite(fd, chunk.data(), n, static_cast<off_t>(done)) != static_cast<ssize_t>(n))
                    throw std::runtime_error("file_bench: cannot write " + f.path);
            }
            ::fsync(fd);
            ::close(fd);
        }
        f.direct = env_u64("CORING_FILE_BENCH_DIRECT", 1) != 0;
        if (f.direct) {
            const int fd = ::open(f.path.c_str(), O_RDONLY | O_DIRECT | O_CLOEXEC);
            if (fd < 0) {
                std::fprintf(stderr, "file_bench: O_DIRECT unavailable on %s (%s): buffered reads\n", f.path.c_str(), std::strerror(errno));
                f.direct = false;
            } else {
                ::close(fd);
            }
        }
        return f;
    }();
    return file;
}

struct aligned_buffers {
    std::byte* memory = nullptr;
    aligned_buffers() {
        void* p = nullptr;
        if (::posix_memalign(&p, block, block * depth) != 0) throw std::bad_alloc();
        memory = static_cast<std::byte*>(p);
    }
    ~aligned_buffers() { std::free(memory); }
    std::span<std::byte> operator[](int i) const { return {memory + static_cast<std::size_t>(i) * block, block}; }
};

// xorshift64*: cheap, and each reader has its own stream.
struct random_offsets {
    std::uint64_t state;
    std::uint64_t blocks;
    std::uint64_t next() noexcept {
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        return (state * 0x2545f4914f6cdd1dull) % blocks * block;
    }
};

// ---------------------------------------------------------------------- coring

// How the loop submits and waits, for the three cases of this benchmark.
enum class policy {
    loop_default,  // SQEs go to the kernel once per loop iteration; the loop blocks when idle
    busy_poll,     // the same, but the loop polls instead of blocking (loop_options::busy_poll)
    fio_like,      // busy_poll, and every read is submitted the moment it is prepared
};

coring::task<> reader(const coring::file& f, std::span<std::byte> buf, random_offsets& rng, int& remaining) {
    while (remaining > 0) {
        --remaining;
        const std::size_t n = co_await f.read_at(buf, rng.next());
        if (n != block) throw std::runtime_error("file_bench: short read");
    }
}

coring::task<> read_batch(const coring::file& f, const aligned_buffers& bufs, std::vector<random_offsets>& rngs, int reads) {
    int remaining = reads;
    std::vector<coring::task_handle<>> readers;
    readers.reserve(depth);
    for (int i = 0; i < depth; ++i)
        readers.push_back(coring::create_task(reader(f, bufs[i], rngs[static_cast<std::size_t>(i)], remaining)));
    for (auto& r : readers) co_await r;
}

coring::task<coring::file> open_data(const bench_file& d) { co_return co_await coring::file::open(d.path, O_RDONLY | (d.direct ? O_DIRECT : 0)); }

void randread_coring(benchmark::State& state, policy how) {
    const bench_file& d = data_file();
    aligned_buffers bufs;
    std::vector<random_offsets> rngs;
    for (int i = 0; i < depth; ++i) rngs.push_back({0x1234567ull * static_cast<std::uint64_t>(i + 1), d.size / block});
    // busy_poll: spin on the ring for up to 200 us before sleeping; with 32 reads in flight a
    // completion comes long before that, so the loop never sleeps while it reads.
    const auto spin = how == policy::loop_default ? std::chrono::microseconds(0) : std::chrono::microseconds(200);
    coring::event_loop loop(coring::loop_options{.queue_depth = 64, .busy_poll = spin, .eager_submit = how == policy::fio_like});
    coring::file f = loop.run_until_complete(open_data(d));
    for (auto _ : state) loop.run_until_complete(read_batch(f, bufs, rngs, reads_per_iteration));
    f = coring::file();
    loop.close();
    state.SetItemsProcessed(state.iterations() * reads_per_iteration);
    state.counters["direct"] = d.direct ? 1 : 0;
}

// ---------------------------------------------------------------------- raw liburing

void randread_raw_liburing(benchmark::State& state, policy how) {
    const bench_file& d = data_file();
    aligned_buffers bufs;
    std::vector<random_offsets> rngs;
    for (int i = 0; i < depth; ++i) rngs.push_back({0x1234567ull * static_cast<std::uint64_t>(i + 1), d.size / block});
    const int fd = ::open(d.path.c_str(), O_RDONLY | O_CLOEXEC | (d.direct ? O_DIRECT : 0));
    io_uring ring;
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    if (fd < 0 || io_uring_queue_init_params(64, &ring, &params) < 0) {
        state.SkipWithError("setup failed");
        if (fd >= 0) ::close(fd);
        return;
    }
    auto queue_read = [&](int slot) {
        io_uring_sqe* sqe = io_uring_get_sqe(&ring);
        io_uring_prep_read(sqe, fd, bufs[slot].data(), block, rngs[static_cast<std::size_t>(slot)].next());
        io_uring_sqe_set_data64(sqe, static_cast<std::uint64_t>(slot) + 1);
        if (how == policy::fio_like) io_uring_submit(&ring);
    };
    for (auto _ : state) {
        int issued = 0;
        int completed = 0;
        for (int i = 0; i < depth; ++i, ++issued) queue_read(i);
        while (completed < reads_per_iteration) {
            if (how == policy::loop_default)
                io_uring_submit_and_wait(&ring, 1);
            else
                io_uring_submit_and_get_events(&ring);  // never sleep in the kernel
            io_uring_cqe* cqe;
            unsigned head;
            unsigned n = 0;
            io_uring_for_each_cqe(&ring, head, cqe) {
                ++n;
                if (cqe->res != static_cast<int>(block)) {
                    state.SkipWithError("short read");
                    break;
                }
                const int slot = static_cast<int>(cqe->user_data - 1);
                if (issued < reads_per_iteration) {
                    queue_read(slot);
                    ++issued;
                }
            }
            io_uring_cq_advance(&ring, n);
            completed += static_cast<int>(n);
        }
    }
    io_uring_queue_exit(&ring);
    ::close(fd);
    state.SetItemsProcessed(state.iterations() * reads_per_iteration);
    state.counters["direct"] = d.direct ? 1 : 0;
}

}  // namespace

BENCHMARK_CAPTURE(randread_coring, default, policy::loop_default)->Name("randread_4k_qd32:coring")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(randread_raw_liburing, default, policy::loop_default)->Name("randread_4k_qd32:raw_liburing")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(randread_coring, busy_poll, policy::busy_poll)->Name("randread_4k_qd32_busy_poll:coring")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(randread_raw_liburing, busy_poll, policy::busy_poll)
    ->Name("randread_4k_qd32_busy_poll:raw_liburing")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(randread_coring, fio_like, policy::fio_like)->Name("randread_4k_qd32_fio_like:coring")->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_CAPTURE(randread_raw_liburing, fio_like, policy::fio_like)
    ->Name("randread_4k_qd32_fio_like:raw_liburing")
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

CORING_BENCHMARK_MAIN()
