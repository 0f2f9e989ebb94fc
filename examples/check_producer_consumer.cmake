# Smoke test of examples/producer_consumer: every job is put and processed once, the bounded
# queue never holds more than its maxsize, join() returns, and the idle workers are cancelled.
execute_process(COMMAND "${PROGRAM}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err TIMEOUT 30)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "producer_consumer exited with ${rc}\n${out}\n${err}")
endif()
foreach(expected
    "producers done: 30 jobs put, queue never held more than [1-5]\n"
    "all jobs processed: 30 jobs, sum of results 465\n"
    "workers: 4 cancelled while idle\n"
    "worker shares: [0-9]+ [0-9]+ [0-9]+ [0-9]+\n")
  if(NOT out MATCHES "${expected}")
    message(FATAL_ERROR "expected a line matching \"${expected}\" in:\n${out}")
  endif()
endforeach()
if(NOT err STREQUAL "")
  message(FATAL_ERROR "unexpected output on stderr:\n${err}")
endif()
message("${out}")
