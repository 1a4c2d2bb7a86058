package sim

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"sculpt/internal/hal/topology"
	"sculpt/internal/host"
)

// Hardware is the modelled machine: its topology (the same type
// internal/hal/topology reads from sysfs) and what sysfs does not say.
type Hardware struct {
	Name string
	Topo *topology.Topology
	// NodeBandwidth is the memory bandwidth each NUMA node sustains, bytes/s,
	// indexed like Topo.Nodes.
	NodeBandwidth []float64
	// LLCs are the last-level cache domains (from Topo.Caches, level 3, or
	// one per package when the topology lists none).
	LLCs []LLC
	// GHz is the core clock the counters are modelled at.
	GHz float64
	// LocalLatencyNS is an idle local DRAM access.
	LocalLatencyNS float64
	// SMTYield is the throughput of a core with both hardware threads busy,
	// relative to one thread alone (1.0: SMT gives nothing).
	SMTYield float64

	llcOf    []int // CPU -> index in LLCs (-1 none)
	alone    map[Program]Outcome
	cpuNode  []int   // CPU -> node index
	siblings [][]int // CPU -> its SMT siblings
	nodeIx   map[int]int
}

// LLC is one shared last-level cache.
type LLC struct {
	CPUs  []int
	Bytes float64
	Ways  int
}

// Parameters of the model's hardware, with their sources (docs/sim.md).
const (
	// Per-node DRAM bandwidth of the EPYC shapes: 8 channels DDR4-3200 per
	// socket is 204.8 GB/s peak (AMD EPYC 7002 product brief); STREAM
	// triad reaches ~75% of it; NPS2 halves it per node.
	epycSocketBW = 204.8e9 * 0.75
	// Xeon Platinum 8280 (Cascade Lake, 28 cores): 6 channels DDR4-2933 =
	// 140.8 GB/s peak per socket (Intel ARK), ~75% sustained.
	xeonSocketBW = 140.8e9 * 0.75
	// A desktop with 2 channels of DDR4-3200: 51.2 GB/s peak, ~70%.
	desktopBW = 51.2e9 * 0.7
	// This VM: measured with `sysbench memory --memory-block-size=1M
	// --threads=2 run` on the development machine, ~10 GB/s.
	vmBW = 10e9
	// Idle local DRAM latency, ~90 ns on EPYC Rome and Cascade Lake
	// (AnandTech's memory-latency tests of both parts).
	localLatencyNS = 90
	// Two busy SMT threads on a core get ~1.25x one thread's throughput
	// (Intel's Hyper-Threading figure of 15-30%; ~25% on SPECrate).
	smtYield = 1.25
)

// Shapes are the built-in machines, by name. Each is generated as
// internal/hal/topology would read it from sysfs.
var Shapes = []string{"vm-2cpu", "desktop-1s-8c", "epyc-2s-4n-64c", "xeon-2s-2x28c-smt", "epyc-2s-8n-64c"}

// LoadHardware returns a built-in shape by name, or reads a sysfs fixture
// directory (the layout of internal/hal/topology/testdata/sysfs/*) when
// name is a path with a '/'.
func LoadHardware(name string) (*Hardware, error) {
	if strings.Contains(name, "/") {
		t, err := topology.Discover(host.Roots{Sys: name, Proc: name})
		if err != nil {
			return nil, fmt.Errorf("sim topology %s: %w", name, err)
		}
		bw := epycSocketBW / 2
		if len(t.Nodes) <= 1 {
			bw = desktopBW
		}
		return newHardware(name, t, bw, 16), nil
	}
	var s shape
	switch name {
	case "vm-2cpu":
		s = shape{sockets: 1, nodesPerSocket: 1, cores: 2, smt: false, coresPerLLC: 2, llcMB: 32, nodeMemGB: 4, bw: vmBW, ways: 16, nicQueues: 2}
	case "desktop-1s-8c":
		s = shape{sockets: 1, nodesPerSocket: 1, cores: 8, smt: true, coresPerLLC: 8, llcMB: 16, nodeMemGB: 32, bw: desktopBW, ways: 16, nicQueues: 4}
	case "epyc-2s-4n-64c":
		s = shape{sockets: 2, nodesPerSocket: 2, cores: 32, smt: true, coresPerLLC: 4, llcMB: 16, nodeMemGB: 64, bw: epycSocketBW / 2, ways: 16, nicQueues: 8, nicNode: 2, remote: 32, near: 12}
	case "xeon-2s-2x28c-smt":
		s = shape{sockets: 2, nodesPerSocket: 1, cores: 28, smt: true, coresPerLLC: 28, llcMB: 38.5, nodeMemGB: 192, bw: xeonSocketBW, ways: 11, nicQueues: 16, nicNode: 1, remote: 21, near: 10}
	case "epyc-2s-8n-64c":
		s = shape{sockets: 2, nodesPerSocket: 4, cores: 32, smt: true, coresPerLLC: 4, llcMB: 16, nodeMemGB: 32, bw: epycSocketBW / 4, ways: 16, nicQueues: 8, nicNode: 5, remote: 32, near: 12}
	default:
		return nil, fmt.Errorf("sim topology %q: not a built-in shape (%s) nor a sysfs directory", name, strings.Join(Shapes, ", "))
	}
	return newHardware(name, s.build(), s.bw, s.ways), nil
}

