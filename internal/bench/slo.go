package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// SLOOptions configure ColocationSLO: the co-location benchmark's service,
// antagonists, load and durations, and the objectives to judge.
type SLOOptions struct {
	ColocationOptions
	// Factors are the objectives: p99 <= factor x the p99 alone; default 1.5.
	Factors []float64
	// Quotas are the CPU quota levels of the oracle grid, in cores for the
	// antagonists together (besides no quota); default 1.0, 0.5, 0.25.
	Quotas []float64
	// Classes are the antagonists' scheduling classes of the grid: "other",
	// "idle"; default idle.
	Classes []string
	// Share is the share of intervals within the objective that meets it;
	// default 0.95.
	Share float64
	// Warm adds the agent warm case (its experience from the cold run).
	Warm bool
	// QuotaWeight is the weight of the antagonists' cgroup at the quota
	// levels: "min" (cpu.shares 2, the default) or "default" (1024, which
	// competes with the service's cgroup as an equal whatever the class of
	// the antagonists' tasks inside it).
	QuotaWeight string
}

// Scheduling classes of the oracle grid.
const (
	ClassOther = "other"
	ClassIdle  = "idle"
)

// SLO case names besides the grid points.
const (
	SLOCaseAlone     = "alone"
	SLOCaseRules     = "rules"
	SLOCaseAgentCold = "agent-cold"
	SLOCaseAgentWarm = "agent-warm"
)

// SLOMeasurement is one case measured once.
type SLOMeasurement struct {
	Case     string  `json:"case"`
	Factor   float64 `json:"factor,omitempty"` // the agent's objective factor (agent cases)
	Run      int     `json:"run"`
	LoadAvg1 float64 `json:"loadavg1"`
	// ClientP99Micros and ServerP99Micros are the service's p99 of each
	// 1 s interval of the measured window, from the client and from the
	// eBPF gene req_p99_s; 0 where unknown.
	ClientP99Micros []float64 `json:"client_p99_us"`
	ServerP99Micros []float64 `json:"server_p99_us"`
	// AntagonistCPU is the antagonists' CPU over the window, in cores
	// (cpuacct); AntagonistOps their stress-ng bogo ops/s over their life.
	AntagonistCPU float64            `json:"antagonist_cpu_cores"`
	AntagonistOps map[string]float64 `json:"antagonist_ops_per_sec,omitempty"`
	// AgentConvergedAfter is the agent's converged_after when it first
	// settled (0: never); SettledAt the first interval of the window from
	// which it was settled (-1: never in the window).
	AgentConvergedAfter int    `json:"agent_converged_after,omitempty"`
	SettledAt           int    `json:"settled_at"`
	Err                 string `json:"error,omitempty"`
}

// SLOCaseSummary is one case under one objective over every run: medians
// and ranges.
type SLOCaseSummary struct {
	Name    string `json:"name"`
	Setting string `json:"setting"`
	// ClientP99Micros and ServerP99Micros: per run, the median of the
	// intervals' p99 (after convergence for the agent).
	ClientP99Micros Spread `json:"client_p99_us"`
	ServerP99Micros Spread `json:"server_p99_us"`
	// Attainment is the share of intervals within the objective by the
	// server-side p99 (after convergence for the agent); ClientAttainment
	// by the client's p99 against the objective in client terms.
	Attainment       Spread `json:"attainment"`
	ClientAttainment Spread `json:"client_attainment"`
	AntagonistCPU    Spread `json:"antagonist_cpu_cores"`
	VsOracle         Spread `json:"antagonists_vs_oracle"`
	// AgentConvergedAfter is the agent's own figure (runs where it
	// settled); ConvergedAfter the benchmark's, from the series
	// (convergedAfter over the window; runs where it converged).
	AgentConvergedAfter Spread `json:"agent_converged_after"`
	ConvergedAfter      Spread `json:"converged_after"`
	NotConverged        int    `json:"runs_not_converged"`
	Oracle              int    `json:"runs_oracle"` // runs in which it was the oracle
}

// SLOFactor is every case judged against one objective.
type SLOFactor struct {
	Factor             float64          `json:"factor"`
	TargetServerMicros Spread           `json:"target_server_p99_us"`
	TargetClientMicros Spread           `json:"target_client_p99_us"`
	Oracles            []string         `json:"oracle_per_run"` // "" where no arrangement met it
	Cases              []SLOCaseSummary `json:"cases"`
}

