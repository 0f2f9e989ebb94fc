// Tests of coring/detail/ring.hpp: what happens when io_uring is switched off, and the
// submission-queue bookkeeping the loop relies on.
//
// A child process installs a seccomp filter that makes io_uring_setup fail the way Docker's
// default profile (EPERM) or a kernel without io_uring (ENOSYS) does, then:
//   - constructs an event_loop, which must throw one std::system_error naming cause and remedy;
//   - runs this very test binary, which must report SKIP and exit with ctest's skip code 77.
#include <coring/detail/ring.hpp>

#include <coring/event_loop.hpp>

#include "support/catch.hpp"
#include "support/child_process.hpp"

#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <string>
#include <system_error>
#include <utility>

namespace {

// Makes io_uring_setup fail with `err` in this process and every process it executes.
bool forbid_io_uring(int err) {
    sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, static_cast<unsigned>(offsetof(seccomp_data, nr))),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (static_cast<unsigned>(err) & SECCOMP_RET_DATA)),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    sock_fprog program{static_cast<unsigned short>(sizeof filter / sizeof filter[0]), filter};
    return ::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 && ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) == 0;
}

struct child_result {
    int exit_code = -1;
    std::string output;
};

// Runs `body` in a forked child with io_uring forbidden; collects its exit code and stdout.
template <class Body>
child_result in_child_without_io_uring(int err, Body body) {
    auto [status, output] = coring_test::run_in_child(
        [&]() -> int {
            if (!forbid_io_uring(err)) return 101;
            return body();
        },
        coring_test::child_stderr::inherited);
    return {WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), std::move(output)};
}

int construct_loop_and_report() {
    try {
        coring::event_loop loop;
        std::printf("constructed\n");
        return 0;
    } catch (const std::system_error& e) {
        std::printf("errno=%d\n%s\n", e.code().value(), e.what());
        std::fflush(stdout);
        return 3;
    }
}

}  // namespace

TEST_CASE("ring - EPERM (seccomp, kernel.io_uring_disabled): one system_error with cause and remedy", "[ring]") {
    const auto r = in_child_without_io_uring(EPERM, construct_loop_and_report);
    REQUIRE(r.exit_code == 3);
    CHECK(r.output.find("errno=" + std::to_string(EPERM)) != std::string::npos);
    CHECK(r.output.find("kernel.io_uring_disabled") != std::string::npos);
    CHECK(r.output.find("seccomp") != std::string::npos);
    CHECK(r.output.find("--security-opt seccomp=unconfined") != std::string::npos);
}

TEST_CASE("ring - ENOSYS: the kernel has no io_uring", "[ring]") {
    const auto r = in_child_without_io_uring(ENOSYS, construct_loop_and_report);
    REQUIRE(r.exit_code == 3);
    CHECK(r.output.find("errno=" + std::to_string(ENOSYS)) != std::string::npos);
    CHECK(r.output.find("CONFIG_IO_URING") != std::string::npos);
}

TEST_CASE("ring - a test binary without io_uring reports SKIP to ctest", "[ring]") {
    const auto r = in_child_without_io_uring(EPERM, [] {
        char self[] = "/proc/self/exe";
        char* argv[] = {self, nullptr};
        ::execv(self, argv);
        return 102;
    });
    CHECK(r.exit_code == 77);
    CHECK(r.output.rfind("SKIP: ", 0) == 0);
}

TEST_CASE("ring - setup failure messages name the usual causes", "[ring]") {
    CHECK(coring::detail::io_uring_setup_failure_message(EINVAL).find("5.11") != std::string::npos);
    CHECK(coring::detail::io_uring_probe() == 0);
}

