#pragma once
// The connection string of coring::postgres::connect(): its options parsed by libpq into
// keyword/value pairs (conninfo_options), and resolve_hosts(), which resolves the host names in
// them on the loop's thread pool before libpq sees them (libpq would call a blocking
// getaddrinfo). Apart from connection.hpp because it all happens before a connection exists:
// it concerns only what connect() hands to PQconnectStartParams.

#include <coring/bridge/postgres/error.hpp>
#include <coring/net/address.hpp>
#include <coring/net/resolve.hpp>
#include <coring/task.hpp>

#include <libpq-fe.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>
#include <vector>

namespace coring::postgres::detail {

// The options of a connection string, as keyword/value pairs for PQconnectStartParams.
class conninfo_options {
public:
    explicit conninfo_options(const std::string& conninfo) {
        char* message = nullptr;
        PQconninfoOption* parsed = PQconninfoParse(conninfo.c_str(), &message);
        if (parsed == nullptr) {
            std::string text = message != nullptr ? message : "out of memory";
            if (message != nullptr) PQfreemem(message);
            while (!text.empty() && text.back() == '\n') text.pop_back();
            throw error("08001", "invalid connection string: " + text, "FATAL");
        }
        for (const PQconninfoOption* o = parsed; o->keyword != nullptr; ++o)
            if (o->val != nullptr) set(o->keyword, o->val);
        PQconninfoFree(parsed);
    }

    [[nodiscard]] std::string get(const std::string& key, const char* environment) const {
        for (std::size_t i = 0; i < m_keys.size(); ++i)
            if (m_keys[i] == key) return m_values[i];
        const char* fallback = environment != nullptr ? std::getenv(environment) : nullptr;
        return fallback != nullptr ? fallback : "";
    }
    void set(const std::string& key, std::string value) {
        for (std::size_t i = 0; i < m_keys.size(); ++i)
            if (m_keys[i] == key) {
                m_values[i] = std::move(value);
                return;
            }
        m_keys.push_back(key);
        m_values.push_back(std::move(value));
    }

    // Null-terminated arrays pointing into this object.
    struct arrays {
        std::vector<const char*> keys;
        std::vector<const char*> values;
    };
    [[nodiscard]] arrays view() const {
        arrays a;
        for (std::size_t i = 0; i < m_keys.size(); ++i) {
            a.keys.push_back(m_keys[i].c_str());
            a.values.push_back(m_values[i].c_str());
        }
        a.keys.push_back(nullptr);
        a.values.push_back(nullptr);
        return a;
    }

private:
    std::vector<std::string> m_keys;
    std::vector<std::string> m_values;
};

inline std::vector<std::string> split_list(const std::string& text) {
    std::vector<std::string> items;
    std::size_t start = 0;
    for (;;) {
        const std::size_t comma = text.find(',', start);
        items.push_back(text.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
        if (comma == std::string::npos) return items;
        start = comma + 1;
    }
}

inline std::string join_list(const std::vector<std::string>& items) {
    std::string text;
    for (std::size_t i = 0; i < items.size(); ++i) text += (i == 0 ? "" : ",") + items[i];
    return text;
}

// libpq resolves host names with a blocking getaddrinfo inside PQconnectPoll. Resolve them
// first with coring::resolve (on the loop's thread pool) and hand libpq the addresses as
// hostaddr, one host entry per address so that libpq still tries each in turn; host stays the
// name (for SSL's host name check and for error messages).
inline task<> resolve_hosts(conninfo_options& options) {
    const std::string host_list = options.get("host", "PGHOST");
    if (host_list.empty() || !options.get("hostaddr", "PGHOSTADDR").empty()) co_return;
    const std::vector<std::string> hosts = split_list(host_list);
    const std::vector<std::string> ports = split_list(options.get("port", "PGPORT"));
    const bool port_per_host = ports.size() == hosts.size() && hosts.size() > 1;
    const auto is_name = [](const std::string& h) { return !h.empty() && h[0] != '/' && h[0] != '@' && !address::try_parse(h, 0); };
    bool any_name = false;
    for (const std::string& h : hosts) any_name = any_name || is_name(h);
    if (!any_name) co_return;

    std::vector<std::string> new_hosts, new_addresses, new_ports;
    std::string failure;
    for (std::size_t i = 0; i < hosts.size(); ++i) {
        const std::string& h = hosts[i];
        const std::string port = port_per_host ? ports[i] : std::string();
        if (!is_name(h)) {
            new_hosts.push_back(h);
            new_addresses.push_back(h.empty() || h[0] == '/' || h[0] == '@' ? std::string() : h);
            new_ports.push_back(port);
            continue;
        }
        std::vector<address> found;
        try {
            found = co_await resolve(h, std::uint16_t{0});
        } catch (const std::exception& e) {
            failure = "could not translate host name \"" + h + "\" to address: " + e.what();
        }
        std::vector<std::string> seen;
        for (const address& a : found) {
            std::string ip = a.host();
            bool repeated = false;
            for (const std::string& s : seen) repeated = repeated || s == ip;
            if (repeated) continue;
            seen.push_back(ip);
            new_hosts.push_back(h);
            new_addresses.push_back(std::move(ip));
            new_ports.push_back(port);
        }
    }
    if (new_hosts.empty()) throw error("08001", failure, "FATAL");
    options.set("host", join_list(new_hosts));
    options.set("hostaddr", join_list(new_addresses));
    if (port_per_host) options.set("port", join_list(new_ports));
}

}  // namespace coring::postgres::detail
