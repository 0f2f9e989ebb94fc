#pragma once
// failure_of(make): what awaiting `make()` threw, or threw at the call, for the Redis bridge's
// unit tests: the kind of exception, a system_error's errno, and the message.
#include <coring/bridge/redis/reply.hpp>
#include <coring/errors.hpp>
#include <coring/task.hpp>

#include <stdexcept>
#include <string>
#include <system_error>

namespace coring_test::redis_bridge {

struct failure {
    std::string kind;  // "system_error", "redis::error", "invalid_argument", "invalid_state_error", "timeout_error", or ""
    int code = 0;      // a system_error's errno
    std::string what;
};

template <class Make>
coring::task<failure> failure_of(Make make) {
    failure f;
    try {
        (void)co_await make();
    } catch (const std::system_error& e) {
        f = failure{"system_error", e.code().value(), e.what()};
    } catch (const coring::redis::error& e) {
        f = failure{"redis::error", 0, e.what()};
    } catch (const std::invalid_argument& e) {
        f = failure{"invalid_argument", 0, e.what()};
    } catch (const coring::invalid_state_error& e) {
        f = failure{"invalid_state_error", 0, e.what()};
    } catch (const coring::timeout_error& e) {
        f = failure{"timeout_error", 0, e.what()};
    }
    co_return f;
}

}  // namespace coring_test::redis_bridge
