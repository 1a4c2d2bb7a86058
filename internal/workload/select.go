package workload

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// cgTarget is a selected cgroup: a path relative to its hierarchy's root and
// the hierarchies ("" for v2, else v1 keys) it exists in.
type cgTarget struct {
	path string
	keys []string
}

// resolveCgroup turns a --cgroup argument into a cgTarget. A path under the
// cgroup root names one mount (e.g. <root>/cpu/batch, or <root>/batch when
// the root is itself a cgroup2 mount); any other path is relative to every
// hierarchy and is looked up under each mount below the root.
func (d *Discoverer) resolveCgroup(arg string) (cgTarget, error) {
	if arg == "" {
		return cgTarget{}, fmt.Errorf("cgroup %q: empty path", arg)
	}
	root := filepath.Clean(d.roots.Cgroup)
	clean := filepath.Clean("/" + arg)
	rootIsV2, err := exists(filepath.Join(root, "cgroup.controllers"))
	if err != nil {
		return cgTarget{}, fmt.Errorf("cgroup %s: %w", arg, err)
	}
	if rel, ok := strings.CutPrefix(clean, root+"/"); ok || clean == root {
		// Absolute under the mount root.
		if rootIsV2 {
			return d.checkTarget(arg, filepath.Join(root, rel), "/"+rel, []string{""})
		}
		mount, inner, _ := strings.Cut(rel, "/")
		if mount == "" {
			return cgTarget{}, fmt.Errorf("cgroup %s: names the cgroup mount root, not a hierarchy below it", arg)
		}
		keys, err := mountKeys(filepath.Join(root, mount))
		if err != nil {
			return cgTarget{}, fmt.Errorf("cgroup %s: %w", arg, err)
		}
		return d.checkTarget(arg, filepath.Join(root, rel), "/"+inner, keys)
	}
	if rootIsV2 {
		return d.checkTarget(arg, filepath.Join(root, clean), clean, []string{""})
	}
	mounts, err := os.ReadDir(root)
	if err != nil {
		return cgTarget{}, fmt.Errorf("cgroup %s: list %s: %w", arg, root, err)
	}
	t := cgTarget{path: clean}
	for _, m := range mounts {
		mdir := filepath.Join(root, m.Name())
		ok, err := isDir(filepath.Join(mdir, clean))
		if err != nil {
			return cgTarget{}, fmt.Errorf("cgroup %s: %w", arg, err)
		}
		if !ok {
			continue
		}
		keys, err := mountKeys(mdir)
		if err != nil {
			return cgTarget{}, fmt.Errorf("cgroup %s: %w", arg, err)
		}
		for _, k := range keys {
			if !slices.Contains(t.keys, k) {
				t.keys = append(t.keys, k)
			}
		}
	}
	if len(t.keys) == 0 {
		return cgTarget{}, fmt.Errorf("cgroup %s: %w under %s", arg, ErrNoSuchCgroup, root)
	}
	return t, nil
}

func (d *Discoverer) checkTarget(arg, dir, path string, keys []string) (cgTarget, error) {
	ok, err := isDir(dir)
	if err != nil {
		return cgTarget{}, fmt.Errorf("cgroup %s: %w", arg, err)
	}
	if !ok {
		return cgTarget{}, fmt.Errorf("cgroup %s: %w (%s is not a directory)", arg, ErrNoSuchCgroup, dir)
	}
	return cgTarget{path: path, keys: keys}, nil
}

// mountKeys names the hierarchies mounted at dir: "" for cgroup2 (a
// directory with cgroup.controllers), "name=systemd" for a directory named
// systemd, else the comma-separated controllers of its name ("cpu,cpuacct").
func mountKeys(dir string) ([]string, error) {
	v2, err := exists(filepath.Join(dir, "cgroup.controllers"))
	if err != nil {
		return nil, err
	}
	if v2 {
		return []string{""}, nil
	}
	name := filepath.Base(dir)
	if name == "systemd" {
		return []string{keySystemd}, nil
	}
	if strings.HasPrefix(name, "name=") {
		return []string{name}, nil
	}
	return strings.Split(name, ","), nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	if err == nil {
		return true, nil
	}
	if os.IsNotExist(err) {
		return false, nil
	}
	return false, err
}

// selectCgroup builds the workload of the processes in the cgroup arg names
// and below it.
func (d *Discoverer) selectCgroup(arg string) (Workload, error) {
	t, err := d.resolveCgroup(arg)
	if err != nil {
		return Workload{}, err
	}
	name := lastElem(t.path)
	if name == "" {
		name = "/"
	}
	w := Workload{ID: "cg:" + t.path, Name: name, Kind: KindCgroup}
	var cgs []*cgInfo
	for i := range d.procs {
		p := &d.procs[i]
		if p.excluded || d.claimed[i] || !t.holds(p.cg) {
			continue
		}
		d.claimed[i] = true
		w.Procs = append(w.Procs, p.Proc)
		if !slices.Contains(cgs, p.cg) {
			cgs = append(cgs, p.cg)
		}
	}
	w.Cgroups = cgroupsOf(cgs, "")
	for _, k := range t.keys {
		if k == "" {
			w.Cgroups.V2 = t.path
			continue
		}
		if w.Cgroups.V1 == nil {
			w.Cgroups.V1 = make(map[string]string)
		}
		w.Cgroups.V1[k] = t.path
	}
	return w, nil
}

// holds reports whether a process with cgroups ci is in t or below it.
func (t *cgTarget) holds(ci *cgInfo) bool {
	for _, k := range t.keys {
		if p, ok := ci.lookup(k); ok && under(p, t.path) {
			return true
		}
	}
	return false
}
