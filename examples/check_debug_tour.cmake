# Smoke test of examples/debug_tour: the slow-step report, the task tree, the statistics.
execute_process(COMMAND "${PROGRAM}" RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "debug_tour exited with ${rc}\n${out}\n${err}")
endif()
if(NOT err MATCHES "coring: Executing hog took 0\\.1[5-9][0-9] seconds\n  task: hog \\(created at [^\n]*debug_tour\\.cpp:[0-9]+\\)")
  message(FATAL_ERROR "no slow-step report on stderr:\n${err}")
endif()
foreach(expected
    "Task-1 (awaiting task_group.join of 2) created at debug_tour.cpp:"
    "├── Task-3 \"crawler\" (awaiting gather of 2) created at debug_tour.cpp:"
    "│   ├── Task-5 (awaiting sleep until +0.2"
    "│   └── Task-6 (awaiting sleep until +0.4"
    "└── Task-4 \"big-download\" (awaiting sleep until +0.9"
    "3. loop statistics:\niterations=")
  string(FIND "${out}" "${expected}" at)
  if(at EQUAL -1)
    message(FATAL_ERROR "missing \"${expected}\" in:\n${out}")
  endif()
endforeach()
message("${out}\n${err}")
