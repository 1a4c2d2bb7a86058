#!/usr/bin/env bash
# io-colocation.sh: a random-read service beside a bulk writer (issue 12,
# "I/O, measured here"). Per run, each case for DURATION seconds:
#   alone        the reader only: fio randread 4 KiB, O_DIRECT, queue depth 1,
#                paced at 200 IOPS (a latency-bound reader, not a throughput one);
#   default      beside the writer: fio sequential write 1 MiB, O_DIRECT, queue
#                depth 8, unbounded (a bulk writer);
#   cap=N        the writer in a blkio cgroup capped at N MB/s (the static grid,
#                the cgroup written directly: the oracle's search);
#   sculpt       sculpt run --mode apply --agent none on the writer's process
#                tree with a rule that caps bulk writers (RULE_MBPS MB/s): what
#                sculpt applies, journals and reverts.
# and prints, per case, the reader's p50/p99/p99.9 completion latency and the
# writer's MB/s. O_DIRECT because cgroup v1's throttle caps only direct I/O
# (buffered writes are charged to the root cgroup at writeback). Root; needs
# fio (apt-get install fio). Files live in $IOB_DIR (default /var/tmp/sculpt-iob,
# 3 GiB), on the disk under test.
#
#   scripts/bench/io-colocation.sh [SCULPT_BINARY] [RUNS]
set -euo pipefail
sculpt=${1:-bin/sculpt}
runs=${2:-5}
dur=${DURATION:-15}
caps=${CAPS:-"400 200 100 50"}
rule_mbps=${RULE_MBPS:-100}
dir=${IOB_DIR:-/var/tmp/sculpt-iob}
blkio=/sys/fs/cgroup/blkio
command -v fio >/dev/null || { echo "io-colocation: fio missing (apt-get install fio)" >&2; exit 1; }
[ -w "$blkio/blkio.throttle.write_bps_device" ] || { echo "io-colocation: needs root and cgroup v1 blkio throttling at $blkio" >&2; exit 1; }
mkdir -p "$dir"
work=$(mktemp -d /tmp/sculpt-iob.XXXXXX)
cg=$blkio/sculpt-bench-writer
cleanup() {
	pkill -P $$ 2>/dev/null || true
	[ -d "$cg" ] && { cat "$cg/cgroup.procs" 2>/dev/null | while read -r p; do echo "$p" > "$blkio/cgroup.procs" 2>/dev/null || true; done; rmdir "$cg" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT

# The disk under test and a reader's file, written once.
dev=$(stat -c '%d' "$dir")
dev="$((dev >> 8)):$((dev & 255))"
[ -e "/sys/dev/block/$dev/partition" ] && dev=$(cat "/sys/dev/block/$dev/../dev")
[ -f "$dir/read.dat" ] || fio --name=prep --filename="$dir/read.dat" --size=1G --rw=write --bs=1M --direct=1 >/dev/null
echo "# disk $dev ($(basename "$(readlink -f "/sys/dev/block/$dev")"), scheduler $(cat "/sys/dev/block/$dev/queue/scheduler")); $runs runs of ${dur}s per case"

reader() { # prints "p50_us p99_us p999_us iops"
	fio --name=reader --filename="$dir/read.dat" --size=1G --rw=randread --bs=4k --direct=1 --iodepth=1 \
		--rate_iops=200 --time_based --runtime="$dur" --output-format=json 2>/dev/null |
		python3 -c 'import json,sys; j=json.load(sys.stdin)["jobs"][0]["read"]; p=j["clat_ns"]["percentile"]; print("%.0f %.0f %.0f %.0f" % (p["50.000000"]/1e3, p["99.000000"]/1e3, p["99.900000"]/1e3, j["iops"]))'
}
writer_cmd() {
	echo "fio --name=writer --filename=$dir/write.dat --size=2G --rw=write --bs=1M --direct=1 --iodepth=8 --ioengine=libaio --time_based --runtime=$((dur + 8))"
}
# written PID: bytes PID and its children (fio's job processes) have
# written so far, at the storage layer.
written() {
	local sum=0 p b
	for p in "$1" $(cat /proc/"$1"/task/*/children 2>/dev/null); do
		b=$(awk '/^write_bytes/{print $2}' "/proc/$p/io" 2>/dev/null)
		sum=$((sum + ${b:-0}))
	done
	echo "$sum"
}

cat > "$work/rules.yaml" <<EOF
version: 1
rules:
  - name: bulk-writer
    description: a bulk writer (many MB/s of writes) gives the disk's queue back to readers
    when: has(genes.io_write_bps) && genes.io_write_bps > 50e6
    then: {sched: batch, io_write_mbps: $rule_mbps}
EOF

printf 'run\tcase\tp50_us\tp99_us\tp999_us\treader_iops\twriter_mbps_meanwhile\n'
for run in $(seq 1 "$runs"); do
	printf '%s\talone\t%s\t-\n' "$run" "$(reader | tr ' ' '\t')"
	for c in default $caps sculpt; do
		mkdir -p "$cg"
		case $c in
		default | sculpt) echo "$dev 0" > "$cg/blkio.throttle.write_bps_device" ;;
		*) echo "$dev $((c * 1000000))" > "$cg/blkio.throttle.write_bps_device" ;;
		esac
		if [ "$c" = sculpt ]; then
			rmdir "$cg"
			setsid sh -c "exec $(writer_cmd)" > /dev/null 2>&1 &
		else
			setsid sh -c "echo \$\$ > $cg/cgroup.procs; exec $(writer_cmd)" > /dev/null 2>&1 &
		fi
		wpid=$!
		sleep 2 # fio lays out its file and forks its job
		if [ "$c" = sculpt ]; then
			"$sculpt" run --mode apply --agent none --interval 1s --for $((dur + 5))s --pid "$wpid" \
				--rules "$work/rules.yaml" --journal "$work/journal.json" --listen none > "$work/sculpt.log" 2>&1 &
			spid=$!
			sleep 3 # the rule needs an interval of the writer's genes; the cap comes with it
		fi
		w0=$(written "$wpid") t0=$(date +%s.%N)
		r=$(reader)
		w1=$(written "$wpid") t1=$(date +%s.%N)
		wait "$wpid" || true
		if [ "$c" = sculpt ]; then
			wait "$spid" || { echo "sculpt failed:" >&2; cat "$work/sculpt.log" >&2; exit 1; }
			grep -q "applied: cap block I/O" "$work/sculpt.log" || { echo "sculpt applied no cap:" >&2; cat "$work/sculpt.log" >&2; }
		fi
		name=$c
		case $c in [0-9]*) name="cap=$c" ;; esac
		[ "$c" = sculpt ] && name="sculpt(rule ${rule_mbps})"
		printf '%s\t%s\t%s\t%s\n' "$run" "$name" "$(echo "$r" | tr ' ' '\t')" "$(python3 -c "import sys; print('%.0f' % ((int(sys.argv[2])-int(sys.argv[1]))/1e6/(float(sys.argv[4])-float(sys.argv[3]))))" "$w0" "$w1" "$t0" "$t1")"
		[ -d "$cg" ] && rmdir "$cg"
	done
done