// SLOSignal compares the eBPF server-side p99 with the client's across the
// arrangements measured (alone and the grid), each by its median over runs.
type SLOSignal struct {
	Arrangements []string  `json:"arrangements"`
	ServerMicros []float64 `json:"server_p99_us"`
	ClientMicros []float64 `json:"client_p99_us"`
	Spearman     *float64  `json:"spearman,omitempty"`
	// RatioClientServer is the median over arrangements of client / server.
	RatioClientServer float64 `json:"median_ratio_client_server"`
}

// SLOService is the outcome for one service.
type SLOService struct {
	Service      string            `json:"service"`
	Load         string            `json:"load"`
	Settings     map[string]string `json:"settings"` // case -> what it is
	Factors      []SLOFactor       `json:"factors"`
	Signal       SLOSignal         `json:"signal"`
	Measurements []SLOMeasurement  `json:"measurements"`
}

// SLOResult is the outcome of ColocationSLO.
type SLOResult struct {
	Machine       Machine           `json:"machine"`
	LoadAvgBefore [3]float64        `json:"loadavg_before"`
	LoadAvgAfter  [3]float64        `json:"loadavg_after"`
	Runs          int               `json:"runs"`
	DurationSec   float64           `json:"duration_sec"`
	Share         float64           `json:"share"`
	Antagonists   map[string]string `json:"antagonists"`
	Services      []SLOService      `json:"services"`
}

// sloRaw is what a colocRun measured for ColocationSLO.
type sloRaw struct {
	client, server []float64
	antCPU         float64
	convergedAfter int
	settledAt      int
}

// acctDir makes a cpuacct cgroup of its own for an antagonist (ColocationSLO
// only), to count its CPU wherever the agent moves it in the cpu hierarchy.
func (h *colocRun) acctDir(kind string) (string, error) {
	if !h.opts.slo {
		return "", nil
	}
	if h.acct == "" {
		h.acct = h.opts.Roots.CgroupPath("cpuacct", "sculpt-bench-acct-"+strconv.Itoa(os.Getpid())+"-"+strconv.Itoa(h.run))
	}
	d := filepath.Join(h.acct, kind)
	if err := os.MkdirAll(d, 0o755); err != nil {
		return "", fmt.Errorf("co-location benchmark: make cpuacct cgroup: %w", err)
	}
	return d, nil
}

// acctUsage is the CPU time of every cgroup under h.acct, in seconds.
func (h *colocRun) acctUsage() float64 {
	if h.acct == "" {
		return 0
	}
	ents, _ := os.ReadDir(h.acct)
	var ns float64
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(h.acct, e.Name(), "cpuacct.usage"))
		if err != nil {
			continue
		}
		v, _ := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
		ns += v
	}
	return ns / 1e9
}

// sloWindow marks the measured window: the antagonists' CPU and how many
// lines the observer and the agent had printed, at its start and end.
type sloWindow struct {
	h               *colocRun
	mu              sync.Mutex
	started, ended  bool
	t0, t1          time.Time
	cpu0, cpu1      float64
	obs0, obs1      int
	agent0, agent1  int
	observer, agent *benchProc
	timer           *time.Timer
}

func countLines(p *benchProc) int {
	if p == nil {
		return 0
	}
	return bytes.Count(p.output(), []byte{'\n'})
}

// startWindow takes the window's start figures when warm has passed (the
// load generator starts its schedule 10 ms after it is called).
func (h *colocRun) startWindow(warm time.Duration, observer, agent *benchProc) *sloWindow {
	w := &sloWindow{h: h, observer: observer, agent: agent}
	w.timer = time.AfterFunc(warm+10*time.Millisecond, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if w.ended {
			return
		}
		w.started, w.t0, w.cpu0 = true, time.Now(), h.acctUsage()
		w.obs0, w.agent0 = countLines(observer), countLines(agent)
	})
	return w
}

func (w *sloWindow) end() {
	w.timer.Stop()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.ended = true
	w.t1, w.cpu1 = time.Now(), w.h.acctUsage()
	w.obs1, w.agent1 = countLines(w.observer), countLines(w.agent)
}

