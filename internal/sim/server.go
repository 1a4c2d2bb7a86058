package sim

import (
	"context"
	"fmt"
	"maps"
	"math"
	"slices"
	"sort"

	"sculpt/internal/hal"
)

// Server is the modelled machine as the engine sees it: a hal.HAL over the
// modelled workloads' processes (one process per workload, its threads,
// its own cgroup /sim.slice/NAME) and the NIC's interrupts. Apply changes
// the model's arrangement and returns the undo, as the Linux backend
// does; the journal works over it unchanged.
type Server struct {
	hw     *Hardware
	procs  map[int]*simProc // by PID
	byName map[string]*simProc
	irqs   map[int][]int
	// Applied counts the actions applied (undos included).
	Applied int
}

type simProc struct {
	pid    int
	tid0   int
	name   string
	cgroup string
	start  uint64
	prog   Program
	place  Placement
	// cgIdle is its cgroup's cpu.idle: kept and reported, not modelled
	// (the model's SCHED_IDLE is per workload already).
	cgIdle bool
}

var _ hal.HAL = (*Server)(nil)

// NewServer returns a server with no workloads; IRQs start as the
// topology lists them.
func NewServer(hw *Hardware) *Server {
	s := &Server{hw: hw, procs: map[int]*simProc{}, byName: map[string]*simProc{}, irqs: map[int][]int{}}
	for _, irq := range hw.Topo.IRQs {
		if irq.Number >= 0 && irq.Device != "" {
			s.irqs[irq.Number] = slices.Clone(irq.SMPAffinity)
		}
	}
	return s
}

// Hardware returns the modelled machine.
func (s *Server) Hardware() *Hardware { return s.hw }

// start adds a workload's process with the default placement.
func (s *Server) start(name string, pid int, startTick uint64, p Program, pl Placement) {
	sp := &simProc{pid: pid, tid0: pid, name: name, cgroup: "/sim.slice/" + name, start: startTick, prog: p, place: pl}
	s.procs[pid] = sp
	s.byName[name] = sp
}

// stop removes a workload's process (it exited).
func (s *Server) stop(name string) {
	if sp := s.byName[name]; sp != nil {
		delete(s.procs, sp.pid)
		delete(s.byName, name)
	}
}

// Capabilities: what the model can change. Lane reallocation, channels,
// RPS/XPS masks, SR-IOV and virtual NICs are not modelled yet.
func (s *Server) Capabilities() hal.Capabilities {
	c := hal.Capabilities{
		Pin:         hal.Yes("simulated"),
		Sched:       hal.Yes("simulated"),
		Cpuset:      hal.Yes("simulated cgroup v2"),
		CPUWeight:   hal.Yes("simulated cgroup v2"),
		CPUQuota:    hal.Yes("simulated cgroup v2"),
		Cgroups:     hal.Yes("simulated cgroup v2"),
		MemBind:     hal.Yes("simulated"),
		BlkioWeight: hal.No("block I/O is not modelled yet"),
		BlkioLimit:  hal.No("block I/O is not modelled yet"),
		IRQAffinity: hal.Yes("simulated"),
		QueueMasks:  hal.No("RPS/XPS are not modelled yet"),
		Channels:    hal.No("NIC channels are not modelled yet"),
		SRIOV:       hal.No("SR-IOV is not modelled yet"),
		PCIeLanes:   hal.No("lane reallocation is not modelled yet"),
		VNICs:       map[string]hal.Capability{},
	}
	if len(s.hw.Topo.Nodes) > 1 {
		c.MemMigrate = hal.Yes("simulated")
	} else {
		c.MemMigrate = hal.No("one NUMA node")
	}
	c.NUMABalancing = hal.No("the simulator models no automatic NUMA balancing: sculpt owns page placement")
	return c
}

// Snapshot returns the arrangement of the given processes.
func (s *Server) Snapshot(_ context.Context, pids []int) (*hal.Arrangement, error) {
	arr := &hal.Arrangement{}
	for _, pid := range pids {
		sp := s.procs[pid]
		if sp == nil {
			continue
		}
		ps := hal.ProcessState{PID: pid, Comm: sp.name, StartTime: sp.start,
			Cgroups: map[string]string{"": sp.cgroup},
			Cpuset:  &hal.CpusetState{Cgroup: sp.cgroup, CPUs: s.hw.Topo.OnlineCPUs(), Mems: s.nodeIDs()},
			CPU:     &hal.CPULimits{Cgroup: sp.cgroup, Weight: uint64(sp.place.Weight), QuotaUS: -1, PeriodUS: 100000, Idle: sp.cgIdle},
		}
		if sp.place.Quota > 0 {
			ps.CPU.QuotaUS = int64(sp.place.Quota * 100000)
		}
		for i, t := range sp.place.Threads {
			ps.Threads = append(ps.Threads, hal.ThreadState{TID: sp.tid0 + i, CPUs: slices.Clone(t.CPUs), Policy: t.Policy, Nice: t.Nice})
		}
		pages := s.pages(sp)
		ps.PageNodes = map[int]int{}
		for i, f := range sp.place.Pages {
			if f > 0 {
				ps.PageNodes[s.hw.Topo.Nodes[i].ID] = int(math.Round(f * pages))
			}
		}
		arr.Processes = append(arr.Processes, ps)
	}
	return arr, nil
}

