// Tests of coring/result.hpp.
#include <coring/result.hpp>

#include "support/catch.hpp"

#include <memory>
#include <stdexcept>
#include <string>

TEST_CASE("result - a value", "[result]") {
    coring::result<std::string> r(std::in_place, "value");
    CHECK(r.has_value());
    CHECK(static_cast<bool>(r));
    CHECK(r.value() == "value");
    CHECK(r.error() == nullptr);
    std::string moved = std::move(r).value();
    CHECK(moved == "value");
}

TEST_CASE("result - an exception in place of the value", "[result]") {
    coring::result<int> r(std::make_exception_ptr(std::invalid_argument("bad")));
    CHECK_FALSE(r.has_value());
    CHECK_THROWS_AS(r.value(), std::invalid_argument);
    CHECK(r.error() != nullptr);
}

TEST_CASE("result - result<void> holds success or an exception", "[result]") {
    coring::result<void> ok(std::in_place);
    CHECK(ok.has_value());
    CHECK_NOTHROW(ok.value());
    coring::result<void> failed(std::make_exception_ptr(std::runtime_error("x")));
    CHECK_THROWS_AS(failed.value(), std::runtime_error);
}

TEST_CASE("result - result<T&> refers to the object", "[result]") {
    int target = 1;
    coring::result<int&> ref(std::in_place, target);
    ref.value() = 2;
    CHECK(target == 2);
}

TEST_CASE("result - a move-only value is moved out of an rvalue result", "[result]") {
    coring::result<std::unique_ptr<int>> owner(std::in_place, std::make_unique<int>(3));
    std::unique_ptr<int> p = std::move(owner).value();
    CHECK(*p == 3);
}
