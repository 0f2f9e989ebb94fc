# Smoke test of examples/profile_tour: the profile table names each problem by its kind of wait.
include(${CMAKE_CURRENT_LIST_DIR}/check_lib.cmake)
run_example()
expect_contains("${out}" "packed 200 orders (200 receipts" "coring profile: 5 task group(s)")
expect_matches("${out}"
  # the slow handler: 8 tasks of one step each, the longest at least its 15 ms
  " ms +8 +(1[5-9]|[2-9][0-9]|[1-9][0-9][0-9])\\.[0-9][0-9][0-9] ms +8 +- +pricing\n"
  # the contended lock, and the packers' other waits
  "lock [0-9]+\\.[0-9][0-9][0-9] ms[^\n]* packer\n"
  # the backlog
  "queue [0-9]+\\.[0-9][0-9][0-9] ms +intake\n"
  # kernel reads, by opcode
  "io [0-9]+\\.[0-9][0-9][0-9] ms \\(read [0-9]+\\.[0-9][0-9][0-9] ms\\) +auditor\n")
# Profile mode prints the table again when the loop closes.
expect_contains("${err}" "coring profile: 5 task group(s)")
message("${out}\n${err}")
