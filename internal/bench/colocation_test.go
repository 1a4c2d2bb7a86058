package bench

import (
	"bufio"
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeMemcached answers memcached's text protocol (get and set) on
// 127.0.0.1; it waits stall before its first reply on every connection.
type fakeMemcached struct {
	l     net.Listener
	stall time.Duration
	gets  atomic.Int64
	sets  atomic.Int64
	wg    sync.WaitGroup
}

func startFakeMemcached(t *testing.T, stall time.Duration) *fakeMemcached {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeMemcached{l: l, stall: stall}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		_ = l.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeMemcached) serve(c net.Conn) {
	defer func() { _ = c.Close() }()
	r, w := bufio.NewReader(c), bufio.NewWriter(c)
	first := true
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		fields := strings.Fields(line)
		if len(fields) < 2 {
			return
		}
		if first && f.stall > 0 {
			time.Sleep(f.stall)
		}
		first = false
		switch fields[0] {
		case "get":
			f.gets.Add(1)
			_, _ = w.WriteString("VALUE " + fields[1] + " 0 3\r\nabc\r\nEND\r\n") // Flush reports it
		case "set":
			n, _ := strconv.Atoi(fields[4])
			if _, err := r.Discard(n + 2); err != nil {
				return
			}
			f.sets.Add(1)
			if fields[len(fields)-1] != "noreply" {
				_, _ = w.WriteString("STORED\r\n") // Flush reports it
			}
		}
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// TestMemcacheLoadOpenLoop checks that the client keeps its schedule when
// the server stalls (open loop): every request scheduled in the window is
// sent and measured, and the stall shows as latency counted from the
// scheduled send time.
func TestMemcacheLoadOpenLoop(t *testing.T) {
	const stall = 300 * time.Millisecond
	srv := startFakeMemcached(t, stall)
	m := memcacheLoad{Addr: srv.l.Addr().String(), Rate: 1000, Conns: 2, SetFrac: 0.1, Seed: 1}
	res, err := m.Run(context.Background(), 0, time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// 1000 req/s for 1 s over 2 connections: 500 scheduled on each.
	if res.Requests != 1000 || res.Errors != 0 {
		t.Errorf("requests %d, errors %d; want 1000 and 0", res.Requests, res.Errors)
	}
	if got := srv.gets.Load() + srv.sets.Load(); got != 1000 {
		t.Errorf("server saw %d requests, want 1000", got)
	}
	if sets := srv.sets.Load(); sets < 50 || sets > 200 {
		t.Errorf("%d sets of 1000 requests, want about 10%%", sets)
	}
	// The first 5 requests of each connection were scheduled within 10 ms
	// of the start and all waited for the stall: the top 1% is at least
	// the stall minus 10 ms.
	if res.P99 < stall-10*time.Millisecond {
		t.Errorf("p99 %v with a %v stall at the start, want at least %v", res.P99, stall, stall-10*time.Millisecond)
	}
	if res.Throughput != 1000 {
		t.Errorf("throughput %v, want 1000 replies/s", res.Throughput)
	}
}

// TestMemcacheLoadWarmupNotMeasured checks that requests scheduled during
// the warm-up are sent but not measured.
func TestMemcacheLoadWarmupNotMeasured(t *testing.T) {
	srv := startFakeMemcached(t, 0)
	m := memcacheLoad{Addr: srv.l.Addr().String(), Rate: 400, Conns: 2, Seed: 2}
	if err := m.Preload(context.Background()); err != nil {
		t.Fatal(err)
	}
	preloaded := srv.sets.Load() + srv.gets.Load()
	if preloaded != 1001 { // 1000 sets and the confirming get
		t.Errorf("preload sent %d requests, want 1001", preloaded)
	}
	res, err := m.Run(context.Background(), 500*time.Millisecond, 500*time.Millisecond, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 200 {
		t.Errorf("measured %d requests, want the 200 of the window", res.Requests)
	}
	if got := srv.sets.Load() + srv.gets.Load() - preloaded; got != 400 {
		t.Errorf("server saw %d requests, want 400 (warm-up and window)", got)
	}
}

// TestMemcacheLoadLost counts replies that never come as errors.
func TestMemcacheLoadLost(t *testing.T) {
	// A server that reads and never answers.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() { _ = c.Close() }()
				buf := make([]byte, 4096)
				for {
					if _, err := c.Read(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	m := memcacheLoad{Addr: l.Addr().String(), Rate: 100, Conns: 1}
	res, err := m.Run(context.Background(), 0, 300*time.Millisecond, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 0 || res.Errors != 30 {
		t.Errorf("requests %d, errors %d; want 0 and 30 lost", res.Requests, res.Errors)
	}
}

func TestMemcacheLoadCancel(t *testing.T) {
	srv := startFakeMemcached(t, 0)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(200*time.Millisecond, cancel)
	m := memcacheLoad{Addr: srv.l.Addr().String(), Rate: 100}
	if _, err := m.Run(ctx, 0, time.Hour, time.Second); !errors.Is(err, context.Canceled) {
		t.Errorf("Run after cancel: %v, want context.Canceled", err)
	}
}

func TestCompareCases(t *testing.T) {
	mk := func(name string, p99, cpu float64) ColocationCase {
		runs := []ColocationRun{{P99Micros: p99, Antagonists: map[string]float64{"cpu": cpu}}}
		if name == CaseAlone {
			runs[0].Antagonists = nil
		}
		return summarizeCase(name, "", "", runs)
	}
	sr := ColocationService{Cases: []ColocationCase{
		mk(CaseAlone, 100, 0),
		mk(CaseDefault, 1000, 800),
		mk("static:pin", 300, 400),
		mk("static:idle", 200, 300),
		mk(CaseSculpt, 120, 500),
	}}
	// A case without successful runs takes no part.
	sr.Cases = append(sr.Cases, summarizeCase("static:nice", "", "", []ColocationRun{{Err: "boom", P99Micros: 1}}))
	compareCases(&sr)
	if sr.BestStatic != "static:idle" {
		t.Errorf("best static %q, want static:idle", sr.BestStatic)
	}
	byName := map[string]ColocationCase{}
	for _, c := range sr.Cases {
		byName[c.Name] = c
	}
	s := byName[CaseSculpt]
	if s.P99VsAlone != 1.2 || s.P99VsBestStatic != 0.6 || deref(s.AntagonistsVsDefaultMin) != 0.625 {
		t.Errorf("sculpt ratios: vs alone %v, vs best static %v, antagonists %v; want 1.2, 0.6, 0.625",
			s.P99VsAlone, s.P99VsBestStatic, deref(s.AntagonistsVsDefaultMin))
	}
	if d := byName[CaseDefault]; d.P99VsAlone != 10 || deref(d.AntagonistsVsDefaultMin) != 1 {
		t.Errorf("default: vs alone %v, antagonists %v; want 10, 1", d.P99VsAlone, deref(d.AntagonistsVsDefaultMin))
	}
	want := ColocationTargets{P99WithinAlone: true, P99BelowBestStatic: true, AntagonistsHalf: true}
	if sr.Targets == nil || *sr.Targets != want {
		t.Errorf("targets %+v, want %+v", sr.Targets, want)
	}
	if n := byName["static:nice"]; n.P99Micros.N != 0 || n.P99VsAlone != 0 {
		t.Errorf("failed case summarized: %+v", n)
	}

	if a := byName[CaseAlone]; a.AntagonistsVsDefaultMin != nil {
		t.Errorf("alone: antagonists/default %v, want none", *a.AntagonistsVsDefaultMin)
	}

	// Antagonists starved to nothing: the ratio is there, 0, and that
	// target is missed.
	sr.Cases[4] = mk(CaseSculpt, 120, 0)
	compareCases(&sr)
	if m := sr.Cases[4].AntagonistsVsDefaultMin; m == nil || *m != 0 {
		t.Errorf("starved antagonists: antagonists/default %v, want 0", m)
	}
	if sr.Targets.AntagonistsHalf {
		t.Errorf("starved antagonists pass the 0.5x target")
	}
}

func deref(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

func TestSpreadOf(t *testing.T) {
	if got := spreadOf([]float64{5, 1, 3}); got != (Spread{Median: 3, Min: 1, Max: 5, N: 3}) {
		t.Errorf("odd: %+v", got)
	}
	if got := spreadOf([]float64{4, 1, 2, 3}); got != (Spread{Median: 2.5, Min: 1, Max: 4, N: 4}) {
		t.Errorf("even: %+v", got)
	}
}

func TestStaticSettingWrap(t *testing.T) {
	settings := staticSettings(2)
	get := func(name string) staticSetting {
		i := slices.IndexFunc(settings, func(s staticSetting) bool { return s.name == name })
		if i < 0 {
			t.Fatalf("no setting %s", name)
		}
		return settings[i]
	}
	argv := []string{"stress-ng", "--cpu", "2"}
	for _, tc := range []struct {
		setting, role, cgroup string
		want                  string
	}{
		{"pin", "service", "", "taskset -c 1 memcached"},
		{"pin", "antagonist", "", "taskset -c 0 stress-ng --cpu 2"},
		{"nice", "service", "", "memcached"},
		{"nice", "antagonist", "", "nice -n 19 stress-ng --cpu 2"},
		{"idle", "antagonist", "", "chrt -i 0 stress-ng --cpu 2"},
		{"pin+idle", "antagonist", "", "taskset -c 0 chrt -i 0 stress-ng --cpu 2"},
		{"shares", "antagonist", "/cg/a", `/bin/sh -c for d in $0; do echo $$ > "$d/cgroup.procs" || exit 1; done; exec "$@" /cg/a stress-ng --cpu 2`},
	} {
		in := argv
		if tc.role == "service" {
			in = []string{"memcached"}
		}
		if got := strings.Join(get(tc.setting).wrap(tc.role, in, dirs(tc.cgroup)...), " "); got != tc.want {
			t.Errorf("%s %s: %q, want %q", tc.setting, tc.role, got, tc.want)
		}
	}
	// With more CPUs the service gets the last one, the antagonists the rest.
	if got := strings.Join(staticSettings(8)[0].wrap("antagonist", argv), " "); got != "taskset -c 0-6 stress-ng --cpu 2" {
		t.Errorf("8 CPUs: %q", got)
	}
	if len(settings) != len(StaticSettings) {
		t.Errorf("%d settings, %d names", len(settings), len(StaticSettings))
	}
	for i, s := range settings {
		if s.name != StaticSettings[i] {
			t.Errorf("setting %d is %s, StaticSettings says %s", i, s.name, StaticSettings[i])
		}
	}
}

func TestColocationSetupRejects(t *testing.T) {
	for _, tc := range []struct {
		opts ColocationOptions
		want string
	}{
		{ColocationOptions{Services: []string{"redis"}}, `service "redis"`},
		{ColocationOptions{Antagonists: []string{"gpu"}}, `antagonist "gpu"`},
		{ColocationOptions{Cases: []string{"best"}}, `case "best"`},
		{ColocationOptions{Static: []string{"rt"}}, `static setting "rt"`},
	} {
		_, _, err := colocationSetup(tc.opts)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want %q", tc.opts, err, tc.want)
		}
	}
}
