package topology

import (
	"path/filepath"
	"slices"
	"testing"

	"sculpt/internal/host"
)

func fixtureRoots(shape string) host.Roots {
	dir := filepath.Join("testdata", "sysfs", shape)
	return host.Roots{Sys: dir, Proc: dir}
}

func discoverFixture(t *testing.T, shape string) *Topology {
	t.Helper()
	topo, err := Discover(fixtureRoots(shape))
	if err != nil {
		t.Fatalf("Discover(%s): %v", shape, err)
	}
	return topo
}

func cacheOf(t *testing.T, topo *Topology, cpu, level int, typ string) Cache {
	t.Helper()
	for _, c := range topo.Caches {
		if c.Level == level && c.Type == typ && slices.Contains(c.CPUs, cpu) {
			return c
		}
	}
	t.Fatalf("no L%d %s cache holds CPU %d", level, typ, cpu)
	return Cache{}
}

func nicNamed(t *testing.T, topo *Topology, name string) NIC {
	t.Helper()
	for _, n := range topo.NICs {
		if n.Name == name {
			return n
		}
	}
	t.Fatalf("no NIC %s among %+v", name, topo.NICs)
	return NIC{}
}

func pciAt(t *testing.T, topo *Topology, addr string) PCIDevice {
	t.Helper()
	for _, d := range topo.PCIDevices {
		if d.Address == addr {
			return d
		}
	}
	t.Fatalf("no PCI device %s", addr)
	return PCIDevice{}
}

func irqNumbered(t *testing.T, topo *Topology, irq string) IRQ {
	t.Helper()
	for _, q := range topo.IRQs {
		if q.IRQ == irq {
			return q
		}
	}
	t.Fatalf("no IRQ %s", irq)
	return IRQ{}
}

