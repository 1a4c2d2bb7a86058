package linux

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sculpt/internal/hal"
	"sculpt/internal/host"
)

func TestParseStat(t *testing.T) {
	// comm with spaces and a parenthesis, as the kernel allows.
	line := "4242 (we(ird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 5 3 0 0 20 0 21 0 987654 1000 200 18446744073709551615\n"
	comm, start, err := parseStat([]byte(line))
	if err != nil || comm != "we(ird) name" || start != 987654 {
		t.Errorf("parseStat = %q, %d, %v", comm, start, err)
	}
	if _, _, err := parseStat([]byte("4242 (x) S 1 2")); err == nil {
		t.Error("short stat accepted")
	}
}

func TestParseProcCgroup(t *testing.T) {
	got := parseProcCgroup([]byte("12:cpu,cpuacct:/kubepods/pod1\n3:cpuset:/sculpt/web\n1:name=systemd:/\n0::/system.slice/x.service\n"))
	want := map[string]string{"cpu": "/kubepods/pod1", "cpuacct": "/kubepods/pod1", "cpuset": "/sculpt/web", "name=systemd": "/", "": "/system.slice/x.service"}
	if len(got) != len(want) {
		t.Fatalf("got %v", got)
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%q -> %q, want %q", k, got[k], v)
		}
	}
}

func TestParseCPUMaxAndWeight(t *testing.T) {
	for in, want := range map[string][2]int64{"max 100000": {-1, 100000}, "50000 20000": {50000, 20000}} {
		q, p, err := parseCPUMax(in)
		if err != nil || q != want[0] || int64(p) != want[1] {
			t.Errorf("parseCPUMax(%q) = %d %d %v", in, q, p, err)
		}
	}
	for _, bad := range []string{"", "max", "x 100", "100 y"} {
		if _, _, err := parseCPUMax(bad); err == nil {
			t.Errorf("parseCPUMax(%q) accepted", bad)
		}
	}
	for in, want := range map[string]uint64{"100": 100, "default 300\n8:0 200": 300} {
		if w, err := parseWeight(in); err != nil || w != want {
			t.Errorf("parseWeight(%q) = %d, %v", in, w, err)
		}
	}
}

// fakeRoots builds a /proc, /sys and cgroup tree under a temp dir; files is
// path (relative to the temp dir) -> contents.
func fakeRoots(t *testing.T, files map[string]string) host.Roots {
	t.Helper()
	dir := t.TempDir()
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return host.Roots{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Cgroup: filepath.Join(dir, "cgroup")}
}

func TestProbeHierarchies(t *testing.T) {
	hybrid := fakeRoots(t, map[string]string{
		"cgroup/cpuset/cgroup.procs":            "",
		"cgroup/cpu/cgroup.procs":               "",
		"cgroup/unified/cgroup.controllers":     "hugetlb io",
		"sys/devices/system/cpu/online":         "0-1\n",
		"sys/devices/system/node/node0/cpulist": "0-1",
	})
	h := probeHierarchies(hybrid)
	if h["cpuset"].v2 || !strings.HasSuffix(h["cpuset"].dir, "cgroup/cpuset") || h["cpu"].v2 {
		t.Errorf("hybrid: cpuset/cpu should be v1: %+v", h)
	}
	if !h["blkio"].v2 || !strings.HasSuffix(h["blkio"].dir, "unified") {
		t.Errorf("hybrid: blkio should come from the unified io controller: %+v", h["blkio"])
	}
	pure := fakeRoots(t, map[string]string{"cgroup/cgroup.controllers": "cpuset cpu memory"})
	h = probeHierarchies(pure)
	if !h["cpuset"].v2 || !h["cpu"].v2 || h["cpu"].dir != pure.Cgroup {
		t.Errorf("pure v2: %+v", h)
	}
	if _, ok := h["blkio"]; ok {
		t.Errorf("pure v2 without io controller offers blkio: %+v", h)
	}
	none := fakeRoots(t, map[string]string{"cgroup/x": ""})
	if h = probeHierarchies(none); len(h) != 0 {
		t.Errorf("no cgroups: %+v", h)
	}
}

