#pragma once
// detail::reader_state and detail::read_request: the reading half of a stream (net/stream.hpp).
// The reader reads ahead until limit() bytes are buffered, then pauses until a read consumes
// them; a waiting read that needs more (readexactly of a large n, read() to EOF) keeps it going.
// Its buffer is therefore bounded by max(limit, what the waiting read needs) plus one receive;
// what arrives past that bound stays held back in the transport.

#include <coring/detail/byte_buffer.hpp>
#include <coring/detail/byte_transport.hpp>
#include <coring/errors.hpp>
#include <coring/net/stream_peer.hpp>
#include <coring/net/stream_errors.hpp>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <exception>
#include <limits>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace coring::detail {

class reader_state;

/// One read of a stream_reader: when it can complete, and how it takes its bytes.
class read_request {
public:
    enum class kind : std::uint8_t { some, all, exactly, until, line };
    /// Called once ready() became true while the request waited.
    using wake_function = void (*)(read_request*) noexcept;

    read_request(kind k, std::size_t n, std::string_view separator, wake_function wake)
        : m_separator(separator), m_n(n), m_wake(wake), m_kind(k) {}

    /// True once the read can complete (with bytes, or by throwing).
    [[nodiscard]] bool ready(const reader_state& reader) const noexcept;
    /// The bytes the reader must be able to buffer for this read to complete.
    [[nodiscard]] std::size_t demand(std::size_t limit) const noexcept;
    /// Takes the read's bytes out of the buffer, or throws what the read ends with.
    std::string extract(reader_state& reader);
    [[nodiscard]] bool needs_separator() const noexcept { return m_kind == kind::until || m_kind == kind::line; }
    [[nodiscard]] const std::string& separator() const noexcept { return m_separator; }
    [[nodiscard]] const char* name() const noexcept {
        static constexpr const char* names[] = {"read", "read to EOF", "readexactly", "readuntil", "readline"};
        return names[static_cast<int>(m_kind)];
    }
    void signal_ready() noexcept { m_wake(this); }

private:
    /// Where the separator starts in `data`, or npos. Remembers how far it searched.
    [[nodiscard]] std::size_t find_separator(std::string_view data) const noexcept;

    std::string m_separator;
    std::size_t m_n;
    mutable std::size_t m_searched = 0;  // bytes of the buffer known not to start the separator
    wake_function m_wake;
    kind m_kind;
};

/// Invariants: at most one request waits (m_waiting); it is woken, and unregistered, as soon as
/// it is ready(). room() is 0 once the stream ended, failed or closes, so no receive is armed then.
class reader_state {
public:
    reader_state(byte_transport& transport, const stream_peer& peer, std::size_t limit, std::size_t recv_size) noexcept
        : m_transport(&transport), m_peer(&peer), m_limit(limit == 0 ? 1 : limit), m_recv_size(recv_size) {}

    // ---- for the reads
    [[nodiscard]] std::size_t limit() const noexcept { return m_limit; }
    [[nodiscard]] std::size_t buffered() const noexcept { return m_in.size() + m_transport->held_back(); }
    [[nodiscard]] bool at_eof() const noexcept { return m_eof && buffered() == 0; }
    [[nodiscard]] bool eof() const noexcept { return m_eof; }
    [[nodiscard]] int error() const noexcept { return m_error; }
    [[nodiscard]] byte_buffer& input() noexcept { return m_in; }
    [[nodiscard]] const byte_buffer& input() const noexcept { return m_in; }
    [[nodiscard]] read_request* waiting() const noexcept { return m_waiting; }
    /// The stream ended without the end its transport announces (TLS without close_notify).
    [[nodiscard]] bool truncated() const noexcept { return m_truncated; }
    [[noreturn]] void throw_error() const {
        if (std::exception_ptr failure = m_transport->failure()) std::rethrow_exception(failure);
        throw_errno(m_error, m_peer->receiving());
    }
    /// From now on the bytes come through `transport` (start_tls).
    void set_transport(byte_transport& transport) noexcept { m_transport = &transport; }

    /// Before a read looks at the buffer: takes held-back bytes, as far as the read may need them.
    void prepare(const read_request& r) noexcept {
        const std::size_t up_to = std::max(m_limit, r.demand(m_limit));
        if (m_in.size() < up_to) m_transport->take_held_back(up_to - m_in.size());
    }
    /// A read waits until it is ready(); this reader reads on as far as it needs. Throws if no
    /// receive could be armed (the request is then not waiting).
    void wait(read_request& r) {
        m_waiting = &r;
        try {
            m_transport->receive();
        } catch (...) {
            m_waiting = nullptr;
            throw;
        }
    }
    /// A waiting read was cancelled.
    void stop_waiting() noexcept { m_waiting = nullptr; }
    /// After a read consumed bytes: takes held-back bytes and reads on.
    void after_consume() noexcept {
        const std::size_t up_to = cap();
        if (m_in.size() < up_to) m_transport->take_held_back(up_to - m_in.size());
        try {
            m_transport->receive();
        } catch (const std::system_error& e) {
            ended(e.code().value());
        } catch (...) {
            ended(ENOMEM);
        }
    }

