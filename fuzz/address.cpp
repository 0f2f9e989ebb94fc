// Fuzzes coring::address (net/address.hpp): text that parse(), ipv4() and ipv6() refuse throws
// std::invalid_argument and nothing else; text they accept prints back (host(), to_string())
// as text that parses to the same address; Unix paths and native addresses of any bytes print
// without reading past the address.
#include <coring/net/address.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include "check.hpp"

#include <sys/socket.h>
#include <sys/un.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace {

/// parse() agrees with try_parse(): the same address, or invalid_argument.
void check_parse_agrees(std::string_view text, std::uint16_t port, const std::optional<coring::address>& parsed) {
    try {
        const coring::address a = coring::address::parse(text, port);
        FUZZ_CHECK(parsed && a == *parsed);
    } catch (const std::invalid_argument&) {
        FUZZ_CHECK(!parsed);
    }
}

void check_round_trip(const coring::address& a, std::uint16_t port) {
    FUZZ_CHECK(a.is_ipv4() || a.is_ipv6());
    FUZZ_CHECK(a.port() == port);
    const std::string host = a.host();
    FUZZ_CHECK(!host.empty());
    const std::optional<coring::address> again = coring::address::try_parse(host, port);
    FUZZ_CHECK(again && *again == a);
    // to_string() is host:port, the IPv6 host in brackets (which parse() accepts too).
    const std::string text = a.to_string();
    const std::size_t colon = text.rfind(':');
    FUZZ_CHECK(colon != std::string::npos && text.substr(colon + 1) == std::to_string(port));
    const std::optional<coring::address> printed = coring::address::try_parse(std::string_view(text).substr(0, colon), port);
    FUZZ_CHECK(printed && *printed == a);
    FUZZ_CHECK(a.with_port(port) == a);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const std::uint16_t port = in.ConsumeIntegral<std::uint16_t>();
    switch (in.ConsumeIntegralInRange<int>(0, 2)) {
        case 0: {  // text
            const std::string text = in.ConsumeRemainingBytesAsString();
            const std::optional<coring::address> parsed = coring::address::try_parse(text, port);
            check_parse_agrees(text, port, parsed);
            if (parsed) check_round_trip(*parsed, port);
            for (const bool v6 : {false, true}) {
                try {
                    const coring::address a = v6 ? coring::address::ipv6(text, port) : coring::address::ipv4(text, port);
                    FUZZ_CHECK(v6 ? a.is_ipv6() : a.is_ipv4());
                    check_round_trip(a, port);
                } catch (const std::invalid_argument&) {
                }
            }
            break;
        }
        case 1: {  // a Unix path
            const std::string path = in.ConsumeRemainingBytesAsString();
            try {
                const coring::address a = coring::address::unix_path(path);
                FUZZ_CHECK(!path.empty() && path.size() < sizeof(::sockaddr_un::sun_path));
                FUZZ_CHECK(a.is_unix() && a.port() == 0);
                const std::string host = a.host();
                if (path[0] == '\0')
                    FUZZ_CHECK(host == "@" + path.substr(1));  // abstract: every byte, as given
                else
                    FUZZ_CHECK(host == path.substr(0, path.find('\0')));  // a file path ends at its first 0
                FUZZ_CHECK(a.to_string() == "unix:" + host);
            } catch (const std::invalid_argument&) {
                FUZZ_CHECK(path.empty() || path.size() >= sizeof(::sockaddr_un::sun_path));
            }
            break;
        }
        case 2: {  // a native address as the kernel might report it, of any family and length
            const std::string bytes = in.ConsumeRemainingBytesAsString();
            const auto length = static_cast<::socklen_t>(bytes.size());
            try {
                coring::address a(reinterpret_cast<const ::sockaddr*>(bytes.data()), length);
                FUZZ_CHECK(length <= coring::address::capacity() && a.size() == length);
                (void)a.to_string();
                (void)a.port();
                a.set_size(length);
                FUZZ_CHECK(a == coring::address(a.native(), a.size()));
            } catch (const std::invalid_argument&) {
                FUZZ_CHECK(length > coring::address::capacity());
            }
            break;
        }
    }
    return 0;
}
