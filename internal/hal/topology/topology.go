// Package topology discovers the hardware a node agent arranges work on:
// CPUs and their cores, packages and SMT siblings, caches and which CPUs
// share them, NUMA nodes with their memory and distances, PCI devices with
// their links and SR-IOV capacity, network interfaces with their queues and
// interrupts, and the interrupt lines themselves.
//
// It only reads sysfs and procfs, through the roots it is given, so it runs
// unchanged on fixtures (testdata/sysfs/<shape>/) and on a host's /sys and
// /proc mounted elsewhere. Reading each kernel file is kept apart from
// parsing it; the parsers are tested on fixtures.
package topology

import (
	"fmt"
	"slices"

	"sculpt/internal/host"
)

// Topology is what Discover found. Slices are sorted by ID (CPUs, nodes,
// IRQ numbers) or by address/name (PCI devices, NICs).
type Topology struct {
	CPUs       []CPU       `json:"cpus"`
	Caches     []Cache     `json:"caches"`
	Nodes      []Node      `json:"nodes"`
	PCIDevices []PCIDevice `json:"pci_devices"`
	NICs       []NIC       `json:"nics"`
	Disks      []Disk      `json:"disks,omitempty"`
	IRQs       []IRQ       `json:"irqs"`
	// IRQCPUs names the CPU of each IRQ.PerCPU column (the header of
	// /proc/interrupts, which lists the online CPUs).
	IRQCPUs []int `json:"irq_cpus"`
}

// CPU is one logical CPU (a hardware thread).
type CPU struct {
	ID     int  `json:"id"`
	Online bool `json:"online"`
	// CoreID is topology/core_id: unique within a package, not across them.
	// -1 when the kernel does not say (an offline CPU).
	CoreID int `json:"core_id"`
	// PackageID is topology/physical_package_id (the socket); -1 when unknown.
	PackageID int `json:"package_id"`
	// Node is the NUMA node holding the CPU; -1 when unknown.
	Node int `json:"node"`
	// ThreadSiblings are the CPUs of the same core, this one included
	// (topology/thread_siblings_list).
	ThreadSiblings []int `json:"thread_siblings"`
}

// Cache is one cache instance, shared by the CPUs listed.
type Cache struct {
	Level     int    `json:"level"`
	Type      string `json:"type"`       // Data, Instruction or Unified
	SizeBytes int64  `json:"size_bytes"` // 0 when the kernel does not say
	CPUs      []int  `json:"cpus"`       // shared_cpu_list
}

// Node is one NUMA node.
type Node struct {
	ID            int    `json:"id"`
	CPUs          []int  `json:"cpus"`
	MemTotalBytes uint64 `json:"mem_total_bytes"`
	// Distances[i] is the distance from this node to Topology.Nodes[i]
	// (the kernel's nodeN/distance, in the order of the online nodes); 10
	// is local.
	Distances []int `json:"distances"`
}

// PCIDevice is one PCI function.
type PCIDevice struct {
	Address   string `json:"address"`    // domain:bus:device.function, e.g. 0000:c1:00.0
	Class     string `json:"class"`      // 24-bit class code in hex, e.g. 0x020000
	ClassName string `json:"class_name"` // e.g. "ethernet"; empty when not a common class
	Vendor    string `json:"vendor"`     // e.g. 0x15b3
	Device    string `json:"device"`     // e.g. 0x1017
	Driver    string `json:"driver,omitempty"`
	NUMANode  int    `json:"numa_node"` // -1 when unknown
	// Link speed and width; empty/0 when the device has no PCIe link files
	// (legacy PCI, most virtual devices).
	CurrentLinkSpeed string `json:"current_link_speed,omitempty"` // e.g. "8.0 GT/s PCIe"
	CurrentLinkWidth int    `json:"current_link_width,omitempty"`
	MaxLinkSpeed     string `json:"max_link_speed,omitempty"`
	MaxLinkWidth     int    `json:"max_link_width,omitempty"`
	// SR-IOV; nil when the device is not an SR-IOV physical function.
	SRIOVTotalVFs *int `json:"sriov_totalvfs,omitempty"`
	SRIOVNumVFs   *int `json:"sriov_numvfs,omitempty"`
	// MSIIRQs are the IRQ numbers of the device's MSI/MSI-X vectors.
	MSIIRQs []int `json:"msi_irqs,omitempty"`
}

// NIC is one network interface.
type NIC struct {
	Name       string `json:"name"`
	Driver     string `json:"driver,omitempty"`
	PCIAddress string `json:"pci_address,omitempty"` // the PCI function behind it, if any
	NUMANode   int    `json:"numa_node"`             // -1 when unknown
	MAC        string `json:"mac,omitempty"`
	MTU        int    `json:"mtu"`
	OperState  string `json:"operstate"`
	// SpeedMbps is 0 when the kernel cannot say (link down, virtual device).
	SpeedMbps int  `json:"speed_mbps,omitempty"`
	RxQueues  int  `json:"rx_queues"`
	TxQueues  int  `json:"tx_queues"`
	Virtual   bool `json:"virtual"`
	// IRQs serving it: its PCI function's MSI vectors and the
	// /proc/interrupts lines whose actions or chip name it.
	IRQs []int `json:"irqs,omitempty"`
}

