package linux

import (
	"context"
	"fmt"
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
