#pragma once
// Version macros and feature detection shared by every coring header.

#define CORING_VERSION_MAJOR 0
#define CORING_VERSION_MINOR 1
#define CORING_VERSION_PATCH 0
#define CORING_VERSION_STRING "0.1.0"

// AddressSanitizer cannot see use-after-free inside a free-list allocator, so the frame pool
// hands every allocation straight to operator new/delete when ASan is on.
#if defined(__SANITIZE_ADDRESS__)
#define CORING_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CORING_ASAN 1
#endif
#endif
#ifndef CORING_ASAN
#define CORING_ASAN 0
#endif

#if defined(__GNUC__)
#define CORING_LIKELY(x) __builtin_expect(!!(x), 1)
#define CORING_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define CORING_NOINLINE __attribute__((noinline))
#define CORING_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define CORING_LIKELY(x) (x)
#define CORING_UNLIKELY(x) (x)
#define CORING_NOINLINE
#define CORING_ALWAYS_INLINE inline
#endif
