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
//                      coring::resolve on the loop's thread pool first (conninfo.hpp).
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
//   session (session.hpp; heap: callbacks and commands hold its address; connection is a
//            movable handle)
//     ├── PGconn*                       libpq's connection
//     ├── reader / writer on the socket  → progress (event), notifications (queue)
//     ├── lock (mutex)                  one command at a time, FIFO among tasks
//     └── in_flight, cancel_sent, needs_rollback, broken: what the next command must settle
//
// Thread-safety: loop-bound (see postgres.hpp). The only work done on another thread is
// PQcancel, which reads its own PGcancel copy and not the connection.

#include <coring/bridge/postgres/conninfo.hpp>
#include <coring/bridge/postgres/error.hpp>
#include <coring/bridge/postgres/params.hpp>
#include <coring/bridge/postgres/result.hpp>
#include <coring/bridge/postgres/session.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/io/readiness.hpp>
#include <coring/sync/mutex.hpp>
#include <coring/task.hpp>

#include <libpq-fe.h>

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace coring::postgres {

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

template <class T>
struct task_value;
template <class T>
struct task_value<task<T>> {
    using type = T;
};
template <class F>
using body_value_t = typename task_value<std::invoke_result_t<F&, postgres::transaction&>>::type;

inline void discard_notice(void*, const PGresult*) noexcept {}

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
    [[nodiscard]] task<> listen(std::string_view channel) { return simple_command("listen", "LISTEN " + detail::quote_identifier(channel)); }
    /// UNLISTEN channel. Notifications already queued stay.
    [[nodiscard]] task<> unlisten(std::string_view channel) { return simple_command("unlisten", "UNLISTEN " + detail::quote_identifier(channel)); }
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

    // `what` names the method in the error of a call from inside the connection's own transaction.
    [[nodiscard]] task<> simple_command(const char* what, std::string sql) {
        detail::session* s = detail::session::enter(m_session.get(), what);
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
