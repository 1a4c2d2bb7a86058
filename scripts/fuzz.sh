#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx in a _test.go under internal/) for
# FUZZTIME each (default 30s), one at a time, and prints a table of
# executions per target. `make fuzz FUZZTIME=10m` calls it. A crash leaves
# its input under the package's testdata/fuzz/FuzzXxx/ (check it in with the
# fix: `go test` then replays it for ever) and fails the run.
#   scripts/fuzz.sh [PATTERN]   only targets whose name matches PATTERN
set -euo pipefail
cd "$(dirname "$0")/.."

fuzztime=${FUZZTIME:-30s}
pattern=${1:-.}
parallel=${FUZZ_PARALLEL:-1} # fuzzing workers per target (-parallel)
# Minimizing each new input costs execs that are not counted; a short bound
# keeps the time for exploring (a failing input is saved whole if its
# minimization is cut short).
minimizetime=${FUZZMINIMIZETIME:-1s}

targets=$(grep -rlE '^func Fuzz[A-Za-z0-9_]+\(f \*testing\.F\)' --include='*_test.go' internal cmd |
	while read -r file; do
		pkg=./$(dirname "$file")
		grep -oE '^func Fuzz[A-Za-z0-9_]+' "$file" | sed "s|^func |$pkg |"
	done | grep -E "$pattern" | sort)

failed=0
summary=$(mktemp)
trap 'rm -f "$summary"' EXIT
while read -r pkg target; do
	[[ -n $target ]] || continue
	log=$(mktemp)
	printf '=== %s %s (%s)\n' "$pkg" "$target" "$fuzztime"
	if go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime "$minimizetime" -parallel "$parallel" "$pkg" >"$log" 2>&1; then
		result=ok
	else
		result=FAIL
		failed=1
		cat "$log"
	fi
	execs=$(grep -oE 'execs: [0-9]+' "$log" | tail -1 | awk '{print $2}')
	printf '%-34s %-28s %12s  %s\n' "$pkg" "$target" "${execs:-?}" "$result" | tee -a "$summary"
	rm -f "$log"
done <<<"$targets"

printf '\n%-34s %-28s %12s  %s\n' package target executions result
cat "$summary"
exit "$failed"
