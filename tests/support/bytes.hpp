#pragma once
// Text to bytes and back, for the tests of the byte-span APIs (ops, file, socket, process):
// they send text and compare what arrives with it.

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

namespace coring_test {

/// The bytes of `s` (a view: `s` must outlive it).
inline std::span<const std::byte> bytes(std::string_view s) { return std::as_bytes(std::span(s.data(), s.size())); }

/// `b` as a string, to compare with the text that was sent.
inline std::string text(std::span<const std::byte> b) { return std::string(reinterpret_cast<const char*>(b.data()), b.size()); }

}  // namespace coring_test
