package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"sculpt/internal/host"
)

// ColocationOptions configure Colocation. The zero value is the default.
type ColocationOptions struct {
	Roots host.Roots // the zero value means host.DefaultRoots()
	// Sculpt is the sculpt binary the sculpt case runs ("run --mode apply");
	// empty leaves that case unavailable.
	Sculpt string
	// SculptInterval is the agent's --interval; default 1 s.
	SculptInterval time.Duration
	// SculptRules, if set, is the agent's --rules file (an absolute path);
	// empty runs it with its embedded rules.
	SculptRules string
	// Services are the latency-critical services: "memcached", "nginx";
	// default both.
	Services []string
	// Antagonists are the kinds of stress-ng antagonist run next to the
	// service: "cpu", "cache", "vm", "io"; default all.
	Antagonists []string
	// Cases are "alone", "default", "static" (each of Static) and "sculpt";
	// default all.
	Cases []string
	// Static are the static hand settings tried (StaticSettings); default all.
	Static []string
	// Runs is the number of runs of every case, interleaved; default 5.
	Runs int
	// Duration is the measured part of each run; default 10 s.
	Duration time.Duration
	// Warmup is the load offered before measuring; default 2 s.
	Warmup time.Duration
	// Settle replaces Warmup in the sculpt case: the time the agent has to
	// see the load and act before the measurement; default 6 s.
	Settle time.Duration
	// Rate is the open-loop clients' offered load in requests per second
	// (memcached's, and nginx's with NginxClient "open"); default 5000.
	Rate float64
	// NginxClient drives nginx: "open" (default), sculpt's open-loop HTTP
	// client at Rate over 4 connections, or "wrk" (closed loop, 8
	// connections), which then must be installed.
	NginxClient string
	// TempDir is where configurations and outputs go, in a directory
	// removed at the end; default os.TempDir().
	TempDir string
	// KeepDir, if set, is used instead and kept: every program's output
	// (the agent's log and audit log included), one directory per service,
	// case and run.
	KeepDir string
	// OnRun, if set, is called before the first run (done 0) and after every
	// run of a case (one found unavailable included) with the runs done and
	// the runs in all.
	OnRun func(done, total int)

	started  func(pid int) // tests: called with every process group started
	grouping string        // the grouping cgroup hierarchy (groupingHierarchy)
	slo      bool          // ColocationSLO: per-interval figures, CPU accounting
}

// NginxClient values.
const (
	NginxClientOpen = "open"
	NginxClientWrk  = "wrk"
)

// Case names.
const (
	CaseAlone   = "alone"
	CaseDefault = "default"
	CaseStatic  = "static"
	CaseSculpt  = "sculpt"
)

// Spread is the median and range of a figure over runs.
type Spread struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// ColocationRun is one run of one case.
type ColocationRun struct {
	Run        int     `json:"run"`
	LoadAvg1   float64 `json:"loadavg1"` // 1-minute load average when the run started
	P50Micros  float64 `json:"p50_us"`
	P99Micros  float64 `json:"p99_us"`
	Throughput float64 `json:"requests_per_sec"`
	Requests   int     `json:"requests"`
	Errors     int     `json:"errors"`
	// Antagonists are each antagonist's stress-ng bogo ops per second (real
	// time) over its whole life in the run.
	Antagonists map[string]float64 `json:"antagonist_ops_per_sec,omitempty"`
	Err         string             `json:"error,omitempty"`
	Note        string             `json:"note,omitempty"`
}

// ColocationCase is every run of one case and their summary.
type ColocationCase struct {
	Name        string            `json:"name"` // alone, default, static:<setting>, sculpt
	Setting     string            `json:"setting"`
	Unavailable string            `json:"unavailable,omitempty"`
	Runs        []ColocationRun   `json:"runs"`
	P50Micros   Spread            `json:"p50_us"`
	P99Micros   Spread            `json:"p99_us"`
	Throughput  Spread            `json:"requests_per_sec"`
	Antagonists map[string]Spread `json:"antagonist_ops_per_sec,omitempty"`
	// Ratios of medians: the service's p99 over its p99 alone and over the
	// best static setting's; each antagonist's throughput over its
	// throughput under the Linux default, and the least of those (absent
	// without antagonists or a default case to compare with).
	P99VsAlone              float64            `json:"p99_vs_alone,omitempty"`
	P99VsBestStatic         float64            `json:"p99_vs_best_static,omitempty"`
	AntagonistsVsDefault    map[string]float64 `json:"antagonists_vs_default,omitempty"`
	AntagonistsVsDefaultMin *float64           `json:"antagonists_vs_default_min,omitempty"`
}

