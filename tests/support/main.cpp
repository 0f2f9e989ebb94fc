// The main() of every test executable. When io_uring cannot be set up on this machine
// (kernel.io_uring_disabled, a seccomp profile) the executable prints why and exits with 77,
// which ctest reports as "skipped" (SKIP_RETURN_CODE) instead of a failure of every test.
#if defined(CORING_CATCH2_V3)
#include <catch2/catch_session.hpp>
#else
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>
#endif

#include <coring/detail/ring.hpp>

#include <cstdio>
#include <cstring>

int main(int argc, char** argv) {
    if (const int err = coring::detail::io_uring_probe(); err != 0) {
        std::printf("SKIP: %s\n", coring::detail::io_uring_setup_failure_message(err).c_str());
        return 77;
    }
    return Catch::Session().run(argc, argv);
}
