#pragma once
// What a suspended task waits for, in the profiler's terms (coring::wait_kind in profile.hpp).
// Each leaf awaiter's ready_node::operations says which kind it is; the profiler reads it from
// the task's cancellation slot when a step ends.

#include <cstdint>

namespace coring::detail {

enum class wait_kind : std::uint8_t {
    other,   ///< not one of the below (a yield, a future without a task, an awaiter of a library)
    io,      ///< a kernel operation (by io_uring opcode in the profile)
    timer,   ///< sleep, a timeout's own wait
    lock,    ///< lock, event, condition, semaphore, barrier
    queue,   ///< queue put and get, channel send and receive
    task,    ///< another task: awaiting a handle, gather, wait, wait_for, as_completed, shield, task groups
    thread,  ///< a thread: to_thread, the thread pool, run_on another loop
};
inline constexpr unsigned wait_kind_count = 7;

}  // namespace coring::detail
