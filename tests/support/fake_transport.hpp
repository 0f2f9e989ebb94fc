#pragma once
// A byte_transport that moves no bytes by itself: tests of a stream's reader and writer states
// (net/stream_reader_state.hpp, net/stream_writer_state.hpp) drive it by hand. It delivers
// "held back" chunks into a reader_state and records what a writer_state hands it to send.

#include <coring/detail/byte_transport.hpp>
#include <coring/net/stream_reader_state.hpp>
#include <coring/net/stream_writer_state.hpp>

#include <cstddef>
#include <cstring>
#include <deque>
#include <exception>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace coring_test {

struct fake_transport final : coring::detail::byte_transport {
    // ---- the reading side
    coring::detail::reader_state* reader = nullptr;  // where held-back chunks go
    std::deque<std::string> held;                    // chunks that arrived while the reader was full
    int receive_calls = 0;
    int receive_error = 0;  // non-zero: receive() throws a system_error with this errno
    std::exception_ptr failure_reason;  // what failure() returns

    // ---- the writing side
    coring::detail::writer_state* writer = nullptr;  // told of progress by complete_send
    std::string in_flight;                           // bytes of the send in flight
    std::string sent;                                // bytes that went out
    bool sending = false;
    int shutdown_calls = 0;
    bool closing = false;

    /// Bytes arrive from the peer into the reader (as a receive completion would bring them).
    void arrive(std::string_view bytes) {
        const std::span<std::byte> space = reader->space(bytes.size());
        std::memcpy(space.data(), bytes.data(), bytes.size());
        reader->received(bytes.size());
    }
    /// The send in flight completes with `n` bytes written; the writer is told.
    void complete_send(std::size_t n) {
        sent += in_flight.substr(0, n);
        in_flight.erase(0, n);
        sending = !in_flight.empty();
        writer->sent(0);
    }
    /// The send in flight fails with `error`; the writer is told.
    void fail_send(int error) {
        in_flight.clear();
        sending = false;
        writer->sent(error);
    }

    void receive() override {
        ++receive_calls;
        if (receive_error != 0) throw std::system_error(receive_error, std::generic_category(), "fake receive");
    }
    void take_held_back(std::size_t budget) noexcept override {
        std::size_t taken = 0;
        while (!held.empty() && taken < budget) {
            const std::string chunk = held.front();
            held.pop_front();
            arrive(chunk);
            taken += chunk.size();
        }
    }
    [[nodiscard]] std::size_t held_back() const noexcept override {
        std::size_t n = 0;
        for (const std::string& c : held) n += c.size();
        return n;
    }
    void send(std::vector<std::byte>& data) override {
        if (sending || data.empty()) return;
        in_flight.assign(reinterpret_cast<const char*>(data.data()), data.size());
        data.clear();
        sending = true;
    }
    [[nodiscard]] std::size_t unsent() const noexcept override { return in_flight.size(); }
    void shutdown_write() noexcept override { ++shutdown_calls; }
    void begin_close() noexcept override {
        closing = true;
        held.clear();
    }
    [[nodiscard]] bool busy() const noexcept override { return sending; }
    void close() noexcept override {}
    [[nodiscard]] int native_fd() const noexcept override { return -1; }
    [[nodiscard]] bool uses_buffer_ring() const noexcept override { return false; }
    [[nodiscard]] std::exception_ptr failure() const noexcept override { return failure_reason; }
};

}  // namespace coring_test
