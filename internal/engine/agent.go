package engine

import (
	"context"
	"fmt"
	"math"
	"time"

	"sculpt/internal/dna"
)

// Agent is the adjust step's plugin: it fine-tunes the wants the rules
// proposed so that the objectives are met with the most batch throughput,
// from the outcome each interval shows. internal/engine/agent is the
// learning one; NopAgent keeps the rules' plan.
type Agent interface {
	// Adjust sees this interval's outcome (the objectives as measured
	// over the interval that just ended, under the arrangement the last
	// Adjust chose) and the wants in force, and returns the wants it
	// changes, each with its reason, and its state for the step's report.
	Adjust(in AgentInput) AgentOutput
}

// Roles of the workloads the agent sees.
const (
	RoleService = "service" // has a latency objective
	RoleBatch   = "batch"   // demoted by the rules, or maximize: throughput
)

// AgentInput is what the agent decides from, passed as data.
type AgentInput struct {
	Tick      int
	Machine   Machine
	Outcome   Outcome
	Workloads []AgentWorkload
}

// AgentWorkload is one workload the agent may weigh or adjust.
type AgentWorkload struct {
	ID, Name  string
	Role      string
	Want      *Want    // the want in force (the rules' plan); nil: no rule matched (a service the agent only weighs)
	DNA       *dna.DNA // its DNA this interval
	Objective *Objective
}

// Outcome is how an interval went against the objectives.
type Outcome struct {
	Objectives []ObjectiveStatus `json:"objectives"`
	// BatchThroughput is the CPU the batch workloads used (cores).
	BatchThroughput float64 `json:"batch_throughput"`
}

// Known reports whether every latency objective had its signal.
func (o Outcome) Known() bool {
	n := 0
	for _, s := range o.Objectives {
		if s.Latency {
			if !s.Known {
				return false
			}
			n++
		}
	}
	return n > 0
}

// Met reports whether every latency objective was met; slack is the
// smallest 1 - value/target among them.
func (o Outcome) Met() (met bool, slack float64) {
	met, slack = true, math.Inf(1)
	for _, s := range o.Objectives {
		if !s.Latency || !s.Known {
			continue
		}
		met = met && s.Met
		slack = math.Min(slack, 1-s.Value/s.Target)
	}
	return met, slack
}

// ObjectiveStatus is one objective as measured over an interval.
type ObjectiveStatus struct {
	Workload  string  `json:"workload"`
	Name      string  `json:"name"`
	Objective string  `json:"objective"` // "p99 <= 2ms", "maximize throughput"
	Latency   bool    `json:"latency"`
	Value     float64 `json:"value"`  // seconds (latency); throughput in Source's unit
	Target    float64 `json:"target"` // seconds; 0 for throughput
	Known     bool    `json:"known"`  // the signal was there this interval
	Met       bool    `json:"met"`
	Source    string  `json:"source"` // ebpf or metric (latency); metric or BatchThroughput's unit
	Why       string  `json:"why,omitempty"`
}

// Adjustment is a want the agent changed, and why.
type Adjustment struct {
	Workload string
	Want     Want
	Reason   string
}

// AgentOutput is the agent's answer for one interval.
type AgentOutput struct {
	Adjustments []Adjustment
	State       *AgentState
}

// AgentState is what a step reports of the agent (`sculpt run --json`,
// the audit log).
type AgentState struct {
	Agent          string            `json:"agent"`
	Level          int               `json:"level"`
	Levels         int               `json:"levels"` // 0: idle, nothing to trade (Context says why)
	Settled        bool              `json:"settled"`
	ConvergedAfter int               `json:"converged_after"` // judged intervals to settle first (0: not yet)
	Context        string            `json:"context,omitempty"`
	Start          string            `json:"start,omitempty"` // where the search started: rules, or experience of ...
	Move           string            `json:"move,omitempty"`  // this interval's change of level, and why
	Objectives     []ObjectiveStatus `json:"objectives"`
	BatchCPU       float64           `json:"batch_throughput"`
}

