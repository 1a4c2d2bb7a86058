#!/usr/bin/env bash
# agent-transfer.sh: does the learning agent's experience with one service
# serve another? (issue 10, "Transfer"). For each round it runs, beside the
# same antagonists (stress-ng --cpu 2 --vm 1), with the same objective:
#   1. memcached under a Python client, cold (a fresh experience file A);
#   2. redis under redis-benchmark, cold (a fresh experience file B);
#   3. redis under redis-benchmark, warm: starting from memcached's file A.
# and prints, per run, the intervals the agent took to settle (its
# converged_after) and the level it settled on. Root; needs memcached,
# redis-server, redis-benchmark and stress-ng (apt-get install memcached
# redis-server stress-ng). Every service listens on 127.0.0.1 only.
#
#   scripts/bench/agent-transfer.sh [SCULPT_BINARY] [ROUNDS] [P99]
set -euo pipefail
sculpt=${1:-bin/sculpt}
rounds=${2:-3}
p99=${3:-200us}
dur=${DURATION:-45}
work=$(mktemp -d /tmp/sculpt-transfer.XXXXXX)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT
for p in memcached redis-server redis-benchmark stress-ng python3; do
	command -v "$p" >/dev/null || { echo "agent-transfer: $p missing" >&2; exit 1; }
done

cat > "$work/mcload.py" <<'PY'
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
end = time.time() + float(sys.argv[2])
i = 0
while time.time() < end:
    s.sendall(b"set k%d 0 0 5\r\nhello\r\n" % (i % 1000)); s.recv(64)
    s.sendall(b"get k%d\r\n" % (i % 1000)); s.recv(128)
    i += 1
    if i % 50 == 0:
        time.sleep(0.005)
PY

# run NAME SERVICE_GLOB EXPERIENCE: one apply run of $dur seconds against
# the service already started; prints "NAME converged_after level".
run() {
	local name=$1 glob=$2 exp=$3 svc=$4
	printf 'version: 1\nobjectives:\n  - workload: "%s"\n    p99: %s\n' "$glob" "$p99" > "$work/slo.yaml"
	stress-ng --cpu 2 --vm 1 --vm-bytes 256M --timeout $((dur + 5))s >/dev/null 2>&1 &
	local stress=$!
	sleep 2
	"$sculpt" run --mode apply --interval 1s --for "${dur}s" --config "$work/slo.yaml" --experience "$exp" \
		--journal "$work/journal.json" --json --pid "$svc" --pid "$stress" \
		> "$work/$name.jsonl" 2> "$work/$name.err" || { cat "$work/$name.err" >&2; exit 1; }
	kill "$stress" 2>/dev/null || true
	wait "$stress" 2>/dev/null || true
	python3 - "$name" "$work/$name.jsonl" <<'PY'
import json, sys
name, path = sys.argv[1], sys.argv[2]
conv, level, start, met, judged = 0, None, "", 0, 0
for line in open(path):
    a = json.loads(line).get("agent") or {}
    if a.get("levels"):
        start = a.get("start", start)
        level = a["level"]
        if a.get("converged_after") and not conv:
            conv = a["converged_after"]
        if conv and a.get("objectives"):
            o = a["objectives"][0]
            if o.get("known"):
                judged += 1
                met += o.get("met", False)
print(f"{name}\tconverged_after={conv}\tlevel={level}\tmet={met}/{judged}\tstart={start}")
PY
}

for r in $(seq 1 "$rounds"); do
	rm -f "$work/A.json" "$work/B.json"
	memcached -u root -l 127.0.0.1 -p 11411 -t 2 & mc=$!
	sleep 1
	python3 "$work/mcload.py" 11411 $((dur + 5)) &
	run "round$r-memcached-cold" "memcached*" "$work/A.json" "$mc"
	kill "$mc"; wait "$mc" 2>/dev/null || true

	redis-server --port 6411 --bind 127.0.0.1 --save '' --appendonly no >/dev/null & rd=$!
	sleep 1
	redis-benchmark -p 6411 -c 4 -n 100000000 -t get,set -q >/dev/null 2>&1 & rb=$!
	run "round$r-redis-cold" "redis-server*" "$work/B.json" "$rd"
	run "round$r-redis-warm" "redis-server*" "$work/A.json" "$rd"
	kill "$rb" "$rd"; wait "$rd" 2>/dev/null || true
done
