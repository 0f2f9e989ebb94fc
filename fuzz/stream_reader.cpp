// Fuzzes a stream's reading half (net/stream_reader_state.hpp) without a loop or a socket: the
// input chooses the reader's limit, the bytes the peer sends, how they are cut into chunks, how
// the stream ends (FIN, an error, or a TLS end without close_notify), and a sequence of
// read / read-to-EOF / readexactly / readuntil / readline calls, made as stream_read_awaiter
// makes them (prepare, ready, wait, extract, after_consume).
//
// Checked after every read: no byte is lost, duplicated or reordered (what the reads returned,
// plus what readline's overrun discarded, plus what is still buffered, is what the peer sent);
// each result has the shape its read promises; incomplete_read, limit_overrun and the receive
// error come only where stream.hpp documents them; a read that waits is always woken (a reader
// that stopped receiving while a read still needs bytes would hang a real stream).
#include <coring/detail/byte_transport.hpp>
#include <coring/net/stream_errors.hpp>
#include <coring/net/stream_peer.hpp>
#include <coring/net/stream_reader_state.hpp>

#include <fuzzer/FuzzedDataProvider.h>

#include "check.hpp"

#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using coring::detail::read_request;
using coring::detail::reader_state;
using kind = read_request::kind;

namespace {

/// The peer's bytes, delivered the way socket_transport's multishot receive delivers them: a
/// chunk arrives only while a receive is armed (or shortly after it was stopped: chunks already
/// on their way), goes to the reader if it has room and nothing is held back, else is held back
/// and receiving stops until the reader takes the held-back chunks.
struct wire_transport final : coring::detail::byte_transport {
    reader_state* reader = nullptr;
    std::string_view wire;        // the bytes the peer sends, not yet arrived
    int end_code = 0;             // how the stream ends once they all arrived (reader_state::ended)
    bool end_arrived = false;
    bool armed = false;
    int late = 0;                 // chunks still on their way after receiving stopped
    std::deque<std::string> held;
    std::size_t arrived = 0;      // bytes of the wire that arrived (in the reader or held back)

    void receive() override {
        if (!end_arrived && held.empty() && reader->room() > 0) armed = true;
    }
    void take_held_back(std::size_t budget) noexcept override {
        std::size_t taken = 0;
        while (!held.empty() && taken < budget) {
            const std::string chunk = std::move(held.front());
            held.pop_front();
            deliver(chunk);
            taken += chunk.size();
        }
    }
    [[nodiscard]] std::size_t held_back() const noexcept override {
        std::size_t n = 0;
        for (const std::string& c : held) n += c.size();
        return n;
    }

    /// The next chunk (of at most `size` bytes) or the end arrives, if a receive can bring it.
    /// False when nothing can arrive: the reader stopped receiving, or the stream is over.
    bool arrive(std::size_t size, int late_after_stop) {
        if (end_arrived || (!armed && late == 0)) return false;
        if (!armed) --late;
        if (wire.empty()) {
            end_arrived = true;
            armed = false;
            reader->ended(end_code);
            return true;
        }
        const std::string chunk(wire.substr(0, size));
        wire.remove_prefix(chunk.size());
        arrived += chunk.size();
        if (held.empty() && reader->room() > 0) {
            deliver(chunk);
            if (reader->room() == 0) stop(late_after_stop);
        } else {
            held.push_back(chunk);
            stop(late_after_stop);
        }
        return true;
    }

