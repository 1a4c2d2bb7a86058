package linux

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/opencontainers/cgroups"

	"sculpt/internal/hal"
	"sculpt/internal/host"
)

// hierarchy is where one controller is mounted: a v1 hierarchy of its own
// (/sys/fs/cgroup/cpuset) or the v2 unified one.
type hierarchy struct {
	dir string
	v2  bool
}

// v2Name maps a v1 controller name to its v2 name.
func v2Name(ctrl string) string {
	if ctrl == "blkio" {
		return "io"
	}
	return ctrl
}

// probeHierarchies finds where cpuset, cpu and blkio live under the cgroup
// root: a pure v2 mount (cgroup.controllers at the root), or v1 mounts per
// controller (<root>/<controller>/cgroup.procs) with the v2 hierarchy at
// <root>/unified used for controllers v1 lacks. The key "" is the unified
// hierarchy itself, when there is one.
func probeHierarchies(roots host.Roots) map[string]hierarchy {
	out := map[string]hierarchy{}
	v2dir := ""
	pure := fileExists(roots.CgroupPath("cgroup.controllers"))
	if pure {
		v2dir = roots.Cgroup
	} else if fileExists(roots.CgroupPath("unified", "cgroup.controllers")) {
		v2dir = roots.CgroupPath("unified")
	}
	var v2ctrl []string
	if v2dir != "" {
		out[""] = hierarchy{dir: v2dir, v2: true}
		if data, err := os.ReadFile(filepath.Join(v2dir, "cgroup.controllers")); err == nil {
			v2ctrl = strings.Fields(string(data))
		}
	}
	for _, c := range []string{"cpuset", "cpu", "blkio"} {
		if !pure && fileExists(roots.CgroupPath(c, "cgroup.procs")) {
			out[c] = hierarchy{dir: roots.CgroupPath(c)}
		} else if slices.Contains(v2ctrl, v2Name(c)) {
			out[c] = hierarchy{dir: v2dir, v2: true}
		}
	}
	return out
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// cgroupDir is the directory of cgroup cg in ctrl's hierarchy.
func (b *Backend) cgroupDir(ctrl, cg string) (string, hierarchy, error) {
	h, ok := b.hier[ctrl]
	if !ok {
		name := ctrl
		if name == "" {
			name = "unified (v2)"
		}
		return "", h, &hal.NotSupportedError{What: "cgroup " + name, Reason: fmt.Sprintf("no %s hierarchy under %s", name, b.roots.Cgroup)}
	}
	return filepath.Join(h.dir, filepath.FromSlash(cg)), h, nil
}

// readCgroupFile reads one cgroup file, trimmed.
func readCgroupFile(dir, file string) (string, error) {
	p := filepath.Join(dir, file)
	data, err := os.ReadFile(p)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", p, unwrapPath(err))
	}
	return strings.TrimSpace(string(data)), nil
}

// writeCgroupFile writes val to a cgroup (or any kernel) file in one
// write(2); the error names the value and the path, e.g.
// `write "0-7" to /sys/fs/cgroup/cpuset/x/cpuset.cpus: invalid argument`.
func writeCgroupFile(dir, file, val string) error {
	p := filepath.Join(dir, file)
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return fmt.Errorf("write %q to %s: %w", val, p, unwrapPath(err))
	}
	_, werr := f.Write([]byte(val))
	cerr := f.Close()
	if werr != nil {
		return fmt.Errorf("write %q to %s: %w", val, p, unwrapPath(werr))
	}
	if cerr != nil {
		return fmt.Errorf("write %q to %s: %w", val, p, unwrapPath(cerr))
	}
	return nil
}

func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// procCgroups parses /proc/PID/cgroup into controller -> path ("" for the
// v2 unified hierarchy).
func (b *Backend) procCgroups(pid int) (map[string]string, error) {
	p := b.roots.ProcPath(strconv.Itoa(pid), "cgroup")
	data, err := os.ReadFile(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, errESRCH) {
			return nil, fmt.Errorf("pid %d: %w", pid, hal.ErrGone)
		}
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return parseProcCgroup(data), nil
}

// parseProcCgroup parses the "id:controllers:path" lines of /proc/PID/cgroup.
func parseProcCgroup(data []byte) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if parts[1] == "" {
			out[""] = parts[2]
			continue
		}
		for _, c := range strings.Split(parts[1], ",") {
			out[c] = parts[2]
		}
	}
	return out
}

