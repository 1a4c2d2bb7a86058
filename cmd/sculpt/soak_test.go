package main

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat"
)

// The soak (docs/reliability.md): SOAK_WORKLOADS workloads churn under
// `sculpt run --mode apply --interval 1s` for SOAK_MINUTES — each a cgroup
// of its own (cg:/…/wN, named with --cgroup) whose process runs CPU and
// sleep phases and exits after a random number of them, to be replaced by a
// new one (PIDs are reused: pid_max is what the machine has), a quarter of
// them inside a child cgroup created for it and removed after it. sculpt's
// RSS, open descriptors, goroutines and CPU per tick are sampled every
// SOAK_SAMPLE and fitted with a line; nothing may grow without bound.
// Without SOAK_MINUTES it is the CI version: 2 minutes, 50 workloads, a
// sample each 10 s (`make soak` runs 30 minutes of 1000).

type soakSample struct {
	at                  time.Duration
	rssKB, fds, gorouts float64
	cpuPerTick          float64 // CPU seconds sculpt used per second since the last sample (interval 1 s)
}

func soakEnv(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive number", name, v)
	}
	return n
}

// soakChurn keeps n workload cgroups under parent busy with processes that
// come and go until ctx ends; it returns how many processes it started and
// child cgroups it created.
func soakChurn(ctx context.Context, parent string, n int, seed uint64) (procs, cgs *atomic.Int64, wait func()) {
	var np, nc atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(seed, uint64(i)))
			dir := filepath.Join(parent, "w"+strconv.Itoa(i))
			for gen := 0; ctx.Err() == nil; gen++ {
				cg := dir
				if i%4 == 0 {
					cg = filepath.Join(dir, "c"+strconv.Itoa(gen))
					if err := os.Mkdir(cg, 0o755); err != nil {
						return
					}
					nc.Add(1)
				}
				// Phases: spin a little (CPU), sleep 1-4 s; 1-8 of them, then exit.
				script := fmt.Sprintf(`echo $$ > %s/cgroup.procs || exit 1; n=%d
while [ $n -gt 0 ]; do i=0; while [ $i -lt %d ]; do i=$((i+1)); done; sleep %d; n=$((n-1)); done`,
					cg, 1+rnd.IntN(8), 200+rnd.IntN(800), 1+rnd.IntN(4))
				cmd := exec.CommandContext(ctx, "sh", "-c", script)
				if cmd.Start() == nil {
					np.Add(1)
					_ = cmd.Wait()
				}
				if cg != dir {
					// Gone once empty; sculpt may still hold the exited
					// process's cgroup for a moment.
					for k := 0; k < 50 && os.Remove(cg) != nil; k++ {
						time.Sleep(100 * time.Millisecond)
					}
				}
				if ctx.Err() == nil {
					time.Sleep(time.Duration(rnd.IntN(1000)) * time.Millisecond)
				}
			}
		}(i)
	}
	return &np, &nc, wg.Wait
}

// procFigures reads pid's RSS (KB), open descriptors and utime+stime (ticks).
func procFigures(pid int) (rss, fds, ticks float64, err error) {
	p := "/proc/" + strconv.Itoa(pid)
	st, err := os.ReadFile(p + "/status")
	if err != nil {
		return 0, 0, 0, err
	}
	for _, l := range strings.Split(string(st), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			rss, _ = strconv.ParseFloat(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 64)
		}
	}
	ents, err := os.ReadDir(p + "/fd")
	if err != nil {
		return 0, 0, 0, err
	}
	stat, err := os.ReadFile(p + "/stat")
	if err != nil {
		return 0, 0, 0, err
	}
	s := string(stat)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	ut, _ := strconv.ParseFloat(f[11], 64) // field 14
	stt, _ := strconv.ParseFloat(f[12], 64)
	return rss, float64(len(ents)), ut + stt, nil
}

// goroutines reads go_goroutines from sculpt's /metrics over its socket.
func goroutines(sock string) (float64, error) {
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
	resp, err := c.Get("http://sculpt/metrics")
	if err != nil {
		return 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "go_goroutines "); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, fmt.Errorf("no go_goroutines in /metrics on %s", sock)
}