func newHardware(name string, t *topology.Topology, nodeBW float64, ways int) *Hardware {
	h := &Hardware{Name: name, Topo: t, GHz: 2.5, LocalLatencyNS: localLatencyNS, SMTYield: smtYield, nodeIx: map[int]int{}}
	for i, n := range t.Nodes {
		h.nodeIx[n.ID] = i
		h.NodeBandwidth = append(h.NodeBandwidth, nodeBW)
	}
	if len(t.Nodes) == 0 {
		t.Nodes = []topology.Node{{ID: 0, CPUs: t.OnlineCPUs(), MemTotalBytes: 4 << 30, Distances: []int{10}}}
		h.nodeIx[0] = 0
		h.NodeBandwidth = []float64{nodeBW}
	}
	for _, c := range t.Caches {
		if c.Level == 3 {
			h.LLCs = append(h.LLCs, LLC{CPUs: c.CPUs, Bytes: float64(c.SizeBytes), Ways: ways})
		}
	}
	if len(h.LLCs) == 0 {
		for _, p := range t.Packages() {
			var cpus []int
			for _, c := range t.CPUs {
				if c.PackageID == p && c.Online {
					cpus = append(cpus, c.ID)
				}
			}
			h.LLCs = append(h.LLCs, LLC{CPUs: cpus, Bytes: 16 << 20, Ways: ways})
		}
	}
	maxCPU := 0
	for _, c := range t.CPUs {
		maxCPU = max(maxCPU, c.ID+1)
	}
	h.llcOf = make([]int, maxCPU)
	for i := range h.llcOf {
		h.llcOf[i] = -1
	}
	h.cpuNode = make([]int, maxCPU)
	h.siblings = make([][]int, maxCPU)
	for _, c := range t.CPUs {
		h.cpuNode[c.ID] = h.node(max(c.Node, 0))
		h.siblings[c.ID] = c.ThreadSiblings
	}
	for i, l := range h.LLCs {
		for _, c := range l.CPUs {
			if c < maxCPU {
				h.llcOf[c] = i
			}
		}
	}
	return h
}

// node returns the index in Topo.Nodes of node id (0 when unknown).
func (h *Hardware) node(id int) int { return h.nodeIx[id] }

// NodeOfCPU is the index in Topo.Nodes of the node of cpu.
func (h *Hardware) NodeOfCPU(cpu int) int {
	if cpu >= 0 && cpu < len(h.cpuNode) {
		return h.cpuNode[cpu]
	}
	return h.node(max(h.Topo.NodeOfCPU(cpu), 0))
}

// distance is the SLIT distance between node indexes a and b (10 local).
func (h *Hardware) distance(a, b int) float64 {
	d := h.Topo.Nodes[a].Distances
	if b < len(d) && d[b] > 0 {
		return float64(d[b])
	}
	if a == b {
		return 10
	}
	return 20
}

// LatencyFactor is how much slower a DRAM access from node a to node b is
// than a local one, unloaded: (distance/10)^0.6, a fit through the
// measured ratios of EPYC Rome (SLIT 12: ~1.1x, SLIT 32: ~2.0x) and
// Cascade Lake (SLIT 21: ~1.6x) in AnandTech's and Chips and Cheese's
// latency tests. It is 1 for a == b and never below 1.
func (h *Hardware) LatencyFactor(a, b int) float64 {
	return math.Max(1, math.Pow(h.distance(a, b)/10, 0.6))
}

