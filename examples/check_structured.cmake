# Smoke test of examples/structured: task groups and timeouts behave as asyncio's.
include(${CMAKE_CURRENT_LIST_DIR}/check_lib.cmake)
run_example()
expect_contains("${out}"
  "1. task group\n  started at"
  "  hello\n  world\n  both tasks have completed now: hello, world"
  "2. a failing task\n  the body was cancelled too\n  the block failed after"
  ": the server went away"
  "3. timeouts\n  long_running_task: cancelled by the deadline\n  the long operation timed out, but we've handled it"
  "  made it with the new deadline\n  answer: made it with the new deadline")
# The failing block leaves at the failure (50 ms), not after the body's 2 s sleep.
expect_matches("${out}" "the block failed after [0-9][0-9]? ms|the block failed after [1-4][0-9][0-9] ms")
message("${out}")
