package linux

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"sculpt/internal/hal"
)

// blkioWeightFile picks the proportional-weight file a blkio/io cgroup
// offers: v1 blkio.weight (CFQ, gone since Linux 5.0) or blkio.bfq.weight
// (BFQ); v2 io.weight or io.bfq.weight. "" when there is none.
func blkioWeightFile(dir string, v2 bool) string {
	names := []string{"blkio.weight", "blkio.bfq.weight"}
	if v2 {
		names = []string{"io.weight", "io.bfq.weight"}
	}
	for _, n := range names {
		if fileExists(dir + "/" + n) {
			return n
		}
	}
	return ""
}

// parseWeight reads "100" or "default 100" (first line; per-device lines
// follow on v2).
func parseWeight(s string) (uint64, error) {
	line, _, _ := strings.Cut(s, "\n")
	f := strings.Fields(line)
	if len(f) == 0 {
		return 0, fmt.Errorf("empty weight")
	}
	return strconv.ParseUint(f[len(f)-1], 10, 64)
}

// prepareBlkio plans a block I/O weight write. It is not supported when
// the cgroup offers no weight file: the kernel has neither CFQ (removed in
// 5.0) nor BFQ, or the v2 io controller is not enabled for the cgroup. The
// weight only takes effect on devices whose scheduler is bfq.
func (b *Backend) prepareBlkio(a hal.BlkioWeight) (plan, error) {
	dir, h, err := b.cgroupDir("blkio", a.Cgroup)
	if err != nil {
		return plan{}, err
	}
	file := blkioWeightFile(dir, h.v2)
	if file == "" {
		return plan{}, &hal.NotSupportedError{What: "block I/O weight", Reason: fmt.Sprintf("%s has no blkio.weight/blkio.bfq.weight/io.weight file (no CFQ or BFQ scheduler, or the root cgroup)", dir)}
	}
	s, err := readCgroupFile(dir, file)
	if err != nil {
		return plan{}, err
	}
	old, err := parseWeight(s)
	if err != nil {
		return plan{}, fmt.Errorf("parse %s/%s: %w", dir, file, err)
	}
	undo := hal.BlkioWeight{Cgroup: a.Cgroup, Weight: old}
	return plan{undo: undo, do: func(context.Context) error {
		return writeCgroupFile(dir, file, strconv.FormatUint(a.Weight, 10))
	}}, nil
}

// checkBlockDevice refuses a device number that is not a block device of
// this machine (/sys/dev/block/MAJ:MIN).
func (b *Backend) checkBlockDevice(kind, dev string) error {
	if !fileExists(filepath.Join(b.roots.Sys, "dev", "block", dev)) {
		return &hal.InvalidError{Kind: kind, Field: "device", Value: dev, Reason: "no such block device here (" + filepath.Join(b.roots.Sys, "dev", "block", dev) + " is missing; lsblk -o NAME,MAJ:MIN lists them)"}
	}
	return nil
}

// prepareBlkioLimit plans a bandwidth cap: v1 writes "MAJ:MIN BPS" to
// blkio.throttle.read_bps_device and write_bps_device (0 removes the
// rule), v2 "MAJ:MIN rbps=… wbps=…" to io.max ("max" for none). The undo
// restores the device's values as they were (0/max when it had none).
func (b *Backend) prepareBlkioLimit(a hal.BlkioLimit) (plan, error) {
	dir, h, err := b.cgroupDir("blkio", a.Cgroup)
	if err != nil {
		return plan{}, err
	}
	caps, err := readBlkioCaps(dir, h.v2)
	if err != nil {
		why := "a kernel without CONFIG_BLK_DEV_THROTTLING"
		if h.v2 {
			why = "is the io controller enabled in the parent's cgroup.subtree_control?"
		}
		return plan{}, &hal.NotSupportedError{What: "block I/O limits", Reason: fmt.Sprintf("%v (%s)", err, why)}
	}
	old := caps[a.Device]
	undo := hal.BlkioLimit{Cgroup: a.Cgroup, Device: a.Device, ReadBPS: old.ReadBPS, WriteBPS: old.WriteBPS}
	if h.v2 {
		return plan{undo: undo, do: func(context.Context) error {
			return writeCgroupFile(dir, "io.max", fmt.Sprintf("%s rbps=%s wbps=%s", a.Device, maxOr(a.ReadBPS), maxOr(a.WriteBPS)))
		}}, nil
	}
	return plan{undo: undo, do: func(context.Context) error {
		if err := writeCgroupFile(dir, throttleFiles[0], fmt.Sprintf("%s %d", a.Device, a.ReadBPS)); err != nil {
			return err
		}
		return writeCgroupFile(dir, throttleFiles[1], fmt.Sprintf("%s %d", a.Device, a.WriteBPS))
	}}, nil
}

// throttleFiles are cgroup v1's read and write bandwidth caps per device.
var throttleFiles = [2]string{"blkio.throttle.read_bps_device", "blkio.throttle.write_bps_device"}

// ioMaxRates reads the rbps and wbps of one v2 io.max line ("254:0
// rbps=max wbps=1048576 riops=max wiops=max"; 0 for max).
func ioMaxRates(fields []string) (r, w uint64) {
	for _, kv := range fields {
		k, v, _ := strings.Cut(kv, "=")
		n, _ := strconv.ParseUint(v, 10, 64) // "max" -> 0
		switch k {
		case "rbps":
			r = n
		case "wbps":
			w = n
		}
	}
	return r, w
}

func maxOr(v uint64) string {
	if v == 0 {
		return "max"
	}
	return strconv.FormatUint(v, 10)
}

// readBlkioCaps reads a blkio cgroup's bandwidth caps per device: v1 the
// two throttle files, v2 io.max.
func readBlkioCaps(dir string, v2 bool) (map[string]hal.BlkioRate, error) {
	caps := map[string]hal.BlkioRate{}
	if v2 {
		s, err := readCgroupFile(dir, "io.max")
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(s, "\n") {
			if f := strings.Fields(line); len(f) > 0 {
				r, w := ioMaxRates(f[1:])
				if r != 0 || w != 0 {
					caps[f[0]] = hal.BlkioRate{ReadBPS: r, WriteBPS: w}
				}
			}
		}
		return caps, nil
	}
	for i, f := range throttleFiles {
		s, err := readCgroupFile(dir, f)
		if err != nil {
			return nil, err
		}
		for _, line := range strings.Split(s, "\n") {
			fl := strings.Fields(line)
			if len(fl) != 2 {
				continue
			}
			v, err := strconv.ParseUint(fl[1], 10, 64)
			if err != nil || v == 0 {
				continue
			}
			r := caps[fl[0]]
			if i == 0 {
				r.ReadBPS = v
			} else {
				r.WriteBPS = v
			}
			caps[fl[0]] = r
		}
	}
	return caps, nil
}