func TestSoak(t *testing.T) {
	actNeedRoot(t)
	minutes := soakEnv(t, "SOAK_MINUTES", 2)
	workloads := soakEnv(t, "SOAK_WORKLOADS", 50)
	every := 10 * time.Second
	if os.Getenv("SOAK_MINUTES") != "" {
		every = time.Duration(soakEnv(t, "SOAK_SAMPLE_SECONDS", 60)) * time.Second
	}
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh for the churning workloads")
	}
	parent := "/sys/fs/cgroup/cpu/sculpt-soak-" + strconv.Itoa(os.Getpid())
	if err := os.Mkdir(parent, 0o755); err != nil {
		t.Skipf("needs the cgroup v1 cpu hierarchy: %v", err)
	}
	args := []string{"run", "--mode", "apply", "--interval", "1s", "--for", fmt.Sprintf("%dm", minutes)}
	for i := 0; i < workloads; i++ {
		d := filepath.Join(parent, "w"+strconv.Itoa(i))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--cgroup", d)
	}
	t.Cleanup(func() {
		if err := removeCgroupTree(parent); err != nil {
			t.Errorf("remove %s after the soak: %v", parent, err)
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	procs, cgs, waitChurn := soakChurn(ctx, parent, workloads, uint64(time.Now().UnixNano()))
	defer func() { cancel(); waitChurn() }()

	dir := t.TempDir()
	sock, jp := filepath.Join(dir, "api.sock"), filepath.Join(dir, "journal.json")
	args = append(args, "--listen", sock, "--journal", jp, "--audit", filepath.Join(dir, "audit.jsonl"))
	time.Sleep(time.Second) // every workload has its first process
	cmd, out := sculptProc(t, nil, args...)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	pid := cmd.Process.Pid
	hz := 100.0 // USER_HZ on Linux

	var samples []soakSample
	start := time.Now()
	_, _, lastTicks, _ := procFigures(pid)
	lastAt := start
	tick := time.NewTicker(every)
	defer tick.Stop()
	var runErr error
	var kinds map[string]int
loop:
	for {
		select {
		case runErr = <-done:
			break loop
		case now := <-tick.C:
			rss, fds, ticks, err := procFigures(pid)
			if err != nil {
				continue // exiting
			}
			g, err := goroutines(sock)
			if err != nil {
				t.Logf("goroutines at %s: %v", now.Sub(start).Round(time.Second), err)
				continue
			}
			kinds = fdKinds(pid)
			samples = append(samples, soakSample{at: now.Sub(start), rssKB: rss, fds: fds, gorouts: g,
				cpuPerTick: (ticks - lastTicks) / hz / now.Sub(lastAt).Seconds()})
			lastTicks, lastAt = ticks, now
		}
	}
	if runErr != nil {
		t.Fatalf("sculpt run --mode apply over %d churning workloads: %v\n%s", workloads, runErr, lastLines(out.String(), 30))
	}
	if _, err := os.Stat(jp); err == nil && journalLen(t, jp) != 0 {
		t.Errorf("journal holds %d entries after the soak's clean exit", journalLen(t, jp))
	}
	t.Logf("sculpt's descriptors at the last sample, by kind: %v", kinds)
	if len(samples) < 6 {
		t.Fatalf("only %d samples", len(samples))
	}
	applied := strings.Count(readTrim(filepath.Join(dir, "audit.jsonl")), `"event":"applied"`)
	t.Logf("SOAK: %d workloads, %d min, %d processes started, %d child cgroups created and removed, %d actions applied, %d samples every %s",
		workloads, minutes, procs.Load(), cgs.Load(), applied, len(samples), every)
	// The first fifth is warm-up (the heap and the workload tables fill).
	warm := samples[len(samples)/5:]
	x := make([]float64, len(warm))
	for i, s := range warm {
		x[i] = s.at.Minutes()
	}
	t.Logf("%-22s %10s %10s %10s %10s %14s %16s", "metric", "first", "last", "min", "max", "slope /min", "slope x30min/mean")
	for _, m := range []struct {
		name  string
		get   func(soakSample) float64
		bound float64 // how far above the middle third the last third may be
	}{
		{"RSS (KiB)", func(s soakSample) float64 { return s.rssKB }, 1.25},
		{"open fds", func(s soakSample) float64 { return s.fds }, 1.25},
		{"goroutines", func(s soakSample) float64 { return s.gorouts }, 1.25},
		{"CPU s per 1 s tick", func(s soakSample) float64 { return s.cpuPerTick }, 0},
	} {
		y := make([]float64, len(warm))
		lo, hi := m.get(warm[0]), m.get(warm[0])
		for i, s := range warm {
			y[i] = m.get(s)
			lo, hi = min(lo, y[i]), max(hi, y[i])
		}
		_, beta := stat.LinearRegression(x, y, nil, false)
		mean := stat.Mean(y, nil)
		rel := 0.0
		if mean != 0 {
			rel = beta * 30 / mean
		}
		t.Logf("%-22s %10.3f %10.3f %10.3f %10.3f %14.4f %15.1f%%", m.name, y[0], y[len(y)-1], lo, hi, beta, 100*rel)
		if m.bound == 0 {
			continue // CPU follows the churn's phases; reported, not bounded
		}
		// Bounded: the last third's peak is not above the middle third's
		// peak by more than the bound (a leak keeps climbing; warm-up and
		// noise do not).
		third := len(y) / 3
		midMax, lastMax := 0.0, 0.0
		for _, v := range y[third : 2*third] {
			midMax = max(midMax, v)
		}
		for _, v := range y[2*third:] {
			lastMax = max(lastMax, v)
		}
		if lastMax > midMax*m.bound+2 {
			t.Errorf("%s grows: the last third peaks at %.0f, the middle third at %.0f", m.name, lastMax, midMax)
		}
	}
}

// removeCgroupTree kills what is left in the cgroups under dir (a workload's
// sleep outlives its killed shell for a moment) and removes them, children
// first.
func removeCgroupTree(dir string) error {
	var err error
	for try := 0; try < 50; try++ {
		var dirs []string
		_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, e error) error {
			if e == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			for _, f := range strings.Fields(readTrim(filepath.Join(dirs[i], "cgroup.procs"))) {
				if pid, e := strconv.Atoi(f); e == nil {
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
			err = os.Remove(dirs[i])
		}
		if _, e := os.Stat(dir); os.IsNotExist(e) {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// fdKinds counts pid's open descriptors by what they are (a file's
// directory, or the kind of anonymous inode, socket, pipe).
func fdKinds(pid int) map[string]int {
	dir := "/proc/" + strconv.Itoa(pid) + "/fd"
	ents, _ := os.ReadDir(dir)
	out := map[string]int{}
	for _, e := range ents {
		l, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		switch {
		case strings.HasPrefix(l, "/"):
			l = filepath.Dir(l)
			if strings.HasPrefix(l, "/proc/") {
				l = "/proc/*"
			}
		default:
			l, _, _ = strings.Cut(l, ":[")
		}
		out[l]++
	}
	return out
}
