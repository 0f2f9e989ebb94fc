#pragma once
// coring::postgres::connection, transaction and connect(): one PostgreSQL session driven by the
// event loop through libpq's non-blocking API (part of <coring/bridge/postgres.hpp>, which
// documents the bridge as a whole: read it first).
//
// How a connection runs on the loop:
//
//   connect()          PQconnectStartParams, then PQconnectPoll after each wait_readable /
//                      wait_writable of the connection's socket (which may change between
//                      attempts: several hosts, SSL refused); host names resolved by
//                      coring::resolve on the loop's thread pool first.
//   while open         the socket has a reader (event_loop::add_reader, level-triggered): it
//                      calls PQconsumeInput, moves PQnotifies into the notification queue, and
//                      sets `progress`, which the task running a command waits on. So input is
//                      read at one place only, notifications arrive while no command runs, and
//                      a server that goes away is noticed at once.
//   a command          under the connection's mutex: PQsendQueryParams (PQsendQuery for a
//                      script), PQflush until sent (a writer while the socket is full), then
//                      PQgetResult whenever PQisBusy says it will not block, until it returns
//                      null.
//   cancelled          the task that ran the command sends a cancel request (PQcancel, which
//                      blocks: on the loop's thread pool) and reads the command's remaining
//                      results (the server's 57014 query_canceled) before it rethrows
//                      cancelled_error: the connection is idle again. If that clean-up is
//                      itself interrupted, the connection remembers it (in_flight) and the next
//                      command finishes it first.
//
//   session (heap: callbacks and commands hold its address; connection is a movable handle)
//     ├── PGconn*                       libpq's connection
//     ├── reader / writer on the socket  → progress (event), notifications (queue)
//     ├── lock (mutex)                  one command at a time, FIFO among tasks
//     └── in_flight, cancel_sent, needs_rollback, broken: what the next command must settle
//
// Thread-safety: loop-bound (see postgres.hpp). The only work done on another thread is
// PQcancel, which reads its own PGcancel copy and not the connection.

#include <coring/bridge/postgres/error.hpp>
#include <coring/bridge/postgres/params.hpp>
#include <coring/bridge/postgres/result.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/io/readiness.hpp>
#include <coring/net/address.hpp>
#include <coring/net/resolve.hpp>
#include <coring/sync/event.hpp>
#include <coring/sync/mutex.hpp>
#include <coring/sync/queue.hpp>
#include <coring/task.hpp>
#include <coring/thread/to_thread.hpp>

#include <dlfcn.h>
#include <libpq-fe.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace coring::postgres {

/// A NOTIFY received on a channel this connection LISTENs to.
struct notification {
    std::string channel;
    std::string payload;
    int backend_pid = 0;  // the server process that sent it
};

/// A NOTICE or WARNING the server sent (RAISE NOTICE, "table does not exist, skipping").
struct notice {
    std::string severity;  // NOTICE, WARNING, INFO, LOG, DEBUG (not localized)
    std::string sqlstate;
    std::string message;
};

enum class isolation { server_default, read_committed, repeatable_read, serializable };

/// How connection::transaction begins (BEGIN ISOLATION LEVEL ... READ ONLY DEFERRABLE).
struct transaction_options {
    isolation level = isolation::server_default;
    bool read_only = false;
    bool deferrable = false;  // only with serializable and read_only
};

class connection;
class transaction;

namespace detail {

struct pgconn_deleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using pgconn_ptr = std::unique_ptr<PGconn, pgconn_deleter>;

struct pgcancel_deleter {
    void operator()(PGcancel* c) const noexcept { PQfreeCancel(c); }
};

template <class T>
struct task_value;
template <class T>
struct task_value<task<T>> {
    using type = T;
};
template <class F>
using body_value_t = typename task_value<std::invoke_result_t<F&, postgres::transaction&>>::type;

inline void discard_notice(void*, const PGresult*) noexcept {}

// The state of an open connection. Loop thread only. Invariants: while !broken, `fd` is the
// connection's socket and has a reader registered (writer only while a send waits for room);
// in_flight is true from a successful send until PQgetResult has returned null; nobody but the
// holder of `lock` sends or reads results.
class session {
public:
    session(event_loop& loop, pgconn_ptr conn) : m_loop(&loop), m_conn(std::move(conn)), m_fd(PQsocket(m_conn.get())) {
        PQsetNoticeReceiver(m_conn.get(), &on_notice, this);
        m_loop->add_reader(m_fd, [this] { on_readable(); });
        m_reading = true;
    }
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    ~session() { stop_watching(); }

