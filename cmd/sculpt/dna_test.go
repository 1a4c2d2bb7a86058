package main

import (
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sculpt/internal/testload"
)

func TestDNABadInput(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"dna", "--window", "0s"}, "--window must be a positive duration"},
		{[]string{"dna", "--window", "-1s"}, "--window must be a positive duration"},
		{[]string{"dna", "--pid", "-3"}, "--pid -3"},
		{[]string{"dna", "--pid", "abc"}, "invalid argument"},
		{[]string{"dna", "--pid", strconv.Itoa(1 << 30), "--window", "100ms"}, "--pid 1073741824: no such process"},
		{[]string{"dna", "--pid", "2", "--window", "100ms"}, "--pid 2 is a kernel thread"},
		{[]string{"dna", "--cgroup", "/no/such/sculpt-cgroup", "--window", "100ms"}, "--cgroup /no/such/sculpt-cgroup: no such cgroup"},
		{[]string{"run", "--pid", strconv.Itoa(1 << 30), "--for", "1s"}, "--pid 1073741824: no such process"},
		{[]string{"record", "--out", "/tmp/sculpt-never-written.trace", "--pid", strconv.Itoa(1 << 30), "--for", "1s"}, "--pid 1073741824: no such process"},
		{[]string{"dna", "extra-arg"}, "unknown command"},
		{[]string{"run", "--mode", "explode"}, `--mode explode: want observe, advise or apply`},
		{[]string{"run", "--interval", "0s"}, "--interval must be a positive duration"},
	}
	for _, c := range cases {
		code, out, errs := runCLI(t, c.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", c.args, code, errs)
		}
		if !strings.Contains(errs, c.want) {
			t.Errorf("%v: stderr %q does not say %q", c.args, errs, c.want)
		}
		if out != "" {
			t.Errorf("%v: printed %q on stdout for bad input", c.args, out)
		}
	}
}

func TestDNAJSONContract(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read another process's io and fd table")
	}
	p := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"})
	code, out, errs := runCLI(t, "dna", "--pid", strconv.Itoa(p.Process.Pid), "--window", "1200ms", "--step", "400ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var doc struct {
		Workloads []struct {
			ID         string             `json:"id"`
			Name       string             `json:"name"`
			PIDs       []int              `json:"pids"`
			Cgroup     *string            `json:"cgroup"`
			Genes      map[string]float64 `json:"genes"`
			Embedding  []float64          `json:"embedding"`
			Archetype  *string            `json:"archetype"`
			Confidence *float64           `json:"confidence"`
			Novelty    any                `json:"novelty"`
		} `json:"workloads"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out)
	}
	if len(doc.Workloads) != 1 {
		t.Fatalf("%d workloads, want 1: %s", len(doc.Workloads), out)
	}
	w := doc.Workloads[0]
	if w.ID == "" || w.Name == "" || len(w.PIDs) != 1 || w.PIDs[0] != p.Process.Pid || w.Cgroup == nil || w.Embedding == nil || w.Archetype == nil || w.Confidence == nil {
		t.Errorf("workload misses contract fields: %+v", w)
	}
	if w.Genes["cpu_util"] < 0.2 {
		t.Errorf("a spinning process shows cpu_util %v", w.Genes["cpu_util"])
	}
	if _, ok := w.Genes["ipc_insn_per_cycle"]; ok && !strings.Contains(out, "perf") {
		// present only where the PMU exists; nothing to check on VMs
		t.Logf("hardware counters present")
	}
}

func TestDNAPidExitsMidWindow(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read another process's io and fd table")
	}
	stay := testload.Start(t, "sleep", nil)
	leave := testload.Start(t, "sleep", nil)
	// Kill one process once the first sample has been taken (the command
	// says "sampling" after its first tick), then reap it: a zombie is
	// still listed.
	sampling := make(chan struct{})
	errw := &signalWriter{needle: "sampling", hit: sampling}
	go func() {
		select {
		case <-sampling:
		case <-time.After(30 * time.Second):
		}
		_ = leave.Process.Kill()
		_, _ = leave.Process.Wait()
	}()
	var out strings.Builder
	code := run([]string{"dna", "--pid", strconv.Itoa(stay.Process.Pid), "--pid", strconv.Itoa(leave.Process.Pid), "--window", "1500ms", "--step", "300ms", "--json"}, &out, errw)
	errs := errw.String()
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "pid "+strconv.Itoa(leave.Process.Pid)+" exited") {
		t.Errorf("stderr does not name the exited pid: %q", errs)
	}
	var doc struct {
		Workloads []struct {
			PIDs []int `json:"pids"`
		} `json:"workloads"`
	}
	if err := json.Unmarshal([]byte(out.String()), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Workloads) != 1 || doc.Workloads[0].PIDs[0] != stay.Process.Pid {
		t.Errorf("workloads %+v, want only pid %d", doc.Workloads, stay.Process.Pid)
	}
}

// signalWriter collects output and closes hit the first time needle appears.
type signalWriter struct {
	mu     sync.Mutex
	buf    strings.Builder
	needle string
	hit    chan struct{}
	done   bool
}

func (w *signalWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if !w.done && strings.Contains(w.buf.String(), w.needle) {
		w.done = true
		close(w.hit)
	}
	return len(p), nil
}

func (w *signalWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func TestRunObserveForStops(t *testing.T) {
	start := time.Now()
	code, out, errs := runCLI(t, "run", "--interval", "200ms", "--for", "1500ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if time.Since(start) > 20*time.Second {
		t.Errorf("run --for 1s took %v", time.Since(start))
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) < 1 || lines[0] == "" {
		t.Fatalf("no JSON line in 1.5 s at a 200 ms interval: %q", out)
	}
	for _, l := range lines {
		var v struct {
			Workloads []json.RawMessage `json:"workloads"`
		}
		if err := json.Unmarshal([]byte(l), &v); err != nil {
			t.Fatalf("line is not JSON: %v: %q", err, l)
		}
		if len(v.Workloads) == 0 {
			t.Errorf("a line with no workloads on a live machine: %q", l)
		}
	}
}

// TestDNAReleasesDescriptors: each command closes what its observer held
// (/proc descriptors, perf events, eBPF links), so commands run in one
// process — as tests and an embedding program do — do not leak.
func TestDNAReleasesDescriptors(t *testing.T) {
	count := func() int {
		ents, err := os.ReadDir("/proc/self/fd")
		if err != nil {
			t.Fatal(err)
		}
		return len(ents)
	}
	if code, _, errs := runCLI(t, "dna", "--window", "200ms", "--step", "100ms", "--json"); code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	before := count()
	for i := 0; i < 3; i++ {
		if code, _, errs := runCLI(t, "dna", "--window", "200ms", "--step", "100ms", "--json"); code != 0 {
			t.Fatalf("exit %d: %s", code, errs)
		}
	}
	if after := count(); after > before+2 {
		t.Errorf("open descriptors grew from %d to %d over three dna commands", before, after)
	}
}
