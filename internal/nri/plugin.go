// Package nri is sculpt's NRI plugin (github.com/containerd/nri): it
// applies the CPU and memory placement sculpt chose for a container
// through the container runtime, as NRI adjustments at creation and NRI
// updates later, so that the runtime's and the kubelet's view of the
// container stays what the machine does.
//
// The seam is small: the caller gives the plugin an Arranger, "what
// arrangement for this container", and the plugin translates the answer
// into NRI types. Containers the kubelet's static CPU manager gave
// exclusive CPUs (Exclusive) are left alone. Everything else sculpt does
// (interrupts, packet steering, memory migration) stays with the HAL.
package nri

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/nri/pkg/api"
	"github.com/containerd/nri/pkg/stub"

	"sculpt/internal/hal/topology"
)

// DefaultSocket is where containerd 2.x and CRI-O serve NRI.
const DefaultSocket = "/var/run/nri/nri.sock"

// Container is what the plugin tells the Arranger about a container.
type Container struct {
	ID        string // the runtime's container ID
	Name      string // the container's name in its pod
	Pod       string // the pod's name
	Namespace string // the pod's namespace
	PodUID    string
	// Kind names containers of the same kind: the same container of the
	// same application in the same namespace (Kind).
	Kind      string
	Resources Resources // what the runtime and the kubelet asked for
}

// Resources are a container's CPU and memory settings as the runtime
// reports them (zero: not set).
type Resources struct {
	CPUs     string // cpuset.cpus, e.g. "2-3"
	Mems     string // cpuset.mems
	Shares   uint64 // cgroup v1 cpu.shares (the kubelet: request millicores * 1024 / 1000)
	QuotaUS  int64  // CFS quota per period, -1 or 0: none
	PeriodUS uint64
	MemLimit int64 // bytes, 0: none
}

// Arrangement is the placement sculpt wants for a container. Zero fields
// leave the runtime's setting alone.
type Arrangement struct {
	CPUs     []int  // cpuset.cpus
	Mems     []int  // cpuset.mems (NUMA nodes)
	Shares   uint64 // cgroup v1 cpu.shares (SharesFromWeight converts a v2 weight)
	QuotaUS  int64  // CFS quota per period; -1 lifts it
	PeriodUS uint64 // with QuotaUS; 0: the runtime's (100 ms by default)
	Sched    string // other, batch or idle (where the runtime applies a scheduling class)
	Nice     *int
}

// IsZero says whether a leaves everything alone.
func (a Arrangement) IsZero() bool {
	return len(a.CPUs) == 0 && len(a.Mems) == 0 && a.Shares == 0 && a.QuotaUS == 0 && a.Sched == "" && a.Nice == nil
}

// Equal says whether a and b are the same arrangement.
func (a Arrangement) Equal(b Arrangement) bool {
	eqNice := (a.Nice == nil) == (b.Nice == nil) && (a.Nice == nil || *a.Nice == *b.Nice)
	return slices.Equal(a.CPUs, b.CPUs) && slices.Equal(a.Mems, b.Mems) && a.Shares == b.Shares &&
		a.QuotaUS == b.QuotaUS && a.PeriodUS == b.PeriodUS && a.Sched == b.Sched && eqNice
}

// Arranger returns the arrangement for a container, and false when sculpt
// has none for it (the container keeps what the runtime gives it).
type Arranger func(Container) (Arrangement, bool)

// SharesFromWeight converts a cgroup v2 cpu.weight (1..10000, 100 the
// default) to cgroup v1 cpu.shares the way the kernel and runc do.
func SharesFromWeight(w uint64) uint64 {
	if w == 0 {
		return 0
	}
	return 2 + (w-1)*262142/9999
}

// Options configure a Plugin.
type Options struct {
	Socket string // the runtime's NRI socket; "" DefaultSocket
	Name   string // plugin name; "" "sculpt"
	Index  string // plugin index (ordering among plugins); "" "50"
	// OnClose is called when the runtime closes the connection (nil:
	// nothing); the plugin must then be started again.
	OnClose func()
}

// Plugin is sculpt's NRI plugin. Its methods are called by the stub from
// its own goroutines; Refresh may be called concurrently with them.
type Plugin struct {
	arrange Arranger
	stub    stub.Stub

	mu      sync.Mutex
	pods    map[string]*api.PodSandbox
	ctrs    map[string]*api.Container
	applied map[string]Arrangement // container ID -> what sculpt last asked for
}

