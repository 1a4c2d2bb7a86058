package telemetry

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sculpt/internal/host"
	"sculpt/internal/testload"
	"sculpt/internal/workload"
)

func cgFixtureRoots(tree string) host.Roots {
	base := filepath.Join("testdata", "cgroup", tree)
	return host.Roots{Proc: filepath.Join(base, "proc"), Sys: filepath.Join(base, "sys"), Cgroup: filepath.Join(base, "sys", "fs", "cgroup")}
}

func wantVal(t *testing.T, what string, v *Values, m Metric, want float64) {
	t.Helper()
	got, ok := v.Get(m)
	if !ok {
		t.Errorf("%s: %s absent, want %v", what, m, want)
		return
	}
	if math.Abs(got-want) > 1e-9*math.Max(1, math.Abs(want)) {
		t.Errorf("%s: %s = %v, want %v", what, m, got, want)
	}
}

func wantNo(t *testing.T, what string, v *Values, ms ...Metric) {
	t.Helper()
	for _, m := range ms {
		if got, ok := v.Get(m); ok {
			t.Errorf("%s: %s = %v, want absent", what, m, got)
		}
	}
}

func TestCgroupCollectorV2(t *testing.T) {
	ws := []workload.Workload{
		{ID: "app", Cgroups: workload.Cgroups{V2: "/system.slice/app.service"}},
		{ID: "root", Cgroups: workload.Cgroups{V2: "/"}},
		{ID: "gone", Cgroups: workload.Cgroups{V2: "/system.slice/removed.service"}},
	}
	s := NewSample(time.Now(), ws)
	if err := NewCgroupCollector(cgFixtureRoots("v2")).Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	app := s.Groups["app"]
	wantVal(t, "app", app, CgCPUUsageSec, 2.5)
	wantVal(t, "app", app, CgThrottledSec, 0.125)
	wantVal(t, "app", app, CgMemoryBytes, 104857600)
	wantVal(t, "app", app, CgIOReadBytes, 1010)
	wantVal(t, "app", app, CgIOWriteBytes, 2020)
	wantVal(t, "app", app, CgIOOps, 3+4+1+2)
	wantVal(t, "app", app, PSICPUSomeSec, 1.5)
	wantVal(t, "app", app, PSIMemSomeSec, 0.25)
	wantVal(t, "app", app, PSIIOSomeSec, 0)
	if n := s.Groups["root"].Len(); n != 0 {
		t.Errorf("root-cgroup workload got %d metrics, want none", n)
	}
	if n := s.Groups["gone"].Len(); n != 0 {
		t.Errorf("removed cgroup got %d metrics, want none", n)
	}
}

// A tree workload does not own its cgroup (a session scope holds several;
// a tree selected by PID may share it with processes outside the tree): it
// gets none of the cgroup's numbers, while a cgroup workload of the same
// cgroup does.
func TestCgroupCollectorTreeGetsNothing(t *testing.T) {
	cg := workload.Cgroups{V2: "/system.slice/app.service"}
	ws := []workload.Workload{
		{ID: "tree:10@1", Kind: workload.KindTree, Cgroups: cg},
		{ID: "cg:/system.slice/app.service", Kind: workload.KindUnit, Cgroups: cg},
	}
	s := NewSample(time.Now(), ws)
	if err := NewCgroupCollector(cgFixtureRoots("v2")).Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if n := s.Groups["tree:10@1"].Len(); n != 0 {
		t.Errorf("tree workload got %d cgroup metrics, want none", n)
	}
	wantVal(t, "unit", s.Groups["cg:/system.slice/app.service"], CgCPUUsageSec, 2.5)
}

