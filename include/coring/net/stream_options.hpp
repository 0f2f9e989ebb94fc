#pragma once
// coring::stream_options: the settings of a stream (docs/api.md, "Streams").
//
// Thread-safety: stream options are plain values; they may be copied or moved to any thread
// (run_on carries them between loops).

#include <coring/io/buffer_ring.hpp>
#include <coring/net/tls_context.hpp>

#include <chrono>
#include <cstddef>
#include <string_view>

namespace coring {

/// Settings of a stream (an aggregate: `stream_options{.limit = 1 << 20}`). Its members are
/// trivially destructible, or empty by default (docs/internals.md, "g++ 12 traps").
struct stream_options {
    /// The reader's limit (asyncio's `limit`): how far readline/readuntil search for a separator,
    /// and how much the reader reads ahead.
    std::size_t limit = 64 * 1024;
    /// The writer's water marks: drain() waits while more than high_water bytes are buffered,
    /// until at most low_water are.
    std::size_t high_water = 64 * 1024;
    std::size_t low_water = 16 * 1024;
    /// Bytes per receive: the size of each provided buffer, or of each plain recv.
    std::size_t recv_buffer_size = 16 * 1024;
    /// Buffers of a ring the stream creates for itself (when `buffers` is empty).
    unsigned recv_buffer_count = 8;
    /// A buffer ring to receive into, shared with other streams (a server passes its own). Empty:
    /// the stream creates a ring of its own.
    io::buffer_ring_ptr buffers{};
    /// False: receive with plain recv into the reader's buffer, without a buffer ring.
    bool use_buffer_ring = true;
    /// TLS (asyncio's ssl=): a client or server context from <coring/net/tls.hpp>, borrowed until
    /// the connection starts (tls_context_ref). Empty: plaintext.
    tls_context_ref tls{};
    /// The name the server's certificate must carry (client side), borrowed like `tls`. Empty:
    /// the host connected to.
    std::string_view server_hostname{};
    /// How long a TLS handshake may take; past it, timeout_error.
    std::chrono::milliseconds tls_handshake_timeout{60'000};
    /// How long one read (read, readline, readexactly, readuntil) may wait for its data. Past
    /// it the read throws timeout_error and takes nothing: the bytes that did arrive stay
    /// buffered, and the stream stays usable (asyncio's wait_for(reader.readline(), t), without
    /// a task). Zero: no limit (asyncio's default).
    std::chrono::milliseconds read_timeout{0};
    /// A socket stream is aborted once no byte was received and none sent for this long,
    /// whatever its tasks are doing (a silent client, or one that stops reading the responses).
    /// The stream then closes: reads return what was already buffered and then fail with
    /// ETIMEDOUT ("recv from 127.0.0.1:5000: Connection timed out"), as drain() does, and
    /// unsent bytes are dropped. A server does not report a handler's error that comes from
    /// its stream's idle timeout. Zero: no limit (asyncio's default). Pipes ignore it.
    std::chrono::milliseconds idle_timeout{0};
};

}  // namespace coring
