#pragma once
// The BIO through which OpenSSL reads and writes a TLS session's ciphertext (net/tls.hpp): two
// byte buffers that the session fills from and empties to its socket.
//
// OpenSSL's memory BIOs would do, but cost a copy and a memset per direction: BIO_write grows
// its buffer with zeroed memory, and taking the bytes out means BIO_read into another buffer.
// Here the socket receives straight into `incoming` and OpenSSL reads from it; OpenSSL appends to
// `outgoing`, which the session hands to the socket whole (socket_transport::send swaps vectors).

#include <coring/detail/byte_buffer.hpp>

#include <openssl/bio.h>

#include <algorithm>
#include <climits>
#include <cstddef>
#include <cstring>
#include <new>
#include <vector>

namespace coring::detail {

/// The ciphertext of one session, both ways. Reading from an empty `incoming` asks OpenSSL to
/// retry later (more may come), never reports the end of the stream: the session learns of the
/// peer's end from its socket and decides what it means.
struct tls_cipher_buffers {
    byte_buffer incoming;             // from the peer, not yet read by OpenSSL
    std::vector<std::byte> outgoing;  // to the peer, not yet handed to the socket

    /// A new BIO over these buffers (null when out of memory); SSL_set_bio takes it.
    [[nodiscard]] BIO* new_bio() {
        BIO* bio = BIO_new(method());
        if (bio != nullptr) BIO_set_data(bio, this);
        return bio;
    }

private:
    static const BIO_METHOD* method() {
        static const BIO_METHOD* const made = [] {
            BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "coring TLS ciphertext");
            if (m == nullptr) throw std::bad_alloc();
            BIO_meth_set_write(m, &write);
            BIO_meth_set_read(m, &read);
            BIO_meth_set_ctrl(m, &control);
            BIO_meth_set_create(m, [](BIO* bio) {
                BIO_set_init(bio, 1);
                return 1;
            });
            return m;
        }();
        return made;
    }

    static tls_cipher_buffers& of(BIO* bio) noexcept { return *static_cast<tls_cipher_buffers*>(BIO_get_data(bio)); }

    static int write(BIO* bio, const char* data, int size) {
        BIO_clear_retry_flags(bio);
        if (size <= 0) return 0;
        std::vector<std::byte>& out = of(bio).outgoing;
        try {
            const auto* bytes = reinterpret_cast<const std::byte*>(data);
            out.insert(out.end(), bytes, bytes + size);
        } catch (const std::bad_alloc&) {
            return -1;  // OpenSSL fails the write; the session reports it
        }
        return size;
    }

    static int read(BIO* bio, char* data, int size) {
        BIO_clear_retry_flags(bio);
        byte_buffer& in = of(bio).incoming;
        if (in.empty()) {
            BIO_set_retry_read(bio);
            return -1;
        }
        const std::size_t n = std::min(in.size(), static_cast<std::size_t>(std::max(size, 0)));
        std::memcpy(data, in.data(), n);
        in.consume(n);
        return static_cast<int>(n);
    }

    static long control(BIO* bio, int command, long, void*) {
        switch (command) {
            case BIO_CTRL_FLUSH: return 1;  // the session flushes `outgoing` itself
            case BIO_CTRL_PENDING: return static_cast<long>(std::min<std::size_t>(of(bio).incoming.size(), LONG_MAX));
            case BIO_CTRL_WPENDING: return static_cast<long>(std::min<std::size_t>(of(bio).outgoing.size(), LONG_MAX));
            default: return 0;  // no kernel TLS, no duplication, no end of file
        }
    }
};

}  // namespace coring::detail
