// Tests of coring/net/socket_transport.hpp on its own: a socket pair, a recording
// transport_client in place of a stream, plain recv and a provided-buffer ring, pausing while
// the client is full, sends, shutdown and close.
#include <coring/net/socket_transport.hpp>

#include <coring/io/buffer_ring.hpp>
#include <coring/run.hpp>
#include <coring/thread/to_thread.hpp>
#include <coring/time.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

/// Takes what the socket hands it, up to `room` bytes at a time; records the ends.
struct recording_client final : coring::detail::transport_client {
    std::string received_bytes;
    std::vector<std::byte> space_buffer;
    std::size_t room = 1 << 20;
    int ended = -2;  // -2: not yet; else receive_ended's error
    int sends_completed = 0;
    int last_send_error = 0;

    [[nodiscard]] std::size_t receive_room() const noexcept override { return room > received_bytes.size() ? room - received_bytes.size() : 0; }
    std::span<std::byte> receive_space(std::size_t n) override {
        space_buffer.resize(n);
        return space_buffer;
    }
    void received(std::size_t n) noexcept override { received_bytes.append(reinterpret_cast<const char*>(space_buffer.data()), n); }
    void receive_ended(int error) noexcept override { ended = error; }
    void sent(int error) noexcept override {
        ++sends_completed;
        last_send_error = error;
    }
    void settle() noexcept override {}
};

struct socket_pair {
    int ours = -1;
    int peer = -1;
    socket_pair() {
        int fds[2];
        REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
        ours = fds[0];
        peer = fds[1];
    }
    ~socket_pair() {
        if (peer >= 0) ::close(peer);
    }
};

std::vector<std::byte> bytes_of(const std::string& text) {
    std::vector<std::byte> out(text.size());
    std::memcpy(out.data(), text.data(), text.size());
    return out;
}

/// Stops the transport's receiving and waits until nothing is in flight, then closes it.
coring::task<> close_transport(coring::detail::socket_transport& t) {
    t.begin_close();
    while (t.busy()) co_await coring::sleep(1ms);
    t.close();
}

}  // namespace

TEST_CASE("socket_transport - plain recv delivers the peer's bytes, then its end", "[socket_transport]") {
    coring::run([]() -> coring::task<> {
        socket_pair s;
        recording_client client;
        coring::detail::socket_transport t(coring::get_running_loop(), s.ours, nullptr, 4096, client);
        CHECK_FALSE(t.uses_buffer_ring());
        CHECK(t.receive_size() == 4096);
        t.receive();
        REQUIRE(::write(s.peer, "hello", 5) == 5);
        co_await coring::sleep(20ms);
        CHECK(client.received_bytes == "hello");
        ::shutdown(s.peer, SHUT_WR);
        co_await coring::sleep(20ms);
        CHECK(client.ended == 0);
        co_await close_transport(t);
    }());
}

TEST_CASE("socket_transport - on a ring, a full client pauses receiving until it asks again", "[socket_transport]") {
    coring::run([]() -> coring::task<> {
        socket_pair s;
        recording_client client;
        client.room = 3;  // full after three bytes
        auto ring = coring::io::buffer_ring::try_create(coring::get_running_loop(), 8, 4096);
        REQUIRE(ring);
        coring::detail::socket_transport t(coring::get_running_loop(), s.ours, ring, 0, client);
        CHECK(t.uses_buffer_ring());
        t.receive();
        REQUIRE(::write(s.peer, "abc", 3) == 3);
        co_await coring::sleep(20ms);
        REQUIRE(::write(s.peer, "defgh", 5) == 5);
        co_await coring::sleep(20ms);
        CHECK(client.received_bytes == "abc");  // the multishot receive stopped: the rest waits in the kernel
        CHECK(t.held_back() == 0);
        CHECK_FALSE(t.busy());
        client.room = 100;
        t.receive();  // what a reader does once it consumed bytes
        co_await coring::sleep(20ms);
        CHECK(client.received_bytes == "abcdefgh");
        co_await close_transport(t);
    }());
}

TEST_CASE("socket_transport - send takes the bytes, reports completion, and shutdown_write sends FIN after them", "[socket_transport]") {
    coring::run([]() -> coring::task<> {
        socket_pair s;
        recording_client client;
        coring::detail::socket_transport t(coring::get_running_loop(), s.ours, nullptr, 0, client);
        std::vector<std::byte> data = bytes_of(coring_test::pattern(0, 100'000));
        t.send(data);
        CHECK(data.empty());  // taken: the vectors swapped
        CHECK(t.unsent() == 100'000);
        t.shutdown_write();  // waits for the send in flight
        // The peer reads to EOF on a thread: the loop must go on sending meanwhile.
        const std::string at_peer = co_await coring::to_thread([fd = s.peer] {
            std::string all;
            char buffer[65536];
            for (ssize_t n; (n = ::read(fd, buffer, sizeof buffer)) > 0;) all.append(buffer, static_cast<std::size_t>(n));
            return all;
        });
        CHECK(at_peer == coring_test::pattern(0, 100'000));  // then EOF: the FIN came after the bytes
        while (t.unsent() > 0) co_await coring::sleep(1ms);
        co_await coring::sleep(5ms);
        CHECK(client.sends_completed >= 1);
        CHECK(client.last_send_error == 0);
        co_await close_transport(t);
    }());
}