func TestCgroupCollectorV1(t *testing.T) {
	all := func(p string) map[string]string {
		return map[string]string{"cpu": p, "cpuacct": p, "memory": p, "blkio": p}
	}
	ws := []workload.Workload{
		{ID: "app", Cgroups: workload.Cgroups{V1: all("/app")}},
		{ID: "root", Cgroups: workload.Cgroups{V1: all("/")}},
	}
	s := NewSample(time.Now(), ws)
	if err := NewCgroupCollector(cgFixtureRoots("v1")).Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	app := s.Groups["app"]
	wantVal(t, "app", app, CgCPUUsageSec, 3)
	wantVal(t, "app", app, CgThrottledSec, 0.05)
	wantVal(t, "app", app, CgMemoryBytes, 52428800)
	wantVal(t, "app", app, CgIOReadBytes, 4196)
	wantVal(t, "app", app, CgIOWriteBytes, 8392)
	wantVal(t, "app", app, CgIOOps, 33)
	wantNo(t, "app (v1 has no PSI)", app, PSICPUSomeSec, PSIMemSomeSec, PSIIOSomeSec)
	if n := s.Groups["root"].Len(); n != 0 {
		t.Errorf("root-cgroup workload got %d metrics, want none", n)
	}
}

func TestCgroupCollectorHybridPrefersV2(t *testing.T) {
	ws := []workload.Workload{
		{ID: "app", Cgroups: workload.Cgroups{V2: "/app", V1: map[string]string{"cpu": "/app", "cpuacct": "/app", "memory": "/app", "blkio": "/app"}}},
		// memory at the v1 root, which holds a number: it is the machine's, so absent.
		{ID: "cpuonly", Cgroups: workload.Cgroups{V2: "/", V1: map[string]string{"cpuacct": "/app", "memory": "/"}}},
	}
	s := NewSample(time.Now(), ws)
	if err := NewCgroupCollector(cgFixtureRoots("hybrid")).Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	app := s.Groups["app"]
	wantVal(t, "app", app, CgCPUUsageSec, 7) // v2 usage_usec, not v1's 9 s
	wantVal(t, "app", app, CgThrottledSec, 0)
	wantVal(t, "app", app, CgMemoryBytes, 1048576)
	wantVal(t, "app", app, PSICPUSomeSec, 42e-6)
	wantNo(t, "app (blkio cgroup missing)", app, CgIOReadBytes, CgIOWriteBytes, CgIOOps)
	c := s.Groups["cpuonly"]
	wantVal(t, "cpuonly", c, CgCPUUsageSec, 9)
	wantNo(t, "cpuonly", c, CgMemoryBytes, PSICPUSomeSec)
}

func TestCgroupCollectorMalformedNamesFile(t *testing.T) {
	ws := []workload.Workload{
		{ID: "bad", Cgroups: workload.Cgroups{V2: "/system.slice/bad.service"}},
		{ID: "app", Cgroups: workload.Cgroups{V2: "/system.slice/app.service"}},
	}
	s := NewSample(time.Now(), ws)
	err := NewCgroupCollector(cgFixtureRoots("v2")).Collect(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), filepath.Join("bad.service", "cpu.stat")) {
		t.Fatalf("err = %v, want one naming bad.service/cpu.stat", err)
	}
	wantNo(t, "bad", s.Groups["bad"], CgCPUUsageSec)
	wantVal(t, "bad", s.Groups["bad"], CgMemoryBytes, 4096)
	wantVal(t, "app (after a bad one)", s.Groups["app"], CgCPUUsageSec, 2.5)
}

func TestCgroupCollectorNoHierarchy(t *testing.T) {
	s := NewSample(time.Now(), nil)
	err := NewCgroupCollector(host.Roots{Cgroup: t.TempDir()}).Collect(context.Background(), s)
	if !errors.Is(err, ErrNotSupported) {
		t.Fatalf("err = %v, want not supported", err)
	}
}

