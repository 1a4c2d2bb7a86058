#!/bin/bash
# Records the internal/testload modes into a labelled trace (docs/dna-model.md).
#   internal/dna/models/testload/record.sh OUT DURATION PORT [extra]
# e.g. record.sh testload-1.trace.gz 120s 39011; record.sh testload-3.trace.gz 90s 39013 extra
# (extra adds dd and an idle 8-thread process: kinds absent from runs 1 and 2). Run as root
# from the repository root; it builds bin/sculpt and the cmd/sculpt test binary (which runs
# the testload modes).
set -e
OUT=$1; DUR=$2; PORT=$3; EXTRA=$4
TL=$(mktemp -d)/tl.test
go test -c -o "$TL" ./cmd/sculpt
go build -o bin/sculpt ./cmd/sculpt
set +e
pids=(); labels=()
start() { label=$1; shift; "$@" & pids+=($!); labels+=("$!=$label"); }
start cpu env SCULPT_TESTLOAD=cpu GOMAXPROCS=1 $TL
start mem env SCULPT_TESTLOAD=mem GOMAXPROCS=1 $TL
start disk env SCULPT_TESTLOAD=disk SCULPT_TESTLOAD_DIR=/var/tmp GOMAXPROCS=1 $TL
start sleep env SCULPT_TESTLOAD=sleep $TL
start sockserver env SCULPT_TESTLOAD=sockserver SCULPT_TESTLOAD_ADDR=127.0.0.1:$PORT GOMAXPROCS=1 $TL
sleep 0.3
start sockclient env SCULPT_TESTLOAD=sockclient SCULPT_TESTLOAD_ADDR=127.0.0.1:$PORT GOMAXPROCS=1 $TL
D=$(mktemp -d); mkfifo $D/a $D/b
start pipe bash -c "exec env SCULPT_TESTLOAD=pipe SCULPT_TESTLOAD_FIRST=1 GOMAXPROCS=1 $TL 3<$D/a 4>$D/b"
start pipe bash -c "exec env SCULPT_TESTLOAD=pipe GOMAXPROCS=1 $TL 4>$D/a 3<$D/b"
if [ -n "$EXTRA" ]; then
  start dd-null dd if=/dev/zero of=/dev/null bs=64k status=none
  start threads env SCULPT_TESTLOAD=threads SCULPT_TESTLOAD_THREADS=8 $TL
fi
sleep 1
args=()
for i in "${!pids[@]}"; do args+=(--pid ${pids[$i]} --label ${labels[$i]}); done
bin/sculpt record --out $OUT --for $DUR "${args[@]}"
kill ${pids[@]} 2>/dev/null; wait 2>/dev/null; rm -rf $D
