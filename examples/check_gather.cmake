# Smoke test of examples/gather: results in argument order after about one second.
include(${CMAKE_CURRENT_LIST_DIR}/check_lib.cmake)
run_example()
expect_matches("${out}"
  # the fetches start in argument order,
  "fetching url1 \\.\\.\\.\nfetching url2 \\.\\.\\.\nfetching url3 \\.\\.\\.\n"
  # finish in the order of their delays,
  "done fetching url3\ndone fetching url2\ndone fetching url1\n"
  # and the results come back in argument order, concurrently (about one second in all).
  "results: \\[data from url1, data from url2, data from url3\\] in (0\\.9[0-9]|1\\.[0-4][0-9]) s")
message("${out}")
