// Tests of coring/bridge/curl.hpp (coring::http) against real servers: nginx (plain HTTP/1.1,
// and HTTPS with HTTP/2 with certificates the openssl tool makes at test time), servers written
// in the test with start_server (an echo of the request, one that stops mid-response, one that
// never answers), and the project's own examples/http_server. Without nginx the binary reports
// SKIP (77).
#include <coring/bridge/curl.hpp>
#include <coring/coring.hpp>
#include <coring/testing/catch2.hpp>

#include "support/catch.hpp"
#include "support/nginx_server.hpp"
#include "support/os.hpp"
#include "support/tls_certs.hpp"

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

using namespace std::chrono_literals;

namespace {

// ------------------------------------------------------------------ nginx, once per binary

// Port 0: HTTP/1.1. Port 1: HTTPS with HTTP/2 (ALPN), the test CA's certificate for 127.0.0.1.
// The access log says which connection and protocol served each request.
struct site {
    coring_test::tls_certs certs;
    std::unique_ptr<coring_test::nginx_server> nginx;
    std::string index_html = "<!doctype html>\n<title>index</title>\n<p>served by nginx for coring's curl bridge</p>\n";
    std::string big = coring_test::pattern(0, 1 << 20);

    site() {
        const std::string servers = R"(
    log_format conn '$connection $server_protocol $request_uri';
    server {
        listen 127.0.0.1:@PORT0@;
        listen 127.0.0.1:@PORT1@ ssl http2;
        ssl_certificate )" + certs.server_cert + R"(;
        ssl_certificate_key )" + certs.server_key + R"(;
        keepalive_requests 10000;
        access_log @DIR@/access.log conn;
        root @DIR@/www;
        location = /redirect { return 302 /index.html; }
        location = /loop { return 302 /loop; }
        location = /teapot { return 418 "short and stout\n"; }
        location = /headers.txt { add_header X-Coring-Test "yes, this one"; }
    }
)";
        try {
            nginx = std::make_unique<coring_test::nginx_server>(2, servers);
        } catch (const coring_test::nginx_missing& e) {
            std::printf("SKIP: %s\n", e.what());
            std::fflush(stdout);
            std::_Exit(77);
        }
        write("www/index.html", index_html);
        write("www/big.bin", big);
        write("www/headers.txt", "headers\n");
    }

    void write(const std::string& name, const std::string& content) const {
        std::system(("mkdir -p " + nginx->dir() + "/www").c_str());
        std::ofstream(nginx->dir() + "/" + name, std::ios::binary) << content;
    }
    [[nodiscard]] std::string http(const std::string& path) const { return "http://127.0.0.1:" + std::to_string(nginx->port(0)) + path; }
    [[nodiscard]] std::string https(const std::string& path) const { return "https://127.0.0.1:" + std::to_string(nginx->port(1)) + path; }

    // The access log's lines for request URIs containing `marker`: connection and protocol.
    struct served {
        std::set<std::string> connections;
        std::set<std::string> protocols;
        std::size_t requests = 0;
    };
    [[nodiscard]] served log_of(const std::string& marker) const {
        served s;
        std::istringstream log(nginx->read("access.log"));
        std::string connection, protocol, uri;
        while (log >> connection >> protocol >> uri) {
            if (uri.find(marker) == std::string::npos) continue;
            s.connections.insert(connection);
            s.protocols.insert(protocol);
            ++s.requests;
        }
        return s;
    }
};

site& the_site() {
    static site s;
    return s;
}

// ------------------------------------------------------------------ servers written here

