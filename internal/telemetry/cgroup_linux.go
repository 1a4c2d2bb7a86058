package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"

	"sculpt/internal/host"
	"sculpt/internal/workload"
)

// CgroupCollector reads each workload's own cgroup files into
// Sample.Groups[workload ID]: CPU usage and throttling, memory, block I/O and
// (v2 only) PSI. Where a value is available from both hierarchies the v2 one
// is used. A workload (or a controller of it) in the root cgroup gets nothing
// from that hierarchy: the root's numbers are the machine's, not the
// workload's.
type CgroupCollector struct {
	roots host.Roots
}

var _ Collector = (*CgroupCollector)(nil)

// NewCgroupCollector reads the hierarchies found under roots.Cgroup (see
// discoverCgroups: no assumption that v2 is at roots.Cgroup itself).
func NewCgroupCollector(roots host.Roots) *CgroupCollector {
	return &CgroupCollector{roots: roots}
}

// Name returns "cgroup".
func (c *CgroupCollector) Name() string { return "cgroup" }

// maxCgroupErrs bounds the malformed-file errors one sweep returns.
const maxCgroupErrs = 8

// Collect reads, per workload with a non-root cgroup,
// v2: cpu.stat (usage_usec, throttled_usec), memory.current, io.stat
// (rbytes, wbytes, rios+wios over all devices), {cpu,memory,io}.pressure
// ("some" total); v1: cpuacct.usage, cpu.stat throttled_time,
// memory.usage_in_bytes, blkio.throttle.io_service_bytes and
// blkio.throttle.io_serviced (Read+Write). A file or cgroup that does not
// exist (controller not enabled, cgroup removed mid-sweep) is skipped. A
// malformed file leaves its metrics absent and its error, naming the file,
// is returned after every workload has been read. It returns a
// *NotSupportedError when no cgroup hierarchy is found under roots.Cgroup.
func (c *CgroupCollector) Collect(ctx context.Context, s *Sample) error {
	l, err := cgroupLayoutFor(c.roots)
	if err != nil {
		return &NotSupportedError{Source: "cgroup", Reason: err.Error()}
	}
	if l.v2 == "" && len(l.v1) == 0 {
		return &NotSupportedError{Source: "cgroup", Reason: "no cgroup hierarchy under " + c.roots.Cgroup}
	}
	var errs []error
	for i := range s.Workloads {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w := &s.Workloads[i]
		vals := s.Groups[w.ID]
		if vals == nil {
			continue
		}
		for _, err := range readCgroupValues(l, &w.Cgroups, vals) {
			if len(errs) < maxCgroupErrs {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

func isRootCgroup(p string) bool { return p == "" || p == "/" || p == "." }

// readCgroupValues reads one workload's cgroup files into vals, returning the
// errors of malformed files.
func readCgroupValues(l *cgroupLayout, cg *workload.Cgroups, vals *Values) []error {
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if l.v2 != "" && !isRootCgroup(cg.V2) {
		dir := filepath.Join(l.v2, cg.V2)
		note(readCgroupFile(filepath.Join(dir, "cpu.stat"), func(b []byte) error {
			return parseFlatKeyed(b, func(k string, v uint64) {
				switch k {
				case "usage_usec":
					vals.Set(CgCPUUsageSec, float64(v)/1e6)
				case "throttled_usec":
					vals.Set(CgThrottledSec, float64(v)/1e6)
				}
			})
		}))
		note(readCgroupFile(filepath.Join(dir, "memory.current"), func(b []byte) error {
			v, err := parseSingleUint(b)
			if err == nil {
				vals.Set(CgMemoryBytes, float64(v))
			}
			return err
		}))
		note(readCgroupFile(filepath.Join(dir, "io.stat"), func(b []byte) error {
			st, err := parseIOStat(b)
			if err == nil {
				vals.Set(CgIOReadBytes, float64(st.readBytes))
				vals.Set(CgIOWriteBytes, float64(st.writeBytes))
				vals.Set(CgIOOps, float64(st.readOps+st.writeOps))
			}
			return err
		}))
		for _, pf := range [...]struct {
			file string
			m    Metric
		}{{"cpu.pressure", PSICPUSomeSec}, {"memory.pressure", PSIMemSomeSec}, {"io.pressure", PSIIOSomeSec}} {
			note(readCgroupFile(filepath.Join(dir, pf.file), func(b []byte) error {
				p, err := parsePressure(b)
				if err == nil && p.hasSome {
					vals.Set(pf.m, float64(p.someTotalUsec)/1e6)
				}
				return err
			}))
		}
	}
	v1dir := func(ctl string) string {
		mount, ok := l.v1[ctl]
		if !ok {
			return ""
		}
		p, ok := cg.V1[ctl]
		if !ok || isRootCgroup(p) {
			return ""
		}
		return filepath.Join(mount, p)
	}
	if dir := v1dir("cpuacct"); dir != "" && !vals.Has(CgCPUUsageSec) {
		note(readCgroupFile(filepath.Join(dir, "cpuacct.usage"), func(b []byte) error {
			v, err := parseSingleUint(b)
			if err == nil {
				vals.Set(CgCPUUsageSec, float64(v)/1e9)
			}
			return err
		}))
	}
	if dir := v1dir("cpu"); dir != "" && !vals.Has(CgThrottledSec) {
		note(readCgroupFile(filepath.Join(dir, "cpu.stat"), func(b []byte) error {
			return parseFlatKeyed(b, func(k string, v uint64) {
				if k == "throttled_time" {
					vals.Set(CgThrottledSec, float64(v)/1e9)
				}
			})
		}))
	}
	if dir := v1dir("memory"); dir != "" && !vals.Has(CgMemoryBytes) {
		note(readCgroupFile(filepath.Join(dir, "memory.usage_in_bytes"), func(b []byte) error {
			v, err := parseSingleUint(b)
			if err == nil {
				vals.Set(CgMemoryBytes, float64(v))
			}
			return err
		}))
	}
	if dir := v1dir("blkio"); dir != "" && !vals.Has(CgIOReadBytes) {
		note(readCgroupFile(filepath.Join(dir, "blkio.throttle.io_service_bytes"), func(b []byte) error {
			r, w, err := parseBlkioRW(b)
			if err == nil {
				vals.Set(CgIOReadBytes, float64(r))
				vals.Set(CgIOWriteBytes, float64(w))
			}
			return err
		}))
		note(readCgroupFile(filepath.Join(dir, "blkio.throttle.io_serviced"), func(b []byte) error {
			r, w, err := parseBlkioRW(b)
			if err == nil {
				vals.Set(CgIOOps, float64(r+w))
			}
			return err
		}))
	}
	return errs
}

// readCgroupFile reads path and hands it to parse. A file that does not
// exist, or whose cgroup was removed (ENOENT, ENODEV), is not an error.
func readCgroupFile(path string, parse func([]byte) error) error {
	b, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ENODEV) {
			return nil
		}
		return fmt.Errorf("read %s: %w", path, err)
	}
	if err := parse(b); err != nil {
		return fmt.Errorf("parse %s: %w", path, err)
	}
	return nil
}

// parseSingleUint parses a file holding one unsigned number (memory.current,
// cpuacct.usage).
func parseSingleUint(b []byte) (uint64, error) {
	f := bytes.TrimSpace(b)
	v, err := strconv.ParseUint(string(f), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("want one unsigned number, got %q", truncate(f))
	}
	return v, nil
}

// parseFlatKeyed parses "key value" lines (cpu.stat) and calls fn for each.
func parseFlatKeyed(b []byte, fn func(key string, v uint64)) error {
	for n, line := range bytes.Split(b, []byte{'\n'}) {
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f := bytes.Fields(line)
		if len(f) != 2 {
			return fmt.Errorf("line %d: want \"key value\", got %q", n+1, truncate(line))
		}
		v, err := strconv.ParseUint(string(f[1]), 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: value of %s: %q is not an unsigned number", n+1, f[0], f[1])
		}
		fn(string(f[0]), v)
	}
	return nil
}

type ioStat struct{ readBytes, writeBytes, readOps, writeOps uint64 }

// parseIOStat sums cgroup v2 io.stat over devices. Lines look like
// "8:0 rbytes=1 wbytes=2 rios=3 wios=4 dbytes=0 dios=0"; keys it does not
// know are ignored.
func parseIOStat(b []byte) (ioStat, error) {
	var st ioStat
	for n, line := range bytes.Split(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		if bytes.IndexByte(f[0], ':') < 0 {
			return st, fmt.Errorf("line %d: want MAJ:MIN first, got %q", n+1, truncate(line))
		}
		for _, kv := range f[1:] {
			k, v, ok := bytes.Cut(kv, []byte{'='})
			if !ok {
				return st, fmt.Errorf("line %d: want key=value, got %q", n+1, kv)
			}
			u, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return st, fmt.Errorf("line %d: %s: %q is not an unsigned number", n+1, k, v)
			}
			switch string(k) {
			case "rbytes":
				st.readBytes += u
			case "wbytes":
				st.writeBytes += u
			case "rios":
				st.readOps += u
			case "wios":
				st.writeOps += u
			}
		}
	}
	return st, nil
}

// parseBlkioRW sums the Read and Write rows of a v1 blkio file
// ("8:0 Read 4096" ... "Total 8192"), over devices.
func parseBlkioRW(b []byte) (read, write uint64, err error) {
	for n, line := range bytes.Split(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		switch len(f) {
		case 0:
			continue
		case 2:
			if string(f[0]) == "Total" {
				continue
			}
		case 3:
			v, err := strconv.ParseUint(string(f[2]), 10, 64)
			if err != nil {
				return 0, 0, fmt.Errorf("line %d: %q is not an unsigned number", n+1, f[2])
			}
			switch string(f[1]) {
			case "Read":
				read += v
			case "Write":
				write += v
			}
			continue
		}
		return 0, 0, fmt.Errorf("line %d: want \"MAJ:MIN Op N\" or \"Total N\", got %q", n+1, truncate(line))
	}
	return read, write, nil
}

// truncate shortens b for an error message.
func truncate(b []byte) []byte {
	if len(b) > 64 {
		return append(b[:64:64], "..."...)
	}
	return b
}
