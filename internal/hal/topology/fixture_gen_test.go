package topology

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The 2-socket fixture is generated, so that its many files agree with one
// another; testdata/README.md describes the machine it follows. Regenerate
// it with
//
//	SCULPT_UPDATE_FIXTURES=1 go test ./internal/hal/topology -run TestTwoSocketFixtureUpToDate
const twoSocketShape = "2-socket-4-node-64-core"

// twoSocket describes the generated machine: 2 x AMD EPYC 7502 (Rome,
// 32 cores, 8 CCDs of 2 CCXs of 4 cores), SMT on, NPS2 (2 nodes per socket).
const (
	tsSockets        = 2
	tsCoresPerSocket = 32
	tsNodesPerSocket = 2
	tsCoresPerCCX    = 4
	tsCPUs           = tsSockets * tsCoresPerSocket * 2
	tsNodes          = tsSockets * tsNodesPerSocket
	tsNodeMemKB      = 65_843_404 // ~62.8 GiB per node (4 x 16 GiB DIMMs)
)

// tsCore returns socket, core within socket and node of logical CPU cpu:
// CPUs 0-63 are the first thread of each core (socket 0 then 1), CPUs
// 64-127 their SMT siblings, as Linux numbers them on AMD.
func tsCore(cpu int) (socket, core, node int) {
	phys := cpu % (tsSockets * tsCoresPerSocket)
	socket = phys / tsCoresPerSocket
	core = phys % tsCoresPerSocket
	node = socket*tsNodesPerSocket + core/(tsCoresPerSocket/tsNodesPerSocket)
	return socket, core, node
}

// tsDistance is the NPS2 distance matrix: 10 local, 12 the other node of
// the socket, 32 across sockets.
func tsDistance(a, b int) int {
	switch {
	case a == b:
		return 10
	case a/tsNodesPerSocket == b/tsNodesPerSocket:
		return 12
	default:
		return 32
	}
}

