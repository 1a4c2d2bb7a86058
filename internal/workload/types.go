// Package workload discovers the workloads on a machine: processes grouped by
// container, systemd unit, cgroup or process tree, each with a stable ID.
//
// It reads /proc and cgroupfs only to learn membership; it never reads
// telemetry and never changes anything.
package workload

// Kind says how a workload's processes were grouped.
type Kind string

// The kinds of grouping, from the most specific to the least.
const (
	KindContainer Kind = "container" // a docker/containerd/cri-o/kubepods cgroup
	KindUnit      Kind = "unit"      // a systemd unit (.service or .scope)
	KindCgroup    Kind = "cgroup"    // any other non-root cgroup
	KindTree      Kind = "tree"      // a process tree in the root cgroup
)

// Proc identifies one process. PID values are reused by the kernel, so a
// process is the pair (PID, StartTime).
type Proc struct {
	PID       int
	StartTime uint64 // field 22 of /proc/PID/stat, clock ticks since boot
	Comm      string
}

// Cgroups are the cgroup paths of a workload, relative to each hierarchy's
// root (for example "/system.slice/nginx.service").
type Cgroups struct {
	V2 string            // path in the unified (v2) hierarchy; "" when not in one
	V1 map[string]string // controller name ("cpu", "memory", "blkio", ...) -> path
}

// Workload is a group of processes sculpt treats as one unit.
type Workload struct {
	// ID is stable across intervals and restarts of sculpt for as long as the
	// workload lives: e.g. "cg:/system.slice/nginx.service",
	// "ctr:3f2a9c1b0d4e", "tree:1234@567890" (root pid @ its start time).
	ID      string
	Name    string // a short human name: unit name, container id prefix, or comm of the root
	Kind    Kind
	Pod     string // the Kubernetes pod UID of a container under kubepods, else ""
	Cgroups Cgroups
	Procs   []Proc // sorted by PID
}

// PIDs returns the workload's process IDs in ascending order.
func (w *Workload) PIDs() []int {
	pids := make([]int, len(w.Procs))
	for i, p := range w.Procs {
		pids[i] = p.PID
	}
	return pids
}

// Selector chooses which workloads to report. With nothing set, Discover
// returns every workload (as with All).
type Selector struct {
	PIDs    []int    // the workloads containing these PIDs, each reduced to a workload of its own tree
	Cgroups []string // the workloads in these cgroup paths (v1 or v2, relative to the hierarchy root or absolute under the mount)
	All     bool
}
