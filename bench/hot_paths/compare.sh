#!/usr/bin/env bash
# Instructions per iteration of the loop's hot paths (hot_paths.cpp), at a base revision and in
# the working tree, counted by callgrind: what a change to the centre adds to every step when
# its feature is off. Each path runs N and 2N times; the difference of the two counts over N
# is the cost of one iteration, free of start-up and shut-down. Both builds are this file's
# hot_paths.cpp compiled the same way (g++ -O2), against each revision's include/.
#
#   bench/hot_paths/compare.sh BASE_REVISION [N]     (N: iterations, default 100000)
#
# Exits 77 (skipped) without valgrind.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
base=${1:?usage: compare.sh BASE_REVISION [N]}
n=${2:-100000}
command -v valgrind >/dev/null || { echo "compare.sh: valgrind is not installed: skipped" >&2; exit 77; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/base"
git -C "$root" archive "$base" include | tar -x -C "$work/base"
libs=$(pkg-config --libs liburing 2>/dev/null || echo -luring)
for side in base head; do
    include=$([[ $side == base ]] && echo "$work/base/include" || echo "$root/include")
    # shellcheck disable=SC2086 # $libs is a list of flags
    g++ -std=c++20 -O2 -I"$include" "$here/hot_paths.cpp" -o "$work/hot_paths_$side" $libs -lpthread
done

# instructions BINARY PATH COUNT: the instructions callgrind counted for one whole run.
instructions() {
    valgrind --tool=callgrind --callgrind-out-file=/dev/null "$1" "$2" "$3" 2>&1 >/dev/null |
        awk '/Collected :/ { print $4 }'
}
per_iteration() {
    local once twice
    once=$(instructions "$1" "$2" "$n")
    twice=$(instructions "$1" "$2" $((2 * n)))
    echo $(((twice - once) / n))
}

printf '%-20s %12s %12s %8s\n' path "base $base" "working tree" change
for path in $("$work/hot_paths_head" --list); do
    b=$(per_iteration "$work/hot_paths_base" "$path")
    h=$(per_iteration "$work/hot_paths_head" "$path")
    printf '%-20s %12d %12d %+7d\n' "$path" "$b" "$h" $((h - b))
done
