#pragma once
// detail::stream_peer: what is at the other end of a stream, as its errors name it. A socket's
// peer address ("recv from 127.0.0.1:5000: Connection reset by peer"), or a pipe described in
// words ("write to the stdin pipe of process 1234: Broken pipe"): a child process's pipes are
// streams too (process.hpp).

#include <coring/net/address.hpp>

#include <string>
#include <utility>

namespace coring::detail {

struct stream_peer {
    /// A socket's peer (empty when unknown, and for pipes).
    address socket_peer;
    /// A pipe's description ("the stdout pipe of process 1234"); empty for sockets.
    std::string pipe;

    /// What a failed receive was doing: "recv from <peer>" or "read from <pipe>".
    [[nodiscard]] std::string receiving() const { return pipe.empty() ? "recv from " + socket_peer.to_string() : "read from " + pipe; }
    /// What a failed send was doing: "send to <peer>" or "write to <pipe>".
    [[nodiscard]] std::string sending() const { return pipe.empty() ? "send to " + socket_peer.to_string() : "write to " + pipe; }
    /// The other end in words, for task dumps: the address, or the pipe.
    [[nodiscard]] std::string to_string() const { return pipe.empty() ? socket_peer.to_string() : pipe; }
};

}  // namespace coring::detail