// IRQ is one line of /proc/interrupts.
type IRQ struct {
	// IRQ is the first column: a number ("38") or an architecture
	// interrupt's name ("LOC", "NMI").
	IRQ    string `json:"irq"`
	Number int    `json:"number"` // -1 for named (per-CPU architecture) interrupts
	Total  uint64 `json:"total"`  // summed over CPUs
	// PerCPU[i] is the count on CPU Topology.IRQCPUs[i]. Some named rows
	// (ERR, MIS) have a single, machine-wide count.
	PerCPU  []uint64 `json:"per_cpu"`
	Chip    string   `json:"chip,omitempty"`    // e.g. IR-PCI-MSIX-0000:c1:00.0
	HWIRQ   string   `json:"hw_irq,omitempty"`  // e.g. 1-edge
	Device  string   `json:"device,omitempty"`  // PCI address named by the chip, if any
	Actions []string `json:"actions,omitempty"` // handler names, e.g. virtio2-input.0
	// Description is the text of a named interrupt, e.g. "Local timer interrupts".
	Description string `json:"description,omitempty"`
	// SMPAffinity and EffectiveAffinity come from /proc/irq/N; nil when
	// not readable.
	SMPAffinity       []int `json:"smp_affinity,omitempty"`
	EffectiveAffinity []int `json:"effective_affinity,omitempty"`
}

// Discover reads the machine's topology through roots: under roots.Sys
// devices/system/cpu, devices/system/node, bus/pci/devices, class/net and block;
// under roots.Proc interrupts, irq/N and (on a machine without NUMA nodes in
// sysfs) meminfo. It fails when a file it needs is missing or a file holds a
// value it cannot parse, with an error naming the file and the value; an
// optional file that is missing leaves its field empty.
func Discover(roots host.Roots) (*Topology, error) {
	t := &Topology{}
	var err error
	if t.CPUs, err = readCPUs(roots); err != nil {
		return nil, err
	}
	if t.Caches, err = readCaches(roots, t.CPUs); err != nil {
		return nil, err
	}
	if t.Nodes, err = readNodes(roots, t.CPUs); err != nil {
		return nil, err
	}
	assignNodes(t.CPUs, t.Nodes)
	if err := cpuNodeLinks(roots, t.CPUs); err != nil {
		return nil, err
	}
	if t.IRQCPUs, t.IRQs, err = readInterrupts(roots); err != nil {
		return nil, err
	}
	if t.PCIDevices, err = readPCIDevices(roots); err != nil {
		return nil, err
	}
	if t.NICs, err = readNICs(roots, t.PCIDevices, t.IRQs); err != nil {
		return nil, err
	}
	if t.Disks, err = readDisks(roots); err != nil {
		return nil, err
	}
	return t, nil
}

// NodeOfCPU returns the NUMA node of cpu, or -1 when the CPU is unknown or
// its node is.
func (t *Topology) NodeOfCPU(cpu int) int {
	if c := t.CPU(cpu); c != nil {
		return c.Node
	}
	return -1
}

// CPUsOfNode returns the CPUs of NUMA node node (online or not), ascending;
// nil when there is no such node.
func (t *Topology) CPUsOfNode(node int) []int {
	if n := t.Node(node); n != nil {
		return slices.Clone(n.CPUs)
	}
	return nil
}

// CPU returns the CPU with the given ID, or nil.
func (t *Topology) CPU(id int) *CPU {
	i, ok := slices.BinarySearchFunc(t.CPUs, id, func(c CPU, id int) int { return c.ID - id })
	if !ok {
		return nil
	}
	return &t.CPUs[i]
}

// Node returns the NUMA node with the given ID, or nil.
func (t *Topology) Node(id int) *Node {
	for i := range t.Nodes {
		if t.Nodes[i].ID == id {
			return &t.Nodes[i]
		}
	}
	return nil
}

// Distance returns the NUMA distance from node a to node b (10 is local),
// or -1 when either node is unknown.
func (t *Topology) Distance(a, b int) int {
	from := t.Node(a)
	if from == nil {
		return -1
	}
	for i, n := range t.Nodes {
		if n.ID == b && i < len(from.Distances) {
			return from.Distances[i]
		}
	}
	return -1
}

// OnlineCPUs returns the IDs of the online CPUs, ascending.
func (t *Topology) OnlineCPUs() []int {
	var ids []int
	for _, c := range t.CPUs {
		if c.Online {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// Packages returns the distinct package (socket) IDs, ascending.
func (t *Topology) Packages() []int {
	var ids []int
	for _, c := range t.CPUs {
		if c.PackageID >= 0 && !slices.Contains(ids, c.PackageID) {
			ids = append(ids, c.PackageID)
		}
	}
	slices.Sort(ids)
	return ids
}

// Cores returns the number of distinct (package, core) pairs among the
// CPUs whose topology is known.
func (t *Topology) Cores() int {
	type key struct{ pkg, core int }
	seen := map[key]bool{}
	for _, c := range t.CPUs {
		if c.CoreID >= 0 {
			seen[key{c.PackageID, c.CoreID}] = true
		}
	}
	return len(seen)
}

// parseError names the file and the value that could not be parsed.
func parseError(path, value string, err error) error {
	return fmt.Errorf("parse %s: %q: %w", path, value, err)
}
