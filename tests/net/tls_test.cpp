// Tests of coring/net/tls.hpp: streams over TLS 1.3 / 1.2 on OpenSSL, against coring's own
// server and client and against the openssl command-line tool (s_server, s_client), with
// certificates made at test time (tests/support/tls_certs.hpp).
#include <coring/io/file.hpp>
#include <coring/net/server.hpp>
#include <coring/net/stream.hpp>
#include <coring/net/tls.hpp>
#include <coring/process.hpp>
#include <coring/run.hpp>
#include <coring/sync/event.hpp>
#include <coring/task_handle.hpp>
#include <coring/time.hpp>
#include <coring/wait_for.hpp>

#include "support/catch.hpp"
#include "support/helpers.hpp"
#include "support/os.hpp"
#include "support/tls_certs.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using coring_test::pattern;

namespace {

/// The certificates, made once for the whole file (the openssl tool takes a while).
const coring_test::tls_certs& certs() {
    static const coring_test::tls_certs made;
    return made;
}

coring::tls_context server_context() { return coring::tls_context::server(certs().server_cert, certs().server_key); }

coring::tls_context client_context() {
    coring::tls_context ctx = coring::tls_context::client();
    ctx.load_verify_locations(certs().ca);
    return ctx;
}

/// An echo handler: reads until EOF and writes everything back.
coring::task<> echo(coring::stream_reader reader, coring::stream_writer writer) {
    for (;;) {
        std::string data = co_await reader.read(64 * 1024);
        if (data.empty()) break;
        writer.write(data);
        co_await writer.drain();
    }
    writer.close();
    co_await writer.wait_closed();
}

/// A TLS echo server on 127.0.0.1 and an ephemeral port.
coring::task<coring::server> start_echo_server(const coring::tls_context& ctx) {
    coring::server_options options;
    options.stream.tls = ctx;
    co_return co_await coring::start_server(echo, "127.0.0.1", 0, options);
}

/// A TLS client connection to 127.0.0.1:`port`, its handshake over.
coring::task<std::pair<coring::stream_reader, coring::stream_writer>> connect(std::uint16_t port, const coring::tls_context& ctx) {
    coring::stream_options options;
    options.tls = ctx;
    co_return co_await coring::open_connection("127.0.0.1", port, options);
}

/// Closes a client's writer and a server, and waits for both.
coring::task<> close_both(coring::stream_writer& writer, coring::server& srv) {
    writer.close();
    co_await writer.wait_closed();
    srv.close();
    co_await srv.wait_closed();
}

/// Reads a child's stdout until a whole line that starts with `prefix`; returns that line ("" at
/// its EOF).
coring::task<std::string> read_line_starting(coring::process& child, std::string_view prefix) {
    std::string text;
    std::size_t line_start = 0;
    std::vector<std::byte> buffer(4096);
    for (;;) {
        for (std::size_t end; (end = text.find('\n', line_start)) != std::string::npos; line_start = end + 1)
            if (text.compare(line_start, prefix.size(), prefix) == 0) co_return text.substr(line_start, end - line_start);
        const std::size_t n = co_await child.stdout_pipe().read(buffer);
        if (n == 0) co_return std::string();
        text.append(reinterpret_cast<const char*>(buffer.data()), n);
    }
}

/// `openssl s_server` on 127.0.0.1 and the port it chose ("ACCEPT 127.0.0.1:PORT"), with our
/// server certificate and `extra` arguments; its stdin and stdout are pipes.
struct openssl_server {
    coring::process child;
    std::uint16_t port;
};
coring::task<openssl_server> start_openssl_server(std::vector<std::string> extra) {
    std::vector<std::string> argv{"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", certs().server_cert, "-key", certs().server_key};
    argv.insert(argv.end(), extra.begin(), extra.end());
    coring::subprocess_options options;
    options.std_in = coring::stdio::pipe;
    options.std_out = coring::stdio::pipe;
    options.std_err = coring::stdio::devnull;
    coring::process child = co_await coring::create_subprocess_exec(argv, options);
    const std::string banner = co_await read_line_starting(child, "ACCEPT ");
    const std::size_t colon = banner.rfind(':');
    REQUIRE(banner.find("ACCEPT 127.0.0.1:") != std::string::npos);
    const auto port = static_cast<std::uint16_t>(std::stoi(banner.substr(colon + 1)));
    co_return openssl_server{std::move(child), port};
}

/// What a failed connection attempt threw, as text ("" if it connected).
template <class E>
coring::task<std::string> connect_error(std::uint16_t port, coring::stream_options options, std::string host = "127.0.0.1") {
    try {
        auto streams = co_await coring::open_connection(host, port, options);
        streams.second.close();
    } catch (const E& e) {
        co_return std::string(e.what());
    }
    co_return std::string();
}

/// How relay() forwards the bytes of each direction.
enum class relay_mode {
    whole,      // each chunk as it is read
    split,      // 7 bytes per send, each sent before the next is read: records arrive in pieces
    coalesced,  // a read every 30 ms: the records sent meanwhile arrive together
};

/// What a relay does, shared with the test that drives it.
struct relay_control {
    relay_mode mode = relay_mode::whole;
    bool cut_next = false;  // set: the next client-to-server chunk goes out as its first 10 bytes, then the end
};

/// Copies `from` to `to` as `control` says, until `from` ends; then closes `to`.
coring::task<> forward(coring::stream_reader from, coring::stream_writer to, relay_control& control, bool client_to_server) {
    if (control.mode == relay_mode::split) to.set_write_buffer_limits(0, 0);  // drain() waits until each piece is sent
    try {
        for (;;) {
            if (control.mode == relay_mode::coalesced) co_await coring::sleep(30ms);
            const std::string chunk = co_await from.read(control.mode == relay_mode::split ? 7 : 1 << 20);
            if (chunk.empty()) break;
            if (client_to_server && control.cut_next) {
                to.write(std::string_view(chunk).substr(0, 10));  // a record header and 5 bytes of its body
                co_await to.drain();
                break;
            }
            to.write(chunk);
            co_await to.drain();
        }
    } catch (const std::system_error&) {
        // A reset on either side ends the relay of this direction.
    }
    to.close();
    co_await to.wait_closed();
}

/// A plaintext relay on 127.0.0.1 in front of 127.0.0.1:`target`: each connection it accepts is
/// forwarded to a connection of its own to the target, both ways.
coring::task<coring::server> start_relay(std::uint16_t target, relay_control& control) {
    co_return co_await coring::start_server(
        [target, &control](coring::stream_reader client_reader, coring::stream_writer client_writer) -> coring::task<> {
            auto [server_reader, server_writer] = co_await coring::open_connection("127.0.0.1", target);
            auto upstream = coring::create_task(forward(client_reader, server_writer, control, true));
            co_await forward(server_reader, client_writer, control, false);
            co_await upstream;
        },
        "127.0.0.1", 0);
}

/// How a server's handler ended: "eof", or the exception it caught (type, and what() for tls_error).
struct handler_outcome {
    std::string how;
    coring::event ended;
};

/// A line echo that notes how it ended in `outcome`.
coring::task<> echo_lines_noting(coring::stream_reader reader, coring::stream_writer writer, handler_outcome& outcome) {
    try {
        for (;;) {
            const std::string line = co_await reader.readline();
            if (line.empty()) break;
            writer.write(line);
            co_await writer.drain();
        }
        outcome.how = "eof";
    } catch (const coring::incomplete_read&) {
        outcome.how = "incomplete_read";
    } catch (const coring::tls_error& e) {
        outcome.how = std::string("tls_error: ") + e.what();
    } catch (const std::system_error& e) {
        outcome.how = std::string("system_error: ") + e.what();
    }
    outcome.ended.set();
    writer.close();
}

/// One line echoed by a new client connection: the server still serves.
coring::task<bool> serves(std::uint16_t port, const coring::tls_context& ctx) {
    auto [reader, writer] = co_await connect(port, ctx);
    writer.write("are you there?\n");
    const std::string line = co_await reader.readline();
    writer.close();
    co_await writer.wait_closed();
    co_return line == "are you there?\n";
}

/// reader.readline() and writer.drain() as tasks, to run and cancel on their own.
coring::task<std::string> readline_of(coring::stream_reader reader) { co_return co_await reader.readline(); }
coring::task<> drain_of(coring::stream_writer writer) { co_await writer.drain(); }

/// `openssl s_client` connected to 127.0.0.1:`port` with its commands on (a line "R" asks for
/// renegotiation, "K" for a key update), trusting our CA; its stdin and stdout (with its stderr)
/// are pipes. A command is a line of its own in one read: send the next line once it answered.
coring::task<coring::process> start_openssl_client(std::uint16_t port, std::vector<std::string> extra) {
    std::vector<std::string> argv{"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(port), "-CAfile", certs().ca};
    argv.insert(argv.end(), extra.begin(), extra.end());
    coring::subprocess_options options;
    options.std_in = coring::stdio::pipe;
    options.std_out = coring::stdio::pipe;
    options.std_err = coring::stdio::to_stdout;  // where it reports its commands ("KEYUPDATE")
    co_return co_await coring::create_subprocess_exec(argv, options);
}

}  // namespace

TEST_CASE("tls - a client and a server agree on TLS 1.3 and echo bytes", "[tls]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(srv.port(), ctx);
        const coring::tls_info* info = writer.tls();
        REQUIRE(info != nullptr);
        CHECK(info->version() == "TLSv1.3");
        CHECK(info->peer_subject().find("CN=localhost") != std::string::npos);
        CHECK_FALSE(info->cipher().empty());
        writer.write("hello over tls\n");
        const std::string line = co_await reader.readline();
        CHECK(line == "hello over tls\n");
        co_await close_both(writer, srv);
    }());
}

