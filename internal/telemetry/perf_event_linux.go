package telemetry

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// perfEventKind is one perf event sculpt counts, and the metric it feeds.
type perfEventKind struct {
	name   string
	typ    uint32
	config uint64
	metric Metric
	scale  float64 // multiplies the raw count (task-clock is in ns)
}

var (
	perfTaskClock = perfEventKind{"task-clock", unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_TASK_CLOCK, PerfTaskClockSec, 1e-9}
	perfCycles    = perfEventKind{"cycles", unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_CPU_CYCLES, PerfCycles, 1}
)

// perfSoftwareEvents are counted wherever perf_event_open works.
var perfSoftwareEvents = []perfEventKind{
	perfTaskClock,
	{"context-switches", unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_CONTEXT_SWITCHES, PerfCtxSwitches, 1},
	{"cpu-migrations", unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_CPU_MIGRATIONS, PerfCPUMigrations, 1},
	{"page-faults", unix.PERF_TYPE_SOFTWARE, unix.PERF_COUNT_SW_PAGE_FAULTS, PerfPageFaults, 1},
}

// llcRead is the hw-cache config for LL cache reads: id | op << 8 | result << 16.
const (
	llcReadAccess = unix.PERF_COUNT_HW_CACHE_LL | unix.PERF_COUNT_HW_CACHE_OP_READ<<8 | unix.PERF_COUNT_HW_CACHE_RESULT_ACCESS<<16
	llcReadMiss   = unix.PERF_COUNT_HW_CACHE_LL | unix.PERF_COUNT_HW_CACHE_OP_READ<<8 | unix.PERF_COUNT_HW_CACHE_RESULT_MISS<<16
)

// perfHardwareEvents need a PMU (absent in most VMs).
var perfHardwareEvents = []perfEventKind{
	perfCycles,
	{"instructions", unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_INSTRUCTIONS, PerfInstructions, 1},
	{"cache-references", unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_CACHE_REFERENCES, PerfCacheRefs, 1},
	{"cache-misses", unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_CACHE_MISSES, PerfCacheMisses, 1},
	{"LLC-loads", unix.PERF_TYPE_HW_CACHE, llcReadAccess, PerfLLCLoads, 1},
	{"LLC-load-misses", unix.PERF_TYPE_HW_CACHE, llcReadMiss, PerfLLCMisses, 1},
	{"branch-instructions", unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_BRANCH_INSTRUCTIONS, PerfBranches, 1},
	{"branch-misses", unix.PERF_TYPE_HARDWARE, unix.PERF_COUNT_HW_BRANCH_MISSES, PerfBranchMisses, 1},
}

// perfReadFormat is what a counter read returns with
// PERF_FORMAT_TOTAL_TIME_ENABLED|PERF_FORMAT_TOTAL_TIME_RUNNING.
const perfReadFormat = unix.PERF_FORMAT_TOTAL_TIME_ENABLED | unix.PERF_FORMAT_TOTAL_TIME_RUNNING

// openPerfEvent opens a counting (no sampling, no mmap) event on thread tid
// (0: the caller) on any CPU, enabled at once, excluding the hypervisor.
// The caller owns the returned fd. Errors are the raw errno, e.g. ENOENT or
// EOPNOTSUPP for hardware events without a PMU, ESRCH for a gone thread.
func openPerfEvent(k perfEventKind, tid int) (int, error) {
	attr := unix.PerfEventAttr{
		Type:        k.typ,
		Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Config:      k.config,
		Read_format: perfReadFormat,
		Bits:        unix.PerfBitExcludeHv,
	}
	return unix.PerfEventOpen(&attr, tid, -1, -1, unix.PERF_FLAG_FD_CLOEXEC)
}

// readPerfCounter reads one counter opened with perfReadFormat and returns
// its count scaled by time_enabled/time_running when the kernel multiplexed
// it (0 when it never ran).
func readPerfCounter(fd int) (float64, error) {
	var buf [24]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return 0, err
	}
	if n != len(buf) {
		return 0, fmt.Errorf("short perf read: %d bytes", n)
	}
	return scalePerfCount(buf), nil
}

func scalePerfCount(buf [24]byte) float64 {
	u := func(i int) uint64 { return binary.NativeEndian.Uint64(buf[8*i:]) }
	return scaleCount(u(0), u(1), u(2))
}

// openPerfEventGroup opens k on tid like openPerfEvent, in the group led by
// group (-1: k leads a new group whose reads return every member,
// PERF_FORMAT_GROUP). Software events are never multiplexed, so one read
// of the leader serves the whole group.
func openPerfEventGroup(k perfEventKind, tid, group int) (int, error) {
	attr := unix.PerfEventAttr{
		Type:        k.typ,
		Size:        uint32(unsafe.Sizeof(unix.PerfEventAttr{})),
		Config:      k.config,
		Read_format: perfReadFormat | unix.PERF_FORMAT_GROUP,
		Bits:        unix.PerfBitExcludeHv,
	}
	return unix.PerfEventOpen(&attr, tid, -1, group, unix.PERF_FLAG_FD_CLOEXEC)
}

// readPerfGroup reads a group leader opened by openPerfEventGroup into vals
// (in member order), scaled when multiplexed, and returns how many it got.
// Layout: nr, time_enabled, time_running, value[nr].
func readPerfGroup(fd int, vals []float64) (int, error) {
	var buf [8 * (3 + 8)]byte
	n, err := unix.Read(fd, buf[:])
	if err != nil {
		return 0, err
	}
	return parsePerfGroup(buf[:n], vals)
}

func parsePerfGroup(b []byte, vals []float64) (int, error) {
	if len(b) < 24 {
		return 0, fmt.Errorf("short perf group read: %d bytes", len(b))
	}
	u := func(i int) uint64 { return binary.NativeEndian.Uint64(b[8*i:]) }
	nr, enabled, running := int(u(0)), u(1), u(2)
	if len(b) < 8*(3+nr) {
		return 0, fmt.Errorf("perf group read: %d bytes for %d values", len(b), nr)
	}
	nr = min(nr, len(vals))
	for i := 0; i < nr; i++ {
		vals[i] = scaleCount(u(3+i), enabled, running)
	}
	return nr, nil
}

func scaleCount(val, enabled, running uint64) float64 {
	switch {
	case running == 0:
		return 0
	case running >= enabled:
		return float64(val)
	default:
		return float64(val) * float64(enabled) / float64(running)
	}
}
