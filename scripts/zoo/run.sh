#!/usr/bin/env bash
# run.sh KIND DURATION: runs one member of the workload zoo under its load
# for DURATION seconds (an integer, or with an s/m suffix), on 127.0.0.1 only,
# then stops everything it started.
#
# Protocol on stdout (everything else goes to stderr or to log files):
#   record LABEL PID    one line per process tree to record (the service;
#                       its load generator as a labelled workload of its own)
#   ready               setup is done: the DURATION starts now
# Setup (initdb, pgbench -i, fio's file layout) happens before "ready" and
# does not count in DURATION. The script exits when DURATION is over (or when
# the service dies, with status 1); its EXIT trap kills every process group it
# started and removes its temporary directory. Each started program is also
# bounded in time by its own option (--timeout, -T, -t, timeout(1)).
#
# `run.sh list` prints the kinds, one per line: KIND LABEL [LOADLABEL].
set -euo pipefail

ZOO_TMPBASE=${ZOO_TMPBASE:-/var/tmp} # on a disk (O_DIRECT works), not tmpfs
# Nice value of every started process (default -10): on a shared machine the
# zoo members then get the CPU they ask for, so the recordings show the
# program's own behaviour rather than the neighbours' load. 0 to disable.
# With autogroup scheduling (/proc/sys/kernel/sched_autogroup_enabled) each
# session competes as one group and a process's nice counts only inside it,
# so each started program, in a session of its own, also sets its session's
# autogroup nice (/proc/self/autogroup) before exec'ing.
ZOO_NICE=${ZOO_NICE:--10}
NICE=(bash -c 'echo "$0" >/proc/self/autogroup 2>/dev/null; exec nice -n "$0" "$@"' "$ZOO_NICE")

# kind -> "label [load-generator label]"
declare -A KINDS=(
	[stress-cpu]="stress-cpu"
	[stress-vm]="stress-vm"
	[stress-cache]="stress-cache"
	[stress-hdd]="stress-hdd"
	[fio-randread]="fio-randread"
	[fio-seqwrite]="fio-seqwrite"
	[sysbench-cpu]="sysbench-cpu"
	[sysbench-memory]="sysbench-memory"
	[pipe-pair]="pipe-pair"
	[iperf3]="iperf3 load-iperf3"
	[memcached]="memcached load-memcaslap"
	[nginx]="nginx load-wrk"
	[postgres]="postgres load-pgbench"
	[go-build]="go-build"
	[idle-sleep]="idle-sleep"
	[idle-nginx]="idle-nginx"
	[idle-memcached]="idle-memcached"
	[phase-cpu-vm]="phase-cpu-vm"
	[phase-idle-cpu]="phase-idle-cpu"
)

usage() {
	echo "usage: run.sh KIND DURATION   (DURATION: seconds, e.g. 60 or 60s or 2m)" >&2
	echo "       run.sh list" >&2
	exit 2
}

if [[ ${1:-} == list ]]; then
	for k in "${!KINDS[@]}"; do echo "$k ${KINDS[$k]}"; done | sort
	exit 0
fi
[[ $# -eq 2 ]] || usage
kind=$1
[[ -n ${KINDS[$kind]:-} ]] || { echo "run.sh: unknown kind $kind (run.sh list)" >&2; exit 2; }
case $2 in
[0-9]*m) dur=$((${2%m} * 60)) ;;
[0-9]*s) dur=${2%s} ;;
*) dur=$2 ;;
esac
[[ $dur =~ ^[0-9]+$ && $dur -gt 0 ]] || { echo "run.sh: DURATION $2: want a positive number of seconds" >&2; exit 2; }
read -r label loadlabel <<<"${KINDS[$kind]} "

tmp=$(mktemp -d "$ZOO_TMPBASE/zoo-$kind.XXXXXX")
chmod 755 "$tmp"
pgroups=()
pgdata=""

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ -n $pgdata && -f $pgdata/postmaster.pid ]]; then
		runuser -u postgres -- "$PGBIN/pg_ctl" -D "$pgdata" -m immediate stop >/dev/null 2>&1 || true
	fi
	local g
	for g in "${pgroups[@]}"; do kill -TERM -- "-$g" 2>/dev/null || true; done
	# give them a moment, then make sure
	for _ in 1 2 3 4 5 6 7 8 9 10; do
		local alive=0
		for g in "${pgroups[@]}"; do kill -0 -- "-$g" 2>/dev/null && alive=1; done
		[[ $alive -eq 0 ]] && break
		sleep 0.2
	done
	for g in "${pgroups[@]}"; do kill -KILL -- "-$g" 2>/dev/null || true; done
	rm -rf "$tmp"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 143' INT TERM

