package telemetry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sculpt/internal/host"
)

func TestProbeSourcesReal(t *testing.T) {
	st := ProbeSources(host.DefaultRoots())
	byName := map[string]SourceStatus{}
	for _, s := range st {
		t.Logf("%-14s available=%-5v detail=%q reason=%q", s.Name, s.Available, s.Detail, s.Reason)
		if s.Available == (s.Reason != "") {
			t.Errorf("%s: Available=%v but Reason=%q", s.Name, s.Available, s.Reason)
		}
		byName[s.Name] = s
	}
	for _, n := range []string{SourceProcfs, SourceCgroupV1, SourceCgroupV2, SourcePSI, SourcePerfSoftware, SourcePerfHardware, SourceEBPF, SourceNUMAMaps, SourceRAPL} {
		if _, ok := byName[n]; !ok {
			t.Errorf("source %s not probed", n)
		}
	}
	if !byName[SourceProcfs].Available {
		t.Errorf("procfs unavailable on a Linux machine: %s", byName[SourceProcfs].Reason)
	}
	if !byName[SourcePerfHardware].Available && !strings.Contains(byName[SourcePerfHardware].Reason, "perf_event_open(cycles)") {
		t.Errorf("perf-hardware reason %q does not name the failing call", byName[SourcePerfHardware].Reason)
	}
	// Cached: a second call returns the same answer.
	if again := ProbeSources(host.DefaultRoots()); len(again) != len(st) || again[0] != st[0] {
		t.Errorf("second probe differs")
	}
}

func TestProbeSourcesMissingRoots(t *testing.T) {
	dir := t.TempDir()
	roots := host.Roots{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Cgroup: filepath.Join(dir, "cgroup")}
	for _, s := range ProbeSources(roots) {
		switch s.Name {
		case SourceProcfs, SourceCgroupV1, SourceCgroupV2, SourcePSI, SourceNUMAMaps, SourceRAPL:
			if s.Available || !strings.Contains(s.Reason, dir) {
				t.Errorf("%s on empty roots: available=%v reason=%q (want unavailable naming the path)", s.Name, s.Available, s.Reason)
			}
		}
	}
}

func TestDiscoverCgroupsFixtures(t *testing.T) {
	cases := []struct {
		tree string
		v2   string // relative to the tree, "-" for none
		v1   map[string]string
	}{
		{"v2", ".", nil},
		{"v1", "-", map[string]string{"cpu": "cpu,cpuacct", "cpuacct": "cpu,cpuacct", "memory": "memory", "blkio": "blkio"}},
		{"hybrid", "unified", map[string]string{"cpu": "cpu", "cpuacct": "cpuacct", "memory": "memory", "blkio": "blkio"}},
	}
	for _, c := range cases {
		t.Run(c.tree, func(t *testing.T) {
			root := filepath.Join("testdata", "cgroup", c.tree, "sys", "fs", "cgroup")
			l, err := discoverCgroups(host.Roots{Cgroup: root})
			if err != nil {
				t.Fatal(err)
			}
			wantV2 := ""
			if c.v2 != "-" {
				wantV2 = filepath.Join(root, c.v2)
			}
			if l.v2 != wantV2 {
				t.Errorf("v2 = %q, want %q", l.v2, wantV2)
			}
			if len(l.v1) != len(c.v1) {
				t.Errorf("v1 = %v, want %v", l.v1, c.v1)
			}
			for ctl, dir := range c.v1 {
				if got := l.v1[ctl]; got != filepath.Join(root, dir) {
					t.Errorf("v1[%s] = %q, want %q", ctl, got, filepath.Join(root, dir))
				}
			}
		})
	}
	if _, err := os.Stat("testdata"); err != nil {
		t.Fatal(err)
	}
}
