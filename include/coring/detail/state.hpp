#pragma once
// state<T>: the shared state of a task_handle<T> or future<T> (see state_base.hpp for the parts
// that do not depend on T).

#include <coring/detail/scheduler.hpp>
#include <coring/detail/state_base.hpp>
#include <coring/detail/value_slot.hpp>
#include <coring/errors.hpp>
#include <coring/task.hpp>

#include <coroutine>
#include <exception>
#include <stdexcept>
#include <coring/detail/source_location.hpp>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace coring::detail {

template <class T>
class state final : public state_base {
public:
    /// A future: finished by set_value / set_exception / request_cancel.
    explicit state(scheduler& loop) : state_base(loop, /*is_task=*/false, {}, source_location{}) {}

    /// A task: `body` becomes the root frame of this state's chain.
    state(scheduler& loop, task<T>&& body, std::string_view name, const source_location& site)
        : state_base(loop, /*is_task=*/true, name, site) {
        auto frame = body.release();
        frame.promise().set_root(this);
        m_frame = frame;
    }

    template <class... Args>
    void set_value(Args&&... args) {
        if (done()) throw invalid_state_error("coring: set_result on a future that is already done");
        m_value.emplace(std::forward<Args>(args)...);
        finish(nullptr);
    }

    void set_exception(std::exception_ptr error) {
        if (!error) throw std::invalid_argument("coring: set_exception with an empty exception_ptr");
        if (done()) throw invalid_state_error("coring: set_exception on a future that is already done");
        finish(std::move(error));
    }

    /// The outcome for result() or co_await: rethrows a failure; returns a copy of the value, or
    /// moves it out (once) when T cannot be copied.
    T get_for_caller() {
        rethrow_if_failed();
        if constexpr (std::is_void_v<T>) {
            return;
        } else if constexpr (std::is_reference_v<T> || std::is_copy_constructible_v<T>) {
            return m_value.get();
        } else {
            if (!m_value.has_value())
                throw invalid_state_error("coring: the result of " + name() + " was already moved out (its type cannot be copied, so it can be retrieved once)");
            T value = std::move(m_value.get());
            m_value.reset();
            return value;
        }
    }

    /// For a combinator that owns this task: rethrows a failure, or moves the value out. Only
    /// for object types (child<T>::take copies void and reference results).
    T take_value() {
        static_assert(!std::is_void_v<T> && !std::is_reference_v<T>);
        rethrow_if_failed();
        return std::move(m_value.get());
    }

    void finish_root(std::coroutine_handle<> frame) noexcept override {
        auto typed = std::coroutine_handle<task_promise<T>>::from_address(frame.address());
        task_outcome<T>& outcome = typed.promise().m_outcome;
        std::exception_ptr error;
        if (outcome.has_error()) {
            error = outcome.take_error();
        } else if (m_cancel_requested) {
            // Cancelled while it ran its last step (it cancelled itself, say) and returned
            // without reaching another suspension point: asyncio ends such a task cancelled,
            // and the value is dropped, since cancel() returned true.
            error = std::make_exception_ptr(make_cancelled_error());
        } else if constexpr (std::is_void_v<T>) {
            m_value.emplace();
        } else if constexpr (std::is_reference_v<T>) {
            m_value.emplace(*outcome.value());
        } else {
            try {
                m_value.emplace(std::move(outcome.value()));
            } catch (...) {
                error = std::current_exception();
            }
        }
        typed.destroy();
        finish(std::move(error));
    }

private:
    ~state() override = default;
    value_slot<T> m_value;
};

/// create_task's work: a new task state on `loop`, scheduled to start on the next iteration (or,
/// `eager`, started at once), with one reference for the caller (the loop keeps the one the
/// state was born with).
template <class T>
state<T>* create_task_state(scheduler& loop, task<T> body, std::string_view name, const source_location& site, bool eager = false) {
    loop.check_thread("create_task");
    if (loop.is_closed()) throw std::logic_error("coring: create_task on a closed event loop");
    if (!body.valid() || body.done()) throw invalid_state_error("coring: create_task of an empty task (moved from, or already awaited)");
    auto* s = new state<T>(loop, std::move(body), name, site);
    s->add_ref();
    if (CORING_UNLIKELY(loop.instrumented())) loop.trace_created(*s);
    if (eager)
        loop.run_eagerly(*s);  // it may finish here: the caller's reference keeps it
    else
        loop.schedule(*s);
    return s;
}

}  // namespace coring::detail
