#pragma once
// coring::stream_options: the settings of a stream (docs/api.md, "Streams").

#include <coring/io/buffer_ring.hpp>

#include <cstddef>

namespace coring {

/// Settings of a stream (an aggregate: `stream_options{.limit = 1 << 20}`).
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
};

}  // namespace coring
