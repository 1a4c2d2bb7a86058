package topology

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// readAttr reads a sysfs or procfs attribute and trims surrounding space.
func readAttr(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// readOptionalAttr is readAttr for a file that may be absent: a missing
// file gives ok == false and no error.
func readOptionalAttr(path string) (value string, ok bool, err error) {
	v, err := readAttr(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return v, true, nil
}

// readIntAttr reads a file holding one decimal integer.
func readIntAttr(path string) (int, error) {
	v, err := readAttr(path)
	if err != nil {
		return 0, err
	}
	return parseIntValue(path, v)
}

// readOptionalIntAttr reads a file holding one decimal integer, if present.
func readOptionalIntAttr(path string) (int, bool, error) {
	v, ok, err := readOptionalAttr(path)
	if err != nil || !ok {
		return 0, false, err
	}
	n, err := parseIntValue(path, v)
	return n, err == nil, err
}

func parseIntValue(path, v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, parseError(path, v, errors.Unwrap(err))
	}
	return n, nil
}

// readCPUListAttr reads a file holding a CPU list such as "0-3,8".
func readCPUListAttr(path string) ([]int, error) {
	v, err := readAttr(path)
	if err != nil {
		return nil, err
	}
	cpus, err := ParseCPUList(v)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return cpus, nil
}

// numberedEntries lists the entries of dir named prefix<N>, e.g. cpu0,
// cpu1, and returns their numbers ascending. A missing dir gives none.
func numberedEntries(dir, prefix string) ([]int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", dir, err)
	}
	var ids []int
	for _, e := range entries {
		rest, ok := strings.CutPrefix(e.Name(), prefix)
		if !ok || rest == "" {
			continue
		}
		n, err := strconv.Atoi(rest)
		if err != nil || n < 0 {
			continue // e.g. cpufreq, cpuidle beside cpu0..
		}
		ids = append(ids, n)
	}
	sort.Ints(ids)
	return ids, nil
}

// linkBase returns the last element of a symlink's target (a driver's
// name from a driver link), or "" when there is no such link.
func linkBase(path string) (string, error) {
	target, err := os.Readlink(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("readlink %s: %w", path, err)
	}
	return filepath.Base(target), nil
}
