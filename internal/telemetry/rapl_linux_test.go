package telemetry

import (
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sculpt/internal/host"
	"sculpt/internal/workload"
)

// raplZoneFixture is one zone of a fake powercap tree.
type raplZoneFixture struct {
	dir, name string
	maxUJ     uint64
	uj        uint64
}

// raplTree writes a fake roots.Sys/class/powercap holding the zones (and,
// like a real one, the intel-rapl control type and an MMIO copy of package
// 0, which must be ignored) and returns its roots.
func raplTree(t *testing.T, zones ...raplZoneFixture) host.Roots {
	t.Helper()
	sys := filepath.Join(t.TempDir(), "sys")
	base := filepath.Join(sys, "class", "powercap")
	write := func(p, s string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(base, "intel-rapl", "enabled"), "1\n")
	write(filepath.Join(base, "intel-rapl-mmio:0", "name"), "package-0\n")
	write(filepath.Join(base, "intel-rapl-mmio:0", "energy_uj"), "999999999\n")
	write(filepath.Join(base, "intel-rapl-mmio:0", "max_energy_range_uj"), "262143328850\n")
	for _, z := range zones {
		write(filepath.Join(base, z.dir, "name"), z.name+"\n")
		write(filepath.Join(base, z.dir, "max_energy_range_uj"), strconv.FormatUint(z.maxUJ, 10)+"\n")
		write(filepath.Join(base, z.dir, "energy_uj"), strconv.FormatUint(z.uj, 10)+"\n")
	}
	return host.Roots{Sys: sys}
}