// tsCPUsWhere lists the CPUs for which keep returns true.
func tsCPUsWhere(keep func(cpu int) bool) []int {
	var out []int
	for c := range tsCPUs {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// The NIC: a ConnectX-5 port on socket 1's first node (node 2), 8 queue
// pairs, with one async and 8 completion MSI-X vectors, and 2 of its 8
// virtual functions enabled and bound to vfio-pci.
const (
	tsNICAddr   = "0000:c1:00.0"
	tsNICName   = "ens1f0np0"
	tsNICQueues = 8
	tsNICIRQ0   = 120 // mlx5_async0; 121..128 mlx5_comp0..7
	tsNVMeAddr  = "0000:41:00.0"
	tsNVMeIRQ0  = 90 // nvme0q0; 91..94 nvme0q1..4
)

type fixtureWriter struct {
	root string
	err  error
}

func (w *fixtureWriter) file(path, content string) {
	if w.err != nil {
		return
	}
	p := filepath.Join(w.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.err = err
		return
	}
	w.err = os.WriteFile(p, []byte(content), 0o644)
}

func (w *fixtureWriter) link(path, target string) {
	if w.err != nil {
		return
	}
	p := filepath.Join(w.root, path)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		w.err = err
		return
	}
	w.err = os.Symlink(target, p)
}

// writeTwoSocketFixture writes the 2-socket fixture under root, which
// serves as both the sysfs and the procfs root.
func writeTwoSocketFixture(root string) error {
	w := &fixtureWriter{root: root}
	all := tsCPUsWhere(func(int) bool { return true })
	cpuDir := "devices/system/cpu"
	w.file(cpuDir+"/online", FormatCPUList(all)+"\n")
	w.file(cpuDir+"/possible", FormatCPUList(all)+"\n")
	for c := range tsCPUs {
		socket, core, node := tsCore(c)
		d := fmt.Sprintf("%s/cpu%d", cpuDir, c)
		siblings := tsCPUsWhere(func(o int) bool { s, k, _ := tsCore(o); return s == socket && k == core })
		w.file(d+"/topology/core_id", fmt.Sprintf("%d\n", core))
		w.file(d+"/topology/physical_package_id", fmt.Sprintf("%d\n", socket))
		w.file(d+"/topology/thread_siblings_list", FormatCPUList(siblings)+"\n")
		w.link(fmt.Sprintf("%s/node%d", d, node), fmt.Sprintf("../../node/node%d", node))
		ccx := tsCPUsWhere(func(o int) bool { s, k, _ := tsCore(o); return s == socket && k/tsCoresPerCCX == core/tsCoresPerCCX })
		for i, cache := range []struct {
			level int
			typ   string
			size  string
			cpus  []int
		}{
			{1, "Data", "32K", siblings},
			{1, "Instruction", "32K", siblings},
			{2, "Unified", "512K", siblings},
			{3, "Unified", "16384K", ccx},
		} {
			cd := fmt.Sprintf("%s/cache/index%d", d, i)
			w.file(cd+"/level", fmt.Sprintf("%d\n", cache.level))
			w.file(cd+"/type", cache.typ+"\n")
			w.file(cd+"/size", cache.size+"\n")
			w.file(cd+"/shared_cpu_list", FormatCPUList(cache.cpus)+"\n")
		}
	}
	nodeDir := "devices/system/node"
	w.file(nodeDir+"/online", fmt.Sprintf("0-%d\n", tsNodes-1))
	for n := range tsNodes {
		d := fmt.Sprintf("%s/node%d", nodeDir, n)
		w.file(d+"/cpulist", FormatCPUList(tsCPUsWhere(func(c int) bool { _, _, node := tsCore(c); return node == n }))+"\n")
		var dist []string
		for m := range tsNodes {
			dist = append(dist, fmt.Sprint(tsDistance(n, m)))
		}
		w.file(d+"/distance", strings.Join(dist, " ")+"\n")
		w.file(d+"/meminfo", fmt.Sprintf("Node %d MemTotal:       %d kB\nNode %d MemFree:        %d kB\n", n, tsNodeMemKB, n, tsNodeMemKB/2))
	}

	// PCI: a root complex per socket, an NVMe drive on node 1, the NIC's
	// physical function and two virtual functions on node 2.
	type pciDev struct {
		path, class, vendor, device, driver string
		node                                int
		speed, maxSpeed                     string
		width, maxWidth                     int
		totalVFs, numVFs                    int // -1: not SR-IOV
		msi                                 []int
	}
	seq := func(first, n int) []int {
		var s []int
		for i := range n {
			s = append(s, first+i)
		}
		return s
	}
	devs := []pciDev{
		{path: "pci0000:00/0000:00:00.0", class: "0x060000", vendor: "0x1022", device: "0x1480", node: 0, totalVFs: -1},
		{path: "pci0000:40/0000:40:03.1/" + tsNVMeAddr, class: "0x010802", vendor: "0x144d", device: "0xa824", driver: "nvme", node: 1,
			speed: "16.0 GT/s PCIe", maxSpeed: "16.0 GT/s PCIe", width: 4, maxWidth: 4, totalVFs: -1, msi: seq(tsNVMeIRQ0, 5)},
		{path: "pci0000:80/0000:80:00.0", class: "0x060000", vendor: "0x1022", device: "0x1480", node: 2, totalVFs: -1},
		{path: "pci0000:c0/0000:c0:03.1/" + tsNICAddr, class: "0x020000", vendor: "0x15b3", device: "0x1017", driver: "mlx5_core", node: 2,
			speed: "8.0 GT/s PCIe", maxSpeed: "8.0 GT/s PCIe", width: 16, maxWidth: 16, totalVFs: 8, numVFs: 2, msi: seq(tsNICIRQ0, 1+tsNICQueues)},
		{path: "pci0000:c0/0000:c0:03.1/0000:c1:00.2", class: "0x020000", vendor: "0x15b3", device: "0x1018", driver: "vfio-pci", node: 2, totalVFs: -1},
		{path: "pci0000:c0/0000:c0:03.1/0000:c1:00.3", class: "0x020000", vendor: "0x15b3", device: "0x1018", driver: "vfio-pci", node: 2, totalVFs: -1},
	}
	for _, d := range devs {
		addr := filepath.Base(d.path)
		dir := "devices/" + d.path
		depth := strings.Count(d.path, "/") + 2 // devices/<path> below the root
		up := strings.Repeat("../", depth)
		w.link("bus/pci/devices/"+addr, "../../../devices/"+d.path)
		w.file(dir+"/class", d.class+"\n")
		w.file(dir+"/vendor", d.vendor+"\n")
		w.file(dir+"/device", d.device+"\n")
		w.file(dir+"/numa_node", fmt.Sprintf("%d\n", d.node))
		if d.driver != "" {
			w.link(dir+"/driver", up+"bus/pci/drivers/"+d.driver)
		}
		if d.speed != "" {
			w.file(dir+"/current_link_speed", d.speed+"\n")
			w.file(dir+"/max_link_speed", d.maxSpeed+"\n")
			w.file(dir+"/current_link_width", fmt.Sprintf("%d\n", d.width))
			w.file(dir+"/max_link_width", fmt.Sprintf("%d\n", d.maxWidth))
		}
		if d.totalVFs >= 0 {
			w.file(dir+"/sriov_totalvfs", fmt.Sprintf("%d\n", d.totalVFs))
			w.file(dir+"/sriov_numvfs", fmt.Sprintf("%d\n", d.numVFs))
		}
		for _, irq := range d.msi {
			w.file(fmt.Sprintf("%s/msi_irqs/%d", dir, irq), "msix\n")
		}
	}

	// NICs: the ConnectX-5 port and lo.
	nicDir := "devices/pci0000:c0/0000:c0:03.1/" + tsNICAddr + "/net/" + tsNICName
	w.link("class/net/"+tsNICName, "../../"+nicDir)
	w.link(nicDir+"/device", "../../../"+tsNICAddr)
	w.file(nicDir+"/address", "b8:59:9f:12:34:56\n")
	w.file(nicDir+"/mtu", "9000\n")
	w.file(nicDir+"/operstate", "up\n")
	w.file(nicDir+"/speed", "100000\n")
	for q := range tsNICQueues {
		w.file(fmt.Sprintf("%s/queues/rx-%d/rps_cpus", nicDir, q), "00000000,00000000,00000000,00000000\n")
		w.file(fmt.Sprintf("%s/queues/tx-%d/tx_timeout", nicDir, q), "0\n")
	}
	loDir := "devices/virtual/net/lo"
	w.link("class/net/lo", "../../"+loDir)
	w.file(loDir+"/address", "00:00:00:00:00:00\n")
	w.file(loDir+"/mtu", "65536\n")
	w.file(loDir+"/operstate", "unknown\n")
	w.file(loDir+"/queues/rx-0/rps_cpus", "00000000,00000000,00000000,00000000\n")
	w.file(loDir+"/queues/tx-0/tx_timeout", "0\n")

	// procfs: interrupts and the affinities of the device IRQs.
	var b strings.Builder
	b.WriteString("     ")
	for c := range tsCPUs {
		fmt.Fprintf(&b, " %10s", fmt.Sprintf("CPU%d", c))
	}
	b.WriteString("\n")
	line := func(name string, counts func(cpu int) uint64, rest string) {
		fmt.Fprintf(&b, "%4s:", name)
		for c := range tsCPUs {
			fmt.Fprintf(&b, " %10d", counts(c))
		}
		b.WriteString(" " + rest + "\n")
	}
	only := func(cpu int, n uint64) func(int) uint64 {
		return func(c int) uint64 {
			if c == cpu {
				return n
			}
			return 0
		}
	}
	nodeCPUs := func(n int) []int {
		return tsCPUsWhere(func(c int) bool { _, _, node := tsCore(c); return node == n })
	}
	affinity := func(irq int, aff, eff []int) {
		w.file(fmt.Sprintf("irq/%d/smp_affinity_list", irq), FormatCPUList(aff)+"\n")
		w.file(fmt.Sprintf("irq/%d/effective_affinity_list", irq), FormatCPUList(eff)+"\n")
	}
	line("0", only(0, 44), "  IR-IO-APIC    2-edge      timer")
	affinity(0, all, []int{0})
	line("4", only(1, 1520), "  IR-IO-APIC    4-edge      ttyS0")
	affinity(4, all, []int{1})
	for q := range 5 {
		irq := tsNVMeIRQ0 + q
		cpu := 16 + q // node 1
		line(fmt.Sprint(irq), only(cpu, uint64(1000*(q+1))), fmt.Sprintf("  IR-PCI-MSIX-%s  %d-edge      nvme0q%d", tsNVMeAddr, q, q))
		affinity(irq, []int{cpu}, []int{cpu})
	}
	line(fmt.Sprint(tsNICIRQ0), only(32, 7), fmt.Sprintf("  IR-PCI-MSIX-%s    0-edge      mlx5_async0@pci:%s", tsNICAddr, tsNICAddr))
	affinity(tsNICIRQ0, nodeCPUs(2), []int{32})
	for q := range tsNICQueues {
		irq := tsNICIRQ0 + 1 + q
		cpu := 32 + q // node 2's first cores
		line(fmt.Sprint(irq), only(cpu, uint64(250_000+q)), fmt.Sprintf("  IR-PCI-MSIX-%s  %d-edge      mlx5_comp%d@pci:%s", tsNICAddr, q+1, q, tsNICAddr))
		affinity(irq, []int{cpu}, []int{cpu})
	}
	line("NMI", func(int) uint64 { return 3 }, "  Non-maskable interrupts")
	line("LOC", func(c int) uint64 { return uint64(100_000 + c) }, "  Local timer interrupts")
	b.WriteString(" ERR:          0\n MIS:          0\n")
	w.file("interrupts", b.String())
	w.file("meminfo", fmt.Sprintf("MemTotal:       %d kB\n", tsNodes*tsNodeMemKB))
	return w.err
}

// TestTwoSocketFixtureUpToDate regenerates the 2-socket fixture into a
// temporary directory and checks it matches the committed one, file by
// file and link by link (or rewrites it with SCULPT_UPDATE_FIXTURES=1).
func TestTwoSocketFixtureUpToDate(t *testing.T) {
	committed := filepath.Join("testdata", "sysfs", twoSocketShape)
	if os.Getenv("SCULPT_UPDATE_FIXTURES") == "1" {
		if err := os.RemoveAll(committed); err != nil {
			t.Fatal(err)
		}
		if err := writeTwoSocketFixture(committed); err != nil {
			t.Fatal(err)
		}
	}
	fresh := t.TempDir()
	if err := writeTwoSocketFixture(fresh); err != nil {
		t.Fatal(err)
	}
	want, err := treeOf(fresh)
	if err != nil {
		t.Fatal(err)
	}
	got, err := treeOf(committed)
	if err != nil {
		t.Fatal(err)
	}
	for p, w := range want {
		if g, ok := got[p]; !ok {
			t.Errorf("%s: missing from %s", p, committed)
		} else if !bytes.Equal(g, w) {
			t.Errorf("%s: committed %q, generator writes %q", p, g, w)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: in %s but not written by the generator", p, committed)
		}
	}
	if t.Failed() {
		t.Log("regenerate with SCULPT_UPDATE_FIXTURES=1 go test ./internal/hal/topology -run TestTwoSocketFixtureUpToDate")
	}
}

// treeOf maps each file and symlink under root to its content or, for a
// symlink, "-> target".
func treeOf(root string) (map[string][]byte, error) {
	tree := map[string][]byte{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.Type()&fs.ModeSymlink != 0 {
			target, err := os.Readlink(p)
			tree[rel] = []byte("-> " + target)
			return err
		}
		b, err := os.ReadFile(p)
		tree[rel] = b
		return err
	})
	return tree, err
}
