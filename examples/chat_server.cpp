// chat_server: a line-based chat room on coring::start_server, with a queue per client.
//
// Every line a client sends goes to every other client as "NAME: line". Each client has an
// outbox (a bounded coring::queue) and a task that drains it into the client's stream_writer, so
// one slow client never holds up the others: broadcasting is a try_put per client, and a client
// whose outbox is full (it does not read) is disconnected. "/nick NAME" renames a client;
// "/who" lists who is here.
//
// Joins and departures are announced ("* guest2 joined") in batches: those of the last 100 ms
// go out together, as one line per run of joins or of departures ("* guest2, guest3 joined"),
// before anything else is said. Announcing each of N arrivals to everyone would cost N^2
// messages; a burst of arrivals (1,000 clients connecting at once) then costs one message per
// client per batch. Everybody, the newcomer included, sees the announcement. Broadcast lines are
// shared between the outboxes, not copied, and each delivery task writes what its outbox holds
// with one drain.
//
//   $ ./chat_server --port 7000 &
//   listening on 127.0.0.1:7000
//   $ nc 127.0.0.1 7000            (in two terminals)
//
// It stops cleanly on SIGINT or SIGTERM: the server cancels every handler, and each handler
// stops its outbox task before it returns.
#include <coring/coring.hpp>
#include <coring/net/server.hpp>
#include <coring/net/stream.hpp>

#include <chrono>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

using namespace std::chrono_literals;

namespace {

using line_ptr = std::shared_ptr<const std::string>;

struct client {
    std::string name;
    coring::queue<line_ptr> outbox{256};  // lines waiting to be sent to this client
    coring::stream_writer* writer = nullptr;
    bool dropped = false;
};

class chat_room {
public:
    void join(client& c) {
        m_clients.push_back(&c);
        announce(c.name, true);
    }
    void leave(client& c) {
        m_clients.remove(&c);
        announce(c.name, false);
    }
    // To everyone but `from`, after the announcements still pending.
    void broadcast(const client& from, std::string line) {
        flush_announcements();
        send(&from, std::make_shared<const std::string>(std::move(line)));
    }
    [[nodiscard]] std::string who() const {
        std::string names;
        for (const client* c : m_clients) names += (names.empty() ? "" : ", ") + c->name;
        return names;
    }
    [[nodiscard]] std::size_t size() const { return m_clients.size(); }

private:
    struct announcement {
        std::string name;
        bool joined;
    };

    // A client that cannot keep up is disconnected.
    void send(const client* except, const line_ptr& line) {
        for (client* c : m_clients) {
            if (c == except || c->dropped) continue;
            if (!c->outbox.try_put(line)) {
                c->dropped = true;
                c->writer->close();  // its reader sees the end of the stream; its handler cleans up
            }
        }
    }

    void announce(std::string name, bool joined) {
        m_pending.push_back({std::move(name), joined});
        if (!m_flush_scheduled) {
            m_flush_scheduled = true;
            m_flush = coring::get_running_loop().call_later(100ms, [this] {
                m_flush_scheduled = false;
                flush_announcements();
            });
        }
    }

    // One line per run of joins or departures, in order: "* a, b and 3 others joined".
    void flush_announcements() {
        if (m_pending.empty()) return;
        if (m_flush_scheduled) {
            m_flush.cancel();
            m_flush_scheduled = false;
        }
        std::vector<announcement> pending = std::move(m_pending);
        m_pending.clear();
        constexpr std::size_t named = 10;  // names listed per line; the rest are counted
        for (std::size_t at = 0; at < pending.size();) {
            std::size_t end = at;
            while (end < pending.size() && pending[end].joined == pending[at].joined) ++end;
            std::string text = "*";
            for (std::size_t i = at; i < end && i < at + named; ++i) text += (i == at ? " " : ", ") + pending[i].name;
            if (end - at > named) text += " and " + std::to_string(end - at - named) + " others";
            text += pending[at].joined ? " joined\n" : " left\n";
            send(nullptr, std::make_shared<const std::string>(std::move(text)));
            at = end;
        }
    }