    [[nodiscard]] PGconn* conn() const noexcept { return m_conn.get(); }
    [[nodiscard]] bool broken() const noexcept { return m_broken; }
    static error closed_error() { return error("08003", "the connection is closed (or was moved from)", "FATAL"); }
    [[nodiscard]] error broken_error() const { return error("08006", "the connection is broken: " + m_broken_reason, "FATAL"); }
    void set_notice_handler(std::function<void(const notice&)> handler) { m_notice_handler = std::move(handler); }

    // A task that runs connection::transaction must use the transaction object: the connection's
    // own methods would wait for the lock it holds.
    void refuse_inside_own_transaction(const char* what) const {
        if (m_transaction_task != nullptr && m_transaction_task == ::coring::detail::running_scheduler().current_task_state())
            throw invalid_state_error(std::string("coring::postgres: connection::") + what +
                                      " inside the body of connection::transaction would wait for itself: use the transaction object");
    }

    // ---------------------------------------------------------------- commands

    // connection::query / execute: a command under the lock.
    static task<result> locked_run(session* s, std::string sql, params p, bool simple) {
        if (s == nullptr) throw closed_error();
        auto guard = co_await s->m_lock.scoped_lock();
        co_return co_await s->run(std::move(sql), std::move(p), simple);
    }

    static task<std::int64_t> locked_execute(session* s, std::string sql, params p, bool simple) {
        if (s == nullptr) throw closed_error();
        auto guard = co_await s->m_lock.scoped_lock();
        const result r = co_await s->run(std::move(sql), std::move(p), simple);
        co_return r.affected_rows();
    }

    // One command, the lock held: settle what an earlier command left, send, read the results.
    task<result> run(std::string sql, params p, bool simple) {
        if (m_broken || m_in_flight || m_needs_rollback) co_await settle();
        co_return co_await command(std::move(sql), std::move(p), simple);
    }

    template <class R, class F>
    static task<R> run_transaction(session* s, F body, transaction_options options);

    // The connection's checks before it makes a command's task: an empty connection's
    // error comes from the task (as every other error), a misuse at once.
    static session* enter(session* s, const char* what) {
        if (s != nullptr) s->refuse_inside_own_transaction(what);
        return s;
    }

    // The next notification, waiting for one (connection::notification).
    static task<notification> next_notification(session* s) {
        if (s == nullptr) throw closed_error();
        if (s->m_broken && s->m_notifications.empty()) throw s->broken_error();
        bool shut = false;
        try {
            co_return co_await s->m_notifications.get();
        } catch (const queue_shut_down&) {
            shut = true;
        }
        (void)shut;
        throw s->broken_error();
    }
    [[nodiscard]] std::optional<notification> try_notification() { return m_notifications.try_get(); }
    [[nodiscard]] std::size_t pending_notifications() const noexcept { return m_notifications.size(); }

private:
    friend class postgres::transaction;

    // Brings the connection back to idle: finishes a command whose task was cancelled (cancel
    // request, then its results), and rolls back a transaction whose clean-up was interrupted.
    task<> settle() {
        if (m_broken) throw broken_error();
        co_await finish_in_flight();
        if (m_broken) throw broken_error();
        if (m_needs_rollback) {
            (void)co_await command("ROLLBACK", {}, true);
            m_needs_rollback = false;
        }
    }

    task<result> command(std::string sql, params p, bool simple) {
        send(sql, p, simple);
        std::exception_ptr stop;
        result out;
        try {
            if (!flushed()) co_await flush_rest();
            out = co_await collect();
        } catch (const cancelled_error&) {
            stop = std::current_exception();
        }
        if (stop) {
            // Cancelled mid-command: the server stops it, and the connection is idle again
            // before the task ends. Another cancellation here leaves the rest to settle().
            try {
                co_await finish_in_flight();
            } catch (...) {
            }
            std::rethrow_exception(stop);
        }
        co_return out;
    }

