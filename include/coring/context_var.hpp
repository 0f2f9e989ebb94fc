#pragma once
// context_var<T> (asyncio's contextvars.ContextVar): a value per task, inherited by the tasks it
// creates, for what would otherwise be threaded through every call (a request id, a deadline,
// a logger).
//
//   coring::context_var<std::string> request_id{"request_id", "-"};
//
//   coring::task<> handle(connection c) {
//       auto token = request_id.set(c.id());        // this task only
//       co_await coring::create_task(audit());       // audit() sees c.id(): a copy of our context
//       log(request_id.get());
//       request_id.reset(token);                     // back to what it was before the set
//   }
//
// Each task runs in a copy of its creator's context, taken when it is created (create_task,
// eager or not, task_group children, the tasks gather and wait_for make), as asyncio's tasks do
// with contextvars.copy_context(): a child sees the values its creator had then, not later
// sets, and nothing a child sets reaches its creator. Callbacks (call_soon, call_later, call_at,
// call_soon_threadsafe, add_done_callback) and to_thread calls run in a copy of their creator's
// context in the same way. A task<T> awaited directly runs in the awaiting task, and so does the
// body of with_task_group and with_timeout (an `async with` block): their sets are the task's.
//
// Outside any task (main before run(), a thread of your own), code reads and writes the thread's
// own context; a loop's main task starts from a copy of it, and it is set aside while the loop
// runs: a callback without a captured context sees an empty one.
//
// Costs: copying a context copies one pointer; get() is a binary search over the variables set
// in the context; set() and reset() build a new map (copy on write), O(variables set). A program
// that never sets a variable pays nothing: tasks then carry no context at all.
//
// Errors, following coring's mapping of asyncio's: get() with no value and no default throws
// std::out_of_range (Python: LookupError); reset() with a token already used throws
// invalid_state_error (RuntimeError); with a token of another variable or made in another
// context (another task, say) std::invalid_argument (ValueError).

#include <coring/detail/context_map.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/errors.hpp>

#include <atomic>
#include <concepts>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <utility>

namespace coring {

namespace detail {
/// A variable's key in a context map: unique in the process, never reused, so that a map
/// entry can never be read as the variable of another type that took a destroyed one's place.
inline std::uint64_t next_context_var_id() noexcept {
    static constinit std::atomic<std::uint64_t> last{0};
    return last.fetch_add(1, std::memory_order_relaxed) + 1;
}
}  // namespace detail

/// A context variable holding a T (any object type; move-only types too, except for
/// get(fallback)). Usually a global or a static member: it only names the value, which lives in
/// contexts. Not copyable or movable (a token refers to it).
template <class T>
class context_var {
    static_assert(std::is_object_v<T> && !std::is_const_v<T> && !std::is_array_v<T>, "coring::context_var<T>: T must be a non-const object type");

public:
    /// Returned by set(), for reset(): asyncio's Token. Move-only; a moved-from token counts as
    /// used. Tokens are plain values, usable and destroyed on any thread.
    class token {
    public:
        token(token&& other) noexcept
            : m_var(other.m_var), m_context(other.m_context), m_previous(std::exchange(other.m_previous, nullptr)), m_used(std::exchange(other.m_used, true)) {}
        token& operator=(token&& other) noexcept {
            token moved(std::move(other));
            std::swap(m_var, moved.m_var);
            std::swap(m_context, moved.m_context);
            std::swap(m_previous, moved.m_previous);
            std::swap(m_used, moved.m_used);
            return *this;
        }
        ~token() {
            if (m_previous != nullptr) m_previous->release();
        }

        /// True once reset() took it (or it was moved from).
        [[nodiscard]] bool used() const noexcept { return m_used; }
        /// The value before the set() that made it (asyncio's Token.old_value), or null if the
        /// variable had none in that context (Token.MISSING). Valid while the token lives.
        [[nodiscard]] const T* old_value() const noexcept {
            return m_previous != nullptr ? &static_cast<const detail::value_box<T>*>(m_previous)->value() : nullptr;
        }

