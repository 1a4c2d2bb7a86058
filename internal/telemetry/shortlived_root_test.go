package telemetry_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/host"
	"sculpt/internal/telemetry"
	"sculpt/internal/workload"
)

// spinners is a shell loop of 12 CPU spinners of 0.2-0.5 s, one after
// another, each a `timeout` running a shell busy loop: three generations of
// short-lived processes under the driver.
const spinners = `for i in 2 3 4 5 2 3 4 5 2 3 4 5; do timeout 0.$i sh -c 'while :; do :; done'; done`

// driver is a process running script between two lines of its stdin: it
// waits for "go", runs script, prints "done" and waits for the end (so that
// it has reaped every child and is still there to be read).
type driver struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out *bufio.Reader
}

func startDriver(t *testing.T, script string) *driver {
	t.Helper()
	cmd := exec.Command("sh", "-c", "read go; "+script+"; echo done; read end")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start driver: %v", err)
	}
	t.Cleanup(func() {
		_ = in.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return &driver{cmd: cmd, in: in, out: bufio.NewReader(out)}
}

// lifeCPU reads the driver's own CPU plus that of every child it reaped
// (utime+stime+cutime+cstime of /proc/PID/stat), in seconds: the kernel's
// account, independent of the sampler.
func lifeCPU(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	var ticks float64
	for _, i := range []int{14, 15, 16, 17} { // fields counted from 1; f[0] is field 3
		v, err := strconv.ParseFloat(f[i-3], 64)
		if err != nil {
			t.Fatalf("stat field %d of %d: %v", i, pid, err)
		}
		ticks += v
	}
	return ticks / telemetry.UserHZ
}

// measure samples the workload sel selects (it must select one) with the
// real Discoverer and default Sampler every interval while the driver runs,
// and returns Σ cpu_util × interval (through dna's genes) and the CPU the
// kernel says the driver and its children used meanwhile.
func measure(t *testing.T, d *driver, sel workload.Selector, wantKind workload.Kind, interval time.Duration) (counted, truth float64, frames []telemetry.Frame) {
	t.Helper()
	roots := host.DefaultRoots()
	smp, notes, err := telemetry.NewDefaultSampler(roots, telemetry.DefaultOptions{NoPerf: true, NoEBPF: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notes {
		t.Logf("telemetry note: %s", n)
	}
	t.Cleanup(func() { _ = smp.Close() })
	disc := workload.NewDiscoverer(roots, workload.Options{Self: os.Getpid()})
	var id string
	sweep := func() {
		t.Helper()
		ws, err := disc.Discover(sel)
		if err != nil {
			t.Fatalf("discover: %v", err)
		}
		if len(ws) != 1 {
			t.Fatalf("discovered %d workloads, want 1", len(ws))
		}
		if ws[0].Kind != wantKind {
			t.Fatalf("workload %s is a %s, want a %s", ws[0].ID, ws[0].Kind, wantKind)
		}
		if id == "" {
			id = ws[0].ID
		} else if ws[0].ID != id {
			t.Fatalf("workload ID changed from %s to %s", id, ws[0].ID)
		}
		res, err := smp.Sweep(context.Background(), ws)
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, res.Frames[0])
	}
	pid := d.cmd.Process.Pid
	before := lifeCPU(t, pid) // the driver waits for "go": nothing runs
	sweep()
	if _, err := io.WriteString(d.in, "go\n"); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		line, err := d.out.ReadString('\n')
		if err == nil && line != "done\n" {
			err = fmt.Errorf("driver said %q, want done", line)
		}
		done <- err
	}()
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
		case <-tick.C:
		}
		sweep()
	}
	truth = lifeCPU(t, pid) - before // the driver waits for the end: nothing runs
	var secs float64
	for _, f := range frames {
		secs += f.Interval.Seconds()
	}
	g, _ := dna.ComputeGenes(frames)
	util, ok := g["cpu_util"]
	if !ok {
		t.Fatal("cpu_util absent")
	}
	t.Logf("%s: %d sweeps over %.2f s: counted %.3f s of CPU (cpu_util %.3f), the kernel says %.3f s; user_frac %.3f",
		id, len(frames), secs, util*secs, util, truth, g["user_frac"])
	if uf, ok := g["user_frac"]; !ok || uf < 0 || uf > 1 {
		t.Errorf("user_frac = %v (present %v), want within 0..1", uf, ok)
	}
	return util * secs, truth, frames
}

