package topology

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	"sculpt/internal/host"
)

// TestDiscoverRealMachine runs Discover on the real /sys and /proc.
func TestDiscoverRealMachine(t *testing.T) {
	if _, err := os.Stat("/sys/devices/system/cpu"); err != nil {
		t.Skipf("no sysfs CPU directory on this machine: %v", err)
	}
	topo, err := Discover(host.DefaultRoots())
	if err != nil {
		t.Fatalf("Discover on the real machine: %v", err)
	}
	online := topo.OnlineCPUs()
	if len(online) == 0 {
		t.Fatal("no online CPU")
	}
	if topo.Node(0) == nil {
		t.Fatalf("no node 0; nodes: %+v", topo.Nodes)
	}
	for _, c := range online {
		n := topo.NodeOfCPU(c)
		if n < 0 || !slices.Contains(topo.CPUsOfNode(n), c) {
			t.Errorf("online CPU %d belongs to no node (NodeOfCPU = %d)", c, n)
		}
		if cpu := topo.CPU(c); !slices.Contains(cpu.ThreadSiblings, c) {
			t.Errorf("CPU %d is not among its own thread siblings %v", c, cpu.ThreadSiblings)
		}
	}
	for _, n := range topo.Nodes {
		if d := topo.Distance(n.ID, n.ID); d != 10 {
			t.Errorf("distance from node %d to itself = %d, want 10", n.ID, d)
		}
		if n.MemTotalBytes == 0 {
			t.Errorf("node %d has no memory", n.ID)
		}
	}
	if len(topo.IRQs) == 0 || len(topo.IRQCPUs) != len(online) {
		t.Errorf("interrupts: %d lines, header CPUs %v, online %v", len(topo.IRQs), topo.IRQCPUs, online)
	}
	lo := slices.IndexFunc(topo.NICs, func(n NIC) bool { return n.Name == "lo" })
	if lo < 0 || !topo.NICs[lo].Virtual {
		t.Errorf("want a virtual lo among the NICs: %+v", topo.NICs)
	}
}

// TestSnapshotScriptCopiesWhatDiscoverReads runs testdata/snapshot.sh on
// the real machine and checks that Discover finds the same topology in the
// copy as in /sys and /proc (interrupt counts aside, which move on), so
// the script and the readers stay in step.
func TestSnapshotScriptCopiesWhatDiscoverReads(t *testing.T) {
	if _, err := os.Stat("/sys/devices/system/cpu"); err != nil {
		t.Skipf("no sysfs CPU directory on this machine: %v", err)
	}
	for _, tool := range []string{"sh", "realpath"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("snapshot.sh needs %s: %v", tool, err)
		}
	}
	out := filepath.Join(t.TempDir(), "snap")
	cmd := exec.Command("sh", filepath.Join("testdata", "snapshot.sh"), out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("snapshot.sh: %v\n%s", err, b)
	}
	real, err := Discover(host.DefaultRoots())
	if err != nil {
		t.Fatal(err)
	}
	snap, err := Discover(host.Roots{Sys: out, Proc: out})
	if err != nil {
		t.Fatalf("Discover on the snapshot: %v", err)
	}
	// Other tests on this machine create and remove interfaces and IRQs,
	// and a balloon driver moves MemTotal: compare what holds still.
	for _, topo := range []*Topology{real, snap} {
		for i := range topo.Nodes {
			if topo.Nodes[i].MemTotalBytes == 0 {
				t.Errorf("node %d has no MemTotal", topo.Nodes[i].ID)
			}
			topo.Nodes[i].MemTotalBytes = 0
		}
	}
	for _, part := range []struct {
		name       string
		real, snap any
	}{
		{"cpus", real.CPUs, snap.CPUs},
		{"caches", real.Caches, snap.Caches},
		{"nodes", real.Nodes, snap.Nodes},
		{"pci devices", real.PCIDevices, snap.PCIDevices},
		{"irq cpus", real.IRQCPUs, snap.IRQCPUs},
		{"physical nics", physicalNICs(real), physicalNICs(snap)},
	} {
		if !reflect.DeepEqual(part.real, part.snap) {
			a, _ := json.MarshalIndent(part.real, "", " ")
			b, _ := json.MarshalIndent(part.snap, "", " ")
			t.Errorf("the snapshot's %s differ from the machine's:\nmachine:\n%s\nsnapshot:\n%s", part.name, a, b)
		}
	}
	chips := map[string]string{}
	for _, q := range real.IRQs {
		chips[q.IRQ] = q.Chip + " " + q.Device
	}
	for _, q := range snap.IRQs {
		if c, ok := chips[q.IRQ]; ok && c != q.Chip+" "+q.Device {
			t.Errorf("IRQ %s: chip and device %q in the snapshot, %q on the machine", q.IRQ, q.Chip+" "+q.Device, c)
		}
	}
	if len(snap.IRQs) == 0 {
		t.Error("the snapshot has no IRQs")
	}
}

func physicalNICs(topo *Topology) []NIC {
	var out []NIC
	for _, n := range topo.NICs {
		if !n.Virtual {
			out = append(out, n)
		}
	}
	return out
}
