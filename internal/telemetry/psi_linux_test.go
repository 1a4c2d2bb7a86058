package telemetry

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sculpt/internal/host"
)

func psiFixtureRoots(tree string) host.Roots {
	return host.Roots{Proc: filepath.Join("testdata", "psi", tree, "proc")}
}

func TestParsePressure(t *testing.T) {
	cases := []struct {
		in         string
		some, full uint64
		hasFull    bool
		bad        bool
	}{
		{in: "some avg10=0.00 avg60=0.00 avg300=0.00 total=12\nfull avg10=0.00 avg60=0.00 avg300=0.00 total=5\n", some: 12, full: 5, hasFull: true},
		{in: "some avg10=1.50 avg60=0.00 avg300=0.00 total=99\n", some: 99},
		{in: "some avg10=0.00 total=x\n", bad: true},
		{in: "some avg10=0.00\n", bad: true},
		{in: "half avg10=0.00 total=1\n", bad: true},
		{in: "some total\n", bad: true},
	}
	for _, c := range cases {
		p, err := parsePressure([]byte(c.in))
		if c.bad {
			if err == nil {
				t.Errorf("parsePressure(%q) succeeded", c.in)
			}
			continue
		}
		if err != nil || !p.hasSome || p.someTotalUsec != c.some || p.hasFull != c.hasFull || p.fullTotalUsec != c.full {
			t.Errorf("parsePressure(%q) = %+v, %v", c.in, p, err)
		}
	}
}

func TestPSICollectorFixture(t *testing.T) {
	s := NewSample(time.Now(), nil)
	if err := NewPSICollector(psiFixtureRoots("ok")).Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	sys := s.Groups[SystemID]
	wantVal(t, "system", sys, PSICPUSomeSec, 3)
	wantVal(t, "system", sys, PSIMemSomeSec, 2)
	wantVal(t, "system", sys, PSIIOSomeSec, 0.5)
}

func TestPSICollectorMalformedNamesFile(t *testing.T) {
	s := NewSample(time.Now(), nil)
	err := NewPSICollector(psiFixtureRoots("old")).Collect(context.Background(), s)
	if err == nil || !strings.Contains(err.Error(), filepath.Join("pressure", "io")) {
		t.Fatalf("err = %v, want one naming pressure/io", err)
	}
	sys := s.Groups[SystemID]
	wantVal(t, "system", sys, PSICPUSomeSec, 1) // no "full" line: still fine
	wantVal(t, "system", sys, PSIMemSomeSec, 2)
	wantNo(t, "system", sys, PSIIOSomeSec)
}

func TestPSICollectorNotSupportedOnce(t *testing.T) {
	c := NewPSICollector(psiFixtureRoots("none"))
	s := NewSample(time.Now(), nil)
	if err := c.Collect(context.Background(), s); !errors.Is(err, ErrNotSupported) {
		t.Fatalf("first Collect: %v, want not supported", err)
	}
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatalf("second Collect: %v, want quiet", err)
	}
	if n := s.Groups[SystemID].Len(); n != 0 {
		t.Errorf("%d metrics without PSI, want none", n)
	}
}

func TestPSICollectorReal(t *testing.T) {
	if !probeStatus(host.DefaultRoots(), SourcePSI).Available {
		t.Skip("kernel without PSI: " + probeStatus(host.DefaultRoots(), SourcePSI).Reason)
	}
	s := NewSample(time.Now(), nil)
	if err := NewPSICollector(host.DefaultRoots()).Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	for _, m := range []Metric{PSICPUSomeSec, PSIMemSomeSec, PSIIOSomeSec} {
		if !s.Groups[SystemID].Has(m) {
			t.Errorf("%s absent on a PSI kernel", m)
		}
	}
}