// linesBetween are the lines [from, to) of p's output.
func linesBetween(p *benchProc, from, to int) [][]byte {
	if p == nil {
		return nil
	}
	var out [][]byte
	sc := bufio.NewScanner(bytes.NewReader(p.output()))
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for i := 0; sc.Scan() && i < to; i++ {
		if i >= from {
			out = append(out, slices.Clone(sc.Bytes()))
		}
	}
	return out
}

// waitJSONLine waits up to timeout for p's first line that starts with
// "{": the observer or agent has loaded its collectors (eBPF included) and
// sampled once, so it sees the connections the load opens after.
func waitJSONLine(ctx context.Context, p *benchProc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range bytes.Split(p.output(), []byte{'\n'}) {
			if bytes.HasPrefix(l, []byte("{")) {
				return nil
			}
		}
		if p.exited() {
			return fmt.Errorf("%s exited before its first interval: %w: %s", p.name, p.exitErr(), lastBytes(p.output(), 400))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s (pid %d) printed no interval in %v", p.name, p.pid(), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// observeLine is the part of a "sculpt run --mode observe --json" line read.
type observeLine struct {
	Workloads []struct {
		PIDs  []int              `json:"pids"`
		Genes map[string]float64 `json:"genes"`
	} `json:"workloads"`
}

// serverP99FromObserve is the service's req_p99_s in µs (0 if absent).
func serverP99FromObserve(line []byte, pid int) float64 {
	var o observeLine
	if json.Unmarshal(line, &o) != nil {
		return 0
	}
	for _, w := range o.Workloads {
		if slices.Contains(w.PIDs, pid) {
			return w.Genes["req_p99_s"] * 1e6
		}
	}
	return 0
}

// stepLine is the part of a "sculpt run --mode apply --json" line read.
type stepLine struct {
	Tick *int `json:"tick"`
	Plan struct {
		Decisions []struct {
			Name  string             `json:"name"`
			Genes map[string]float64 `json:"genes"`
		} `json:"decisions"`
	} `json:"plan"`
	Agent *struct {
		Settled        bool `json:"settled"`
		ConvergedAfter int  `json:"converged_after"`
		Objectives     []struct {
			Value float64 `json:"value"`
			Known bool    `json:"known"`
		} `json:"objectives"`
	} `json:"agent"`
}

// parseStep reads a step line: the service's server-side p99 in µs (the
// agent's objective value, else the service's req_p99_s in the plan; 0 if
// neither), and the agent's converged_after. ok is false for other lines.
func parseStep(line []byte, svc string) (p99 float64, convergedAfter int, settled, ok bool) {
	if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("{")) {
		return 0, 0, false, false
	}
	var s stepLine
	if json.Unmarshal(line, &s) != nil || s.Tick == nil {
		return 0, 0, false, false
	}
	if s.Agent != nil {
		convergedAfter, settled = s.Agent.ConvergedAfter, s.Agent.Settled
		for _, o := range s.Agent.Objectives {
			if o.Known && o.Value > 0 {
				return o.Value * 1e6, convergedAfter, settled, true
			}
		}
	}
	for _, d := range s.Plan.Decisions {
		if strings.HasPrefix(d.Name, svc) {
			return d.Genes["req_p99_s"] * 1e6, convergedAfter, settled, true
		}
	}
	return 0, convergedAfter, settled, true
}

// finishSLO fills in h.slo from the window, the load's per-interval p99 and
// the observer's or the agent's output.
func (h *colocRun) finishSLO(w *sloWindow, lr loadResult, observer, agent *benchProc) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.started {
		return fmt.Errorf("the measured window never started")
	}
	r := &sloRaw{settledAt: 0}
	for _, d := range lr.IntervalP99 {
		r.client = append(r.client, float64(d)/1e3)
	}
	if secs := w.t1.Sub(w.t0).Seconds(); secs > 0 && h.acct != "" {
		r.antCPU = (w.cpu1 - w.cpu0) / secs
	}
	switch {
	case observer != nil:
		for _, l := range linesBetween(observer, w.obs0, w.obs1) {
			r.server = append(r.server, serverP99FromObserve(l, h.svcPID))
		}
	case agent != nil:
		// Whether the agent had settled before the window.
		settledBefore := false
		for _, l := range linesBetween(agent, 0, w.agent0) {
			if _, ca, _, ok := parseStep(l, h.svc); ok && ca > 0 {
				settledBefore, r.convergedAfter = true, ca
			}
		}
		r.settledAt = -1
		if settledBefore {
			r.settledAt = 0
		}
		i := 0
		for _, l := range linesBetween(agent, w.agent0, w.agent1) {
			p99, ca, _, ok := parseStep(l, h.svc)
			if !ok {
				continue
			}
			r.server = append(r.server, p99)
			if ca > 0 && r.settledAt < 0 {
				r.settledAt, r.convergedAfter = i, ca
			}
			i++
		}
	}
	h.slo = r
	return nil
}

