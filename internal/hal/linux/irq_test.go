package linux

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal/topology"
	"sculpt/internal/host"
)

// procInterrupts is /proc/interrupts of a 2-CPU x86 VM (Linux 6.18), plus
// a shared line with two handlers and one without any.
const procInterrupts = `           CPU0       CPU1       
 24:          1          0  IO-APIC   5-edge      ACPI:Ged
 26:          0          8  IO-APIC   4-edge      ttyS0
 28:          0          0 PCI-MSIX-0000:00:01.0   0-edge      virtio0-config
 36:          0      44162 PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0
 41:       1531          0 PCI-MSIX-0000:00:04.0   1-edge      virtio3-rx
 50:         10         20  IO-APIC  16-fasteoi   ehci_hcd:usb1, uhci_hcd:usb2
 51:          0          0  IO-APIC  17-fasteoi
NMI:          0          0   Non-maskable interrupts
LOC:      43778      43768   Local timer interrupts
ERR:          0
`

func TestParseInterrupts(t *testing.T) {
	got, err := parseInterrupts(strings.NewReader(procInterrupts))
	if err != nil {
		t.Fatal(err)
	}
	want := []IRQInfo{
		{IRQ: 24, Chip: "IO-APIC", Actions: []string{"ACPI:Ged"}, Count: 1, PerCPU: []uint64{1, 0}},
		{IRQ: 26, Chip: "IO-APIC", Actions: []string{"ttyS0"}, Count: 8, PerCPU: []uint64{0, 8}},
		{IRQ: 28, Chip: "PCI-MSIX-0000:00:01.0", Actions: []string{"virtio0-config"}, PerCPU: []uint64{0, 0}},
		{IRQ: 36, Chip: "PCI-MSIX-0000:00:02.0", Actions: []string{"virtio1-req.0"}, Count: 44162, PerCPU: []uint64{0, 44162}},
		{IRQ: 41, Chip: "PCI-MSIX-0000:00:04.0", Actions: []string{"virtio3-rx"}, Count: 1531, PerCPU: []uint64{1531, 0}},
		{IRQ: 50, Chip: "IO-APIC", Actions: []string{"ehci_hcd:usb1", "uhci_hcd:usb2"}, Count: 30, PerCPU: []uint64{10, 20}},
		{IRQ: 51, Chip: "IO-APIC", PerCPU: []uint64{0, 0}},
	}
	if len(got) != len(want) {
		t.Fatalf("parsed %d IRQs, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.IRQ != w.IRQ || g.Chip != w.Chip || g.Count != w.Count || !slices.Equal(g.Actions, w.Actions) || !slices.Equal(g.PerCPU, w.PerCPU) {
			t.Errorf("irq %d: got %+v, want %+v", w.IRQ, g, w)
		}
	}

	for _, bad := range []string{"", "\n", "   CPU0\n 5: x  IO-APIC\n"} {
		if got, err := parseInterrupts(strings.NewReader(bad)); err == nil {
			t.Errorf("parseInterrupts(%q) = %+v, want an error", bad, got)
		}
	}
}