    void send(std::vector<std::byte>& data) override { data.clear(); }
    [[nodiscard]] std::size_t unsent() const noexcept override { return 0; }
    void shutdown_write() noexcept override {}
    void begin_close() noexcept override { held.clear(); }
    [[nodiscard]] bool busy() const noexcept override { return false; }
    void close() noexcept override {}
    [[nodiscard]] int native_fd() const noexcept override { return -1; }
    [[nodiscard]] bool uses_buffer_ring() const noexcept override { return true; }

private:
    void deliver(const std::string& chunk) noexcept {
        const std::span<std::byte> space = reader->space(chunk.size());
        FUZZ_CHECK(space.size() >= chunk.size());
        std::memcpy(space.data(), chunk.data(), chunk.size());
        reader->received(chunk.size());
    }
    void stop(int late_after_stop) noexcept {
        if (armed) late = late_after_stop;
        armed = false;
    }
};

/// A read whose wake-up is recorded instead of resuming a frame.
struct fuzz_read final : read_request {
    fuzz_read(kind k, std::size_t n, std::string_view separator) : read_request(k, n, separator, &on_ready) {}
    static void on_ready(read_request* r) noexcept { ++static_cast<fuzz_read*>(r)->wakes; }
    int wakes = 0;
};

struct harness {
    FuzzedDataProvider& in;
    std::string sent;  // everything the peer sends
    wire_transport transport;
    coring::detail::stream_peer peer{coring::address::loopback_ipv4(5000), {}};
    reader_state reader;
    std::size_t limit;
    std::size_t recv_size;
    std::size_t consumed = 0;  // bytes of `sent` that reads returned or readline discarded

    harness(FuzzedDataProvider& input, std::size_t limit_, std::size_t recv_size_, std::string wire, int end_code)
        : in(input), sent(std::move(wire)), reader(transport, peer, limit_, recv_size_), limit(limit_ == 0 ? 1 : limit_), recv_size(recv_size_) {
        transport.reader = &reader;
        transport.wire = sent;
        transport.end_code = end_code;
        transport.receive();  // the stream starts reading when it is made
    }

    bool arrive() { return transport.arrive(in.ConsumeIntegralInRange<std::size_t>(1, recv_size), in.ConsumeIntegralInRange<int>(0, 2)); }

    /// What is buffered (in the reader, then held back) is the rest of what arrived, in order.
    void check_buffered() const {
        std::string buffered(reader.input().view());
        for (const std::string& c : transport.held) buffered += c;
        FUZZ_CHECK(consumed + buffered.size() == transport.arrived);
        FUZZ_CHECK(std::string_view(sent).substr(consumed, buffered.size()) == buffered);
        FUZZ_CHECK(reader.buffered() == buffered.size());
    }

    /// `bytes` were taken from the front of the stream.
    void took(std::string_view bytes) {
        FUZZ_CHECK(std::string_view(sent).substr(consumed, bytes.size()) == bytes);
        consumed += bytes.size();
    }

    bool ended_cleanly() const { return reader.eof() && !reader.truncated() && reader.error() == 0; }

    void read(kind k, std::size_t n, const std::string& separator) {
        fuzz_read r(k, n, separator);
        reader.prepare(r);
        if (!r.ready(reader)) {
            reader.wait(r);
            while (r.wakes == 0) {
                // A read that waits must be woken: the stream is over, or bytes can still come.
                FUZZ_CHECK(reader.waiting() == &r);
                FUZZ_CHECK(arrive());
            }
            FUZZ_CHECK(r.wakes == 1 && reader.waiting() == nullptr);
        }
        FUZZ_CHECK(r.ready(reader));
        const std::string before(reader.input().view());
        const bool eof = reader.eof();
        const bool error = reader.error() != 0;
        try {
            const std::string got = r.extract(reader);
            took(got);
            check_result(k, n, separator, before, eof, got);
        } catch (const coring::incomplete_read& e) {
            // Only at the end of the stream, with every byte that was left.
            FUZZ_CHECK(eof && !error);
            FUZZ_CHECK(e.partial() == before && reader.input().empty() && transport.held.empty());
            took(e.partial());
            if (k == kind::exactly) FUZZ_CHECK(e.expected() == n && e.partial().size() < n);
            if (k == kind::until) FUZZ_CHECK(before.find(separator) == std::string::npos);
            if (k == kind::some || k == kind::all || k == kind::line) FUZZ_CHECK(reader.truncated());
        } catch (const coring::limit_overrun& e) {
            FUZZ_CHECK(k == kind::until || k == kind::line);
            const std::size_t at = before.find(separator);
            if (at != std::string::npos) {
                FUZZ_CHECK(at > limit && e.consumed() == at);
            } else {
                FUZZ_CHECK(before.size() >= limit + separator.size() && e.consumed() == before.size() + 1 - separator.size());
            }
            const std::string_view after = reader.input().view();
            if (k == kind::until) {
                FUZZ_CHECK(after == before);  // the bytes stay buffered
            } else {
                // readline discards the line, through its separator if it was seen.
                const std::size_t dropped = at != std::string::npos ? at + separator.size() : before.size();
                FUZZ_CHECK(after == std::string_view(before).substr(dropped));
                took(std::string_view(before).substr(0, dropped));
            }
        } catch (const std::system_error& e) {
            // The receive's error, once the buffered bytes cannot satisfy the read.
            FUZZ_CHECK(error && e.code().value() == reader.error());
            FUZZ_CHECK(reader.input().view() == before);
            if (k == kind::some) FUZZ_CHECK(before.empty() && n > 0);
            if (k == kind::exactly) FUZZ_CHECK(before.size() < n);
        }
        reader.after_consume();
        check_buffered();
    }

