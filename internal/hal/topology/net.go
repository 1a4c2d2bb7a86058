package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"sculpt/internal/host"
)

// pciAddress matches a PCI function's sysfs directory name.
var pciAddress = regexp.MustCompile(`^[0-9a-fA-F]{4,}:[0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7]$`)

// readNICs reads every interface under <sys>/class/net: address, mtu,
// operstate, speed (unknown when unreadable, as on a link that is down),
// the queues/rx-* and tx-* directories, the device link (its driver link,
// the PCI function above it and that function's NUMA node) and whether the
// interface lives under devices/virtual. IRQs come from the PCI function's
// MSI vectors and from the interrupt lines whose actions name the interface
// or whose chip names its PCI function. An interface removed while it is
// being read is skipped.
func readNICs(roots host.Roots, pci []PCIDevice, irqs []IRQ) ([]NIC, error) {
	base := roots.SysPath("class", "net")
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", base, err)
	}
	sysReal, err := filepath.EvalSymlinks(roots.Sys)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", roots.Sys, err)
	}
	byAddr := make(map[string]*PCIDevice, len(pci))
	for i := range pci {
		byAddr[pci[i].Address] = &pci[i]
	}
	var nics []NIC
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		n, err := readNIC(dir, e.Name(), sysReal, byAddr, irqs)
		if err != nil {
			if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
				continue // removed meanwhile
			}
			return nil, err
		}
		nics = append(nics, n)
	}
	return nics, nil
}

func readNIC(dir, name, sysReal string, byAddr map[string]*PCIDevice, irqs []IRQ) (NIC, error) {
	n := NIC{Name: name, NUMANode: -1}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return n, fmt.Errorf("resolve %s: %w", dir, err)
	}
	n.Virtual = strings.HasPrefix(real, filepath.Join(sysReal, "devices", "virtual")+string(filepath.Separator))
	if n.MAC, _, err = readOptionalAttr(filepath.Join(dir, "address")); err != nil {
		return n, err
	}
	if n.OperState, _, err = readOptionalAttr(filepath.Join(dir, "operstate")); err != nil {
		return n, err
	}
	if n.MTU, _, err = readOptionalIntAttr(filepath.Join(dir, "mtu")); err != nil {
		return n, err
	}
	speedPath := filepath.Join(dir, "speed")
	if b, err := os.ReadFile(speedPath); err == nil { // EINVAL when down, ENOENT on some virtual devices
		v := strings.TrimSpace(string(b))
		s, err := strconv.Atoi(v)
		if err != nil {
			return n, parseError(speedPath, v, errors.Unwrap(err))
		}
		if s > 0 {
			n.SpeedMbps = s
		}
	}
	queues, err := os.ReadDir(filepath.Join(dir, "queues"))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return n, fmt.Errorf("read %s: %w", filepath.Join(dir, "queues"), err)
	}
	for _, q := range queues {
		switch {
		case strings.HasPrefix(q.Name(), "rx-"):
			n.RxQueues++
		case strings.HasPrefix(q.Name(), "tx-"):
			n.TxQueues++
		}
	}
	devLink := filepath.Join(dir, "device")
	devReal, err := filepath.EvalSymlinks(devLink)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		// no device behind it: a virtual interface
	case err != nil:
		return n, fmt.Errorf("resolve %s: %w", devLink, err)
	default:
		if n.Driver, err = linkBase(filepath.Join(devReal, "driver")); err != nil {
			return n, err
		}
		n.PCIAddress = pciAbove(devReal, sysReal)
		if d := byAddr[n.PCIAddress]; d != nil {
			n.NUMANode = d.NUMANode
		} else if v, ok, err := readOptionalIntAttr(filepath.Join(devReal, "numa_node")); err != nil {
			return n, err
		} else if ok && v >= 0 {
			n.NUMANode = v
		}
	}
	n.IRQs = nicIRQs(name, byAddr[n.PCIAddress], irqs)
	return n, nil
}

// pciAbove returns the address of the nearest PCI function at or above the
// device directory dev (a virtio or auxiliary device hangs below one), or
// "" when there is none below sysReal.
func pciAbove(dev, sysReal string) string {
	for d := dev; len(d) > len(sysReal); d = filepath.Dir(d) {
		if b := filepath.Base(d); pciAddress.MatchString(b) {
			return strings.ToLower(b)
		}
	}
	return ""
}

// nicIRQs collects the IRQs of interface name: the MSI vectors of its PCI
// function, the lines whose chip names that function, and the lines with
// an action that is the name or starts with it ("eth0-TxRx-3").
func nicIRQs(name string, dev *PCIDevice, irqs []IRQ) []int {
	var out []int
	if dev != nil {
		out = append(out, dev.MSIIRQs...)
	}
	for _, q := range irqs {
		if q.Number < 0 {
			continue
		}
		if dev != nil && q.Device == dev.Address {
			out = append(out, q.Number)
			continue
		}
		for _, a := range q.Actions {
			if a == name || strings.HasPrefix(a, name+"-") || strings.HasPrefix(a, name+"@") {
				out = append(out, q.Number)
				break
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}
