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

// ThreadSanitizer does not see the kernel carry a message from one ring to another
// (IORING_OP_MSG_RING, detail/scheduler.hpp): the sender releases the message's address before
// it submits, and the target acquires it when the CQE arrives.
#if defined(__SANITIZE_THREAD__)
#define CORING_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CORING_TSAN 1
#endif
#endif
#ifndef CORING_TSAN
#define CORING_TSAN 0
#endif
#if CORING_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#define CORING_TSAN_RELEASE(addr) __tsan_release(addr)
#define CORING_TSAN_ACQUIRE(addr) __tsan_acquire(addr)
#else
#define CORING_TSAN_RELEASE(addr) ((void)(addr))
#define CORING_TSAN_ACQUIRE(addr) ((void)(addr))
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