// ColocationTargets says whether the sculpt case met issue 4's targets.
type ColocationTargets struct {
	P99WithinAlone     bool `json:"p99_within_1.25x_alone"`
	P99BelowBestStatic bool `json:"p99_below_best_static"`
	AntagonistsHalf    bool `json:"antagonists_at_least_0.5x_default"`
}

// ColocationService is the result for one latency-critical service.
type ColocationService struct {
	Service    string             `json:"service"`
	Load       string             `json:"load"` // the client and how it offers load
	Cases      []ColocationCase   `json:"cases"`
	BestStatic string             `json:"best_static,omitempty"` // case name with the lowest median p99
	Targets    *ColocationTargets `json:"sculpt_targets,omitempty"`
}

// ColocationResult is the outcome of Colocation.
type ColocationResult struct {
	Machine       Machine           `json:"machine"`
	LoadAvgBefore [3]float64        `json:"loadavg_before"`
	Runs          int               `json:"runs"`
	DurationSec   float64           `json:"duration_sec"`
	Antagonists   map[string]string `json:"antagonists"` // kind -> stress-ng arguments
	// Grouping is the cgroup hierarchy in which the service and every
	// antagonist had a cgroup of its own, in every case ("" if none).
	Grouping string              `json:"grouping_hierarchy"`
	Services []ColocationService `json:"services"`
}

// MissingProgramsError says which programs the benchmark needs and lacks.
type MissingProgramsError struct{ Programs []string }

func (e *MissingProgramsError) Error() string {
	return "co-location benchmark: missing " + strings.Join(e.Programs, ", ") +
		" (install with scripts/bench-deps.sh, i.e. apt-get install memcached nginx wrk stress-ng)"
}

// colocCase is a case to run.
type colocCase struct {
	name    string
	setting staticSetting // zero for alone, default and sculpt
	alone   bool
	sculpt  bool
	// ColocationSLO: observe runs "sculpt run --mode observe" on the
	// service for its server-side p99; sculptArgs are added to the sculpt
	// case's command line (--agent, --config, --experience).
	observe    bool
	sculptArgs []string
}

func (c colocCase) describe(opts ColocationOptions) string {
	switch {
	case c.alone:
		return "the service alone"
	case c.sculpt:
		rules := "its embedded rules"
		if opts.SculptRules != "" {
			rules = "--rules " + opts.SculptRules
		}
		extra := ""
		if len(c.sculptArgs) > 0 {
			extra = " " + strings.Join(c.sculptArgs, " ")
		}
		return fmt.Sprintf("sculpt run --mode apply --interval %v%s, %s, no labels or hints, %v to settle", opts.SculptInterval, extra, rules, opts.Settle)
	case c.setting.name != "":
		return c.setting.describe()
	}
	return "Linux default (no settings)"
}

// antagonistArgs are the stress-ng arguments of each antagonist kind.
func antagonistArgs(kind string, ncpu int, tmp string) ([]string, string, error) {
	switch kind {
	case "cpu":
		return []string{"--cpu", strconv.Itoa(ncpu)}, "cpu", nil
	case "cache":
		return []string{"--cache", "1"}, "cache", nil
	case "vm":
		return []string{"--vm", "1", "--vm-bytes", "256m"}, "vm", nil
	case "io":
		return []string{"--hdd", "1", "--hdd-bytes", "64m", "--temp-path", tmp}, "hdd", nil
	}
	return nil, "", fmt.Errorf("antagonist %q: want cpu, cache, vm or io", kind)
}

