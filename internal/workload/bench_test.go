package workload

import (
	"os"
	"os/exec"
	"syscall"
	"testing"

	"sculpt/internal/host"
)

// BenchmarkDiscover sweeps the real /proc with whatever runs on the machine.
func BenchmarkDiscover(b *testing.B) {
	benchDiscover(b)
}

// BenchmarkDiscover1000 tops the machine up to about 1000 processes first.
// They are /bin/sleep rather than testload processes: a thousand copies of
// the test binary would hold gigabytes.
func BenchmarkDiscover1000(b *testing.B) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		b.Skipf("no sleep binary to start processes with: %v", err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	var cmds []*exec.Cmd
	b.Cleanup(func() {
		for _, c := range cmds {
			_ = c.Process.Kill()
			_ = c.Wait()
		}
	})
	for n := len(ents) - 60; n < 1000; n++ { // /proc has ~60 non-process entries
		c := exec.Command(sleep, "3600")
		c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := c.Start(); err != nil {
			b.Fatalf("start process %d: %v", len(cmds), err)
		}
		cmds = append(cmds, c)
	}
	benchDiscover(b)
}

func benchDiscover(b *testing.B) {
	d := NewDiscoverer(host.DefaultRoots(), Options{})
	ws, err := d.Discover(Selector{})
	if err != nil {
		b.Fatal(err)
	}
	procs := 0
	for _, w := range ws {
		procs += len(w.Procs)
	}
	defer func() { _ = d.Close() }()
	b.ReportAllocs()
	b.ResetTimer()
	before := cpuTime(b)
	for b.Loop() {
		if _, err := d.Discover(Selector{}); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time, user and system, per sweep: on a shared machine wall time
	// also counts the time other processes held the CPU.
	b.ReportMetric(float64(cpuTime(b)-before)/float64(b.N), "cpu-ns/op")
	b.ReportMetric(float64(procs), "procs")
	b.ReportMetric(float64(len(ws)), "workloads")
}

func cpuTime(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