// procCgroup is pid's cgroup in ctrl's hierarchy.
func (b *Backend) procCgroup(pid int, ctrl string) (string, error) {
	m, err := b.procCgroups(pid)
	if err != nil {
		return "", err
	}
	h, ok := b.hier[ctrl]
	if !ok {
		return "", &hal.NotSupportedError{What: "cgroup " + ctrl, Reason: "no hierarchy"}
	}
	key := ctrl
	if h.v2 {
		key = ""
	}
	cg, ok := m[key]
	if !ok {
		return "", fmt.Errorf("pid %d has no %s cgroup in %s", pid, ctrl, b.roots.ProcPath(strconv.Itoa(pid), "cgroup"))
	}
	return cg, nil
}

// soleCpuset returns pid's cpuset cgroup when it is not the root and holds
// no process but pid (cgroup.procs).
func (b *Backend) soleCpuset(pid int) (string, bool) {
	cg, err := b.procCgroup(pid, "cpuset")
	if err != nil || cg == "/" || cg == "" {
		return "", false
	}
	dir, _, err := b.cgroupDir("cpuset", cg)
	if err != nil {
		return "", false
	}
	procs, err := cgroups.GetPids(dir)
	if err != nil || len(procs) != 1 || procs[0] != pid {
		return "", false
	}
	return cg, true
}

func (b *Backend) readCpusetList(cg, file string) ([]int, error) {
	dir, _, err := b.cgroupDir("cpuset", cg)
	if err != nil {
		return nil, err
	}
	s, err := readCgroupFile(dir, file)
	if err != nil {
		return nil, err
	}
	l, err := parseList(s)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", filepath.Join(dir, file), err)
	}
	return l, nil
}

func (b *Backend) writeCpuset(cg, file, val string) error {
	dir, _, err := b.cgroupDir("cpuset", cg)
	if err != nil {
		return err
	}
	return writeCgroupFile(dir, file, val)
}

// prepareCpuset reads a cgroup's cpuset.cpus/mems and plans the write.
func (b *Backend) prepareCpuset(a hal.SetCpuset) (plan, error) {
	undo := hal.SetCpuset{Cgroup: a.Cgroup}
	var err error
	if a.CPUs != nil {
		if undo.CPUs, err = b.readCpusetList(a.Cgroup, "cpuset.cpus"); err != nil {
			return plan{}, err
		}
	}
	if a.Mems != nil {
		if undo.Mems, err = b.readCpusetList(a.Cgroup, "cpuset.mems"); err != nil {
			return plan{}, err
		}
	}
	return plan{undo: undo, do: func(context.Context) error {
		return b.setCpuset(a, undo)
	}}, nil
}

// setCpuset writes cpus then mems, restoring cpus when mems fails.
func (b *Backend) setCpuset(a, undo hal.SetCpuset) error {
	if a.CPUs != nil {
		if err := b.writeCpuset(a.Cgroup, "cpuset.cpus", hal.FormatList(a.CPUs)); err != nil {
			return err
		}
	}
	if a.Mems != nil {
		if err := b.writeCpuset(a.Cgroup, "cpuset.mems", hal.FormatList(a.Mems)); err != nil {
			if a.CPUs != nil {
				if rb := b.writeCpuset(a.Cgroup, "cpuset.cpus", hal.FormatList(undo.CPUs)); rb != nil {
					return &partialError{err: err, rollback: rb}
				}
			}
			return err
		}
	}
	return nil
}

// prepareMemBind plans cpuset.mems (and, on v1, cpuset.memory_migrate:
// set to 1 before mems when Migrate, so pages already placed move; back to
// the value asked for after). v2 always migrates on a mems change.
func (b *Backend) prepareMemBind(a hal.MemBind) (plan, error) {
	dir, h, err := b.cgroupDir("cpuset", a.Cgroup)
	if err != nil {
		return plan{}, err
	}
	oldMems, err := b.readCpusetList(a.Cgroup, "cpuset.mems")
	if err != nil {
		return plan{}, err
	}
	undo := hal.MemBind{Cgroup: a.Cgroup, Nodes: oldMems}
	if !h.v2 {
		mm, err := readCgroupFile(dir, "cpuset.memory_migrate")
		if err != nil {
			return plan{}, err
		}
		undo.Migrate = mm == "1"
	}
	set := func(m hal.MemBind) error {
		if !h.v2 {
			if err := writeCgroupFile(dir, "cpuset.memory_migrate", "1"); err != nil {
				return err
			}
		}
		if err := writeCgroupFile(dir, "cpuset.mems", hal.FormatList(m.Nodes)); err != nil {
			return err
		}
		if !h.v2 && !m.Migrate {
			return writeCgroupFile(dir, "cpuset.memory_migrate", "0")
		}
		return nil
	}
	return plan{undo: undo, do: func(context.Context) error {
		if err := set(a); err != nil {
			if rb := set(undo); rb != nil {
				return &partialError{err: err, rollback: rb}
			}
			return err
		}
		return nil
	}}, nil
}

