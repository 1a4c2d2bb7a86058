package telemetry

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"sculpt/internal/host"
)

// The names of the probed sources, as SourceStatus.Name.
const (
	SourceProcfs       = "procfs"
	SourceCgroupV1     = "cgroup-v1"
	SourceCgroupV2     = "cgroup-v2"
	SourcePSI          = "psi"
	SourcePerfSoftware = "perf-software"
	SourcePerfHardware = "perf-hardware"
	SourceEBPF         = "ebpf"
	SourceNUMAMaps     = "numa_maps"
)

var probeCache struct {
	sync.Mutex
	m map[host.Roots][]SourceStatus
}

// ProbeSources reports which telemetry sources work on the machine seen
// through roots. It reads roots.Proc/self/stat, roots.Proc/pressure/*,
// roots.Proc/self/numa_maps, the RAPL zones under roots.Sys/class/powercap,
// lists roots.Cgroup and opens (and closes) one software and one hardware
// perf event on the calling process. The result is
// computed once per roots value and cached; callers get a copy. It never
// fails: a source that cannot be probed is reported unavailable with the
// reason.
func ProbeSources(roots host.Roots) []SourceStatus {
	probeCache.Lock()
	defer probeCache.Unlock()
	if st, ok := probeCache.m[roots]; ok {
		return append([]SourceStatus(nil), st...)
	}
	st := probeSources(roots)
	if probeCache.m == nil {
		probeCache.m = make(map[host.Roots][]SourceStatus)
	}
	probeCache.m[roots] = st
	return append([]SourceStatus(nil), st...)
}

// probeStatus returns the named source's status from ProbeSources(roots).
func probeStatus(roots host.Roots, name string) SourceStatus {
	for _, s := range ProbeSources(roots) {
		if s.Name == name {
			return s
		}
	}
	return SourceStatus{Name: name, Reason: "not probed"}
}

func probeSources(roots host.Roots) []SourceStatus {
	layout, layoutErr := discoverCgroups(roots)
	return []SourceStatus{
		probeProcfs(roots),
		probeCgroupV1(roots, layout, layoutErr),
		probeCgroupV2(roots, layout, layoutErr),
		probePSI(roots, layout),
		probePerf(SourcePerfSoftware, perfTaskClock),
		probePerf(SourcePerfHardware, perfCycles),
		probeEBPF(roots),
		probeNUMAMaps(roots),
		probeRAPL(roots),
	}
}

func probeProcfs(roots host.Roots) SourceStatus {
	p := roots.ProcPath("self", "stat")
	if _, err := os.ReadFile(p); err != nil {
		return SourceStatus{Name: SourceProcfs, Reason: fmt.Sprintf("read %s: %v", p, err)}
	}
	return SourceStatus{Name: SourceProcfs, Available: true, Detail: roots.Proc}
}

func probeCgroupV1(roots host.Roots, l *cgroupLayout, err error) SourceStatus {
	st := SourceStatus{Name: SourceCgroupV1}
	switch {
	case err != nil:
		st.Reason = err.Error()
	case len(l.v1) == 0:
		st.Reason = "no cgroup v1 hierarchy under " + roots.Cgroup
	default:
		st.Available = true
		st.Detail = "controllers " + strings.Join(l.v1Controllers(), ",") + " under " + roots.Cgroup
	}
	return st
}

func probeCgroupV2(roots host.Roots, l *cgroupLayout, err error) SourceStatus {
	st := SourceStatus{Name: SourceCgroupV2}
	switch {
	case err != nil:
		st.Reason = err.Error()
	case l.v2 == "":
		st.Reason = "no cgroup2 (unified) mount under " + roots.Cgroup
	default:
		st.Available = true
		ctl := strings.Join(l.v2Controllers, ",")
		if ctl == "" {
			ctl = "none"
		}
		st.Detail = fmt.Sprintf("unified at %s, controllers %s", l.v2, ctl)
	}
	return st
}

func probePSI(roots host.Roots, l *cgroupLayout) SourceStatus {
	st := SourceStatus{Name: SourcePSI}
	p := roots.ProcPath("pressure", "cpu")
	if _, err := os.ReadFile(p); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			st.Reason = fmt.Sprintf("%s missing (kernel without CONFIG_PSI, or booted psi=0)", p)
		} else {
			st.Reason = fmt.Sprintf("read %s: %v", p, err)
		}
		return st
	}
	st.Available = true
	st.Detail = "system-wide " + roots.ProcPath("pressure") + " (the machine's, in the system genes)"
	const perWorkload = "; the psi_* genes of a workload need it in a cgroup v2 group of its own"
	switch {
	case l == nil || l.v2 == "":
		st.Detail += "; no per-workload PSI: no cgroup v2, and cgroup v1 has none"
	case !fileExists(filepath.Join(l.v2, "cpu.pressure")):
		st.Detail += "; no per-cgroup pressure files in " + l.v2
	case inV2Root(roots):
		st.Detail += "; per-cgroup *.pressure in " + l.v2 + perWorkload + ", and here processes sit in its root (cgroup v1 has no PSI)"
	default:
		st.Detail += "; per-cgroup *.pressure in " + l.v2 + perWorkload
	}
	return st
}

