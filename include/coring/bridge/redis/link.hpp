#pragma once
// The Redis bridge's machinery (coring/bridge/redis.hpp is the public face): one hiredis async
// context on the event loop, shared by a connection, its subscription and the commands in flight.
//
//   connection ──┐                    redisAsyncContext (hiredis)
//   subscription ┼─ ref_ptr ─▶ link ──▶  ev hooks: addRead/delRead ─▶ loop.add_reader(fd)
//   command      ┘  (one count      │             addWrite/delWrite ─▶ flush node on the ready queue
//   awaiters           per holder)   │                                  (loop.add_writer only while
//                                    │                                   the socket's buffer is full)
//                                    │             cleanup           ─▶ registrations removed,
//                                    │                                  the context forgotten
//                                    └─ hiredis's reply callbacks: privdata is a pending_command
//                                       (heap, owned by hiredis's callback list until it runs)
//
// Writes: hiredis appends each command to its output buffer and asks for a write (addWrite). The
// link does not register a writer for that: it queues its flush node once on the loop's ready
// queue, so that every command issued in this iteration, by any task, leaves in one send() on the
// next (pipelining without asking). The flush sends hiredis's buffer itself, with MSG_NOSIGNAL:
// hiredis 0.14 would write() it, and a write to a connection the server closed raises SIGPIPE,
// which kills a process that does not ignore it. Only when the socket's buffer is full does the
// link register a writer until it drains. A failed send shuts the socket down, so that hiredis's
// next read ends the connection (after the replies already received are delivered); the errno
// of the send is what the pending commands then report.
//
// Reads: one reader for the life of the connection; its callback is redisAsyncHandleRead, which
// runs the reply callbacks. Those never run user code: they store the outcome in the awaiter and
// wake it through the ready queue.
//
// Lifetime: the link lives while anything holds it (the connection, its subscription, an awaiter
// of a command in flight, the queued flush node). Its destruction frees the hiredis context
// (redisAsyncFree), which calls the callbacks of commands still pending with no reply: their
// awaiters, if any are left, resume with std::system_error. hiredis may also free the context by
// itself (an I/O error, the server closing): its cleanup hook tells the link, which from then on
// reports that failure.

#include <coring/bridge/redis/reply.hpp>
#include <coring/detail/ready_queue.hpp>
#include <coring/detail/ref_ptr.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/errors.hpp>
#include <coring/event_loop.hpp>
#include <coring/sync/event.hpp>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <hiredis/sds.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

// hiredis 0.14's hiredis.h includes sds.h outside its extern "C" block, so a C++ translation
// unit sees sdsfree and sdsempty with C++ linkage, and links against names the library does not
// have. These declarations name the C symbols themselves (the inline sds functions need nothing).
namespace coring::redis::detail::sds_c {
extern "C" {
void free_string(char* s) __asm__("sdsfree");
char* empty_string() __asm__("sdsempty");
}
}  // namespace coring::redis::detail::sds_c

namespace coring::redis::detail {

/// The errno whose strerror text ends `text` ("connect: Connection refused" -> ECONNREFUSED), or 0.
inline int errno_from_text(std::string_view text) {
    for (int e = 1; e < 134; ++e) {
        const std::string name = std::generic_category().message(e);
        if (text.size() >= name.size() && text.substr(text.size() - name.size()) == name) return e;
    }
    return 0;
}

/// A reply of hiredis as a redis::reply (deep copy: hiredis frees its own after the callback).
inline reply convert_reply(const redisReply& r) {
    switch (r.type) {
        case REDIS_REPLY_INTEGER: return reply::from_integer(r.integer);
        case REDIS_REPLY_STRING: return reply::from_string(std::string(r.str, r.len));
        case REDIS_REPLY_STATUS: return reply::from_string(std::string(r.str, r.len), reply::kind::status);
        case REDIS_REPLY_ERROR: return reply::from_string(std::string(r.str, r.len), reply::kind::error);
        case REDIS_REPLY_ARRAY: {
            std::vector<reply> elements;
            elements.reserve(r.elements);
            for (std::size_t i = 0; i < r.elements; ++i) elements.push_back(convert_reply(*r.element[i]));
            return reply::from_array(std::move(elements));
        }
        default: return reply();  // REDIS_REPLY_NIL
    }
}

class link {
public:
    enum class state : unsigned char { connecting, open, closed };