// New makes the plugin; Start connects it to the runtime.
func New(arrange Arranger, o Options) (*Plugin, error) {
	if o.Socket == "" {
		o.Socket = DefaultSocket
	}
	if o.Name == "" {
		o.Name = "sculpt"
	}
	if o.Index == "" {
		o.Index = "50"
	}
	p := &Plugin{arrange: arrange, pods: map[string]*api.PodSandbox{}, ctrs: map[string]*api.Container{}, applied: map[string]Arrangement{}}
	opts := []stub.Option{stub.WithPluginName(o.Name), stub.WithPluginIdx(o.Index), stub.WithSocketPath(o.Socket)}
	if o.OnClose != nil {
		opts = append(opts, stub.WithOnClose(o.OnClose))
	}
	s, err := stub.New(p, opts...)
	if err != nil {
		return nil, fmt.Errorf("nri plugin on %s: %w", o.Socket, err)
	}
	p.stub = s
	return p, nil
}

// Start connects to the runtime and registers; it returns once the
// plugin is registered (the runtime then synchronizes it).
func (p *Plugin) Start(ctx context.Context) error {
	if err := p.stub.Start(ctx); err != nil {
		return fmt.Errorf("nri plugin: start: %w", err)
	}
	return nil
}

// Stop disconnects from the runtime.
func (p *Plugin) Stop() { p.stub.Stop() }

// Synchronize learns the pods and containers the runtime has and returns
// the updates that give each its arrangement.
func (p *Plugin) Synchronize(_ context.Context, pods []*api.PodSandbox, ctrs []*api.Container) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pod := range pods {
		p.pods[pod.GetId()] = pod
	}
	for _, c := range ctrs {
		p.ctrs[c.GetId()] = c
	}
	return p.updatesLocked(), nil
}

// RunPodSandbox remembers the pod.
func (p *Plugin) RunPodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pods[pod.GetId()] = pod
	return nil
}

// RemovePodSandbox forgets the pod.
func (p *Plugin) RemovePodSandbox(_ context.Context, pod *api.PodSandbox) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.pods, pod.GetId())
	return nil
}

// CreateContainer adjusts a container being created to the arrangement
// of its kind; a container with exclusive CPUs gets no adjustment.
func (p *Plugin) CreateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container) (*api.ContainerAdjustment, []*api.ContainerUpdate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pods[pod.GetId()] = pod
	p.ctrs[ctr.GetId()] = ctr
	if Exclusive(ResourcesOf(ctr.GetLinux().GetResources())) {
		return nil, nil, nil
	}
	a, ok := p.arrange(describe(pod, ctr))
	if !ok || a.IsZero() {
		return nil, nil, nil
	}
	adj := &api.ContainerAdjustment{}
	if len(a.CPUs) > 0 {
		adj.SetLinuxCPUSetCPUs(FormatList(a.CPUs))
	}
	if len(a.Mems) > 0 {
		adj.SetLinuxCPUSetMems(FormatList(a.Mems))
	}
	if a.Shares != 0 {
		adj.SetLinuxCPUShares(a.Shares)
	}
	if a.QuotaUS != 0 {
		adj.SetLinuxCPUQuota(a.QuotaUS)
		if a.PeriodUS != 0 {
			adj.SetLinuxCPUPeriod(int64(a.PeriodUS))
		}
	}
	if s := scheduler(a); s != nil {
		adj.SetLinuxScheduler(s)
	}
	p.applied[ctr.GetId()] = a
	return adj, nil, nil
}

// UpdateContainer lets an update from the kubelet stand, except that
// what sculpt arranges for the container is kept (the returned update
// supersedes the request); a container with exclusive CPUs is left alone.
func (p *Plugin) UpdateContainer(_ context.Context, pod *api.PodSandbox, ctr *api.Container, res *api.LinuxResources) ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.ctrs[ctr.GetId()] = ctr
	r := ResourcesOf(res)
	if Exclusive(r) {
		delete(p.applied, ctr.GetId())
		return nil, nil
	}
	a, ok := p.applied[ctr.GetId()]
	if !ok {
		return nil, nil
	}
	u := update(ctr.GetId(), a, res)
	if u == nil {
		return nil, nil
	}
	return []*api.ContainerUpdate{u}, nil
}

// RemoveContainer forgets the container.
func (p *Plugin) RemoveContainer(_ context.Context, _ *api.PodSandbox, ctr *api.Container) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.ctrs, ctr.GetId())
	delete(p.applied, ctr.GetId())
	return nil
}