func probePerf(name string, kind perfEventKind) SourceStatus {
	st := SourceStatus{Name: name}
	fd, err := openPerfEvent(kind, 0)
	if err != nil {
		reason := fmt.Sprintf("perf_event_open(%s) = %s", kind.name, errnoName(err))
		switch {
		case name == SourcePerfHardware && (errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENODEV)):
			reason = "no PMU: " + reason
		case errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM):
			reason += " (check perf_event_paranoid and CAP_PERFMON)"
		}
		st.Reason = reason
		return st
	}
	_ = unix.Close(fd) // the probe's own event, never read
	st.Available = true
	st.Detail = "perf_event_open(" + kind.name + ") on self succeeded"
	return st
}

func errnoName(err error) string {
	var e unix.Errno
	if errors.As(err, &e) {
		if n := unix.ErrnoName(e); n != "" {
			return n
		}
	}
	return err.Error()
}

func probeNUMAMaps(roots host.Roots) SourceStatus {
	st := SourceStatus{Name: SourceNUMAMaps}
	p := roots.ProcPath("self", "numa_maps")
	if _, err := os.ReadFile(p); err != nil {
		st.Reason = fmt.Sprintf("read %s: %v (kernel without CONFIG_NUMA?)", p, err)
		return st
	}
	st.Available = true
	nodes, _ := filepath.Glob(roots.SysPath("devices", "system", "node", "node[0-9]*"))
	st.Detail = fmt.Sprintf("%d NUMA node(s)", len(nodes))
	return st
}

// cgroupLayout says where each cgroup hierarchy is mounted.
type cgroupLayout struct {
	v2            string   // absolute directory of the unified hierarchy, "" without one
	v2Controllers []string // its root's cgroup.controllers
	v1            map[string]string
}

func (l *cgroupLayout) v1Controllers() []string {
	names := make([]string, 0, len(l.v1))
	for c := range l.v1 {
		names = append(names, c)
	}
	sort.Strings(names)
	return names
}

// discoverCgroups finds the hierarchies under roots.Cgroup by their files
// rather than by /proc/self/mountinfo, so that a DaemonSet with the host's
// cgroupfs mounted elsewhere, and fixture trees, are read the same way: a
// directory holding cgroup.controllers is a cgroup2 mount (roots.Cgroup
// itself on a pure v2 host, e.g. roots.Cgroup/unified on a hybrid one); a
// directory holding cgroup.procs but no cgroup.controllers is a v1 hierarchy
// whose controllers are the comma-separated parts of its name ("cpu,cpuacct",
// "name=systemd"). Symbolic links ("cpu" -> "cpu,cpuacct") are followed.
func discoverCgroups(roots host.Roots) (*cgroupLayout, error) {
	l := &cgroupLayout{v1: make(map[string]string)}
	root := roots.Cgroup
	if isFile(filepath.Join(root, "cgroup.controllers")) {
		l.v2 = root
	} else {
		ents, err := os.ReadDir(root)
		if err != nil {
			return nil, fmt.Errorf("list cgroup root %s: %w", root, err)
		}
		for _, e := range ents {
			dir := filepath.Join(root, e.Name())
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				continue
			}
			switch {
			case isFile(filepath.Join(dir, "cgroup.controllers")):
				if l.v2 == "" {
					l.v2 = dir
				}
			case isFile(filepath.Join(dir, "cgroup.procs")):
				real := dir
				if t, err := filepath.EvalSymlinks(dir); err == nil {
					real = t
				}
				for _, c := range strings.Split(filepath.Base(real), ",") {
					if _, ok := l.v1[c]; !ok {
						l.v1[c] = real
					}
				}
			}
		}
	}
	if l.v2 != "" {
		b, err := os.ReadFile(filepath.Join(l.v2, "cgroup.controllers"))
		if err == nil {
			l.v2Controllers = strings.Fields(string(b))
		}
	}
	return l, nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

var layoutCache struct {
	sync.Mutex
	m map[host.Roots]*cgroupLayout
}

// cgroupLayoutFor returns discoverCgroups(roots), cached per roots.
func cgroupLayoutFor(roots host.Roots) (*cgroupLayout, error) {
	layoutCache.Lock()
	defer layoutCache.Unlock()
	if l, ok := layoutCache.m[roots]; ok {
		return l, nil
	}
	l, err := discoverCgroups(roots)
	if err != nil {
		return nil, err
	}
	if layoutCache.m == nil {
		layoutCache.m = make(map[host.Roots]*cgroupLayout)
	}
	layoutCache.m[roots] = l
	return l, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// inV2Root reports whether sculpt itself sits in the root of the cgroup v2
// hierarchy ("0::/" in /proc/self/cgroup), as every process does on a
// machine that groups processes with cgroup v1 only.
func inV2Root(roots host.Roots) bool {
	b, err := os.ReadFile(roots.ProcPath("self", "cgroup"))
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if path, ok := strings.CutPrefix(line, "0::"); ok {
			return path == "/"
		}
	}
	return false
}