// controllers resolves an action's controller list: empty means cpuset and
// cpu (those this machine has). Controllers sharing one directory (v2) are
// listed once.
func (b *Backend) controllers(list []string) ([]string, error) {
	if len(list) == 0 {
		for _, c := range []string{"cpuset", "cpu"} {
			if _, ok := b.hier[c]; ok {
				list = append(list, c)
			}
		}
		if len(list) == 0 {
			return nil, &hal.NotSupportedError{What: "cgroups", Reason: "neither a cpuset nor a cpu hierarchy under " + b.roots.Cgroup}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, c := range list {
		h, ok := b.hier[c]
		if !ok {
			_, _, err := b.cgroupDir(c, "/")
			return nil, err
		}
		if seen[h.dir] {
			continue
		}
		seen[h.dir] = true
		out = append(out, c)
	}
	return out, nil
}

// prepareCreate plans mkdir of the cgroup in each hierarchy where it does
// not exist yet; the undo removes only those. A new v1 cpuset cgroup gets
// its parent's cpus and mems.
func (b *Backend) prepareCreate(a hal.CreateCgroup) (plan, error) {
	ctrls, err := b.controllers(a.Controllers)
	if err != nil {
		return plan{}, err
	}
	var create []string
	for _, c := range ctrls {
		dir, _, _ := b.cgroupDir(c, a.Cgroup)
		if !fileExists(dir) {
			create = append(create, c)
		}
	}
	var undo hal.Action = hal.Steps{}
	if len(create) > 0 {
		undo = hal.RemoveCgroup{Cgroup: a.Cgroup, Controllers: create}
	}
	return plan{undo: undo, do: func(context.Context) error {
		var made []string
		for _, c := range create {
			if err := b.mkCgroup(c, a.Cgroup); err != nil {
				for _, m := range made {
					dir, _, _ := b.cgroupDir(m, a.Cgroup)
					_ = os.Remove(dir)
				}
				return err
			}
			made = append(made, c)
		}
		return nil
	}}, nil
}

func (b *Backend) mkCgroup(ctrl, cg string) error {
	dir, h, err := b.cgroupDir(ctrl, cg)
	if err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("create cgroup %s: %w", dir, unwrapPath(err))
	}
	if ctrl == "cpuset" && !h.v2 {
		parent := filepath.Dir(dir)
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			v, err := readCgroupFile(parent, f)
			if err == nil {
				err = writeCgroupFile(dir, f, v)
			}
			if err != nil {
				_ = os.Remove(dir)
				return err
			}
		}
	}
	return nil
}

// prepareRemove plans rmdir of the cgroup in each hierarchy; one already
// gone counts as removed. The undo recreates the directories (with the
// parent's cpuset, not the settings the cgroup had).
func (b *Backend) prepareRemove(a hal.RemoveCgroup) (plan, error) {
	ctrls, err := b.controllers(a.Controllers)
	if err != nil {
		return plan{}, err
	}
	var present []string
	for _, c := range ctrls {
		dir, _, _ := b.cgroupDir(c, a.Cgroup)
		if fileExists(dir) {
			present = append(present, c)
		}
	}
	var undo hal.Action = hal.Steps{}
	if len(present) > 0 {
		undo = hal.CreateCgroup{Cgroup: a.Cgroup, Controllers: present}
	}
	return plan{undo: undo, do: func(context.Context) error {
		var removed []string
		for _, c := range present {
			dir, _, _ := b.cgroupDir(c, a.Cgroup)
			drainCgroup(dir)
			if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
				err = fmt.Errorf("remove cgroup %s: %w", dir, unwrapPath(err))
				var rb []error
				for _, r := range removed {
					if e := b.mkCgroup(r, a.Cgroup); e != nil {
						rb = append(rb, e)
					}
				}
				if len(rb) > 0 {
					return &partialError{err: err, rollback: errors.Join(rb...)}
				}
				return err
			}
			removed = append(removed, c)
		}
		return nil
	}}, nil
}

