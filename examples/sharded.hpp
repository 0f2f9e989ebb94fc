#pragma once
// sharded: the examples' servers on several cores. One loop per thread (coring::loop_group),
// one listener per loop, all bound to one port with SO_REUSEPORT (the kernel spreads the
// connections among them), and SIGINT or SIGTERM stopping every loop's server.
//
//   std::vector<std::uint64_t> served = sharded::run(threads, port, serve_one);
//
// serve_one(sharded::shard&) is a coring::task<std::uint64_t> run on every loop: it asks the
// shard for the port to bind (shard 0 gets the one asked for, possibly 0; the others wait for
// the port shard 0 bound, which it publishes), registers what stops it, serves, and returns
// its count. The shards talk through a coring::channel, the one object loops may share.
// per_loop(counts) formats the counts for the servers' last line.

#include <coring/coring.hpp>

#include <csignal>
#include <cstdio>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace sharded {

class shard {
public:
    shard(std::size_t index, std::size_t count, std::uint16_t requested_port, coring::channel<std::uint16_t>& ports)
        : m_index(index), m_count(count), m_requested_port(requested_port), m_ports(&ports) {}

    [[nodiscard]] std::size_t index() const noexcept { return m_index; }
    [[nodiscard]] std::size_t count() const noexcept { return m_count; }
    /// Listeners must set SO_REUSEPORT when several loops share the port.
    [[nodiscard]] bool shares_port() const noexcept { return m_count > 1; }

    /// The port to bind: the one asked for on shard 0, the one shard 0 bound on the others.
    coring::task<std::uint16_t> port() {
        if (m_index == 0) co_return m_requested_port;
        std::optional<std::uint16_t> bound = co_await m_ports->receive();
        co_return bound.value_or(m_requested_port);
    }

    /// Every shard once listening on `bound`. Shard 0 hands its port to the other shards and
    /// prints "listening on ADDRESS" (what the smoke scripts wait for).
    coring::task<> listening(coring::address bound) {
        if (m_index != 0) co_return;
        for (std::size_t i = 1; i < m_count; ++i) co_await m_ports->send(bound.port());
        std::printf("listening on %s\n", bound.to_string().c_str());
        std::fflush(stdout);
    }

    /// What stops this shard's server (closing it, or cancelling its accept loop), while the
    /// returned guard lives; run at once if the stop signal came first.
    [[nodiscard]] auto on_stop(std::function<void()> stop) {
        struct registration {
            registration() = default;
            registration(const registration&) = delete;
            registration& operator=(const registration&) = delete;
            ~registration() { t_stop = nullptr; }
        };
        if (t_stop_requested)
            stop();
        else
            t_stop = std::move(stop);
        return registration{};
    }

    /// Run on every loop by the group's signal handler.
    static void request_stop() {
        t_stop_requested = true;
        if (t_stop) std::exchange(t_stop, nullptr)();
    }

private:
    static inline thread_local std::function<void()> t_stop;
    static inline thread_local bool t_stop_requested = false;

    std::size_t m_index;
    std::size_t m_count;
    std::uint16_t m_requested_port;
    coring::channel<std::uint16_t>* m_ports;
};

/// "12 30": each loop's count, in loop order.
inline std::string per_loop(const std::vector<std::uint64_t>& counts) {
    std::string text;
    for (std::uint64_t n : counts) text += (text.empty() ? "" : " ") + std::to_string(n);
    return text;
}

/// Runs serve_one on `threads` loops and returns what each returned, in loop order.
template <class ServeOne>
std::vector<std::uint64_t> run(std::size_t threads, std::uint16_t port, ServeOne serve_one) {
    coring::loop_group group({.threads = threads});
    coring::channel<std::uint16_t> ports(threads);
    group.add_signal_handler(SIGINT, &shard::request_stop);
    group.add_signal_handler(SIGTERM, &shard::request_stop);
    std::vector<std::optional<shard>> shards(threads);
    for (std::size_t i = 0; i < threads; ++i) shards[i].emplace(i, threads, port, ports);
    return group.run([&](std::size_t i) { return serve_one(*shards[i]); });
}

}  // namespace sharded
