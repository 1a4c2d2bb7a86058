package nri

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	nri "github.com/containerd/nri/pkg/adaptation"
	"github.com/containerd/nri/pkg/api"

	"sculpt/internal/engine"
	"sculpt/internal/hal"
	"sculpt/internal/hal/topology"
)

// fourCPUs is a one-node machine with four single-thread cores.
func fourCPUs() *topology.Topology {
	t := &topology.Topology{Nodes: []topology.Node{{ID: 0, CPUs: []int{0, 1, 2, 3}, Distances: []int{10}}}}
	for c := range 4 {
		t.CPUs = append(t.CPUs, topology.CPU{ID: c, Online: true, CoreID: c, Node: 0, ThreadSiblings: []int{c}})
	}
	return t
}

// runtime is the NRI side of a container runtime: the real
// pkg/adaptation that containerd embeds, on a socket in a temp dir, with
// the pods and containers it reports at synchronization and the
// unsolicited updates plugins sent it.
type runtime struct {
	r    *nri.Adaptation
	sock string

	mu      sync.Mutex
	pods    []*api.PodSandbox
	ctrs    []*api.Container
	updates []*api.ContainerUpdate
}

func startRuntime(t *testing.T, pods []*api.PodSandbox, ctrs []*api.Container) *runtime {
	t.Helper()
	dir := t.TempDir()
	rt := &runtime{sock: filepath.Join(dir, "nri.sock"), pods: pods, ctrs: ctrs}
	sync := func(ctx context.Context, cb nri.SyncCB) error {
		rt.mu.Lock()
		pods, ctrs := rt.pods, rt.ctrs
		rt.mu.Unlock()
		ups, err := cb(ctx, pods, ctrs)
		rt.mu.Lock()
		rt.updates = append(rt.updates, ups...)
		rt.mu.Unlock()
		return err
	}
	update := func(_ context.Context, ups []*api.ContainerUpdate) ([]*api.ContainerUpdate, error) {
		rt.mu.Lock()
		defer rt.mu.Unlock()
		rt.updates = append(rt.updates, ups...)
		return nil, nil
	}
	r, err := nri.New("containerd", "2.4.2", sync, update,
		nri.WithPluginPath(filepath.Join(dir, "plugins")),
		nri.WithPluginConfigPath(filepath.Join(dir, "conf.d")),
		nri.WithSocketPath(rt.sock))
	if err != nil {
		t.Fatalf("nri adaptation: %v", err)
	}
	if err := r.Start(); err != nil {
		t.Fatalf("start nri adaptation on %s: %v", rt.sock, err)
	}
	t.Cleanup(r.Stop)
	rt.r = r
	return rt
}

func (rt *runtime) takeUpdates() []*api.ContainerUpdate {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	u := rt.updates
	rt.updates = nil
	return u
}

// startPlugin registers sculpt's plugin with the runtime and waits until
// the runtime has synchronized it.
func startPlugin(t *testing.T, rt *runtime, arrange Arranger) *Plugin {
	t.Helper()
	synced := make(chan struct{})
	var once sync.Once
	p, err := New(arrange, Options{Socket: rt.sock})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	// The plugin is registered once the runtime's RunPodSandbox reaches
	// it: poll with a pod event of a throwaway sandbox.
	go func() {
		for ctx.Err() == nil {
			p.mu.Lock()
			_, ok := p.pods["probe"]
			p.mu.Unlock()
			if ok {
				once.Do(func() { close(synced) })
				return
			}
			_ = rt.r.RunPodSandbox(ctx, &nri.RunPodSandboxRequest{Pod: &api.PodSandbox{Id: "probe", Name: "probe", Namespace: "probe"}})
			time.Sleep(20 * time.Millisecond)
		}
	}()
	select {
	case <-synced:
	case <-ctx.Done():
		t.Fatal("the plugin never registered with the runtime")
	}
	return p
}

func pod(id, name, ns string, labels map[string]string) *api.PodSandbox {
	return &api.PodSandbox{Id: id, Name: name, Namespace: ns, Uid: "uid-" + id, Labels: labels}
}

func ctr(id, podID, name string, res *api.LinuxResources) *api.Container {
	return &api.Container{Id: id, PodSandboxId: podID, Name: name, State: api.ContainerState_CONTAINER_CREATED,
		Linux: &api.LinuxContainer{Resources: res}}
}

