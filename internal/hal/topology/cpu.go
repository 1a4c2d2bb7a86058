package topology

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"sculpt/internal/host"
)

// readCPUs reads the CPUs under <sys>/devices/system/cpu: the cpuN
// directories, the "online" list (when absent, every CPU is online) and,
// per CPU, topology/{core_id,physical_package_id,thread_siblings_list}.
// Those topology files are required for an online CPU; an offline CPU may
// lack them (its fields are then -1 and empty).
func readCPUs(roots host.Roots) ([]CPU, error) {
	base := roots.SysPath("devices", "system", "cpu")
	if _, err := os.Stat(base); err != nil {
		return nil, fmt.Errorf("not a sysfs root: %w", err)
	}
	ids, err := numberedEntries(base, "cpu")
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return nil, fmt.Errorf("read %s: no cpuN directories", base)
	}
	online := map[int]bool{}
	onlinePath := filepath.Join(base, "online")
	if v, ok, err := readOptionalAttr(onlinePath); err != nil {
		return nil, err
	} else if ok {
		list, err := ParseCPUList(v)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", onlinePath, err)
		}
		for _, c := range list {
			online[c] = true
		}
	} else {
		for _, id := range ids {
			online[id] = true
		}
	}
	cpus := make([]CPU, 0, len(ids))
	for _, id := range ids {
		c := CPU{ID: id, Online: online[id], CoreID: -1, PackageID: -1, Node: -1}
		dir := filepath.Join(base, "cpu"+strconv.Itoa(id), "topology")
		if !c.Online {
			if _, err := os.Stat(dir); err != nil {
				cpus = append(cpus, c)
				continue
			}
		}
		if c.CoreID, err = readIntAttr(filepath.Join(dir, "core_id")); err != nil {
			return nil, err
		}
		if c.PackageID, err = readIntAttr(filepath.Join(dir, "physical_package_id")); err != nil {
			return nil, err
		}
		if c.ThreadSiblings, err = readCPUListAttr(filepath.Join(dir, "thread_siblings_list")); err != nil {
			return nil, err
		}
		cpus = append(cpus, c)
	}
	return cpus, nil
}

// readCaches reads <sys>/devices/system/cpu/cpuN/cache/indexM/{level,type,
// size,shared_cpu_list} of every online CPU and keeps one Cache per
// distinct (level, type, shared CPUs). A CPU without a cache directory
// (some VMs, some ARM boards) contributes nothing; a missing size is 0.
func readCaches(roots host.Roots, cpus []CPU) ([]Cache, error) {
	type key struct {
		level int
		typ   string
		cpus  string
	}
	seen := map[key]bool{}
	var caches []Cache
	for _, c := range cpus {
		if !c.Online {
			continue
		}
		dir := roots.SysPath("devices", "system", "cpu", "cpu"+strconv.Itoa(c.ID), "cache")
		idx, err := numberedEntries(dir, "index")
		if err != nil {
			return nil, err
		}
		for _, i := range idx {
			d := filepath.Join(dir, "index"+strconv.Itoa(i))
			cache, err := readCache(d)
			if err != nil {
				return nil, err
			}
			k := key{cache.Level, cache.Type, FormatCPUList(cache.CPUs)}
			if seen[k] {
				continue
			}
			seen[k] = true
			caches = append(caches, cache)
		}
	}
	slices.SortFunc(caches, func(a, b Cache) int {
		return cmp.Or(cmp.Compare(a.Level, b.Level), cmp.Compare(a.Type, b.Type), cmp.Compare(firstOr(a.CPUs, -1), firstOr(b.CPUs, -1)))
	})
	return caches, nil
}

// readCache reads one cpuN/cache/indexM directory.
func readCache(dir string) (Cache, error) {
	var c Cache
	var err error
	if c.Level, err = readIntAttr(filepath.Join(dir, "level")); err != nil {
		return c, err
	}
	if c.Type, err = readAttr(filepath.Join(dir, "type")); err != nil {
		return c, err
	}
	sizePath := filepath.Join(dir, "size")
	if v, ok, err := readOptionalAttr(sizePath); err != nil {
		return c, err
	} else if ok {
		if c.SizeBytes, err = parseSize(v); err != nil {
			return c, parseError(sizePath, v, err)
		}
	}
	if c.CPUs, err = readCPUListAttr(filepath.Join(dir, "shared_cpu_list")); err != nil {
		return c, err
	}
	return c, nil
}

var errBadSize = errors.New("want a number of bytes with an optional K, M or G suffix")

// parseSize parses a cache size as sysfs writes it: "48K", "2048K", "32M",
// or a plain number of bytes.
func parseSize(s string) (int64, error) {
	mult := int64(1)
	switch {
	case strings.HasSuffix(s, "K"):
		mult, s = 1<<10, s[:len(s)-1]
	case strings.HasSuffix(s, "M"):
		mult, s = 1<<20, s[:len(s)-1]
	case strings.HasSuffix(s, "G"):
		mult, s = 1<<30, s[:len(s)-1]
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, errBadSize
	}
	return n * mult, nil
}

func firstOr(s []int, def int) int {
	if len(s) == 0 {
		return def
	}
	return s[0]
}

// cpuNodeLinks fills in the node of a CPU that no node's cpulist named
// from the cpuN/nodeM link the kernel puts in its directory.
func cpuNodeLinks(roots host.Roots, cpus []CPU) error {
	for i := range cpus {
		if cpus[i].Node >= 0 {
			continue
		}
		nodes, err := numberedEntries(roots.SysPath("devices", "system", "cpu", "cpu"+strconv.Itoa(cpus[i].ID)), "node")
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		if len(nodes) > 0 {
			cpus[i].Node = nodes[0]
		}
	}
	return nil
}
