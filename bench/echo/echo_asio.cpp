// echo_asio: Boost.Asio's coroutine TCP echo server (the shape of Asio's own
// cpp20/coroutines/echo_server.cpp), one of the baselines of bench/echo/compare.sh: one
// single-threaded io_context, async_read_some into a 4 KiB buffer and async_write of what came.
//
//   echo_asio [--port P] [--buffer BYTES]
//       prints "listening on 127.0.0.1:P"; SIGINT/SIGTERM stop it. --buffer sets the read
//       buffer's size (4096 by default, Asio's example's): bench/tls/compare.sh echoes 16 KiB
//       messages and gives it 16 KiB, so that a message is not cut into four reads and writes.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(tcp::socket socket, std::size_t buffer_size) {
    try {
        std::vector<char> data(buffer_size);
        for (;;) {
            const std::size_t n = co_await socket.async_read_some(asio::buffer(data), asio::use_awaitable);
            co_await asio::async_write(socket, asio::buffer(data.data(), n), asio::use_awaitable);
        }
    } catch (const std::exception&) {
        // end of stream or reset
    }
}

asio::awaitable<void> listen(tcp::acceptor& acceptor, std::size_t buffer_size) {
    for (;;) {
        tcp::socket socket = co_await acceptor.async_accept(asio::use_awaitable);
        socket.set_option(tcp::no_delay(true));
        asio::co_spawn(acceptor.get_executor(), echo(std::move(socket), buffer_size), asio::detached);
    }
}

}  // namespace

int main(int argc, char** argv) {
    unsigned short port = 8888;
    std::size_t buffer_size = 4096;
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--port") == 0 && i + 1 < argc) {
            port = static_cast<unsigned short>(std::atoi(argv[++i]));
        } else if (std::strcmp(argv[i], "--buffer") == 0 && i + 1 < argc && std::atol(argv[i + 1]) > 0) {
            buffer_size = static_cast<std::size_t>(std::atol(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: echo_asio [--port P] [--buffer BYTES]\n");
            return 2;
        }
    }
    asio::io_context context(1);
    tcp::acceptor acceptor(context, tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    std::printf("listening on 127.0.0.1:%u\n", acceptor.local_endpoint().port());
    std::fflush(stdout);
    asio::signal_set signals(context, SIGINT, SIGTERM);
    signals.async_wait([&](auto, auto) { context.stop(); });
    asio::co_spawn(context, listen(acceptor, buffer_size), asio::detached);
    context.run();
    std::printf("echo_asio: stopped\n");
    return 0;
}
