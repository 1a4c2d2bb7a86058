package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sculpt/internal/host"
)

// needColocation skips the test unless it runs as root with the programs
// the co-location benchmark drives.
func needColocation(t *testing.T, opts ColocationOptions) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("co-location benchmark: needs root (nginx as root, cgroups)")
	}
	if _, _, err := colocationSetup(opts); err != nil {
		var missing *MissingProgramsError
		if errors.As(err, &missing) {
			t.Skipf("%v", err)
		}
		t.Fatal(err)
	}
}

// groupTracker records the process groups the benchmark starts and checks
// that none is left.
type groupTracker struct {
	mu   sync.Mutex
	pids []int
}

func (g *groupTracker) started(pid int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.pids = append(g.pids, pid)
}

func (g *groupTracker) checkGone(t *testing.T) {
	t.Helper()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, pgid := range g.pids {
		// Signal 0 to the group: ESRCH when no process is left in it.
		if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still has processes (kill: %v)", pgid, err)
		}
	}
}

// TestColocationAloneAndDefault runs the benchmark end to end, once, for
// the alone and Linux-default cases of both services, and checks the
// figures are there and every process it started is gone.
func TestColocationAloneAndDefault(t *testing.T) {
	var groups groupTracker
	opts := ColocationOptions{
		Cases: []string{CaseAlone, CaseDefault}, Runs: 1, Duration: 2 * time.Second,
		Warmup: time.Second, Rate: 2000, TempDir: t.TempDir(), started: groups.started,
	}
	needColocation(t, opts)
	var progress bytes.Buffer
	res, err := Colocation(context.Background(), opts, &progress)
	groups.checkGone(t)
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	// memcached and nginx (their open-loop clients are in-process) twice
	// each, 4 antagonists per default case.
	if len(groups.pids) != 1+1+1+1+4+4 {
		t.Errorf("%d process groups started, want 12", len(groups.pids))
	}
	if len(res.Services) != 2 {
		t.Fatalf("%d services, want 2", len(res.Services))
	}
	for _, s := range res.Services {
		if len(s.Cases) != 2 || s.Cases[0].Name != CaseAlone || s.Cases[1].Name != CaseDefault {
			t.Fatalf("%s: cases %+v, want alone and default", s.Service, s.Cases)
		}
		for _, c := range s.Cases {
			if len(c.Runs) != 1 || c.Runs[0].Err != "" {
				t.Errorf("%s %s: runs %+v, want one without error", s.Service, c.Name, c.Runs)
				continue
			}
			r := c.Runs[0]
			if r.P50Micros <= 0 || r.P99Micros < r.P50Micros || r.Throughput <= 0 || r.Requests == 0 {
				t.Errorf("%s %s: p50 %v p99 %v µs, %v req/s, %d requests", s.Service, c.Name, r.P50Micros, r.P99Micros, r.Throughput, r.Requests)
			}
			if c.Name == CaseAlone && len(r.Antagonists) != 0 {
				t.Errorf("%s alone: antagonists %v", s.Service, r.Antagonists)
			}
			if c.Name == CaseDefault {
				for _, k := range []string{"cpu", "cache", "vm", "io"} {
					if r.Antagonists[k] <= 0 {
						t.Errorf("%s default: antagonist %s throughput %v", s.Service, k, r.Antagonists[k])
					}
				}
			}
		}
		if d := s.Cases[1]; d.P99VsAlone <= 0 || d.AntagonistsVsDefaultMin == nil || *d.AntagonistsVsDefaultMin != 1 {
			t.Errorf("%s default: p99/alone %v, antagonists/default %v", s.Service, d.P99VsAlone, d.AntagonistsVsDefaultMin)
		}
	}
	if !strings.Contains(progress.String(), "starting antagonists cpu,cache,vm,io") {
		t.Errorf("progress does not say the antagonists start:\n%s", progress.String())
	}
	if ents, _ := os.ReadDir(opts.TempDir); len(ents) != 0 {
		t.Errorf("temporary files left in %s: %v", opts.TempDir, ents)
	}
}