func TestCgroupParsersMalformed(t *testing.T) {
	if _, err := parseSingleUint([]byte("max\n")); err == nil {
		t.Error("parseSingleUint(max) succeeded")
	}
	if err := parseFlatKeyed([]byte("usage_usec 1 2\n"), func(string, uint64) {}); err == nil {
		t.Error("parseFlatKeyed accepted three fields")
	}
	for _, in := range []string{"rbytes=1\n", "8:0 rbytes\n", "8:0 rbytes=-1\n"} {
		if _, err := parseIOStat([]byte(in)); err == nil {
			t.Errorf("parseIOStat(%q) succeeded", in)
		}
	}
	for _, in := range []string{"8:0 Read x\n", "8:0 Read\n", "garbage\n"} {
		if _, _, err := parseBlkioRW([]byte(in)); err == nil {
			t.Errorf("parseBlkioRW(%q) succeeded", in)
		}
	}
	// The empty blkio file of an idle v1 cgroup is "Total 0".
	if r, w, err := parseBlkioRW([]byte("Total 0\n")); err != nil || r != 0 || w != 0 {
		t.Errorf("parseBlkioRW(Total 0) = %d, %d, %v", r, w, err)
	}
}

// TestCgroupCollectorRealV1 puts a CPU-spinning process into fresh v1
// cpu, cpuacct and memory cgroups and reads them.
func TestCgroupCollectorRealV1(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	roots := host.DefaultRoots()
	l, err := discoverCgroups(roots)
	if err != nil {
		t.Fatal(err)
	}
	name := "sculpt-test-" + strconv.Itoa(os.Getpid())
	cg := workload.Cgroups{V1: map[string]string{}}
	cmd := testload.Start(t, "cpu", nil)
	pid := strconv.Itoa(cmd.Process.Pid)
	for _, ctl := range []string{"cpu", "cpuacct", "memory"} {
		mount, ok := l.v1[ctl]
		if !ok {
			t.Skipf("v1 controller %s not mounted under %s", ctl, roots.Cgroup)
		}
		dir := filepath.Join(mount, name)
		if _, done := cg.V1[ctl]; done {
			continue // co-mounted with an earlier controller (cpu,cpuacct)
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("create cgroup: %v", err)
		}
		t.Cleanup(func() {
			// Move the process out (it may be dead already), then remove.
			_ = os.WriteFile(filepath.Join(mount, "cgroup.procs"), []byte(pid), 0o644)
			for i := 0; i < 50; i++ {
				if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
					return
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Errorf("cgroup %s left behind", dir)
		})
		if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(pid), 0o644); err != nil {
			t.Fatalf("move %s into %s: %v", pid, dir, err)
		}
		for c, m := range l.v1 {
			if m == mount {
				cg.V1[c] = "/" + name
			}
		}
	}
	ws := []workload.Workload{{ID: "spin", Cgroups: cg}}
	c := NewCgroupCollector(roots)
	read := func() *Values {
		s := NewSample(time.Now(), ws)
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		return s.Groups["spin"]
	}
	first := read()
	u1, ok1 := first.Get(CgCPUUsageSec)
	var second *Values
	var u2 float64
	var ok2 bool
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		second = read()
		if u2, ok2 = second.Get(CgCPUUsageSec); ok2 && u2 > u1 {
			break
		}
	}
	if !ok1 || !ok2 || u2 <= u1 {
		t.Errorf("cgroup CPU usage did not grow: %v(%v) -> %v(%v)", u1, ok1, u2, ok2)
	}
	if m, ok := second.Get(CgMemoryBytes); !ok || m <= 0 {
		t.Errorf("cgroup memory = %v (present %v), want > 0", m, ok)
	}
}

