// Tests of tracing (loop_options::trace_file, CORING_TRACE; detail/trace_writer.hpp): the file
// parses as JSON with the expected step slices, kernel operations and flows (read back by
// tests/support/trace_summary.py, which also checks that every flow starts inside a step and
// every kernel operation ends once), loops get tracks of their own, and the buffer stays
// bounded on a long run.
#include <coring/detail/trace_writer.hpp>

#include <coring/coring.hpp>

#include "support/catch.hpp"
#include "support/os.hpp"

#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>

using namespace std::chrono_literals;

namespace {

/// The directory of this file (tests/), whose scripts and the repository's tools/ the tests run.
std::string tests_dir() {
    std::string here = __FILE__;
    here.erase(here.rfind('/') + 1);
    return here;
}

std::string summary_script() { return tests_dir() + "support/trace_summary.py"; }

/// Runs `command`; its exit status and standard output.
std::pair<int, std::string> run_command(const std::string& command) {
    FILE* out = ::popen(command.c_str(), "r");
    REQUIRE(out != nullptr);
    std::string text;
    char buffer[4096];
    for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, out)) > 0;) text.append(buffer, n);
    return {::pclose(out), text};
}

/// trace_summary.py's lines, "slice producer" -> "3", ...; empty if the script failed.
std::map<std::string, std::string> summary_of(const std::string& trace) {
    const auto [status, text] = run_command("python3 " + summary_script() + " " + trace);
    std::map<std::string, std::string> facts;
    CHECK(status == 0);
    if (status != 0) return facts;
    std::istringstream lines(text);
    for (std::string line; std::getline(lines, line);) {
        const std::size_t last_space = line.rfind(' ');
        facts[line.substr(0, last_space)] = line.substr(last_space + 1);
    }
    return facts;
}

coring::task<> produce(coring::queue<int>& q) {
    for (int i = 0; i < 3; ++i) {
        co_await coring::sleep(1ms);
        co_await q.put(i);
    }
}

coring::task<> consume(coring::queue<int>& q) {
    for (int i = 0; i < 3; ++i) {
        const int got = co_await q.get();
        CHECK(got == i);
    }
}

coring::task<> read_pipe(int fd) {
    std::array<std::byte, 8> buffer{};
    const std::size_t got = co_await coring::io::read(fd, buffer);
    CHECK(got == 2);
}

coring::task<> traced_program(int read_end, int write_end) {
    coring::queue<int> q(1);
    auto producer = coring::create_task(produce(q), "producer");
    auto consumer = coring::create_task(consume(q), "consumer");
    auto reader = coring::create_task(read_pipe(read_end), "reader");
    co_await producer;
    co_await consumer;
    REQUIRE(::write(write_end, "hi", 2) == 2);
    co_await reader;
}

/// traced_program on a fresh loop, traced to `path`, with a pipe of its own.
void run_traced_program(const std::string& path) {
    int ends[2];
    REQUIRE(::pipe(ends) == 0);
    coring::run(traced_program(ends[0], ends[1]), {.trace_file = path.c_str()});
    ::close(ends[0]);
    ::close(ends[1]);
}

coring::task<> many_steps(int n) {
    for (int i = 0; i < n; ++i) co_await coring::sleep(0s);
}

coring::task<> run_named(std::string name) {
    co_await coring::create_task(many_steps(1), std::move(name));
}

/// The bytes of `text` in hex, as Python's bytes.hex() writes them.
std::string hex_of(std::string_view text) {
    static constexpr char digits[] = "0123456789abcdef";
    std::string hex;
    for (const char c : text) {
        hex += digits[static_cast<unsigned char>(c) >> 4];
        hex += digits[static_cast<unsigned char>(c) & 0xf];
    }
    return hex;
}

}  // namespace

TEST_CASE("trace - steps, kernel operations and flows of a scripted program", "[trace]") {
    coring_test::temp_dir dir;
    const std::string path = dir.file("program.json");
    run_traced_program(path);

    std::map<std::string, std::string> facts = summary_of(path);
    CHECK(facts["tracks"] == "1");
    // producer: a step before each of its 3 sleeps, after each (the put of a queue of one
    // waits for room the consumer makes, or not), and its end; at least 4.
    CHECK(std::stoi(facts["slice producer"]) >= 4);
    CHECK(std::stoi(facts["slice consumer"]) >= 2);
    CHECK(facts["slice reader"] == "2");  // until the read, and after it
    CHECK(facts["flow create_task"] == "3/3");  // the three tasks the main task made
    // The consumer woken by the producer's puts, inside the producer's steps.
    const std::string wakes = facts["flow wake"];
    REQUIRE(wakes.find('/') != std::string::npos);
    CHECK(std::stoi(wakes) >= 1);
    CHECK(wakes.substr(wakes.find('/') + 1) == wakes.substr(0, wakes.find('/')));  // each one finished
    CHECK(facts["io read"] == "1/1");
}