    void send(const std::string& sql, const params& p, bool simple) {
        if (sql.find('\0') != std::string::npos) throw std::invalid_argument("coring::postgres: the SQL text holds a '\\0' byte");
        PGconn* c = m_conn.get();
        int sent = 0;
        if (simple) {
            sent = PQsendQuery(c, sql.c_str());
        } else {
            const params::arrays a = p.view();
            sent = PQsendQueryParams(c, sql.c_str(), p.size(), a.types.data(), a.values.data(), a.lengths.data(), a.formats.data(), 0);
        }
        if (sent == 0) {
            check_socket();
            throw error::from_connection(m_broken ? "08006" : "", c, "sending the command");
        }
        m_in_flight = true;
        m_cancel_sent = false;
    }

    // PQflush once: true when everything is sent.
    bool flushed() {
        const int r = PQflush(m_conn.get());
        if (r < 0) {
            check_socket();
            throw error::from_connection("08006", m_conn.get(), "sending to the server");
        }
        return r == 0;
    }

    // The socket buffer was full: waits for room (and keeps reading meanwhile, as libpq asks,
    // through the reader) until libpq's output buffer is empty.
    task<> flush_rest() {
        while (!flushed()) {
            if (m_broken) throw broken_error();
            if (!m_writing) {
                m_loop->add_writer(m_fd, [this] { on_writable(); });
                m_writing = true;
            }
            m_progress.clear();
            co_await m_progress.wait();
        }
    }

    // Until PQgetResult will not block: the reader consumes input and sets progress.
    [[nodiscard]] bool busy() const noexcept { return PQisBusy(m_conn.get()) != 0 && !m_broken; }

    // The command's results until PQgetResult returns null: the last one, or the first error.
    task<result> collect() {
        PGconn* c = m_conn.get();
        result last;
        std::optional<error> failure;
        for (;;) {
            while (busy()) {
                m_progress.clear();
                co_await m_progress.wait();
            }
            pgresult_ptr r(PQgetResult(c));
            if (!r) break;
            switch (PQresultStatus(r.get())) {
                case PGRES_FATAL_ERROR:
                    if (!failure) failure = error::from_result(r.get(), c);
                    break;
                case PGRES_COPY_IN:
                case PGRES_COPY_OUT:
                case PGRES_COPY_BOTH:
                    co_await refuse_copy(PQresultStatus(r.get()));
                    if (!failure) failure = error("0A000", "COPY FROM STDIN / TO STDOUT is not supported by coring::postgres");
                    break;
                default:
                    last = result(std::move(r));
                    break;
            }
        }
        m_in_flight = false;
        check_socket();
        if (failure) throw *failure;
        co_return last;
    }

    // COPY's data phase is not supported: end it (with an error for COPY IN, by reading the data
    // away for COPY OUT) so that the command finishes.
    task<> refuse_copy(ExecStatusType status) {
        PGconn* c = m_conn.get();
        if (status == PGRES_COPY_IN || status == PGRES_COPY_BOTH) {
            if (PQputCopyEnd(c, "COPY FROM STDIN is not supported by coring::postgres") < 0) co_return;
            if (!flushed()) co_await flush_rest();
            if (status == PGRES_COPY_IN) co_return;
        }
        for (;;) {
            char* data = nullptr;
            const int n = PQgetCopyData(c, &data, 1);
            if (data != nullptr) PQfreemem(data);
            if (n > 0) continue;
            if (n < 0 || m_broken) co_return;
            m_progress.clear();
            co_await m_progress.wait();
        }
    }

    // Finishes a command whose task stopped reading: a cancel request while the server still
    // works on it, then its results, thrown away.
    task<> finish_in_flight() {
        if (!m_in_flight) co_return;
        if (!m_broken && !m_cancel_sent && PQisBusy(m_conn.get()) != 0) {
            std::unique_ptr<PGcancel, pgcancel_deleter> cancel(PQgetCancel(m_conn.get()));
            if (cancel) (void)co_await to_thread(&cancel_blocking, cancel.get());
            m_cancel_sent = true;
        }
        if (!m_broken && !flushed()) co_await flush_rest();
        try {
            (void)co_await collect();
        } catch (const error&) {
            // 57014 query_canceled, most likely: what the cancel asked for.
        }
        m_in_flight = false;
        m_cancel_sent = false;
    }

