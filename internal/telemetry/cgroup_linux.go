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
// workload's. A tree workload (workload.KindTree) gets nothing at all: it
// does not own its cgroup (a session scope holds several trees; a tree
// selected by PID may share its cgroup with processes outside it), so that
// cgroup's numbers are not its own.
//
// Each distinct cgroup directory is read once per sweep and its values are
// given to every workload in it (workloads grouped by process tree or by
// systemd unit often share one cgroup: 1000 tree workloads in one session
// scope cost one read of each file, not 1000).
type CgroupCollector struct {
	roots host.Roots
	// cache holds this sweep's reads by directory; cleared every sweep.
	cache map[cgSection]*cgRead
}

var _ Collector = (*CgroupCollector)(nil)

// cgKind names a group of files read from one cgroup directory.
type cgKind uint8

const (
	cgV2        cgKind = iota // cpu.stat, memory.current, io.stat, *.pressure
	cgV1CPUAcct               // cpuacct.usage
	cgV1CPU                   // cpu.stat
	cgV1Memory                // memory.usage_in_bytes
	cgV1Blkio                 // blkio.throttle.io_service{_bytes,d}
)

// cgSection is one cgroup directory (relative to its hierarchy) and what is
// read from it.
type cgSection struct {
	kind cgKind
	path string
}

// cgRead is what reading one section gave: the values of its metrics and the
// errors of its malformed files.
type cgRead struct {
	vals Values
	errs []error
}

// NewCgroupCollector reads the hierarchies found under roots.Cgroup (see
// discoverCgroups: no assumption that v2 is at roots.Cgroup itself).
func NewCgroupCollector(roots host.Roots) *CgroupCollector {
	return &CgroupCollector{roots: roots, cache: make(map[cgSection]*cgRead)}
}

// Name returns "cgroup".
func (c *CgroupCollector) Name() string { return "cgroup" }

// maxCgroupErrs bounds the malformed-file errors one sweep returns.
const maxCgroupErrs = 8

// Collect reads, per distinct non-root cgroup of the workloads,
// v2: cpu.stat (usage_usec, throttled_usec), memory.current, io.stat
// (rbytes, wbytes, rios+wios over all devices), {cpu,memory,io}.pressure
// ("some" total); v1: cpuacct.usage, cpu.stat throttled_time,
// memory.usage_in_bytes, blkio.throttle.io_service_bytes and
// blkio.throttle.io_serviced (Read+Write). A file or cgroup that does not
// exist (controller not enabled, cgroup removed mid-sweep) is skipped. A
// malformed file leaves its metrics absent and its error, naming the file,
// is returned (once, however many workloads share the cgroup) after every
// workload has been read. It returns a *NotSupportedError when no cgroup
// hierarchy is found under roots.Cgroup.
func (c *CgroupCollector) Collect(ctx context.Context, s *Sample) error {
	l, err := cgroupLayoutFor(c.roots)
	if err != nil {
		return &NotSupportedError{Source: "cgroup", Reason: err.Error()}
	}
	if l.v2 == "" && len(l.v1) == 0 {
		return &NotSupportedError{Source: "cgroup", Reason: "no cgroup hierarchy under " + c.roots.Cgroup}
	}
	if c.cache == nil {
		c.cache = make(map[cgSection]*cgRead)
	}
	clear(c.cache)
	var errs []error
	section := func(kind cgKind, path string, vals *Values) {
		sec := cgSection{kind, path}
		r := c.cache[sec]
		if r == nil {
			r = &cgRead{}
			r.errs = readCgroupSection(l, sec, &r.vals)
			c.cache[sec] = r
			for _, err := range r.errs {
				if len(errs) < maxCgroupErrs {
					errs = append(errs, err)
				}
			}
		}
		setAll(vals, &r.vals)
	}
	for i := range s.Workloads {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		w := &s.Workloads[i]
		vals := s.Groups[w.ID]
		if vals == nil || w.Kind == workload.KindTree {
			continue
		}
		eachCgroupSection(l, &w.Cgroups, vals, func(kind cgKind, path string) { section(kind, path, vals) })
	}
	return errors.Join(errs...)
}

func isRootCgroup(p string) bool { return p == "" || p == "/" || p == "." }

// v1Guard is the metric a v1 section provides that v2 may already have set:
// when it is set, the v2 value wins and the v1 section is not read.
var v1Guard = [...]Metric{cgV1CPUAcct: CgCPUUsageSec, cgV1CPU: CgThrottledSec, cgV1Memory: CgMemoryBytes, cgV1Blkio: CgIOReadBytes}

// v1Controller is the v1 controller each v1 section is read from.
var v1Controller = [...]string{cgV1CPUAcct: "cpuacct", cgV1CPU: "cpu", cgV1Memory: "memory", cgV1Blkio: "blkio"}

// eachCgroupSection calls fn, in order, for every section of cg to read:
// the v2 directory, then each v1 controller's whose values vals (filled by
// the sections before) does not have yet.
func eachCgroupSection(l *cgroupLayout, cg *workload.Cgroups, vals *Values, fn func(kind cgKind, path string)) {
	if l.v2 != "" && !isRootCgroup(cg.V2) {
		fn(cgV2, cg.V2)
	}
	for kind := cgV1CPUAcct; kind <= cgV1Blkio; kind++ {
		ctl := v1Controller[kind]
		if _, ok := l.v1[ctl]; !ok {
			continue
		}
		p, ok := cg.V1[ctl]
		if !ok || isRootCgroup(p) || vals.Has(v1Guard[kind]) {
			continue
		}
		fn(kind, p)
	}
}

// readCgroupSection reads the files of one section into vals, returning the
// errors of malformed files.
func readCgroupSection(l *cgroupLayout, sec cgSection, vals *Values) []error {
	var errs []error
	note := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	if sec.kind == cgV2 {
		dir := filepath.Join(l.v2, sec.path)
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
		return errs
	}
	dir := filepath.Join(l.v1[v1Controller[sec.kind]], sec.path)
	switch sec.kind {
	case cgV1CPUAcct:
		note(readCgroupFile(filepath.Join(dir, "cpuacct.usage"), func(b []byte) error {
			v, err := parseSingleUint(b)
			if err == nil {
				vals.Set(CgCPUUsageSec, float64(v)/1e9)
			}
			return err
		}))
	case cgV1CPU:
		note(readCgroupFile(filepath.Join(dir, "cpu.stat"), func(b []byte) error {
			return parseFlatKeyed(b, func(k string, v uint64) {
				if k == "throttled_time" {
					vals.Set(CgThrottledSec, float64(v)/1e9)
				}
			})
		}))
	case cgV1Memory:
		note(readCgroupFile(filepath.Join(dir, "memory.usage_in_bytes"), func(b []byte) error {
			v, err := parseSingleUint(b)
			if err == nil {
				vals.Set(CgMemoryBytes, float64(v))
			}
			return err
		}))
	case cgV1Blkio:
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