// drainCgroup moves the processes left in the cgroup at dir to its parent
// before the cgroup is removed: the children a process forked after it was
// moved in (the move's undo takes back only the process it moved) go where
// the cgroup's processes came from, the parent that sculpt made it under.
// A few rounds catch a process forked during the move; what cannot be
// moved leaves the removal to fail with EBUSY, naming the cgroup.
func drainCgroup(dir string) {
	parent := filepath.Join(filepath.Dir(dir), "cgroup.procs")
	for range 5 {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.procs"))
		if err != nil || len(bytes.TrimSpace(b)) == 0 {
			return
		}
		for _, pid := range strings.Fields(string(b)) {
			_ = os.WriteFile(parent, []byte(pid), 0) // a process that exits meanwhile is gone: nothing to move
		}
	}
}

// prepareMove reads the process's cgroup in each hierarchy and plans
// writing its pid to cgroup.procs there (which moves every thread).
func (b *Backend) prepareMove(a hal.MoveToCgroup) (plan, error) {
	ctrls, err := b.controllers(a.Controllers)
	if err != nil {
		return plan{}, err
	}
	m, err := b.procCgroups(a.PID)
	if err != nil {
		return plan{}, err
	}
	old := map[string][]string{} // old path -> controllers
	var order []string
	for _, c := range ctrls {
		key := c
		if b.hier[c].v2 {
			key = ""
		}
		p, ok := m[key]
		if !ok {
			return plan{}, fmt.Errorf("pid %d has no %s cgroup in %s", a.PID, c, b.roots.ProcPath(strconv.Itoa(a.PID), "cgroup"))
		}
		if _, seen := old[p]; !seen {
			order = append(order, p)
		}
		old[p] = append(old[p], c)
	}
	var undo hal.Action
	if len(order) == 1 {
		undo = hal.MoveToCgroup{PID: a.PID, Cgroup: order[0], Controllers: old[order[0]]}
	} else {
		s := hal.Steps{}
		for _, p := range order {
			s.Steps = append(s.Steps, hal.MoveToCgroup{PID: a.PID, Cgroup: p, Controllers: old[p]})
		}
		undo = s
	}
	move := func(cg string, list []string) ([]string, error) {
		var done []string
		for _, c := range list {
			dir, _, err := b.cgroupDir(c, cg)
			if err != nil {
				return done, err
			}
			if err := writeCgroupFile(dir, "cgroup.procs", strconv.Itoa(a.PID)); err != nil {
				if errors.Is(err, errESRCH) {
					return done, fmt.Errorf("pid %d: %w", a.PID, hal.ErrGone)
				}
				return done, err
			}
			done = append(done, c)
		}
		return done, nil
	}
	return plan{undo: undo, do: func(context.Context) error {
		done, err := move(a.Cgroup, ctrls)
		if err == nil {
			return nil
		}
		var rb []error
		for _, c := range done {
			for p, cs := range old {
				if slices.Contains(cs, c) {
					if _, e := move(p, []string{c}); e != nil && !errors.Is(e, hal.ErrGone) {
						rb = append(rb, e)
					}
				}
			}
		}
		if len(rb) > 0 {
			return &partialError{err: err, rollback: errors.Join(rb...)}
		}
		return err
	}}, nil
}

// sharesFromWeight converts a v2 cpu.weight (1..10000) to v1 cpu.shares
// (2..262144) linearly (the inverse of the kernel's old mapping).
func sharesFromWeight(w uint64) uint64 { return 2 + (w-1)*262142/9999 }

// prepareCgroupCPU reads and plans cpu.shares/cfs_quota_us/cfs_period_us
// (v1) or cpu.weight/cpu.max (v2).
func (b *Backend) prepareCgroupCPU(a hal.SetCgroupCPU) (plan, error) {
	dir, h, err := b.cgroupDir("cpu", a.Cgroup)
	if err != nil {
		return plan{}, err
	}
	cur, err := readCPULimits(dir, h.v2)
	if err != nil {
		return plan{}, err
	}
	undo := hal.SetCgroupCPU{Cgroup: a.Cgroup}
	if a.Shares != nil || a.Weight != nil {
		if h.v2 {
			undo.Weight = &cur.Weight
		} else {
			undo.Shares = &cur.Shares
		}
	}
	if a.QuotaUS != nil || a.PeriodUS != nil {
		undo.QuotaUS, undo.PeriodUS = &cur.QuotaUS, &cur.PeriodUS
	}
	if a.Idle != nil {
		if !fileExists(filepath.Join(dir, "cpu.idle")) {
			return plan{}, fmt.Errorf("set cpu.idle on %s: %w (no cpu.idle: the kernel is older than 5.15)", dir, hal.ErrNotSupported)
		}
		undo.Idle = &cur.Idle
	}
	return plan{undo: undo, do: func(context.Context) error {
		if err := writeCPULimits(dir, h.v2, a, cur); err != nil {
			if rb := writeCPULimits(dir, h.v2, undo, cur); rb != nil {
				return &partialError{err: err, rollback: rb}
			}
			return err
		}
		return nil
	}}, nil
}

