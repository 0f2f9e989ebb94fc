# Warnings for coring's own tests, examples and benchmarks (not imposed on users).
# CORING_WERROR turns them into errors (CI's release configuration does).
option(CORING_WERROR "Treat warnings as errors in coring's own targets" OFF)

function(coring_set_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wnon-virtual-dtor
    $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
    # g++ 12 reports a false -Wrestrict inside libstdc++'s operator+(const char*, std::string&&)
    # at -O2 (GCC PR 105651).
    $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>)
  if(CORING_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()
