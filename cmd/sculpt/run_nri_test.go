package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	nriad "github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"

	"sculpt/internal/engine"
	"sculpt/internal/hal/topology"
)

func TestRunNRINeedsApply(t *testing.T) {
	for _, args := range [][]string{{"run", "--nri"}, {"run", "--mode", "advise", "--nri"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 || !strings.Contains(errb.String(), "--nri needs --mode apply") {
			t.Errorf("sculpt %v: exit %d, stderr %q; want 2 and --nri needs --mode apply", args, code, errb.String())
		}
	}
}

// TestNRIBridgeAppliesTheStep registers sculpt with the real NRI runtime
// library on a temp socket and hands it an engine step: the decision for
// a container workload reaches that container through UpdateContainers;
// a decision for a process tree does not go through NRI.
func TestNRIBridgeAppliesTheStep(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "nri.sock")
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	pods := []*api.PodSandbox{{Id: "pod1", Name: "web-0", Namespace: "shop", Uid: "u1"}}
	ctrs := []*api.Container{{Id: id, PodSandboxId: "pod1", Name: "nginx", State: api.ContainerState_CONTAINER_RUNNING,
		Linux: &api.LinuxContainer{Resources: &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(512), Cpus: "0-3"}}}}}
	var mu sync.Mutex
	var got []*api.ContainerUpdate
	r, err := nriad.New("containerd", "2.4.2",
		func(ctx context.Context, cb nriad.SyncCB) error { _, err := cb(ctx, pods, ctrs); return err },
		func(_ context.Context, ups []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, ups...)
			return nil, nil
		},
		nriad.WithPluginPath(filepath.Join(dir, "plugins")), nriad.WithPluginConfigPath(filepath.Join(dir, "conf.d")), nriad.WithSocketPath(sock))
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Stop)

	topo := &topology.Topology{Nodes: []topology.Node{{ID: 0, CPUs: []int{0, 1, 2, 3}}}}
	for c := range 4 {
		topo.CPUs = append(topo.CPUs, topology.CPU{ID: c, Online: true, CoreID: c, ThreadSiblings: []int{c}})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var logs bytes.Buffer
	b, err := startNRI(ctx, slog.New(slog.NewTextHandler(&logs, nil)), sock, topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.stop)
	// Registration completes with the runtime's Synchronize, which may
	// run just after Start returns: wait until the plugin knows the container.
	for {
		if _, ok := b.p.Lookup(id[:12]); ok {
			break
		}
		if ctx.Err() != nil {
			t.Fatal("the runtime never synchronized the plugin")
		}
		time.Sleep(10 * time.Millisecond)
	}
	step := &engine.Step{Plan: engine.Plan{Decisions: []engine.Decision{
		{Workload: "ctr:" + id[:12], CPUs: []int{3}, Want: engine.Want{Cores: engine.CoresDedicated, Count: 1}},
		{Workload: "tree:42@1", CPUs: []int{0}},
	}}}
	b.apply(ctx, step)
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 || got[0].GetContainerId() != id || got[0].GetLinux().GetResources().GetCpu().GetCpus() != "3" {
		t.Fatalf("want one update giving %s CPU 3, the runtime got %v", id[:12], got)
	}
	if !strings.Contains(logs.String(), "container updated through NRI") {
		t.Errorf("the update is not logged: %s", logs.String())
	}
}
