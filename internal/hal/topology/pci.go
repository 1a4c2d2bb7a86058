package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"sculpt/internal/host"
)

// readPCIDevices reads every function under <sys>/bus/pci/devices: the
// class, vendor and device files (required), the driver link, numa_node,
// {current,max}_link_{speed,width} and sriov_{totalvfs,numvfs} (optional)
// and the msi_irqs directory. A function removed while it is being read is
// skipped. A machine without a PCI bus gives none.
func readPCIDevices(roots host.Roots) ([]PCIDevice, error) {
	base := roots.SysPath("bus", "pci", "devices")
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", base, err)
	}
	devs := make([]PCIDevice, 0, len(entries))
	for _, e := range entries {
		dir := filepath.Join(base, e.Name())
		d, err := readPCIDevice(dir, e.Name())
		if err != nil {
			if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
				continue // hot-unplugged meanwhile
			}
			return nil, err
		}
		devs = append(devs, d)
	}
	return devs, nil // ReadDir sorts by name, which is by address
}

func readPCIDevice(dir, addr string) (PCIDevice, error) {
	d := PCIDevice{Address: addr, NUMANode: -1}
	var err error
	for _, f := range []struct {
		name string
		dst  *string
	}{{"class", &d.Class}, {"vendor", &d.Vendor}, {"device", &d.Device}} {
		path := filepath.Join(dir, f.name)
		if *f.dst, err = readAttr(path); err != nil {
			return d, err
		}
		if _, err := strconv.ParseUint(strings.TrimPrefix(*f.dst, "0x"), 16, 32); err != nil || !strings.HasPrefix(*f.dst, "0x") {
			return d, parseError(path, *f.dst, errors.New("want a 0x-prefixed hex number"))
		}
	}
	d.ClassName = pciClassName(d.Class)
	if d.Driver, err = linkBase(filepath.Join(dir, "driver")); err != nil {
		return d, err
	}
	if n, ok, err := readOptionalIntAttr(filepath.Join(dir, "numa_node")); err != nil {
		return d, err
	} else if ok && n >= 0 {
		d.NUMANode = n
	}
	if d.CurrentLinkSpeed, _, err = readOptionalAttr(filepath.Join(dir, "current_link_speed")); err != nil {
		return d, err
	}
	if d.MaxLinkSpeed, _, err = readOptionalAttr(filepath.Join(dir, "max_link_speed")); err != nil {
		return d, err
	}
	if d.CurrentLinkWidth, err = readLinkWidth(filepath.Join(dir, "current_link_width")); err != nil {
		return d, err
	}
	if d.MaxLinkWidth, err = readLinkWidth(filepath.Join(dir, "max_link_width")); err != nil {
		return d, err
	}
	for _, f := range []struct {
		name string
		dst  **int
	}{{"sriov_totalvfs", &d.SRIOVTotalVFs}, {"sriov_numvfs", &d.SRIOVNumVFs}} {
		if n, ok, err := readOptionalIntAttr(filepath.Join(dir, f.name)); err != nil {
			return d, err
		} else if ok {
			*f.dst = &n
		}
	}
	if d.MSIIRQs, err = numberedEntries(filepath.Join(dir, "msi_irqs"), ""); err != nil {
		return d, err
	}
	return d, nil
}

// readLinkWidth reads current_link_width or max_link_width: a lane count,
// sometimes written "x16". Missing, or 0 and 255 (no link / unknown), give 0.
func readLinkWidth(path string) (int, error) {
	v, ok, err := readOptionalAttr(path)
	if err != nil || !ok {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimPrefix(v, "x"))
	if err != nil || n < 0 {
		return 0, parseError(path, v, errors.New("want a lane count"))
	}
	if n == 255 {
		return 0, nil
	}
	return n, nil
}

// pciClassName names the common PCI classes by class code ("0x020000").
func pciClassName(class string) string {
	v, err := strconv.ParseUint(strings.TrimPrefix(class, "0x"), 16, 32)
	if err != nil {
		return ""
	}
	if n, ok := pciSubclassNames[v>>8]; ok {
		return n
	}
	return pciClassNames[v>>16]
}

var pciSubclassNames = map[uint64]string{
	0x0100: "scsi", 0x0101: "ide", 0x0104: "raid", 0x0106: "sata", 0x0107: "sas", 0x0108: "nvme",
	0x0200: "ethernet", 0x0207: "infiniband",
	0x0300: "vga", 0x0302: "3d",
	0x0403: "audio",
	0x0600: "host-bridge", 0x0601: "isa-bridge", 0x0604: "pci-bridge",
	0x0c03: "usb", 0x0c05: "smbus",
	0x0b40: "coprocessor",
}

var pciClassNames = map[uint64]string{
	0x01: "storage", 0x02: "network", 0x03: "display", 0x04: "multimedia", 0x05: "memory",
	0x06: "bridge", 0x07: "communication", 0x08: "system", 0x09: "input", 0x0c: "serial-bus",
	0x0d: "wireless", 0x10: "crypto", 0x11: "signal-processing", 0x12: "accelerator",
	0xff: "unassigned",
}
