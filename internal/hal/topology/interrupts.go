package topology

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"

	"sculpt/internal/host"
)

// readInterrupts reads <proc>/interrupts and, for each numbered IRQ,
// <proc>/irq/N/smp_affinity_list and effective_affinity_list when they can
// be read (the latter needs a kernel with
// CONFIG_GENERIC_IRQ_EFFECTIVE_AFF_MASK). It returns the CPUs named by
// the header and one IRQ per line.
func readInterrupts(roots host.Roots) ([]int, []IRQ, error) {
	path := roots.ProcPath("interrupts")
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	cpus, irqs, err := parseInterrupts(path, bytes.NewReader(b))
	if err != nil {
		return nil, nil, err
	}
	for i := range irqs {
		if irqs[i].Number < 0 {
			continue
		}
		dir := roots.ProcPath("irq", irqs[i].IRQ)
		if irqs[i].SMPAffinity, err = readOptionalCPUList(dir + "/smp_affinity_list"); err != nil {
			return nil, nil, err
		}
		if irqs[i].EffectiveAffinity, err = readOptionalCPUList(dir + "/effective_affinity_list"); err != nil {
			return nil, nil, err
		}
	}
	return cpus, irqs, nil
}

// readOptionalCPUList reads a CPU list file; a file that is missing or
// cannot be read (an IRQ freed meanwhile, a permission) gives nil.
func readOptionalCPUList(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil //nolint:nilerr // optional: unreadable means unknown
	}
	cpus, err := ParseCPUList(string(b))
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return cpus, nil
}

// pciChip matches the PCI address at the end of an MSI chip name such as
// "PCI-MSIX-0000:00:03.0" or "IR-PCI-MSIX-0000:c1:00.0".
var pciChip = regexp.MustCompile(`PCI-MSI[X]?-([0-9a-fA-F]{4,}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])$`)

// hwirqToken matches the hardware IRQ and trigger columns that follow the
// chip: "5-edge", "524288-edge", "27", "Level", "Edge", "-fasteoi".
var hwirqToken = regexp.MustCompile(`^(\d+(-\S+)?|Level|Edge|-\S+)$`)

// parseInterrupts parses /proc/interrupts: a header naming the online CPUs
// ("CPU0 CPU1 ..."), then per line "NAME: count... rest". For a numbered
// IRQ the rest is the chip, the hardware IRQ and trigger, and the actions
// (comma separated); for a named one it is a description. path only names
// the file in errors.
func parseInterrupts(path string, r io.Reader) ([]int, []IRQ, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, nil, fmt.Errorf("read %s: %w", path, err)
		}
		return nil, nil, fmt.Errorf("parse %s: empty file", path)
	}
	var cpus []int
	for _, f := range strings.Fields(sc.Text()) {
		n, err := strconv.Atoi(strings.TrimPrefix(f, "CPU"))
		if !strings.HasPrefix(f, "CPU") || err != nil || n < 0 {
			return nil, nil, parseError(path, f, errors.New("header column is not CPU<N>"))
		}
		cpus = append(cpus, n)
	}
	if len(cpus) == 0 {
		return nil, nil, parseError(path, sc.Text(), errors.New("header names no CPUs"))
	}
	var irqs []IRQ
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		name, rest, ok := strings.Cut(line, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, nil, parseError(path, line, errors.New("want NAME: counts"))
		}
		irq := IRQ{IRQ: name, Number: -1}
		if n, err := strconv.Atoi(name); err == nil && n >= 0 {
			irq.Number = n
		}
		fields := strings.Fields(rest)
		k := 0
		for ; k < len(fields) && k < len(cpus); k++ {
			c, err := strconv.ParseUint(fields[k], 10, 64)
			if err != nil {
				break
			}
			irq.PerCPU = append(irq.PerCPU, c)
			irq.Total += c
		}
		if k == 0 {
			return nil, nil, parseError(path, line, errors.New("no counts"))
		}
		if irq.Number >= 0 && k < len(cpus) {
			return nil, nil, parseError(path, line, fmt.Errorf("%d counts for %d CPUs", k, len(cpus)))
		}
		tail := fields[k:]
		if irq.Number < 0 {
			irq.Description = strings.Join(tail, " ")
		} else if len(tail) > 0 {
			irq.Chip = tail[0]
			if m := pciChip.FindStringSubmatch(irq.Chip); m != nil {
				irq.Device = strings.ToLower(m[1])
			}
			j := 1
			var hw []string
			for ; j < len(tail) && hwirqToken.MatchString(tail[j]); j++ {
				hw = append(hw, tail[j])
			}
			irq.HWIRQ = strings.Join(hw, " ")
			for a := range strings.SplitSeq(strings.Join(tail[j:], " "), ",") {
				if a = strings.TrimSpace(a); a != "" {
					irq.Actions = append(irq.Actions, a)
				}
			}
		}
		irqs = append(irqs, irq)
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return cpus, irqs, nil
}