// NopAgent keeps the rules' plan as it is.
type NopAgent struct{}

// Adjust changes nothing.
func (NopAgent) Adjust(AgentInput) AgentOutput { return AgentOutput{} }

// latencyGene names the gene holding a percentile of the server-side
// request latency.
func latencyGene(q float64) string {
	switch q {
	case 0.5:
		return "req_p50_s"
	case 0.9:
		return "req_p90_s"
	case 0.99:
		return "req_p99_s"
	}
	return "req_p999_s"
}

// objectiveStatus measures a workload's objective this interval: a latency
// percentile from its eBPF genes or its own metric, throughput from its CPU.
func (e *Engine) objectiveStatus(ctx context.Context, o Objective, d *dna.DNA) ObjectiveStatus {
	s := ObjectiveStatus{Workload: d.ID, Name: d.Name, Objective: o.String()}
	q, target, isLat := o.Percentile()
	if !isLat {
		if o.Metric != nil {
			s.Source = "metric"
			v, err := e.metricRate(ctx, d.ID, o.Metric)
			if err != nil {
				s.Why = err.Error()
				return s
			}
			s.Value, s.Known = v, true
		} else {
			s.Value, s.Source = BatchThroughput(d.Genes)
			s.Known = s.Source != ""
		}
		s.Met = s.Known
		return s
	}
	s.Latency, s.Target = true, target.Seconds()
	if o.Metric != nil {
		s.Source = "metric"
		v, err := e.metricQuantile(ctx, d.ID, o.Metric, q)
		if err != nil {
			s.Why = err.Error()
			return s
		}
		s.Value, s.Known = v, true
	} else {
		s.Source = "ebpf"
		s.Value, s.Known = d.Genes[latencyGene(q)]
		if !s.Known {
			s.Why = fmt.Sprintf("%s absent: no request served this interval, or no eBPF (sculpt topology)", latencyGene(q))
		}
	}
	s.Met = s.Known && s.Value <= s.Target
	return s
}

// metricRate reads a counter of the application's throughput and returns
// its rate since the last scrape.
func (e *Engine) metricRate(ctx context.Context, id string, m *ObjectiveMetric) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	fams, err := ScrapeFamilies(ctx, e.client, m.URL)
	if err != nil {
		return 0, err
	}
	v, err := SampleValue(fams, m.Name, m.Labels)
	if err != nil {
		return 0, err
	}
	now := time.Now()
	prev, had := e.counters[id]
	e.counters[id] = counterReading{v, now}
	if !had {
		return 0, fmt.Errorf("metric %s: first scrape (a rate needs two)", m.Name)
	}
	r, ok := CounterRate(prev.value, v, now.Sub(prev.at))
	if !ok {
		return 0, fmt.Errorf("metric %s: no rate between %v and %v", m.Name, prev.value, v)
	}
	return r, nil
}

// counterReading is one scrape of a throughput counter.
type counterReading struct {
	value float64
	at    time.Time
}

// metricQuantile reads the q-quantile of an application's histogram over
// the interval since the last scrape (or a summary's quantile sample).
func (e *Engine) metricQuantile(ctx context.Context, id string, m *ObjectiveMetric, q float64) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, scrapeTimeout)
	defer cancel()
	fams, err := ScrapeFamilies(ctx, e.client, m.URL)
	if err != nil {
		return 0, err
	}
	if b, err := HistogramBuckets(fams, m.Name, m.Labels); err == nil {
		prev, had := e.histograms[id]
		e.histograms[id] = b
		if !had {
			return 0, fmt.Errorf("metric %s: first scrape (the interval's histogram needs two)", m.Name)
		}
		v, ok := b.Since(prev).Quantile(q)
		if !ok {
			return 0, fmt.Errorf("metric %s: no observation this interval", m.Name)
		}
		return v, nil
	}
	labels := map[string]string{"quantile": fmt.Sprint(q)}
	for k, v := range m.Labels {
		labels[k] = v
	}
	return SampleValue(fams, m.Name, labels)
}