    // ---- for the transport, through the connection (transport_client)
    [[nodiscard]] std::size_t room() const noexcept {
        if (m_eof || m_error != 0) return 0;
        const std::size_t up_to = cap();
        return m_in.size() < up_to ? up_to - m_in.size() : 0;
    }
    std::span<std::byte> space(std::size_t n) {
        m_in.make_room(n, m_limit + m_recv_size);
        return m_in.tail();
    }
    void received(std::size_t n) noexcept {
        m_in.commit(n);
        notify();
    }
    /// 0: the end of the stream; transport_client::truncated: an end without the transport's
    /// announcement; else the errno of the receive.
    void ended(int error) noexcept {
        if (error == 0 || error == transport_client::truncated) {
            m_eof = true;
            m_truncated = error != 0;
        } else if (m_error == 0) {
            m_error = error;
        }
        notify();
    }
    /// The stream closes: reads from now on see its end.
    void close() noexcept { ended(0); }

private:
    [[nodiscard]] std::size_t cap() const noexcept { return m_waiting != nullptr ? std::max(m_limit, m_waiting->demand(m_limit)) : m_limit; }
    void notify() noexcept {
        if (m_waiting != nullptr && m_waiting->ready(*this)) std::exchange(m_waiting, nullptr)->signal_ready();
    }

    byte_transport* m_transport;
    const stream_peer* m_peer;
    byte_buffer m_in;
    read_request* m_waiting = nullptr;
    std::size_t m_limit;
    std::size_t m_recv_size;
    int m_error = 0;
    bool m_eof = false;  // the end of the stream came (or the stream closes)
    bool m_truncated = false;  // ... without the transport's announcement of it
};

// ---------------------------------------------------------------------- read_request

inline std::size_t read_request::find_separator(std::string_view data) const noexcept {
    const std::size_t sep = m_separator.size();
    if (data.size() < sep) return std::string_view::npos;
    // Resume where the last search stopped: the last sep - 1 bytes may start a separator.
    const std::size_t from = m_searched;
    std::size_t at;
    if (sep == 1) {
        const void* p = std::memchr(data.data() + from, m_separator[0], data.size() - from);
        at = p != nullptr ? static_cast<std::size_t>(static_cast<const char*>(p) - data.data()) : std::string_view::npos;
    } else {
        at = data.find(m_separator, from);
    }
    if (at == std::string_view::npos) m_searched = data.size() - sep + 1;
    return at;
}

inline bool read_request::ready(const reader_state& reader) const noexcept {
    const std::size_t size = reader.input().size();
    if (reader.eof() || reader.error() != 0) return true;
    switch (m_kind) {
        case kind::some: return m_n == 0 || size > 0;
        case kind::all: return false;
        case kind::exactly: return size >= m_n;
        case kind::until:
        case kind::line: return find_separator(reader.input().view()) != std::string_view::npos || size >= reader.limit() + m_separator.size();
    }
    return true;
}

inline std::size_t read_request::demand(std::size_t limit) const noexcept {
    switch (m_kind) {
        case kind::some: return 0;
        case kind::all: return std::numeric_limits<std::size_t>::max();
        case kind::exactly: return m_n;
        case kind::until:
        case kind::line: return limit + m_separator.size();
    }
    return 0;
}

inline std::string read_request::extract(reader_state& reader) {
    byte_buffer& in = reader.input();
    switch (m_kind) {
        case kind::some:
            if (m_n == 0) return {};
            if (!in.empty()) return in.take(std::min(m_n, in.size()));
            if (reader.error() != 0) reader.throw_error();
            if (reader.truncated()) throw incomplete_read({}, std::nullopt);
            return {};
        case kind::all:
            if (reader.error() != 0) reader.throw_error();
            if (reader.truncated()) throw incomplete_read(in.take(in.size()), std::nullopt);
            return in.take(in.size());
        case kind::exactly:
            if (in.size() >= m_n) return in.take(m_n);
            if (reader.error() != 0) reader.throw_error();
            throw incomplete_read(in.take(in.size()), m_n);
        case kind::until:
        case kind::line: {
            const std::size_t sep = m_separator.size();
            const std::size_t at = find_separator(in.view());
            std::optional<limit_overrun> overrun;
            if (at != std::string_view::npos) {
                if (at <= reader.limit()) return in.take(at + sep);
                overrun.emplace("Separator is found, but chunk is longer than limit", at);
            } else if (in.size() >= reader.limit() + sep) {
                overrun.emplace("Separator is not found, and chunk exceed the limit", in.size() + 1 - sep);
            }
            if (overrun) {
                if (m_kind == kind::line) {
                    // asyncio's readline: drop the overlong line (through its separator, if seen).
                    if (at != std::string_view::npos)
                        in.consume(at + sep);
                    else
                        in.consume(in.size());
                }
                throw *overrun;
            }
            if (reader.error() != 0) reader.throw_error();
            if (m_kind == kind::line && !reader.truncated()) return in.take(in.size());  // the partial last line, or ""
            throw incomplete_read(in.take(in.size()), std::nullopt);
        }
    }
    return {};
}

}  // namespace coring::detail
