// http_server: a small HTTP/1.1 server on coring::start_server and asyncio-style streams.
//
// It shows a request loop over one kept-alive connection: readline() reads the request head's
// lines (examples/http_request.hpp parses them; CRLF or bare LF), and the stream's limit bounds
// it (a head larger than --max-header-bytes is answered with 431 and the connection closed,
// instead of buffering without bound); readexactly() reads (and here discards) a request body;
// write() + drain() send the response.
//
//   GET /              a hello page
//   GET /files/PATH    the file PATH under --root, sent with writer.sendfile (the kernel moves
//                      its bytes from the page cache to the socket); 404 if missing
//   GET /sleep/MS      answers after MS milliseconds, at most 60000 (for the timeouts of
//                      examples/fetch_urls); 400 if MS is not a number
//   anything else      404; a method other than GET and HEAD: 405; a malformed request: 400
//
// HTTP/1.1 connections stay open between requests unless the client says "Connection: close"
// (HTTP/1.0 ones only with "Connection: keep-alive"). It prints "listening on HOST:PORT" when
// ready (--port 0 picks a free port) and stops cleanly on SIGINT or SIGTERM.
//
// Clients that connect and stay (slowloris) cannot exhaust it, as with nginx's defaults:
// - a request head must be complete 10 s after its first byte (--head-timeout-ms), else 408 and
//   the connection closes;
// - a kept-alive connection waits 30 s for its next request (--keepalive-timeout-ms; the
//   stream's read_timeout, which also bounds each wait for a body);
// - a connection on which nothing moves for 60 s is aborted (--idle-timeout-ms; a client that
//   stops reading its responses);
// - at most 1000 connections are open at once (--max-connections); more wait to be accepted.
//
// --threads N runs N event loops, one per thread, each with its own listener on the same port
// (SO_REUSEPORT: the kernel spreads the connections); on exit it prints the requests each loop
// served (examples/sharded.hpp).
//
// --tls CERT KEY serves HTTPS instead: the same handler, over TLS (a server tls_context in
// server_options.stream.tls; the handler sees a connection once its handshake is over).
//
//   $ ./http_server --port 8080 --root . &
//   listening on 127.0.0.1:8080
//   $ curl http://127.0.0.1:8080/
//   $ wrk -t1 -c50 -d2s http://127.0.0.1:8080/
//   $ ./http_server --port 8443 --tls server.pem server.key &
//   $ curl --cacert ca.pem https://localhost:8443/
#include <coring/coring.hpp>
#include <coring/net/server.hpp>
#include <coring/net/stream.hpp>
#include <coring/net/tls.hpp>

#include "http_request.hpp"
#include "sharded.hpp"

#include <sys/stat.h>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;
using http_example::iequals;
using http_example::parse_decimal;
using http_example::request;

