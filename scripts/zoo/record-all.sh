#!/usr/bin/env bash
# record-all.sh OUTDIR: records every member of the workload zoo twice (run A
# and run B, minutes apart) with `sculpt record`, at 1 s and at 500 ms, into
#   OUTDIR/train/KIND-A[-500ms].trace.gz     run A of the known kinds
#   OUTDIR/heldout/KIND-B[-500ms].trace.gz   run B of the known kinds (never trained on)
#   OUTDIR/unseen/KIND-{A,B}[-500ms].trace.gz kinds never trained on (novelty)
#   OUTDIR/phase/KIND-{A,B}[-500ms].trace.gz  phase-changing programs
# and appends one line per trace to OUTDIR/recordings.tsv.
#
# Members run in waves: the kinds of a wave run at the same time (chosen so
# that together they need about 2 CPUs), each wave ends before the next one
# starts; all of run A's waves come before run B's.
#
# Environment:
#   ZOO_DURATION  seconds per run (default 60)
#   ZOO_KINDS     space-separated kinds to record (default: all; for re-recording a few)
#   ZOO_RUNS      runs to record (default "A B"; B is the held-out run, any
#                 other name, e.g. C, is more training data for the known kinds)
#   ZOO_500MS     1 (default) also records every run at 500 ms; 0 does not
#   SCULPT        the sculpt binary to use (default: build bin/sculpt)
#   ZOO_LOGDIR    where the run and record logs go (default: a new temp dir)
#   ZOO_NICE      nice value of the zoo and of the recorder (default -10; see run.sh)
# Needs root (scripts/zoo/install.sh first).
set -euo pipefail

