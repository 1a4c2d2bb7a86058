package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"sculpt/internal/host"
)

// PSICollector reads the machine-wide pressure stall information
// (roots.Proc/pressure/{cpu,memory,io}) into Sample.Groups[SystemID].
// Per-workload PSI comes from the cgroup collector (v2 *.pressure files).
type PSICollector struct {
	roots       host.Roots
	unsupported bool // reported once; quiet afterwards
}

var _ Collector = (*PSICollector)(nil)

// NewPSICollector reads pressure files under roots.Proc.
func NewPSICollector(roots host.Roots) *PSICollector {
	return &PSICollector{roots: roots}
}

// Name returns "psi".
func (c *PSICollector) Name() string { return "psi" }

// Collect reads the "some total=" (µs) of roots.Proc/pressure/{cpu,memory,io}
// as PSICPUSomeSec, PSIMemSomeSec and PSIIOSomeSec (seconds). When
// roots.Proc/pressure does not exist (kernel without PSI) the first call
// returns a *NotSupportedError and later calls return nil with the metrics
// absent. A malformed file is an error naming it.
func (c *PSICollector) Collect(ctx context.Context, s *Sample) error {
	if c.unsupported {
		return nil
	}
	vals := s.Groups[SystemID]
	if vals == nil {
		vals = &Values{}
		s.Groups[SystemID] = vals
	}
	var errs []error
	for _, pf := range [...]struct {
		file string
		m    Metric
	}{{"cpu", PSICPUSomeSec}, {"memory", PSIMemSomeSec}, {"io", PSIIOSomeSec}} {
		path := c.roots.ProcPath("pressure", pf.file)
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && pf.file == "cpu" {
				c.unsupported = true
				return &NotSupportedError{Source: "psi", Reason: path + " missing (kernel without CONFIG_PSI, or booted psi=0)"}
			}
			errs = append(errs, fmt.Errorf("read %s: %w", path, err))
			continue
		}
		p, err := parsePressure(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("parse %s: %w", path, err))
			continue
		}
		if p.hasSome {
			vals.Set(pf.m, float64(p.someTotalUsec)/1e6)
		}
	}
	return errors.Join(errs...)
}

// pressure is one PSI file's totals, in microseconds.
type pressure struct {
	someTotalUsec, fullTotalUsec uint64
	hasSome, hasFull             bool
}

// parsePressure parses a PSI file (/proc/pressure/*, cgroup v2 *.pressure):
//
//	some avg10=0.00 avg60=0.00 avg300=0.00 total=12345
//	full avg10=0.00 avg60=0.00 avg300=0.00 total=0
//
// The "full" line is absent from /proc/pressure/cpu on kernels before 5.13.
func parsePressure(b []byte) (pressure, error) {
	var p pressure
	for n, line := range bytes.Split(b, []byte{'\n'}) {
		f := bytes.Fields(line)
		if len(f) == 0 {
			continue
		}
		kind := string(f[0])
		if kind != "some" && kind != "full" {
			return p, fmt.Errorf("line %d: want \"some\" or \"full\", got %q", n+1, truncate(line))
		}
		found := false
		for _, kv := range f[1:] {
			k, v, ok := bytes.Cut(kv, []byte{'='})
			if !ok {
				return p, fmt.Errorf("line %d: want key=value, got %q", n+1, kv)
			}
			if string(k) != "total" {
				continue
			}
			u, err := strconv.ParseUint(string(v), 10, 64)
			if err != nil {
				return p, fmt.Errorf("line %d: total=%q is not an unsigned number", n+1, v)
			}
			found = true
			if kind == "some" {
				p.someTotalUsec, p.hasSome = u, true
			} else {
				p.fullTotalUsec, p.hasFull = u, true
			}
		}
		if !found {
			return p, fmt.Errorf("line %d: no total= in %q", n+1, truncate(line))
		}
	}
	return p, nil
}