// fakeIRQProc builds a procfs with /proc/interrupts and /proc/irq/N for the
// IRQs of procInterrupts (36 without effective_affinity_list and node, 41
// already freed: listed but without a directory), and a sysfs whose
// /sys/kernel/irq/50/actions names the handlers.
func fakeIRQProc(t *testing.T) host.Roots {
	t.Helper()
	proc, sys := t.TempDir(), t.TempDir()
	write := func(root, name, content string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(proc, "interrupts", procInterrupts)
	for _, n := range []string{"24", "26", "28", "36", "50", "51"} {
		write(proc, "irq/"+n+"/smp_affinity_list", "0-1\n")
		if n != "36" {
			write(proc, "irq/"+n+"/effective_affinity_list", "1\n")
			write(proc, "irq/"+n+"/node", "0\n")
		}
	}
	write(sys, "kernel/irq/50/actions", "ehci_hcd:usb1,uhci_hcd:usb2\n")
	return host.Roots{Proc: proc, Sys: sys}
}

func TestListIRQsFixture(t *testing.T) {
	roots := fakeIRQProc(t)
	irqs, err := ListIRQs(roots)
	if err != nil {
		t.Fatal(err)
	}
	var nums []int
	for _, i := range irqs {
		nums = append(nums, i.IRQ)
	}
	if want := []int{24, 26, 28, 36, 50, 51}; !slices.Equal(nums, want) {
		t.Fatalf("ListIRQs IRQs = %v, want %v (41 is freed)", nums, want)
	}
	for _, i := range irqs {
		if !slices.Equal(i.Affinity, []int{0, 1}) || i.Managed {
			t.Errorf("irq %d: affinity %v managed %v, want [0 1] false", i.IRQ, i.Affinity, i.Managed)
		}
		switch i.IRQ {
		case 36:
			if i.Effective != nil || i.Node != -1 {
				t.Errorf("irq 36 without effective_affinity_list/node: %+v", i)
			}
		case 50:
			if !slices.Equal(i.Actions, []string{"ehci_hcd:usb1", "uhci_hcd:usb2"}) || i.Count != 30 {
				t.Errorf("irq 50: %+v", i)
			}
		default:
			if !slices.Equal(i.Effective, []int{1}) || i.Node != 0 {
				t.Errorf("irq %d: effective %v node %d, want [1] 0", i.IRQ, i.Effective, i.Node)
			}
		}
	}
	if _, err := ListIRQs(host.Roots{Proc: t.TempDir()}); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "interrupts") {
		t.Errorf("ListIRQs without /proc/interrupts = %v", err)
	}
}