func (s *Server) pages(sp *simProc) float64 { return sp.prog.RSSGB * (1 << 30) / 4096 }

func (s *Server) nodeIDs() []int {
	var ids []int
	for _, n := range s.hw.Topo.Nodes {
		ids = append(ids, n.ID)
	}
	return ids
}

func (s *Server) proc(pid int) (*simProc, error) {
	if sp := s.procs[pid]; sp != nil {
		return sp, nil
	}
	return nil, fmt.Errorf("simulated pid %d: %w", pid, hal.ErrGone)
}

func (s *Server) byCgroup(cg string) (*simProc, error) {
	for _, sp := range s.procs {
		if sp.cgroup == cg {
			return sp, nil
		}
	}
	return nil, fmt.Errorf("simulated cgroup %s: no such cgroup", cg)
}

func (s *Server) checkCPUs(cpus []int) error {
	for _, c := range cpus {
		if s.hw.Topo.CPU(c) == nil {
			return fmt.Errorf("simulated CPU %d: not on this machine (%s)", c, hal.FormatList(s.hw.Topo.OnlineCPUs()))
		}
	}
	return nil
}

func (s *Server) nodeIndexes(nodes []int) ([]int, error) {
	var out []int
	for _, n := range nodes {
		i, ok := s.hw.nodeIx[n]
		if !ok {
			return nil, fmt.Errorf("simulated NUMA node %d: not on this machine", n)
		}
		out = append(out, i)
	}
	return out, nil
}

// Apply validates a, changes the model and returns the undo.
func (s *Server) Apply(ctx context.Context, a hal.Action) (hal.Action, error) {
	if err := a.Validate(); err != nil {
		return nil, err
	}
	if cp := s.Capabilities().For(a); !cp.Supported {
		return nil, &hal.NotSupportedError{What: a.Kind(), Reason: cp.Reason}
	}
	undo, err := s.apply(ctx, a)
	if err == nil {
		s.Applied++
	}
	return undo, err
}

