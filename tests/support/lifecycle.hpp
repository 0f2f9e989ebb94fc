#pragma once
// The lifecycle matrix shared by the tests of combinators that own children (gather, wait_for,
// task_group): a child that succeeds / throws / is cancelled, before / during / after the
// combinator's own cancellation. Each cell checks the combinator's outcome and that no child is
// left running and no frame alive.

#include <coring/coring.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"

#include <stdexcept>
#include <string>

namespace coring_test {

enum class child_end { succeeds, throws, cancelled };
enum class when_end { before, during, after };

inline const char* to_string(child_end e) {
    return e == child_end::succeeds ? "succeeds" : e == child_end::throws ? "throws" : "cancelled";
}
inline const char* to_string(when_end w) {
    return w == when_end::before ? "before" : w == when_end::during ? "during" : "after";
}

struct child_error : std::runtime_error {
    child_error() : std::runtime_error("child failed") {}
};

/// A child whose end is `end`, happening `when` relative to the combinator's cancellation:
///   before: it ends by itself at 5 ms (the combinator is cancelled at 20 ms);
///   during: it is still waiting at 20 ms and ends in its reaction to the cancellation;
///   after:  it reacts to the cancellation with a 10 ms cleanup that awaits, then ends.
/// `running` counts children that have started and not finished.
inline coring::task<int> matrix_child(child_end end, when_end when, int& running) {
    ++running;
    struct leave {
        int& r;
        ~leave() { --r; }
    } on_exit{running};
    if (when == when_end::before) {
        co_await coring::sleep(5ms);
        if (end == child_end::throws) throw child_error();
        if (end == child_end::cancelled) {
            coring::current_task().cancel();
            co_await coring::sleep(0s);  // delivered here
        }
        co_return 1;
    }
    std::exception_ptr cancellation;
    try {
        co_await coring::sleep(1h);
    } catch (const coring::cancelled_error&) {
        cancellation = std::current_exception();
    }
    if (when == when_end::after) co_await coring::sleep(10ms);  // cleanup that awaits
    if (end == child_end::throws) throw child_error();
    if (end == child_end::cancelled) std::rethrow_exception(cancellation);
    co_return 1;  // swallowed the cancellation
}

/// A sibling that only ends when cancelled.
inline coring::task<int> matrix_sibling(int& running) {
    ++running;
    struct leave {
        int& r;
        ~leave() { --r; }
    } on_exit{running};
    co_await coring::sleep(1h);
    co_return 2;
}

/// Runs `cell(end, when, running) -> task<>` for each of the nine cells, each on a fresh loop,
/// and checks after each that the loop reported nothing, no child is left running (the cell's
/// own checks) and every frame was freed.
template <class Cell>
void for_each_matrix_cell(Cell cell) {
    for (child_end end : {child_end::succeeds, child_end::throws, child_end::cancelled}) {
        for (when_end when : {when_end::before, when_end::during, when_end::after}) {
            CAPTURE(to_string(end), to_string(when));
            const auto frames_before = live_frames();
            int running = 0;
            coring::event_loop loop;
            captured_reports reports;
            reports.install(loop);
            loop.run_until_complete(cell(end, when, running));
            loop.close();
            CHECK(reports.reports.empty());
            CHECK(live_frames() == frames_before);
        }
    }
}

}  // namespace coring_test
