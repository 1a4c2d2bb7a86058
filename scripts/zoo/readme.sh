#!/usr/bin/env bash
# readme.sh DIR: writes DIR/README.md, the list of the zoo's traces in DIR,
# from DIR/recordings.tsv (written by record-all.sh; for a file recorded more
# than once, the last line counts) and the files present.
set -euo pipefail
[[ $# -eq 1 ]] || { echo "usage: readme.sh DIR" >&2; exit 2; }
dir=$1
tsv=$dir/recordings.tsv
[[ -f $tsv ]] || { echo "readme.sh: no $tsv" >&2; exit 1; }

{
	cat <<'EOF'
# Zoo traces

Telemetry traces of the workload zoo (docs/zoo.md), recorded on this repo's 2-vCPU build
machine with `scripts/zoo/record-all.sh testdata/traces` (format: docs/trace-format.md,
gzip'd). Each file holds the frames of one run of one zoo member and, where it has one, of its
load generator (a second labelled workload). Regenerate this list with
`scripts/zoo/readme.sh testdata/traces`.

Splits:
- **train**: runs A and C of the known kinds: what `make model` trains on (the 1 s files,
  `train/*-[A-Z].trace.gz`).
- **held-out run**: run B of the same known kinds, never trained on: top-1 accuracy and
  same-program similarity across runs.
- **unseen kind**: postgres, iperf3 and go-build (runs A and B, with their load generators):
  kinds absent from training, for novelty.
- **phase**: programs that change phase half-way (phase-cpu-vm: CPU then memory streaming;
  phase-idle-cpu: idle then CPU), for phase-change detection; never trained on.

`duration` is the recorded span in seconds, `load` the 1-minute load average of the machine
when the run started (other engineers' builds and tests ran at the same time; the zoo ran at
nice -10, see docs/zoo.md).

| file | kind | labels | run | split | duration s | interval | ticks | frames | bytes | load |
| --- | --- | --- | --- | --- | ---: | --- | ---: | ---: | ---: | ---: |
EOF
	# last line per file wins; only files that exist; sorted by split order then name
	awk -F'\t' 'NR > 1 { row[$1] = $0 } END { for (f in row) print row[f] }' "$tsv" |
		while IFS=$'\t' read -r file kind labels run split dur iv ticks frames bytes start load; do
			[[ -f $dir/$file ]] || continue
			case $split in
			train) order=1 name="train" ;;
			heldout) order=2 name="held-out run" ;;
			unseen) order=3 name="unseen kind" ;;
			phase) order=4 name="phase" ;;
			*) order=5 name=$split ;;
			esac
			printf '%s\t%s\t| `%s` | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
				"$order" "$file" "$file" "$kind" "${labels//,/, }" "$run" "$name" "$dur" "$iv" \
				"$ticks" "$frames" "$bytes" "$load"
		done | sort -t$'\t' -k1,1n -k2,2 | cut -f3
	echo
	n=$(find "$dir" -name '*.trace.gz' | wc -l)
	total=$(find "$dir" -name '*.trace.gz' -printf '%s\n' | awk '{ s += $1 } END { printf "%.2f", s / 1048576 }')
	echo "$n trace files, $total MiB in all."
} >"$dir/README.md"
echo "readme.sh: wrote $dir/README.md" >&2