func TestIRQAffinityFixture(t *testing.T) {
	roots := fakeIRQProc(t)
	if err := WriteIRQAffinity(roots, 26, []int{1, 0, 3, 1}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(filepath.Join(roots.Proc, "irq/26/smp_affinity_list")); string(b) != "0-1,3" {
		t.Errorf("smp_affinity_list = %q, want the canonical list 0-1,3", b)
	}
	if got, err := ReadIRQAffinity(roots, 26); err != nil || !slices.Equal(got, []int{0, 1, 3}) {
		t.Errorf("ReadIRQAffinity = %v, %v", got, err)
	}
	for _, cpus := range [][]int{nil, {}, {-1}} {
		if err := WriteIRQAffinity(roots, 26, cpus); !errors.Is(err, unix.EINVAL) {
			t.Errorf("WriteIRQAffinity(%v) = %v, want EINVAL", cpus, err)
		}
	}
	if _, err := ReadIRQAffinity(roots, 999); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "irq/999") {
		t.Errorf("ReadIRQAffinity(999) = %v, want ENOENT naming the path", err)
	}
	if err := os.WriteFile(filepath.Join(roots.Proc, "irq/28/smp_affinity_list"), []byte("bogus"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadIRQAffinity(roots, 28); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("ReadIRQAffinity of a corrupt file = %v, want a parse error quoting it", err)
	}
}

func TestManagedIRQError(t *testing.T) {
	var err error = &ManagedIRQError{IRQ: 36, Err: unix.EPERM}
	if !errors.Is(err, ErrManagedIRQ) || !errors.Is(err, unix.EPERM) || !strings.Contains(err.Error(), "irq 36") {
		t.Errorf("%v: want errors.Is ErrManagedIRQ and EPERM, naming irq 36", err)
	}
	err = &ManagedIRQError{IRQ: 7}
	if !errors.Is(err, ErrManagedIRQ) || errors.Is(err, unix.EPERM) {
		t.Errorf("%v: errors.Is mismatch", err)
	}
}

// restoreIRQ puts an IRQ's affinity back when the test ends, pass or fail.
func restoreIRQ(t *testing.T, roots host.Roots, irq int, orig []int) {
	t.Cleanup(func() {
		if got, err := ReadIRQAffinity(roots, irq); err == nil && slices.Equal(got, orig) {
			return // unchanged (a managed IRQ refuses even this write)
		}
		if err := WriteIRQAffinity(roots, irq, orig); err != nil {
			t.Errorf("restore irq %d to %v: %v", irq, orig, err)
		}
		if got, _ := ReadIRQAffinity(roots, irq); !slices.Equal(got, orig) {
			t.Errorf("irq %d: affinity %v after restore, want %v", irq, got, orig)
		}
	})
}

func TestIRQAffinityRoot(t *testing.T) {
	netRequireRoot(t)
	roots := host.DefaultRoots()
	irqs, err := ListIRQs(roots)
	if err != nil {
		t.Fatal(err)
	}
	if len(irqs) == 0 {
		t.Skip("no numbered IRQs in /proc/interrupts")
	}
	online, err := ionetRead(roots.SysPath("devices/system/cpu/online"))
	if err != nil {
		t.Fatal(err)
	}
	cpus, err := topology.ParseCPUList(online)
	if err != nil {
		t.Fatal(err)
	}
	var settable, managed *IRQInfo
	for i := range irqs {
		if irqs[i].Managed && managed == nil {
			managed = &irqs[i]
		}
		if !irqs[i].Managed && settable == nil && len(irqs[i].Actions) > 0 {
			settable = &irqs[i]
		}
	}

	for _, p := range []*IRQInfo{settable, managed} {
		if p != nil {
			t.Logf("irq %d %v: affinity %v effective %v managed %v", p.IRQ, p.Actions, p.Affinity, p.Effective, p.Managed)
		}
	}
	if settable == nil {
		t.Log("no IRQ whose affinity user space may set")
	} else {
		irq := settable.IRQ
		orig := settable.Affinity
		restoreIRQ(t, roots, irq, orig)
		// Move it to one CPU not equal to the current set, when there is
		// a choice.
		target := []int{cpus[len(cpus)-1]}
		if slices.Equal(orig, target) {
			target = []int{cpus[0]}
		}
		if err := WriteIRQAffinity(roots, irq, target); err != nil {
			t.Fatalf("WriteIRQAffinity(%d (%v), %v): %v", irq, settable.Actions, target, err)
		}
		if got, err := ReadIRQAffinity(roots, irq); err != nil || !slices.Equal(got, target) {
			t.Errorf("irq %d affinity %v, %v after writing %v", irq, got, err, target)
		}
		// A CPU the machine cannot have is refused before the write.
		if err := WriteIRQAffinity(roots, irq, []int{4095}); !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "possible CPUs") {
			t.Errorf("WriteIRQAffinity(%d, [4095]) = %v, want EINVAL about the possible CPUs", irq, err)
		}
		if got, _ := ReadIRQAffinity(roots, irq); !slices.Equal(got, target) {
			t.Errorf("irq %d affinity %v after a refused write, want %v", irq, got, target)
		}
	}

	if managed == nil {
		t.Log("no managed IRQ on this machine: the ManagedIRQError path is covered by TestManagedIRQError only")
		return
	}
	irq := managed.IRQ
	restoreIRQ(t, roots, irq, managed.Affinity)
	err = WriteIRQAffinity(roots, irq, []int{cpus[0]})
	var me *ManagedIRQError
	if !errors.As(err, &me) || me.IRQ != irq || !errors.Is(err, ErrManagedIRQ) {
		t.Fatalf("WriteIRQAffinity on managed irq %d (%v) = %v, want *ManagedIRQError", irq, managed.Actions, err)
	}
	if !strings.Contains(err.Error(), strconv.Itoa(irq)) {
		t.Errorf("error %q does not name the IRQ", err)
	}
	if got, _ := ReadIRQAffinity(roots, irq); !slices.Equal(got, managed.Affinity) {
		t.Errorf("managed irq %d changed to %v", irq, got)
	}
}