# start LOGNAME CMD...: runs CMD in a new session (its own process group,
# whose id is its pid), output to $tmp/LOGNAME.log; sets $started to its pid.
start() {
	local name=$1
	shift
	setsid "${NICE[@]}" "$@" >"$tmp/$name.log" 2>&1 </dev/null &
	started=$!
	pgroups+=("$started")
}

fail() {
	echo "run.sh $kind: $*" >&2
	local f
	for f in "$tmp"/*.log; do [[ -f $f ]] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }; done
	exit 1
}

# freeport: a TCP port nobody listens on at 127.0.0.1.
freeport() {
	local p
	for _ in $(seq 50); do
		p=$((20000 + RANDOM % 20000))
		if ! ss -Htln "sport = :$p" | grep -q .; then echo "$p"; return; fi
	done
	fail "no free port"
}

# waitport PORT: until something listens on 127.0.0.1:PORT (15 s at most).
waitport() {
	for _ in $(seq 150); do
		ss -Htln "src 127.0.0.1:$1" | grep -q . && return 0
		sleep 0.1
	done
	fail "nothing listens on 127.0.0.1:$1"
}

record() { echo "record $1 $2"; }

# child PID: the process that timeout(1) PID runs (waits up to 5 s for it).
child() {
	local c
	for _ in $(seq 50); do
		c=$(pgrep -o -P "$1" || true)
		[[ -n $c ]] && { echo "$c"; return; }
		sleep 0.1
	done
	fail "pid $1 started no child"
}

nginx_conf() { # PORT
	mkdir -p "$tmp/www"
	head -c 4096 /dev/urandom | base64 >"$tmp/www/index.html"
	cat >"$tmp/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
user root;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $tmp/body;
	proxy_temp_path $tmp/proxy;
	fastcgi_temp_path $tmp/fastcgi;
	uwsgi_temp_path $tmp/uwsgi;
	scgi_temp_path $tmp/scgi;
	server {
		listen 127.0.0.1:$1;
		root $tmp/www;
	}
}
EOF
}

memcached_bin() { echo "memcached -l 127.0.0.1 -p $1 -U 0 -t 2 -m 128 -u nobody"; }

memslap() {
	local b
	for b in memcaslap memaslap; do command -v "$b" >/dev/null && { echo "$b"; return; }; done
	fail "no memcaslap/memaslap (scripts/zoo/install.sh)"
}

# Load-generating services end a little after their load so the last
# recorded interval still sees load; the run ends at DURATION anyway.
svc_dur=$((dur + 10))

case $kind in
stress-cpu)
	start svc stress-ng --cpu 1 --timeout "${dur}s"
	record "$label" "$started" ;;
stress-vm)
	start svc stress-ng --vm 1 --vm-bytes 512M --timeout "${dur}s"
	record "$label" "$started" ;;
stress-cache)
	start svc stress-ng --cache 1 --timeout "${dur}s"
	record "$label" "$started" ;;
stress-hdd)
	start svc stress-ng --hdd 1 --hdd-bytes 256M --temp-path "$tmp" --timeout "${dur}s"
	record "$label" "$started" ;;
fio-randread)
	# lay the file out first (not recorded), then 4 KiB random reads, O_DIRECT.
	dd if=/dev/urandom of="$tmp/fio.dat" bs=1M count=256 conv=fsync status=none || fail "layout"
	start svc fio --name=randread --directory="$tmp" --filename=fio.dat --size=256M \
		--rw=randread --bs=4k --direct=1 --ioengine=psync --iodepth=1 \
		--time_based --runtime="$dur"
	record "$label" "$started" ;;
fio-seqwrite)
	start svc fio --name=seqwrite --directory="$tmp" --filename=fio.dat --size=1G \
		--rw=write --bs=1M --direct=1 --ioengine=psync --iodepth=1 \
		--time_based --runtime="$dur"
	record "$label" "$started" ;;
sysbench-cpu)
	start svc sysbench cpu --threads=1 --time="$dur" run
	record "$label" "$started" ;;
sysbench-memory)
	start svc sysbench memory --threads=1 --memory-block-size=1M --memory-total-size=100000G \
		--time="$dur" run
	record "$label" "$started" ;;
pipe-pair)
	start svc stress-ng --pipe 1 --timeout "${dur}s"
	record "$label" "$started" ;;
iperf3)
	port=$(freeport)
	start svc timeout "$svc_dur" iperf3 -s -B 127.0.0.1 -p "$port"
	svc=$(child "$started")
	waitport "$port"
	# 4 Gbit/s over loopback: network-heavy without eating both CPUs.
	start load iperf3 -c 127.0.0.1 -p "$port" -t "$dur" -b 4G
	record "$label" "$svc"
	record "$loadlabel" "$started" ;;
memcached)
	port=$(freeport)
	start svc timeout "$svc_dur" $(memcached_bin "$port")
	svc=$(child "$started")
	waitport "$port"
	# 8 connections, 1 thread, capped at 20k ops/s: a busy cache, not a saturated one.
	start load "$(memslap)" -s "127.0.0.1:$port" -T 1 -c 8 -P 20k -t "${dur}s"
	record "$label" "$svc"
	record "$loadlabel" "$started" ;;
nginx)
	port=$(freeport)
	nginx_conf "$port"
	start svc timeout "$svc_dur" nginx -c "$tmp/nginx.conf" -p "$tmp"
	svc=$(child "$started")
	waitport "$port"
	start load wrk -t 1 -c 16 -d "${dur}s" "http://127.0.0.1:$port/index.html"
	record "$label" "$svc"
	record "$loadlabel" "$started" ;;
postgres)
	PGBIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
	[[ -x $PGBIN/initdb ]] || fail "no PostgreSQL server (scripts/zoo/install.sh)"
	port=$(freeport)
	pgdata=$tmp/pgdata
	mkdir "$pgdata"
	chown postgres:postgres "$pgdata"
	runuser -u postgres -- "$PGBIN/initdb" -D "$pgdata" -A trust -U postgres >"$tmp/initdb.log" 2>&1 ||
		fail "initdb"
	# pg_ctl starts the postmaster detached (its parent becomes init, its own
	# session); the cleanup stops it with pg_ctl, and kills its group after.
	nice -n "$ZOO_NICE" runuser -u postgres -- "$PGBIN/pg_ctl" -D "$pgdata" -l "$pgdata/server.log" -w -t 30 \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $pgdata -c shared_buffers=64MB" start \
		>"$tmp/pg_ctl.log" 2>&1 || fail "pg_ctl start"
	svc=$(head -n1 "$pgdata/postmaster.pid")
	# the postmaster runs in a session of its own (so do its backends: they
	# keep autogroup nice 0); give the postmaster's the zoo's nice.
	echo "$ZOO_NICE" >"/proc/$svc/autogroup" 2>/dev/null || true
	pgroups+=("$(ps -o pgid= -p "$svc" | tr -d ' ')")
	runuser -u postgres -- pgbench -h 127.0.0.1 -p "$port" -U postgres -i -s 5 postgres \
		>"$tmp/pgbench-init.log" 2>&1 || fail "pgbench -i"
	start load runuser -u postgres -- pgbench -h 127.0.0.1 -p "$port" -U postgres -c 4 -j 2 \
		-T "$dur" postgres
	load=$(child "$started")
	record "$label" "$svc"
	record "$loadlabel" "$load" ;;
go-build)
	command -v go >/dev/null || fail "go not on PATH"
	# Rebuild the standard library from scratch, again and again, each time
	# into an empty GOCACHE, until the time is up.
	start svc timeout "$dur" bash -c '
		while :; do
			rm -rf "$1/gocache"
			GOCACHE="$1/gocache" GOFLAGS= GOTOOLCHAIN=local go build -a std || exit 1
		done' go-build "$tmp"
	svc=$(child "$started")
	record "$label" "$svc" ;;
idle-sleep)
	start svc sleep "$dur"
	record "$label" "$started" ;;
idle-nginx)
	port=$(freeport)
	nginx_conf "$port"
	start svc timeout "$svc_dur" nginx -c "$tmp/nginx.conf" -p "$tmp"
	svc=$(child "$started")
	waitport "$port"
	record "$label" "$svc" ;;
idle-memcached)
	port=$(freeport)
	start svc timeout "$svc_dur" $(memcached_bin "$port")
	svc=$(child "$started")
	waitport "$port"
	record "$label" "$svc" ;;
phase-cpu-vm)
	# one process tree: CPU-bound for the first half, memory streaming after.
	half=$((dur / 2))
	start svc bash -c 'stress-ng --cpu 1 --timeout "$1s"; exec stress-ng --vm 1 --vm-bytes 512M --timeout "$2s"' \
		phase "$half" "$((dur - half))"
	record "$label" "$started" ;;
phase-idle-cpu)
	# one process tree: idle for the first half, CPU-bound after.
	half=$((dur / 2))
	start svc bash -c 'sleep "$1"; exec stress-ng --cpu 1 --timeout "$2s"' \
		phase "$half" "$((dur - half))"
	record "$label" "$started" ;;
esac

[[ -n ${svc:-} ]] || svc=$started
echo ready
end=$((SECONDS + dur))
# Wait until DURATION is over; a service that dies well before is a failure.
while ((SECONDS < end)); do
	sleep 1
	if ! kill -0 "$svc" 2>/dev/null && ((SECONDS < end - 3)); then
		fail "the service (pid $svc) exited after $((dur - (end - SECONDS))) of ${dur} s"
	fi
done