// readCPULimits reads a cpu cgroup's weight and bandwidth.
func readCPULimits(dir string, v2 bool) (hal.CPULimits, error) {
	var l hal.CPULimits
	num := func(file string) (int64, error) {
		s, err := readCgroupFile(dir, file)
		if err != nil {
			return 0, err
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("parse %s: %w", filepath.Join(dir, file), err)
		}
		return n, nil
	}
	if !v2 {
		sh, err := num("cpu.shares")
		if err != nil {
			return l, err
		}
		q, err := num("cpu.cfs_quota_us")
		if err != nil {
			return l, err
		}
		p, err := num("cpu.cfs_period_us")
		if err != nil {
			return l, err
		}
		return hal.CPULimits{Shares: uint64(sh), QuotaUS: q, PeriodUS: uint64(p), Idle: readIdle(dir)}, nil
	}
	w, err := num("cpu.weight")
	if err != nil {
		return l, err
	}
	s, err := readCgroupFile(dir, "cpu.max")
	if err != nil {
		return l, err
	}
	q, p, err := parseCPUMax(s)
	if err != nil {
		return l, fmt.Errorf("parse %s: %w", filepath.Join(dir, "cpu.max"), err)
	}
	return hal.CPULimits{Weight: uint64(w), QuotaUS: q, PeriodUS: p, Idle: readIdle(dir)}, nil
}

// readIdle reads cpu.idle (Linux 5.15+); false where there is none.
func readIdle(dir string) bool {
	s, err := readCgroupFile(dir, "cpu.idle")
	return err == nil && s == "1"
}

// parseCPUMax parses cgroup v2 cpu.max, "max 100000" or "50000 100000".
func parseCPUMax(s string) (int64, uint64, error) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, fmt.Errorf("want \"QUOTA PERIOD\", got %q", s)
	}
	p, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("period %q: %w", f[1], err)
	}
	if f[0] == "max" {
		return -1, p, nil
	}
	q, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("quota %q: %w", f[0], err)
	}
	return q, p, nil
}

func writeCPULimits(dir string, v2 bool, a hal.SetCgroupCPU, cur hal.CPULimits) error {
	if a.Idle != nil {
		v := "0"
		if *a.Idle {
			v = "1"
		}
		if err := writeCgroupFile(dir, "cpu.idle", v); err != nil {
			return err
		}
	}
	if !v2 {
		if a.Shares != nil || a.Weight != nil {
			sh := uint64(0)
			if a.Shares != nil {
				sh = *a.Shares
			} else {
				sh = sharesFromWeight(*a.Weight)
			}
			if err := writeCgroupFile(dir, "cpu.shares", strconv.FormatUint(sh, 10)); err != nil {
				return err
			}
		}
		if a.PeriodUS != nil {
			if err := writeCgroupFile(dir, "cpu.cfs_period_us", strconv.FormatUint(*a.PeriodUS, 10)); err != nil {
				return err
			}
		}
		if a.QuotaUS != nil {
			return writeCgroupFile(dir, "cpu.cfs_quota_us", strconv.FormatInt(*a.QuotaUS, 10))
		}
		return nil
	}
	if a.Shares != nil || a.Weight != nil {
		w := uint64(0)
		if a.Weight != nil {
			w = *a.Weight
		} else {
			w = cgroups.ConvertCPUSharesToCgroupV2Value(*a.Shares)
		}
		if err := writeCgroupFile(dir, "cpu.weight", strconv.FormatUint(w, 10)); err != nil {
			return err
		}
	}
	if a.QuotaUS != nil || a.PeriodUS != nil {
		q, p := cur.QuotaUS, cur.PeriodUS
		if a.QuotaUS != nil {
			q = *a.QuotaUS
		}
		if a.PeriodUS != nil {
			p = *a.PeriodUS
		}
		qs := strconv.FormatInt(q, 10)
		if q < 0 {
			qs = "max"
		}
		return writeCgroupFile(dir, "cpu.max", fmt.Sprintf("%s %d", qs, p))
	}
	return nil
}
