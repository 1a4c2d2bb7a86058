package sim

import (
	"fmt"
	"slices"
	"sort"
	"strings"
)

// Workload kinds of the model.
const (
	KindService  = "service"   // request/response: latency objective
	KindCPUBatch = "cpu-batch" // spins on the CPU: throughput
	KindMemBatch = "mem-batch" // streams through memory: throughput
	KindIOBatch  = "io-batch"  // moves storage data: throughput
)

// Program is the demand of one modelled workload at scale 1, alone on an
// idle machine. The zoo programs' values are in Programs, with sources.
type Program struct {
	Name    string  `yaml:"-" json:"name"`
	Kind    string  `yaml:"kind,omitempty" json:"kind"`
	Threads int     `yaml:"threads,omitempty" json:"threads"`
	CPU     float64 `yaml:"cpu,omitempty" json:"cpu"` // cores of demand (services: from ReqRate × ServiceUS)
	// Services.
	ReqRate   float64 `yaml:"req_rate,omitempty" json:"req_rate,omitempty"`     // requests/s
	ServiceUS float64 `yaml:"service_us,omitempty" json:"service_us,omitempty"` // CPU µs per request, alone
	// Memory.
	RSSGB        float64 `yaml:"rss_gb,omitempty" json:"rss_gb"`
	MemBW        float64 `yaml:"mem_bw_gbps,omitempty" json:"mem_bw_gbps"` // DRAM traffic alone, GB/s
	WorkingSetMB float64 `yaml:"working_set_mb,omitempty" json:"working_set_mb"`
	APKI         float64 `yaml:"apki,omitempty" json:"apki"`         // LLC accesses per 1000 instructions
	MissMin      float64 `yaml:"miss_min,omitempty" json:"miss_min"` // LLC miss ratio with the whole working set cached
	MissMax      float64 `yaml:"miss_max,omitempty" json:"miss_max"` // with no LLC at all
	IPC0         float64 `yaml:"ipc0,omitempty" json:"ipc0"`         // instructions per cycle when every LLC access hits
	FaultRate    float64 `yaml:"fault_rate,omitempty" json:"fault_rate"`
	// I/O and network, bytes/s.
	IOBps  float64 `yaml:"io_bps,omitempty" json:"io_bps,omitempty"`
	NetBps float64 `yaml:"net_bps,omitempty" json:"net_bps,omitempty"`
}

// Programs are the modelled zoo programs (docs/zoo.md). CPU, threads, RSS,
// request rate, faults and I/O follow the zoo's recordings on this machine
// (testdata/traces/train, `sculpt dna` over them: TestProgramsFollowTraces
// checks the CPU and RSS); the hardware side (working set, APKI, miss
// ratios, IPC, DRAM traffic) has no counters here and follows published
// characterisations: memcached and nginx from Ferdman et al., "Clearing the
// Clouds" (ASPLOS 2012, Table 2 and Fig. 4: IPC ~0.6-1.0, LLC MPKI 2-6);
// stress-ng cpu from SPECint-like integer kernels (IPC ~2, tiny working
// set); the memory streamers from STREAM (one miss per 64-byte line,
// MPKI > 20); fio as a kernel-bound I/O loop.
var Programs = map[string]Program{
	"memcached":    {Name: "memcached", Kind: KindService, Threads: 4, ReqRate: 40000, ServiceUS: 12, RSSGB: 2, MemBW: 0.8, WorkingSetMB: 24, APKI: 12, MissMin: 0.08, MissMax: 0.6, IPC0: 1.0, FaultRate: 50, NetBps: 40e6},
	"nginx":        {Name: "nginx", Kind: KindService, Threads: 2, ReqRate: 12000, ServiceUS: 45, RSSGB: 0.2, MemBW: 0.4, WorkingSetMB: 8, APKI: 8, MissMin: 0.05, MissMax: 0.5, IPC0: 1.2, FaultRate: 200, NetBps: 120e6},
	"redis":        {Name: "redis", Kind: KindService, Threads: 1, ReqRate: 30000, ServiceUS: 18, RSSGB: 4, MemBW: 0.6, WorkingSetMB: 32, APKI: 14, MissMin: 0.1, MissMax: 0.65, IPC0: 0.9, FaultRate: 30, NetBps: 30e6},
	"postgres":     {Name: "postgres", Kind: KindService, Threads: 8, ReqRate: 3000, ServiceUS: 300, RSSGB: 8, MemBW: 2.5, WorkingSetMB: 64, APKI: 15, MissMin: 0.1, MissMax: 0.55, IPC0: 0.8, FaultRate: 500, IOBps: 20e6, NetBps: 10e6},
	"stress-cpu":   {Name: "stress-cpu", Kind: KindCPUBatch, Threads: 4, CPU: 4, RSSGB: 0.01, MemBW: 0.01, WorkingSetMB: 0.5, APKI: 1, MissMin: 0.01, MissMax: 0.3, IPC0: 2.0, FaultRate: 1},
	"build":        {Name: "build", Kind: KindCPUBatch, Threads: 8, CPU: 6, RSSGB: 3, MemBW: 1.5, WorkingSetMB: 6, APKI: 6, MissMin: 0.05, MissMax: 0.4, IPC0: 1.4, FaultRate: 15000, IOBps: 5e6},
	"stress-vm":    {Name: "stress-vm", Kind: KindMemBatch, Threads: 4, CPU: 4, RSSGB: 8, MemBW: 24, WorkingSetMB: 4096, APKI: 30, MissMin: 0.9, MissMax: 0.95, IPC0: 1.5, FaultRate: 60000},
	"stress-cache": {Name: "stress-cache", Kind: KindMemBatch, Threads: 2, CPU: 2, RSSGB: 0.1, MemBW: 6, WorkingSetMB: 48, APKI: 40, MissMin: 0.2, MissMax: 0.9, IPC0: 1.5, FaultRate: 100},
	"fio-seqwrite": {Name: "fio-seqwrite", Kind: KindIOBatch, Threads: 1, CPU: 0.4, RSSGB: 0.05, MemBW: 0.5, WorkingSetMB: 2, APKI: 5, MissMin: 0.1, MissMax: 0.5, IPC0: 1.0, FaultRate: 20, IOBps: 400e6},
}