// shape is a generated machine.
type shape struct {
	sockets, nodesPerSocket, cores int // cores per socket
	smt                            bool
	coresPerLLC                    int
	llcMB                          float64
	nodeMemGB                      float64
	bw                             float64 // per node
	ways                           int
	nicQueues, nicNode             int
	remote, near                   int // SLIT distances across sockets, within a socket
}

// build lays the shape out as Linux numbers it: the first hardware thread
// of every core (socket 0 then 1), then their SMT siblings.
func (s shape) build() *topology.Topology {
	t := &topology.Topology{}
	phys := s.sockets * s.cores
	n := phys
	if s.smt {
		n *= 2
	}
	nodes := s.sockets * s.nodesPerSocket
	coresPerNode := s.cores / s.nodesPerSocket
	for id := range n {
		p := id % phys
		sock, core := p/s.cores, p%s.cores
		node := sock*s.nodesPerSocket + core/coresPerNode
		sib := []int{p}
		if s.smt {
			sib = []int{p, p + phys}
		}
		t.CPUs = append(t.CPUs, topology.CPU{ID: id, Online: true, CoreID: core, PackageID: sock, Node: node, ThreadSiblings: sib})
	}
	for sock := range s.sockets {
		for first := 0; first < s.cores; first += s.coresPerLLC {
			var cpus []int
			for c := first; c < min(first+s.coresPerLLC, s.cores); c++ {
				p := sock*s.cores + c
				cpus = append(cpus, p)
				if s.smt {
					cpus = append(cpus, p+phys)
				}
			}
			sort.Ints(cpus)
			t.Caches = append(t.Caches, topology.Cache{Level: 3, Type: "Unified", SizeBytes: int64(s.llcMB * (1 << 20)), CPUs: cpus})
		}
	}
	for nd := range nodes {
		var cpus []int
		for _, c := range t.CPUs {
			if c.Node == nd {
				cpus = append(cpus, c.ID)
			}
		}
		dist := make([]int, nodes)
		for o := range nodes {
			switch {
			case o == nd:
				dist[o] = 10
			case o/s.nodesPerSocket == nd/s.nodesPerSocket:
				dist[o] = max(s.near, 11)
			default:
				dist[o] = max(s.remote, 20)
			}
		}
		t.Nodes = append(t.Nodes, topology.Node{ID: nd, CPUs: cpus, MemTotalBytes: uint64(s.nodeMemGB * (1 << 30)), Distances: dist})
	}
	// One NIC on nicNode with a completion interrupt per queue, each
	// initially allowed on every CPU (irqbalance not running).
	addr := "0000:41:00.0"
	all := make([]int, n)
	for i := range all {
		all[i] = i
	}
	t.IRQCPUs = all
	var irqs []int
	for q := range s.nicQueues {
		num := 120 + q
		irqs = append(irqs, num)
		t.IRQs = append(t.IRQs, topology.IRQ{IRQ: fmt.Sprint(num), Number: num, Chip: "IR-PCI-MSIX-" + addr, Device: addr,
			Actions: []string{fmt.Sprintf("mlx5_comp%d@pci:%s", q, addr)}, SMPAffinity: slices.Clone(all), EffectiveAffinity: []int{q % n}})
	}
	vfs, numVFs := 8, 0
	t.PCIDevices = []topology.PCIDevice{{Address: addr, Class: "0x020000", ClassName: "ethernet", Vendor: "0x15b3", Device: "0x1017",
		Driver: "mlx5_core", NUMANode: s.nicNode, CurrentLinkSpeed: "8.0 GT/s PCIe", CurrentLinkWidth: 16,
		MaxLinkSpeed: "8.0 GT/s PCIe", MaxLinkWidth: 16, SRIOVTotalVFs: &vfs, SRIOVNumVFs: &numVFs, MSIIRQs: irqs}}
	t.NICs = []topology.NIC{{Name: "ens1f0np0", Driver: "mlx5_core", PCIAddress: addr, NUMANode: s.nicNode, MTU: 1500, OperState: "up",
		SpeedMbps: 25000, RxQueues: s.nicQueues, TxQueues: s.nicQueues, IRQs: irqs}}
	return t
}
