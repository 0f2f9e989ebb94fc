#pragma once
// Tracing (CORING_TRACE=path.json, loop_options::trace_file): a Chrome trace-event file, which
// Perfetto (ui.perfetto.dev) and chrome://tracing open, and tools/trace_to_svg.py draws.
//
// Format: the JSON array form of the trace-event format, one event per line. Every loop that
// traces to a path is a track of the one process ("loop 1", "loop 2", ... in the order the
// loops were made); its events are
//   - a task step: a complete slice ("ph":"X") named after the task, with its id;
//   - a kernel operation: an async slice ("ph":"b" at submission, "e" at completion) named
//     after its opcode, with its result;
//   - create_task and a wake-up: a flow ("ph":"s" in the step that created or woke the task,
//     "ph":"f" at the start of the task's next step), drawn as an arrow between the slices.
// Timestamps are microseconds of real time (the steady clock) since the file was opened, also
// on virtual time.
//
// Memory stays bounded on a run of any length: each loop collects its events in a buffer of at
// most `buffer_limit` bytes and writes it to the file when it is full (and when the loop
// closes). Writing is a blocking write(2) on the loop's thread: tracing costs time, not memory.
// Loops of several threads share the file through a mutex taken only to write a buffer.
//
// The file is opened (truncated) when the first loop traces to its path and stays open until
// the process exits, so that the loops of one program, one after the other or side by side,
// end up in one trace. After each write it ends with the array's closing bracket, which the
// next write overwrites: the file is a complete JSON document whenever no write is under way,
// also after a crash.

#include <coring/clock.hpp>
#include <coring/errors.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace coring::detail {

/// One trace file, shared by the loops that write to it.
class trace_file {
public:
    /// The file at `path`, opened (truncated) by the first caller in this process; throws
    /// std::system_error with errno when it cannot be created.
    static std::shared_ptr<trace_file> open(const std::string& path) {
        static std::mutex registry_lock;
        // Kept until exit: loops made one after the other share the file.
        static std::map<std::string, std::shared_ptr<trace_file>> registry;
        const std::lock_guard<std::mutex> guard(registry_lock);
        std::shared_ptr<trace_file>& file = registry[path];
        if (!file) file = std::shared_ptr<trace_file>(new trace_file(path));
        return file;
    }

    trace_file(const trace_file&) = delete;
    trace_file& operator=(const trace_file&) = delete;
    ~trace_file() { ::close(m_fd); }

    /// Appends `events` (complete events, each ending with ",\n" but for the separator this
    /// adds) to the file.
    void append(std::string_view events) {
        if (events.empty()) return;
        const std::lock_guard<std::mutex> guard(m_lock);
        if (m_written_any) write_all(",\n");
        write_all(events);
        m_written_any = true;
        write_closing_bracket();
    }

    /// The track number of a new loop: 1, 2, ...
    std::uint32_t new_track() noexcept { return ++m_tracks; }
    /// A flow id unused in this file.
    std::uint64_t next_flow() noexcept { return ++m_flows; }
    /// Real time since the file was opened, in microseconds.
    [[nodiscard]] double now_us() const noexcept { return to_us(clock::now()); }
    [[nodiscard]] double to_us(clock::time_point t) const noexcept { return std::chrono::duration<double, std::micro>(t - m_origin).count(); }
    /// The file's size without its closing bracket.
    [[nodiscard]] std::uint64_t bytes_written() const noexcept { return m_bytes.load(std::memory_order_relaxed); }

private:
    explicit trace_file(const std::string& path) : m_origin(clock::now()) {
        m_fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (m_fd < 0) throw_errno(errno, "coring: opening the trace file \"" + path + "\"");
        write_all("[\n");
        write_closing_bracket();
    }

    static constexpr std::string_view closing_bracket = "\n]\n";
    // Written after the events, and overwritten by the next ones (m_end stays before it).
    void write_closing_bracket() noexcept {
        const std::uint64_t end = m_end;
        write_all(closing_bracket);
        m_end = end;
    }

    // At m_end, with pwrite. A failed write loses the trace's rest, not the program: the error
    // is reported once.
    void write_all(std::string_view data) noexcept {
        while (!data.empty() && !m_failed) {
            const ssize_t n = ::pwrite(m_fd, data.data(), data.size(), static_cast<off_t>(m_end));
            if (n < 0 && errno == EINTR) continue;
            if (n <= 0) {
                m_failed = true;
                std::fprintf(stderr, "coring: writing the trace file failed (errno %d); tracing stops\n", n < 0 ? errno : 0);
                return;
            }
            data.remove_prefix(static_cast<std::size_t>(n));
            m_end += static_cast<std::uint64_t>(n);
            m_bytes.store(m_end, std::memory_order_relaxed);
        }
    }

    int m_fd = -1;
    std::uint64_t m_end = 0;  // where the next write goes (the closing bracket follows it)
    std::mutex m_lock;
    bool m_written_any = false;
    bool m_failed = false;
    std::atomic<std::uint32_t> m_tracks{0};
    std::atomic<std::uint64_t> m_flows{0};
    std::atomic<std::uint64_t> m_bytes{0};
    clock::time_point m_origin;
};

