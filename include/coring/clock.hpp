#pragma once
// coring::clock, the clock of every deadline in coring.
//
// It is std::chrono::steady_clock. A loop on virtual time (loop_options::virtual_time) keeps its
// own reading of the same clock that moves only when the loop jumps to the next timer: read the
// loop's time with event_loop::time(), not clock::now(), when a program may run on virtual time.

#include <chrono>

namespace coring {

using clock = std::chrono::steady_clock;

}  // namespace coring