TEST_CASE("ring - the ENOMEM hint names RLIMIT_MEMLOCK only where the kernel charges it", "[ring]") {
    using coring::detail::memlock_facts;
    const std::string charged = coring::detail::io_uring_setup_failure_message(ENOMEM, memlock_facts{.limit = 64 * 1024, .exempt = false});
    CHECK(charged.find("RLIMIT_MEMLOCK, 64 KiB") != std::string::npos);
    CHECK(charged.find("ulimit -l") != std::string::npos);
    CHECK(charged.find("5.12") == std::string::npos);  // the age of the kernel is not the cause
    // CAP_IPC_LOCK (root) or no limit: the locked-memory limit is not what failed.
    for (const memlock_facts facts : {memlock_facts{.limit = 64 * 1024, .exempt = true}, memlock_facts{.limit = RLIM_INFINITY, .exempt = false}}) {
        const std::string text = coring::detail::io_uring_setup_failure_message(ENOMEM, facts);
        CHECK(text.find("RLIMIT_MEMLOCK") == std::string::npos);
        CHECK(text.find("queue_depth") != std::string::npos);
    }
    // This process: root in CI, exempt.
    const memlock_facts here = memlock_facts::current();
    CHECK(here.exempt == (::geteuid() == 0));
}

// Without CAP_IPC_LOCK and under a small RLIMIT_MEMLOCK: where the kernel charges rings to it
// (before 5.12, and again on kernels whose rings are accounted regions, such as 6.18), rings made
// one right after another must not fail while the kernel returns the last one's share in the
// background; and a limit too small for any ring gives the hint that names it.
TEST_CASE("ring - under a small RLIMIT_MEMLOCK, rings made in a row all start", "[ring][memlock]") {
    auto [status, output] = coring_test::run_in_child(
        []() -> int {
            if (::geteuid() == 0 && ::setgid(65534) == 0 && ::setuid(65534) != 0) return 101;  // nobody: no CAP_IPC_LOCK
            const rlimit small{64 * 1024, 64 * 1024};
            if (::setrlimit(RLIMIT_MEMLOCK, &small) != 0) return 102;
            int failures = 0;
            for (int i = 0; i < 30; ++i) {
                try {
                    coring::event_loop loop;
                } catch (const std::system_error& e) {
                    std::printf("%s\n", e.what());
                    ++failures;
                }
            }
            const rlimit tiny{4096, 4096};
            if (::setrlimit(RLIMIT_MEMLOCK, &tiny) != 0) return 103;
            try {
                coring::event_loop loop;
                std::printf("no ENOMEM under 4 KiB: this kernel does not charge rings to RLIMIT_MEMLOCK\n");
            } catch (const std::system_error& e) {
                std::printf("tiny: errno=%d %s\n", e.code().value(), e.what());
            }
            std::fflush(stdout);
            return failures;
        },
        coring_test::child_stderr::inherited);
    INFO(output);
    REQUIRE(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    if (output.find("does not charge") == std::string::npos) {
        CHECK(output.find("tiny: errno=" + std::to_string(ENOMEM)) != std::string::npos);
        CHECK(output.find("RLIMIT_MEMLOCK, 4 KiB") != std::string::npos);
    }
}

// The loop's busy path asks has_unsubmitted() every iteration instead of pending_submissions(),
// which reads the kernel's head in shared memory: both must agree on what is waiting to be
// submitted, and a submit must clear it.
TEST_CASE("ring - has_unsubmitted follows prepared and submitted SQEs", "[ring]") {
    coring::detail::ring r(8, 16);
    CHECK_FALSE(r.has_unsubmitted());
    CHECK(r.pending_submissions() == 0);

    int marker = 0;  // any non-zero user_data: drain() skips 0
    for (int i = 0; i < 2; ++i) {
        io_uring_sqe* sqe = r.get_sqe();
        io_uring_prep_nop(sqe);
        io_uring_sqe_set_data(sqe, &marker);
    }
    CHECK(r.has_unsubmitted());
    CHECK(r.pending_submissions() == 2);

    r.submit_and_poll();
    CHECK_FALSE(r.has_unsubmitted());
    CHECK(r.pending_submissions() == 0);
    unsigned completed = 0;
    r.drain([&](coring::detail::io_completion* op, int result, unsigned) {
        CHECK(static_cast<void*>(op) == static_cast<void*>(&marker));
        CHECK(result == 0);
        ++completed;
    });
    CHECK(completed == 2);
}