    // On a worker thread: PQcancel opens a connection to the server and waits for it to close.
    static bool cancel_blocking(PGcancel* cancel) {
        char message[256] = {};
        return PQcancel(cancel, message, sizeof message) != 0;
    }

    // ---------------------------------------------------------------- the loop's callbacks

    void on_readable() noexcept {
        do {
            if (PQconsumeInput(m_conn.get()) == 0) {
                take_notifications();
                fail(PQerrorMessage(m_conn.get()));
                return;
            }
        } while (ssl_pending(m_conn.get()));
        take_notifications();
        m_progress.set();
    }

    // Over SSL, PQconsumeInput may take part of a record: OpenSSL keeps the rest, decrypted,
    // and the socket is no longer readable, so the reader would not run again (libpq's own
    // waits check this, with pgtls_read_pending). SSL_pending tells; it is looked up at run
    // time since libpq loads libssl itself and this target does not link it.
    static bool ssl_pending(PGconn* c) noexcept {
        if (PQsslInUse(c) == 0) return false;
        using pending_fn = int (*)(const void*);
        static const pending_fn pending = reinterpret_cast<pending_fn>(::dlsym(RTLD_DEFAULT, "SSL_pending"));
        void* ssl = PQsslStruct(c, "OpenSSL");
        return pending != nullptr && ssl != nullptr && pending(ssl) > 0;
    }

    void on_writable() noexcept {
        stop_writing();
        m_progress.set();
    }

    void take_notifications() noexcept {
        while (PGnotify* n = PQnotifies(m_conn.get())) {
            try {
                if (!m_notifications_closed) m_notifications.put_nowait(notification{n->relname, n->extra != nullptr ? n->extra : "", n->be_pid});
            } catch (...) {
                // out of memory: the notification is lost
            }
            PQfreemem(n);
        }
    }

    static void on_notice(void* self, const PGresult* r) noexcept {
        auto* s = static_cast<session*>(self);
        if (!s->m_notice_handler) return;
        try {
            const auto field = [r](int code) {
                const char* text = PQresultErrorField(r, code);
                return std::string(text != nullptr ? text : "");
            };
            notice n{field(PG_DIAG_SEVERITY_NONLOCALIZED), field(PG_DIAG_SQLSTATE), field(PG_DIAG_MESSAGE_PRIMARY)};
            s->m_notice_handler(n);
        } catch (...) {
            // a handler must not throw into libpq
        }
    }

    // libpq closes the socket when the connection fails: stop watching it at once, before the
    // number can be reused.
    void check_socket() noexcept {
        if (!m_broken && (PQstatus(m_conn.get()) == CONNECTION_BAD || PQsocket(m_conn.get()) < 0)) fail(PQerrorMessage(m_conn.get()));
    }

    void fail(const char* reason) noexcept {
        if (m_broken) return;
        m_broken = true;
        try {
            m_broken_reason = reason != nullptr && *reason != '\0' ? reason : "connection lost";
            while (!m_broken_reason.empty() && (m_broken_reason.back() == '\n' || m_broken_reason.back() == ' ')) m_broken_reason.pop_back();
        } catch (...) {
        }
        stop_watching();
        m_notifications_closed = true;
        m_notifications.shutdown();  // waiters get what is queued, then broken_error
        m_progress.set();
    }

    void stop_writing() noexcept {
        if (!m_writing) return;
        m_writing = false;
        try {
            if (!m_loop->is_closed()) m_loop->remove_writer(m_fd);
        } catch (...) {
        }
    }

    void stop_watching() noexcept {
        stop_writing();
        if (!m_reading) return;
        m_reading = false;
        try {
            if (!m_loop->is_closed()) m_loop->remove_reader(m_fd);
        } catch (...) {
        }
    }

