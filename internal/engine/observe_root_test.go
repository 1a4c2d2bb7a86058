package engine

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/host"
	"sculpt/internal/telemetry"
	"sculpt/internal/testload"
	"sculpt/internal/workload"
)

func TestMain(m *testing.M) {
	testload.MaybeRun()
	os.Exit(m.Run())
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: reads other processes' io, schedstat and fd tables")
	}
}

func newTestObserver(t *testing.T, sel workload.Selector, window time.Duration) *Observer {
	t.Helper()
	roots := host.DefaultRoots()
	sampler, notes, err := telemetry.NewDefaultSampler(roots, telemetry.DefaultOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notes {
		t.Logf("telemetry note: %s", n)
	}
	t.Cleanup(func() { _ = sampler.Close() })
	return NewObserver(workload.NewDiscoverer(roots, workload.Options{Self: os.Getpid()}), sampler, sel, window)
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// TestGenesOrderRealWorkloads runs six programs of clearly different kinds
// on the real kernel and checks that their genes order them as they should.
func TestGenesOrderRealWorkloads(t *testing.T) {
	requireRoot(t)
	env := []string{"GOMAXPROCS=1"}
	// A pipe pair: a->b over p1, b->a over p2; the test closes its own ends.
	r1, w1, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	pipeA := testload.Start(t, "pipe", append(env, "SCULPT_TESTLOAD_FIRST=1"), r2, w1)
	pipeB := testload.Start(t, "pipe", env, r1, w2)
	for _, f := range []*os.File{r1, w1, r2, w2} {
		_ = f.Close()
	}
	addr := freePort(t)
	server := testload.Start(t, "sockserver", append(env, "SCULPT_TESTLOAD_ADDR="+addr))
	client := testload.Start(t, "sockclient", append(env, "SCULPT_TESTLOAD_ADDR="+addr))
	cpu := testload.Start(t, "cpu", env)
	mem := testload.Start(t, "mem", env)
	disk := testload.Start(t, "disk", append(env, "SCULPT_TESTLOAD_DIR="+t.TempDir()))
	idle := testload.Start(t, "sleep", env)

	names := map[int]string{
		pipeA.Process.Pid: "pipeA", pipeB.Process.Pid: "pipeB", server.Process.Pid: "server", client.Process.Pid: "client",
		cpu.Process.Pid: "cpu", mem.Process.Pid: "mem", disk.Process.Pid: "disk", idle.Process.Pid: "idle",
	}
	var pids []int
	for pid := range names {
		pids = append(pids, pid)
	}
	time.Sleep(300 * time.Millisecond) // let every load get going
	obsv := newTestObserver(t, workload.Selector{PIDs: pids}, 30*time.Second)
	ctx := context.Background()
	var obs *Observation
	for i := 0; i < 4; i++ {
		if i > 0 {
			time.Sleep(time.Second)
		}
		if obs, err = obsv.Tick(ctx); err != nil {
			t.Fatalf("tick %d: %v", i, err)
		}
	}
	by := map[string]dna.DNA{}
	idOf := map[string]string{}
	for _, d := range obs.DNA {
		if len(d.PIDs) == 0 {
			continue
		}
		n, ok := names[d.PIDs[0]]
		if !ok {
			t.Fatalf("unexpected workload %s with pids %v", d.ID, d.PIDs)
		}
		by[n] = d
		idOf[n] = d.ID
	}
	if len(by) != len(names) {
		t.Fatalf("profiled %d of %d workloads: %v", len(by), len(names), obs.DNA)
	}
	var report strings.Builder
	for _, n := range []string{"cpu", "mem", "pipeA", "pipeB", "server", "client", "disk", "idle"} {
		fmt.Fprintf(&report, "%-7s %-24s", n, by[n].Archetype)
		for _, g := range []string{"cpu_util", "user_frac", "ctx_vol_rate", "minflt_rate", "rss_bytes", "io_write_bps", "ipc_rate", "comm_peers"} {
			fmt.Fprintf(&report, " %s=%.4g", g, by[n].Genes[g])
		}
		report.WriteString("\n")
	}
	t.Logf("genes:\n%s", report.String())

	gene := func(n, g string) float64 {
		t.Helper()
		v, ok := by[n].Genes[g]
		if !ok {
			t.Fatalf("%s: gene %s absent; genes %v", n, g, by[n].Genes)
		}
		return v
	}
	highest := func(g string, want string, among ...string) {
		t.Helper()
		for _, n := range among {
			if n != want && gene(n, g) >= gene(want, g) {
				t.Errorf("%s: %s has %.4g, not below %s's %.4g", g, n, gene(n, g), want, gene(want, g))
			}
		}
	}
	active := []string{"cpu", "mem", "pipeA", "pipeB", "server", "client", "disk"}
	all := append(active, "idle")
	// The pipe pair: the highest IPC rate, each other's peer.
	for _, p := range []string{"pipeA", "pipeB"} {
		highest("ipc_rate", p, "cpu", "mem", "disk", "idle")
	}
	if gene("pipeA", "ipc_rate") <= gene("client", "ipc_rate") && gene("pipeB", "ipc_rate") <= gene("client", "ipc_rate") {
		t.Errorf("neither pipe end out-chats the socket client: %.4g, %.4g vs %.4g", gene("pipeA", "ipc_rate"), gene("pipeB", "ipc_rate"), gene("client", "ipc_rate"))
	}
	if _, ok := by["pipeA"].Peers[idOf["pipeB"]]; !ok {
		t.Errorf("pipeA's peers %v lack pipeB %s", by["pipeA"].Peers, idOf["pipeB"])
	}
	if _, ok := by["pipeB"].Peers[idOf["pipeA"]]; !ok {
		t.Errorf("pipeB's peers %v lack pipeA %s", by["pipeB"].Peers, idOf["pipeA"])
	}
	if _, ok := by["client"].Peers[idOf["server"]]; !ok {
		t.Errorf("socket client's peers %v lack the server %s", by["client"].Peers, idOf["server"])
	}
	// The disk writer: the highest storage write rate.
	highest("io_write_bps", "disk", all...)
	// The memory streamer: the most faults and the largest RSS.
	highest("minflt_rate", "mem", all...)
	highest("rss_bytes", "mem", all...)
	// The CPU-bound one: the largest share of its CPU time in user mode,
	// and the fewest voluntary switches, of the active ones. (Not the most
	// user CPU in cores: on a crowded machine the spinner gets little CPU,
	// and tick-sampled utime/stime make the split of the others noisy.)
	for _, n := range active {
		if n != "cpu" && gene(n, "user_frac") >= gene("cpu", "user_frac") {
			t.Errorf("user_frac: %s has %.3g, not below cpu's %.3g", n, gene(n, "user_frac"), gene("cpu", "user_frac"))
		}
	}
	// Fewer voluntary switches than every load that blocks (pipes, sockets,
	// disk). The memory streamer never blocks either: both switch only
	// when the Go runtime's own threads park, so on a crowded machine
	// either may switch more.
	for _, n := range active {
		if n != "cpu" && n != "mem" && gene(n, "ctx_vol_rate") <= gene("cpu", "ctx_vol_rate") {
			t.Errorf("ctx_vol_rate: %s has %.4g, not above cpu's %.4g", n, gene(n, "ctx_vol_rate"), gene("cpu", "ctx_vol_rate"))
		}
	}
}

// TestObserverSurvivesExitingProcess kills one selected process mid-window:
// the tick still profiles the others and names the one that left.
func TestObserverSurvivesExitingProcess(t *testing.T) {
	requireRoot(t)
	a := testload.Start(t, "sleep", nil)
	b := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"})
	obsv := newTestObserver(t, workload.Selector{PIDs: []int{a.Process.Pid, b.Process.Pid}}, 10*time.Second)
	ctx := context.Background()
	if _, err := obsv.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	_ = a.Process.Kill()
	_, _ = a.Process.Wait()
	time.Sleep(200 * time.Millisecond)
	obs, err := obsv.Tick(ctx)
	if err != nil {
		t.Fatalf("tick after one process exited: %v", err)
	}
	if len(obs.Exited) != 1 || obs.Exited[0] != a.Process.Pid {
		t.Errorf("Exited = %v, want [%d]", obs.Exited, a.Process.Pid)
	}
	if len(obs.DNA) != 1 || obs.DNA[0].PIDs[0] != b.Process.Pid {
		t.Fatalf("DNA = %+v, want only pid %d", obs.DNA, b.Process.Pid)
	}
	if _, ok := obs.DNA[0].Genes["cpu_util"]; !ok {
		t.Errorf("the surviving workload has no cpu_util: %v", obs.DNA[0].Genes)
	}
}

func TestObserverRejectsMissingPIDFirst(t *testing.T) {
	obsv := newTestObserver(t, workload.Selector{PIDs: []int{1 << 30}}, time.Second)
	if _, err := obsv.Tick(context.Background()); err == nil {
		t.Fatal("no error for a pid that does not exist")
	}
}
