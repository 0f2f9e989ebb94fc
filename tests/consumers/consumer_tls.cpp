// A user's TLS program: <coring/net/tls.hpp> linked through coring::tls (or pkg-config coring-tls).
#include <coring/net/tls.hpp>

#include <cstdio>

int main() {
    const coring::tls_context ctx = coring::tls_context::client();
    std::printf("consumer tls: %s context\n", ctx && !ctx.is_server() ? "client" : "broken");
}
