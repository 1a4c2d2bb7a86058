package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
	"sculpt/internal/host"
)

// sriovDevice gives the device directory roots.Sys/bus/pci/devices/ADDR.
func sriovDevice(roots host.Roots, pciAddr string) (string, error) {
	if pciAddr == "" || strings.ContainsAny(pciAddr, "/ \t\n") || pciAddr == "." || pciAddr == ".." {
		return "", fmt.Errorf("bad PCI address %q: %w", pciAddr, unix.EINVAL)
	}
	return roots.SysPath("bus", "pci", "devices", pciAddr), nil
}

// sriovRead reads one integer attribute of an SR-IOV device. A device
// directory without the attribute means the device (or kernel, without
// CONFIG_PCI_IOV) has no SR-IOV: a *hal.NotSupportedError.
func sriovRead(dev, attr string) (int, error) {
	path := dev + "/" + attr
	s, err := ionetRead(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(dev); serr == nil {
				return 0, fmt.Errorf("%s: %w", path, &hal.NotSupportedError{
					What:   "SR-IOV",
					Reason: "PCI device " + dev + " has no SR-IOV capability (or the kernel lacks CONFIG_PCI_IOV)",
				})
			}
		}
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %q is not a number", path, s)
	}
	return n, nil
}

// ReadNumVFs reads roots.Sys/bus/pci/devices/ADDR/sriov_numvfs: how many
// virtual functions the physical function ADDR (e.g. "0000:3b:00.0") has
// enabled. A device without SR-IOV gives a *hal.NotSupportedError
// (errors.Is(err, hal.ErrNotSupported)); an unknown device an error
// wrapping ENOENT.
func ReadNumVFs(roots host.Roots, pciAddr string) (int, error) {
	dev, err := sriovDevice(roots, pciAddr)
	if err != nil {
		return 0, err
	}
	return sriovRead(dev, "sriov_numvfs")
}

// WriteNumVFs sets the number of enabled virtual functions of ADDR through
// roots.Sys/bus/pci/devices/ADDR/sriov_numvfs. n above sriov_totalvfs is
// refused before anything is written, with an error wrapping EINVAL that
// names both. The kernel only changes a non-zero count through 0 (it answers
// EBUSY otherwise), so a change from one non-zero count to another writes
// 0 first; if the second write fails the device is left with 0 VFs and the
// error says so. Writing the current count writes nothing. Errors are
// those of ReadNumVFs plus the driver's (EBUSY, ENOMEM, EPERM). Needs root.
func WriteNumVFs(roots host.Roots, pciAddr string, n int) error {
	return sriovWriteNumVFs(roots, pciAddr, n, ionetWrite)
}

// sriovWriteNumVFs is WriteNumVFs with the file write injected, so a test
// can play the kernel's EBUSY rule on a fixture.
func sriovWriteNumVFs(roots host.Roots, pciAddr string, n int, write func(path, value string) error) error {
	dev, err := sriovDevice(roots, pciAddr)
	if err != nil {
		return err
	}
	if n < 0 {
		return fmt.Errorf("%s: negative VF count %d: %w", pciAddr, n, unix.EINVAL)
	}
	total, err := sriovRead(dev, "sriov_totalvfs")
	if err != nil {
		return err
	}
	if n > total {
		return fmt.Errorf("%s: %d VFs requested but sriov_totalvfs is %d: %w", pciAddr, n, total, unix.EINVAL)
	}
	cur, err := sriovRead(dev, "sriov_numvfs")
	if err != nil {
		return err
	}
	if cur == n {
		return nil
	}
	path := dev + "/sriov_numvfs"
	if cur != 0 && n != 0 {
		if err := write(path, "0"); err != nil {
			return fmt.Errorf("%s: disable %d VFs before enabling %d: %w", pciAddr, cur, n, err)
		}
		if err := write(path, strconv.Itoa(n)); err != nil {
			return fmt.Errorf("%s: VFs are now 0 (were %d): %w", pciAddr, cur, err)
		}
		return nil
	}
	return write(path, strconv.Itoa(n))
}
