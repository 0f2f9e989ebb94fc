#pragma once
// The live task tree, as dump_tasks prints it (python -m asyncio pstree, for coring):
//
//   Task-1 (awaiting task_group.join of 2) created at app.cpp:61
//   ├── Task-2 "fetch" (awaiting gather of 2) created at app.cpp:40
//   │   ├── Task-4 (awaiting sleep until +0.500 s) created at gather.hpp:297
//   │   └── Task-5 (awaiting read(fd 7)) created at gather.hpp:297
//   └── Task-3 (pending) created at app.cpp:41
//
// A task's children are the tasks its current leaf awaiter waits on (an awaited handle, the
// children of a gather or a task_group, ...). Tasks nobody waits on are roots, oldest first;
// tasks in a waiting cycle (a deadlock) follow, as further roots.

#include <coring/detail/ready_queue.hpp>
#include <coring/detail/scheduler.hpp>
#include <coring/detail/state_base.hpp>

#include <algorithm>
#include <map>
#include <ostream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace coring::detail {

/// One unfinished task, as the dump shows it.
struct task_snapshot {
    const state_base* state = nullptr;
    std::uint64_t id = 0;
    std::string name;    ///< the custom name, or empty
    std::string status;  ///< "pending", "running", "awaiting <what>", "suspended"
    source_location site;
    std::vector<const state_base*> awaits;
};

inline std::vector<task_snapshot> snapshot_tasks(scheduler& loop) {
    std::vector<task_snapshot> tasks;
    const state_base* running = loop.current_task_state();
    loop.for_each_state([&](state_base& s) {
        if (!s.is_task() || s.done()) return;
        task_snapshot t;
        t.state = &s;
        t.id = s.id();
        if (s.has_custom_name()) t.name = s.name();
        t.site = s.creation_site();
        if (s.current_status() == state_base::status::pending) {
            t.status = "pending";
        } else if (&s == running) {
            t.status = "running";
        } else if (const ready_node* leaf = s.suspended_in(); leaf != nullptr && leaf->m_ops->describe != nullptr) {
            await_description d;
            leaf->m_ops->describe(leaf, d);
            t.status = "awaiting " + d.what;
            t.awaits = std::move(d.awaits);
        } else {
            t.status = "suspended";
        }
        tasks.push_back(std::move(t));
    });
    std::sort(tasks.begin(), tasks.end(), [](const task_snapshot& a, const task_snapshot& b) { return a.id < b.id; });
    return tasks;
}

inline std::string describe_site(const source_location& site) {
    if (site.line() == 0) return {};
    std::string file = site.file_name();
    if (auto slash = file.rfind('/'); slash != std::string::npos) file.erase(0, slash + 1);
    return " created at " + file + ":" + std::to_string(site.line());
}

inline std::string describe_task(const task_snapshot& t) {
    std::string line = "Task-" + std::to_string(t.id);
    if (!t.name.empty()) line += " \"" + t.name + "\"";
    return line + " (" + t.status + ")" + describe_site(t.site);
}

inline void print_task_tree(const std::vector<task_snapshot>& tasks, std::ostream& out) {
    std::map<const state_base*, const task_snapshot*> by_state;
    for (const task_snapshot& t : tasks) by_state[t.state] = &t;
    std::set<const state_base*> awaited;
    for (const task_snapshot& t : tasks)
        for (const state_base* child : t.awaits)
            if (by_state.count(child) != 0) awaited.insert(child);

    std::set<const state_base*> on_path;  // a waiting cycle (a deadlock) is printed once
    std::set<const state_base*> printed;
    auto print = [&](auto& self, const task_snapshot& t, const std::string& prefix, const std::string& connector) -> void {
        out << prefix << connector << describe_task(t) << '\n';
        printed.insert(t.state);
        if (!on_path.insert(t.state).second) return;
        std::vector<const task_snapshot*> children;
        for (const state_base* child : t.awaits)
            if (auto it = by_state.find(child); it != by_state.end()) children.push_back(it->second);
        const std::string deeper = prefix + (connector.empty() ? "" : connector == "└── " ? "    " : "│   ");
        for (std::size_t i = 0; i < children.size(); ++i) self(self, *children[i], deeper, i + 1 == children.size() ? "└── " : "├── ");
        on_path.erase(t.state);
    };
    for (const task_snapshot& t : tasks)
        if (awaited.count(t.state) == 0) print(print, t, "", "");
    // Tasks no root leads to are in a waiting cycle (A awaits B, B awaits A: a deadlock) or
    // below one: print each as one more root, oldest first, so that a deadlock shows even when
    // other tasks (a main task, say) are roots.
    for (const task_snapshot& t : tasks)
        if (printed.count(t.state) == 0) print(print, t, "", "");
}

inline std::string format_task_tree(scheduler& loop) {
    std::ostringstream out;
    print_task_tree(snapshot_tasks(loop), out);
    return out.str();
}

}  // namespace coring::detail