// Refresh asks the Arranger again for every known container and sends
// the runtime an update (UpdateContainers) for each whose arrangement
// changed. It returns the updates sent; an error names the containers
// the runtime could not update.
func (p *Plugin) Refresh() ([]*api.ContainerUpdate, error) {
	p.mu.Lock()
	ups := p.updatesLocked()
	p.mu.Unlock()
	if len(ups) == 0 {
		return nil, nil
	}
	failed, err := p.stub.UpdateContainers(ups)
	if err != nil {
		return ups, fmt.Errorf("nri: update %d container(s): %w", len(ups), err)
	}
	if len(failed) > 0 {
		ids := make([]string, len(failed))
		for i, f := range failed {
			ids[i] = f.GetContainerId()
		}
		return ups, fmt.Errorf("nri: the runtime failed to update containers %s", strings.Join(ids, ", "))
	}
	return ups, nil
}

// Lookup returns the container whose ID starts with prefix (sculpt's
// workload IDs carry a 12-character prefix), and whether exactly one
// known container matches.
func (p *Plugin) Lookup(prefix string) (Container, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var found *api.Container
	for id, c := range p.ctrs {
		if strings.HasPrefix(id, prefix) {
			if found != nil {
				return Container{}, false
			}
			found = c
		}
	}
	if found == nil {
		return Container{}, false
	}
	return describe(p.pods[found.GetPodSandboxId()], found), true
}

// updatesLocked computes the updates that bring every known container,
// except those with exclusive CPUs, to its arrangement where it differs
// from what sculpt last asked for. p.mu is held.
func (p *Plugin) updatesLocked() []*api.ContainerUpdate {
	var ups []*api.ContainerUpdate
	for _, id := range slices.Sorted(maps.Keys(p.ctrs)) {
		c := p.ctrs[id]
		if c.GetState() == api.ContainerState_CONTAINER_STOPPED {
			continue
		}
		res := c.GetLinux().GetResources()
		if Exclusive(ResourcesOf(res)) {
			continue
		}
		a, ok := p.arrange(describe(p.pods[c.GetPodSandboxId()], c))
		if !ok || a.IsZero() {
			continue
		}
		if prev, had := p.applied[id]; had && prev.Equal(a) {
			continue
		}
		if u := update(id, a, res); u != nil {
			ups = append(ups, u)
		}
		p.applied[id] = a
	}
	return ups
}

// update is the NRI update for container id to arrangement a, starting
// from its resources res (an update replaces the container's resources,
// so what sculpt does not arrange keeps the runtime's value); nil when a
// sets nothing an update can carry.
func update(id string, a Arrangement, res *api.LinuxResources) *api.ContainerUpdate {
	u := &api.ContainerUpdate{ContainerId: id}
	r := ResourcesOf(res)
	set := false
	if len(a.CPUs) > 0 {
		u.SetLinuxCPUSetCPUs(FormatList(a.CPUs))
		set = true
	} else if r.CPUs != "" {
		u.SetLinuxCPUSetCPUs(r.CPUs)
	}
	if len(a.Mems) > 0 {
		u.SetLinuxCPUSetMems(FormatList(a.Mems))
		set = true
	} else if r.Mems != "" {
		u.SetLinuxCPUSetMems(r.Mems)
	}
	if a.Shares != 0 {
		u.SetLinuxCPUShares(a.Shares)
		set = true
	} else if r.Shares != 0 {
		u.SetLinuxCPUShares(r.Shares)
	}
	switch {
	case a.QuotaUS != 0:
		u.SetLinuxCPUQuota(a.QuotaUS)
		if a.PeriodUS != 0 {
			u.SetLinuxCPUPeriod(int64(a.PeriodUS))
		} else if r.PeriodUS != 0 {
			u.SetLinuxCPUPeriod(int64(r.PeriodUS))
		}
		set = true
	case r.QuotaUS != 0:
		u.SetLinuxCPUQuota(r.QuotaUS)
		if r.PeriodUS != 0 {
			u.SetLinuxCPUPeriod(int64(r.PeriodUS))
		}
	}
	if r.MemLimit != 0 {
		u.SetLinuxMemoryLimit(r.MemLimit)
	}
	if !set {
		return nil // the scheduling class is set at creation only
	}
	return u
}

