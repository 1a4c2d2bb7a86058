package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"sculpt/internal/host"
)

// Disk is one whole block device that holds storage: the device a block
// I/O weight or cap names.
type Disk struct {
	Name string `json:"name"`
	Dev  string `json:"dev"` // MAJOR:MINOR
	// Scheduler is the I/O scheduler in force ("none", "mq-deadline",
	// "bfq", ...); proportional weights need bfq.
	Scheduler  string `json:"scheduler,omitempty"`
	Rotational bool   `json:"rotational"`
	NUMANode   int    `json:"numa_node"` // -1 when unknown
}

// skipDisk names the block devices that hold no storage of their own
// worth arranging: loop devices (files of another file system), RAM disks
// and compressed RAM (zram, swap), and optical drives.
func skipDisk(name string) bool {
	for _, p := range []string{"loop", "ram", "zram", "sr", "fd"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// readDisks reads <sys>/block: each whole device's dev, queue/scheduler
// (the bracketed one), queue/rotational and device/numa_node. A device
// removed while it is being read is skipped; a machine without <sys>/block
// has none.
func readDisks(roots host.Roots) ([]Disk, error) {
	base := roots.SysPath("block")
	entries, err := os.ReadDir(base)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", base, err)
	}
	var disks []Disk
	for _, e := range entries {
		if skipDisk(e.Name()) {
			continue
		}
		dir := filepath.Join(base, e.Name())
		dev, err := os.ReadFile(filepath.Join(dir, "dev"))
		if err != nil {
			if _, statErr := os.Stat(dir); errors.Is(statErr, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, "dev"), err)
		}
		d := Disk{Name: e.Name(), Dev: strings.TrimSpace(string(dev)), NUMANode: -1}
		if !devNumber(d.Dev) {
			return nil, fmt.Errorf("%s: %q is not MAJOR:MINOR", filepath.Join(dir, "dev"), d.Dev)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "queue", "scheduler")); err == nil {
			d.Scheduler = activeScheduler(string(b))
		}
		if b, err := os.ReadFile(filepath.Join(dir, "queue", "rotational")); err == nil {
			d.Rotational = strings.TrimSpace(string(b)) == "1"
		}
		if b, err := os.ReadFile(filepath.Join(dir, "device", "numa_node")); err == nil {
			_, _ = fmt.Sscan(strings.TrimSpace(string(b)), &d.NUMANode)
		}
		disks = append(disks, d)
	}
	return disks, nil
}

// activeScheduler picks the bracketed name of a queue/scheduler file
// ("none [mq-deadline] kyber bfq"); the only name when there is one.
func activeScheduler(s string) string {
	f := strings.Fields(s)
	for _, n := range f {
		if strings.HasPrefix(n, "[") && strings.HasSuffix(n, "]") {
			return strings.Trim(n, "[]")
		}
	}
	if len(f) == 1 {
		return f[0]
	}
	return ""
}

func devNumber(s string) bool {
	maj, min, ok := strings.Cut(s, ":")
	return ok && maj != "" && min != "" && strings.Trim(maj, "0123456789") == "" && strings.Trim(min, "0123456789") == ""
}