[[ $# -eq 1 ]] || { echo "usage: record-all.sh OUTDIR" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
mkdir -p "$1"
out=$(cd "$1" && pwd)
dur=${ZOO_DURATION:-60}
runs=${ZOO_RUNS:-A B}
rec500=${ZOO_500MS:-1}
logdir=${ZOO_LOGDIR:-$(mktemp -d /tmp/zoo-logs.XXXXXX)}
mkdir -p "$logdir" "$out/train" "$out/heldout" "$out/unseen" "$out/phase"

# Kinds never trained on: their traces test novelty.
UNSEEN=" postgres iperf3 go-build "
PHASE=" phase-cpu-vm phase-idle-cpu "

# The waves: kinds that run together. Idle and I/O-bound members ride along
# with the CPU-bound ones; the multi-process servers and the Go build get a
# wave of their own (with idle company at most).
WAVES=(
	"stress-cpu stress-vm idle-sleep"
	"stress-cache sysbench-cpu idle-nginx"
	"sysbench-memory fio-randread idle-memcached"
	"pipe-pair fio-seqwrite"
	"stress-hdd phase-idle-cpu"
	"phase-cpu-vm iperf3"
	"memcached"
	"nginx"
	"postgres"
	"go-build"
)

if [[ -z ${SCULPT:-} ]]; then
	echo "record-all: building bin/sculpt" >&2
	(cd "$repo" && CGO_ENABLED=0 go build -o bin/sculpt ./cmd/sculpt)
	SCULPT=$repo/bin/sculpt
fi
[[ -x $SCULPT ]] || { echo "record-all: $SCULPT is not executable" >&2; exit 1; }

# The recorder runs at the zoo's priority too, in a session (autogroup) of
# its own, so its ticks stay on time (see ZOO_NICE in run.sh).
ZOO_NICE=${ZOO_NICE:--10}
NICE=(setsid bash -c 'echo "$0" >/proc/self/autogroup 2>/dev/null; exec nice -n "$0" "$@"' "$ZOO_NICE")

# Stopping record-all stops what it started: each run.sh cleans up on TERM,
# each sculpt record writes what it has.
stop_children() {
	trap - EXIT INT TERM
	local p kids
	kids=$(pgrep -P $$ || true)
	for p in $kids; do pkill -TERM -P "$p" 2>/dev/null || true; done # run.sh, sculpt record
	for p in $kids; do kill -TERM "$p" 2>/dev/null || true; done
	wait
}
trap stop_children EXIT
trap 'exit 143' INT TERM

tsv=$out/recordings.tsv
[[ -f $tsv ]] || printf 'file\tkind\tlabels\trun\tsplit\tduration_s\tinterval\tticks\tframes\tbytes\tstart_utc\tloadavg_1m\n' >"$tsv"

split_of() { # KIND RUN
	if [[ $UNSEEN == *" $1 "* ]]; then echo unseen
	elif [[ $PHASE == *" $1 "* ]]; then echo phase
	elif [[ $2 == B ]]; then echo heldout
	else echo train # A, and any extra run (C, D, ...)
	fi
}

# one KIND RUN: runs the member, records it, appends to the TSV.
one() {
	local kind=$1 run=$2 split base rlog pids=() labels=() args=() w l p
	split=$(split_of "$kind" "$run")
	base=$out/$split/$kind-$run
	rlog=$logdir/$kind-$run
	"$here/run.sh" "$kind" "$dur" >"$rlog.run.out" 2>"$rlog.run.err" &
	local rp=$!
	while ! grep -qs '^ready$' "$rlog.run.out"; do
		if ! kill -0 "$rp" 2>/dev/null; then
			echo "record-all: $kind-$run: run.sh failed:" >&2
			cat "$rlog.run.err" >&2
			return 1
		fi
		sleep 0.2
	done
	while read -r w l p; do
		[[ $w == record ]] || continue
		args+=(--pid "$p" --label "$p=$l")
		labels+=("$l")
	done <"$rlog.run.out"
	local start load1 rec=$((dur - 2))
	start=$(date -u +%FT%TZ)
	load1=$(cut -d' ' -f1 /proc/loadavg)
	local recs=()
	"${NICE[@]}" "$SCULPT" record --out "$base.trace.gz" --interval 1s --for "${rec}s" "${args[@]}" \
		>"$rlog.rec1s.log" 2>&1 &
	recs+=($!)
	if [[ $rec500 == 1 ]]; then
		"${NICE[@]}" "$SCULPT" record --out "$base-500ms.trace.gz" --interval 500ms --for "${rec}s" "${args[@]}" \
			>"$rlog.rec500ms.log" 2>&1 &
		recs+=($!)
	fi
	local ok=1 r
	for r in "${recs[@]}"; do wait "$r" || ok=0; done
	wait "$rp" || { echo "record-all: $kind-$run: run.sh: $(tail -n3 "$rlog.run.err")" >&2; ok=0; }
	local iv f log ticks frames bytes
	for iv in 1s 500ms; do
		if [[ $iv == 1s ]]; then f=$base.trace.gz log=$rlog.rec1s.log; else f=$base-500ms.trace.gz log=$rlog.rec500ms.log; fi
		[[ -f $log ]] || continue
		if [[ ! -f $f ]]; then
			echo "record-all: $kind-$run: no $f: $(tail -n3 "$log")" >&2
			ok=0
			continue
		fi
		read -r ticks frames bytes < <(sed -n 's/.*: \([0-9]*\) ticks, \([0-9]*\) frames, \([0-9]*\) bytes.*/\1 \2 \3/p' "$log" | tail -n1)
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "${f#"$out"/}" "$kind" \
			"$(IFS=,; echo "${labels[*]}")" "$run" "$split" "$rec" "$iv" "${ticks:-?}" "${frames:-?}" \
			"${bytes:-?}" "$start" "$load1" >>"$tsv"
	done
	[[ $ok == 1 ]] && echo "record-all: $kind-$run ok ($split, load $load1)" >&2
	[[ $ok == 1 ]]
}

want() { [[ -z ${ZOO_KINDS:-} || " $ZOO_KINDS " == *" $1 "* ]]; }

echo "record-all: ${dur}s per run, runs: $runs, logs in $logdir" >&2
failed=0
for run in $runs; do
	for wave in "${WAVES[@]}"; do
		pids=()
		for kind in $wave; do
			want "$kind" || continue
			one "$kind" "$run" &
			pids+=($!)
		done
		[[ ${#pids[@]} -gt 0 ]] || continue
		echo "record-all: $(date -u +%T) run $run: $wave" >&2
		for p in "${pids[@]}"; do wait "$p" || failed=$((failed + 1)); done
	done
done
du -sh "$out" >&2
if [[ $failed -gt 0 ]]; then
	echo "record-all: $failed recording(s) failed; logs in $logdir" >&2
	exit 1
fi
echo "record-all: done; logs in $logdir" >&2
