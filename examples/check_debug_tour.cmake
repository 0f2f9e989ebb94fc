# Smoke test of examples/debug_tour: the slow-step report, the task tree, the statistics.
include(${CMAKE_CURRENT_LIST_DIR}/check_lib.cmake)
run_example()
if(NOT err MATCHES "coring: Executing hog took 0\\.1[5-9][0-9] seconds\n  task: hog \\(created at [^\n]*debug_tour\\.cpp:[0-9]+\\)")
  message(FATAL_ERROR "no slow-step report on stderr:\n${err}")
endif()
expect_contains("${out}"
  "Task-1 (awaiting task_group.join of 2) created at debug_tour.cpp:"
  "├── Task-3 \"crawler\" (awaiting gather of 2) created at debug_tour.cpp:"
  "3. loop statistics:\niterations=")
# The sleeps' time left, as the dump 100 ms in sees it: just under 0.2, 0.4 and 0.9 s (the
# sleeps start a moment after the dump's timer, so +0.196 is as right as +0.200).
expect_matches("${out}"
  "│   ├── Task-5 \\(awaiting sleep until \\+0\\.(1[5-9][0-9]|200)"
  "│   └── Task-6 \\(awaiting sleep until \\+0\\.(3[5-9][0-9]|400)"
  "└── Task-4 \"big-download\" \\(awaiting sleep until \\+0\\.(8[5-9][0-9]|900)")
message("${out}\n${err}")
