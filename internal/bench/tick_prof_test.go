package bench

import (
	"context"
	"testing"
	"time"

	"sculpt/internal/host"
)

// BenchmarkTick1000 runs the full agent tick over 1000 sleeping processes.
func BenchmarkTick1000(b *testing.B) {
	procs, err := startProcesses(context.Background(), []string{"/bin/sleep", "3600"}, 1000)
	b.Cleanup(func() { _ = stopProcesses(procs) })
	if err != nil {
		b.Fatal(err)
	}
	var pids []int
	for _, c := range procs {
		pids = append(pids, c.Process.Pid)
	}
	var entries int
	parts := make(map[string]time.Duration)
	tick, closeTick, err := tickMethod(host.DefaultRoots(), pids, &entries, parts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(closeTick)
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		if err := tick(ctx, i); err != nil {
			b.Fatal(err)
		}
	}
	clear(parts)
	b.ResetTimer()
	n := 0
	for b.Loop() {
		if err := tick(ctx, n); err != nil {
			b.Fatal(err)
		}
		n++
	}
	for k, v := range perSweepMS(parts, n) {
		b.ReportMetric(v, k+"-ms")
	}
}
