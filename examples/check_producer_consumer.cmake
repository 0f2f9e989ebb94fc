# Smoke test of examples/producer_consumer: every job is put and processed once, the bounded
# queue never holds more than its maxsize, join() returns, and the idle workers are cancelled.
include(${CMAKE_CURRENT_LIST_DIR}/check_lib.cmake)
run_example(TIMEOUT 30)
expect_matches("${out}"
  "producers done: 30 jobs put, queue never held more than [1-5]\n"
  "all jobs processed: 30 jobs, sum of results 465\n"
  "workers: 4 cancelled while idle\n"
  "worker shares: [0-9]+ [0-9]+ [0-9]+ [0-9]+\n")
if(NOT err STREQUAL "")
  message(FATAL_ERROR "unexpected output on stderr:\n${err}")
endif()
message("${out}")
