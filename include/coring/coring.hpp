#pragma once
// coring: asyncio for C++20 on io_uring. The umbrella header: includes every public header
// (except testing/catch2.hpp, which needs Catch2: include it in test code).

#include <coring/as_completed.hpp>
#include <coring/clock.hpp>
#include <coring/config.hpp>
#include <coring/debug.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/gather.hpp>
#include <coring/io/buffer_ring.hpp>
#include <coring/io/file.hpp>
#include <coring/io/ops.hpp>
#include <coring/net/address.hpp>
#include <coring/net/resolve.hpp>
#include <coring/net/server.hpp>
#include <coring/net/socket.hpp>
#include <coring/net/stream.hpp>
#include <coring/process.hpp>
#include <coring/result.hpp>
#include <coring/run.hpp>
#include <coring/shield.hpp>
#include <coring/sync/barrier.hpp>
#include <coring/sync/condition.hpp>
#include <coring/sync/event.hpp>
#include <coring/sync/mutex.hpp>
#include <coring/sync/queue.hpp>
#include <coring/sync/semaphore.hpp>
#include <coring/task.hpp>
#include <coring/task_group.hpp>
#include <coring/task_handle.hpp>
#include <coring/thread/thread_pool.hpp>
#include <coring/thread/to_thread.hpp>
#include <coring/time.hpp>
#include <coring/wait.hpp>
#include <coring/wait_for.hpp>