func TestDiscoverTwoSocketFourNode(t *testing.T) {
	topo := discoverFixture(t, twoSocketShape)

	// CPUs, cores, packages, SMT.
	if got := len(topo.CPUs); got != 128 {
		t.Fatalf("%d CPUs, want 128", got)
	}
	if got := len(topo.OnlineCPUs()); got != 128 {
		t.Errorf("%d online CPUs, want 128", got)
	}
	if got := topo.Packages(); !slices.Equal(got, []int{0, 1}) {
		t.Errorf("packages %v, want [0 1]", got)
	}
	if got := topo.Cores(); got != 64 {
		t.Errorf("%d cores, want 64", got)
	}
	for _, tc := range []struct {
		cpu, pkg, core, node int
		siblings             []int
	}{
		{0, 0, 0, 0, []int{0, 64}},
		{69, 0, 5, 0, []int{5, 69}},
		{20, 0, 20, 1, []int{20, 84}},
		{100, 1, 4, 2, []int{36, 100}},
		{127, 1, 31, 3, []int{63, 127}},
	} {
		c := topo.CPU(tc.cpu)
		if c == nil || c.PackageID != tc.pkg || c.CoreID != tc.core || c.Node != tc.node || !slices.Equal(c.ThreadSiblings, tc.siblings) {
			t.Errorf("CPU %d = %+v, want package %d core %d node %d siblings %v", tc.cpu, c, tc.pkg, tc.core, tc.node, tc.siblings)
		}
	}

	// Caches: L1d, L1i, L2 per core, L3 per 4-core CCX, deduplicated.
	if got := len(topo.Caches); got != 64*3+16 {
		t.Errorf("%d caches, want %d", got, 64*3+16)
	}
	if l2 := cacheOf(t, topo, 64, 2, "Unified"); l2.SizeBytes != 512<<10 || !slices.Equal(l2.CPUs, []int{0, 64}) {
		t.Errorf("L2 of CPU 64 = %+v", l2)
	}
	l3 := cacheOf(t, topo, 66, 3, "Unified")
	if l3.SizeBytes != 16<<20 || FormatCPUList(l3.CPUs) != "0-3,64-67" {
		t.Errorf("L3 of CPU 66 = %+v, want 16 MiB over 0-3,64-67", l3)
	}
	if l1 := cacheOf(t, topo, 5, 1, "Instruction"); l1.SizeBytes != 32<<10 {
		t.Errorf("L1i of CPU 5 = %+v", l1)
	}

	// NUMA nodes and distances.
	if got := len(topo.Nodes); got != 4 {
		t.Fatalf("%d nodes, want 4", got)
	}
	if got := FormatCPUList(topo.CPUsOfNode(2)); got != "32-47,96-111" {
		t.Errorf("CPUs of node 2 = %s", got)
	}
	if topo.NodeOfCPU(100) != 2 || topo.NodeOfCPU(15) != 0 || topo.NodeOfCPU(999) != -1 || topo.CPUsOfNode(7) != nil {
		t.Errorf("NodeOfCPU/CPUsOfNode disagree with the fixture")
	}
	for _, tc := range []struct{ a, b, want int }{{0, 0, 10}, {0, 1, 12}, {1, 0, 12}, {0, 2, 32}, {1, 3, 32}, {3, 2, 12}, {0, 9, -1}} {
		if got := topo.Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%d, %d) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
	if got := topo.Node(3).MemTotalBytes; got != tsNodeMemKB*1024 {
		t.Errorf("node 3 MemTotal %d bytes, want %d", got, tsNodeMemKB*1024)
	}

	// PCI devices.
	if got := len(topo.PCIDevices); got != 6 {
		t.Errorf("%d PCI devices, want 6", got)
	}
	pf := pciAt(t, topo, tsNICAddr)
	if pf.ClassName != "ethernet" || pf.Driver != "mlx5_core" || pf.NUMANode != 2 || pf.Vendor != "0x15b3" ||
		pf.CurrentLinkWidth != 16 || pf.MaxLinkWidth != 16 || pf.CurrentLinkSpeed != "8.0 GT/s PCIe" ||
		pf.SRIOVTotalVFs == nil || *pf.SRIOVTotalVFs != 8 || pf.SRIOVNumVFs == nil || *pf.SRIOVNumVFs != 2 || len(pf.MSIIRQs) != 9 {
		t.Errorf("NIC physical function = %+v", pf)
	}
	if vf := pciAt(t, topo, "0000:c1:00.2"); vf.Driver != "vfio-pci" || vf.SRIOVTotalVFs != nil || vf.CurrentLinkWidth != 0 {
		t.Errorf("virtual function = %+v", vf)
	}
	if nvme := pciAt(t, topo, tsNVMeAddr); nvme.ClassName != "nvme" || nvme.NUMANode != 1 || nvme.CurrentLinkWidth != 4 {
		t.Errorf("NVMe = %+v", nvme)
	}
	if hb := pciAt(t, topo, "0000:00:00.0"); hb.ClassName != "host-bridge" || hb.Driver != "" || hb.NUMANode != 0 {
		t.Errorf("host bridge = %+v", hb)
	}

	// NICs.
	nic := nicNamed(t, topo, tsNICName)
	if nic.PCIAddress != tsNICAddr || nic.NUMANode != 2 || nic.Driver != "mlx5_core" || nic.Virtual ||
		nic.RxQueues != 8 || nic.TxQueues != 8 || nic.SpeedMbps != 100000 || nic.MTU != 9000 || nic.OperState != "up" ||
		nic.MAC != "b8:59:9f:12:34:56" {
		t.Errorf("NIC = %+v", nic)
	}
	if want := []int{120, 121, 122, 123, 124, 125, 126, 127, 128}; !slices.Equal(nic.IRQs, want) {
		t.Errorf("NIC IRQs %v, want %v", nic.IRQs, want)
	}
	if lo := nicNamed(t, topo, "lo"); !lo.Virtual || lo.PCIAddress != "" || lo.NUMANode != -1 || lo.IRQs != nil || lo.RxQueues != 1 {
		t.Errorf("lo = %+v", lo)
	}

	// IRQs.
	if len(topo.IRQCPUs) != 128 || len(topo.IRQs) != 20 {
		t.Errorf("%d IRQ CPUs, %d IRQ lines; want 128, 20", len(topo.IRQCPUs), len(topo.IRQs))
	}
	comp0 := irqNumbered(t, topo, "121")
	if comp0.Number != 121 || comp0.Total != 250000 || comp0.PerCPU[32] != 250000 || comp0.Device != tsNICAddr ||
		comp0.Chip != "IR-PCI-MSIX-"+tsNICAddr || comp0.HWIRQ != "1-edge" ||
		!slices.Equal(comp0.Actions, []string{"mlx5_comp0@pci:" + tsNICAddr}) ||
		!slices.Equal(comp0.SMPAffinity, []int{32}) || !slices.Equal(comp0.EffectiveAffinity, []int{32}) {
		t.Errorf("IRQ 121 = %+v", comp0)
	}
	if async := irqNumbered(t, topo, "120"); FormatCPUList(async.SMPAffinity) != "32-47,96-111" {
		t.Errorf("IRQ 120 affinity %v, want node 2's CPUs", async.SMPAffinity)
	}
	if loc := irqNumbered(t, topo, "LOC"); loc.Number != -1 || loc.Total != 128*100000+127*128/2 || loc.Description != "Local timer interrupts" {
		t.Errorf("LOC = %+v", loc)
	}
	if errRow := irqNumbered(t, topo, "ERR"); errRow.Total != 0 || len(errRow.PerCPU) != 1 {
		t.Errorf("ERR = %+v", errRow)
	}
}

