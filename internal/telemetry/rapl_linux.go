package telemetry

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"sculpt/internal/host"
)

// SourceRAPL is the SourceStatus.Name of the RAPL energy counters.
const SourceRAPL = "rapl"

// RAPLCollector reads the energy counters of RAPL (Running Average Power
// Limit) through the powercap class, roots.Sys/class/powercap/intel-rapl:*
// (package zones intel-rapl:N, their subzones intel-rapl:N:M), into
// Sample.Groups[SystemID]: EnergyPackageJ, EnergyCoreJ, EnergyUncoreJ and
// EnergyDRAMJ, each summed over the zones of that name. AMD processors
// (family 17h and later) report through the same driver (intel_rapl_msr)
// and the same names, without a dram zone. The energy is the machine's: RAPL
// has no per-process or per-cgroup counter.
//
// energy_uj is a counter of microjoules that wraps to 0 past the zone's
// max_energy_range_uj (about 262 kJ: over 40 minutes at 100 W); the
// collector undoes one wrap between two sweeps and keeps its own total in
// joules since its first sweep, so the Sampler sees a counter that only
// grows. A zone whose reading cannot be explained (it went down, past a
// range that is unknown) makes its metric absent for that sweep. The zones
// are found once, by NewRAPLCollector.
type RAPLCollector struct {
	zones []*raplZone
}

var _ Collector = (*RAPLCollector)(nil)

// raplZone is one powercap zone and the collector's running total of it.
type raplZone struct {
	dir    string // roots.Sys/class/powercap/intel-rapl:N[:M]
	name   string // its name file: package-N, core, uncore, dram
	metric Metric
	maxUJ  uint64 // max_energy_range_uj; 0 when unknown (a wrap is then not undone)
	lastUJ uint64
	primed bool
	joules float64 // since the first reading, wraps undone
}

// NewRAPLCollector finds the RAPL zones under roots.Sys/class/powercap and
// reads the energy of the first to check it may. It returns a
// *NotSupportedError, with the reason, when the powercap class or its
// intel-rapl zones are missing or energy_uj is not readable (root only since
// the 2020 fix for CVE-2020-8694), and another error when a zone's files are
// malformed.
func NewRAPLCollector(roots host.Roots) (*RAPLCollector, error) {
	zones, err := openRAPL(roots)
	if err != nil {
		return nil, err
	}
	return &RAPLCollector{zones: zones}, nil
}

// Name returns "rapl".
func (c *RAPLCollector) Name() string { return SourceRAPL }

// Collect reads each zone's energy_uj and sets, per metric, the joules its
// zones used since the collector's first sweep. A metric one of whose zones
// could not be read, or read a value it cannot account for, is absent this
// sweep; a read error names the file.
func (c *RAPLCollector) Collect(ctx context.Context, s *Sample) error {
	vals := s.Groups[SystemID]
	if vals == nil {
		vals = &Values{}
		s.Groups[SystemID] = vals
	}
	var (
		sum        [NumMetrics]float64
		seen, lost [NumMetrics]bool
		errs       []error
	)
	for _, z := range c.zones {
		p := filepath.Join(z.dir, "energy_uj")
		uj, err := readUintFile(p)
		if err != nil {
			lost[z.metric] = true
			errs = append(errs, err)
			continue
		}
		if !z.advance(uj) {
			lost[z.metric] = true
			continue
		}
		sum[z.metric] += z.joules
		seen[z.metric] = true
	}
	for _, m := range raplMetrics {
		if seen[m] && !lost[m] {
			vals.Set(m, sum[m])
		}
	}
	return errors.Join(errs...)
}

// advance takes a new energy_uj reading into the zone's total. It reports
// false when the reading cannot be accounted for: lower than the last one
// with no known range to wrap in, or beyond the range. The zone then starts
// afresh from this reading, its total unchanged.
func (z *raplZone) advance(uj uint64) bool {
	if !z.primed {
		z.lastUJ, z.primed = uj, true
		return true
	}
	var d uint64
	switch {
	case uj >= z.lastUJ:
		d = uj - z.lastUJ
	case z.maxUJ > 0 && z.lastUJ <= z.maxUJ && uj <= z.maxUJ:
		d = z.maxUJ - z.lastUJ + uj // wrapped once
	default:
		z.lastUJ = uj
		return false
	}
	z.lastUJ = uj
	z.joules += float64(d) / 1e6
	return true
}