// sloCase is a case of ColocationSLO.
type sloCase struct {
	colocCase
	factor float64 // agent cases
	grid   bool
	chain  string // grid: class and CPU count (quota levels are a chain)
}

// sloGrid is the oracle grid: for each class and CPU count, no quota and
// each quota level (descending); the Linux default first.
func sloGrid(opts SLOOptions, ncpu int) []sloCase {
	rest := "0"
	if ncpu > 2 {
		rest = "0-" + strconv.Itoa(ncpu-2)
	}
	quotas := slices.Clone(opts.Quotas)
	slices.Sort(quotas)
	slices.Reverse(quotas)
	var out []sloCase
	for _, class := range opts.Classes {
		for _, cpus := range []string{"all", "all-but-one"} {
			if cpus == "all-but-one" && ncpu < 2 {
				continue
			}
			chain := class + "," + cpus
			for _, q := range append([]float64{0}, quotas...) {
				s := staticSetting{antagonistIdle: class == ClassIdle, antagonistQuota: q, antagonistMinWeight: q > 0 && opts.QuotaWeight != "default"}
				if cpus == "all-but-one" {
					s.antagonistCPUs = rest
				}
				qs := "none"
				if q > 0 {
					qs = strconv.FormatFloat(q, 'g', -1, 64)
				}
				name := "class=" + class + ",quota=" + qs + ",cpus=" + cpus
				if class == ClassOther && q == 0 && cpus == "all" {
					name = CaseDefault
				}
				s.name = name
				out = append(out, sloCase{colocCase: colocCase{name: name, setting: s, observe: true}, grid: true, chain: chain})
			}
		}
	}
	if !slices.Contains(opts.Classes, ClassOther) {
		out = append(out, sloCase{colocCase: colocCase{name: CaseDefault, setting: staticSetting{name: CaseDefault}, observe: true}, grid: true, chain: "default"})
	}
	// The Linux default first: every run measures it.
	slices.SortStableFunc(out, func(a, b sloCase) int {
		if a.name == CaseDefault {
			return -1
		}
		if b.name == CaseDefault {
			return 1
		}
		return 0
	})
	return out
}