    /// Starts connecting to `ip` (an address literal: hiredis would resolve a name with a blocking
    /// getaddrinfo) or, with port < 0, to the Unix socket `ip`. A failure that is known at once
    /// (a Unix socket that is missing or refuses) throws std::system_error here.
    static coring::detail::ref_ptr<link> start(event_loop& loop, const std::string& ip, int port) {
        redisAsyncContext* ac = port < 0 ? redisAsyncConnectUnix(ip.c_str()) : redisAsyncConnect(ip.c_str(), port);
        if (ac == nullptr) throw std::bad_alloc();
        std::string where = port < 0 ? ip : (ip.find(':') != std::string::npos ? "[" + ip + "]" : ip) + ":" + std::to_string(port);
        if (ac->c.err != 0) {
            const std::system_error failure = make_failure(ac->c.err, ac->c.errstr, 0, "connect " + where);
            redisAsyncFree(ac);
            throw failure;
        }
        auto l = coring::detail::ref_ptr<link>::adopt(new link(loop, ac, std::move(where)));
        l->watch_connect();
        return l;
    }

    link(const link&) = delete;
    link& operator=(const link&) = delete;

    void add_ref() noexcept { ++m_refs; }
    void release() noexcept {
        if (--m_refs == 0) delete this;
    }

    [[nodiscard]] state current_state() const noexcept { return m_state; }
    [[nodiscard]] const std::string& where() const noexcept { return m_where; }
    [[nodiscard]] redisAsyncContext* context() const noexcept { return m_ac; }
    /// Commands sent and not yet answered (cancelled ones included: their replies still come).
    [[nodiscard]] std::size_t in_flight() const noexcept { return m_in_flight; }
    [[nodiscard]] bool subscribed() const noexcept { return m_subscribed; }

    /// Set once connecting has ended, either way.
    coring::event connected;

    /// Frees the hiredis context now: commands in flight fail with ECONNABORTED.
    void close() noexcept {
        if (m_ac == nullptr) return;
        if (!m_failed) set_failure(std::system_error(ECONNABORTED, std::generic_category(), "coring::redis: " + m_where + ": the connection was closed"));
        redisAsyncFree(m_ac);  // runs cleanup(): m_ac is null afterwards
    }

    /// The exception of a connection that is gone (or never came up), for the commands it fails.
    [[nodiscard]] std::exception_ptr failure() const {
        if (m_failed) return m_failure;
        return std::make_exception_ptr(std::system_error(ECONNABORTED, std::generic_category(), "coring::redis: " + m_where + ": the connection was closed"));
    }

    /// Throws invalid_state_error if commands cannot be sent, or the connection's failure.
    void check_can_send() const {
        if (m_subscribed)
            throw invalid_state_error("coring::redis: " + m_where + " is in subscriber mode: only its subscription may use it (open another connection for commands)");
        if (m_ac == nullptr || m_state != state::open) std::rethrow_exception(failure());
    }

    /// hiredis's send path with our callback: false if hiredis refuses (the connection is going).
    bool send(redisCallbackFn* fn, void* privdata, std::string_view formatted) {
        if (m_ac == nullptr) return false;
        if (redisAsyncFormattedCommand(m_ac, fn, privdata, formatted.data(), formatted.size()) != REDIS_OK) return false;
        return true;
    }
    void count_sent() noexcept { ++m_in_flight; }
    void count_answered() noexcept { --m_in_flight; }

    /// The link of a context (set when the link attached its hooks).
    static link& of(const redisAsyncContext* ac) noexcept { return *static_cast<link*>(ac->ev.data); }

