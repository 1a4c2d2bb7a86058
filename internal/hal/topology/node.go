package topology

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"sculpt/internal/host"
)

// readNodes reads the NUMA nodes under <sys>/devices/system/node: per
// nodeN its cpulist, meminfo (MemTotal) and distance. On a machine without
// that directory (a kernel built without NUMA) it returns a single node 0
// holding every CPU, with MemTotal from <proc>/meminfo and distance 10.
func readNodes(roots host.Roots, cpus []CPU) ([]Node, error) {
	base := roots.SysPath("devices", "system", "node")
	ids, err := numberedEntries(base, "node")
	if err != nil {
		return nil, err
	}
	if len(ids) == 0 {
		return singleNode(roots, cpus)
	}
	nodes := make([]Node, 0, len(ids))
	for _, id := range ids {
		dir := filepath.Join(base, "node"+strconv.Itoa(id))
		n := Node{ID: id}
		if n.CPUs, err = readCPUListAttr(filepath.Join(dir, "cpulist")); err != nil {
			return nil, err
		}
		memPath := filepath.Join(dir, "meminfo")
		b, err := os.ReadFile(memPath)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", memPath, err)
		}
		if n.MemTotalBytes, err = parseMemTotal(memPath, b); err != nil {
			return nil, err
		}
		distPath := filepath.Join(dir, "distance")
		v, err := readAttr(distPath)
		if err != nil {
			return nil, err
		}
		if n.Distances, err = parseDistances(distPath, v); err != nil {
			return nil, err
		}
		if len(n.Distances) != len(ids) {
			return nil, fmt.Errorf("parse %s: %q: %d distances for %d nodes", distPath, v, len(n.Distances), len(ids))
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

func singleNode(roots host.Roots, cpus []CPU) ([]Node, error) {
	n := Node{ID: 0, CPUs: []int{}, Distances: []int{10}}
	for _, c := range cpus {
		n.CPUs = append(n.CPUs, c.ID)
	}
	memPath := roots.ProcPath("meminfo")
	b, err := os.ReadFile(memPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", memPath, err)
	}
	if n.MemTotalBytes, err = parseMemTotal(memPath, b); err != nil {
		return nil, err
	}
	return []Node{n}, nil
}

var errNoMemTotal = errors.New("no MemTotal line")

// parseMemTotal finds the MemTotal line of a meminfo file, either the
// system's ("MemTotal:  24000000 kB") or a node's ("Node 0 MemTotal: ...
// kB"), and returns it in bytes. path only names the file in errors.
func parseMemTotal(path string, b []byte) (uint64, error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		_, rest, ok := strings.Cut(line, "MemTotal:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 || len(f) > 2 || (len(f) == 2 && f[1] != "kB") {
			return 0, parseError(path, line, errors.New("want MemTotal: N kB"))
		}
		kb, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil {
			return 0, parseError(path, f[0], errors.Unwrap(err))
		}
		if len(f) == 2 {
			return kb << 10, nil
		}
		return kb, nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	return 0, fmt.Errorf("parse %s: %w", path, errNoMemTotal)
}

// parseDistances parses a nodeN/distance line such as "10 12 32 32".
func parseDistances(path, s string) ([]int, error) {
	var d []int
	for _, f := range strings.Fields(s) {
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			if err == nil {
				err = errors.New("distance must be positive")
			} else {
				err = errors.Unwrap(err)
			}
			return nil, parseError(path, f, err)
		}
		d = append(d, n)
	}
	if len(d) == 0 {
		return nil, parseError(path, s, errors.New("no distances"))
	}
	return d, nil
}

// assignNodes sets each CPU's Node from the nodes' CPU lists.
func assignNodes(cpus []CPU, nodes []Node) {
	byID := make(map[int]int, len(cpus))
	for i, c := range cpus {
		byID[c.ID] = i
	}
	for _, n := range nodes {
		for _, c := range n.CPUs {
			if i, ok := byID[c]; ok {
				cpus[i].Node = n.ID
			}
		}
	}
}