func TestCapabilitiesOnFixture(t *testing.T) {
	roots := fakeRoots(t, map[string]string{
		"cgroup/cgroup.controllers":               "cpuset memory",
		"sys/devices/system/cpu/online":           "0-3\n",
		"sys/devices/system/node/has_memory":      "0\n",
		"sys/devices/system/node/node0/x":         "",
		"sys/class/net/eth0/queues/rx-0/rps_cpus": "0\n",
		"proc/irq/default_smp_affinity":           "f\n",
	})
	b, err := New(roots, Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := b.Capabilities()
	if !c.Cpuset.Supported || !strings.Contains(c.Cpuset.Detail, "v2") {
		t.Errorf("cpuset: %+v", c.Cpuset)
	}
	if c.CPUWeight.Supported || !strings.Contains(c.CPUWeight.Reason, "no cpu controller") {
		t.Errorf("cpu weight without a cpu controller: %+v", c.CPUWeight)
	}
	if c.MemMigrate.Supported || !strings.Contains(c.MemMigrate.Reason, "one NUMA node") {
		t.Errorf("mem migrate on one node: %+v", c.MemMigrate)
	}
	if c.SRIOV.Supported || c.PCIeLanes.Supported || !c.QueueMasks.Supported || !c.IRQAffinity.Supported {
		t.Errorf("sriov %+v pcie %+v queues %+v irq %+v", c.SRIOV, c.PCIeLanes, c.QueueMasks, c.IRQAffinity)
	}
	// Apply refuses what the machine cannot do, naming the reason.
	err = b.Check(hal.SetCgroupCPU{Cgroup: "/a", Weight: new(uint64(100))})
	if err == nil || !strings.Contains(err.Error(), "not supported: no cpu controller") {
		t.Errorf("Check(weight) = %v", err)
	}
	if err := b.Check(hal.PinThreads{PID: 1, CPUs: []int{3}}); err != nil && strings.Contains(err.Error(), "online") {
		t.Errorf("CPU 3 is online in the fixture: %v", err)
	}
}

func TestReadCPULimitsFixture(t *testing.T) {
	roots := fakeRoots(t, map[string]string{
		"cgroup/cpu/a/cpu.shares":        "512\n",
		"cgroup/cpu/a/cpu.cfs_quota_us":  "-1\n",
		"cgroup/cpu/a/cpu.cfs_period_us": "100000\n",
		"cgroup/b/cpu.weight":            "200\n",
		"cgroup/b/cpu.max":               "50000 100000\n",
	})
	l, err := readCPULimits(filepath.Join(roots.Cgroup, "cpu/a"), false)
	if err != nil || l.Shares != 512 || l.QuotaUS != -1 || l.PeriodUS != 100000 {
		t.Errorf("v1: %+v %v", l, err)
	}
	l, err = readCPULimits(filepath.Join(roots.Cgroup, "b"), true)
	if err != nil || l.Weight != 200 || l.QuotaUS != 50000 || l.PeriodUS != 100000 {
		t.Errorf("v2: %+v %v", l, err)
	}
	// v2 write of a quota keeps the period; the file holds what the kernel would get.
	dir := filepath.Join(roots.Cgroup, "b")
	if err := writeCPULimits(dir, true, hal.SetCgroupCPU{QuotaUS: new(int64(-1))}, l); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(filepath.Join(dir, "cpu.max")); string(got) != "max 100000" {
		t.Errorf("cpu.max = %q", got)
	}
}

// NUMABalancing reads kernel.numa_balancing: on, off, or absent (a kernel
// without CONFIG_NUMA_BALANCING), and says who owns page placement.
func TestNUMABalancing(t *testing.T) {
	dir := t.TempDir()
	roots := host.Roots{Proc: dir, Sys: dir, Cgroup: dir}
	if c := NUMABalancing(roots); c.Supported || !strings.Contains(c.Reason, "unreadable") {
		t.Errorf("absent: %+v, want not supported, unreadable", c)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sys", "kernel"), 0o755); err != nil {
		t.Fatal(err)
	}
	for v, on := range map[string]bool{"0\n": false, "1\n": true, "2\n": true} {
		if err := os.WriteFile(filepath.Join(dir, "sys", "kernel", "numa_balancing"), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
		c := NUMABalancing(roots)
		if c.Supported != on {
			t.Errorf("numa_balancing %q: supported %v, want %v (%+v)", v, c.Supported, on, c)
		}
		if want := "sculpt owns page placement"; !on && !strings.Contains(c.Reason, want) {
			t.Errorf("numa_balancing %q: reason %q, want it to say %q", v, c.Reason, want)
		}
	}
}
