#pragma once
// coring::postgres::detail::session: the state of one open PostgreSQL connection and the loop
// machinery that drives it (the socket's reader and writer, one command at a time under a mutex,
// cancellation, the notification queue), with the values it receives from the server unasked:
// notification and notice. It is apart from connection.hpp so that the public connection reads
// as a synopsis; connection.hpp describes how a connection runs on the loop (read it first).
// session::run_transaction is defined there too, beside the transaction it hands the body.

#include <coring/bridge/postgres/error.hpp>
#include <coring/bridge/postgres/params.hpp>
#include <coring/bridge/postgres/result.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/sync/event.hpp>
#include <coring/sync/mutex.hpp>
#include <coring/sync/queue.hpp>
#include <coring/task.hpp>
#include <coring/thread/to_thread.hpp>

#include <dlfcn.h>
#include <libpq-fe.h>

#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>

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

struct transaction_options;
class transaction;

namespace detail {

struct pgconn_deleter {
    void operator()(PGconn* c) const noexcept { PQfinish(c); }
};
using pgconn_ptr = std::unique_ptr<PGconn, pgconn_deleter>;

struct pgcancel_deleter {
    void operator()(PGcancel* c) const noexcept { PQfreeCancel(c); }
};

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

}  // namespace detail
}  // namespace coring::postgres
