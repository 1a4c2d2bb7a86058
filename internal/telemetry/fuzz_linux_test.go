package telemetry

import (
	"testing"

	"sculpt/internal/fuzzseed"
)

// The fuzz targets below feed every /proc, cgroup and PSI parser bytes it
// does not control: a parser returns an error on garbage, never panics,
// and allocates in proportion to its input. Seeds are the fixtures under
// testdata/; `make fuzz` runs each target (docs/reliability.md).

func seed(f *testing.F, names ...string) {
	for _, b := range fuzzseed.Files(f, "testdata", names...) {
		f.Add(b)
	}
}

func FuzzParseStat(f *testing.F) {
	seed(f, "stat")
	f.Add([]byte("42 ((a) b) c) S 1 42 42 0 -1 0 5 0 6 0 70 80 0 0 -2 -5 12 0 999 1\n"))
	f.Add([]byte("1 (x"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseStat(b)
	})
}

func FuzzParseStatus(f *testing.F) {
	seed(f, "status")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseStatus(b) })
}

func FuzzParseSchedstat(f *testing.F) {
	seed(f, "schedstat", "sched")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseSchedstat(b)
		_, _ = parseSchedMigrations(b)
	})
}

func FuzzParseIO(f *testing.F) {
	seed(f, "io")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseIO(b) })
}

func FuzzParseSmapsRollup(f *testing.F) {
	seed(f, "smaps_rollup")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseSmapsRollup(b) })
}

// FuzzParseNUMAMaps fuzzes numa_maps and the CPU list of the nodes it
// counts as local (cpulist files).
func FuzzParseNUMAMaps(f *testing.F) {
	maps := fuzzseed.Files(f, "testdata", "numa_maps")
	lists := fuzzseed.Files(f, "testdata", "cpulist", "possible")
	for i, b := range maps {
		f.Add(b, lists[i%len(lists)])
	}
	f.Fuzz(func(t *testing.T, b, list []byte) {
		local, err := parseCPUList(nil, list)
		if err != nil {
			return
		}
		if c, err := parseNUMAMaps(b, local, 4096); err == nil && c.Local > c.Total {
			t.Errorf("%v local pages of %v in %q", c.Local, c.Total, b)
		}
	})
}

func FuzzParseNetDev(f *testing.F) {
	seed(f, "dev", "dev-noname")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseNetDev(b) })
}

// FuzzParseSockets fuzzes the socket tables (tcp, tcp6, udp, udp6, unix)
// and the fd and namespace links that name their inodes.
func FuzzParseSockets(f *testing.F) {
	seed(f, "tcp", "tcp6", "udp", "udp6", "unix", "tcp-short", "tcp-addr")
	f.Add([]byte("socket:[12345]"))
	f.Add([]byte("net:[4026531840]"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = parseInetSockets(b, sockTCP, func(uint64, sockInfo) {})
		_ = parseInetSockets(b, sockUDP, func(uint64, sockInfo) {})
		_ = parseUnixSockets(b, func(uint64) {})
		_, _ = parseFDLink(b)
		_, _ = parseNSLink(string(b))
		_, _ = parseHexAddrPort(b)
	})
}

// FuzzParseCgroupFiles fuzzes the cgroup v1 and v2 files the cgroup
// collector reads.
func FuzzParseCgroupFiles(f *testing.F) {
	seed(f, "cpu.stat", "memory.current", "memory.usage_in_bytes", "cpuacct.usage", "io.stat",
		"blkio.throttle.io_serviced", "blkio.throttle.io_service_bytes")
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = parseSingleUint(b)
		_ = parseFlatKeyed(b, func(string, uint64) {})
		_, _ = parseIOStat(b)
		_, _, _ = parseBlkioRW(b)
	})
}

func FuzzParsePressure(f *testing.F) {
	seed(f, "cpu.pressure", "memory.pressure", "io.pressure", "cpu", "memory", "io")
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parsePressure(b) })
}
