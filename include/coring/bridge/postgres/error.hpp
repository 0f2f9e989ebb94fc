#pragma once
// coring::postgres::error: what a failed PostgreSQL command or connection throws (part of
// <coring/bridge/postgres.hpp>, which documents the bridge).
//
//   try {
//       co_await db.execute("INSERT INTO users (name) VALUES ($1)", name);
//   } catch (const coring::postgres::error& e) {
//       if (e.sqlstate() == "23505") ...;            // unique_violation
//       std::cerr << e.what() << "\n";              // "coring::postgres: ERROR 23505: duplicate key ..."
//   }
//
// sqlstate() is the five-character SQLSTATE the server sent (Appendix A of PostgreSQL's manual:
// 42P01 undefined_table, 22012 division_by_zero, 57014 query_canceled, 40001
// serialization_failure, ...). Failures that happen on the client side carry a code of class 08
// (connection exception), as JDBC drivers do, and from_server() is false:
//   08001  connect() failed (refused, authentication, bad conninfo, unknown host);
//   08006  the connection was lost or is broken (the server died, the socket failed);
//   08003  the connection object is empty (moved from, or closed).
// message() is the primary message; detail() and hint() are the server's DETAIL and HINT lines
// (empty when absent); severity() is ERROR, FATAL or PANIC (not localized).
//
// Thread-safety: a plain value, copyable to any thread.

#include <libpq-fe.h>

#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace coring::postgres {

class error : public std::runtime_error {
public:
    error(std::string sqlstate, std::string message, std::string severity = "ERROR", std::string detail = {}, std::string hint = {}, bool from_server = false)
        : std::runtime_error(describe(sqlstate, message, severity, detail, hint)),
          m_sqlstate(std::move(sqlstate)),
          m_message(std::move(message)),
          m_severity(std::move(severity)),
          m_detail(std::move(detail)),
          m_hint(std::move(hint)),
          m_from_server(from_server) {}

    /// The error of a PGRES_FATAL_ERROR result. Without a SQLSTATE from the server (libpq made
    /// the result itself), 08006 if the connection is gone, else the message alone.
    static error from_result(const PGresult* result, const PGconn* conn) {
        const char* code = PQresultErrorField(result, PG_DIAG_SQLSTATE);
        const bool from_server = code != nullptr && *code != '\0';
        std::string sqlstate = from_server ? code : (conn != nullptr && PQstatus(conn) == CONNECTION_BAD ? "08006" : "");
        std::string message = field(result, PG_DIAG_MESSAGE_PRIMARY);
        if (message.empty() || !from_server) message = trim(PQresultErrorMessage(result));
        std::string severity = field(result, PG_DIAG_SEVERITY_NONLOCALIZED);
        if (severity.empty()) severity = field(result, PG_DIAG_SEVERITY);
        if (severity.empty()) severity = "ERROR";
        return error(std::move(sqlstate), std::move(message), std::move(severity), field(result, PG_DIAG_MESSAGE_DETAIL), field(result, PG_DIAG_MESSAGE_HINT), from_server);
    }

    /// The connection's last error (PQerrorMessage) under a client-side SQLSTATE.
    static error from_connection(std::string sqlstate, const PGconn* conn, std::string_view context = {}) {
        std::string message = conn != nullptr ? trim(PQerrorMessage(conn)) : std::string("out of memory");
        if (!context.empty()) message = std::string(context) + (message.empty() ? "" : ": ") + message;
        return error(std::move(sqlstate), std::move(message), "FATAL");
    }

    /// Five characters ("42P01"); empty only for a client-side failure that has no class-08 code.
    [[nodiscard]] const std::string& sqlstate() const noexcept { return m_sqlstate; }
    /// The primary message, without the SQLSTATE, DETAIL or HINT.
    [[nodiscard]] const std::string& message() const noexcept { return m_message; }
    [[nodiscard]] const std::string& severity() const noexcept { return m_severity; }
    [[nodiscard]] const std::string& detail() const noexcept { return m_detail; }
    [[nodiscard]] const std::string& hint() const noexcept { return m_hint; }
    /// True when the server sent this error; false for failures libpq or coring detected.
    [[nodiscard]] bool from_server() const noexcept { return m_from_server; }

private:
    static std::string field(const PGresult* result, int code) {
        const char* text = PQresultErrorField(result, code);
        return text != nullptr ? std::string(text) : std::string();
    }
    static std::string trim(const char* text) {
        std::string s = text != nullptr ? text : "";
        while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
        return s;
    }
    static std::string describe(const std::string& sqlstate, const std::string& message, const std::string& severity, const std::string& detail, const std::string& hint) {
        std::string text = "coring::postgres: " + severity;
        if (!sqlstate.empty()) text += " " + sqlstate;
        text += ": " + message;
        if (!detail.empty()) text += "\nDETAIL: " + detail;
        if (!hint.empty()) text += "\nHINT: " + hint;
        return text;
    }

    std::string m_sqlstate;
    std::string m_message;
    std::string m_severity;
    std::string m_detail;
    std::string m_hint;
    bool m_from_server;
};

}  // namespace coring::postgres
