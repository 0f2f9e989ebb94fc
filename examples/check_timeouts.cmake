# Smoke test of examples/timeouts: each of the three patterns does what it says.
execute_process(COMMAND "${PROGRAM}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "timeouts exited with ${rc}\n${out}\n${err}")
endif()
foreach(expected
    "quick answered after 20 ms"
    "slow: cancelled, cleaning up\n  slow: timed out after 100 ms"
    "winner: mirror-b answered after 50 ms"
    "mirror-a: cancelled, cleaning up"
    "mirror-c: cancelled, cleaning up"
    "stopped waiting after 50 ms; the save goes on\n  save_state: finished saving\n  saved=1")
  string(FIND "${out}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "missing \"${expected}\" in:\n${out}")
  endif()
endforeach()
message("${out}")