func burstable(shares uint64) *api.LinuxResources {
	return &api.LinuxResources{Cpu: &api.LinuxCPU{Shares: api.UInt64(shares), Period: api.UInt64(100000)},
		Memory: &api.LinuxMemory{Limit: api.Int64(256 << 20)}}
}

// guaranteedPinned is what the kubelet's static CPU manager gives a
// Guaranteed container requesting n whole CPUs: shares n*1024, quota n
// periods, a memory limit, and a cpuset of n exclusive CPUs.
func guaranteedPinned(cpus string, n int64) *api.LinuxResources {
	return &api.LinuxResources{
		Cpu:    &api.LinuxCPU{Shares: api.UInt64(uint64(n) * 1024), Quota: api.Int64(n * 100000), Period: api.UInt64(100000), Cpus: cpus},
		Memory: &api.LinuxMemory{Limit: api.Int64(512 << 20)},
	}
}

// TestPluginAgainstRealAdaptation plans with the engine for a container
// workload, then drives pod and container lifecycle through containerd's
// NRI library: a new container of the same kind is created with the
// engine's arrangement; a new decision reaches running containers
// through UpdateContainers; a container with exclusive CPUs from the
// kubelet is never adjusted or updated.
func TestPluginAgainstRealAdaptation(t *testing.T) {
	topo := fourCPUs()
	// The engine's decision for a container workload of kind
	// shop/web/nginx: two dedicated CPUs, a CPU weight, a quota, local memory.
	want := engine.Want{Cores: engine.CoresDedicated, Count: 2, Sched: "other", CPUShare: 400, CPUQuota: 1.5, Memory: engine.MemoryLocal}
	plan := engine.MakePlan(engine.PlanInput{Topology: topo, Caps: allCaps(), ReserveShared: 1, Workloads: []engine.WorkloadState{
		{ID: "ctr:0123456789ab", Name: "0123456789ab", Match: &engine.Match{Rule: "latency-critical", Want: want}},
	}})
	if len(plan.Decisions) != 1 || len(plan.Decisions[0].CPUs) != 2 {
		t.Fatalf("plan: want one decision with 2 CPUs, got %+v", plan)
	}
	d := plan.Decisions[0]
	chosen := FromDecision(d, topo)

	mem := NewMemory()
	kind := Kind(pod("p-old", "web-7d4b9c8f6-x2k9p", "shop", nil), &api.Container{Name: "nginx"})
	mem.Record("0123456789ab", kind, chosen)

	// One running container the runtime already has (another kind, no
	// arrangement yet) and one with exclusive CPUs.
	pods := []*api.PodSandbox{pod("p-batch", "etl-0", "jobs", nil), pod("p-gold", "trader-0", "fin", nil)}
	ctrs := []*api.Container{
		ctr("batch-ctr-1", "p-batch", "etl", burstable(512)),
		ctr("gold-ctr-1", "p-gold", "trader", guaranteedPinned("2-3", 2)),
	}
	rt := startRuntime(t, pods, ctrs)
	asked := map[string]int{}
	var amu sync.Mutex
	p := startPlugin(t, rt, func(c Container) (Arrangement, bool) {
		amu.Lock()
		asked[c.ID]++
		amu.Unlock()
		return mem.Arrange(c)
	})
	if u := rt.takeUpdates(); len(u) != 0 {
		t.Fatalf("synchronize: no container has an arrangement yet, got updates %v", u)
	}

	ctx := context.Background()
	// A new pod of the same kind (another ReplicaSet pod of web).
	newPod := pod("p-new", "web-7d4b9c8f6-q8r2m", "shop", nil)
	if err := rt.r.RunPodSandbox(ctx, &nri.RunPodSandboxRequest{Pod: newPod}); err != nil {
		t.Fatal(err)
	}
	web := ctr("fedcba9876543210", "p-new", "nginx", burstable(1024))
	resp, err := rt.r.CreateContainer(ctx, &nri.CreateContainerRequest{Pod: newPod, Container: web})
	if err != nil {
		t.Fatal(err)
	}
	cpu := resp.GetAdjust().GetLinux().GetResources().GetCpu()
	if got, wantCPUs := cpu.GetCpus(), hal.FormatList(d.CPUs); got != wantCPUs {
		t.Errorf("create: cpuset.cpus %q, the engine chose %q", got, wantCPUs)
	}
	if got := cpu.GetMems(); got != "0" {
		t.Errorf("create: cpuset.mems %q, want 0 (the node of CPUs %v, memory local)", got, d.CPUs)
	}
	if got, w := cpu.GetShares().GetValue(), SharesFromWeight(400); got != w {
		t.Errorf("create: cpu.shares %d, want %d (weight 400)", got, w)
	}
	if got := cpu.GetQuota().GetValue(); got != 150000 {
		t.Errorf("create: quota %d, want 150000 (1.5 cores of a 100 ms period)", got)
	}
	if got := resp.GetAdjust().GetLinux().GetScheduler().GetPolicy(); got != api.LinuxSchedulerPolicy_SCHED_OTHER {
		t.Errorf("create: scheduling policy %v, want SCHED_OTHER", got)
	}

	// A container with exclusive CPUs from the kubelet: no adjustment.
	goldPod := pod("p-gold2", "trader-1", "fin", nil)
	if err := rt.r.RunPodSandbox(ctx, &nri.RunPodSandboxRequest{Pod: goldPod}); err != nil {
		t.Fatal(err)
	}
	mem.Record("", Kind(goldPod, &api.Container{Name: "trader"}), Arrangement{CPUs: []int{0}})
	gold := ctr("gold-ctr-2", "p-gold2", "trader", guaranteedPinned("1", 1))
	resp, err = rt.r.CreateContainer(ctx, &nri.CreateContainerRequest{Pod: goldPod, Container: gold})
	if err != nil {
		t.Fatal(err)
	}
	if c := resp.GetAdjust().GetLinux().GetResources().GetCpu(); c.GetCpus() != "" || c.GetMems() != "" || c.GetShares() != nil || c.GetQuota() != nil {
		t.Errorf("create: a container with exclusive CPUs was adjusted: %v", c)
	}
	amu.Lock()
	if asked["gold-ctr-2"] != 0 {
		t.Errorf("the arranger was asked about a container with exclusive CPUs")
	}
	amu.Unlock()

	// Later the engine moves the batch kind to the shared CPU with a
	// quota: Refresh sends it through UpdateContainers; the exclusive
	// containers get nothing.
	batchKind := Kind(pods[0], ctrs[0])
	later := Arrangement{CPUs: plan.Shared, QuotaUS: 50000, PeriodUS: 100000}
	mem.Record("", batchKind, later)
	mem.Record("", Kind(pods[1], ctrs[1]), Arrangement{CPUs: []int{0}})
	sent, err := p.Refresh()
	if err != nil {
		t.Fatalf("refresh: %v", err)
	}
	got := rt.takeUpdates()
	if len(sent) != 1 || len(got) != 1 || got[0].GetContainerId() != "batch-ctr-1" {
		t.Fatalf("refresh: want one update for batch-ctr-1, sent %v, runtime got %v", sent, got)
	}
	ucpu := got[0].GetLinux().GetResources().GetCpu()
	if ucpu.GetCpus() != hal.FormatList(plan.Shared) || ucpu.GetQuota().GetValue() != 50000 || ucpu.GetShares().GetValue() != 512 {
		t.Errorf("refresh: update cpus %q quota %d shares %d; want cpus %s, quota 50000, the kubelet's shares 512 kept",
			ucpu.GetCpus(), ucpu.GetQuota().GetValue(), ucpu.GetShares().GetValue(), hal.FormatList(plan.Shared))
	}
	if got[0].GetLinux().GetResources().GetMemory().GetLimit().GetValue() != 256<<20 {
		t.Errorf("refresh: the update dropped the kubelet's memory limit")
	}
	// Nothing changed since: no second update.
	if sent, err := p.Refresh(); err != nil || len(sent) != 0 {
		t.Errorf("second refresh: want no update, sent %v (err %v)", sent, err)
	}

	// The kubelet updates web's resources: sculpt's cpuset is kept in
	// the update that supersedes the request.
	uresp, err := rt.r.UpdateContainer(ctx, &nri.UpdateContainerRequest{Pod: newPod, Container: web, LinuxResources: burstable(2048)})
	if err != nil {
		t.Fatal(err)
	}
	var mine *api.ContainerUpdate
	for _, u := range uresp.GetUpdate() {
		if u.GetContainerId() == web.GetId() {
			mine = u
		}
	}
	if mine == nil || mine.GetLinux().GetResources().GetCpu().GetCpus() != hal.FormatList(d.CPUs) {
		t.Errorf("kubelet update: want sculpt's cpuset %s kept, got %v", hal.FormatList(d.CPUs), uresp.GetUpdate())
	}
	// The kubelet's update of an exclusive container passes untouched.
	uresp, err = rt.r.UpdateContainer(ctx, &nri.UpdateContainerRequest{Pod: goldPod, Container: gold, LinuxResources: guaranteedPinned("1", 1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range uresp.GetUpdate() {
		if u.GetContainerId() == gold.GetId() && u.GetLinux().GetResources().GetCpu().GetCpus() != "1" {
			t.Errorf("kubelet update of an exclusive container was changed: %v", u)
		}
	}
	if c, ok := p.Lookup("fedcba987654"); !ok || c.Kind != kind {
		t.Errorf("lookup by workload ID prefix: got %+v %v, want kind %s", c, ok, kind)
	}
}

func allCaps() hal.Capabilities {
	y := hal.Yes("test")
	return hal.Capabilities{Pin: y, Sched: y, Cpuset: y, CPUWeight: y, CPUQuota: y, Cgroups: y, MemBind: y, MemMigrate: y, IRQAffinity: y}
}

func TestExclusive(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Resources
		want bool
	}{
		{"guaranteed, 2 whole CPUs pinned", Resources{CPUs: "2-3", Shares: 2048, QuotaUS: 200000, PeriodUS: 100000, MemLimit: 1}, true},
		{"guaranteed, quota disabled with exclusive CPUs", Resources{CPUs: "5", Shares: 1024, QuotaUS: -1, MemLimit: 1}, true},
		{"shared pool: cpuset wider than the request", Resources{CPUs: "0-3", Shares: 1024, QuotaUS: 100000, PeriodUS: 100000, MemLimit: 1}, false},
		{"fractional request", Resources{CPUs: "1", Shares: 512, QuotaUS: 50000, PeriodUS: 100000, MemLimit: 1}, false},
		{"no cpuset", Resources{Shares: 2048, QuotaUS: 200000, PeriodUS: 100000, MemLimit: 1}, false},
		{"no memory limit (not Guaranteed)", Resources{CPUs: "1", Shares: 1024, QuotaUS: 100000, PeriodUS: 100000}, false},
		{"limit above request (Burstable)", Resources{CPUs: "1", Shares: 1024, QuotaUS: 200000, PeriodUS: 100000, MemLimit: 1}, false},
	} {
		if got := Exclusive(tc.r); got != tc.want {
			t.Errorf("%s: Exclusive(%+v) = %v, want %v", tc.name, tc.r, got, tc.want)
		}
	}
}

func TestKind(t *testing.T) {
	for _, tc := range []struct {
		pod    *api.PodSandbox
		ctr    string
		expect string
	}{
		{pod("a", "web-7d4b9c8f6-x2k9p", "shop", nil), "nginx", "shop/web/nginx"},
		{pod("b", "db-0", "shop", nil), "pg", "shop/db/pg"},
		{pod("c", "whatever-1", "ns", map[string]string{"app.kubernetes.io/name": "cache"}), "redis", "ns/cache/redis"},
		{pod("d", "my-batch-job", "ns", nil), "run", "ns/my-batch-job/run"},
	} {
		if got := Kind(tc.pod, &api.Container{Name: tc.ctr}); got != tc.expect {
			t.Errorf("Kind(%s/%s) = %q, want %q", tc.pod.GetName(), tc.ctr, got, tc.expect)
		}
	}
	if !slices.Equal([]int{0}, FromDecision(engine.Decision{CPUs: []int{2}, Want: engine.Want{Memory: engine.MemoryLocal}}, fourCPUs()).Mems) {
		t.Error("FromDecision: local memory on CPU 2 of node 0 should give mems 0")
	}
}