    std::list<client*> m_clients;
    std::vector<announcement> m_pending;
    coring::timer_handle m_flush;
    bool m_flush_scheduled = false;
};

chat_room g_room;
unsigned g_next_guest = 1;

// Sends the client's outbox until it is shut down: what has queued up meanwhile goes out with
// one drain.
coring::task<> deliver(client& c, coring::stream_writer& writer) {
    try {
        for (;;) {
            line_ptr line = co_await c.outbox.get();
            writer.write(*line);
            while (std::optional<line_ptr> more = c.outbox.try_get()) writer.write(**more);
            co_await writer.drain();
        }
    } catch (const coring::queue_shut_down&) {
        // The client left.
    } catch (const std::exception&) {
        // The connection failed (the reading side finds out too), or it was closed because the
        // client could not keep up (write() after close() throws).
    }
}

coring::task<> handle_client(coring::stream_reader reader, coring::stream_writer writer) {
    client me;
    me.name = "guest" + std::to_string(g_next_guest++);
    me.writer = &writer;
    writer.write("welcome, " + me.name + "! " + std::to_string(g_room.size()) + " other(s) here. /nick NAME to rename, /who to list.\n");
    g_room.join(me);
    auto delivering = coring::create_task(deliver(me, writer), "deliver to " + me.name);
    std::exception_ptr cancelled;
    try {
        for (;;) {
            std::string line = co_await reader.readline();
            if (line.empty()) break;  // the client left
            if (line.back() != '\n') line += '\n';
            if (line.starts_with("/nick ")) {
                std::string name = line.substr(6, line.size() - 7);
                if (name.empty()) continue;
                g_room.broadcast(me, "* " + me.name + " is now " + name + "\n");
                me.name = std::move(name);
            } else if (line == "/who\n") {
                (void)me.outbox.try_put(std::make_shared<const std::string>("* here: " + g_room.who() + "\n"));
            } else {
                g_room.broadcast(me, me.name + ": " + line);
            }
        }
    } catch (const coring::cancelled_error&) {
        cancelled = std::current_exception();  // the server is closing: clean up, then rethrow
    } catch (const std::exception&) {
        // A reset connection, or a line longer than the stream's limit.
    }
    g_room.leave(me);
    // The outbox task refers to `me` and `writer`: stop it (it may wait in get() or in drain())
    // and wait until it has finished before they go. wait() never throws the task's outcome.
    me.outbox.shutdown(/*immediate=*/true);
    delivering.cancel();
    std::vector<coring::task_handle<>> outbox_task{delivering};
    (void)co_await coring::wait(std::move(outbox_task));
    if (cancelled) std::rethrow_exception(cancelled);
}

struct settings {
    std::string host = "127.0.0.1";
    std::uint16_t port = 7000;
};

coring::task<> amain(settings s) {
    // At most 10,000 clients at once; no idle timeout: in a quiet room a listener is silent.
    coring::server_options options;
    options.max_connections = 10'000;
    coring::server srv = co_await coring::start_server(handle_client, s.host, s.port, options);
    std::printf("listening on %s\n", srv.addresses().front().to_string().c_str());
    std::fflush(stdout);
    auto stop = [&srv] { srv.close(); };
    coring::get_running_loop().add_signal_handler(SIGINT, stop);
    coring::get_running_loop().add_signal_handler(SIGTERM, stop);
    co_await srv.serve_forever();
}

}  // namespace

int main(int argc, char** argv) {
    settings s;
    for (int i = 1; i < argc; ++i) {
        const std::string arg = argv[i];
        if (arg == "--host" && i + 1 < argc) {
            s.host = argv[++i];
        } else if (arg == "--port" && i + 1 < argc) {
            s.port = static_cast<std::uint16_t>(std::atoi(argv[++i]));
        } else {
            std::fprintf(stderr, "usage: chat_server [--host H] [--port P]\n");
            return 2;
        }
    }
    try {
        coring::run(amain(s));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "chat_server: %s\n", e.what());
        return 1;
    }
    return 0;
}
