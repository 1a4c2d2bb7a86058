#!/usr/bin/env bash
# install.sh installs the programs of the workload zoo (Debian 12, as root):
# stress-ng, fio, sysbench, iperf3, memcached + memcslap (libmemcached-tools),
# nginx + wrk, PostgreSQL (server, initdb, pgbench). Idempotent: it runs
# `apt-get update` once and installs only the packages that are missing.
# The system services the packages start (memcached, nginx, postgresql) are
# stopped: the zoo runs its own instances on 127.0.0.1 (scripts/zoo/run.sh).
set -euo pipefail

if [[ $(id -u) -ne 0 ]]; then
	echo "install.sh: run as root (apt-get install)" >&2
	exit 1
fi

# package -> a file it installs (present = installed).
declare -A want=(
	[stress-ng]=/usr/bin/stress-ng
	[fio]=/usr/bin/fio
	[sysbench]=/usr/bin/sysbench
	[iperf3]=/usr/bin/iperf3
	[memcached]=/usr/bin/memcached
	[libmemcached-tools]=/usr/bin/memcstat
	[nginx]=/usr/sbin/nginx
	[wrk]=/usr/bin/wrk
	[postgresql]=/usr/share/postgresql-common/supported_versions
	[postgresql-contrib]=/usr/share/doc/postgresql-contrib
)
missing=()
for pkg in "${!want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'ok installed'; then
		missing+=("$pkg")
	fi
done

if [[ ${#missing[@]} -gt 0 ]]; then
	echo "install.sh: installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# iperf3 asks (debconf) whether to start a daemon: answer no.
	echo 'iperf3 iperf3/start_daemon boolean false' | debconf-set-selections 2>/dev/null || true
	apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# The zoo starts its own servers; stop the packaged ones so they hold no port or CPU.
for svc in memcached nginx postgresql iperf3; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
		systemctl disable --now "$svc" >/dev/null 2>&1 || true
	elif command -v service >/dev/null 2>&1; then
		service "$svc" stop >/dev/null 2>&1 || true
	fi
done

# Check that every binary the zoo calls is there.
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1)
fail=0
for b in stress-ng fio sysbench iperf3 memcached nginx wrk "$pgbin/initdb" "$pgbin/pg_ctl" "$pgbin/postgres" pgbench; do
	if [[ $b == /* ]]; then
		[[ -x $b ]] || { echo "install.sh: missing $b" >&2; fail=1; }
	else
		command -v "$b" >/dev/null || { echo "install.sh: missing $b" >&2; fail=1; }
	fi
done
{ command -v memcaslap >/dev/null || command -v memaslap >/dev/null || command -v memcslap >/dev/null; } || { echo "install.sh: missing memcaslap/memaslap/memcslap" >&2; fail=1; }
command -v go >/dev/null || echo "install.sh: note: go not on PATH (kind go-build needs it)" >&2
[[ $fail -eq 0 ]] || exit 1
echo "install.sh: ok"