// ColocationSLO runs the service-level-objective benchmark: per service and
// run, the service alone (its p99 sets the objectives), the oracle grid of
// static arrangements of the antagonists, the rules alone (sculpt apply,
// --agent none) and the agent cold (and warm), then judges every case
// against each objective: per-interval attainment, the antagonists' CPU and
// its fraction of the oracle's (the grid point meeting the objective with the
// most antagonist CPU), and intervals to converge; and checks the server-side
// signal against the client's. A grid chain (class and CPU count) stops at
// the first quota level that meets the tightest objective: lower levels only
// take CPU from the antagonists.
func ColocationSLO(ctx context.Context, opts SLOOptions, progress io.Writer) (*SLOResult, error) {
	if len(opts.Factors) == 0 {
		opts.Factors = []float64{1.5}
	}
	for _, f := range opts.Factors {
		if f <= 1 {
			return nil, fmt.Errorf("objective factor %v: want more than 1", f)
		}
	}
	if len(opts.Quotas) == 0 {
		opts.Quotas = []float64{1.0, 0.5, 0.25}
	}
	if len(opts.Classes) == 0 {
		opts.Classes = []string{ClassIdle}
	}
	for _, c := range opts.Classes {
		if c != ClassOther && c != ClassIdle {
			return nil, fmt.Errorf("class %q: want other or idle", c)
		}
	}
	if opts.Share <= 0 {
		opts.Share = 0.95
	}
	switch opts.QuotaWeight {
	case "":
		opts.QuotaWeight = "min"
	case "min", "default":
	default:
		return nil, fmt.Errorf("quota weight %q: want min or default", opts.QuotaWeight)
	}
	if opts.Sculpt == "" {
		return nil, fmt.Errorf("service-level-objective benchmark: no sculpt binary given")
	}
	if opts.NginxClient == NginxClientWrk {
		return nil, fmt.Errorf("service-level-objective benchmark: needs the open-loop client for per-interval p99, not wrk")
	}
	co := opts.ColocationOptions
	co.Cases = []string{CaseAlone, CaseDefault, CaseSculpt}
	co, _, err := colocationSetup(co)
	if err != nil {
		return nil, err
	}
	co.slo = true
	opts.ColocationOptions = co
	dir := co.KeepDir
	if dir == "" {
		dir, err = os.MkdirTemp(co.TempDir, "sculpt-bench-slo-")
		if err != nil {
			return nil, fmt.Errorf("slo benchmark: %w", err)
		}
		defer func() { _ = os.RemoveAll(dir) }() // best effort: a leftover temp dir changes no result
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("slo benchmark: %w", err)
	}
	ncpu := runtime.NumCPU()
	grid := sloGrid(opts, ncpu)
	res := &SLOResult{Machine: describeMachine(co.Roots), LoadAvgBefore: loadAvg(co.Roots), Runs: co.Runs,
		DurationSec: co.Duration.Seconds(), Share: opts.Share, Antagonists: map[string]string{}}
	for _, k := range co.Antagonists {
		args, _, _ := antagonistArgs(k, ncpu, "<tmp>")
		res.Antagonists[k] = strings.Join(args, " ")
	}
	tightest := slices.Min(opts.Factors)
	fmt.Fprintf(progress, "slo: %d CPUs, load average %.2f %.2f %.2f; %d runs; %d grid points; objectives %v x alone\n",
		ncpu, res.LoadAvgBefore[0], res.LoadAvgBefore[1], res.LoadAvgBefore[2], co.Runs, len(grid), opts.Factors)
	for _, svc := range co.Services {
		sr := SLOService{Service: svc, Load: loadDescription(svc, co), Settings: map[string]string{}}
		for r := 1; r <= co.Runs; r++ {
			measure := func(c sloCase) (SLOMeasurement, error) {
				m := SLOMeasurement{Case: c.name, Factor: c.factor, Run: r, LoadAvg1: loadAvg(co.Roots)[0]}
				fmt.Fprintf(progress, "[run %d/%d] %s, %s\n", r, co.Runs, svc, c.name)
				h := &colocRun{opts: co, svc: svc, c: c.colocCase, run: r, progress: progress,
					dir: filepath.Join(dir, fmt.Sprintf("%s-%s-%d", svc, strings.NewReplacer(":", "-", ",", "-", "=", "-").Replace(c.name), r))}
				run, unavail, err := h.do(ctx)
				if err != nil {
					return m, err
				}
				switch {
				case unavail != "":
					m.Err = unavail
				case run.Err != "":
					m.Err = run.Err
				case h.slo == nil:
					m.Err = "no per-interval figures"
				default:
					m.ClientP99Micros, m.ServerP99Micros = h.slo.client, h.slo.server
					m.AntagonistCPU, m.AntagonistOps = h.slo.antCPU, run.Antagonists
					m.AgentConvergedAfter, m.SettledAt = h.slo.convergedAfter, h.slo.settledAt
				}
				if m.Err != "" {
					fmt.Fprintf(progress, "  failed: %s\n", coloOneLineB(m.Err))
				} else {
					fmt.Fprintf(progress, "  client p99 %.0f µs, server p99 %.0f µs (medians of %d intervals), antagonists %.2f cores\n",
						MedianKnown(m.ClientP99Micros), MedianKnown(m.ServerP99Micros), len(m.ClientP99Micros), m.AntagonistCPU)
				}
				sr.Settings[c.name] = c.describe(co)
				return m, nil
			}
			alone, err := measure(sloCase{colocCase: colocCase{name: SLOCaseAlone, alone: true, observe: true}})
			if err != nil {
				return nil, err
			}
			sr.Measurements = append(sr.Measurements, alone)
			if alone.Err != "" {
				continue
			}
			base := MedianKnown(alone.ServerP99Micros)
			done := map[string]bool{}
			for _, c := range grid {
				if done[c.chain] {
					continue
				}
				m, err := measure(c)
				if err != nil {
					return nil, err
				}
				sr.Measurements = append(sr.Measurements, m)
				if base > 0 && m.Err == "" && c.name != CaseDefault {
					if s, k := attainment(m.ServerP99Micros, tightest*base); k >= 3 && s >= opts.Share {
						done[c.chain] = true
					}
				}
			}
			// The rules' steps carry no latency of the service: an observer
			// beside them reads it, as in the grid.
			m, err := measure(sloCase{colocCase: colocCase{name: SLOCaseRules, sculpt: true, observe: true,
				sculptArgs: []string{"--json", "--agent", "none"}}})
			if err != nil {
				return nil, err
			}
			sr.Measurements = append(sr.Measurements, m)
			if base <= 0 {
				fmt.Fprintf(progress, "  no server-side p99 alone: no objective for the agent in run %d\n", r)
				continue
			}
			for _, f := range opts.Factors {
				cfg := filepath.Join(dir, fmt.Sprintf("%s-objective-%g-%d.yaml", svc, f, r))
				target := time.Duration(f * base * 1e3)
				body := fmt.Sprintf("version: 1\nobjectives:\n  - workload: %q\n    p99: %s\n", svc+"*", target)
				if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
					return nil, fmt.Errorf("slo benchmark: %w", err)
				}
				exp := filepath.Join(dir, fmt.Sprintf("%s-experience-%g-%d.json", svc, f, r))
				args := []string{"--json", "--config", cfg, "--experience", exp}
				cases := []sloCase{{colocCase: colocCase{name: SLOCaseAgentCold, sculpt: true, sculptArgs: args}, factor: f}}
				if opts.Warm {
					cases = append(cases, sloCase{colocCase: colocCase{name: SLOCaseAgentWarm, sculpt: true, sculptArgs: args}, factor: f})
				}
				for _, c := range cases {
					m, err := measure(c)
					if err != nil {
						return nil, err
					}
					sr.Measurements = append(sr.Measurements, m)
				}
			}
		}
		judgeSLO(&sr, opts.Factors, opts.Share)
		res.Services = append(res.Services, sr)
	}
	res.LoadAvgAfter = loadAvg(co.Roots)
	return res, nil
}