    /// For a reply callback run with no reply (the context is going): the failure it reports,
    /// recorded from the context's error the first time.
    std::exception_ptr failure_of(const redisAsyncContext* ac) {
        if (!m_failed) record_context_failure(ac->c);
        return m_failure;
    }

    // ---------------------------------------------------------------- publish/subscribe

    /// Sends SUBSCRIBE for `formatted` (a formatted command naming `channels` channels): the
    /// connection turns to subscriber mode; subscribed_event is set once every confirmation is in.
    void send_subscribe(std::string_view formatted, std::size_t channels) {
        check_can_send_subscribe();
        if (!send(&on_subscription_reply, this, formatted)) std::rethrow_exception(failure());
        m_subscribed = true;
        m_confirmations_due += channels;
    }
    void check_can_send_subscribe() const {
        if (m_ac == nullptr || m_state != state::open) std::rethrow_exception(failure());
    }
    [[nodiscard]] bool confirmations_due() const noexcept { return m_confirmations_due > 0; }

    /// Set when a subscription's confirmations are all in, or the connection failed.
    coring::event subscribed_event;
    /// Set when a message arrives or the connection fails; cleared by whoever waits.
    coring::event message_arrived;
    std::deque<message> messages;
    /// An error reply that came with no command waiting for it, with which hiredis closed the
    /// connection: a SUBSCRIBE the server refused (ACL: NOPERM), or "max number of clients".
    [[nodiscard]] const std::string& refusal() const noexcept { return m_refusal; }

    [[nodiscard]] bool failed() const noexcept { return m_failed; }

private:
    link(event_loop& loop, redisAsyncContext* ac, std::string where) : m_loop(&loop), m_ac(ac), m_fd(ac->c.fd), m_where(std::move(where)) {
        ac->ev.data = this;
        ac->ev.addRead = &hook_add_read;
        ac->ev.delRead = &hook_del_read;
        ac->ev.addWrite = &hook_add_write;
        ac->ev.delWrite = &hook_del_write;
        ac->ev.cleanup = &hook_cleanup;
        redisAsyncSetConnectCallback(ac, &on_connect);
    }

    ~link() {
        if (m_ac != nullptr) {
            if (!m_failed) set_failure(std::system_error(ECONNABORTED, std::generic_category(), "coring::redis: " + m_where + ": the connection was closed"));
            redisAsyncFree(m_ac);
        }
    }

    // hiredis learns that a TCP connect finished when the socket turns writable.
    void watch_connect() {
        try {
            m_loop->add_writer(m_fd, [this] { on_writable(); });
            m_writer = true;
        } catch (...) {
            redisAsyncFree(m_ac);  // before the link goes: its hooks refer to it
            throw;
        }
    }

    static void on_connect(const redisAsyncContext* ac, int status) {
        link& self = of(ac);
        if (status == REDIS_OK) {
            self.m_state = state::open;
        } else {
            self.set_failure(make_failure(ac->c.err, ac->c.errstr, 0, "connect " + self.m_where));
            self.m_state = state::closed;
        }
        self.connected.set();
    }

    // ---------------------------------------------------------------- hiredis's hooks
    // Called from inside hiredis: they must not throw. A registration that cannot be made is
    // reported to the loop's exception handler and ends the connection.