func requireRootShell(t *testing.T, progs ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: reads other processes' io and schedstat, creates cgroups")
	}
	for _, p := range append([]string{"sh", "timeout"}, progs...) {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("needs %s: %v", p, err)
		}
	}
}

func within10(t *testing.T, counted, truth float64) {
	t.Helper()
	if truth < 0.3 {
		// 10% of it is within a few clock ticks (10 ms) of rounding.
		t.Skipf("the machine is so crowded that the load used only %.3f s of CPU: too little to judge", truth)
	}
	if math.Abs(counted-truth) > 0.1*truth {
		t.Errorf("counted %.3f s of CPU, the kernel says %.3f s: off by %.1f%%, want within 10%%",
			counted, truth, 100*(counted-truth)/truth)
	}
}

// A tree workload made of short-lived processes is counted within 10% of
// the CPU it used.
func TestShortLivedTreeCounted(t *testing.T) {
	requireRootShell(t)
	d := startDriver(t, spinners)
	counted, truth, frames := measure(t, d, workload.Selector{PIDs: []int{d.cmd.Process.Pid}}, workload.KindTree, 700*time.Millisecond)
	within10(t, counted, truth)
	for _, f := range frames {
		if v, ok := f.Values.Get(telemetry.CgCPUUsageSec); ok {
			t.Errorf("tree workload got the CPU usage of its cgroup (%v s), which is not its own", v)
			break
		}
	}
}

// The same loop in a cgroup of its own, discovered as a cgroup workload:
// counted from the cgroup's CPU usage.
func TestShortLivedCgroupCounted(t *testing.T) {
	requireRootShell(t)
	d := startDriver(t, spinners)
	name := "sculpt-shortlived-" + strconv.Itoa(os.Getpid())
	pid := strconv.Itoa(d.cmd.Process.Pid)
	moved := false
	for _, ctl := range []string{"cpuacct", "cpu,cpuacct", "unified", ""} {
		mount := filepath.Join("/sys/fs/cgroup", ctl)
		v2, _ := os.Stat(filepath.Join(mount, "cgroup.controllers"))
		if ctl == "unified" || ctl == "" {
			if v2 == nil {
				continue
			}
			if b, err := os.ReadFile(filepath.Join(mount, "cgroup.subtree_control")); err != nil || !strings.Contains(string(b), "cpu") {
				continue // v2 without the cpu controller: cpu.stat still has usage_usec
			}
		} else if _, err := os.Stat(filepath.Join(mount, "cpuacct.usage")); err != nil {
			continue
		}
		dir := filepath.Join(mount, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("create cgroup: %v", err)
		}
		t.Cleanup(func() {
			_ = os.WriteFile(filepath.Join(mount, "cgroup.procs"), []byte(pid), 0o644)
			for range 50 {
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
		moved = true
		break
	}
	if !moved {
		t.Skip("no cpuacct (v1) or cgroup2 hierarchy with CPU usage under /sys/fs/cgroup")
	}
	counted, truth, frames := measure(t, d, workload.Selector{Cgroups: []string{"/" + name}}, workload.KindCgroup, 700*time.Millisecond)
	within10(t, counted, truth)
	n := 0
	for _, f := range frames {
		if _, ok := f.Values.Get(telemetry.CgCPUUsageSec); ok {
			n++
		}
	}
	if n < len(frames)-1 {
		t.Errorf("%d of %d frames had the cgroup's CPU usage, want all but the first", n, len(frames))
	}
}

// A `make -j2` fork storm: each target a CPU burst of a shell loop, two at a
// time, as a tree workload.
func TestShortLivedMakeStormCounted(t *testing.T) {
	requireRootShell(t, "make")
	dir := t.TempDir()
	var mk strings.Builder
	var all []string
	for i := range 16 {
		all = append(all, "t"+strconv.Itoa(i))
	}
	fmt.Fprintf(&mk, "all: %s\n", strings.Join(all, " "))
	for i, tg := range all {
		// A burst of about 0.1-0.3 s here, each recipe a shell of its own.
		fmt.Fprintf(&mk, "%s:\n\t@i=0; while [ $$i -lt %d ]; do i=$$((i+1)); done\n", tg, 100000+50000*(i%3))
	}
	path := filepath.Join(dir, "Makefile")
	if err := os.WriteFile(path, []byte(mk.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDriver(t, "make -s -j2 -f "+path)
	counted, truth, _ := measure(t, d, workload.Selector{PIDs: []int{d.cmd.Process.Pid}}, workload.KindTree, 500*time.Millisecond)
	within10(t, counted, truth)
}