    void check_result(kind k, std::size_t n, const std::string& separator, const std::string& before, bool eof, const std::string& got) const {
        switch (k) {
            case kind::some:
                FUZZ_CHECK(got.size() <= n);
                if (n == 0) FUZZ_CHECK(got.empty());
                if (got.empty() && n > 0) FUZZ_CHECK(before.empty() && eof && !reader.truncated());
                break;
            case kind::all:
                FUZZ_CHECK(ended_cleanly() && got == before && transport.held.empty() && reader.at_eof());
                break;
            case kind::exactly:
                FUZZ_CHECK(got.size() == n);
                break;
            case kind::until:
            case kind::line: {
                const std::size_t at = got.find(separator);
                if (at != std::string::npos) {
                    FUZZ_CHECK(at + separator.size() == got.size() && at <= limit);  // the first separator ends it
                } else {
                    // readline's last line at a clean end (readuntil throws there instead).
                    FUZZ_CHECK(k == kind::line && ended_cleanly() && got == before && reader.input().empty());
                }
                break;
            }
        }
    }

    void run() {
        while (in.remaining_bytes() > 0) {
            switch (in.ConsumeIntegralInRange<int>(0, 6)) {
                case 0:
                case 1: {
                    const int arrivals = in.ConsumeIntegralInRange<int>(1, 8);
                    for (int i = 0; i < arrivals && arrive(); ++i) check_buffered();
                    break;
                }
                case 2: read(kind::some, in.ConsumeIntegralInRange<std::size_t>(0, 100), {}); break;
                case 3: read(kind::exactly, in.ConsumeIntegralInRange<std::size_t>(0, 300), {}); break;
                case 4: read(kind::line, 0, "\n"); break;
                case 5: {
                    // A short separator from a small alphabet, so that the data holds it often.
                    std::string separator = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(1, 4));
                    if (separator.empty()) separator = "\n";
                    read(kind::until, 0, separator);
                    break;
                }
                case 6:
                    if (in.ConsumeBool()) read(kind::all, 0, {});
                    break;
            }
        }
        // What is left, to the end: every byte the peer sent is accounted for.
        read(kind::all, 0, {});
        if (ended_cleanly()) FUZZ_CHECK(consumed == sent.size());
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    FuzzedDataProvider in(data, size);
    const std::size_t limit = in.ConsumeIntegralInRange<std::size_t>(0, 64);
    const std::size_t recv_size = in.ConsumeIntegralInRange<std::size_t>(1, 32);
    static constexpr int end_codes[] = {0, 0, ECONNRESET, coring::detail::transport_client::truncated};
    const int end_code = end_codes[in.ConsumeIntegralInRange<int>(0, 3)];
    std::string wire = in.ConsumeRandomLengthString(4096);
    harness h(in, limit, recv_size, std::move(wire), end_code);
    h.run();
    return 0;
}