// Reads a request head and its Content-Length body; answers 201 with "<method> <target>\n<body>"
// and echoes X-Custom back as X-Echo.
coring::task<> echo_request(coring::stream_reader reader, coring::stream_writer writer) {
    const std::string head = co_await reader.readuntil("\r\n\r\n");
    std::istringstream lines(head);
    std::string method, target;
    lines >> method >> target;
    std::size_t length = 0;
    std::string custom;
    for (std::string line; std::getline(lines, line);) {
        if (line.starts_with("Content-Length: ")) length = std::stoul(line.substr(16));
        if (line.starts_with("X-Custom: ")) custom = line.substr(10, line.size() - 11);  // without the \r
    }
    std::string body;
    if (length > 0) body = co_await reader.readexactly(length);
    const std::string reply = method + " " + target + "\n" + body;
    writer.write("HTTP/1.1 201 Created\r\nContent-Length: " + std::to_string(reply.size()) + "\r\nX-Echo: " + custom +
                 "\r\nConnection: close\r\n\r\n" + reply);
    co_await writer.drain();
}

// Promises 1,000 bytes, sends 10, and closes.
coring::task<> stop_mid_body(coring::stream_reader reader, coring::stream_writer writer) {
    (void)co_await reader.readuntil("\r\n\r\n");
    writer.write(std::string("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789"));
    co_await writer.drain();
}

// A chunked body of 100 KB: its length is not known in advance.
coring::task<> chunked_100k(coring::stream_reader reader, coring::stream_writer writer) {
    (void)co_await reader.readuntil("\r\n\r\n");
    writer.write(std::string("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"));
    for (int i = 0; i < 100; ++i) writer.write("3e8\r\n" + std::string(1000, 'x') + "\r\n");
    writer.write(std::string("0\r\n\r\n"));
    co_await writer.drain();
}

// Reads the request and never answers; notes when the client closes the connection.
struct silent_server_state {
    int connections = 0;
    int closed_by_client = 0;
};
silent_server_state g_silent;
coring::task<> never_answer(coring::stream_reader reader, coring::stream_writer writer) {
    ++g_silent.connections;
    (void)writer;
    (void)co_await reader.readuntil("\r\n\r\n");
    const std::string rest = co_await reader.read();  // "" once the client has closed
    if (rest.empty()) ++g_silent.closed_by_client;
}

std::string local_url(const coring::server& srv, const std::string& path) { return "http://127.0.0.1:" + std::to_string(srv.port()) + path; }

// What a request threw, if it was an http::error.
struct failure {
    CURLcode code = CURLE_OK;
    int os_errno = 0;
    std::string what;
};
coring::task<failure> http_failure(coring::http::client& c, std::string url, coring::http::options opts) {
    failure f;
    try {
        (void)co_await c.get(std::move(url), opts);
    } catch (const coring::http::error& e) {
        f.code = e.code();
        f.os_errno = e.os_errno();
        f.what = e.what();
    }
    co_return f;
}

}  // namespace

// ================================================================== responses

CORING_TEST_CASE("http - get returns nginx's status, headers and body", "[http]") {
    site& s = the_site();
    coring::http::client c;
    const std::string url = s.http("/index.html");
    const coring::http::response r = co_await c.get(url);
    CHECK(r.status == 200);
    CHECK(r.body == s.index_html);
    CHECK(r.url == url);
    REQUIRE(r.header("content-type").has_value());
    CHECK(*r.header("Content-Type") == "text/html");
    CHECK(*r.header("CONTENT-LENGTH") == std::to_string(s.index_html.size()));
    CHECK_FALSE(r.header("X-Not-There").has_value());

    const coring::http::response h = co_await c.get(s.http("/headers.txt"));
    CHECK(h.header("x-coring-test") == std::optional<std::string_view>("yes, this one"));
}

CORING_TEST_CASE("http - an HTTP error status is a response, not an exception", "[http]") {
    site& s = the_site();
    coring::http::client c;
    const coring::http::response missing = co_await c.get(s.http("/no/such/page"));
    CHECK(missing.status == 404);
    const coring::http::response teapot = co_await c.get(s.http("/teapot"));
    CHECK(teapot.status == 418);
    CHECK(teapot.body == "short and stout\n");
}

