// Package host names the filesystem roots sculpt reads the machine through.
//
// Every reader of /proc, /sys or cgroupfs takes a Roots value instead of a
// package global, so that tests point them at fixtures and a DaemonSet points
// them at /host/proc, /host/sys and /host/sys/fs/cgroup.
package host

import "path/filepath"

// Roots are the mount points of the kernel's pseudo filesystems.
type Roots struct {
	Proc   string // procfs, normally /proc
	Sys    string // sysfs, normally /sys
	Cgroup string // the cgroup mount root, normally /sys/fs/cgroup
}

// DefaultRoots are the roots of the machine sculpt runs on.
func DefaultRoots() Roots {
	return Roots{Proc: "/proc", Sys: "/sys", Cgroup: "/sys/fs/cgroup"}
}

// ProcPath joins elem under the procfs root.
func (r Roots) ProcPath(elem ...string) string {
	return filepath.Join(append([]string{r.Proc}, elem...)...)
}

// SysPath joins elem under the sysfs root.
func (r Roots) SysPath(elem ...string) string {
	return filepath.Join(append([]string{r.Sys}, elem...)...)
}

// CgroupPath joins elem under the cgroup mount root.
func (r Roots) CgroupPath(elem ...string) string {
	return filepath.Join(append([]string{r.Cgroup}, elem...)...)
}
