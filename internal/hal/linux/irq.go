package linux

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal/topology"
	"sculpt/internal/host"
)

// ErrManagedIRQ matches every *ManagedIRQError with errors.Is.
var ErrManagedIRQ = errors.New("managed IRQ: affinity is set by the kernel")

// ManagedIRQError says the kernel refused, or silently ignored, a change of an
// interrupt's affinity. Managed interrupts (multi-queue drivers such as
// virtio-blk and NVMe spread their queue vectors over the CPUs themselves) and
// per-CPU interrupts cannot be moved from user space: the kernel answers the
// write with EPERM (EIO before Linux 4.x).
type ManagedIRQError struct {
	IRQ int
	// Err is the errno of the refused write, or nil when the kernel took the
	// write but kept its own affinity.
	Err error
}

func (e *ManagedIRQError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("irq %d is managed by the kernel, its affinity cannot be written: %v", e.IRQ, e.Err)
	}
	return fmt.Sprintf("irq %d is managed by the kernel: the affinity written was ignored", e.IRQ)
}

// Is makes errors.Is(err, ErrManagedIRQ) true.
func (e *ManagedIRQError) Is(target error) bool { return target == ErrManagedIRQ }

// Unwrap gives the errno, so errors.Is(err, unix.EPERM) also holds.
func (e *ManagedIRQError) Unwrap() error { return e.Err }

// IRQInfo describes one interrupt line from /proc/interrupts and /proc/irq/N.
type IRQInfo struct {
	IRQ     int
	Chip    string   // irq chip, e.g. "IO-APIC" or "PCI-MSIX-0000:00:04.0"
	Actions []string // handlers, e.g. ["virtio3-rx"]; empty when none is attached
	Count   uint64   // interrupts served, summed over CPUs
	PerCPU  []uint64 // interrupts served per CPU column of /proc/interrupts
	// Affinity is the CPU set user space asked for (smp_affinity_list).
	Affinity []int
	// Effective is where the interrupt is delivered now
	// (effective_affinity_list, Linux 4.15+); nil where the kernel lacks the
	// file. On x86 an IO-APIC interrupt moves only when it next fires, so
	// Effective can lag behind Affinity.
	Effective []int
	Node      int // NUMA node of the device (/proc/irq/N/node), -1 when unknown
	// Managed is true when the kernel refuses user-space affinity changes.
	// It is probed by an empty write to smp_affinity_list, which changes
	// nothing (the kernel rejects an empty mask with EINVAL and an
	// unsettable interrupt with EPERM/EIO); false when the probe cannot run
	// (not root).
	Managed bool
}

// ReadIRQAffinity reads /proc/irq/IRQ/smp_affinity_list under roots.Proc and
// returns the CPUs the interrupt may be delivered to, ascending. An IRQ that
// does not exist gives an error wrapping ENOENT.
func ReadIRQAffinity(roots host.Roots, irq int) ([]int, error) {
	path := roots.ProcPath("irq", strconv.Itoa(irq), "smp_affinity_list")
	s, err := ionetRead(path)
	if err != nil {
		return nil, err
	}
	cpus, err := topology.ParseCPUList(s)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return cpus, nil
}

// WriteIRQAffinity writes cpus to /proc/irq/IRQ/smp_affinity_list under
// roots.Proc and reads the file back. A managed or per-CPU interrupt gives a
// *ManagedIRQError (errors.Is(err, ErrManagedIRQ)), both when the kernel
// refuses the write (EPERM, EIO) and when it accepts it but keeps another
// affinity. An empty set, a negative CPU or one beyond the possible CPUs
// (roots.Sys/devices/system/cpu/possible) is refused with an error wrapping
// EINVAL before anything is written; a set without an online CPU gets
// EINVAL from the kernel; an unknown IRQ gives an error wrapping ENOENT.
// Needs CAP_SYS_ADMIN.
func WriteIRQAffinity(roots host.Roots, irq int, cpus []int) error {
	if len(cpus) == 0 {
		return fmt.Errorf("irq %d: empty CPU set: %w", irq, unix.EINVAL)
	}
	for _, c := range cpus {
		if c < 0 {
			return fmt.Errorf("irq %d: negative CPU %d: %w", irq, c, unix.EINVAL)
		}
	}
	if n, ok := possibleCPUs(roots); ok && slices.Max(cpus) >= n {
		return fmt.Errorf("irq %d: CPU %d is beyond the %d possible CPUs: %w", irq, slices.Max(cpus), n, unix.EINVAL)
	}
	want := topology.FormatCPUList(cpus)
	path := roots.ProcPath("irq", strconv.Itoa(irq), "smp_affinity_list")
	if err := ionetWrite(path, want); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EIO) {
			return fmt.Errorf("write %q to %s: %w", want, path, &ManagedIRQError{IRQ: irq, Err: ionetErrno(err)})
		}
		return err
	}
	got, err := ReadIRQAffinity(roots, irq)
	if err != nil {
		return err
	}
	if topology.FormatCPUList(got) != want {
		return fmt.Errorf("wrote %q to %s, kernel kept %q: %w", want, path, topology.FormatCPUList(got), &ManagedIRQError{IRQ: irq})
	}
	return nil
}

