package topology

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sculpt/internal/host"
)

const vmShape = "1-socket-1-node-2-cpu-vm"

// copyFixture copies a fixture (files and symlinks) into a temporary
// directory that a test may then break.
func copyFixture(t *testing.T, shape string) (string, host.Roots) {
	t.Helper()
	src := filepath.Join("testdata", "sysfs", shape)
	dst := t.TempDir()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		switch {
		case d.IsDir():
			return os.MkdirAll(to, 0o755)
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			return os.Symlink(target, to)
		default:
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			return os.WriteFile(to, b, 0o644)
		}
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
	return dst, host.Roots{Sys: dst, Proc: dst}
}

func TestDiscoverMalformedFiles(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  string // under the fixture root; its physical path
		value string
		want  []string // substrings of the error, beside the file's path
		via   string   // the path the error names, when it is reached through a link
	}{
		{"distance", "devices/system/node/node0/distance", "1x\n", []string{`"1x"`, "invalid syntax"}, ""},
		{"distance count", "devices/system/node/node0/distance", "10 20\n", []string{`"10 20"`, "2 distances for 1 nodes"}, ""},
		{"core id", "devices/system/cpu/cpu1/topology/core_id", "one\n", []string{`"one"`}, ""},
		{"siblings", "devices/system/cpu/cpu0/topology/thread_siblings_list", "0-x\n", []string{`bad token "0-x"`}, ""},
		{"cache size", "devices/system/cpu/cpu0/cache/index2/size", "2048Q\n", []string{`"2048Q"`}, ""},
		{"cache level", "devices/system/cpu/cpu1/cache/index3/level", "L3\n", []string{`"L3"`}, ""},
		{"online list", "devices/system/cpu/online", "0-1,z\n", []string{`bad token "z"`}, ""},
		{"node meminfo", "devices/system/node/node0/meminfo", "Node 0 MemTotal:  lots kB\n", []string{`"lots"`}, ""},
		{"node meminfo without MemTotal", "devices/system/node/node0/meminfo", "Node 0 MemFree: 1 kB\n", []string{"no MemTotal line"}, ""},
		{"node cpulist", "devices/system/node/node0/cpulist", "0-1-2\n", []string{`bad token "0-1-2"`}, ""},
		{"pci class", "devices/pci0000:00/0000:00:03.0/class", "ethernet\n", []string{`"ethernet"`, "hex"}, "bus/pci/devices/0000:00:03.0/class"},
		{"pci numa node", "devices/pci0000:00/0000:00:02.0/numa_node", "zero\n", []string{`"zero"`}, "bus/pci/devices/0000:00:02.0/numa_node"},
		{"pci link width", "devices/pci0000:00/0000:00:02.0/current_link_width", "wide\n", []string{`"wide"`, "lane count"}, "bus/pci/devices/0000:00:02.0/current_link_width"},
		{"sriov", "devices/pci0000:00/0000:00:02.0/sriov_numvfs", "2.5\n", []string{`"2.5"`}, "bus/pci/devices/0000:00:02.0/sriov_numvfs"},
		{"nic mtu", "devices/pci0000:00/0000:00:03.0/virtio2/net/eth0/mtu", "big\n", []string{`"big"`}, "class/net/eth0/mtu"},
		{"nic speed", "devices/pci0000:00/0000:00:03.0/virtio2/net/eth0/speed", "fast\n", []string{`"fast"`}, "class/net/eth0/speed"},
		{"interrupts header", "interrupts", "CPUX CPU1\n", []string{`"CPUX"`, "header"}, ""},
		{"interrupts counts", "interrupts", "  CPU0 CPU1\n 24: 1 IO-APIC 5-edge ACPI:Ged\n", []string{"1 counts for 2 CPUs"}, ""},
		{"interrupts row", "interrupts", "  CPU0 CPU1\n garbage\n", []string{`" garbage"`}, ""},
		{"irq affinity", "irq/38/smp_affinity_list", "0-1,q\n", []string{`bad token "q"`}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir, roots := copyFixture(t, vmShape)
			path := filepath.Join(dir, tc.file)
			if err := os.WriteFile(path, []byte(tc.value), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Discover(roots)
			if err == nil {
				t.Fatalf("Discover with %s = %q succeeded", tc.file, tc.value)
			}
			msg := err.Error()
			named := tc.file
			if tc.via != "" {
				named = tc.via
			}
			for _, w := range append([]string{filepath.Join(dir, named)}, tc.want...) {
				if !strings.Contains(msg, w) {
					t.Errorf("error %q does not contain %q", msg, w)
				}
			}
		})
	}
}

