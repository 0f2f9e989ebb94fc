#pragma once
// error_of(make): the postgres::error that `make()` throws at the call or from the awaitable it
// returns, for the PostgreSQL bridge's unit tests; nullopt if none.
#include <coring/bridge/postgres/error.hpp>
#include <coring/task.hpp>

#include <optional>

namespace coring_test::postgres_bridge {

template <class Make>
coring::task<std::optional<coring::postgres::error>> error_of(Make make) {
    std::optional<coring::postgres::error> failure;
    try {
        (void)co_await make();
    } catch (const coring::postgres::error& e) {
        failure = e;
    }
    co_return failure;
}

}  // namespace coring_test::postgres_bridge