    static void hook_add_read(void* data) {
        auto& self = *static_cast<link*>(data);
        if (self.m_reader || self.m_loop->is_closed()) return;
        try {
            self.m_loop->add_reader(self.m_fd, [&self] { self.on_readable(); });
            self.m_reader = true;
        } catch (...) {
            self.fail_registration("add_reader");
        }
    }
    static void hook_del_read(void* data) {
        auto& self = *static_cast<link*>(data);
        if (!self.m_reader) return;
        self.m_reader = false;
        if (!self.m_loop->is_closed()) self.m_loop->remove_reader(self.m_fd);
    }
    static void hook_add_write(void* data) {
        auto& self = *static_cast<link*>(data);
        if (self.m_writer || self.m_loop->is_closed()) return;
        if (self.m_flushing) {
            self.register_writer();
        } else if (!self.m_flush_queued) {
            self.m_flush_queued = true;
            self.add_ref();  // the queued node holds the link
            coring::detail::scheduler_of(*self.m_loop).schedule(self.m_flush_node);
        }
    }
    static void hook_del_write(void* data) { static_cast<link*>(data)->unregister_writer(); }
    // From redisAsyncFree, after the reply callbacks ran with no reply and before the socket is
    // closed: the registrations go, and the context is forgotten.
    static void hook_cleanup(void* data) {
        auto& self = *static_cast<link*>(data);
        if (!self.m_failed) {
            try {
                self.record_context_failure(self.m_ac->c);
            } catch (...) {
            }
        }
        hook_del_read(data);
        self.unregister_writer();
        self.m_ac = nullptr;
        self.m_state = state::closed;
        self.connected.set();
        self.subscribed_event.set();
        self.message_arrived.set();
    }

    void register_writer() {
        try {
            m_loop->add_writer(m_fd, [this] { on_writable(); });
            m_writer = true;
        } catch (...) {
            fail_registration("add_writer");
        }
    }
    void unregister_writer() noexcept {
        if (!m_writer) return;
        m_writer = false;
        if (!m_loop->is_closed()) m_loop->remove_writer(m_fd);
    }

    void fail_registration(const char* what) noexcept {
        m_loop->call_exception_handler({std::string("coring::redis: ") + what + " failed; closing " + m_where, std::current_exception(), {}, {}});
        fail_socket(EIO);
    }

    // A failed send, or a hook that could not register: the socket is shut down, so that the
    // reader sees its end and hiredis ends the connection after the replies received so far.
    void fail_socket(int error) noexcept {
        if (!m_failed) {
            try {
                set_failure(make_failure(REDIS_ERR_IO, std::generic_category().message(error).c_str(), error, m_where));
            } catch (...) {
            }
        }
        ::shutdown(m_fd, SHUT_RDWR);
        unregister_writer();
    }

    void on_readable() {
        if (m_ac != nullptr) redisAsyncHandleRead(m_ac);
    }

    void on_writable() {
        if (m_ac == nullptr) return;
        if (m_state == state::connecting)
            redisAsyncHandleWrite(m_ac);  // hiredis checks the connect; its buffer is empty
        else
            flush();
    }

    // Sends hiredis's output buffer (see the header comment).
    void flush() noexcept {
        redisContext& c = m_ac->c;
        if (c.err != 0) return;
        m_flushing = true;
        std::size_t left = sdslen(c.obuf);
        while (left > 0) {
            const ssize_t sent = ::send(c.fd, c.obuf, left, MSG_NOSIGNAL | MSG_DONTWAIT);
            if (sent < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    hook_add_write(this);  // in a flush: registers the writer
                else
                    fail_socket(errno);
                m_flushing = false;
                return;
            }
            if (static_cast<std::size_t>(sent) == left) {
                char* fresh = sdsalloc(c.obuf) > max_kept_buffer ? sds_c::empty_string() : nullptr;
                if (fresh != nullptr) {  // a large value went out: its memory goes back
                    sds_c::free_string(c.obuf);
                    c.obuf = fresh;
                } else {
                    sdssetlen(c.obuf, 0);
                    c.obuf[0] = '\0';
                }
                left = 0;
            } else {
                left -= static_cast<std::size_t>(sent);
                std::memmove(c.obuf, c.obuf + sent, left);
                sdssetlen(c.obuf, left);
                c.obuf[left] = '\0';
            }
        }
        m_flushing = false;
        unregister_writer();
    }

