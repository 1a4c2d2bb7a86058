package topology

import (
	"bytes"
	"slices"
	"testing"

	"sculpt/internal/fuzzseed"
)

// The sysfs and procfs files topology discovery reads, fuzzed: a reader
// returns an error naming the file on garbage, never panics, and allocates
// in proportion to its input (docs/reliability.md). Seeds are the sysfs
// snapshots under testdata/sysfs.

const sysfs = "testdata/sysfs"

// FuzzParseCPUList checks the CPU list parser against its contract: CPUs
// ascending without duplicates, and FormatCPUList gives a list that parses
// back to the same CPUs.
func FuzzParseCPUList(f *testing.F) {
	for _, b := range fuzzseed.Files(f, sysfs, "cpulist", "online", "possible", "thread_siblings_list", "shared_cpu_list", "smp_affinity_list") {
		f.Add(string(b))
	}
	f.Fuzz(func(t *testing.T, s string) {
		cpus, err := ParseCPUList(s)
		if err != nil {
			return
		}
		if len(cpus) > maxCPUNumber+1 || !slices.IsSorted(cpus) || len(slices.Compact(slices.Clone(cpus))) != len(cpus) {
			t.Fatalf("ParseCPUList(%q) = %d CPUs, not ascending and unique within 0..%d", s, len(cpus), maxCPUNumber)
		}
		back, err := ParseCPUList(FormatCPUList(cpus))
		if err != nil || !slices.Equal(back, cpus) {
			t.Fatalf("ParseCPUList(%q) then FormatCPUList: %q, which parses to %v (%v)", s, FormatCPUList(cpus), back, err)
		}
	})
}

func FuzzParseInterrupts(f *testing.F) {
	for _, b := range fuzzseed.Files(f, sysfs, "interrupts") {
		// The first lines of each: a whole 64-CPU table is tens of KB, and
		// the fuzzer spends its time minimizing inputs that large.
		f.Add(firstLines(b, 12))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _, _ = parseInterrupts("interrupts", bytes.NewReader(b))
	})
}

// FuzzParseNodeFiles fuzzes a NUMA node's meminfo and distance files and
// the attribute parsers (cache size, integers).
func FuzzParseNodeFiles(f *testing.F) {
	for _, b := range fuzzseed.Files(f, sysfs, "meminfo", "distance", "size", "level", "core_id") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseMemTotal("meminfo", b)
		_, _ = parseDistances("distance", string(b))
		_, _ = parseSize(string(b))
		_, _ = parseIntValue("value", string(b))
	})
}

func firstLines(b []byte, n int) []byte {
	end := 0
	for i := 0; i < n && end < len(b); i++ {
		if j := bytes.IndexByte(b[end:], '\n'); j >= 0 {
			end += j + 1
		} else {
			end = len(b)
		}
	}
	return b[:end]
}