CORING_TEST_CASE("http - redirects are followed, or returned when follow_redirects is off", "[http]") {
    site& s = the_site();
    coring::http::client c;
    const coring::http::response followed = co_await c.get(s.http("/redirect"));
    CHECK(followed.status == 200);
    CHECK(followed.body == s.index_html);
    CHECK(followed.url == s.http("/index.html"));

    const coring::http::response kept = co_await c.get(s.http("/redirect"), {.follow_redirects = false});
    CHECK(kept.status == 302);
    CHECK(kept.header("location") == std::optional<std::string_view>(s.http("/index.html")));

    const failure loop = co_await http_failure(c, s.http("/loop"), {.max_redirects = 3});
    CHECK(loop.code == CURLE_TOO_MANY_REDIRECTS);
    CHECK(loop.what.find(s.http("/loop")) != std::string::npos);
}

CORING_TEST_CASE("http - request sends the method, headers and body, and only to that request", "[http]") {
    coring::server srv = co_await coring::start_server(echo_request, "127.0.0.1", 0);
    coring::http::client c;
    const coring::http::header_list headers{{"X-Custom", "forty two"}, {"Content-Type", "text/plain"}};
    const std::string url = local_url(srv, "/things/7");
    const coring::http::response posted = co_await c.request({.method = "POST", .url = url, .headers = headers, .body = "a posted body"});
    CHECK(posted.status == 201);
    CHECK(posted.body == "POST /things/7\na posted body");
    CHECK(posted.header("X-Echo") == std::optional<std::string_view>("forty two"));

    const coring::http::response put = co_await c.request({.method = "PUT", .url = url, .body = "replaced"});
    CHECK(put.body == "PUT /things/7\nreplaced");
    const coring::http::response deleted = co_await c.request({.method = "DELETE", .url = url});
    CHECK(deleted.body == "DELETE /things/7\n");

    // The client reuses its easy handles: nothing of a request stays for the next one.
    for (int i = 0; i < 2; ++i) {
        const coring::http::response got = co_await c.get(url);
        CHECK(got.body == "GET /things/7\n");
        CHECK(got.header("X-Echo") == std::optional<std::string_view>(""));
    }
    const coring::http::response posted_again = co_await c.request({.method = "POST", .url = url, .headers = headers, .body = "again"});
    CHECK(posted_again.body == "POST /things/7\nagain");
    CHECK(posted_again.header("X-Echo") == std::optional<std::string_view>("forty two"));
    srv.close();
    co_await srv.wait_closed();
}

// ================================================================== connections

CORING_TEST_CASE("http - sequential requests to one host share a kept-alive connection", "[http]") {
    site& s = the_site();
    coring::http::client c;
    for (int i = 0; i < 5; ++i) {
        const coring::http::response r = co_await c.get(s.http("/index.html?keepalive-" + std::to_string(i)));
        CHECK(r.status == 200);
    }
    // nginx writes a request's log line after its response: the last one may lag.
    for (int i = 0; i < 100 && s.log_of("keepalive-").requests < 5; ++i) co_await coring::sleep(10ms);
    const site::served log = s.log_of("keepalive-");
    CHECK(log.requests == 5);
    CHECK(log.connections.size() == 1);
    CHECK(log.protocols == std::set<std::string>{"HTTP/1.1"});
}

CORING_TEST_CASE("http - https: concurrent requests are multiplexed over one HTTP/2 connection", "[http][tls]") {
    site& s = the_site();
    coring::http::client c;
    std::vector<coring::task<coring::http::response>> fetches;
    for (int i = 0; i < 20; ++i) fetches.push_back(c.get(s.https("/index.html?h2-" + std::to_string(i)), {.cafile = s.certs.ca.c_str()}));
    const std::vector<coring::http::response> got = co_await coring::gather(std::move(fetches));
    for (const coring::http::response& r : got) {
        CHECK(r.status == 200);
        CHECK(r.body == s.index_html);
    }
    for (int i = 0; i < 100 && s.log_of("h2-").requests < 20; ++i) co_await coring::sleep(10ms);
    const site::served log = s.log_of("h2-");
    CHECK(log.requests == 20);
    CHECK(log.connections.size() == 1);
    CHECK(log.protocols == std::set<std::string>{"HTTP/2.0"});
}

