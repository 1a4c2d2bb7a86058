package telemetry

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"sculpt/internal/host"
)

// DefaultOptions tune the default collector set.
type DefaultOptions struct {
	Proc ProcOptions
	Perf PerfOptions // Perf.Roots defaults to the sampler's roots
	Net  NetOptions  // Net.FDScanEvery defaults to DefaultFDScanEvery
	// NoPerf leaves perf events out (they hold a file descriptor per thread
	// and event).
	NoPerf bool
	EBPF   EBPFOptions // EBPF.Roots defaults to the sampler's roots
	// NoEBPF leaves the eBPF collector out.
	NoEBPF bool
	// NoRAPL leaves the RAPL energy collector out.
	NoRAPL bool
}

// NewDefaultSampler builds a Sampler with every collector this machine
// supports, in the order procfs, cgroup, psi, perf, net, ebpf, rapl. A collector whose
// source is missing is left out and named in the returned notes (which the
// caller logs); it is never an error.
func NewDefaultSampler(roots host.Roots, opts DefaultOptions) (*Sampler, []string, error) {
	var notes []string
	cs := []Collector{
		NewProcCollector(roots, opts.Proc),
		NewCgroupCollector(roots),
		NewPSICollector(roots),
	}
	if !opts.NoPerf {
		if opts.Perf.Roots == (host.Roots{}) {
			opts.Perf.Roots = roots
		}
		pc, err := NewPerfCollector(opts.Perf)
		switch {
		case err == nil:
			cs = append(cs, pc)
		case errors.Is(err, ErrNotSupported):
			notes = append(notes, err.Error())
		default:
			notes = append(notes, fmt.Sprintf("perf collector off: %v", err))
		}
	}
	if opts.Net.FDScanEvery <= 0 {
		opts.Net.FDScanEvery = DefaultFDScanEvery
	}
	cs = append(cs, NewNetCollector(roots, opts.Net))
	if !opts.NoEBPF {
		if opts.EBPF.Roots == (host.Roots{}) {
			opts.EBPF.Roots = roots
		}
		ec, err := NewEBPFCollector(opts.EBPF)
		switch {
		case err == nil:
			cs = append(cs, ec)
		case errors.Is(err, ErrNotSupported):
			notes = append(notes, err.Error())
		default:
			notes = append(notes, fmt.Sprintf("ebpf collector off: %v", err))
		}
	}
	if !opts.NoRAPL {
		rc, err := NewRAPLCollector(roots)
		switch {
		case err == nil:
			cs = append(cs, rc)
		case errors.Is(err, ErrNotSupported):
			notes = append(notes, err.Error())
		default:
			notes = append(notes, fmt.Sprintf("rapl collector off: %v", err))
		}
	}
	boot, err := ReadBootTime(roots)
	if err != nil {
		notes = append(notes, fmt.Sprintf("boot time unknown (%v): processes started mid-interval count from their second sweep", err))
	}
	return NewSampler(boot, UserHZ, cs...), notes, nil
}

// DefaultFDScanEvery is how many sweeps pass between scans of every
// process's fd table (sockets, pipes, peers): the scan costs about 30 µs per
// process, so at a 1 s interval over 1000 processes scanning every sweep
// would cost 3% of a core; every 5th costs 0.6%.
const DefaultFDScanEvery = 5

// UserHZ is the kernel's USER_HZ, the unit of /proc/PID/stat times; it is
// 100 on every architecture Linux supports today.
const UserHZ = 100

// ReadBootTime reads btime from roots.Proc/stat.
func ReadBootTime(roots host.Roots) (time.Time, error) {
	path := roots.ProcPath("stat")
	b, err := os.ReadFile(path)
	if err != nil {
		return time.Time{}, fmt.Errorf("read %s: %w", path, err)
	}
	return parseBootTime(b, path)
}

func parseBootTime(b []byte, path string) (time.Time, error) {
	for line := range bytes.Lines(b) {
		if rest, ok := bytes.CutPrefix(line, []byte("btime ")); ok {
			sec, err := strconv.ParseInt(string(bytes.TrimSpace(rest)), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("parse btime in %s: %q: %w", path, bytes.TrimSpace(rest), err)
			}
			return time.Unix(sec, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("%s has no btime line", path)
}
