# Shared by the smoke tests of the example programs (included by check_*.cmake, which ctest runs
# with -DPROGRAM=path/to/the/example): run the program, then check what it printed.

# run_example([TIMEOUT seconds]): runs ${PROGRAM} without arguments and fails unless it exits with
# status 0; sets `out` and `err` (its stdout and stderr) in the caller.
function(run_example)
  cmake_parse_arguments(arg "" "TIMEOUT" "" ${ARGN})
  set(timeout "")
  if(DEFINED arg_TIMEOUT)
    set(timeout TIMEOUT ${arg_TIMEOUT})
  endif()
  execute_process(COMMAND "${PROGRAM}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err ${timeout})
  get_filename_component(name "${PROGRAM}" NAME)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "${name} exited with ${rc}\n${out}\n${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
  set(err "${err}" PARENT_SCOPE)
endfunction()

# expect_contains(text expected...): each `expected` string occurs somewhere in `text`.
function(expect_contains text)
  math(EXPR last "${ARGC} - 1")
  foreach(i RANGE 1 ${last})
    string(FIND "${text}" "${ARGV${i}}" at)
    if(at EQUAL -1)
      message(FATAL_ERROR "missing \"${ARGV${i}}\" in:\n${text}")
    endif()
  endforeach()
endfunction()

# expect_matches(text regex...): each regular expression matches somewhere in `text`.
function(expect_matches text)
  math(EXPR last "${ARGC} - 1")
  foreach(i RANGE 1 ${last})
    if(NOT text MATCHES "${ARGV${i}}")
      message(FATAL_ERROR "expected a match for \"${ARGV${i}}\" in:\n${text}")
    endif()
  endforeach()
endfunction()