    static void run_flush(coring::detail::ready_node* node, coring::detail::ready_node::action what) noexcept {
        link& self = *static_cast<flush_node*>(node)->owner;
        self.m_flush_queued = false;
        if (what == coring::detail::ready_node::action::run && self.m_ac != nullptr && self.m_state == state::open && !self.m_writer) self.flush();
        self.release();
    }

    static void on_subscription_reply(redisAsyncContext* ac, void* r, void* privdata) {
        auto& self = *static_cast<link*>(privdata);
        const auto* rep = static_cast<const redisReply*>(r);
        if (rep == nullptr) {  // the connection is going: once per channel
            (void)self.failure_of(ac);
            self.subscribed_event.set();
            self.message_arrived.set();
            return;
        }
        try {
            if (rep->type != REDIS_REPLY_ARRAY || rep->elements < 3) return;
            const std::string_view type(rep->element[0]->str, rep->element[0]->len);
            if (type == "subscribe") {
                if (self.m_confirmations_due > 0 && --self.m_confirmations_due == 0) self.subscribed_event.set();
            } else if (type == "message") {
                const redisReply& channel = *rep->element[1];
                const redisReply& payload = *rep->element[2];
                self.messages.push_back(message{std::string(channel.str, channel.len), std::string(payload.str, payload.len)});
                self.message_arrived.set();
            }
        } catch (...) {
            self.m_loop->call_exception_handler({"coring::redis: a message of " + self.m_where + " was lost", std::current_exception(), {}, {}});
        }
    }

    // The failure of a context that hiredis is freeing. REDIS_ERR_OTHER on an open connection
    // is hiredis's answer to an error reply nobody waited for: its text is the server's.
    void record_context_failure(const redisContext& c) {
        if (c.err == REDIS_ERR_OTHER && m_state == state::open) m_refusal = c.errstr;
        set_failure(make_failure(c.err, c.errstr, 0, m_where));
    }

    void set_failure(const std::system_error& failure) {
        m_failure = std::make_exception_ptr(failure);
        m_failed = true;
    }

    /// The std::system_error for hiredis's error `kind` and text (errno: the send's, or 0).
    static std::system_error make_failure(int kind, const char* text, int error, const std::string& where) {
        const std::string reason = text != nullptr ? text : "";
        switch (kind) {
            case REDIS_ERR_IO:
                if (error == 0) error = errno_from_text(reason);
                if (error == 0) error = EIO;
                break;
            case REDIS_ERR_EOF: error = ECONNRESET; break;
            case REDIS_ERR_PROTOCOL: error = EPROTO; break;
            case REDIS_ERR_OOM: error = ENOMEM; break;
            default: error = ECONNABORTED; break;  // REDIS_ERR_OTHER (the server refused us), or none
        }
        std::string what = "coring::redis: " + where;
        if (!reason.empty() && reason != std::generic_category().message(error)) what += ": " + reason;
        return std::system_error(error, std::generic_category(), what);
    }

    static constexpr std::size_t max_kept_buffer = 64 * 1024;

    struct flush_node : coring::detail::ready_node {
        explicit flush_node(link* l) noexcept : ready_node(operations_), owner(l) {}
        static constexpr operations operations_{&link::run_flush};
        link* owner;
    };

    event_loop* m_loop;
    redisAsyncContext* m_ac;  // null once hiredis freed it
    int m_fd;
    std::string m_where;  // "127.0.0.1:6379", "[::1]:6379" or the socket's path
    flush_node m_flush_node{this};
    std::size_t m_refs = 1;
    std::size_t m_in_flight = 0;
    std::size_t m_confirmations_due = 0;
    std::exception_ptr m_failure;
    std::string m_refusal;
    state m_state = state::connecting;
    bool m_failed = false;
    bool m_reader = false;          // a reader is registered
    bool m_writer = false;          // a writer is registered (connecting, or the socket was full)
    bool m_flush_queued = false;    // the flush node is on the ready queue
    bool m_flushing = false;        // inside flush()
    bool m_subscribed = false;      // SUBSCRIBE was sent: subscriber mode
};

}  // namespace coring::redis::detail