    event_loop* m_loop;
    pgconn_ptr m_conn;
    int m_fd;
    bool m_reading = false;
    bool m_writing = false;
    mutex m_lock;
    event m_progress;
    queue<notification> m_notifications{0};
    bool m_notifications_closed = false;
    std::function<void(const notice&)> m_notice_handler;
    bool m_in_flight = false;
    bool m_cancel_sent = false;
    bool m_needs_rollback = false;
    bool m_broken = false;
    std::string m_broken_reason;
    const void* m_transaction_task = nullptr;
};

// ---------------------------------------------------------------- conninfo

// The options of a connection string, as keyword/value pairs for PQconnectStartParams.
class conninfo_options {
public:
    explicit conninfo_options(const std::string& conninfo) {
        char* message = nullptr;
        PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &message);
        if (parsed == nullptr) {
            std::string text = message != nullptr ? message : "out of memory";
            if (message != nullptr) PQfreemem(message);
            while (!text.empty() && text.back() == '\n') text.pop_back();
            throw error("08001", "invalid connection string: " + text, "FATAL");
        }
        for (const PQconninfoOption* o = parsed; o->keyword != nullptr; ++o)
            if (o->val != nullptr) set(o->keyword, o->val);
        PQconninfoFree(parsed);
    }

    [[nodiscard]] std::string get(const std::string& key, const char* environment) const {
        for (std::size_t i = 0; i < m_keys.size(); ++i)
            if (m_keys[i] == key) return m_values[i];
        const char* fallback = environment != nullptr ? std::getenv(environment) : nullptr;
        return fallback != nullptr ? fallback : "";
    }
    void set(const std::string& key, std::string value) {
        for (std::size_t i = 0; i < m_keys.size(); ++i)
            if (m_keys[i] == key) {
                m_values[i] = std::move(value);
                return;
            }
        m_keys.push_back(key);
        m_values.push_back(std::move(value));
    }

    // Null-terminated arrays pointing into this object.
    struct arrays {
        std::vector<const char*> keys;
        std::vector<const char*> values;
    };
    [[nodiscard]] arrays view() const {
        arrays a;
        for (std::size_t i = 0; i < m_keys.size(); ++i) {
            a.keys.push_back(m_keys[i].c_str());
            a.values.push_back(m_values[i].c_str());
        }
        a.keys.push_back(nullptr);
        a.values.push_back(nullptr);
        return a;
    }

private:
    std::vector<std::string> m_keys;
    std::vector<std::string> m_values;
};

inline std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = text.find(',', start);
        items.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) return items;
        start = comma + 1;
    }
}

inline std::string join_list(const std::vector<std::string>& items) {
    std::string text;
    for (std::size_t i = 0; i < items.size(); ++i) text += (i == 0 ? "" : ",") + items[i];
    return text;
}

// libpq resolves host names with a blocking getaddrinfo inside PQconnectPoll. Resolve them
// first with coring::resolve (on the loop's thread pool) and hand libpq the addresses as
// hostaddr, one host entry per address so that libpq still tries each in turn; host stays the
// name (for SSL's host name check and for error messages).
inline task<> resolve_hosts(conninfo_options& options) {
    const std::string host_list = options.get("host", "PGHOST");
    if (host_list.empty() || !options.get("hostaddr", "PGHOSTADDR").empty()) co_return;
    const std::vector<std::string> hosts = split_list(host_list);
    const std::vector<std::string> ports = split_list(options.get("port", "PGPORT"));
    const bool port_per_host = ports.size() == hosts.size() && hosts.size() > 1;
    const auto is_name = [](const std::string& h) { return !h.empty() && h[0] != '/' && h[0] != '@' && !address::try_parse(h, 0); };
    bool any_name = false;
    for (const std::string& h : hosts) any_name = any_name || is_name(h);
    if (!any_name) co_return;

    std::vector<std::string> new_hosts, new_addresses, new_ports;
    std::string failure;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        const std::string& h = hosts[i];
        const std::string port = port_per_host ? ports[i] : std::string();
        if (!is_name(h)) {
            new_hosts.push_back(h);
            new_addresses.push_back(h.empty() || h[0] == '/' || h[0] == '@' ? std::string() : h);
            new_ports.push_back(port);
            continue;
        }
        std::vector<address> found;
        try {
            found = co_await resolve(h, std::uint16_t{0});
        } catch (const std::exception& e) {
            failure = "could not translate host name \"" + h + "\" to address: " + e.what();
        }
        std::vector<std::string> seen;
        for (const address& a : found) {
            std::string ip = a.host();
            bool repeated = false;
            for (const std::string& s : seen) repeated = repeated || s == ip;
            if (repeated) continue;
            seen.push_back(ip);
            new_hosts.push_back(h);
            new_addresses.push_back(std::move(ip));
            new_ports.push_back(port);
        }
    }
    if (new_hosts.empty()) throw error("08001", failure, "FATAL");
    options.set("host", join_list(new_hosts));
    options.set("hostaddr", join_list(new_addresses));
    if (port_per_host) options.set("port", join_list(new_ports));
}