// raplMetrics are the metrics the collector sets, in Metric order.
var raplMetrics = []Metric{EnergyPackageJ, EnergyCoreJ, EnergyUncoreJ, EnergyDRAMJ}

// raplMetricOf maps a powercap zone's name to its metric. psys (the whole
// platform, packages included) and names unknown here are left out, so
// nothing is counted twice.
func raplMetricOf(name string) (Metric, bool) {
	switch {
	case strings.HasPrefix(name, "package-"):
		return EnergyPackageJ, true
	case name == "core":
		return EnergyCoreJ, true
	case name == "uncore":
		return EnergyUncoreJ, true
	case name == "dram":
		return EnergyDRAMJ, true
	}
	return 0, false
}

// openRAPL finds the zones under roots.Sys/class/powercap, each intel-rapl:*
// directory (a symbolic link on a real machine) with name,
// max_energy_range_uj and energy_uj files, and reads the first zone's
// energy_uj to check that it may.
func openRAPL(roots host.Roots) ([]*raplZone, error) {
	dir := roots.SysPath("class", "powercap")
	if _, err := os.Stat(dir); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &NotSupportedError{Source: SourceRAPL, Reason: dir + " missing: kernel without CONFIG_POWERCAP (usual in a VM, which gets no RAPL anyway)"}
		}
		return nil, fmt.Errorf("stat %s: %w", dir, err)
	}
	// intel-rapl:* leaves out the control type (intel-rapl) and the MMIO
	// copies of the package zones (intel-rapl-mmio:N).
	dirs, err := filepath.Glob(filepath.Join(dir, "intel-rapl:*"))
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", dir, err)
	}
	sort.Strings(dirs)
	var zones []*raplZone
	for _, d := range dirs {
		nameFile := filepath.Join(d, "name")
		b, err := os.ReadFile(nameFile)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", nameFile, err)
		}
		name := string(bytes.TrimSpace(b))
		m, ok := raplMetricOf(name)
		if !ok {
			continue
		}
		z := &raplZone{dir: d, name: name, metric: m}
		if z.maxUJ, err = readUintFile(filepath.Join(d, "max_energy_range_uj")); err != nil {
			return nil, err
		}
		zones = append(zones, z)
	}
	if len(zones) == 0 {
		return nil, &NotSupportedError{Source: SourceRAPL, Reason: "no intel-rapl:* package, core, uncore or dram zone under " + dir +
			" (intel_rapl_msr not loaded, or the CPU or hypervisor exposes no RAPL)"}
	}
	p := filepath.Join(zones[0].dir, "energy_uj")
	if _, err := readUintFile(p); err != nil {
		return nil, raplReadError(p, err)
	}
	return zones, nil
}

// raplReadError turns a failure to read energy_uj into a *NotSupportedError
// when it is a permission error: since the 2020 fix for CVE-2020-8694
// (PLATYPUS, power side channel) energy_uj is mode 0400, root's.
func raplReadError(path string, err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return &NotSupportedError{Source: SourceRAPL, Reason: path + " is readable by root only (since the 2020 fix for CVE-2020-8694): run sculpt as root or with CAP_DAC_READ_SEARCH"}
	}
	return err
}

// readUintFile reads a sysfs file holding one unsigned decimal number.
func readUintFile(path string) (uint64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", path, err)
	}
	v, err := strconv.ParseUint(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parse %s: %q is not an unsigned number", path, truncate(bytes.TrimSpace(b)))
	}
	return v, nil
}

// probeRAPL reports whether RAPL energy can be read through roots.Sys.
func probeRAPL(roots host.Roots) SourceStatus {
	st := SourceStatus{Name: SourceRAPL}
	zones, err := openRAPL(roots)
	if err != nil {
		var ns *NotSupportedError
		if errors.As(err, &ns) {
			st.Reason = ns.Reason
		} else {
			st.Reason = err.Error()
		}
		return st
	}
	names := make([]string, len(zones))
	for i, z := range zones {
		names[i] = z.name
	}
	st.Available = true
	st.Detail = fmt.Sprintf("zones %s under %s; machine-wide (system genes energy_watts, energy_dram_watts)",
		strings.Join(names, ", "), roots.SysPath("class", "powercap"))
	return st
}