// Colocation runs the co-location benchmark: each service alone, next to
// stress-ng antagonists under the Linux default, under each static hand
// setting and under sculpt in apply mode, Runs times with the cases
// interleaved, and reports latency, throughput and ratios. It writes progress
// lines to progress. Every process it starts is killed and reaped, and every
// cgroup it made removed, before it returns, also on error or cancellation.
func Colocation(ctx context.Context, opts ColocationOptions, progress io.Writer) (*ColocationResult, error) {
	opts, cases, err := colocationSetup(opts)
	if err != nil {
		return nil, err
	}
	dir := opts.KeepDir
	if dir == "" {
		dir, err = os.MkdirTemp(opts.TempDir, "sculpt-bench-colocation-")
		if err != nil {
			return nil, fmt.Errorf("co-location benchmark: %w", err)
		}
		defer func() { _ = os.RemoveAll(dir) }() // best effort: a leftover temp dir changes no result
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("co-location benchmark: %w", err)
	}
	ncpu := runtime.NumCPU()
	res := &ColocationResult{
		Machine: describeMachine(opts.Roots), LoadAvgBefore: loadAvg(opts.Roots),
		Runs: opts.Runs, DurationSec: opts.Duration.Seconds(), Antagonists: map[string]string{},
		Grouping: opts.grouping,
	}
	for _, k := range opts.Antagonists {
		args, _, _ := antagonistArgs(k, ncpu, "<tmp>")
		res.Antagonists[k] = strings.Join(args, " ")
	}
	fmt.Fprintf(progress, "co-location: %d CPUs, load average %.2f %.2f %.2f before starting; %d runs of %d cases x %d services, %v each\n",
		ncpu, res.LoadAvgBefore[0], res.LoadAvgBefore[1], res.LoadAvgBefore[2], opts.Runs, len(cases), len(opts.Services), opts.Duration)

	type key struct{ svc, cs string }
	runs := map[key][]ColocationRun{}
	unavailable := map[key]string{}
	if opts.Sculpt == "" {
		for _, s := range opts.Services {
			unavailable[key{s, CaseSculpt}] = "unavailable: no sculpt binary given"
		}
	}
	done, total := 0, opts.Runs*len(opts.Services)*len(cases)
	step := func() {
		done++
		if opts.OnRun != nil {
			opts.OnRun(done, total)
		}
	}
	if opts.OnRun != nil {
		opts.OnRun(0, total)
	}
	for r := 1; r <= opts.Runs; r++ {
		for _, svc := range opts.Services {
			for i := range cases {
				c := cases[(i+r-1)%len(cases)]
				k := key{svc, c.name}
				if unavailable[k] != "" {
					step()
					continue
				}
				fmt.Fprintf(progress, "[run %d/%d] %s, %s: %s\n", r, opts.Runs, svc, c.name, c.describe(opts))
				h := &colocRun{opts: opts, svc: svc, c: c, run: r, progress: progress, dir: filepath.Join(dir, fmt.Sprintf("%s-%s-%d", svc, strings.ReplaceAll(c.name, ":", "-"), r))}
				run, unavail, err := h.do(ctx)
				if err != nil {
					return nil, err
				}
				if unavail != "" {
					fmt.Fprintf(progress, "  %s\n", unavail)
					unavailable[k] = unavail
					step()
					continue
				}
				if run.Err != "" {
					fmt.Fprintf(progress, "  run failed: %s\n", run.Err)
				} else {
					fmt.Fprintf(progress, "  p50 %.0f µs, p99 %.0f µs, %.0f req/s, %d errors%s\n",
						run.P50Micros, run.P99Micros, run.Throughput, run.Errors, formatAntagonists(run.Antagonists))
				}
				runs[k] = append(runs[k], run)
				step()
			}
		}
	}

	for _, svc := range opts.Services {
		sr := ColocationService{Service: svc, Load: loadDescription(svc, opts)}
		for _, c := range cases {
			k := key{svc, c.name}
			sr.Cases = append(sr.Cases, summarizeCase(c.name, c.describe(opts), unavailable[k], runs[k]))
		}
		compareCases(&sr)
		res.Services = append(res.Services, sr)
	}
	return res, nil
}

func loadDescription(svc string, opts ColocationOptions) string {
	if svc == "memcached" {
		return fmt.Sprintf("sculpt's open-loop memcached client (text protocol, 90%% get / 10%% set, 1000 keys, 100-byte values), %.0f req/s offered over 4 connections; latency from each request's scheduled send time", opts.Rate)
	}
	if opts.NginxClient == NginxClientWrk {
		return "wrk -t1 -c8 --latency, closed loop (Debian's wrk has no fixed rate), GET of a 1 KiB static file"
	}
	return fmt.Sprintf("sculpt's open-loop HTTP/1.1 client (pipelined keep-alive GETs of a 1 KiB static file), %.0f req/s offered over 4 connections; latency from each request's scheduled send time", opts.Rate)
}

