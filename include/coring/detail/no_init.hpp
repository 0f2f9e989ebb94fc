#pragma once
// no_init: the tag of constructors that leave some members unset, for objects built on a hot
// path that most often never needs them. An awaiter that usually completes without suspending
// (a queue get with an item there, an uncontended lock) sets its list links, task and frame
// only when it does suspend; until then its phase says that they are not to be read.

namespace coring::detail {

struct no_init_t {
    explicit no_init_t() = default;
};
inline constexpr no_init_t no_init{};

}  // namespace coring::detail
