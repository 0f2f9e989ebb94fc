#pragma once
// The door through which coring's own tests reach machinery that no user should touch: classes
// that have test-only hooks (forcing a kernel fallback, ending a multishot request as the kernel
// may, counting re-arms) declare `friend struct detail::test_access;` and keep the hooks private.
// The struct is defined by the tests alone (tests/support/test_access.hpp); the library only
// declares it, so no program but the tests can use it.

namespace coring::detail {
struct test_access;
}  // namespace coring::detail