TEST_CASE("tls - bytes arrive intact in both directions, from 1 byte to 16 MiB", "[tls]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        const coring::tls_context ctx = client_context();
        coring::stream_options options;
        options.tls = ctx;
        for (std::size_t size : {std::size_t{1}, std::size_t{1000}, std::size_t{16 * 1024 + 7}, std::size_t{1 << 20}, std::size_t{16 << 20}}) {
            auto [reader, writer] = co_await coring::open_connection("127.0.0.1", srv.port(), options);
            const std::string sent = pattern(size, size);
            writer.write(sent);
            writer.write_eof();
            const std::string back = co_await reader.read();
            CHECK(back.size() == sent.size());
            CHECK(back == sent);
            writer.close();
            co_await writer.wait_closed();
        }
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("tls - sendfile over TLS: the file's bytes are encrypted in order, between writes", "[tls][sendfile]") {
    coring::run([]() -> coring::task<> {
        const coring_test::temp_dir dir;
        const std::string data = pattern(7, 3 << 20);
        co_await coring::write_file(dir.file("data.bin"), data);
        coring::file f = co_await coring::file::open(dir.file("data.bin"));
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(srv.port(), ctx);
        auto reading = coring::create_task([](coring::stream_reader r) -> coring::task<std::string> { co_return co_await r.read(); }(reader));
        writer.write("<");
        const std::uint64_t sent = co_await writer.sendfile(f, 5, 2 << 20);
        writer.write(">");
        writer.write_eof();
        const std::string back = co_await reading;
        CHECK(sent == 2u << 20);
        CHECK(back == "<" + data.substr(5, 2 << 20) + ">");
        co_await close_both(writer, srv);
        co_await f.close();
    }());
}

TEST_CASE("tls - many small writes arrive in order", "[tls]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(srv.port(), ctx);
        std::string sent;
        for (int i = 0; i < 5000; ++i) {
            const std::string piece = std::to_string(i) + ",";
            writer.write(piece);
            sent += piece;
        }
        co_await writer.drain();
        const std::string back = co_await reader.readexactly(sent.size());
        CHECK(back == sent);
        co_await close_both(writer, srv);
    }());
}