inline std::string quote_identifier(std::string_view name) {
    if (name.find('\0') != std::string_view::npos) throw std::invalid_argument("coring::postgres: an identifier holds a '\\0' byte");
    std::string quoted = "\"";
    for (char ch : name) {
        if (ch == '"') quoted += '"';
        quoted += ch;
    }
    return quoted + "\"";
}

}  // namespace detail

/// The body's handle inside connection::transaction: its commands run in the transaction.
/// Commands from several tasks of the body are serialized (they share one connection).
class transaction {
public:
    transaction(const transaction&) = delete;
    transaction& operator=(const transaction&) = delete;

    /// As connection::query, inside the transaction.
    template <class... Args>
    [[nodiscard]] task<result> query(std::string_view sql, const Args&... args) {
        return run(this, std::string(sql), detail::params::of(args...), false);
    }
    /// As connection::execute, inside the transaction: affected rows.
    template <class... Args>
    [[nodiscard]] task<std::int64_t> execute(std::string_view sql, const Args&... args) {
        return run_execute(this, std::string(sql), detail::params::of(args...), sizeof...(Args) == 0);
    }
    /// False once the transaction has committed or rolled back.
    [[nodiscard]] bool active() const noexcept { return m_active; }

private:
    friend class detail::session;
    explicit transaction(detail::session* s) noexcept : m_session(s) {}

    static task<result> run(transaction* tx, std::string sql, detail::params p, bool simple) {
        auto guard = co_await tx->m_lock.scoped_lock();
        if (!tx->m_active) throw invalid_state_error("coring::postgres: the transaction has ended");
        co_return co_await tx->m_session->run(std::move(sql), std::move(p), simple);
    }
    static task<std::int64_t> run_execute(transaction* tx, std::string sql, detail::params p, bool simple) {
        const result r = co_await run(tx, std::move(sql), std::move(p), simple);
        co_return r.affected_rows();
    }

    detail::session* m_session;
    mutex m_lock;
    bool m_active = true;
};

template <class R, class F>
task<R> detail::session::run_transaction(session* s, F body, transaction_options options) {
    if (s == nullptr) throw closed_error();
    auto guard = co_await s->m_lock.scoped_lock();
    std::string begin = "BEGIN";
    if (options.level == isolation::read_committed) begin += " ISOLATION LEVEL READ COMMITTED";
    if (options.level == isolation::repeatable_read) begin += " ISOLATION LEVEL REPEATABLE READ";
    if (options.level == isolation::serializable) begin += " ISOLATION LEVEL SERIALIZABLE";
    if (options.read_only) begin += " READ ONLY";
    if (options.deferrable) begin += " DEFERRABLE";
    (void)co_await s->run(std::move(begin), {}, true);

    postgres::transaction tx(s);
    s->m_transaction_task = ::coring::detail::running_scheduler().current_task_state();
    std::exception_ptr failure;
    std::optional<std::conditional_t<std::is_void_v<R>, bool, R>> value;
    try {
        if constexpr (std::is_void_v<R>) {
            co_await body(tx);
            value.emplace(true);
        } else {
            value.emplace(co_await body(tx));
        }
    } catch (...) {
        failure = std::current_exception();
    }
    s->m_transaction_task = nullptr;
    // Wait for commands that tasks of the body may still run, then close the transaction.
    auto body_done = co_await tx.m_lock.scoped_lock();
    tx.m_active = false;

    // A body that swallowed a failed command cannot commit: the server would roll back.
    const bool aborted = !failure && !s->m_broken && !s->m_in_flight && PQtransactionStatus(s->conn()) == PQTRANS_INERROR;
    if (failure || aborted) {
        bool rolled_back = false;
        try {
            (void)co_await s->run("ROLLBACK", {}, true);
            rolled_back = true;
        } catch (...) {
        }
        if (!rolled_back && !s->m_broken) s->m_needs_rollback = true;
        if (failure) std::rethrow_exception(failure);
        throw error("25P02", "a command in the transaction failed and the body went on: the transaction was rolled back");
    }
    bool committed = false;
    try {
        (void)co_await s->run("COMMIT", {}, true);
        committed = true;
    } catch (...) {
        failure = std::current_exception();
    }
    if (!committed) {
        if (!s->m_broken && (s->m_in_flight || PQtransactionStatus(s->conn()) != PQTRANS_IDLE)) s->m_needs_rollback = true;
        std::rethrow_exception(failure);
    }
    if constexpr (!std::is_void_v<R>) co_return std::move(*value);
}

