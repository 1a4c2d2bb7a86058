#!/bin/sh
# snapshot.sh copies the sysfs and procfs files that topology.Discover reads
# into OUT, which then serves as both --sys-root and --proc-root:
#
#   sh snapshot.sh OUT [SYS] [PROC]      # SYS defaults to /sys, PROC to /proc
#
# Regular files are copied by content under their physical path (symlinks
# resolved); the symlinks Discover follows (bus/pci/devices/*, class/net/*,
# class/net/*/device, the driver links, cpuN/nodeM) are re-created as
# symlinks with the same relative target. Keep the list in step with the
# readers in ../cpu.go, ../node.go, ../pci.go, ../net.go, ../interrupts.go.
set -eu

out=${1:?usage: snapshot.sh OUT [SYS] [PROC]}
sys=${2:-/sys}
proc=${3:-/proc}
mkdir -p "$out"
out=$(cd "$out" && pwd)

# dest PATH: where PATH (under $sys or $proc, symlinks resolved) goes in $out.
dest() {
	_real=$(realpath "$1")
	case $_real in
	"$sys"/*) echo "$out/${_real#"$sys"/}" ;;
	"$proc"/*) echo "$out/${_real#"$proc"/}" ;;
	*) echo "snapshot.sh: $1 resolves outside $sys and $proc: $_real" >&2; exit 1 ;;
	esac
}

# The helpers' variables start with _ (sh has no locals) so that they do
# not clobber the loops' variables.

# file PATH: copy a regular file if it exists and can be read.
file() {
	[ -f "$1" ] || return 0
	_to=$(dest "$1")
	mkdir -p "$(dirname "$_to")"
	if cat "$1" >"$_to.tmp" 2>/dev/null; then mv "$_to.tmp" "$_to"; else rm -f "$_to.tmp"; fi
}

# link PATH: re-create the symlink PATH (its parent resolved) with its target.
link() {
	[ -L "$1" ] || return 0
	_parent=$(dest "$(dirname "$1")")
	mkdir -p "$_parent"
	ln -sfn "$(readlink "$1")" "$_parent/$(basename "$1")"
}

cpu=$sys/devices/system/cpu
file "$cpu/online"
for c in "$cpu"/cpu[0-9]*; do
	for f in core_id physical_package_id thread_siblings_list; do
		file "$c/topology/$f"
	done
	for i in "$c"/cache/index[0-9]*; do
		for f in level type size shared_cpu_list; do
			file "$i/$f"
		done
	done
	for n in "$c"/node[0-9]*; do link "$n"; done
done

for n in "$sys"/devices/system/node/node[0-9]*; do
	[ -d "$n" ] || continue
	for f in cpulist meminfo distance; do file "$n/$f"; done
done

for d in "$sys"/bus/pci/devices/*; do
	[ -e "$d" ] || continue
	link "$d"
	for f in class vendor device numa_node current_link_speed current_link_width \
		max_link_speed max_link_width sriov_totalvfs sriov_numvfs; do
		file "$d/$f"
	done
	link "$d/driver"
	for m in "$d"/msi_irqs/*; do file "$m"; done
done

for n in "$sys"/class/net/*; do
	[ -e "$n" ] || continue
	link "$n"
	for f in address mtu operstate speed; do file "$n/$f"; done
	# A file in each queue directory, so that git keeps the directory.
	for q in "$n"/queues/rx-*; do file "$q/rps_cpus"; done
	for q in "$n"/queues/tx-*; do file "$q/tx_timeout"; done
	if [ -L "$n/device" ]; then
		link "$n/device"
		link "$n/device/driver"
		file "$n/device/numa_node"
	fi
done

file "$proc/interrupts"
file "$proc/meminfo"
for i in "$proc"/irq/[0-9]*; do
	file "$i/smp_affinity_list"
	file "$i/effective_affinity_list"
done
