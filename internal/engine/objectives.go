package engine

import (
	"fmt"
	"net/url"
	"path"
	"time"
)

// Objective is a service-level objective of the config file: a latency
// percentile a service must stay under, or throughput for batch work to
// maximise. The agent meets every latency objective with the most batch
// throughput (docs/config.md, docs/agent.md).
type Objective struct {
	// Workload is a workload name or ID (glob), as protected.names, e.g.
	// "redis*" or "unit:batch-*.service".
	Workload string `yaml:"workload"`
	// One latency percentile: the server-side request latency (eBPF) or,
	// with Metric, the application's own histogram or summary.
	P50  time.Duration `yaml:"p50"`
	P90  time.Duration `yaml:"p90"`
	P99  time.Duration `yaml:"p99"`
	P999 time.Duration `yaml:"p999"`
	// Maximize: "throughput" (batch work).
	Maximize string `yaml:"maximize"`
	// Metric reads the objective from the application's own Prometheus
	// metric instead of the eBPF signal.
	Metric *ObjectiveMetric `yaml:"metric"`
}

// ObjectiveMetric is an application's Prometheus metric: for a latency
// objective a histogram (the percentile from its buckets) or a summary (the
// quantile's sample); for throughput a counter (its rate).
type ObjectiveMetric struct {
	URL    string            `yaml:"url"`
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

// Percentile returns the objective's quantile (0.99 for p99) and target;
// ok is false for a throughput objective.
func (o Objective) Percentile() (q float64, target time.Duration, ok bool) {
	switch {
	case o.P50 > 0:
		return 0.5, o.P50, true
	case o.P90 > 0:
		return 0.9, o.P90, true
	case o.P99 > 0:
		return 0.99, o.P99, true
	case o.P999 > 0:
		return 0.999, o.P999, true
	}
	return 0, 0, false
}

// String is the objective as a person reads it: "p99 <= 2ms".
func (o Objective) String() string {
	if q, t, ok := o.Percentile(); ok {
		return fmt.Sprintf("%s <= %v", percentileName(q), t)
	}
	return "maximize " + o.Maximize
}

func percentileName(q float64) string {
	switch q {
	case 0.5:
		return "p50"
	case 0.9:
		return "p90"
	case 0.99:
		return "p99"
	}
	return "p999"
}

// Matches reports whether the objective names the workload (by name or ID).
func (o Objective) Matches(id, name string) bool {
	okID, _ := path.Match(o.Workload, id)
	okName, _ := path.Match(o.Workload, name)
	return okID || okName
}

// ObjectiveFor returns the first objective naming the workload.
func (c Config) ObjectiveFor(id, name string) (Objective, bool) {
	for _, o := range c.Objectives {
		if o.Matches(id, name) {
			return o, true
		}
	}
	return Objective{}, false
}

// AgentConfig tunes the learning agent (docs/agent.md).
type AgentConfig struct {
	Levels     int     `yaml:"levels"`      // throttle levels, the rules' plan (0) included
	Judge      int     `yaml:"judge"`       // intervals a level is judged over
	StepBack   int     `yaml:"step_back"`   // violated intervals in a row before stepping back
	ProbeEvery int     `yaml:"probe_every"` // intervals with slack before probing one level down
	Slack      float64 `yaml:"slack"`       // how far under target (fraction) counts as slack
	// MinGain: the least share by which throttling must lower the
	// tightest objective's median value against the rules' plan before
	// the agent throttles further.
	MinGain float64 `yaml:"min_gain"`
	// FloorCPU: CPU (cores) a batch workload always keeps: no quota goes
	// below it.
	FloorCPU float64 `yaml:"floor_cpu"`
	// FloorIOMBps: block I/O (MB/s, read and write each) a batch workload
	// always keeps: no I/O cap goes below it.
	FloorIOMBps float64 `yaml:"floor_io_mbps"`
}

// validateObjectives checks the objectives and agent sections.
func validateObjectives(cfg Config, bad func(field, format string, args ...any)) {
	for i, o := range cfg.Objectives {
		f := func(name string) string { return fmt.Sprintf("objectives[%d].%s", i, name) }
		if o.Workload == "" {
			bad(f("workload"), "missing: want the workload's name or ID (a glob)")
		} else if _, err := path.Match(o.Workload, ""); err != nil {
			bad(f("workload"), "%q: %v", o.Workload, err)
		}
		n := 0
		for name, d := range map[string]time.Duration{"p50": o.P50, "p90": o.P90, "p99": o.P99, "p999": o.P999} {
			if d < 0 {
				bad(f(name), "%v: want a positive duration such as 2ms", d)
			}
			if d != 0 {
				n++
			}
		}
		switch {
		case o.Maximize != "" && o.Maximize != "throughput":
			bad(f("maximize"), "%q: want throughput", o.Maximize)
		case o.Maximize != "" && n > 0:
			bad(f("maximize"), "an objective is a latency percentile or maximize: throughput, not both")
		case o.Maximize == "" && n == 0:
			bad(f("workload"), "%q: give a latency percentile (p50, p90, p99 or p999: 2ms) or maximize: throughput", o.Workload)
		case n > 1:
			bad(f("p99"), "give one latency percentile per objective (add another objective for another)")
		}
		if m := o.Metric; m != nil {
			if u, err := url.Parse(m.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				bad(f("metric.url"), "%q: want an http(s) URL of a Prometheus endpoint", m.URL)
			}
			if m.Name == "" {
				bad(f("metric.name"), "missing: want the metric's name")
			}
		}
	}
	a := cfg.Agent
	if a.Levels < 2 || a.Levels > 32 {
		bad("agent.levels", "%d: want 2..32", a.Levels)
	}
	if a.Judge < 1 {
		bad("agent.judge", "%d: want at least 1 interval", a.Judge)
	}
	if a.StepBack < 1 {
		bad("agent.step_back", "%d: want at least 1 interval", a.StepBack)
	}
	if a.ProbeEvery < 1 {
		bad("agent.probe_every", "%d: want at least 1 interval", a.ProbeEvery)
	}
	if a.Slack < 0 || a.Slack >= 1 {
		bad("agent.slack", "%g: want a fraction 0..1", a.Slack)
	}
	if a.MinGain < 0 || a.MinGain >= 1 {
		bad("agent.min_gain", "%g: want a fraction 0..1 (0 turns the check off)", a.MinGain)
	}
	if a.FloorIOMBps < 0.1 {
		bad("agent.floor_io_mbps", "%g: want at least 0.1 MB/s (batch work is throttled, never starved)", a.FloorIOMBps)
	}
	if a.FloorCPU < 0.01 {
		bad("agent.floor_cpu", "%g: want at least 0.01 cores (batch work is throttled, never starved)", a.FloorCPU)
	}
}
