#pragma once
// The loop's ready queue: an intrusive FIFO of nodes that live inside awaiters (in coroutine
// frames) or inside heap callbacks. Scheduling is two stores and never allocates.
//
// A node is on the queue at most once. The loop runs a batch that it takes off the queue at the
// start of the run phase (asyncio's rule: work scheduled while the batch runs waits for the next
// iteration, so a task that yields with sleep(0) lets the others run).
//
// A node's behaviour is one pointer to a static table of operations, shared by every node of
// its type: `run` (what the loop does with it) and, for the leaf awaiter a task is suspended in,
// `cancel` (what a cancel request does to it; see state_base.hpp).

#include <coring/detail/no_init.hpp>
#include <coring/detail/wait_kind.hpp>

#include <cstddef>
#include <string>
#include <vector>

namespace coring::detail {

class state_base;

/// What a suspended task waits for, for the task-tree dump (debug.hpp).
struct await_description {
    std::string what;                       ///< "sleep until +1.500 s", "read(fd 7)", "gather of 3", ...
    std::vector<const state_base*> awaits;  ///< the tasks it waits on: the edges of the tree
};

struct ready_node {
    /// Run the node, or (when the loop is closed with callbacks still queued, which asyncio
    /// drops) release what it owns without running it.
    enum class action : unsigned char { run, discard };

    struct operations {
        void (*run)(ready_node*, action) noexcept;
        /// Null for nodes that are never a task's cancellation slot.
        void (*cancel)(ready_node*) noexcept = nullptr;
        /// For a node waiting on a task state: run it synchronously when the state finishes
        /// instead of queueing it. Combinators use this for their per-child waiters, so that such
        /// a node is never left on the ready queue and can be unregistered at any time; it must
        /// not resume a frame itself (it wakes its combinator's awaiter instead).
        bool immediate = false;
        /// For a task's cancellation slot: says what the task awaits (null: "unknown").
        void (*describe)(const ready_node*, await_description&) = nullptr;
        /// For a task's cancellation slot: the kind of wait, for the profiler (profile.hpp).
        wait_kind kind = wait_kind::other;
        /// For a slot of kind io: the io_uring opcode of the operation it waits for.
        int (*io_opcode)(const ready_node*) = nullptr;
    };

    explicit ready_node(const operations& ops) noexcept : m_next(nullptr), m_ops(&ops) {}
    /// m_next and m_ops unset: ready_queue::push writes m_next, and the owner writes m_ops
    /// before the node is queued or becomes a cancellation slot (sync_waiter, whose waits
    /// mostly complete without either).
    explicit ready_node(no_init_t) noexcept {}

    void run(action what = action::run) noexcept { m_ops->run(this, what); }
    void cancel() noexcept { m_ops->cancel(this); }

    ready_node* m_next;
    const operations* m_ops;
};

class ready_queue {
public:
    [[nodiscard]] bool empty() const noexcept { return m_head == nullptr; }

    void push(ready_node* node) noexcept {
        node->m_next = nullptr;
        if (m_tail != nullptr)
            m_tail->m_next = node;
        else
            m_head = node;
        m_tail = node;
    }

    [[nodiscard]] ready_node* front() const noexcept { return m_head; }

    ready_node* pop() noexcept {
        ready_node* node = m_head;
        if (node != nullptr) {
            m_head = node->m_next;
            if (m_head == nullptr) m_tail = nullptr;
        }
        return node;
    }

    /// Empties the queue without touching the nodes: the caller took them, through front() and
    /// their links.
    void clear() noexcept { m_head = m_tail = nullptr; }

    /// Moves every queued node into a new queue and leaves this one empty.
    ready_queue take_all() noexcept {
        ready_queue batch;
        batch.m_head = m_head;
        batch.m_tail = m_tail;
        m_head = m_tail = nullptr;
        return batch;
    }

private:
    ready_node* m_head = nullptr;
    ready_node* m_tail = nullptr;
};

}  // namespace coring::detail