func (s *Server) apply(ctx context.Context, a hal.Action) (hal.Action, error) {
	switch a := a.(type) {
	case hal.PinThreads:
		sp, err := s.proc(a.PID)
		if err != nil {
			return nil, err
		}
		if err := s.checkCPUs(a.CPUs); err != nil {
			return nil, err
		}
		undo := hal.PinThreads{PID: a.PID, Threads: map[int][]int{}}
		for i := range sp.place.Threads {
			tid := sp.tid0 + i
			undo.Threads[tid] = slices.Clone(sp.place.Threads[i].CPUs)
			cpus := a.CPUs
			if c, ok := a.Threads[tid]; ok {
				cpus = c
			}
			if len(cpus) > 0 {
				if err := s.checkCPUs(cpus); err != nil {
					return nil, err
				}
				sp.place.Threads[i].CPUs = slices.Clone(cpus)
			}
		}
		return undo, nil
	case hal.SetSched:
		sp, err := s.proc(a.PID)
		if err != nil {
			return nil, err
		}
		undo := hal.SetSched{PID: a.PID, Threads: map[int]hal.ThreadSched{}}
		for i := range sp.place.Threads {
			t := &sp.place.Threads[i]
			tid := sp.tid0 + i
			undo.Threads[tid] = hal.ThreadSched{Policy: t.Policy, Nice: t.Nice}
			if ts, ok := a.Threads[tid]; ok {
				t.Policy, t.Nice = ts.Policy, ts.Nice
				continue
			}
			if a.Policy != "" {
				t.Policy = a.Policy
				if a.Nice != nil {
					t.Nice = *a.Nice
				}
			}
		}
		return undo, nil
	case hal.SetCgroupCPU:
		sp, err := s.byCgroup(a.Cgroup)
		if err != nil {
			return nil, err
		}
		w := uint64(sp.place.Weight)
		undo := hal.SetCgroupCPU{Cgroup: a.Cgroup}
		if a.Idle != nil {
			old := sp.cgIdle
			undo.Idle = &old
			sp.cgIdle = *a.Idle
		}
		if a.Weight != nil || a.Shares != nil {
			undo.Weight = &w
		}
		if a.Weight != nil {
			sp.place.Weight = float64(*a.Weight)
		}
		if a.Shares != nil {
			sp.place.Weight = math.Max(1, float64(*a.Shares)*100/1024)
		}
		if a.QuotaUS != nil {
			q := int64(-1)
			if sp.place.Quota > 0 {
				q = int64(sp.place.Quota * 100000)
			}
			undo.QuotaUS = &q
			period := 100000.0
			if a.PeriodUS != nil {
				period = float64(*a.PeriodUS)
			}
			sp.place.Quota = 0
			if *a.QuotaUS > 0 {
				sp.place.Quota = float64(*a.QuotaUS) / period
			}
		}
		return undo, nil
	case hal.SetCpuset:
		sp, err := s.byCgroup(a.Cgroup)
		if err != nil {
			return nil, err
		}
		var steps []hal.Action
		if a.CPUs != nil {
			u, err := s.apply(ctx, pinAll(sp, a.CPUs))
			if err != nil {
				return nil, err
			}
			steps = append(steps, u)
		}
		if a.Mems != nil {
			u, err := s.apply(ctx, hal.MemBind{Cgroup: a.Cgroup, Nodes: a.Mems, Migrate: true})
			if err != nil {
				return nil, err
			}
			steps = append(steps, u)
		}
		return hal.Steps{Steps: steps}, nil
	case hal.MemBind:
		sp, err := s.byCgroup(a.Cgroup)
		if err != nil {
			return nil, err
		}
		return s.migrate(sp, a.Nodes)
	case hal.MemMigrate:
		sp, err := s.proc(a.PID)
		if err != nil {
			return nil, err
		}
		return s.migrate(sp, a.ToNodes)
	case hal.IRQAffinity:
		if _, ok := s.irqs[a.IRQ]; !ok {
			return nil, fmt.Errorf("simulated IRQ %d: no such device interrupt", a.IRQ)
		}
		if err := s.checkCPUs(a.CPUs); err != nil {
			return nil, err
		}
		undo := hal.IRQAffinity{IRQ: a.IRQ, CPUs: slices.Clone(s.irqs[a.IRQ])}
		s.irqs[a.IRQ] = slices.Clone(a.CPUs)
		return undo, nil
	case hal.CreateCgroup:
		return hal.RemoveCgroup(a), nil
	case hal.RemoveCgroup:
		return hal.CreateCgroup(a), nil
	case hal.MoveToCgroup:
		sp, err := s.proc(a.PID)
		if err != nil {
			return nil, err
		}
		undo := hal.MoveToCgroup{PID: a.PID, Cgroup: sp.cgroup, Controllers: a.Controllers}
		sp.cgroup = a.Cgroup
		return undo, nil
	case hal.Steps:
		var undos []hal.Action
		for _, st := range a.Steps {
			u, err := s.apply(ctx, st)
			if err != nil {
				for i := len(undos) - 1; i >= 0; i-- {
					_, _ = s.apply(ctx, undos[i])
				}
				return nil, err
			}
			undos = append(undos, u)
		}
		slices.Reverse(undos)
		return hal.Steps{Steps: undos}, nil
	}
	return nil, &hal.NotSupportedError{What: a.Kind(), Reason: "not modelled"}
}

func pinAll(sp *simProc, cpus []int) hal.PinThreads {
	return hal.PinThreads{PID: sp.pid, CPUs: slices.Clone(cpus)}
}

// migrate moves a process's pages to nodes (evenly) and returns the
// undo: migrations back to each node it had pages on, restoring the
// split. Migration is modelled as done within the interval.
func (s *Server) migrate(sp *simProc, nodes []int) (hal.Action, error) {
	ix, err := s.nodeIndexes(nodes)
	if err != nil {
		return nil, err
	}
	old := slices.Clone(sp.place.Pages)
	for i := range sp.place.Pages {
		sp.place.Pages[i] = 0
	}
	for _, i := range ix {
		sp.place.Pages[i] += 1 / float64(len(ix))
	}
	// The undo names the nodes the pages were on; the model spreads them
	// evenly over those, which restores any split this backend made.
	var back []int
	for i, f := range old {
		if f > 0 {
			back = append(back, s.hw.Topo.Nodes[i].ID)
		}
	}
	sort.Ints(back)
	return hal.MemMigrate{PID: sp.pid, ToNodes: back}, nil
}

// world is the model's input for the workloads running now, in name order.
func (s *Server) world(slo map[string]float64) (*World, []string) {
	names := slices.Sorted(maps.Keys(s.byName))
	w := &World{HW: s.hw, IRQs: s.irqs}
	for _, n := range names {
		sp := s.byName[n]
		w.Progs = append(w.Progs, sp.prog)
		w.Place = append(w.Place, sp.place)
		w.SLO = append(w.SLO, slo[n])
	}
	return w, names
}