CORING_TEST_CASE("http - https verifies the server: an unknown CA fails unless verify is off", "[http][tls]") {
    site& s = the_site();
    coring::http::client c;
    const failure untrusted = co_await http_failure(c, s.https("/index.html"), {});
    CHECK(untrusted.code == CURLE_PEER_FAILED_VERIFICATION);
    CHECK(untrusted.what.find("https://127.0.0.1") != std::string::npos);
    const coring::http::response unverified = co_await c.get(s.https("/index.html"), {.verify = false});
    CHECK(unverified.status == 200);
    const coring::http::response trusted = co_await c.get(s.https("/index.html"), {.cafile = s.certs.ca.c_str()});
    CHECK(trusted.body == s.index_html);
}

// ================================================================== limits and faults

CORING_TEST_CASE("http - a body beyond max_body_bytes fails; with no limit it all arrives", "[http]") {
    site& s = the_site();
    coring::http::client c;
    const failure announced = co_await http_failure(c, s.http("/big.bin"), {.max_body_bytes = 1000});
    CHECK(announced.code == CURLE_FILESIZE_EXCEEDED);  // nginx sent Content-Length
    CHECK(announced.what.find("max_body_bytes (1000)") != std::string::npos);

    coring::server srv = co_await coring::start_server(chunked_100k, "127.0.0.1", 0);
    const failure streamed = co_await http_failure(c, local_url(srv, "/"), {.max_body_bytes = 10'000});
    CHECK(streamed.code == CURLE_WRITE_ERROR);  // noticed while the chunks arrived
    const coring::http::response fits = co_await c.get(local_url(srv, "/"), {.max_body_bytes = 100'000});
    CHECK(fits.body.size() == 100'000);

    const coring::http::response whole = co_await c.get(s.http("/big.bin"), {.max_body_bytes = 0});
    CHECK(whole.body == s.big);
    srv.close();
    co_await srv.wait_closed();
}

CORING_TEST_CASE("http - a refused connection throws http::error", "[http]") {
    const std::uint16_t port = coring_test::free_port();  // nothing listens there
    coring::http::client c;
    const std::string url = "http://127.0.0.1:" + std::to_string(port) + "/";
    const failure refused = co_await http_failure(c, url, {});
    CHECK(refused.code == CURLE_COULDNT_CONNECT);
    CHECK(refused.os_errno == ECONNREFUSED);
    CHECK(refused.what.find(url) != std::string::npos);
    CHECK(refused.what.find("Connection refused") != std::string::npos);
}

CORING_TEST_CASE("http - a server that closes mid-body: http::error, and the client goes on", "[http]") {
    coring::server srv = co_await coring::start_server(stop_mid_body, "127.0.0.1", 0);
    coring::http::client c;
    const failure cut = co_await http_failure(c, local_url(srv, "/"), {});
    CHECK(cut.code == CURLE_PARTIAL_FILE);
    const coring::http::response after = co_await c.get(the_site().http("/index.html"));
    CHECK(after.status == 200);
    CHECK(c.active() == 0);
    srv.close();
    co_await srv.wait_closed();
}

CORING_TEST_CASE("http - the timeout option throws timeout_error", "[http][timeout]") {
    coring::server srv = co_await coring::start_server(never_answer, "127.0.0.1", 0);
    coring::http::client c;
    const auto start = std::chrono::steady_clock::now();
    bool timed_out = false;
    try {
        (void)co_await c.get(local_url(srv, "/"), {.timeout = 200ms});
    } catch (const coring::timeout_error&) {
        timed_out = true;
    }
    const auto took = std::chrono::steady_clock::now() - start;
    CHECK(timed_out);
    CHECK(took >= 150ms);
    CHECK(took < 5s);
    CHECK(c.active() == 0);
    srv.close();
    co_await srv.wait_closed();
}

CORING_TEST_CASE("http - cancelling the awaiting task removes the transfer and closes its connection", "[http][cancel]") {
    g_silent = {};
    coring::server srv = co_await coring::start_server(never_answer, "127.0.0.1", 0);
    coring::http::client c;
    bool timed_out = false;
    try {
        (void)co_await coring::wait_for(c.get(local_url(srv, "/slow")), 100ms);
    } catch (const coring::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    CHECK(c.active() == 0);
    for (int i = 0; i < 100 && g_silent.closed_by_client == 0; ++i) co_await coring::sleep(10ms);
    CHECK(g_silent.connections == 1);
    CHECK(g_silent.closed_by_client == 1);  // the server saw the connection go
    // The client is still good for other requests.
    const coring::http::response r = co_await c.get(the_site().http("/index.html"));
    CHECK(r.status == 200);
    srv.close();
    co_await srv.wait_closed();
}

CORING_TEST_CASE("http - only http and https URLs are fetched", "[http]") {
    coring::http::client c;
    const failure file = co_await http_failure(c, "file:///etc/passwd", {});
    CHECK(file.code == CURLE_UNSUPPORTED_PROTOCOL);
}

// ================================================================== the default client, descriptors

CORING_TEST_CASE("http - get on the loop's default client keeps its connection between calls", "[http]") {
    site& s = the_site();
    coring::http::client& first = coring::http::default_client();
    CHECK(&first == &coring::http::default_client());
    for (int i = 0; i < 3; ++i) {
        const coring::http::response r = co_await coring::http::get(s.http("/index.html?default-" + std::to_string(i)));
        CHECK(r.body == s.index_html);
    }
    CHECK(s.log_of("default-").connections.size() == 1);
}

TEST_CASE("http - a client and its loop leave no descriptor open", "[http]") {
    site& s = the_site();
    const int before = coring_test::count_open_fds();
    coring::run([](site& st) -> coring::task<> {
        coring::http::client c;
        for (int i = 0; i < 3; ++i) (void)co_await c.get(st.http("/index.html"));
        (void)co_await c.get(st.https("/index.html"), {.cafile = st.certs.ca.c_str()});
        (void)co_await coring::http::get(st.http("/index.html"));  // the default client, closed with the loop
    }(s));
    CHECK(coring_test::count_open_fds() == before);
}

// ================================================================== coring's own http_server

#ifdef CORING_HTTP_SERVER_PROGRAM
namespace {
coring::task<std::uint16_t> listening_port(coring::process& server) {
    for (;;) {
        const std::string line = co_await server.stdout_reader().readline();
        REQUIRE_FALSE(line.empty());
        if (const std::size_t at = line.find("listening on 127.0.0.1:"); at != std::string::npos)
            co_return static_cast<std::uint16_t>(std::stoi(line.substr(at + 23)));
    }
}
}  // namespace

CORING_TEST_CASE("http - examples/http_server: pages, 50 concurrent slow requests, a timeout", "[http][example]") {
    const std::vector<std::string> argv{CORING_HTTP_SERVER_PROGRAM, "--port", "0"};
    coring::subprocess_options pipes;
    pipes.std_out = coring::stdio::pipe;
    coring::process server = co_await coring::create_subprocess_exec(argv, pipes);
    const std::uint16_t port = co_await listening_port(server);
    const std::string base = "http://127.0.0.1:" + std::to_string(port);
    coring::http::client c;

    const coring::http::response home = co_await c.get(base + "/");
    CHECK(home.status == 200);
    CHECK(home.body.find("Hello from coring") != std::string::npos);

    // 50 requests that each take 200 ms on the server, at once: concurrency, not 10 s.
    const auto start = std::chrono::steady_clock::now();
    std::vector<coring::task<coring::http::response>> slow;
    for (int i = 0; i < 50; ++i) slow.push_back(c.get(base + "/sleep/200"));
    const std::vector<coring::http::response> slept = co_await coring::gather(std::move(slow));
    const auto took = std::chrono::steady_clock::now() - start;
    for (const coring::http::response& r : slept) CHECK(r.body == "slept 200 ms\n");
    CHECK(took < 3s);

    bool timed_out = false;
    try {
        (void)co_await c.get(base + "/sleep/5000", {.timeout = 300ms});
    } catch (const coring::timeout_error&) {
        timed_out = true;
    }
    CHECK(timed_out);
    server.terminate();
    (void)co_await server.wait();
}
#endif