// TestColocationCancelCleansUp cancels the benchmark while it measures and
// checks that it returns the context's error with no process or cgroup left.
func TestColocationCancelCleansUp(t *testing.T) {
	var groups groupTracker
	opts := ColocationOptions{
		Services: []string{"memcached"}, Cases: []string{CaseStatic}, Static: []string{"shares"},
		Antagonists: []string{"cpu", "vm"}, Runs: 1, Duration: time.Minute, TempDir: t.TempDir(),
		Roots: host.DefaultRoots(), started: groups.started,
	}
	needColocation(t, opts)
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := Colocation(ctx, opts, pw)
		_ = pw.Close() // io.PipeWriter.Close always returns nil
		done <- err
	}()
	var out []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(out, []byte("measuring")) {
		n, err := pr.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			t.Fatalf("progress ended before measuring: %s", out)
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // drain the rest of the progress
	if len(groups.pids) != 3 {
		t.Errorf("%d process groups while measuring, want 3 (memcached, 2 antagonists)", len(groups.pids))
	}
	cg, _ := filepath.Glob(opts.Roots.CgroupPath("cpu", "sculpt-bench-"+strconv.Itoa(os.Getpid())+"-*"))
	if len(cg) != 1 {
		t.Errorf("cgroups while measuring: %v, want one", cg)
	}
	// Each process is in a cgroup of its own in the grouping hierarchy.
	if gh := groupingHierarchy(opts.Roots.Cgroup); gh != "" {
		seen := map[string]bool{}
		for _, pid := range groups.pids {
			// The wrapper moves the process before it execs the program.
			var b []byte
			for range 500 {
				var err error
				if b, err = os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cgroup"); err != nil {
					t.Fatal(err)
				}
				if groupLine(b) != "" {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			line := groupLine(b)
			if line == "" {
				t.Errorf("pid %d not in a grouping cgroup:\n%s", pid, b)
				continue
			}
			seen[line] = true
		}
		if len(seen) != len(groups.pids) {
			t.Errorf("%d processes in %d grouping cgroups, want one each: %v", len(groups.pids), len(seen), seen)
		}
		gcg, _ := filepath.Glob(filepath.Join(gh, "sculpt-bench-"+strconv.Itoa(os.Getpid())+"-*"))
		cg = append(cg, gcg...)
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Colocation after cancel: %v, want context.Canceled", err)
	}
	groups.checkGone(t)
	for _, d := range cg {
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s left behind (stat: %v)", d, err)
		}
	}
}

// groupLine is the line of /proc/PID/cgroup that places the process in a
// grouping cgroup of the benchmark (".../sculpt-bench-<pid>-<run>/wN").
func groupLine(b []byte) string {
	for line := range strings.Lines(string(b)) {
		line = strings.TrimSpace(line)
		if strings.Contains(line, "/sculpt-bench-") && strings.Contains(line, "/w") {
			return line
		}
	}
	return ""
}

// TestColocationSculptUnavailable runs the sculpt case with an agent that
// exits at once, as "sculpt run --mode apply" does before the engine exists,
// and checks the case reports its stderr as unavailable instead of numbers.
func TestColocationSculptUnavailable(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "sculpt")
	msg := "sculpt: --mode apply is not available yet"
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho '"+msg+"' >&2\nexit 2\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var groups groupTracker
	opts := ColocationOptions{
		Sculpt: fake, Services: []string{"memcached"}, Cases: []string{CaseSculpt}, Runs: 3,
		Duration: time.Second, TempDir: dir, started: groups.started,
	}
	var steps []string
	opts.OnRun = func(done, total int) { steps = append(steps, fmt.Sprintf("%d/%d", done, total)) }
	needColocation(t, opts)
	res, err := Colocation(context.Background(), opts, io.Discard)
	groups.checkGone(t)
	if err != nil {
		t.Fatal(err)
	}
	c := res.Services[0].Cases[0]
	if c.Unavailable != "unavailable: "+msg || len(c.Runs) != 0 || c.P99Micros.N != 0 {
		t.Errorf("sculpt case: %+v, want unavailable with the agent's stderr and no runs", c)
	}
	// Every run counts for progress, the ones skipped as unavailable too.
	if got := strings.Join(steps, " "); got != "0/3 1/3 2/3 3/3" {
		t.Errorf("OnRun calls %q, want 0/3 1/3 2/3 3/3", got)
	}
	// It is not tried again in later runs: only the first run started it.
	if len(groups.pids) != 1 {
		t.Errorf("%d process groups started, want 1 (the agent, once)", len(groups.pids))
	}
	if res.Services[0].Targets != nil {
		t.Errorf("targets judged without a sculpt figure: %+v", res.Services[0].Targets)
	}
}