// scheduler is the NRI scheduling class of a (nil: none asked). The
// runtime applies it to the container's process at creation; NRI has no
// update for it.
func scheduler(a Arrangement) *api.LinuxScheduler {
	var pol api.LinuxSchedulerPolicy
	switch a.Sched {
	case "other":
		pol = api.LinuxSchedulerPolicy_SCHED_OTHER
	case "batch":
		pol = api.LinuxSchedulerPolicy_SCHED_BATCH
	case "idle":
		pol = api.LinuxSchedulerPolicy_SCHED_IDLE
	default:
		return nil
	}
	s := &api.LinuxScheduler{Policy: pol}
	if a.Nice != nil {
		s.Nice = int32(*a.Nice)
	}
	return s
}

// ResourcesOf reads the CPU and memory settings out of NRI's resources.
func ResourcesOf(res *api.LinuxResources) Resources {
	var r Resources
	if cpu := res.GetCpu(); cpu != nil {
		r.CPUs, r.Mems = cpu.GetCpus(), cpu.GetMems()
		r.Shares = cpu.GetShares().GetValue()
		r.QuotaUS = cpu.GetQuota().GetValue()
		r.PeriodUS = cpu.GetPeriod().GetValue()
	}
	r.MemLimit = res.GetMemory().GetLimit().GetValue()
	return r
}

// Exclusive says whether a container holds exclusive CPUs from the
// kubelet's static CPU manager policy. The kubelet gives exclusive CPUs
// to the containers of Guaranteed pods with an integer CPU request, and
// pins them there through the runtime: the container then has
//
//   - a cpuset (the runtime reports cpuset.cpus),
//   - an integer CPU request: cpu.shares a multiple of 1024, at least 1024,
//   - a memory limit (Guaranteed QoS needs one),
//   - a CPU limit equal to the request (quota = request x period), or no
//     quota at all (kubelets with DisableCPUQuotaWithExclusiveCPUs),
//   - exactly as many CPUs in its cpuset as it requested.
//
// The last condition tells it from a container of the shared pool, which
// the static policy also pins, to all the shared CPUs.
func Exclusive(r Resources) bool {
	if r.CPUs == "" || r.Shares < 1024 || r.Shares%1024 != 0 || r.MemLimit <= 0 {
		return false
	}
	req := int64(r.Shares / 1024)
	if r.QuotaUS > 0 {
		period := int64(r.PeriodUS)
		if period == 0 {
			period = 100000
		}
		if r.QuotaUS != req*period {
			return false
		}
	}
	cpus, err := topology.ParseCPUList(r.CPUs)
	if err != nil {
		return false
	}
	return int64(len(cpus)) == req
}

// Kind is the name sculpt gives containers of the same kind: namespace,
// application and container name. The application is the pod's
// app.kubernetes.io/name or app label, or else the pod's name without
// the suffixes a controller generates (a ReplicaSet's pod-template hash
// and random suffix, a StatefulSet's ordinal).
func Kind(pod *api.PodSandbox, ctr *api.Container) string {
	app := pod.GetLabels()["app.kubernetes.io/name"]
	if app == "" {
		app = pod.GetLabels()["app"]
	}
	if app == "" {
		app = baseName(pod.GetName())
	}
	return pod.GetNamespace() + "/" + app + "/" + ctr.GetName()
}

// baseName strips generated suffixes from a pod name: trailing
// dash-separated parts holding a digit ("web-7d4b9c8f6-x2k9p" -> "web",
// "db-0" -> "db"), or a final 5-character part of a Deployment's pod.
func baseName(name string) string {
	parts := strings.Split(name, "-")
	for len(parts) > 1 {
		last := parts[len(parts)-1]
		if strings.ContainsAny(last, "0123456789") || (len(parts) > 2 && len(last) == 5) {
			parts = parts[:len(parts)-1]
			continue
		}
		break
	}
	return strings.Join(parts, "-")
}

func describe(pod *api.PodSandbox, ctr *api.Container) Container {
	return Container{
		ID: ctr.GetId(), Name: ctr.GetName(),
		Pod: pod.GetName(), Namespace: pod.GetNamespace(), PodUID: pod.GetUid(),
		Kind:      Kind(pod, ctr),
		Resources: ResourcesOf(ctr.GetLinux().GetResources()),
	}
}

// FormatList writes CPUs or nodes as a kernel list ("0-2,5").
func FormatList(l []int) string { return topology.FormatCPUList(l) }
