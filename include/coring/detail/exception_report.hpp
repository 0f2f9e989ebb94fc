#pragma once
// How coring words an error report: the exception's demangled type and message, and the default
// exception handler's text on stderr (event_loop::default_exception_handler).

#include <coring/errors.hpp>

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <typeinfo>

namespace coring::detail {

/// "std::runtime_error: boom" for an exception_ptr, for reports.
inline std::string describe_exception(const std::exception_ptr& error) {
    if (!error) return "(none)";
    auto demangled = [](const std::type_info& type) {
        int status = 0;
        std::unique_ptr<char, void (*)(void*)> name(abi::__cxa_demangle(type.name(), nullptr, nullptr, &status), std::free);
        return status == 0 && name ? std::string(name.get()) : std::string(type.name());
    };
    try {
        std::rethrow_exception(error);
    } catch (const cancelled_error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return demangled(typeid(e)) + ": " + e.what();
    } catch (...) {
        const std::type_info* type = abi::__cxa_current_exception_type();
        return type ? demangled(*type) : std::string("unknown exception");
    }
}

/// Prints a report to stderr: the message, the task and where it was created, the exception.
inline void print_report(const exception_context& context) noexcept {
    try {
        std::string text = "coring: " + context.message + "\n";
        if (!context.task_name.empty()) {
            text += "  task: " + context.task_name;
            if (context.task_site.line() != 0)
                text += std::string(" (created at ") + context.task_site.file_name() + ":" + std::to_string(context.task_site.line()) + ")";
            text += "\n";
        }
        if (context.exception) text += "  exception: " + describe_exception(context.exception) + "\n";
        std::fputs(text.c_str(), stderr);
    } catch (...) {
        std::fputs("coring: an error was reported but could not be formatted\n", stderr);
    }
}

}  // namespace coring::detail