    private:
        token(std::uint64_t var, std::uint64_t context, detail::value_box_base* previous) noexcept
            : m_var(var), m_context(context), m_previous(previous) {
            if (m_previous != nullptr) m_previous->add_ref();
        }
        friend class context_var;

        std::uint64_t m_var;
        std::uint64_t m_context;             // the serial of the context it was made in
        detail::value_box_base* m_previous;  // one reference; null: there was no value
        bool m_used = false;
    };

    /// A variable without a default: get() throws std::out_of_range until it is set.
    explicit context_var(std::string name) : m_name(std::move(name)) {}
    /// A variable whose get() returns `default_value` where it is not set.
    context_var(std::string name, T default_value) : m_name(std::move(name)), m_default(std::in_place, std::move(default_value)) {}

    context_var(const context_var&) = delete;
    context_var& operator=(const context_var&) = delete;

    [[nodiscard]] const std::string& name() const noexcept { return m_name; }

    /// The value in the current context, or the default. Throws std::out_of_range if there is
    /// neither. The reference stays valid until the current context sets or resets this
    /// variable again (and the token of that set is gone) or ends; copy it to keep it longer.
    [[nodiscard]] const T& get() const {
        if (const detail::value_box_base* box = find()) return static_cast<const detail::value_box<T>*>(box)->value();
        if (m_default) return *m_default;
        throw std::out_of_range("coring::context_var '" + m_name + "' has no value in this context and no default");
    }

    /// The value in the current context, or else `fallback` (the variable's default is not
    /// used: asyncio's get(default)).
    [[nodiscard]] T get(T fallback) const
        requires std::copy_constructible<T>
    {
        if (const detail::value_box_base* box = find()) return static_cast<const detail::value_box<T>*>(box)->value();
        return fallback;
    }

    /// True if the current context has a value for this variable (the default does not count).
    [[nodiscard]] bool is_set() const noexcept { return find() != nullptr; }

    /// Sets the value in the current context only: the running task's (not its creator's, not
    /// the tasks it created before), or the callback's, or the thread's outside any task.
    /// Returns the token that reset() takes to restore the value before.
    token set(T value) {
        detail::context_slot& slot = detail::current_context_slot();
        auto* box = new detail::value_box<T>(std::in_place, std::move(value));
        detail::context_map* fresh;
        try {
            fresh = detail::context_map::with(slot.map, m_id, box);
        } catch (...) {
            box->release();
            throw;
        }
        box->release();  // the map holds it
        detail::value_box_base* previous = slot.map != nullptr ? slot.map->find(m_id) : nullptr;
        token made(m_id, 0, previous);  // before replace(): the old map may hold the last reference
        slot.replace(fresh);
        made.m_context = slot.serial;
        return made;
    }

    /// Restores the value the variable had before the set() that made `t` (or no value).
    /// Throws invalid_state_error if `t` was used already, std::invalid_argument if it belongs
    /// to another variable or was made in another context (another task, callback or thread).
    void reset(token& t) {
        if (t.m_used) throw invalid_state_error("coring::context_var '" + m_name + "': reset() with a token that was used already");
        if (t.m_var != m_id) throw std::invalid_argument("coring::context_var '" + m_name + "': reset() with a token of another context_var");
        detail::context_slot& slot = detail::current_context_slot();
        if (slot.serial != t.m_context || slot.serial == 0)
            throw std::invalid_argument("coring::context_var '" + m_name + "': reset() with a token made in another context");
        if (t.m_previous != nullptr)
            slot.replace(detail::context_map::with(slot.map, m_id, t.m_previous));
        else if (slot.map != nullptr && slot.map->find(m_id) != nullptr)
            slot.replace(detail::context_map::without(slot.map, m_id));
        t.m_used = true;
    }
    void reset(token&& t) { reset(t); }

private:
    [[nodiscard]] const detail::value_box_base* find() const noexcept {
        const detail::context_map* map = detail::current_context();
        return map != nullptr ? map->find(m_id) : nullptr;
    }

    std::uint64_t m_id = detail::next_context_var_id();
    std::string m_name;
    std::optional<T> m_default;
};

}  // namespace coring
