package main

import (
	"errors"
	"fmt"
	"os"

	"sculpt/internal/engine"
	"sculpt/internal/hal"
	"sculpt/internal/workload"
)

// actRefusal says why the guard refuses act by hand ("" when it may go
// ahead): the engine's own guard (engine.Guard.Excluded) decides, so
// `sculpt act` never touches what `sculpt run` would not — PID 1, kernel
// threads, sculpt itself and the processes that started it, and the
// config's protected set when --config is given (docs/config.md).
func actRefusal(a *app, cfg engine.Config, act hal.Action) (string, error) {
	self := os.Getpid()
	ancestors, err := workload.Ancestors(a.roots, self)
	if err != nil {
		return "", fmt.Errorf("find the processes that started sculpt: %w", err)
	}
	g := engine.NewGuard(cfg, self)
	g.SetAncestors(ancestors)
	disc := workload.NewDiscoverer(a.roots, workload.Options{Self: self, Ancestors: ancestors})

	if pid := hal.TargetPID(act); pid > 0 {
		_, err := disc.Discover(workload.Selector{PIDs: []int{pid}})
		if errors.Is(err, workload.ErrExcluded) {
			return err.Error(), nil // a kernel thread, or sculpt itself
		}
		if err != nil {
			return "", nil // gone or unreadable: the backend's check says so
		}
		// The workload that holds pid as `sculpt observe` lists it, so that
		// protected.workloads and protected.names match as in `sculpt run`.
		ws, err := disc.Discover(workload.Selector{All: true})
		if err != nil {
			return "", fmt.Errorf("discover the workload of pid %d: %w", pid, err)
		}
		for _, w := range ws {
			for _, p := range w.Procs {
				if p.PID == pid {
					if why := g.Excluded(w.ID, w.Name, []int{pid}, []string{p.Comm}, cgroupsOf(w)); why != "" {
						return fmt.Sprintf("pid %d (%s, in workload %s) %s", pid, p.Comm, w.ID, why), nil
					}
					return "", nil
				}
			}
		}
		if why := g.Excluded("", "", []int{pid}, nil, nil); why != "" {
			return fmt.Sprintf("pid %d %s", pid, why), nil
		}
		return "", nil
	}
	if cg := targetCgroup(act); cg != "" {
		ws, err := disc.Discover(workload.Selector{Cgroups: []string{cg}})
		if err != nil {
			return "", nil // no such cgroup: the backend's check says so
		}
		for i := range ws {
			if why := g.ExcludedWorkload(&ws[i]); why != "" {
				return fmt.Sprintf("cgroup %s %s", cg, why), nil
			}
		}
	}
	return "", nil
}

// cgroupsOf lists a workload's cgroup paths, v2 first.
func cgroupsOf(w workload.Workload) []string {
	var cgs []string
	if w.Cgroups.V2 != "" {
		cgs = append(cgs, w.Cgroups.V2)
	}
	for _, p := range w.Cgroups.V1 {
		cgs = append(cgs, p)
	}
	return cgs
}

// targetCgroup is the cgroup an action changes ("" none).
func targetCgroup(act hal.Action) string {
	switch a := act.(type) {
	case hal.SetCgroupCPU:
		return a.Cgroup
	case hal.SetCpuset:
		return a.Cgroup
	case hal.BlkioWeight:
		return a.Cgroup
	case hal.BlkioLimit:
		return a.Cgroup
	case hal.MemBind:
		return a.Cgroup
	case hal.RemoveCgroup:
		return a.Cgroup
	}
	return ""
}