func TestDiscoverMissingFiles(t *testing.T) {
	t.Run("required core_id", func(t *testing.T) {
		dir, roots := copyFixture(t, vmShape)
		p := filepath.Join(dir, "devices/system/cpu/cpu1/topology/core_id")
		must(t, os.Remove(p))
		if _, err := Discover(roots); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Discover without core_id: %v, want an error naming %s", err, p)
		}
	})
	t.Run("required interrupts", func(t *testing.T) {
		dir, roots := copyFixture(t, vmShape)
		p := filepath.Join(dir, "interrupts")
		must(t, os.Remove(p))
		if _, err := Discover(roots); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("Discover without interrupts: %v, want an error naming %s", err, p)
		}
	})
	t.Run("not a sysfs root", func(t *testing.T) {
		roots := host.Roots{Sys: t.TempDir(), Proc: t.TempDir()}
		want := filepath.Join(roots.Sys, "devices", "system", "cpu")
		if _, err := Discover(roots); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Discover on an empty root: %v, want an error naming %s", err, want)
		}
	})
	t.Run("no cpus", func(t *testing.T) {
		roots := host.Roots{Sys: t.TempDir(), Proc: t.TempDir()}
		must(t, os.MkdirAll(filepath.Join(roots.Sys, "devices", "system", "cpu", "cpufreq"), 0o755))
		if _, err := Discover(roots); err == nil || !strings.Contains(err.Error(), "no cpuN directories") {
			t.Errorf("Discover without cpuN directories: %v", err)
		}
	})
	t.Run("optional files", func(t *testing.T) {
		dir, roots := copyFixture(t, vmShape)
		for _, p := range []string{
			"devices/system/cpu/online",                                  // every CPU online
			"devices/system/cpu/cpu0/cache/index0/size",                  // size unknown
			"devices/pci0000:00/0000:00:03.0/virtio2/net/eth0/speed",     // speed unknown
			"devices/pci0000:00/0000:00:03.0/numa_node",                  // node unknown
			"irq/38/smp_affinity_list", "irq/38/effective_affinity_list", // affinity unknown
		} {
			must(t, os.Remove(filepath.Join(dir, p)))
		}
		must(t, os.RemoveAll(filepath.Join(dir, "devices/system/cpu/cpu1/cache")))
		topo, err := Discover(roots)
		if err != nil {
			t.Fatalf("Discover without optional files: %v", err)
		}
		if len(topo.OnlineCPUs()) != 2 {
			t.Errorf("online CPUs %v, want both", topo.OnlineCPUs())
		}
		if c := cacheOf(t, topo, 0, 1, "Data"); c.SizeBytes != 0 {
			t.Errorf("L1d of CPU 0 without size = %+v", c)
		}
		for _, c := range topo.Caches {
			if c.Level < 3 && slices.Contains(c.CPUs, 1) {
				t.Errorf("CPU 1 has no cache directory, yet cache %+v", c)
			}
		}
		if eth := nicNamed(t, topo, "eth0"); eth.SpeedMbps != 0 || eth.NUMANode != -1 {
			t.Errorf("eth0 = %+v", eth)
		}
		if q := irqNumbered(t, topo, "38"); q.SMPAffinity != nil || q.EffectiveAffinity != nil {
			t.Errorf("IRQ 38 = %+v", q)
		}
	})
	t.Run("no numa directory", func(t *testing.T) {
		dir, roots := copyFixture(t, vmShape)
		must(t, os.RemoveAll(filepath.Join(dir, "devices/system/node")))
		must(t, os.WriteFile(filepath.Join(dir, "meminfo"), []byte("MemTotal:       24000000 kB\nMemFree: 1 kB\n"), 0o644))
		topo, err := Discover(roots)
		if err != nil {
			t.Fatalf("Discover without NUMA nodes: %v", err)
		}
		if len(topo.Nodes) != 1 || topo.Nodes[0].ID != 0 || topo.Nodes[0].MemTotalBytes != 24000000*1024 ||
			!slices.Equal(topo.Nodes[0].CPUs, []int{0, 1}) || topo.Distance(0, 0) != 10 || topo.NodeOfCPU(1) != 0 {
			t.Errorf("nodes %+v, want one node 0 with everything", topo.Nodes)
		}
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestParseInterruptsLayouts(t *testing.T) {
	const in = `           CPU0       CPU2
  9:          1          2   IO-APIC   9-fasteoi   acpi, i2c_designware.0
 11:       1234       5678     GICv3  27 Level     arch_timer
 57:          0         10   PCI-MSI 524288-edge      eth1-TxRx-0
 58:          0          0   PCI-MSI 524289-edge
 ERR:          3
`
	cpus, irqs, err := parseInterrupts("interrupts", strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(cpus, []int{0, 2}) {
		t.Errorf("header CPUs %v, want [0 2]", cpus)
	}
	for i, want := range []IRQ{
		{IRQ: "9", Number: 9, Total: 3, Chip: "IO-APIC", HWIRQ: "9-fasteoi", Actions: []string{"acpi", "i2c_designware.0"}},
		{IRQ: "11", Number: 11, Total: 6912, Chip: "GICv3", HWIRQ: "27 Level", Actions: []string{"arch_timer"}},
		{IRQ: "57", Number: 57, Total: 10, Chip: "PCI-MSI", HWIRQ: "524288-edge", Actions: []string{"eth1-TxRx-0"}},
		{IRQ: "58", Number: 58, Total: 0, Chip: "PCI-MSI", HWIRQ: "524289-edge"},
		{IRQ: "ERR", Number: -1, Total: 3},
	} {
		got := irqs[i]
		if got.IRQ != want.IRQ || got.Number != want.Number || got.Total != want.Total || got.Chip != want.Chip ||
			got.HWIRQ != want.HWIRQ || !slices.Equal(got.Actions, want.Actions) {
			t.Errorf("line %d = %+v, want %+v", i, got, want)
		}
	}
	// eth1's IRQ is found by its action name when no PCI function is known.
	if got := nicIRQs("eth1", nil, irqs); !slices.Equal(got, []int{57}) {
		t.Errorf("nicIRQs(eth1) = %v, want [57]", got)
	}
	if got := nicIRQs("eth", nil, irqs); got != nil {
		t.Errorf("nicIRQs(eth) = %v, want none: eth is not eth1", got)
	}
}