func formatAntagonists(m map[string]float64) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(mapKeys(m)) {
		parts = append(parts, fmt.Sprintf("%s %.0f", k, m[k]))
	}
	return "; antagonists (bogo ops/s): " + strings.Join(parts, ", ")
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// colocationSetup fills in defaults, checks the options and the programs the
// benchmark needs, and returns the cases to run.
func colocationSetup(opts ColocationOptions) (ColocationOptions, []colocCase, error) {
	if opts.Roots == (host.Roots{}) {
		opts.Roots = host.DefaultRoots()
	}
	if opts.SculptInterval <= 0 {
		opts.SculptInterval = time.Second
	}
	if len(opts.Services) == 0 {
		opts.Services = []string{"memcached", "nginx"}
	}
	if len(opts.Antagonists) == 0 {
		opts.Antagonists = []string{"cpu", "cache", "vm", "io"}
	}
	if len(opts.Cases) == 0 {
		opts.Cases = []string{CaseAlone, CaseDefault, CaseStatic, CaseSculpt}
	}
	if len(opts.Static) == 0 {
		opts.Static = StaticSettings
	}
	if opts.Runs <= 0 {
		opts.Runs = 5
	}
	if opts.Duration <= 0 {
		opts.Duration = 10 * time.Second
	}
	if opts.Warmup <= 0 {
		opts.Warmup = 2 * time.Second
	}
	if opts.Settle <= 0 {
		opts.Settle = 6 * time.Second
	}
	if opts.Rate <= 0 {
		opts.Rate = 5000
	}
	switch opts.NginxClient {
	case "":
		opts.NginxClient = NginxClientOpen
	case NginxClientOpen, NginxClientWrk:
	default:
		return opts, nil, fmt.Errorf("nginx client %q: want %s or %s", opts.NginxClient, NginxClientOpen, NginxClientWrk)
	}
	need := map[string]bool{"/bin/sh": true}
	for _, s := range opts.Services {
		switch s {
		case "memcached":
			need["memcached"] = true
		case "nginx":
			need["nginx"] = true
			if opts.NginxClient == NginxClientWrk {
				need["wrk"] = true
			}
		default:
			return opts, nil, fmt.Errorf("service %q: want memcached or nginx", s)
		}
	}
	for _, k := range opts.Antagonists {
		if _, _, err := antagonistArgs(k, 1, ""); err != nil {
			return opts, nil, err
		}
	}
	ncpu := runtime.NumCPU()
	settings := staticSettings(ncpu)
	var cases []colocCase
	for _, name := range opts.Cases {
		switch name {
		case CaseAlone:
			cases = append(cases, colocCase{name: CaseAlone, alone: true})
		case CaseDefault:
			cases = append(cases, colocCase{name: CaseDefault})
		case CaseSculpt:
			cases = append(cases, colocCase{name: CaseSculpt, sculpt: true})
		case CaseStatic:
			for _, sn := range opts.Static {
				i := slices.IndexFunc(settings, func(s staticSetting) bool { return s.name == sn })
				if i < 0 {
					return opts, nil, fmt.Errorf("static setting %q: want one of %s", sn, strings.Join(StaticSettings, ", "))
				}
				if settings[i].serviceCPUs != "" && ncpu < 2 {
					return opts, nil, fmt.Errorf("static setting %q: needs at least 2 CPUs, have %d", sn, ncpu)
				}
				for _, p := range settings[i].programs() {
					need[p] = true
				}
				cases = append(cases, colocCase{name: CaseStatic + ":" + sn, setting: settings[i]})
			}
		default:
			return opts, nil, fmt.Errorf("case %q: want alone, default, static or sculpt", name)
		}
		if name != CaseAlone {
			need["stress-ng"] = true
		}
	}
	opts.grouping = groupingHierarchy(opts.Roots.Cgroup)
	var missing []string
	for _, p := range slices.Sorted(mapKeys(need)) {
		if _, err := exec.LookPath(p); err != nil {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		return opts, nil, &MissingProgramsError{Programs: missing}
	}
	return opts, cases, nil
}

// colocRun is one run of one case for one service.
type colocRun struct {
	opts     ColocationOptions
	svc      string
	c        colocCase
	run      int
	progress io.Writer
	dir      string
	procs    []*benchProc
	cgroup   string // base of the cpu cgroups made for the run, if any
	group    string // base of the grouping cgroups made for the run, if any
	groups   int
	acct     string // base of the cpuacct cgroups made for the run (slo), if any
	slo      *sloRaw
	svcPID   int
}

// groupDir makes a cgroup of its own for the next process under the
// grouping hierarchy; "" when there is none.
func (h *colocRun) groupDir() (string, error) {
	if h.opts.grouping == "" {
		return "", nil
	}
	if h.group == "" {
		h.group = filepath.Join(h.opts.grouping, "sculpt-bench-"+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(h.run))
	}
	h.groups++
	d := filepath.Join(h.group, "w"+strconv.Itoa(h.groups))
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("co-location benchmark: make cgroup: %w", err)
	}
	return d, nil
}

