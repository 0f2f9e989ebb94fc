#pragma once
// What the block-shaped awaitables share (with_timeout, with_task_group): they run a body
// callable in the awaiting task, as Python runs an `async with` block, and return its result.

#include <coring/detail/scheduler.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/errors.hpp>

#include <string>
#include <type_traits>

namespace coring::detail {

/// T, for a body that takes Arg& and returns task<T>.
template <class Body, class Arg>
using body_result_t = typename std::invoke_result_t<Body&, Arg&>::value_type;

/// The running task's state; invalid_state_error outside a task (a callback has none to cancel).
inline state_base& running_task_state(const char* what) {
    state_base* task = running_scheduler().current_task_state();
    if (task == nullptr) throw invalid_state_error(std::string("coring: ") + what + " outside a task");
    return *task;
}

}  // namespace coring::detail
