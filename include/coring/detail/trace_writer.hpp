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

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
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
    /// When the file was opened: the trace's time zero.
    [[nodiscard]] clock::time_point origin() const noexcept { return m_origin; }
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

/// One loop's events, on their way to its trace file. Each event is formatted straight into
/// the buffer, integers and timestamps by hand: snprintf's floating-point formatting would be
/// most of a traced step's cost (bench/README.md, "Profiling").
class trace_writer {
public:
    static constexpr std::size_t default_buffer_limit = std::size_t{1} << 20;

    trace_writer(std::shared_ptr<trace_file> file, std::size_t buffer_limit = default_buffer_limit)
        : m_file(std::move(file)), m_limit(buffer_limit), m_track(m_file->new_track()) {
        m_buffer.reserve(m_limit);
        begin_event(64);
        put(R"({"name":"thread_name","ph":"M","pid":1,"tid":)");
        append_number(m_track);
        put(R"(,"args":{"name":"loop )");
        append_number(m_track);
        put("\"}}");
        end_event();
    }
    trace_writer(const trace_writer&) = delete;
    trace_writer& operator=(const trace_writer&) = delete;
    ~trace_writer() { flush(); }

    [[nodiscard]] std::uint64_t file_next_flow() noexcept { return m_file->next_flow(); }

    /// A task's step, from `start` for `took`.
    void step(std::string_view task_name, std::uint64_t task_id, clock::time_point start, clock::duration took) {
        begin_event(task_name.size() * 6 + 160);  // the most a name's JSON escapes take
        put(R"({"name":)");
        append_json_string(task_name);
        put(R"(,"cat":"step","ph":"X","ts":)");
        append_microseconds(since_origin(start));
        put(R"(,"dur":)");
        append_microseconds(std::chrono::duration_cast<std::chrono::nanoseconds>(took).count());
        append_track();
        put(R"(,"args":{"task":)");
        append_number(task_id);
        put("}}");
        end_event();
    }

    /// A kernel operation `id` begins (at its submission) or ends (at its completion, with
    /// `result`).
    void operation_begins(std::uintptr_t id, std::string_view opcode, clock::time_point at) {
        begin_operation(id, opcode, "b", at);
        m_buffer += '}';
        end_event();
    }
    void operation_ends(std::uintptr_t id, std::string_view opcode, int result, clock::time_point at) {
        begin_operation(id, opcode, "e", at);
        put(R"(,"args":{"result":)");
        append_number(result);
        put("}}");
        end_event();
    }

    /// A flow from the running step (`start`) to a task's next step (`finish`): `kind` is
    /// "create_task" or "wake".
    void flow_starts(std::string_view kind, std::uint64_t flow_id, clock::time_point at) {
        begin_flow(kind, "s", flow_id, at);
        m_buffer += '}';
        end_event();
    }
    void flow_finishes(std::string_view kind, std::uint64_t flow_id, clock::time_point at) {
        begin_flow(kind, "f", flow_id, at);
        put(R"(,"bp":"e"})");
        end_event();
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
    // An event of at most `most` bytes starts: the buffer is written out first if it would
    // not fit, and the separator from the previous event is added.
    void begin_event(std::size_t most) {
        if (!m_buffer.empty() && m_buffer.size() + 2 + most > m_limit) flush();
        if (!m_buffer.empty()) put(",\n");
    }
    // A literal's length is known at compile time: no strlen.
    template <std::size_t N>
    void put(const char (&text)[N]) {
        m_buffer.append(text, N - 1);
    }
    void end_event() noexcept {
        if (m_buffer.size() > m_high_water) m_high_water = m_buffer.size();
    }

    void begin_operation(std::uintptr_t id, std::string_view opcode, std::string_view phase, clock::time_point at) {
        begin_event(opcode.size() * 6 + 160);
        put(R"({"name":)");
        append_json_string(opcode);
        put(R"(,"cat":"io","ph":")");
        m_buffer += phase;
        put(R"(","id":"0x)");
        append_number(id, 16);
        put(R"(","ts":)");
        append_microseconds(since_origin(at));
        append_track();
    }
    void begin_flow(std::string_view kind, std::string_view phase, std::uint64_t flow_id, clock::time_point at) {
        begin_event(kind.size() + 160);
        put(R"({"name":")");
        m_buffer += kind;
        put(R"(","cat":"flow","ph":")");
        m_buffer += phase;
        put(R"(","id":)");
        append_number(flow_id);
        put(R"(,"ts":)");
        append_microseconds(since_origin(at));
        append_track();
    }

    void append_track() {
        put(R"(,"pid":1,"tid":)");
        append_number(m_track);
    }
    [[nodiscard]] std::int64_t since_origin(clock::time_point t) const noexcept {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(t - m_file->origin()).count();
    }
    template <class Integer>
    void append_number(Integer value, int base = 10) {
        char text[24];
        const auto end = std::to_chars(text, text + sizeof text, value, base).ptr;
        m_buffer.append(text, end);
    }
    // Nanoseconds as microseconds with three decimals ("12.345"), the format's unit.
    void append_microseconds(std::int64_t ns) {
        if (ns < 0) {
            m_buffer += '-';
            ns = -ns;
        }
        append_number(ns / 1000);
        const auto fraction = static_cast<unsigned>(ns % 1000);
        const char digits[4] = {'.', static_cast<char>('0' + fraction / 100), static_cast<char>('0' + fraction / 10 % 10), static_cast<char>('0' + fraction % 10)};
        m_buffer.append(digits, sizeof digits);
    }
    void append_json_string(std::string_view text) {
        m_buffer += '"';
        const auto plain = [](char c) { return c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20; };
        if (std::all_of(text.begin(), text.end(), plain)) {  // the usual name: no escapes
            m_buffer += text;
            m_buffer += '"';
            return;
        }
        for (const char c : text) {
            switch (c) {
                case '"': m_buffer += "\\\""; break;
                case '\\': m_buffer += "\\\\"; break;
                case '\n': m_buffer += "\\n"; break;
                case '\t': m_buffer += "\\t"; break;
                default:
                    if (static_cast<unsigned char>(c) < 0x20) {
                        static constexpr char hex[] = "0123456789abcdef";
                        const auto byte = static_cast<unsigned char>(c);
                        const char escaped[6] = {'\\', 'u', '0', '0', hex[byte >> 4], hex[byte & 0xf]};
                        m_buffer.append(escaped, sizeof escaped);
                    } else {
                        m_buffer += c;
                    }
            }
        }
        m_buffer += '"';
    }

    std::shared_ptr<trace_file> m_file;
    std::size_t m_limit;
    std::uint32_t m_track;
    std::string m_buffer;
    std::size_t m_high_water = 0;
};

}  // namespace coring::detail
