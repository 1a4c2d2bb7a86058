#!/bin/sh
# bench-deps.sh installs the third-party programs the benchmarks drive
# (Debian/Ubuntu, as root): memcached, nginx, wrk and stress-ng, and
# libmemcached-tools (memcstat, memcaslap) for poking memcached by hand.
# "sculpt bench colocation" drives memcached with its own open-loop client:
# Debian 12's memcaslap (libmemcached-tools 1.1.4) is closed-loop, ignores
# --tps and reports latency only as a power-of-two histogram.
# The services the benchmarks start listen on 127.0.0.1 with their own
# configs; the system services the packages install are stopped and disabled
# so that they hold no ports or CPU.
set -eu

if [ "$(id -u)" -ne 0 ]; then
	echo "bench-deps.sh: run as root (apt-get install)" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends memcached libmemcached-tools nginx wrk stress-ng

# The packages start their system services; the benchmark runs its own.
for svc in memcached nginx; do
	if command -v systemctl >/dev/null 2>&1 && systemctl is-system-running >/dev/null 2>&1; then
		systemctl disable --now "$svc" >/dev/null 2>&1 || true
	elif command -v service >/dev/null 2>&1; then
		service "$svc" stop >/dev/null 2>&1 || true
	fi
done

for p in memcached nginx wrk stress-ng; do
	command -v "$p" >/dev/null || { echo "bench-deps.sh: $p not found after install" >&2; exit 1; }
done
echo "bench-deps.sh: ok"