/// One PostgreSQL session on the running loop (see <coring/bridge/postgres.hpp>). Move-only; an
/// empty (default-constructed, moved-from or closed) connection throws error 08003 from its
/// commands.
class connection {
public:
    connection() noexcept = default;
    explicit connection(std::unique_ptr<detail::session> s) noexcept : m_session(std::move(s)) {}

    /// Runs one SQL statement with `args` as $1, $2, ... (sent apart from the SQL: see
    /// params.hpp) and returns its rows. A server error throws postgres::error.
    template <class... Args>
    [[nodiscard]] task<result> query(std::string_view sql, const Args&... args) {
        detail::session* s = detail::session::enter(m_session.get(), "query");
        return detail::session::locked_run(s, std::string(sql), detail::params::of(args...), false);
    }

    /// Runs a command and returns the rows it affected (INSERT, UPDATE, DELETE; 0 for DDL).
    /// Without parameters the text may hold several statements separated by ';' (a script, run
    /// in the simple query protocol as one implicit transaction; the count is the last
    /// statement's); with parameters it is one statement.
    template <class... Args>
    [[nodiscard]] task<std::int64_t> execute(std::string_view sql, const Args&... args) {
        detail::session* s = detail::session::enter(m_session.get(), "execute");
        return detail::session::locked_execute(s, std::string(sql), detail::params::of(args...), sizeof...(Args) == 0);
    }

    /// Runs `body(tx)` (a callable taking postgres::transaction& and returning task<T>) between
    /// BEGIN and COMMIT, holding the connection: other tasks' commands wait. If the body throws
    /// (cancelled_error included) the transaction is rolled back and the exception rethrown; if
    /// COMMIT fails (40001 serialization_failure, say) that error is thrown. Yields the body's
    /// value. Inside, use tx.query / tx.execute: the connection's own methods throw
    /// invalid_state_error there (they would wait for themselves).
    ///   auto move = [&](coring::postgres::transaction& tx) -> coring::task<> {
    ///       co_await tx.execute("UPDATE acct SET bal = bal - $1 WHERE id = $2", 10, from);
    ///       co_await tx.execute("UPDATE acct SET bal = bal + $1 WHERE id = $2", 10, to);
    ///   };
    ///   co_await db.transaction(move);                    // name the lambda first (g++ 12)
    template <class F>
    [[nodiscard]] task<detail::body_value_t<F>> transaction(F body, transaction_options options = {}) {
        detail::session* s = detail::session::enter(m_session.get(), "transaction");
        return detail::session::run_transaction<detail::body_value_t<F>>(s, std::move(body), options);
    }

    /// LISTEN channel: from now on its notifications queue up for notification(). The name is
    /// taken exactly (quoted), as pg_notify('channel', ...) names it.
    [[nodiscard]] task<> listen(std::string_view channel) { return simple_command("LISTEN " + detail::quote_identifier(channel)); }
    /// UNLISTEN channel. Notifications already queued stay.
    [[nodiscard]] task<> unlisten(std::string_view channel) { return simple_command("UNLISTEN " + detail::quote_identifier(channel)); }
    /// pg_notify(channel, payload): listeners get it when the sending transaction commits.
    [[nodiscard]] task<> notify(std::string_view channel, std::string_view payload = {}) {
        return discard(query("SELECT pg_notify($1, $2)", channel, payload));
    }

