#pragma once
// Catch2 v2 (Debian 12 ships 2.13) or v3, whichever is installed.
#if defined(CORING_CATCH2_V3)
#include <catch2/catch_approx.hpp>
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#else
#include <catch2/catch.hpp>
#endif
