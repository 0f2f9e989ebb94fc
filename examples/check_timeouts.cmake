# Smoke test of examples/timeouts: each of the three patterns does what it says.
include(${CMAKE_CURRENT_LIST_DIR}/check_lib.cmake)
run_example()
expect_contains("${out}"
  "quick answered after 20 ms"
  "slow: cancelled, cleaning up\n  slow: timed out after 100 ms"
  "winner: mirror-b answered after 50 ms"
  "mirror-a: cancelled, cleaning up"
  "mirror-c: cancelled, cleaning up"
  "stopped waiting after 50 ms; the save goes on\n  save_state: finished saving\n  saved=1")
message("${out}")