    /// The next notification on a channel this connection listens to, waiting for one. They
    /// arrive while other commands run or none does, and queue up (without bound) until taken.
    /// A lost connection throws error 08006 once the queued ones are taken.
    [[nodiscard]] task<postgres::notification> notification() { return detail::session::next_notification(m_session.get()); }
    /// A queued notification, without waiting.
    [[nodiscard]] std::optional<postgres::notification> try_notification() { return checked().try_notification(); }

    /// Receives the server's notices and warnings (by default they are dropped). Runs on the
    /// loop thread, inside libpq: it must not throw, nor use this connection.
    void on_notice(std::function<void(const notice&)> handler) { checked().set_notice_handler(std::move(handler)); }

    /// True while the connection can run commands (not empty, not broken).
    [[nodiscard]] bool is_open() const noexcept { return m_session && !m_session->broken(); }
    explicit operator bool() const noexcept { return is_open(); }
    /// PQserverVersion: 150004 for 15.4.
    [[nodiscard]] int server_version() const { return PQserverVersion(checked_conn()); }
    /// The server process serving this connection (pg_backend_pid()).
    [[nodiscard]] int backend_pid() const { return PQbackendPID(checked_conn()); }
    /// A run-time parameter the server reports (server_version, TimeZone, client_encoding, ...).
    [[nodiscard]] std::optional<std::string_view> parameter(const char* name) const {
        const char* value = PQparameterStatus(checked_conn(), name);
        if (value == nullptr) return std::nullopt;
        return std::string_view(value);
    }
    /// libpq's connection, for what this class does not offer. Do not read from it, send on it
    /// or change its blocking mode: the loop drives it.
    [[nodiscard]] PGconn* native_handle() const { return checked_conn(); }

    /// Closes the connection (PQfinish). No task may be awaiting one of its commands.
    void close() noexcept { m_session.reset(); }

private:
    [[nodiscard]] detail::session& checked() const {
        if (!m_session) throw detail::session::closed_error();
        return *m_session;
    }
    [[nodiscard]] PGconn* checked_conn() const { return checked().conn(); }

    [[nodiscard]] task<> simple_command(std::string sql) {
        detail::session* s = detail::session::enter(m_session.get(), "listen");
        return discard_count(detail::session::locked_execute(s, std::move(sql), {}, true));
    }
    static task<> discard(task<result> t) { (void)co_await std::move(t); }
    static task<> discard_count(task<std::int64_t> t) { (void)co_await std::move(t); }

    std::unique_ptr<detail::session> m_session;
};

/// Opens a connection: `conninfo` is a libpq connection string ("host=127.0.0.1 port=5432
/// dbname=app user=app") or URI ("postgresql://app@127.0.0.1/app"); what it leaves out comes
/// from the PG* environment variables and libpq's defaults. Throws error 08001 with libpq's
/// message when the connection cannot be made (refused, authentication failed, no such host).
/// libpq's connect_timeout is not applied by its non-blocking API: use coring::wait_for.
[[nodiscard]] inline task<connection> connect(std::string conninfo) {
    event_loop& loop = get_running_loop();
    detail::conninfo_options options(conninfo);
    co_await detail::resolve_hosts(options);
    const detail::conninfo_options::arrays a = options.view();
    detail::pgconn_ptr conn(PQconnectStartParams(a.keys.data(), a.values.data(), 0));
    if (!conn) throw error("08001", "out of memory", "FATAL");
    PQsetNoticeReceiver(conn.get(), &detail::discard_notice, nullptr);
    if (PQstatus(conn.get()) == CONNECTION_BAD) throw error::from_connection("08001", conn.get());
    PostgresPollingStatusType state = PGRES_POLLING_WRITING;  // as PQconnectStart's documentation says
    while (state != PGRES_POLLING_OK) {
        if (state == PGRES_POLLING_FAILED) throw error::from_connection("08001", conn.get());
        const int fd = PQsocket(conn.get());
        if (state == PGRES_POLLING_READING)
            (void)co_await wait_readable(fd);
        else
            (void)co_await wait_writable(fd);
        state = PQconnectPoll(conn.get());
    }
    if (PQsetnonblocking(conn.get(), 1) != 0) throw error::from_connection("08001", conn.get());
    co_return connection(std::make_unique<detail::session>(loop, std::move(conn)));
}

}  // namespace coring::postgres