TEST_CASE("tls - ALPN: the server's first choice among the client's offers", "[tls]") {
    coring::run([]() -> coring::task<> {
        coring::tls_context server_ctx = server_context();
        server_ctx.set_alpn_protocols({"http/1.1", "h2"});
        coring::server srv = co_await start_echo_server(server_ctx);
        coring::tls_context ctx = client_context();
        ctx.set_alpn_protocols({"h2", "http/1.1"});
        coring::stream_options options;
        options.tls = ctx;
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", srv.port(), options);
        REQUIRE(writer.tls() != nullptr);
        CHECK(writer.tls()->alpn() == "http/1.1");
        co_await close_both(writer, srv);
    }());
}

TEST_CASE("tls - a server certificate from an unknown CA: tls_error with the verify result", "[tls][verify]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        const coring::tls_context ctx = coring::tls_context::client();  // the system store only
        coring::stream_options options;
        options.tls = ctx;
        const std::string error = co_await connect_error<coring::tls_error>(srv.port(), options, "localhost");
        CHECK(error.find("certificate verify failed for localhost") != std::string::npos);
        CHECK(error.find("local issuer certificate") != std::string::npos);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("tls - a wrong host name: tls_error naming the name", "[tls][verify]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        const coring::tls_context ctx = client_context();
        coring::stream_options options;
        options.tls = ctx;
        options.server_hostname = "example.org";
        const std::string error = co_await connect_error<coring::tls_error>(srv.port(), options);
        CHECK(error.find("certificate verify failed for example.org") != std::string::npos);
        CHECK(error.find("mismatch") != std::string::npos);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("tls - an expired certificate: tls_error", "[tls][verify]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = coring::tls_context::server(certs().expired_cert, certs().expired_key);
        coring::server srv = co_await start_echo_server(server_ctx);
        const coring::tls_context ctx = client_context();
        coring::stream_options options;
        options.tls = ctx;
        const std::string error = co_await connect_error<coring::tls_error>(srv.port(), options);
        CHECK(error.find("certificate has expired") != std::string::npos);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("tls - a self-signed server with verification on: tls_error; set_verify(false) connects", "[tls][verify]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = coring::tls_context::server(certs().self_signed_cert, certs().self_signed_key);
        coring::server srv = co_await start_echo_server(server_ctx);
        coring::tls_context ctx = coring::tls_context::client();
        coring::stream_options options;
        options.tls = ctx;
        const std::string error = co_await connect_error<coring::tls_error>(srv.port(), options);
        CHECK(error.find("self-signed certificate") != std::string::npos);
        ctx.set_verify(false);
        const std::string none = co_await connect_error<coring::tls_error>(srv.port(), options);
        CHECK(none.empty());
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("tls - garbage instead of a ClientHello fails that connection; the server keeps serving", "[tls][hostile]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        auto [raw_reader, raw_writer] = co_await coring::open_connection("127.0.0.1", srv.port());
        raw_writer.write("GET / HTTP/1.0\r\n\r\n");
        const std::string answer = co_await raw_reader.read();  // an alert at most, then the close
        CHECK(answer.size() < 64);
        raw_writer.close();
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(srv.port(), ctx);
        writer.write("still here\n");
        const std::string line = co_await reader.readline();
        CHECK(line == "still here\n");
        co_await close_both(writer, srv);
    }());
}

TEST_CASE("tls - a peer that never answers the handshake: timeout_error after the handshake timeout", "[tls][hostile]") {
    coring::run([]() -> coring::task<> {
        // A plaintext server that accepts and says nothing.
        coring::server silent = co_await coring::start_server(
            [](coring::stream_reader r, coring::stream_writer) -> coring::task<> { (void)co_await r.read(); }, "127.0.0.1", 0);
        const coring::tls_context ctx = client_context();
        coring::stream_options options;
        options.tls = ctx;
        options.tls_handshake_timeout = 200ms;
        const auto start = std::chrono::steady_clock::now();
        const std::string error = co_await connect_error<coring::timeout_error>(silent.port(), options);
        CHECK(error.find("TLS handshake with 127.0.0.1") != std::string::npos);
        CHECK(coring_test::ms_since(start) >= 150);
        CHECK(coring_test::ms_since(start) < 5000);
        silent.close();
        co_await silent.wait_closed();
    }());
}

TEST_CASE("tls - a peer that closes during the handshake: tls_error", "[tls][hostile]") {
    coring::run([]() -> coring::task<> {
        coring::server closer = co_await coring::start_server(
            [](coring::stream_reader, coring::stream_writer w) -> coring::task<> {
                w.close();
                co_return;
            },
            "127.0.0.1", 0);
        const coring::tls_context ctx = client_context();
        coring::stream_options options;
        options.tls = ctx;
        const std::string error = co_await connect_error<coring::tls_error>(closer.port(), options);
        CHECK(error.find("handshake with 127.0.0.1") != std::string::npos);
        closer.close();
        co_await closer.wait_closed();
    }());
}

TEST_CASE("tls - cancelling a task in the handshake resumes it promptly", "[tls][cancel]") {
    coring::run([]() -> coring::task<> {
        coring::server silent = co_await coring::start_server(
            [](coring::stream_reader r, coring::stream_writer) -> coring::task<> { (void)co_await r.read(); }, "127.0.0.1", 0);
        const coring::tls_context ctx = client_context();
        coring::stream_options options;
        options.tls = ctx;
        auto h = coring::create_task(coring::open_connection("127.0.0.1", silent.port(), options));
        co_await coring::sleep(50ms);
        const coring_test::cancel_outcome outcome = co_await coring_test::cancel_and_await(std::move(h));
        CHECK(outcome.by_cancelled_error);
        CHECK(outcome.ms_after_cancel < 1000);
        silent.close();
        co_await silent.wait_closed();
    }());
}

TEST_CASE("tls - close sends close_notify: the peer reads the end of the stream", "[tls]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        std::string seen;
        bool clean_end = false;
        coring::server srv = co_await coring::start_server(
            [&](coring::stream_reader r, coring::stream_writer w) -> coring::task<> {
                seen = co_await r.read();  // to the end
                clean_end = r.at_eof();
                w.close();
            },
            "127.0.0.1", 0, [&] {
                coring::server_options o;
                o.stream.tls = server_ctx;
                return o;
            }());
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(srv.port(), ctx);
        writer.write("bye");
        writer.close();
        co_await writer.wait_closed();
        co_await coring::sleep(100ms);
        CHECK(seen == "bye");
        CHECK(clean_end);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("tls - coring's client reads openssl s_server's -www page", "[tls][openssl]") {
    coring::run([]() -> coring::task<> {
        std::vector<std::string> www{"-www"};
        openssl_server server = co_await start_openssl_server(www);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(server.port, ctx);
        writer.write("GET / HTTP/1.0\r\n\r\n");
        const std::string page = co_await reader.read();
        CHECK(page.rfind("HTTP/1.0 200 ok", 0) == 0);
        CHECK(page.find("TLSv1.3") != std::string::npos);  // s_server reports the session
        writer.close();
        co_await writer.wait_closed();
        server.child.kill();
        (void)co_await server.child.wait();
    }());
}

TEST_CASE("tls - openssl s_client talks to coring's server and verifies it", "[tls][openssl]") {
    coring::run([]() -> coring::task<> {
        // A line echo that closes after one line: s_client -quiet reads until the server closes.
        coring::server_options server_options;
        const coring::tls_context server_ctx = server_context();
        server_options.stream.tls = server_ctx;
        coring::server srv = co_await coring::start_server(
            [](coring::stream_reader r, coring::stream_writer w) -> coring::task<> {
                const std::string line = co_await r.readline();
                w.write(line);
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1", 0, server_options);
        coring::subprocess_options options;
        options.std_in = coring::stdio::pipe;
        options.std_out = coring::stdio::pipe;
        options.std_err = coring::stdio::devnull;
        std::vector<std::string> argv{"openssl", "s_client", "-connect", "127.0.0.1:" + std::to_string(srv.port()), "-CAfile", certs().ca,
                                      "-verify_return_error", "-verify_hostname", "localhost", "-quiet"};
        coring::process client = co_await coring::create_subprocess_exec(argv, options);
        const auto result = co_await client.communicate("ping from s_client\n");
        CHECK(result.stdout_data == "ping from s_client\n");
        CHECK(client.returncode() == 0);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("tls - a peer that ends the TCP stream without close_notify: incomplete_read", "[tls][hostile]") {
    coring::run([]() -> coring::task<> {
        // Interactive s_server (no -quiet: that hides the ACCEPT line) sends what its stdin gets.
        std::vector<std::string> interactive;
        openssl_server server = co_await start_openssl_server(interactive);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(server.port, ctx);
        co_await server.child.stdin_pipe().write_all("partial\n");
        const std::string first = co_await reader.readline();
        CHECK(first == "partial\n");
        server.child.kill();  // the kernel closes its socket: a FIN, and no close_notify
        (void)co_await server.child.wait();
        bool incomplete = false;
        try {
            (void)co_await reader.read();
        } catch (const coring::incomplete_read& e) {
            incomplete = e.partial().empty();
        }
        CHECK(incomplete);
        writer.close();
        co_await writer.wait_closed();
    }());
}

TEST_CASE("tls - start_tls upgrades a plaintext connection on both sides", "[tls][starttls]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server_options plaintext;
        coring::server srv = co_await coring::start_server(
            [&server_ctx](coring::stream_reader r, coring::stream_writer w) -> coring::task<> {
                const std::string command = co_await r.readline();
                if (command != "STARTTLS\n") co_return;
                w.write("OK\n");
                co_await w.start_tls(server_ctx);
                const std::string line = co_await r.readline();
                w.write("secret: " + line);
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1", 0, plaintext);
        auto [reader, writer] = co_await coring::open_connection("127.0.0.1", srv.port());
        writer.write("STARTTLS\n");
        const std::string ok = co_await reader.readline();
        REQUIRE(ok == "OK\n");
        CHECK(writer.tls() == nullptr);
        const coring::tls_context ctx = client_context();
        co_await writer.start_tls(ctx, "localhost");
        REQUIRE(writer.tls() != nullptr);
        CHECK(writer.tls()->peer_subject().find("CN=localhost") != std::string::npos);
        writer.write("hello\n");
        const std::string answer = co_await reader.readline();
        CHECK(answer == "secret: hello\n");
        co_await close_both(writer, srv);
    }());
}

TEST_CASE("tls - start_tls on a stream that speaks TLS already: invalid_state_error", "[tls][starttls]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(srv.port(), ctx);
        const bool refused = co_await coring_test::throws<coring::invalid_state_error>(writer.start_tls(ctx));
        CHECK(refused);
        co_await close_both(writer, srv);
    }());
}

TEST_CASE("tls - records cut into pieces and records arriving together are read intact", "[tls]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        const coring::tls_context ctx = client_context();
        for (const relay_mode mode : {relay_mode::split, relay_mode::coalesced}) {
            relay_control control{.mode = mode};
            coring::server relay = co_await start_relay(srv.port(), control);
            auto [reader, writer] = co_await connect(relay.port(), ctx);
            // 200 records of their own (each drained before the next is written), then one large write.
            writer.set_write_buffer_limits(0, 0);
            std::string sent;
            for (int i = 0; i < 200; ++i) {
                const std::string piece = "record " + std::to_string(i) + ";";
                writer.write(piece);
                co_await writer.drain();
                sent += piece;
            }
            const std::string large = pattern(3, 40'000);
            writer.write(large);
            sent += large;
            co_await writer.drain();
            const std::string back = co_await reader.readexactly(sent.size());
            CHECK(back == sent);
            co_await close_both(writer, relay);
        }
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("tls - a truncated record: incomplete_read for that connection; the server keeps serving", "[tls][hostile]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        handler_outcome outcome;
        coring::server_options server_options;
        server_options.stream.tls = server_ctx;
        coring::server srv = co_await coring::start_server(
            [&outcome](coring::stream_reader r, coring::stream_writer w) { return echo_lines_noting(r, w, outcome); }, "127.0.0.1", 0,
            server_options);
        relay_control control;
        coring::server relay = co_await start_relay(srv.port(), control);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(relay.port(), ctx);
        writer.write("whole\n");
        const std::string first = co_await reader.readline();
        CHECK(first == "whole\n");
        control.cut_next = true;
        writer.write("this record reaches the server cut short\n");
        co_await writer.drain();
        co_await coring::wait_for(outcome.ended.wait(), 5s);  // timeout_error fails the test
        CHECK(outcome.how == "incomplete_read");
        const bool still_serving = co_await serves(srv.port(), ctx);
        CHECK(still_serving);
        co_await close_both(writer, relay);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("tls - a renegotiation request fails that connection; the server keeps serving", "[tls][hostile]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        handler_outcome outcome;
        coring::server_options server_options;
        server_options.stream.tls = server_ctx;
        coring::server srv = co_await coring::start_server(
            [&outcome](coring::stream_reader r, coring::stream_writer w) { return echo_lines_noting(r, w, outcome); }, "127.0.0.1", 0,
            server_options);
        std::vector<std::string> tls12{"-tls1_2"};  // renegotiation exists up to TLS 1.2
        coring::process client = co_await start_openssl_client(srv.port(), tls12);
        co_await client.stdin_pipe().write_all("before\n");
        const std::string echoed = co_await read_line_starting(client, "before");
        CHECK(echoed == "before");
        co_await client.stdin_pipe().write_all("R\n");  // s_client: renegotiate
        const int status = co_await coring::wait_for(client.wait(), 10s);
        CHECK(status != 0);  // s_client fails: "no renegotiation"
        co_await coring::wait_for(outcome.ended.wait(), 5s);
        CHECK(outcome.how.find("tls_error") == 0);
        const coring::tls_context ctx = client_context();
        const bool still_serving = co_await serves(srv.port(), ctx);
        CHECK(still_serving);
        srv.close();
        co_await srv.wait_closed();
    }());
}

TEST_CASE("tls - TLS 1.3 key updates from either peer: the bytes keep flowing", "[tls][openssl]") {
    coring::run([]() -> coring::task<> {
        // The client (s_client) updates its keys and asks coring's server to update its own.
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        std::vector<std::string> none;
        coring::process client = co_await start_openssl_client(srv.port(), none);
        co_await client.stdin_pipe().write_all("one\n");
        const std::string one = co_await read_line_starting(client, "one");
        CHECK(one == "one");
        co_await client.stdin_pipe().write_all("K\n");  // s_client: key update, one asked back
        const std::string updated = co_await read_line_starting(client, "KEYUPDATE");
        CHECK(updated == "KEYUPDATE");
        co_await client.stdin_pipe().write_all("two\n");
        const std::string two = co_await read_line_starting(client, "two");
        CHECK(two == "two");
        co_await client.stdin_pipe().write_all("K\n");
        const std::string updated_again = co_await read_line_starting(client, "KEYUPDATE");
        CHECK(updated_again == "KEYUPDATE");
        co_await client.stdin_pipe().write_all("three\n");
        const std::string three = co_await read_line_starting(client, "three");
        CHECK(three == "three");
        co_await client.stdin_pipe().close();  // s_client ends its session at EOF
        const int client_status = co_await coring::wait_for(client.wait(), 10s);
        CHECK(client_status == 0);
        srv.close();
        co_await srv.wait_closed();

        // The server (s_server) updates its keys and asks coring's client to update its own.
        std::vector<std::string> interactive;
        openssl_server server = co_await start_openssl_server(interactive);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(server.port, ctx);
        co_await server.child.stdin_pipe().write_all("K\n");  // s_server: key update, one asked back
        co_await coring::sleep(300ms);  // s_server's report of it is stdio-buffered: no line to wait for
        co_await server.child.stdin_pipe().write_all("after the update\n");
        const std::string line = co_await reader.readline();
        CHECK(line == "after the update\n");
        writer.write("answer\n");
        co_await writer.drain();
        const std::string answer = co_await read_line_starting(server.child, "answer");
        CHECK(answer == "answer");
        co_await server.child.stdin_pipe().write_all("K\n");
        co_await coring::sleep(300ms);
        co_await server.child.stdin_pipe().write_all("again\n");
        const std::string again = co_await reader.readline();
        CHECK(again == "again\n");
        writer.close();
        co_await writer.wait_closed();
        server.child.kill();
        (void)co_await server.child.wait();
    }());
}

TEST_CASE("tls - the server's close sends close_notify: the client reads a clean end", "[tls]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server_options server_options;
        server_options.stream.tls = server_ctx;
        coring::server srv = co_await coring::start_server(
            [](coring::stream_reader, coring::stream_writer w) -> coring::task<> {
                w.write(pattern(9, 100'000));
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1", 0, server_options);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(srv.port(), ctx);
        const std::string all = co_await reader.read();  // no incomplete_read: close_notify came
        CHECK(all == pattern(9, 100'000));
        CHECK(reader.at_eof());
        co_await close_both(writer, srv);
    }());
}

TEST_CASE("tls - cancelling a read resumes it promptly and loses no byte", "[tls][cancel]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server srv = co_await start_echo_server(server_ctx);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(srv.port(), ctx);
        writer.write("par");  // half a line: readline waits for the rest
        auto pending = coring::create_task(readline_of(reader));
        co_await coring::sleep(100ms);
        REQUIRE_FALSE(pending.done());
        const coring_test::cancel_outcome outcome = co_await coring_test::cancel_and_await(std::move(pending));
        CHECK(outcome.by_cancelled_error);
        CHECK(outcome.ms_after_cancel < 1000);
        writer.write("tial\n");
        const std::string line = co_await reader.readline();
        CHECK(line == "partial\n");
        co_await close_both(writer, srv);
    }());
}

TEST_CASE("tls - cancelling a drain resumes it promptly; every byte still arrives", "[tls][cancel]") {
    coring::run([]() -> coring::task<> {
        // The server reads nothing until `go`, then counts to the end and answers with the total.
        const coring::tls_context server_ctx = server_context();
        coring::event go;
        std::string received;
        coring::server_options server_options;
        server_options.stream.tls = server_ctx;
        coring::server srv = co_await coring::start_server(
            [&](coring::stream_reader r, coring::stream_writer w) -> coring::task<> {
                co_await go.wait();
                received = co_await r.read();
                w.write(std::to_string(received.size()) + "\n");
                w.close();
                co_await w.wait_closed();
            },
            "127.0.0.1", 0, server_options);
        const coring::tls_context ctx = client_context();
        auto [reader, writer] = co_await connect(srv.port(), ctx);
        const std::string sent = pattern(5, 16 << 20);  // far past what the sockets' buffers hold
        writer.write(sent);
        auto draining = coring::create_task(drain_of(writer));
        co_await coring::sleep(100ms);
        REQUIRE_FALSE(draining.done());
        const coring_test::cancel_outcome outcome = co_await coring_test::cancel_and_await(std::move(draining));
        CHECK(outcome.by_cancelled_error);
        CHECK(outcome.ms_after_cancel < 1000);
        go.set();
        writer.write_eof();
        const std::string total = co_await reader.readline();
        CHECK(total == std::to_string(sent.size()) + "\n");
        CHECK(received == sent);
        co_await close_both(writer, srv);
    }());
}

TEST_CASE("tls - a server outlives silent and cut-off handshakes, serving others meanwhile", "[tls][hostile]") {
    coring::run([]() -> coring::task<> {
        const coring::tls_context server_ctx = server_context();
        coring::server_options server_options;
        server_options.stream.tls = server_ctx;
        server_options.stream.tls_handshake_timeout = 300ms;
        coring::server srv = co_await coring::start_server(echo, "127.0.0.1", 0, server_options);
        const coring::tls_context ctx = client_context();
        const auto start = std::chrono::steady_clock::now();
        // A peer that connects and says nothing.
        auto [silent_reader, silent_writer] = co_await coring::open_connection("127.0.0.1", srv.port());
        // A peer that sends the start of a ClientHello record and leaves.
        auto [cut_reader, cut_writer] = co_await coring::open_connection("127.0.0.1", srv.port());
        cut_writer.write(std::string_view("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
        co_await cut_writer.drain();
        cut_writer.close();
        co_await cut_writer.wait_closed();
        // Meanwhile another client is served.
        const bool served_meanwhile = co_await serves(srv.port(), ctx);
        CHECK(served_meanwhile);
        // The silent peer is dropped once its handshake timeout passes.
        const std::string nothing = co_await silent_reader.read();
        CHECK(nothing.empty());
        CHECK(coring_test::ms_since(start) >= 250);
        CHECK(coring_test::ms_since(start) < 5000);
        silent_writer.close();
        const bool served_after = co_await serves(srv.port(), ctx);
        CHECK(served_after);
        srv.close();
        co_await srv.wait_closed();
    }());
}