TEST_CASE("trace - a task's name reaches the file intact, whatever its characters", "[trace]") {
    coring_test::temp_dir dir;
    const std::string path = dir.file("names.json");
    const std::string name = "say \"hi\" \\ to\n\tthe \x01 loop \xc3\xa9";  // quotes, backslash, controls, UTF-8
    coring::run(run_named(name), {.trace_file = path.c_str()});
    // Python decodes the JSON strings; the slice whose name starts with "say" is printed as bytes.
    const auto [status, text] = run_command("python3 -c \"import json, sys; "
                                            "print(' '.join(sorted({e['name'].encode().hex() for e in json.load(open(sys.argv[1])) "
                                            "if e.get('ph') == 'X' and e['name'].startswith('say')})))\" " + path);
    CHECK(status == 0);
    CHECK(text == hex_of(name) + "\n");
}

TEST_CASE("trace - loops made one after the other share the file, a track each", "[trace]") {
    coring_test::temp_dir dir;
    const std::string path = dir.file("two_loops.json");
    coring::run(many_steps(3), {.trace_file = path.c_str()});
    coring::run(many_steps(3), {.trace_file = path.c_str()});
    std::map<std::string, std::string> facts = summary_of(path);
    CHECK(facts["tracks"] == "2");
    CHECK(facts["slice Task-1"] == "8");  // each loop's main task: 4 steps
}

TEST_CASE("trace - loops running side by side in two threads write one valid file", "[trace][threads]") {
    coring_test::temp_dir dir;
    const std::string path = dir.file("threads.json");
    auto run_one = [&path] { coring::run(many_steps(2'000), {.trace_file = path.c_str(), .trace_buffer_bytes = 8192}); };
    std::thread first(run_one);
    std::thread second(run_one);
    first.join();
    second.join();
    std::map<std::string, std::string> facts = summary_of(path);
    CHECK(facts["tracks"] == "2");
    CHECK(facts["slice Task-1"] == "4002");  // 2,001 steps on each loop, buffers interleaved
}

TEST_CASE("trace - the buffer stays within its bound on a long run", "[trace]") {
    coring_test::temp_dir dir;
    const std::string path = dir.file("long.json");
    constexpr std::size_t limit = 4096;
    coring::event_loop loop({.trace_file = path.c_str(), .trace_buffer_bytes = limit});
    loop.run_until_complete(many_steps(20'000));
    const coring::detail::trace_writer* writer = coring::detail::scheduler_of(loop).tracer();
    REQUIRE(writer != nullptr);
    CHECK(writer->buffer_high_water() <= limit);
    loop.close();
    struct stat written {};
    REQUIRE(::stat(path.c_str(), &written) == 0);
    CHECK(written.st_size > 1'000'000);  // 20,000 steps of about 100 bytes each reached the file
    std::map<std::string, std::string> facts = summary_of(path);
    CHECK(facts["slice Task-1"] == "20001");
}

TEST_CASE("trace - a trace file that cannot be created: std::system_error with errno and path", "[trace]") {
    const std::string path = "/nonexistent-directory/trace.json";
    int code = 0;
    std::string what;
    try {
        coring::event_loop loop({.trace_file = path.c_str()});
    } catch (const std::system_error& e) {
        code = e.code().value();
        what = e.what();
    }
    CHECK(code == ENOENT);
    CHECK(what.find(path) != std::string::npos);
}

TEST_CASE("trace - CORING_TRACE in the environment traces a loop made without the option", "[trace]") {
    coring_test::temp_dir dir;
    const std::string path = dir.file("from_env.json");
    REQUIRE(::setenv("CORING_TRACE", path.c_str(), 1) == 0);
    try {
        coring::run(many_steps(2));
    } catch (...) {
        ::unsetenv("CORING_TRACE");
        throw;
    }
    ::unsetenv("CORING_TRACE");
    std::map<std::string, std::string> facts = summary_of(path);
    CHECK(facts["slice Task-1"] == "3");
}

TEST_CASE("trace - tools/trace_to_svg.py draws a trace as an SVG timeline", "[trace][svg]") {
    coring_test::temp_dir dir;
    const std::string trace = dir.file("drawn.json");
    const std::string svg = dir.file("drawn.svg");
    run_traced_program(trace);

    const auto [status, said] = run_command("python3 " + tests_dir() + "../tools/trace_to_svg.py " + trace + " " + svg + " 2>&1");
    CHECK(status == 0);
    CHECK(said.find("1 loop(s)") != std::string::npos);
    // The picture is an SVG document (well-formed XML) with a box for the steps of each task.
    const auto [parsed, rects] = run_command("python3 -c \"import sys, xml.etree.ElementTree as E; r = E.parse(sys.argv[1]).getroot(); "
                                             "print(sum(1 for e in r.iter() if e.tag.endswith('rect')))\" " + svg);
    CHECK(parsed == 0);
    CHECK(std::stoi(rects) > 10);
    const auto [read, text] = run_command("cat " + svg);
    CHECK(read == 0);
    for (const char* task : {"producer", "consumer", "reader"}) CHECK(text.find(std::string("<title>") + task + ": ") != std::string::npos);
    CHECK(text.find("<title>read: ") != std::string::npos);  // the kernel read, in grey

    // A window with nothing to draw is an error, not an empty picture.
    const auto [empty_window, message] = run_command("python3 " + tests_dir() + "../tools/trace_to_svg.py " + trace + " " + svg + " --from 5 --to 5 2>&1");
    CHECK(empty_window != 0);
    CHECK(message.find("the window is empty") != std::string::npos);
}