// TestCgroupCollectorRealV2 puts a CPU-spinning process into a fresh cgroup
// of the unified hierarchy, wherever it is mounted, and reads it.
func TestCgroupCollectorRealV2(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups")
	}
	roots := host.DefaultRoots()
	l, err := discoverCgroups(roots)
	if err != nil {
		t.Fatal(err)
	}
	if l.v2 == "" {
		t.Skip("no cgroup2 mount under " + roots.Cgroup)
	}
	name := "sculpt-test-v2-" + strconv.Itoa(os.Getpid())
	dir := filepath.Join(l.v2, name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatalf("create cgroup: %v", err)
	}
	cmd := testload.Start(t, "cpu", nil)
	pid := strconv.Itoa(cmd.Process.Pid)
	t.Cleanup(func() {
		_ = os.WriteFile(filepath.Join(l.v2, "cgroup.procs"), []byte(pid), 0o644)
		for i := 0; i < 50; i++ {
			if err := os.Remove(dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		t.Errorf("cgroup %s left behind", dir)
	})
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(pid), 0o644); err != nil {
		t.Fatalf("move %s into %s: %v", pid, dir, err)
	}
	ws := []workload.Workload{{ID: "spin", Cgroups: workload.Cgroups{V2: "/" + name}}}
	c := NewCgroupCollector(roots)
	read := func() *Values {
		s := NewSample(time.Now(), ws)
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		return s.Groups["spin"]
	}
	first := read()
	u1, ok1 := first.Get(CgCPUUsageSec)
	var second *Values
	var u2 float64
	var ok2 bool
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
		second = read()
		if u2, ok2 = second.Get(CgCPUUsageSec); ok2 && u2 > u1 {
			break
		}
	}
	if !ok1 || !ok2 || u2 <= u1 {
		t.Errorf("v2 cgroup CPU usage did not grow: %v(%v) -> %v(%v)", u1, ok1, u2, ok2)
	}
	if _, err := os.Stat(filepath.Join(dir, "cpu.pressure")); err == nil && !second.Has(PSICPUSomeSec) {
		t.Error("cpu.pressure exists but psi_cpu_some_seconds is absent")
	}
}

// Workloads sharing a cgroup get the same values from one read per sweep, a
// malformed file of it is reported once, and the next sweep reads afresh.
func TestCgroupCollectorSharedCgroupReadOncePerSweep(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "cgroup", "v2"))); err != nil {
		t.Fatal(err)
	}
	roots := host.Roots{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Cgroup: filepath.Join(dir, "sys", "fs", "cgroup")}
	ws := []workload.Workload{
		{ID: "a", Cgroups: workload.Cgroups{V2: "/system.slice/app.service"}},
		{ID: "bad1", Cgroups: workload.Cgroups{V2: "/system.slice/bad.service"}},
		{ID: "b", Cgroups: workload.Cgroups{V2: "/system.slice/app.service"}},
		{ID: "bad2", Cgroups: workload.Cgroups{V2: "/system.slice/bad.service"}},
	}
	c := NewCgroupCollector(roots)
	s := NewSample(time.Now(), ws)
	err := c.Collect(context.Background(), s)
	if err == nil {
		t.Fatal("no error for bad.service/cpu.stat")
	}
	if n := strings.Count(err.Error(), "bad.service"); n != 1 {
		t.Errorf("error names bad.service %d times, want once: %v", n, err)
	}
	for _, id := range []string{"a", "b"} {
		wantVal(t, id, s.Groups[id], CgCPUUsageSec, 2.5)
		wantVal(t, id, s.Groups[id], CgMemoryBytes, 104857600)
		wantVal(t, id, s.Groups[id], PSICPUSomeSec, 1.5)
	}
	for _, id := range []string{"bad1", "bad2"} {
		wantNo(t, id, s.Groups[id], CgCPUUsageSec)
		wantVal(t, id, s.Groups[id], CgMemoryBytes, 4096)
	}
	mem := filepath.Join(roots.Cgroup, "system.slice", "app.service", "memory.current")
	if err := os.WriteFile(mem, []byte("2048\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s = NewSample(time.Now(), ws)
	_ = c.Collect(context.Background(), s)
	for _, id := range []string{"a", "b"} {
		wantVal(t, id+" (second sweep)", s.Groups[id], CgMemoryBytes, 2048)
	}
}