// ProgramNames lists Programs in order.
func ProgramNames() []string {
	var n []string
	for k := range Programs {
		n = append(n, k)
	}
	sort.Strings(n)
	return n
}

// withDefaults fills what a scenario left out from the named program.
func (p Program) withDefaults() (Program, error) {
	base, ok := Programs[p.Name]
	if p.Kind == "" && !ok {
		return p, fmt.Errorf("workload program %q: not a modelled program (%s) and no kind given", p.Name, strings.Join(ProgramNames(), ", "))
	}
	if ok {
		fill(&p.Kind, base.Kind)
		fillI(&p.Threads, base.Threads)
		fillF(&p.CPU, base.CPU)
		fillF(&p.ReqRate, base.ReqRate)
		fillF(&p.ServiceUS, base.ServiceUS)
		fillF(&p.RSSGB, base.RSSGB)
		fillF(&p.MemBW, base.MemBW)
		fillF(&p.WorkingSetMB, base.WorkingSetMB)
		fillF(&p.APKI, base.APKI)
		fillF(&p.MissMin, base.MissMin)
		fillF(&p.MissMax, base.MissMax)
		fillF(&p.IPC0, base.IPC0)
		fillF(&p.FaultRate, base.FaultRate)
		fillF(&p.IOBps, base.IOBps)
		fillF(&p.NetBps, base.NetBps)
	}
	if !slices.Contains([]string{KindService, KindCPUBatch, KindMemBatch, KindIOBatch}, p.Kind) {
		return p, fmt.Errorf("workload %q: kind %q: want service, cpu-batch, mem-batch or io-batch", p.Name, p.Kind)
	}
	fillI(&p.Threads, 1)
	fillF(&p.IPC0, 1)
	fillF(&p.MissMax, 0.5)
	fillF(&p.WorkingSetMB, 1)
	if p.Kind == KindService {
		if p.ReqRate <= 0 || p.ServiceUS <= 0 {
			return p, fmt.Errorf("workload %q: a service needs req_rate and service_us", p.Name)
		}
		p.CPU = p.ReqRate * p.ServiceUS / 1e6
	}
	if p.CPU <= 0 {
		return p, fmt.Errorf("workload %q: cpu must be > 0", p.Name)
	}
	p.MissMin = min(p.MissMin, p.MissMax)
	return p, nil
}

func fill(s *string, v string) {
	if *s == "" {
		*s = v
	}
}
func fillI(s *int, v int) {
	if *s == 0 {
		*s = v
	}
}
func fillF(s *float64, v float64) {
	if *s == 0 {
		*s = v
	}
}

// scaled is p with its load multiplied by f (a phase): request rate, CPU,
// DRAM traffic, I/O and network.
func (p Program) scaled(f float64) Program {
	if f == 1 || f <= 0 {
		return p
	}
	p.ReqRate *= f
	p.CPU *= f
	p.MemBW *= f
	p.IOBps *= f
	p.NetBps *= f
	if p.Kind != KindService {
		p.CPU = min(p.CPU, float64(p.Threads))
	}
	return p
}
