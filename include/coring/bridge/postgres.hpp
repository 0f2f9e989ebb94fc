#pragma once
// coring::postgres: a PostgreSQL client on libpq's non-blocking API, run by the event loop
// (asyncio's asyncpg / psycopg 3's AsyncConnection).
//
//   auto db = co_await coring::postgres::connect("host=127.0.0.1 port=5432 dbname=app user=app");
//   coring::postgres::result r = co_await db.query("SELECT $1::int + $2::int AS sum", 1, 2);
//   r.rows(); r.columns(); r.column_name(0);           // 1, 1, "sum"
//   std::optional<std::string_view> v = r.value(0, 0);  // "3" (text format); empty for NULL
//   int sum = r.get<int>(0, "sum");                     // parsed
//   std::int64_t n = co_await db.execute("DELETE FROM jobs WHERE done AND owner = $1", owner);
//
//   co_await db.listen("jobs");                         // LISTEN "jobs"
//   coring::postgres::notification note = co_await db.notification();   // {channel, payload}
//
//   auto transfer = [&](coring::postgres::transaction& tx) -> coring::task<> {
//       co_await tx.execute("UPDATE acct SET bal = bal - $1 WHERE id = $2", 10, a);
//       co_await tx.execute("UPDATE acct SET bal = bal + $1 WHERE id = $2", 10, b);
//   };
//   co_await db.transaction(transfer);                  // COMMIT, or ROLLBACK if it throws
//
// The pieces, one per header:
//   postgres/connection.hpp   connect(), connection, transaction
//   postgres/result.hpp       result: rows, columns, value(row, col), get<T>(row, col)
//   postgres/params.hpp       how C++ values travel as $1, $2, ... (types, NULL, bytea), and
//                             parameters: a list built at run time (multi-row INSERT)
//   postgres/error.hpp        error: SQLSTATE, message, detail, hint
//   postgres/session.hpp      the connection's machinery on the loop; notification, notice
//   postgres/conninfo.hpp     the connection string's options, host names resolved on the loop
//
// Connecting. connect(conninfo) takes a libpq connection string or URI; unset options come
// from the PG* environment variables and libpq's defaults. It runs PQconnectStartParams and
// PQconnectPoll on the loop, never blocking it: host names are resolved first with
// coring::resolve (getaddrinfo on the loop's thread pool), and every address is tried in turn as
// libpq would. A failure (refused, no such host, authentication) throws error with SQLSTATE
// 08001 and libpq's message ("connection to server at "127.0.0.1", port 5 failed: Connection
// refused ..."). libpq's connect_timeout is not applied by its non-blocking API: wrap the call
// in coring::wait_for. SSL, passwords, .pgpass and service files work as in libpq.
//
// Commands. query(sql, args...) runs one statement with server-side parameters ($1, $2, ...:
// the values travel apart from the SQL in the extended protocol, never formatted into it) and
// returns its rows; execute(sql, args...) returns the affected row count; without arguments
// execute() takes a script of several statements (simple protocol). Values come back as text
// (result.hpp). One connection runs one command at a time: tasks that share it queue on its
// mutex, first come first served. For parallel queries, open several connections (each is one
// server process) and gather over them.
//
// Errors. A command the server rejects throws postgres::error with its SQLSTATE (42P01
// undefined_table, 22012 division_by_zero, 23505 unique_violation, ...), message, detail and
// hint; the connection stays usable. A lost connection (the server died or closed it) throws
// error 08006, or the server's own code when it said why before closing (57P01 admin_shutdown
// for pg_terminate_backend); from then on the connection is broken (is_open() is false) and
// every call throws 08006: connect again.
//
// Transactions. transaction(body, options) runs body(tx) between BEGIN and COMMIT with the
// connection to itself, rolls back when the body throws (and rethrows), and throws 25P02 if
// the body swallowed a failed command (the server would roll back anyway). options:
// .level (read_committed, repeatable_read, serializable), .read_only, .deferrable. A 40001
// serialization_failure from COMMIT or a command is the caller's to retry. Plain
// execute("BEGIN") ... execute("COMMIT") works too on a connection that no other task shares.
//
// LISTEN/NOTIFY. listen(channel) subscribes, notification() awaits the next {channel, payload,
// backend_pid}; notifications arrive whenever the server sends them (the connection's socket
// is watched while it is open), and wait in an unbounded queue until taken. notify(channel,
// payload) sends one (pg_notify). Notices (RAISE NOTICE, warnings) are dropped unless
// on_notice(handler) receives them.
//
// Cancellation. Cancelling the task that awaits a command cancels the command on the server:
// the task sends a cancel request (PQcancel, run on the loop's thread pool because it blocks),
// reads what remains of the command (the server answers 57014 query_canceled), and then
// resumes with cancelled_error. So wait_for(db.query("SELECT pg_sleep(10)"), 100ms) throws
// timeout_error a few milliseconds after 100 ms, the server has stopped the sleep, and the
// connection is ready for the next command. Inside a transaction the rollback follows. A task
// cancelled while it waits for the connection's mutex has sent nothing. If a second
// cancellation interrupts that clean-up, the connection finishes it before its next command.
// Cancelling connect() closes the half-made connection.
//
// Thread-safety: loop-bound. A connection belongs to the loop that was running when it was
// made and serves that loop's tasks; it must not outlive the loop, nor be closed or destroyed
// while a task awaits one of its commands or notification(). On several loops (loop_group),
// give each loop its own connections. Results and errors are plain values.

#include <coring/bridge/postgres/connection.hpp>
#include <coring/bridge/postgres/error.hpp>
#include <coring/bridge/postgres/params.hpp>
#include <coring/bridge/postgres/result.hpp>
