#pragma once
// coring::redis: a Redis client on hiredis's async API, run by the event loop (asyncio's
// redis.asyncio, from redis-py).
//
//   coring::redis::connection r = co_await coring::redis::connect("127.0.0.1", 6379);
//   // or co_await coring::redis::connect_unix("/run/redis/redis.sock")
//   co_await r.command("SET", "user:1:name", name);              // any number of arguments:
//   co_await r.command("EXPIRE", "user:1:name", 3600);           // strings (binary-safe), integers,
//   coring::redis::reply v = co_await r.command("GET", "user:1:name");  // floats, ranges of them
//   if (v.is_nil()) ...; else use(v.str());
//   long long n = (co_await r.command("INCR", "hits")).integer();
//
//   std::vector<std::string> channels{"news"};
//   coring::redis::subscription sub = co_await other.subscribe(channels);
//   coring::redis::message m = co_await sub.next();              // m.channel, m.payload
//
// How it runs: hiredis does the protocol (encoding is ours: a binary-safe argument vector; the
// reply parser is hiredis's) and asks, through its event hooks, to be told when the socket is
// readable or writable; the bridge maps those hooks onto the loop (add_reader, and a flush once
// per loop iteration, detail/link.hpp) and turns hiredis's reply callbacks into awaitables. It
// owns no thread.
//
// Pipelining: one connection serves any number of tasks. Commands issued in one loop iteration,
// by one task or many, leave in one send() on the next iteration, and their replies come back in
// order, each to the task that sent it: 50 tasks sharing a connection make one round trip, not
// 50. (gather(r.command(...), r.command(...)) pipelines from one task.) A blocking command
// (BLPOP, XREADGROUP ... BLOCK) holds the replies queued behind it: give blocking consumers
// their own connection, as redis-py's connection pool would.
//
// Replies (reply.hpp): nil, integer, string (bulk or status), array; RESP2, which is what
// hiredis 0.14 speaks (do not send HELLO 3).
//
// Errors:
//   - an error reply throws coring::redis::error: what() is the server's message ("ERR unknown
//     command 'FOO', ..."), code() its first word ("WRONGTYPE", "NOGROUP");
//   - a connection that cannot be made throws std::system_error with the errno (ECONNREFUSED;
//     ENOENT for a Unix socket that does not exist), from connect() / connect_unix();
//   - a connection lost with commands in flight (the server died, a reset) fails each of them
//     with std::system_error (ECONNRESET when the server closed it, the errno of the failed call
//     otherwise), and every later command at once; nothing waits forever. A lost connection is
//     not reopened: connect again.
//   - command() on a connection in subscriber mode throws invalid_state_error.
//
// Cancellation: cancelling a task that awaits command() (wait_for, task_group, cancel()) resumes
// it with cancelled_error at once. A command not yet sent is never sent; one already sent still
// runs on the server and its reply is discarded when it arrives, so the other tasks' replies stay
// matched and the connection stays usable (command.hpp). Cancelling connect() closes the
// half-made connection.
//
// Lifetime: a connection is a handle to a hiredis context shared with its subscription and with
// the commands in flight; the context closes when the last of them goes (or at close()). None of
// them may outlive the loop (close them before it closes: keep them in tasks, not in statics).
//
// Thread-safety: loop-bound. Connections, subscriptions and command awaiters belong to the loop
// they were made on and are used by its tasks only; they must not cross loops or threads (open
// one connection per loop). Replies and messages are plain values that may go anywhere.
//
// Headers: redis/reply.hpp (reply, error, message), redis/command.hpp (arguments, the command
// awaiter, cancellation), redis/subscription.hpp (publish/subscribe), redis/connection.hpp
// (connection, connect, connect_unix), redis/link.hpp (the hiredis context on the loop).

#include <coring/bridge/redis/command.hpp>
#include <coring/bridge/redis/connection.hpp>
#include <coring/bridge/redis/reply.hpp>
#include <coring/bridge/redis/subscription.hpp>
