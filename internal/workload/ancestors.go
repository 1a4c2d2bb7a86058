package workload

import (
	"fmt"
	"os"
	"strconv"

	"sculpt/internal/host"
)

// Ancestors returns the PIDs of pid's parent, the parent's parent and so on,
// nearest first, stopping before PID 1 (and the kernel's PID 0 and 2): for
// sculpt, the shell, terminal multiplexer, ssh session or supervisor that
// started it. It reads /proc/PID/stat of each; a process that exits during
// the walk ends it there. An error names the file that could not be parsed.
func Ancestors(roots host.Roots, pid int) ([]int, error) {
	var out []int
	seen := map[int]bool{}
	for first := true; ; first = false {
		path := roots.ProcPath(strconv.Itoa(pid), "stat")
		b, err := os.ReadFile(path)
		if err != nil {
			if os.IsNotExist(err) {
				return out, nil // exited during the walk
			}
			return out, fmt.Errorf("read %s: %w", path, err)
		}
		if !first {
			out = append(out, pid)
		}
		seen[pid] = true
		st, err := parseStat(b)
		if err != nil {
			return out, fmt.Errorf("parse %s: %w", path, err)
		}
		pid = st.ppid
		if pid <= 2 || seen[pid] {
			return out, nil
		}
	}
}