// dirs drops empty names.
func dirs(ds ...string) []string {
	return slices.DeleteFunc(ds, func(d string) bool { return d == "" })
}

func (h *colocRun) start(name string, argv []string) (*benchProc, error) {
	p, err := startProc(name, argv, h.dir, filepath.Join(h.dir, name+".out"))
	if err != nil {
		return nil, err
	}
	h.procs = append(h.procs, p)
	if h.opts.started != nil {
		h.opts.started(p.pid())
	}
	return p, nil
}

// cleanup kills every process group the run started and removes its
// cgroups.
func (h *colocRun) cleanup() error {
	var errs []error
	for _, p := range h.procs {
		errs = append(errs, p.kill())
	}
	h.procs = nil
	for _, base := range dirs(h.cgroup, h.group, h.acct) {
		errs = append(errs, removeCgroups(base))
	}
	return errors.Join(errs...)
}

// do runs the case once. A failure of the run itself (a program that
// misbehaved) is reported in the run's Err; unavailable is set when the sculpt
// agent exits before the measurement (e.g. because apply mode is not
// there); err is for cancellation and for failures of the harness.
func (h *colocRun) do(ctx context.Context) (run ColocationRun, unavailable string, err error) {
	run = ColocationRun{Run: h.run, LoadAvg1: loadAvg(h.opts.Roots)[0]}
	if err := os.MkdirAll(h.dir, 0o755); err != nil {
		return run, "", fmt.Errorf("co-location benchmark: %w", err)
	}
	defer func() {
		if cerr := h.cleanup(); cerr != nil && err == nil {
			err = cerr
		}
	}()
	runErr, unavailable, err := h.measure(ctx, &run)
	if err != nil || unavailable != "" {
		return run, unavailable, err
	}
	if runErr != nil {
		if ctx.Err() != nil {
			return run, "", ctx.Err()
		}
		run.Err = runErr.Error()
	}
	return run, "", nil
}

