package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// twoSocketFixture is the generated 2-socket, 4-node, 64-core machine,
// one directory serving as both sysfs and procfs root.
var twoSocketFixture = filepath.Join("..", "..", "internal", "hal", "topology", "testdata", "sysfs", "2-socket-4-node-64-core")

func TestTopologyJSONOnTwoSocketFixture(t *testing.T) {
	var out, errb bytes.Buffer
	code := run([]string{"--sys-root", twoSocketFixture, "--proc-root", twoSocketFixture, "topology", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, errb.String())
	}
	var got struct {
		CPUs []struct {
			ID             int   `json:"id"`
			Node           int   `json:"node"`
			ThreadSiblings []int `json:"thread_siblings"`
		} `json:"cpus"`
		Caches []struct {
			Level int   `json:"level"`
			CPUs  []int `json:"cpus"`
		} `json:"caches"`
		Nodes []struct {
			ID        int   `json:"id"`
			Distances []int `json:"distances"`
		} `json:"nodes"`
		PCIDevices []struct {
			Address          string `json:"address"`
			CurrentLinkWidth int    `json:"current_link_width"`
			SRIOVNumVFs      *int   `json:"sriov_numvfs"`
		} `json:"pci_devices"`
		NICs []struct {
			Name     string `json:"name"`
			NUMANode int    `json:"numa_node"`
			RxQueues int    `json:"rx_queues"`
			IRQs     []int  `json:"irqs"`
		} `json:"nics"`
		IRQs             []json.RawMessage `json:"irqs"`
		TelemetrySources []struct {
			Name string `json:"name"`
		} `json:"telemetry_sources"`
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatalf("decode: %v\n%s", err, out.String())
	}
	if len(got.CPUs) != 128 || len(got.Nodes) != 4 || len(got.Caches) != 208 || len(got.IRQs) != 20 {
		t.Errorf("%d CPUs, %d nodes, %d caches, %d IRQs; want 128, 4, 208, 20", len(got.CPUs), len(got.Nodes), len(got.Caches), len(got.IRQs))
	}
	if len(got.CPUs) > 100 && (got.CPUs[100].Node != 2 || len(got.CPUs[100].ThreadSiblings) != 2) {
		t.Errorf("CPU 100 = %+v, want node 2 with 2 siblings", got.CPUs[100])
	}
	if len(got.Nodes) == 4 && !slices.Equal(got.Nodes[1].Distances, []int{12, 10, 32, 32}) {
		t.Errorf("node 1 distances %v, want [12 10 32 32]", got.Nodes[1].Distances)
	}
	found := false
	for _, d := range got.PCIDevices {
		if d.Address == "0000:c1:00.0" {
			found = true
			if d.CurrentLinkWidth != 16 || d.SRIOVNumVFs == nil || *d.SRIOVNumVFs != 2 {
				t.Errorf("NIC function %+v, want x16 with 2 VFs", d)
			}
		}
	}
	if !found {
		t.Error("no PCI device 0000:c1:00.0")
	}
	if len(got.NICs) != 2 || got.NICs[0].Name != "ens1f0np0" || got.NICs[0].NUMANode != 2 || got.NICs[0].RxQueues != 8 || len(got.NICs[0].IRQs) != 9 {
		t.Errorf("NICs %+v", got.NICs)
	}
	if len(got.TelemetrySources) == 0 || got.TelemetrySources[0].Name == "" {
		t.Errorf("no telemetry sources in %s", out.String()[:min(200, out.Len())])
	}
}

func TestTopologyTextOnTwoSocketFixture(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--sys-root", twoSocketFixture, "--proc-root", twoSocketFixture, "topology"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, errb.String())
	}
	text := out.String()
	for _, want := range []string{
		"128 CPUs (128 online), 64 cores, 2 package(s), 2 thread(s) per core",
		"package 1  CPUs 32-63,96-127",
		"L3 Unified      16 MiB   x16  shared by 8 CPU(s), e.g. 0-3,64-67",
		"2     32-47,96-111   62.8 GiB  32 32 10 12",
		"0000:c1:00.0  ethernet     15b3:1017  mlx5_core  node 2  link 8.0 GT/s PCIe x16 (max 8.0 GT/s PCIe x16), SR-IOV 2/8 VFs",
		"ens1f0np0  mlx5_core  0000:c1:00.0  node 2  up",
		"IRQs (busiest 10 of 20; --json lists all)",
		"121  250000    32        32         mlx5_comp0@pci:0000:c1:00.0",
		"Telemetry sources",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	// The IRQ section shows the 10 busiest lines only: the NVMe's quietest
	// queue (IRQ 90, 1000 interrupts) is not among them.
	if strings.Contains(text, "nvme0q0") {
		t.Errorf("IRQ section is not limited to the busiest lines:\n%s", text)
	}
}

// A machine without RAPL (the fixture, like this VM, has no powercap class)
// says why in the telemetry sources.
func TestTopologyTextSaysWhyNoRAPL(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"--sys-root", twoSocketFixture, "--proc-root", twoSocketFixture, "topology"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, errb.String())
	}
	want := filepath.Join(twoSocketFixture, "class", "powercap") + " missing: kernel without CONFIG_POWERCAP"
	for line := range strings.Lines(out.String()) {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "rapl" {
			if f[1] != "unavailable" || !strings.Contains(line, want) {
				t.Errorf("rapl line %q, want unavailable with %q", line, want)
			}
			return
		}
	}
	t.Errorf("no rapl line in the telemetry sources:\n%s", out.String())
}

func TestTopologyBadSysRoot(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "no-such-sys")
	var out, errb bytes.Buffer
	code := run([]string{"--sys-root", bad, "topology"}, &out, &errb)
	if code == 0 {
		t.Fatalf("exit 0 with --sys-root %s; stdout: %s", bad, out.String())
	}
	if !strings.Contains(errb.String(), bad) {
		t.Errorf("stderr %q does not name %s", errb.String(), bad)
	}
	if out.Len() != 0 {
		t.Errorf("stdout not empty on failure: %q", out.String())
	}
}

// On this VM's snapshot the PCI devices have no NUMA node; the text says what
// "node ?" means, once under each section that shows it, and only there.
func TestTopologyTextExplainsUnknownNode(t *testing.T) {
	vm := filepath.Join("..", "..", "internal", "hal", "topology", "testdata", "sysfs", "1-socket-1-node-2-cpu-vm")
	var out, errb bytes.Buffer
	if code := run([]string{"--sys-root", vm, "--proc-root", vm, "topology"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), "node ?") || !strings.Contains(out.String(), "(node ?: the kernel knows no NUMA node for it: numa_node is -1") ||
		!strings.Contains(out.String(), "with one node it can only be node 0") {
		t.Errorf("node ? unexplained:\n%s", out.String())
	}
	out.Reset()
	if code := run([]string{"--sys-root", twoSocketFixture, "--proc-root", twoSocketFixture, "topology"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr: %s", code, errb.String())
	}
	// There every PCI device has a node; only the loopback NIC has none.
	if n := strings.Count(out.String(), "(node ?:"); n != 1 {
		t.Errorf("note printed %d times, want once (under NICs, for lo):\n%s", n, out.String())
	}
}