func TestDiscoverVMSnapshot(t *testing.T) {
	topo := discoverFixture(t, "1-socket-1-node-2-cpu-vm")
	if len(topo.CPUs) != 2 || topo.Cores() != 2 || !slices.Equal(topo.Packages(), []int{0}) {
		t.Errorf("CPUs %+v", topo.CPUs)
	}
	if c := topo.CPU(1); c == nil || !slices.Equal(c.ThreadSiblings, []int{1}) || c.Node != 0 {
		t.Errorf("CPU 1 = %+v", c)
	}
	if len(topo.Nodes) != 1 || !slices.Equal(topo.Nodes[0].Distances, []int{10}) || FormatCPUList(topo.CPUsOfNode(0)) != "0-1" {
		t.Errorf("nodes %+v", topo.Nodes)
	}
	if l3 := cacheOf(t, topo, 1, 3, "Unified"); !slices.Equal(l3.CPUs, []int{0, 1}) || l3.SizeBytes != 307200<<10 {
		t.Errorf("L3 %+v", l3)
	}
	if got := len(topo.Caches); got != 7 {
		t.Errorf("%d caches, want 7 (L1d, L1i, L2 per CPU and one shared L3)", got)
	}
	eth := nicNamed(t, topo, "eth0")
	if eth.Driver != "virtio_net" || eth.PCIAddress != "0000:00:03.0" || eth.Virtual || eth.RxQueues != 1 ||
		eth.SpeedMbps != 0 || eth.NUMANode != -1 || !slices.Equal(eth.IRQs, []int{37, 38, 39}) {
		t.Errorf("eth0 = %+v", eth)
	}
	if ifb := nicNamed(t, topo, "ifb0"); !ifb.Virtual || ifb.Driver != "" {
		t.Errorf("ifb0 = %+v", ifb)
	}
	if d := pciAt(t, topo, "0000:00:03.0"); d.Driver != "virtio-pci" || d.CurrentLinkSpeed != "" || d.CurrentLinkWidth != 0 || d.SRIOVTotalVFs != nil {
		t.Errorf("virtio NIC function = %+v", d)
	}
	if q := irqNumbered(t, topo, "38"); q.Device != "0000:00:03.0" || !slices.Equal(q.Actions, []string{"virtio2-input.0"}) || q.SMPAffinity == nil {
		t.Errorf("IRQ 38 = %+v", q)
	}
}