func coloOneLineB(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// minTail is the fewest known intervals a judgement rests on.
const minTail = 5

// judgeSLO fills in sr's factors and signal from its measurements.
func judgeSLO(sr *SLOService, factors []float64, share float64) {
	byRun := map[int][]SLOMeasurement{}
	var order []string
	for _, m := range sr.Measurements {
		byRun[m.Run] = append(byRun[m.Run], m)
		if !slices.Contains(order, m.Case) {
			order = append(order, m.Case)
		}
	}
	isGrid := func(name string) bool {
		return name != SLOCaseAlone && name != SLOCaseRules && name != SLOCaseAgentCold && name != SLOCaseAgentWarm
	}
	runs := slices.Sorted(func(yield func(int) bool) {
		for r := range byRun {
			if !yield(r) {
				return
			}
		}
	})
	for _, f := range factors {
		sf := SLOFactor{Factor: f}
		type acc struct{ client, server, att, catt, cpu, vs, aconv, conv []float64 }
		accs := map[string]*acc{}
		notConv := map[string]int{}
		oracleRuns := map[string]int{}
		var tS, tC []float64
		for _, r := range runs {
			ms := byRun[r]
			var alone *SLOMeasurement
			for i := range ms {
				if ms[i].Case == SLOCaseAlone && ms[i].Err == "" {
					alone = &ms[i]
				}
			}
			if alone == nil {
				sf.Oracles = append(sf.Oracles, "")
				continue
			}
			ts, tc := f*MedianKnown(alone.ServerP99Micros), f*MedianKnown(alone.ClientP99Micros)
			tS, tC = append(tS, ts), append(tC, tc)
			// Each measurement of this factor, after convergence for the agent.
			type judged struct {
				m          SLOMeasurement
				att, catt  float64
				known      int
				conv       int
				client, sv float64
			}
			var js []judged
			for _, m := range ms {
				if m.Err != "" || (m.Factor != 0 && m.Factor != f) {
					continue
				}
				client, server := m.ClientP99Micros, m.ServerP99Micros
				conv := convergedAfter(server, ts, share, minTail)
				if m.Factor != 0 && m.SettledAt > 0 {
					client, server = client[min(m.SettledAt, len(client)):], server[min(m.SettledAt, len(server)):]
				}
				att, known := attainment(server, ts)
				catt, _ := attainment(client, tc)
				js = append(js, judged{m, att, catt, known, conv, MedianKnown(client), MedianKnown(server)})
			}
			var cands []oracleCandidate
			for _, j := range js {
				if isGrid(j.m.Case) {
					cands = append(cands, oracleCandidate{j.m.Case, j.att, j.known, j.m.AntagonistCPU})
				}
			}
			o := pickOracle(cands, share, minTail)
			oracleCPU := 0.0
			if o >= 0 {
				sf.Oracles = append(sf.Oracles, cands[o].name)
				oracleRuns[cands[o].name]++
				oracleCPU = cands[o].throughput
			} else {
				sf.Oracles = append(sf.Oracles, "")
			}
			for _, j := range js {
				a := accs[j.m.Case]
				if a == nil {
					a = &acc{}
					accs[j.m.Case] = a
				}
				if j.client > 0 {
					a.client = append(a.client, j.client)
				}
				if j.sv > 0 {
					a.server = append(a.server, j.sv)
				}
				if j.known > 0 {
					a.att = append(a.att, j.att)
				}
				a.catt = append(a.catt, j.catt)
				a.cpu = append(a.cpu, j.m.AntagonistCPU)
				if oracleCPU > 0 {
					a.vs = append(a.vs, j.m.AntagonistCPU/oracleCPU)
				}
				if j.m.AgentConvergedAfter > 0 {
					a.aconv = append(a.aconv, float64(j.m.AgentConvergedAfter))
				}
				if j.conv >= 0 {
					a.conv = append(a.conv, float64(j.conv))
				} else {
					notConv[j.m.Case]++
				}
			}
		}
		sf.TargetServerMicros, sf.TargetClientMicros = spreadOf(tS), spreadOf(tC)
		for _, name := range order {
			a := accs[name]
			if a == nil {
				continue
			}
			sf.Cases = append(sf.Cases, SLOCaseSummary{
				Name: name, Setting: sr.Settings[name],
				ClientP99Micros: spreadOf(a.client), ServerP99Micros: spreadOf(a.server),
				Attainment: spreadOf(a.att), ClientAttainment: spreadOf(a.catt),
				AntagonistCPU: spreadOf(a.cpu), VsOracle: spreadOf(a.vs),
				AgentConvergedAfter: spreadOf(a.aconv), ConvergedAfter: spreadOf(a.conv),
				NotConverged: notConv[name], Oracle: oracleRuns[name],
			})
		}
		sr.Factors = append(sr.Factors, sf)
	}
	sr.Signal = signalCheck(sr.Measurements, func(name string) bool { return name == SLOCaseAlone || isGrid(name) }, order)
}

// signalCheck ranks the arrangements (cases for which include is true) by
// their median server-side p99 and by their median client p99 over runs.
func signalCheck(ms []SLOMeasurement, include func(string) bool, order []string) SLOSignal {
	server, client := map[string][]float64{}, map[string][]float64{}
	for _, m := range ms {
		if m.Err != "" || !include(m.Case) {
			continue
		}
		s, c := MedianKnown(m.ServerP99Micros), MedianKnown(m.ClientP99Micros)
		if s > 0 && c > 0 {
			server[m.Case] = append(server[m.Case], s)
			client[m.Case] = append(client[m.Case], c)
		}
	}
	sig := SLOSignal{Arrangements: []string{}, ServerMicros: []float64{}, ClientMicros: []float64{}}
	var ratios []float64
	for _, name := range order {
		if len(server[name]) == 0 {
			continue
		}
		s, c := spreadOf(server[name]).Median, spreadOf(client[name]).Median
		sig.Arrangements = append(sig.Arrangements, name)
		sig.ServerMicros = append(sig.ServerMicros, s)
		sig.ClientMicros = append(sig.ClientMicros, c)
		ratios = append(ratios, c/s)
	}
	if rho, ok := spearman(sig.ServerMicros, sig.ClientMicros); ok {
		sig.Spearman = &rho
	}
	sig.RatioClientServer = spreadOf(ratios).Median
	return sig
}
