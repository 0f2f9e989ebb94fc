#pragma once
// The errors of stream reads (docs/api.md, "Streams"): asyncio.IncompleteReadError and
// asyncio.LimitOverrunError.
//
// Thread-safety: the stream errors are plain values; they may be copied or moved to any thread
// (run_on carries them between loops).

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

namespace coring {

/// asyncio.IncompleteReadError: the stream ended before the read could be satisfied.
/// partial() holds the bytes that were read (and consumed); expected() the count asked for
/// (readexactly), or nothing (readuntil).
class incomplete_read : public std::runtime_error {
public:
    incomplete_read(std::string partial, std::optional<std::size_t> expected)
        : std::runtime_error(message(partial.size(), expected)), m_partial(std::move(partial)), m_expected(expected) {}

    [[nodiscard]] const std::string& partial() const noexcept { return m_partial; }
    [[nodiscard]] std::optional<std::size_t> expected() const noexcept { return m_expected; }

private:
    static std::string message(std::size_t got, std::optional<std::size_t> expected) {
        return "coring::incomplete_read: " + std::to_string(got) + " bytes read on a total of " +
               (expected ? std::to_string(*expected) : std::string("an undefined number of")) + " expected bytes";
    }
    std::string m_partial;
    std::optional<std::size_t> m_expected;
};

/// asyncio.LimitOverrunError: a separator was not found within the reader's limit. consumed()
/// says how many bytes to consume to get past the part that was searched.
class limit_overrun : public std::runtime_error {
public:
    limit_overrun(const std::string& what, std::size_t consumed) : std::runtime_error("coring::limit_overrun: " + what), m_consumed(consumed) {}
    [[nodiscard]] std::size_t consumed() const noexcept { return m_consumed; }

private:
    std::size_t m_consumed;
};

}  // namespace coring
