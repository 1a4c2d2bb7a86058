package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestMedianRatio(t *testing.T) {
	ms := time.Millisecond
	if got := medianRatio([]time.Duration{2 * ms, 30 * ms, 3 * ms}, []time.Duration{ms, ms, ms}); got != 3 {
		t.Errorf("odd: got %v, want 3", got)
	}
	if got := medianRatio([]time.Duration{2 * ms, 4 * ms}, []time.Duration{ms, ms}); got != 3 {
		t.Errorf("even: got %v, want 3", got)
	}
	if got := medianRatio([]time.Duration{ms}, []time.Duration{0}); got != 0 {
		t.Errorf("zero floor: got %v, want 0", got)
	}
}

// TestProfilerCancelReapsProcesses cancels the benchmark while it measures
// and checks that it returns the context's error with every process it
// started gone.
func TestProfilerCancelReapsProcesses(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		_, err := Profiler(ctx, ProfilerOptions{Ns: []int{30}, MinCPU: time.Hour}, pw)
		_ = pw.Close()
		done <- err
	}()
	buf := make([]byte, 4096)
	var out []byte
	for {
		n, err := pr.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			t.Fatalf("progress ended before measuring: %q", out)
		}
		if bytes.Contains(out, []byte("measuring")) {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	pids := childPIDs(t)
	if len(pids) < 30 {
		t.Fatalf("%d children while measuring, want 30", len(pids))
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Profiler after cancel: %v, want context.Canceled", err)
	}
	for _, pid := range pids {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); err == nil {
			t.Errorf("pid %d still exists after Profiler returned", pid)
		}
	}
}

// childPIDs lists this process's children.
func childPIDs(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	self := strconv.Itoa(os.Getpid())
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ppid, err := parentOf(pid); err == nil && ppid == self {
			pids = append(pids, pid)
		}
	}
	return pids
}

func parentOf(pid int) (string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", err
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 2 {
		return "", os.ErrInvalid
	}
	return f[1], nil
}
