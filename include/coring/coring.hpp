#pragma once
// coring: asyncio for C++20 on io_uring. The umbrella header: includes every public header.

#include <coring/clock.hpp>
#include <coring/config.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/run.hpp>
#include <coring/task.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>