func (h *colocRun) measure(ctx context.Context, run *ColocationRun) (runErr error, unavailable string, err error) {
	var svcCgroup, antCgroup string
	if h.c.setting.cgroupShares {
		h.cgroup = h.opts.Roots.CgroupPath("cpu", "sculpt-bench-"+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(h.run))
		svcCgroup, antCgroup, err = h.c.setting.makeShareCgroups(h.cgroup)
		if err != nil {
			return nil, "", err
		}
	} else if h.c.setting.antagonistQuota > 0 || h.c.setting.antagonistMinWeight {
		h.cgroup = h.opts.Roots.CgroupPath("cpu", "sculpt-bench-"+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(h.run))
		antCgroup, err = h.c.setting.makeQuotaCgroup(h.cgroup)
		if err != nil {
			return nil, "", err
		}
	}

	var agent *benchProc
	// startAgent starts the sculpt case's agent, on pids only if any.
	startAgent := func(pids []int) (unavailable string, err error) {
		argv := []string{h.opts.Sculpt, "run", "--mode", "apply", "--interval", h.opts.SculptInterval.String(),
			"--journal", filepath.Join(h.dir, "sculpt.journal")}
		if h.opts.SculptRules != "" {
			argv = append(argv, "--rules", h.opts.SculptRules)
		}
		argv = append(argv, h.c.sculptArgs...)
		for _, p := range pids {
			argv = append(argv, "--pid", strconv.Itoa(p))
		}
		if h.opts.KeepDir != "" {
			// Kept outputs hold the agent's reasons: which rule and genes
			// led to each decision (the service's too, which needs no action).
			argv = append(argv, "--audit", filepath.Join(h.dir, "sculpt.audit.jsonl"))
		}
		fmt.Fprintf(h.progress, "  starting %s\n", strings.Join(argv, " "))
		agent, err = h.start("sculpt", argv)
		if err != nil {
			return "", err
		}
		// An agent that cannot run apply mode exits at once.
		if err := agent.wait(ctx, 1500*time.Millisecond); err == nil {
			return "unavailable: " + lastBytes(agent.output(), 500), nil
		} else if ctx.Err() != nil {
			return "", ctx.Err()
		}
		return "", nil
	}
	// ColocationSLO starts the agent once the service and the antagonists
	// run, on their process trees only: on a shared machine it must not
	// rearrange anyone else's work.
	if h.c.sculpt && !h.opts.slo {
		if u, err := startAgent(nil); err != nil || u != "" {
			return nil, u, err
		}
	}

	port, err := freePort()
	if err != nil {
		return nil, "", err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	svcArgv, err := h.serviceArgv(port)
	if err != nil {
		return nil, "", err
	}
	fmt.Fprintf(h.progress, "  starting %s on %s\n", h.svc, addr)
	gd, err := h.groupDir()
	if err != nil {
		return nil, "", err
	}
	svc, err := h.start(h.svc, h.c.setting.wrap("service", svcArgv, dirs(svcCgroup, gd)...))
	if err != nil {
		return nil, "", err
	}
	if err := waitListening(ctx, addr, svc, 10*time.Second); err != nil {
		return err, "", ctx.Err()
	}
	h.svcPID = svc.pid()
	var observer *benchProc
	if h.c.observe {
		argv := []string{h.opts.Sculpt, "run", "--mode", "observe", "--json", "--interval", "1s", "--pid", strconv.Itoa(svc.pid())}
		fmt.Fprintf(h.progress, "  starting %s\n", strings.Join(argv, " "))
		if observer, err = h.start("sculpt-observe", argv); err != nil {
			return nil, "", err
		}
		if err := waitJSONLine(ctx, observer, 60*time.Second); err != nil {
			return err, "", ctx.Err()
		}
	}

	warm := h.opts.Warmup
	if h.c.sculpt {
		warm = h.opts.Settle
	}
	// The antagonists outlive the measured load by a little; their
	// throughput is over their whole life, the same span in every case.
	antTimeout := int(math.Ceil((warm + h.opts.Duration).Seconds())) + 2
	if h.c.sculpt && h.opts.slo {
		antTimeout += 2 // the agent starts after them
	}
	type antagonist struct {
		kind, stressor string
		p              *benchProc
	}
	var ants []antagonist
	if !h.c.alone {
		ncpu := runtime.NumCPU()
		fmt.Fprintf(h.progress, "  starting antagonists %s for %ds\n", strings.Join(h.opts.Antagonists, ","), antTimeout)
		for _, k := range h.opts.Antagonists {
			tmp := filepath.Join(h.dir, "stress-"+k)
			if err := os.MkdirAll(tmp, 0o755); err != nil {
				return nil, "", fmt.Errorf("co-location benchmark: %w", err)
			}
			args, stressor, _ := antagonistArgs(k, ncpu, tmp)
			argv := append([]string{"stress-ng"}, args...)
			argv = append(argv, "--timeout", strconv.Itoa(antTimeout), "--metrics-brief")
			gd, err := h.groupDir()
			if err != nil {
				return nil, "", err
			}
			ad, err := h.acctDir(k)
			if err != nil {
				return nil, "", err
			}
			p, err := h.start("stress-ng-"+k, h.c.setting.wrap("antagonist", argv, dirs(antCgroup, gd, ad)...))
			if err != nil {
				return nil, "", err
			}
			ants = append(ants, antagonist{k, stressor, p})
		}
	}

	if h.c.sculpt && h.opts.slo {
		pids := []int{svc.pid()}
		for _, a := range ants {
			pids = append(pids, a.p.pid())
		}
		if u, err := startAgent(pids); err != nil || u != "" {
			return nil, u, err
		}
		if err := waitJSONLine(ctx, agent, 60*time.Second); err != nil {
			return err, "", ctx.Err()
		}
	}
	fmt.Fprintf(h.progress, "  load for %v, measuring the last %v\n", warm+h.opts.Duration, h.opts.Duration)
	var win *sloWindow
	if h.opts.slo {
		win = h.startWindow(warm, observer, agent)
	}
	lr, err := h.load(ctx, addr, warm)
	if win != nil {
		win.end()
	}
	if err != nil {
		return err, "", ctx.Err()
	}
	if win != nil {
		if err := h.finishSLO(win, lr, observer, agent); err != nil {
			return err, "", nil
		}
	}
	run.P50Micros = float64(lr.P50) / 1e3
	run.P99Micros = float64(lr.P99) / 1e3
	run.Throughput = lr.Throughput
	run.Requests = lr.Requests
	run.Errors = lr.Errors

	if agent != nil && agent.exited() {
		return fmt.Errorf("sculpt exited during the measurement: %w: %s", agent.exitErr(), lastBytes(agent.output(), 500)), "", nil
	}
	if len(ants) > 0 {
		run.Antagonists = map[string]float64{}
	}
	for _, a := range ants {
		if err := a.p.wait(ctx, time.Duration(antTimeout+15)*time.Second); err != nil {
			return err, "", ctx.Err()
		}
		m, err := parseStressNGMetrics(a.p.output())
		if err != nil {
			return fmt.Errorf("antagonist %s: %w", a.kind, err), "", nil
		}
		ops, ok := m[a.stressor]
		if !ok {
			return fmt.Errorf("antagonist %s: no %q line in stress-ng's metrics: %s", a.kind, a.stressor, lastBytes(a.p.output(), 400)), "", nil
		}
		run.Antagonists[a.kind] = ops
	}
	if agent != nil {
		if err := agent.terminate(15 * time.Second); err != nil {
			run.Note = fmt.Sprintf("sculpt on SIGTERM: %v: %s", err, lastBytes(agent.output(), 300))
		}
	}
	return nil, "", nil
}

// serviceArgv writes the service's configuration (nginx) and returns its
// command line, listening on 127.0.0.1:port.
func (h *colocRun) serviceArgv(port int) ([]string, error) {
	switch h.svc {
	case "memcached":
		return []string{"memcached", "-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0",
			"-t", "2", "-m", "64", "-c", "1024", "-u", "root"}, nil
	case "nginx":
		www := filepath.Join(h.dir, "www")
		if err := os.MkdirAll(www, 0o755); err != nil {
			return nil, fmt.Errorf("nginx: %w", err)
		}
		page := strings.Repeat("sculpt co-location benchmark page\n", 31) // about 1 KiB
		if err := os.WriteFile(filepath.Join(www, "index.html"), []byte(page), 0o644); err != nil {
			return nil, fmt.Errorf("nginx: %w", err)
		}
		conf := filepath.Join(h.dir, "nginx.conf")
		if err := os.WriteFile(conf, []byte(nginxConfig(h.dir, port)), 0o644); err != nil {
			return nil, fmt.Errorf("nginx: %w", err)
		}
		return []string{"nginx", "-p", h.dir + "/", "-c", conf, "-e", filepath.Join(h.dir, "error.log")}, nil
	}
	return nil, fmt.Errorf("service %q: want memcached or nginx", h.svc)
}

// nginxConfig is a configuration of its own for the benchmark: in the
// foreground, one worker, 127.0.0.1 only, every path under dir.
func nginxConfig(dir string, port int) string {
	return fmt.Sprintf(`daemon off;
master_process on;
worker_processes 1;
user root;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/client_body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	keepalive_requests 10000000;
	server {
		listen 127.0.0.1:%[2]d;
		root %[1]s/www;
		location / { }
	}
}
`, dir, port)
}

// load offers the service its load for warm and then the measured duration.
func (h *colocRun) load(ctx context.Context, addr string, warm time.Duration) (loadResult, error) {
	switch h.svc {
	case "memcached":
		m := memcacheLoad{Addr: addr, Rate: h.opts.Rate, Conns: 4, SetFrac: 0.1, Seed: uint64(h.run)}
		if err := m.Preload(ctx); err != nil {
			return loadResult{}, err
		}
		return m.Run(ctx, warm, h.opts.Duration, 2*time.Second)
	case "nginx":
		if h.opts.NginxClient != NginxClientWrk {
			hl := httpLoad{Addr: addr, Path: "/index.html", Rate: h.opts.Rate, Conns: 4, Seed: uint64(h.run)}
			return hl.Run(ctx, warm, h.opts.Duration, 2*time.Second)
		}
		url := "http://" + addr + "/index.html"
		secs := func(d time.Duration) string { return strconv.Itoa(max(1, int(math.Round(d.Seconds())))) + "s" }
		if _, err := h.wrk(ctx, "wrk-warmup", []string{"wrk", "-t1", "-c8", "-d" + secs(warm), url}, warm); err != nil {
			return loadResult{}, err
		}
		out, err := h.wrk(ctx, "wrk", []string{"wrk", "-t1", "-c8", "-d" + secs(h.opts.Duration), "--latency", url}, h.opts.Duration)
		if err != nil {
			return loadResult{}, err
		}
		w, err := parseWrk(out)
		if err != nil {
			return loadResult{}, err
		}
		return loadResult{P50: w.P50, P99: w.P99, Throughput: w.RequestsSec, Requests: w.Requests, Errors: w.Errors}, nil
	}
	return loadResult{}, fmt.Errorf("service %q: want memcached or nginx", h.svc)
}

// wrk runs one wrk and returns its output.
func (h *colocRun) wrk(ctx context.Context, name string, argv []string, d time.Duration) ([]byte, error) {
	p, err := h.start(name, argv)
	if err != nil {
		return nil, err
	}
	if err := p.wait(ctx, d+15*time.Second); err != nil {
		_ = p.kill() // cleanup reports a group that stays
		return nil, err
	}
	if p.waitErr != nil {
		return nil, fmt.Errorf("%s: %w: %s", strings.Join(argv, " "), p.waitErr, lastBytes(p.output(), 400))
	}
	return p.output(), nil
}

// loadAvg reads the load averages from /proc/loadavg; zeros if unreadable.
func loadAvg(roots host.Roots) [3]float64 {
	var la [3]float64
	b, err := os.ReadFile(roots.ProcPath("loadavg"))
	if err != nil {
		return la
	}
	f := strings.Fields(string(b))
	for i := 0; i < 3 && i < len(f); i++ {
		la[i], _ = strconv.ParseFloat(f[i], 64)
	}
	return la
}

// spreadOf is the median, minimum and maximum of xs.
func spreadOf(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{Median: med, Min: s[0], Max: s[len(s)-1], N: len(s)}
}

// summarizeCase summarizes the successful runs of a case.
func summarizeCase(name, setting, unavailable string, runs []ColocationRun) ColocationCase {
	if runs == nil {
		runs = []ColocationRun{} // "runs": [] in JSON, not null
	}
	c := ColocationCase{Name: name, Setting: setting, Unavailable: unavailable, Runs: runs}
	var p50, p99, tput []float64
	ants := map[string][]float64{}
	for _, r := range runs {
		if r.Err != "" {
			continue
		}
		p50 = append(p50, r.P50Micros)
		p99 = append(p99, r.P99Micros)
		tput = append(tput, r.Throughput)
		for k, v := range r.Antagonists {
			ants[k] = append(ants[k], v)
		}
	}
	c.P50Micros, c.P99Micros, c.Throughput = spreadOf(p50), spreadOf(p99), spreadOf(tput)
	if len(ants) > 0 {
		c.Antagonists = map[string]Spread{}
		for k, v := range ants {
			c.Antagonists[k] = spreadOf(v)
		}
	}
	return c
}

// compareCases picks the best static setting (lowest median p99) and fills
// in every case's ratios against the alone, best static and default cases,
// and the sculpt case's targets.
func compareCases(sr *ColocationService) {
	find := func(name string) *ColocationCase {
		for i := range sr.Cases {
			if sr.Cases[i].Name == name && sr.Cases[i].P99Micros.N > 0 {
				return &sr.Cases[i]
			}
		}
		return nil
	}
	var best *ColocationCase
	for i := range sr.Cases {
		c := &sr.Cases[i]
		if strings.HasPrefix(c.Name, CaseStatic+":") && c.P99Micros.N > 0 && (best == nil || c.P99Micros.Median < best.P99Micros.Median) {
			best = c
		}
	}
	if best != nil {
		sr.BestStatic = best.Name
	}
	alone, def := find(CaseAlone), find(CaseDefault)
	for i := range sr.Cases {
		c := &sr.Cases[i]
		if c.P99Micros.N == 0 {
			continue
		}
		if alone != nil && alone.P99Micros.Median > 0 {
			c.P99VsAlone = c.P99Micros.Median / alone.P99Micros.Median
		}
		if best != nil && best.P99Micros.Median > 0 {
			c.P99VsBestStatic = c.P99Micros.Median / best.P99Micros.Median
		}
		if def != nil && len(c.Antagonists) > 0 {
			c.AntagonistsVsDefault = map[string]float64{}
			for k, s := range c.Antagonists {
				if d, ok := def.Antagonists[k]; ok && d.Median > 0 {
					r := s.Median / d.Median
					c.AntagonistsVsDefault[k] = r
					if c.AntagonistsVsDefaultMin == nil || r < *c.AntagonistsVsDefaultMin {
						c.AntagonistsVsDefaultMin = &r
					}
				}
			}
		}
	}
	if s := find(CaseSculpt); s != nil && alone != nil {
		t := &ColocationTargets{
			P99WithinAlone:  s.P99VsAlone > 0 && s.P99VsAlone <= 1.25,
			AntagonistsHalf: s.AntagonistsVsDefaultMin != nil && *s.AntagonistsVsDefaultMin >= 0.5,
		}
		if best != nil {
			t.P99BelowBestStatic = s.P99Micros.Median < best.P99Micros.Median
		}
		sr.Targets = t
	}
}