func setEnergy(t *testing.T, roots host.Roots, dir string, uj uint64) {
	t.Helper()
	p := roots.SysPath("class", "powercap", dir, "energy_uj")
	if err := os.WriteFile(p, []byte(strconv.FormatUint(uj, 10)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func collectRAPL(t *testing.T, c *RAPLCollector) *Values {
	t.Helper()
	s := NewSample(time.Now(), nil)
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	return s.Groups[SystemID]
}

func wantJoules(t *testing.T, what string, v *Values, m Metric, want float64) {
	t.Helper()
	got, ok := v.Get(m)
	if !ok || math.Abs(got-want) > 1e-9 {
		t.Errorf("%s %s = %v (present %v), want %v J", what, m, got, ok, want)
	}
}

const raplRange = 262143328850 // max_energy_range_uj of a real Xeon package

// A two-socket server with package, core and dram zones: each metric sums
// its zones over the sockets, psys is left out, and the counters are joules
// since the first sweep.
func TestRAPLCollectorTwoSockets(t *testing.T) {
	roots := raplTree(t,
		raplZoneFixture{"intel-rapl:0", "package-0", raplRange, 1_000_000},
		raplZoneFixture{"intel-rapl:0:0", "core", raplRange, 500_000},
		raplZoneFixture{"intel-rapl:0:1", "dram", 65_712_999_613, 200_000},
		raplZoneFixture{"intel-rapl:1", "package-1", raplRange, 7_000_000},
		raplZoneFixture{"intel-rapl:1:0", "core", raplRange, 100},
		raplZoneFixture{"intel-rapl:1:1", "dram", 65_712_999_613, 0},
		raplZoneFixture{"intel-rapl:2", "psys", raplRange, 5},
	)
	c, err := NewRAPLCollector(roots)
	if err != nil {
		t.Fatal(err)
	}
	first := collectRAPL(t, c)
	for _, m := range []Metric{EnergyPackageJ, EnergyCoreJ, EnergyDRAMJ} {
		wantJoules(t, "first sweep", first, m, 0)
	}
	wantNo(t, "first sweep (no uncore zone)", first, EnergyUncoreJ)

	setEnergy(t, roots, "intel-rapl:0", 1_000_000+60_000_000) // 60 J
	setEnergy(t, roots, "intel-rapl:1", 7_000_000+40_500_000) // 40.5 J
	setEnergy(t, roots, "intel-rapl:0:0", 500_000+30_000_000) // 30 J
	setEnergy(t, roots, "intel-rapl:1:1", 2_250_000)          // 2.25 J
	setEnergy(t, roots, "intel-rapl:2", 1_000_000_000)        // psys: not counted
	second := collectRAPL(t, c)
	wantJoules(t, "second sweep", second, EnergyPackageJ, 100.5)
	wantJoules(t, "second sweep", second, EnergyCoreJ, 30)
	wantJoules(t, "second sweep", second, EnergyDRAMJ, 2.25)
	if n := second.Len(); n != 3 {
		t.Errorf("%d metrics set, want 3 (package, core, dram)", n)
	}
}

// energy_uj wraps to 0 past max_energy_range_uj: the collector adds the
// rest of the range, so the Sampler never sees the counter go down.
func TestRAPLCollectorWrapAround(t *testing.T) {
	const max = 1_000_000_000 // 1 kJ, small to keep the numbers readable
	roots := raplTree(t, raplZoneFixture{"intel-rapl:0", "package-0", max, max - 3_000_000})
	c, err := NewRAPLCollector(roots)
	if err != nil {
		t.Fatal(err)
	}
	samp := NewSampler(time.Time{}, UserHZ, c)
	if _, err := samp.Sweep(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	setEnergy(t, roots, "intel-rapl:0", 2_000_000) // 3 J to the top, 2 J after the wrap
	res, err := samp.Sweep(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantJoules(t, "frame across the wrap", &res.System.Values, EnergyPackageJ, 5)
	setEnergy(t, roots, "intel-rapl:0", 9_000_000)
	res, err = samp.Sweep(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	wantJoules(t, "frame after the wrap", &res.System.Values, EnergyPackageJ, 7)
}

// A reading the collector cannot account for (below the last, with an
// unknown range) leaves the metric absent for that sweep instead of
// inventing energy, and counting resumes from it.
func TestRAPLCollectorUnknownRangeGoesAbsent(t *testing.T) {
	roots := raplTree(t, raplZoneFixture{"intel-rapl:0", "package-0", 0, 50_000_000})
	c, err := NewRAPLCollector(roots)
	if err != nil {
		t.Fatal(err)
	}
	collectRAPL(t, c)
	setEnergy(t, roots, "intel-rapl:0", 10_000_000)
	wantNo(t, "after a drop with no range", collectRAPL(t, c), EnergyPackageJ)
	setEnergy(t, roots, "intel-rapl:0", 14_000_000)
	wantJoules(t, "after resuming", collectRAPL(t, c), EnergyPackageJ, 4)
}

// An AMD Zen machine (or an Intel client part) has no dram zone: the dram
// metric, and so energy_dram_watts, is absent, never zero.
func TestRAPLCollectorMissingDRAM(t *testing.T) {
	roots := raplTree(t,
		raplZoneFixture{"intel-rapl:0", "package-0", raplRange, 0},
		raplZoneFixture{"intel-rapl:0:0", "core", raplRange, 0},
	)
	c, err := NewRAPLCollector(roots)
	if err != nil {
		t.Fatal(err)
	}
	collectRAPL(t, c)
	setEnergy(t, roots, "intel-rapl:0", 3_000_000)
	v := collectRAPL(t, c)
	wantJoules(t, "no dram", v, EnergyPackageJ, 3)
	wantNo(t, "no dram", v, EnergyDRAMJ, EnergyUncoreJ)
}

// A zone that cannot be read makes its metric absent and the error name
// the file; the other metrics are still set.
func TestRAPLCollectorUnreadableZone(t *testing.T) {
	roots := raplTree(t,
		raplZoneFixture{"intel-rapl:0", "package-0", raplRange, 0},
		raplZoneFixture{"intel-rapl:0:1", "dram", raplRange, 0},
	)
	c, err := NewRAPLCollector(roots)
	if err != nil {
		t.Fatal(err)
	}
	collectRAPL(t, c)
	dram := roots.SysPath("class", "powercap", "intel-rapl:0:1", "energy_uj")
	if err := os.WriteFile(dram, []byte("garbage\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s := NewSample(time.Now(), []workload.Workload{})
	err = c.Collect(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), dram) {
		t.Fatalf("err = %v, want one naming %s", err, dram)
	}
	wantJoules(t, "unreadable dram", s.Groups[SystemID], EnergyPackageJ, 0)
	wantNo(t, "unreadable dram", s.Groups[SystemID], EnergyDRAMJ)
}

func TestRAPLNotSupportedReasons(t *testing.T) {
	dir := t.TempDir()
	noClass := host.Roots{Sys: filepath.Join(dir, "sys")}
	empty := host.Roots{Sys: filepath.Join(dir, "sys2")}
	if err := os.MkdirAll(empty.SysPath("class", "powercap", "intel-rapl"), 0o755); err != nil {
		t.Fatal(err)
	}
	onlyPsys := raplTree(t, raplZoneFixture{"intel-rapl:0", "psys", raplRange, 1})
	for _, c := range []struct {
		what  string
		roots host.Roots
		want  string
	}{
		{"no powercap class", noClass, noClass.SysPath("class", "powercap") + " missing: kernel without CONFIG_POWERCAP"},
		{"no intel-rapl zone", empty, "no intel-rapl:* package, core, uncore or dram zone under " + empty.SysPath("class", "powercap")},
		{"only psys", onlyPsys, "no intel-rapl:* package"},
	} {
		_, err := NewRAPLCollector(c.roots)
		if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: NewRAPLCollector: %v, want not supported with %q", c.what, err, c.want)
		}
		st := ProbeSources(c.roots)
		var rapl *SourceStatus
		for i := range st {
			if st[i].Name == SourceRAPL {
				rapl = &st[i]
			}
		}
		if rapl == nil || rapl.Available || !strings.Contains(rapl.Reason, c.want) {
			t.Errorf("%s: probe %+v, want unavailable with %q", c.what, rapl, c.want)
		}
	}
}

// energy_uj is mode 0400 since the fix for CVE-2020-8694; root reads it
// anyway, so the permission error is checked on the classification.
func TestRAPLPermissionReason(t *testing.T) {
	p := "/sys/class/powercap/intel-rapl:0/energy_uj"
	err := raplReadError(p, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission})
	if !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "readable by root only") || !strings.Contains(err.Error(), p) {
		t.Errorf("permission: %v, want not supported naming %s and root", err, p)
	}
	other := errors.New("parse: junk")
	if err := raplReadError(p, other); !errors.Is(err, other) {
		t.Errorf("other error rewritten: %v", err)
	}
	if os.Geteuid() == 0 {
		return
	}
	roots := raplTree(t, raplZoneFixture{"intel-rapl:0", "package-0", raplRange, 1})
	if err := os.Chmod(roots.SysPath("class", "powercap", "intel-rapl:0", "energy_uj"), 0); err != nil {
		t.Fatal(err)
	}
	if _, err := NewRAPLCollector(roots); !errors.Is(err, ErrNotSupported) || !strings.Contains(err.Error(), "root only") {
		t.Errorf("unreadable energy_uj: %v, want not supported (root only)", err)
	}
}

func TestRAPLProbeAvailable(t *testing.T) {
	roots := raplTree(t,
		raplZoneFixture{"intel-rapl:0", "package-0", raplRange, 1},
		raplZoneFixture{"intel-rapl:0:0", "core", raplRange, 1},
	)
	st := probeRAPL(roots)
	if !st.Available || st.Reason != "" || !strings.Contains(st.Detail, "package-0, core") {
		t.Errorf("probe = %+v, want available listing package-0, core", st)
	}
}
