# Smoke test of examples/cp: copies real files (the program itself, a file whose size is not a
# multiple of the block, an empty file) with several windows and compares them byte for byte;
# a missing source fails with the errno's message.
set(dir "${WORK_DIR}/cp-smoke")
file(REMOVE_RECURSE "${dir}")
file(MAKE_DIRECTORY "${dir}")

# A file of 3 MiB + 5555 bytes with varied content (not a multiple of any block size used).
string(RANDOM LENGTH 4096 chunk)
set(content "")
foreach(i RANGE 1 3)
  string(APPEND content "${chunk}")
endforeach()
file(WRITE "${dir}/odd" "")
foreach(i RANGE 1 256)
  file(APPEND "${dir}/odd" "${content}")
endforeach()
string(SUBSTRING "${content}" 0 5555 tail)
file(APPEND "${dir}/odd" "${tail}")
file(WRITE "${dir}/empty" "")

function(copy_and_compare source window block)
  get_filename_component(name "${source}" NAME)
  set(dest "${dir}/${name}.copy.${window}.${block}")
  execute_process(COMMAND "${PROGRAM}" "${source}" "${dest}" --window ${window} --block ${block}
    RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "cp ${source} failed (${rc}):\n${out}\n${err}")
  endif()
  execute_process(COMMAND "${CMAKE_COMMAND}" -E compare_files "${source}" "${dest}" RESULT_VARIABLE same)
  if(NOT same EQUAL 0)
    message(FATAL_ERROR "the copy of ${source} differs from the original")
  endif()
  message("${out}")
endfunction()

copy_and_compare("${PROGRAM}" 16 131072)
copy_and_compare("${dir}/odd" 1 4096)
copy_and_compare("${dir}/odd" 7 65536)
copy_and_compare("${dir}/odd" 64 1000)
copy_and_compare("${dir}/empty" 4 4096)

execute_process(COMMAND "${PROGRAM}" "${dir}/missing" "${dir}/never" RESULT_VARIABLE rc ERROR_VARIABLE err)
if(rc EQUAL 0 OR NOT err MATCHES "open\\(\"[^\"]*missing\"\\): No such file or directory")
  message(FATAL_ERROR "a missing source should fail with ENOENT, got ${rc}: ${err}")
endif()
file(REMOVE_RECURSE "${dir}")