namespace {

struct settings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    std::string root = ".";
    std::size_t max_header_bytes = 8192;
    std::size_t max_body_bytes = 1 << 20;
    std::string tls_cert;  // --tls CERT KEY: serve HTTPS
    std::string tls_key;
    // Against clients that hold connections open (slowloris): nginx's client_header_timeout,
    // keepalive_timeout and send_timeout, and its worker_connections.
    std::chrono::milliseconds head_timeout{10'000};       // from a head's first byte to its end
    std::chrono::milliseconds keepalive_timeout{30'000};  // for the next request's first byte
    std::chrono::milliseconds idle_timeout{60'000};       // nothing moving either way
    std::size_t max_connections = 1000;  // per loop
    std::size_t threads = 1;             // --threads N: loops, each on its own thread
};

settings g_settings;
thread_local std::uint64_t g_requests = 0;  // on this loop

std::string_view content_type(std::string_view path) {
    const std::size_t dot = path.rfind('.');
    const std::string_view ext = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
    if (ext == "html" || ext == "htm") return "text/html; charset=utf-8";
    if (ext == "txt" || ext == "md" || ext == "cpp" || ext == "hpp" || ext == "c" || ext == "h") return "text/plain; charset=utf-8";
    if (ext == "css") return "text/css";
    if (ext == "js") return "text/javascript";
    if (ext == "json") return "application/json";
    if (ext == "png") return "image/png";
    if (ext == "svg") return "image/svg+xml";
    return "application/octet-stream";
}

const char* reason(int status) {
    switch (status) {
        case 200: return "OK";
        case 400: return "Bad Request";
        case 404: return "Not Found";
        case 405: return "Method Not Allowed";
        case 408: return "Request Timeout";
        case 413: return "Content Too Large";
        case 431: return "Request Header Fields Too Large";
        case 500: return "Internal Server Error";
        case 501: return "Not Implemented";
        default: return "Unknown";
    }
}

struct response {
    int status = 200;
    std::string type = "text/plain; charset=utf-8";
    std::string body;
    std::string extra_headers;
    // A file to send after the head instead of `body` (/files/): its first `file_size` bytes.
    std::optional<coring::file> file;
    std::uint64_t file_size = 0;
};

void respond(coring::stream_writer& writer, const response& r, bool keep_alive, bool head_only) {
    std::string head = "HTTP/1.1 " + std::to_string(r.status) + " " + reason(r.status) + "\r\n";
    head += "Server: coring-http-example\r\n";
    head += "Content-Type: " + r.type + "\r\n";
    head += "Content-Length: " + std::to_string(r.file ? r.file_size : r.body.size()) + "\r\n";
    head += keep_alive ? "Connection: keep-alive\r\n" : "Connection: close\r\n";
    head += r.extra_headers;
    head += "\r\n";
    writer.write(head);
    if (!head_only) writer.write(r.body);
}

response error_page(int status) {
    response r;
    r.status = status;
    r.body = std::to_string(status) + " " + reason(status) + "\n";
    return r;
}

// A path under --root, or nothing if it would leave it (a ".." segment) or is not plain.
std::optional<std::string> file_under_root(std::string_view path) {
    if (path.empty()) return std::nullopt;
    std::size_t at = 0;
    while (at <= path.size()) {
        const std::size_t slash = path.find('/', at);
        const std::string_view segment = path.substr(at, slash == std::string_view::npos ? std::string_view::npos : slash - at);
        if (segment.empty() || segment == "." || segment == ".." || segment.find('\0') != std::string_view::npos) return std::nullopt;
        if (slash == std::string_view::npos) break;
        at = slash + 1;
    }
    return g_settings.root + "/" + std::string(path);
}

coring::task<response> route(const request& r) {
    if (r.method != "GET" && r.method != "HEAD") {
        response e = error_page(405);
        e.extra_headers = "Allow: GET, HEAD\r\n";
        co_return e;
    }
    const std::string_view target = std::string_view(r.target).substr(0, r.target.find('?'));
    if (target == "/") {
        response page;
        page.type = "text/html; charset=utf-8";
        page.body = "<!doctype html>\n<title>coring</title>\n<h1>Hello from coring</h1>\n<p>Request " + std::to_string(g_requests) +
                    " served by an io_uring event loop.</p>\n";
        co_return page;
    }
    if (target.starts_with("/sleep/")) {
        const std::optional<std::uint64_t> ms = parse_decimal(target.substr(7), 60'000);  // at most a minute
        if (!ms) co_return error_page(400);
        co_await coring::sleep(std::chrono::milliseconds(*ms));
        response done;
        done.body = "slept " + std::to_string(*ms) + " ms\n";
        co_return done;
    }
    if (target.starts_with("/files/")) {
        const std::optional<std::string> path = file_under_root(target.substr(7));
        if (!path) co_return error_page(404);
        std::optional<response> found;
        int error = 0;
        try {
            response file;
            file.type = content_type(*path);
            file.file = co_await coring::file::open(*path);
            struct stat info {};
            if (::fstat(file.file->fd(), &info) != 0 || !S_ISREG(info.st_mode)) throw std::system_error(EISDIR, std::generic_category());
            file.file_size = static_cast<std::uint64_t>(info.st_size);
            found = std::move(file);
        } catch (const std::system_error& e) {
            error = e.code().value();
        }
        if (found) co_return std::move(*found);
        co_return error_page(error == ENOENT || error == EISDIR || error == ENOTDIR || error == EACCES ? 404 : 500);
    }
    co_return error_page(404);
}

// A request head as it arrived: its lines through the empty one, or why there is none.
struct head_read {
    std::string text;
    int refuse = 0;    // a status to answer with, then close
    bool end = false;  // close without an answer: the client left, or kept silent too long
};

// Reads the next request head. Its first byte may take up to --keepalive-timeout-ms (the stream's
// read_timeout); from that byte the whole head must arrive within --head-timeout-ms (408). Lines
// end in CRLF or a bare LF; the stream's limit bounds each line and the sum bounds the head (431).
coring::task<head_read> read_head(coring::stream_reader& reader) {
    head_read h;
    try {
        h.text = co_await reader.read(1);
    } catch (const coring::timeout_error&) {
        h.end = true;  // an idle kept-alive connection
        co_return h;
    }
    if (h.text.empty()) {
        h.end = true;  // the client closed between requests
        co_return h;
    }
    try {
        co_await coring::with_timeout(g_settings.head_timeout, [&](coring::timeout_scope&) -> coring::task<> {
            for (;;) {
                std::string line = co_await reader.readline();
                h.text += line;
                if (line.empty() || line.back() != '\n') {
                    h.refuse = 400;  // the client closed in the middle of the head
                    co_return;
                }
                if (h.text.size() > g_settings.max_header_bytes) {
                    h.refuse = 431;
                    co_return;
                }
                if (http_example::is_head_end(line) && h.text.size() > line.size()) co_return;
            }
        });
    } catch (const coring::timeout_error&) {
        h.refuse = 408;
    } catch (const coring::limit_overrun&) {
        h.refuse = 431;  // one line is larger than the stream's limit
    }
    co_return h;
}

// One connection: requests one after the other until the client closes, asks to close, or sends
// something we cannot answer and keep the connection.
coring::task<> serve_client(coring::stream_reader reader, coring::stream_writer writer) {
    for (;;) {
        head_read h = co_await read_head(reader);
        if (h.end) break;
        int refuse = h.refuse;
        std::optional<request> parsed;
        if (refuse == 0) {
            parsed = http_example::parse_head(h.text);
            if (!parsed) refuse = 400;
        }
        if (refuse == 0 && parsed->header("Transfer-Encoding")) refuse = 501;
        std::size_t body_length = 0;
        if (refuse == 0) {
            if (const auto length = parsed->header("Content-Length")) {
                const std::optional<std::uint64_t> n = parse_decimal(*length);
                if (!n)
                    refuse = 400;
                else if (*n > g_settings.max_body_bytes)
                    refuse = 413;
                else
                    body_length = static_cast<std::size_t>(*n);
            }
        }
        if (refuse != 0) {
            respond(writer, error_page(refuse), false, false);
            co_await writer.drain();
            break;
        }
        if (body_length > 0) {
            bool complete = true;
            try {
                (void)co_await reader.readexactly(body_length);  // this server has no use for bodies
            } catch (const coring::incomplete_read&) {
                complete = false;
            }
            if (!complete) break;
        }
        ++g_requests;
        const std::optional<std::string_view> connection = parsed->header("Connection");
        const bool keep_alive = parsed->version == "HTTP/1.1" ? !(connection && iequals(*connection, "close"))
                                                              : (connection && iequals(*connection, "keep-alive"));
        response r = co_await route(*parsed);
        const bool head_only = parsed->method == "HEAD";
        respond(writer, r, keep_alive, head_only);
        if (r.file && !head_only) {
            // The file may be shorter by now (truncated meanwhile): the promised length cannot
            // be kept, so the connection ends.
            const std::uint64_t sent = co_await writer.sendfile(*r.file, 0, r.file_size);
            if (sent < r.file_size) break;
        }
        co_await writer.drain();
        if (!keep_alive) break;
    }
    writer.close();
    co_await writer.wait_closed();
}

// One loop's server (examples/sharded.hpp): with --threads N, N of them share the port.
coring::task<std::uint64_t> serve_one(sharded::shard& shard) {
    coring::server_options options;
    options.stream.limit = g_settings.max_header_bytes;  // bounds a request head
    options.stream.read_timeout = g_settings.keepalive_timeout;
    options.stream.idle_timeout = g_settings.idle_timeout;
    options.max_connections = g_settings.max_connections;  // per loop
    options.reuse_port = shard.shares_port();
    coring::tls_context tls;
    if (!g_settings.tls_cert.empty()) {
        tls = coring::tls_context::server(g_settings.tls_cert, g_settings.tls_key);
        options.stream.tls = tls;
    }
    auto handler = [](coring::stream_reader reader, coring::stream_writer writer) -> coring::task<> {
        try {
            co_await serve_client(std::move(reader), std::move(writer));
        } catch (const std::system_error&) {
            // The client reset the connection while we wrote.
        }
    };
    const std::uint16_t port = co_await shard.port();
    coring::server srv = co_await coring::start_server(handler, g_settings.host, port, options);
    co_await shard.listening(srv.addresses().front());
    auto stopping = shard.on_stop([&srv] { srv.close(); });
    co_await srv.serve_forever();
    co_return g_requests;
}

[[noreturn]] void usage() {
    std::fprintf(stderr,
                 "usage: http_server [--host H] [--port P] [--root DIR] [--max-header-bytes N] [--tls CERT KEY]\n"
                 "                   [--head-timeout-ms MS] [--keepalive-timeout-ms MS] [--idle-timeout-ms MS]\n"
                 "                   [--max-connections N] [--threads N]\n");
    std::exit(2);
}

// A flag's number, or the usage message: never a silently wrapped or partly read value.
std::uint64_t number(const char* text, std::uint64_t max) {
    const std::optional<std::uint64_t> n = parse_decimal(text, max);
    if (!n) {
        std::fprintf(stderr, "http_server: '%s' is not a number from 0 to %llu\n", text, static_cast<unsigned long long>(max));
        usage();
    }
    return *n;
}

}  // namespace

int main(int argc, char** argv) {
    constexpr std::uint64_t a_day_ms = 86'400'000;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (i + 1 >= argc) usage();
        if (arg == "--host")
            g_settings.host = argv[++i];
        else if (arg == "--port")
            g_settings.port = static_cast<std::uint16_t>(number(argv[++i], 65535));
        else if (arg == "--root")
            g_settings.root = argv[++i];
        else if (arg == "--max-header-bytes")
            g_settings.max_header_bytes = static_cast<std::size_t>(number(argv[++i], 1 << 30));
        else if (arg == "--head-timeout-ms")
            g_settings.head_timeout = std::chrono::milliseconds(number(argv[++i], a_day_ms));
        else if (arg == "--keepalive-timeout-ms")
            g_settings.keepalive_timeout = std::chrono::milliseconds(number(argv[++i], a_day_ms));
        else if (arg == "--idle-timeout-ms")
            g_settings.idle_timeout = std::chrono::milliseconds(number(argv[++i], a_day_ms));
        else if (arg == "--max-connections")
            g_settings.max_connections = static_cast<std::size_t>(number(argv[++i], 1'000'000));
        else if (arg == "--threads")
            g_settings.threads = static_cast<std::size_t>(number(argv[++i], 1024));
        else if (arg == "--tls" && i + 2 < argc) {
            g_settings.tls_cert = argv[++i];
            g_settings.tls_key = argv[++i];
        } else
            usage();
    }
    if (g_settings.threads == 0) usage();
    try {
        const std::vector<std::uint64_t> served = sharded::run(g_settings.threads, g_settings.port, serve_one);
        std::uint64_t total = 0;
        for (std::uint64_t n : served) total += n;
        if (served.size() > 1)
            std::printf("http_server: served %llu requests (per loop: %s)\n", static_cast<unsigned long long>(total), sharded::per_loop(served).c_str());
        else
            std::printf("http_server: served %llu requests\n", static_cast<unsigned long long>(total));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "http_server: %s\n", e.what());
        return 1;
    }
    return 0;
}
