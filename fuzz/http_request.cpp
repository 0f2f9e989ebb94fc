// Fuzzes the request parsing of examples/http_server (examples/http_request.hpp): parse_head
// never crashes and what it accepts holds no line ending, no control character and no
// malformed name; parse_decimal agrees with std::from_chars (which reports overflow) for every
// string and bound.
#include "http_request.hpp"

#include <fuzzer/FuzzedDataProvider.h>

#include "check.hpp"

#include <charconv>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>

namespace {

/// What parse_decimal should answer: digits only, no overflow, at most `max`.
std::optional<std::uint64_t> reference_decimal(std::string_view text, std::uint64_t max) {
    if (text.empty() || text.find_first_not_of("0123456789") != std::string_view::npos) return std::nullopt;
    std::uint64_t value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error == std::errc::result_out_of_range) return std::nullopt;
    FUZZ_CHECK(error == std::errc() && end == text.data() + text.size());
    if (value > max) return std::nullopt;
    return value;
}

bool has_control(std::string_view s) {
    for (const char c : s) {
        const auto u = static_cast<unsigned char>(c);
        if ((u < 0x20 && c != '\t') || u == 0x7f) return true;
    }
    return false;
}

void check_head(std::string_view head) {
    const std::optional<http_example::request> r = http_example::parse_head(head);
    if (!r) return;
    FUZZ_CHECK(r->version == "HTTP/1.1" || r->version == "HTTP/1.0");
    FUZZ_CHECK(!r->method.empty() && r->method.find_first_of(" \t\r\n:") == std::string::npos);
    FUZZ_CHECK(!r->target.empty() && r->target[0] == '/' && !has_control(r->target) && r->target.find(' ') == std::string::npos);
    for (const auto& [name, value] : r->headers) {
        FUZZ_CHECK(!name.empty() && name.find_first_of(" \t\r\n:") == std::string::npos && !has_control(name));
        FUZZ_CHECK(!has_control(value));  // no CR, no LF
        FUZZ_CHECK(value.empty() || (value.front() != ' ' && value.front() != '\t' && value.back() != ' ' && value.back() != '\t'));
        FUZZ_CHECK(r->header(name).has_value());
    }
    // The request line is the head's first line; a head that parses did hold it.
    FUZZ_CHECK(head.find(r->method + " " + r->target + " " + r->version) == 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    if (in.ConsumeBool()) {
        const std::uint64_t max = in.ConsumeBool() ? std::numeric_limits<std::uint64_t>::max() : in.ConsumeIntegral<std::uint64_t>();
        const std::string text = in.ConsumeRemainingBytesAsString();
        FUZZ_CHECK(http_example::parse_decimal(text, max) == reference_decimal(text, max));
        return 0;
    }
    const std::string head = in.ConsumeRemainingBytesAsString();
    check_head(head);
    // The head as the server reads it: through its empty line, and without it.
    const std::size_t end = head.find("\n\r\n");
    if (end != std::string::npos) check_head(std::string_view(head).substr(0, end + 3));
    return 0;
}