/// One loop's events, on their way to its trace file.
class trace_writer {
public:
    static constexpr std::size_t default_buffer_limit = std::size_t{1} << 20;

    trace_writer(std::shared_ptr<trace_file> file, std::size_t buffer_limit = default_buffer_limit)
        : m_file(std::move(file)), m_limit(buffer_limit), m_track(m_file->new_track()) {
        m_buffer.reserve(m_limit);
        char text[160];
        std::snprintf(text, sizeof text, R"({"name":"thread_name","ph":"M","pid":1,"tid":%u,"args":{"name":"loop %u"}})", m_track, m_track);
        add(text);
    }
    trace_writer(const trace_writer&) = delete;
    trace_writer& operator=(const trace_writer&) = delete;
    ~trace_writer() { flush(); }

    [[nodiscard]] double now_us() const noexcept { return m_file->now_us(); }
    [[nodiscard]] double to_us(clock::time_point t) const noexcept { return m_file->to_us(t); }
    [[nodiscard]] std::uint64_t file_next_flow() noexcept { return m_file->next_flow(); }

    /// A task's step, from `start` for `duration` microseconds.
    void step(std::string_view task_name, std::uint64_t task_id, double start, double duration) {
        std::string event = R"({"name":)";
        append_json_string(event, task_name);
        char text[200];
        std::snprintf(text, sizeof text, R"(,"cat":"step","ph":"X","ts":%.3f,"dur":%.3f,"pid":1,"tid":%u,"args":{"task":%llu}})", start, duration, m_track,
                      static_cast<unsigned long long>(task_id));
        event += text;
        add(event);
    }

    /// A kernel operation `id` begins (at its submission) or ends (at its completion, with
    /// `result`).
    void operation_begins(std::uintptr_t id, std::string_view opcode, double at) {
        char text[200];
        std::snprintf(text, sizeof text, R"({"name":"%.*s","cat":"io","ph":"b","id":"0x%llx","ts":%.3f,"pid":1,"tid":%u})", static_cast<int>(opcode.size()),
                      opcode.data(), static_cast<unsigned long long>(id), at, m_track);
        add(text);
    }
    void operation_ends(std::uintptr_t id, std::string_view opcode, int result, double at) {
        char text[220];
        std::snprintf(text, sizeof text, R"({"name":"%.*s","cat":"io","ph":"e","id":"0x%llx","ts":%.3f,"pid":1,"tid":%u,"args":{"result":%d}})",
                      static_cast<int>(opcode.size()), opcode.data(), static_cast<unsigned long long>(id), at, m_track, result);
        add(text);
    }

    /// A flow from the running step (`start`) to a task's next step (`finish`): `kind` is
    /// "create_task" or "wake".
    void flow_starts(const char* kind, std::uint64_t flow_id, double at) {
        char text[200];
        std::snprintf(text, sizeof text, R"({"name":"%s","cat":"flow","ph":"s","id":%llu,"ts":%.3f,"pid":1,"tid":%u})", kind,
                      static_cast<unsigned long long>(flow_id), at, m_track);
        add(text);
    }
    void flow_finishes(const char* kind, std::uint64_t flow_id, double at) {
        char text[200];
        std::snprintf(text, sizeof text, R"({"name":"%s","cat":"flow","ph":"f","bp":"e","id":%llu,"ts":%.3f,"pid":1,"tid":%u})", kind,
                      static_cast<unsigned long long>(flow_id), at, m_track);
        add(text);
    }

    /// Writes what is buffered to the file.
    void flush() {
        if (m_buffer.empty()) return;
        m_file->append(m_buffer);
        m_buffer.clear();
    }

    [[nodiscard]] std::uint32_t track() const noexcept { return m_track; }
    /// The most the buffer held (at most buffer_limit, but for one event larger than it).
    [[nodiscard]] std::size_t buffer_high_water() const noexcept { return m_high_water; }
    [[nodiscard]] const trace_file& file() const noexcept { return *m_file; }

private:
    void add(std::string_view event) {
        const std::size_t needed = event.size() + (m_buffer.empty() ? 0 : 2);
        if (!m_buffer.empty() && m_buffer.size() + needed > m_limit) flush();
        if (!m_buffer.empty()) m_buffer += ",\n";
        m_buffer += event;
        if (m_buffer.size() > m_high_water) m_high_water = m_buffer.size();
    }

    static void append_json_string(std::string& out, std::string_view text) {
        out += '"';
        for (const char c : text) {
            switch (c) {
                case '"': out += "\\\""; break;
                case '\\': out += "\\\\"; break;
                case '\n': out += "\\n"; break;
                case '\t': out += "\\t"; break;
                default:
                    if (static_cast<unsigned char>(c) < 0x20) {
                        char escaped[8];
                        std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
                        out += escaped;
                    } else {
                        out += c;
                    }
            }
        }
        out += '"';
    }

    std::shared_ptr<trace_file> m_file;
    std::size_t m_limit;
    std::uint32_t m_track;
    std::string m_buffer;
    std::size_t m_high_water = 0;
};

}  // namespace coring::detail