// ListIRQs lists the interrupts in /proc/interrupts that have a number (not
// the architecture's NMI/LOC/... rows), with their handlers (from
// /sys/kernel/irq/N/actions under roots.Sys where present, otherwise from
// the /proc/interrupts line), counts, affinities and whether they are
// managed. An IRQ freed while it is read is skipped.
func ListIRQs(roots host.Roots) ([]IRQInfo, error) {
	path := roots.ProcPath("interrupts")
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, ionetErrno(err))
	}
	defer func() { _ = f.Close() }()
	irqs, err := parseInterrupts(f)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	out := irqs[:0]
	for _, info := range irqs {
		n := strconv.Itoa(info.IRQ)
		aff, err := ReadIRQAffinity(roots, info.IRQ)
		if errors.Is(err, fs.ErrNotExist) {
			continue // freed since /proc/interrupts was read
		}
		if err != nil {
			return nil, err
		}
		info.Affinity = aff
		if s, err := ionetRead(roots.ProcPath("irq", n, "effective_affinity_list")); err == nil {
			info.Effective, _ = topology.ParseCPUList(s)
		}
		info.Node = -1
		if s, err := ionetRead(roots.ProcPath("irq", n, "node")); err == nil {
			if v, err := strconv.Atoi(s); err == nil {
				info.Node = v
			}
		}
		if s, err := ionetRead(roots.SysPath("kernel", "irq", n, "actions")); err == nil {
			info.Actions = splitActions(s)
		}
		info.Managed = probeManagedIRQ(roots.ProcPath("irq", n, "smp_affinity_list"))
		out = append(out, info)
	}
	return out, nil
}

// probeManagedIRQ makes an empty write to smp_affinity_list: the kernel
// checks whether user space may set the affinity before it parses the mask,
// so an unsettable interrupt answers EPERM (EIO on old kernels) and a
// settable one EINVAL for the empty mask. Nothing changes either way.
func probeManagedIRQ(path string) bool {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer func() { _ = unix.Close(fd) }()
	_, err = unix.Write(fd, nil)
	return err == unix.EPERM || err == unix.EIO
}

// parseInterrupts parses /proc/interrupts: a header naming the CPU columns,
// then one row per interrupt. Rows whose label is not a number (NMI, LOC,
// ERR, ...) are skipped. Chip and Actions are taken from the row text; the
// actions are what follows the last run of two spaces, which is how the
// kernel separates them from the chip and trigger columns.
func parseInterrupts(r io.Reader) ([]IRQInfo, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, err
		}
		return nil, errors.New("empty file")
	}
	ncpu := len(strings.Fields(sc.Text()))
	if ncpu == 0 {
		return nil, fmt.Errorf("header %q names no CPU", sc.Text())
	}
	var out []IRQInfo
	for sc.Scan() {
		line := sc.Bytes()
		label, rest, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		irq, err := strconv.Atoi(string(bytes.TrimSpace(label)))
		if err != nil {
			continue // NMI, LOC, ...
		}
		text := string(rest)
		info := IRQInfo{IRQ: irq, PerCPU: make([]uint64, 0, ncpu)}
		for i := 0; i < ncpu; i++ {
			text = strings.TrimLeft(text, " ")
			end := strings.IndexByte(text, ' ')
			if end < 0 {
				end = len(text)
			}
			v, err := strconv.ParseUint(text[:end], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("irq %d: bad count %q in line %q", irq, text[:end], line)
			}
			info.PerCPU = append(info.PerCPU, v)
			info.Count += v
			text = text[end:]
		}
		text = strings.TrimRight(text, " \t")
		if f := strings.Fields(text); len(f) > 0 {
			info.Chip = f[0]
		}
		if i := strings.LastIndex(text, "  "); i >= 0 && len(strings.Fields(text)) > 2 {
			info.Actions = splitActions(text[i+2:])
		}
		out = append(out, info)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

func splitActions(s string) []string {
	var out []string
	for a := range strings.SplitSeq(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// ionetRead reads a one-value kernel file and trims the trailing newline.
// Errors name the path and wrap the errno.
func ionetRead(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, ionetErrno(err))
	}
	return strings.TrimSpace(string(b)), nil
}

// ionetWrite writes value to a kernel file in one write(2), as `echo value >
// path` does. Errors quote the value, name the path and wrap the errno.
func ionetWrite(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, ionetErrno(err))
	}
	_, werr := f.Write([]byte(value))
	cerr := f.Close()
	if werr == nil {
		werr = cerr
	}
	if werr != nil {
		return fmt.Errorf("write %q to %s: %w", value, path, ionetErrno(werr))
	}
	return nil
}

// ionetErrno strips *fs.PathError so messages name the path once; the errno
// stays wrapped for errors.Is.
func ionetErrno(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return pe.Err
	}
	return err
}
