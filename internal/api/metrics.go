package api

import (
	"cmp"
	"net/http"
	"runtime"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"sculpt/internal/dna"
	"sculpt/internal/engine"
)

// DefaultMaxWorkloads caps the workloads whose genes /metrics exports.
const DefaultMaxWorkloads = 50

// metrics are sculpt's Prometheus metrics (docs/metrics.md). Counters and
// histograms are updated by Publish; per-workload gauges are read from the
// latest snapshot at scrape time, so a workload that is gone disappears.
type metrics struct {
	reg          *prometheus.Registry
	decisions    prometheus.Counter
	actions      *prometheus.CounterVec
	refusals     *prometheus.CounterVec
	rollbacks    *prometheus.CounterVec
	releases     *prometheus.CounterVec
	reverts      *prometheus.CounterVec
	ticks        prometheus.Counter
	tickCost     prometheus.Histogram
	collectorDur *prometheus.GaugeVec
	collectorOK  *prometheus.GaugeVec
	latency      *prometheus.HistogramVec
}

func newMetrics(s *Server, opts Options) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	fam := []string{"family"}
	m.decisions = prometheus.NewCounter(prometheus.CounterOpts{Name: "sculpt_decisions_total",
		Help: "Workload decisions the guard let through (advise: printed; apply: applied)."})
	m.actions = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sculpt_actions_total",
		Help: "HAL actions applied, by action family and result (applied or failed)."}, []string{"family", "result"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sculpt_refusals_total",
		Help: "Planned actions the guard refused (cool-down, budget, frozen, membership), by action family."}, fam)
	m.rollbacks = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sculpt_rollbacks_total",
		Help: "Actions undone because the reward fell after them, by the undo's action family."}, fam)
	m.releases = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sculpt_releases_total",
		Help: "Actions undone because no rule wished for the arrangement any more, by the undo's action family."}, fam)
	m.reverts = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sculpt_reverts_total",
		Help: "Actions undone on request (API revert, leaving apply mode), by the undo's action family."}, fam)
	m.ticks = prometheus.NewCounter(prometheus.CounterOpts{Name: "sculpt_ticks_total", Help: "Intervals the loop has run."})
	m.tickCost = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sculpt_tick_duration_seconds",
		Help: "Wall time of one interval's work: discover, sample, profile, and the engine's step.", Buckets: prometheus.ExponentialBuckets(0.001, 2, 14)})
	m.collectorDur = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sculpt_collector_duration_seconds",
		Help: "Wall time of each telemetry collector in the last sweep."}, []string{"collector"})
	m.collectorOK = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "sculpt_collector_success",
		Help: "1 when the collector's last sweep succeeded, 0 when it failed."}, []string{"collector"})
	m.latency = prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "sculpt_objective_interval_latency_seconds",
		Help:    "Per interval, the measured request-latency percentile of each latency objective (one observation per interval with a signal).",
		Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16)}, []string{"workload", "objective"})
	build := prometheus.NewGauge(prometheus.GaugeOpts{Name: "sculpt_build_info", Help: "sculpt's version and the Go version it was built with; always 1.",
		ConstLabels: prometheus.Labels{"version": opts.Version, "goversion": runtime.Version()}})
	build.Set(1)
	maxW := opts.MaxWorkloads
	if maxW <= 0 {
		maxW = DefaultMaxWorkloads
	}
	m.reg.MustRegister(m.decisions, m.actions, m.refusals, m.rollbacks, m.releases, m.reverts, m.ticks, m.tickCost,
		m.collectorDur, m.collectorOK, m.latency, build, &stateCollector{s: s, max: maxW},
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// observe counts one published interval.
func (m *metrics) observe(snap *Snapshot) {
	m.ticks.Inc()
	m.tickCost.Observe(snap.TickDuration.Seconds())
	for _, r := range snap.Reports {
		m.collectorDur.WithLabelValues(r.Name).Set(r.Duration.Seconds())
		ok := 1.0
		if r.Err != nil {
			ok = 0
		}
		m.collectorOK.WithLabelValues(r.Name).Set(ok)
	}
	st := snap.Step
	if st == nil {
		return
	}
	m.decisions.Add(float64(len(st.Plan.Decisions)))
	for _, a := range st.Applied {
		result := "applied"
		switch {
		case a.Gone:
			result = "skipped"
		case a.Err != nil:
			result = "failed"
		}
		m.actions.WithLabelValues(family(a.Action), result).Inc()
	}
	for _, r := range st.Refused {
		m.refusals.WithLabelValues(family(r.Action)).Inc()
	}
	for _, u := range st.Undone {
		if u.Event == "rollback" {
			m.rollbacks.WithLabelValues(family(u.Action)).Inc()
		} else {
			m.releases.WithLabelValues(family(u.Action)).Inc()
		}
	}
	if st.Agent != nil {
		for _, o := range st.Agent.Objectives {
			if o.Latency && o.Known {
				m.latency.WithLabelValues(o.Workload, o.Objective).Observe(o.Value)
			}
		}
	}
}

func (m *metrics) reverted(undone []engine.AppliedAction) {
	for _, u := range undone {
		m.reverts.WithLabelValues(family(u.Action)).Inc()
	}
}

// family is an action's kind ("pin", "cpuset", ...), a bounded label.
func family(a interface{ Kind() string }) string {
	if a == nil {
		return "none"
	}
	return a.Kind()
}

// stateCollector exports the latest snapshot's per-workload state.
type stateCollector struct {
	s   *Server
	max int
}

var (
	descGene = prometheus.NewDesc("sculpt_workload_gene",
		"A workload's gene this interval (units per gene in docs/genes.md); absent when not measured. Only the busiest workloads by cpu_util are exported (sculpt_workloads_exported).",
		[]string{"workload", "name", "gene"}, nil)
	descArch = prometheus.NewDesc("sculpt_workload_archetype_confidence",
		"The confidence of a workload's archetype (the label), 0 to 1.", []string{"workload", "name", "archetype"}, nil)
	descWorkloads = prometheus.NewDesc("sculpt_workloads", "Workloads profiled in the last interval.", nil, nil)
	descExported  = prometheus.NewDesc("sculpt_workloads_exported", "Workloads whose genes are exported (capped).", nil, nil)
	descArranged  = prometheus.NewDesc("sculpt_workloads_arranged", "Workloads sculpt has changes applied to.", nil, nil)
	descMode      = prometheus.NewDesc("sculpt_mode", "1 for the mode in force.", []string{"mode"}, nil)
	descPaused    = prometheus.NewDesc("sculpt_paused", "1 while the loop is paused (observing, deciding nothing).", nil, nil)
	descAttain    = prometheus.NewDesc("sculpt_objective_attainment_ratio",
		"A latency objective's measured value over its target in the last interval (<= 1: met).", []string{"workload", "objective"}, nil)
	descMet = prometheus.NewDesc("sculpt_objective_met", "1 when the objective was met in the last interval, 0 when not (absent: no signal).",
		[]string{"workload", "objective"}, nil)
	descJournal = prometheus.NewDesc("sculpt_journal_entries", "Entries in the journal (changes that a revert would undo).", nil, nil)
)

func (c *stateCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descGene, descArch, descWorkloads, descExported, descArranged, descMode, descPaused, descAttain, descMet, descJournal} {
		ch <- d
	}
}

func (c *stateCollector) Collect(ch chan<- prometheus.Metric) {
	snap := c.s.snapshot()
	if snap == nil {
		return
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	busiest := slices.Clone(snap.Workloads)
	slices.SortStableFunc(busiest, func(a, b dna.DNA) int {
		if c := cmp.Compare(b.Genes["cpu_util"], a.Genes["cpu_util"]); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
	busiest = busiest[:min(len(busiest), c.max)]
	for _, d := range busiest {
		for g, v := range d.Genes {
			gauge(descGene, v, d.ID, d.Name, g)
		}
		if d.Archetype != "" {
			gauge(descArch, d.Confidence, d.ID, d.Name, d.Archetype)
		}
	}
	gauge(descWorkloads, float64(len(snap.Workloads)))
	gauge(descExported, float64(len(busiest)))
	gauge(descArranged, float64(len(snap.Arranged)))
	for _, m := range []engine.Mode{engine.ModeObserve, engine.ModeAdvise, engine.ModeApply} {
		v := 0.0
		if snap.Mode == m {
			v = 1
		}
		gauge(descMode, v, string(m))
	}
	paused := 0.0
	if snap.Paused {
		paused = 1
	}
	gauge(descPaused, paused)
	gauge(descJournal, float64(len(snap.Journal)))
	for _, o := range objectives(snap) {
		if !o.Known {
			continue
		}
		met := 0.0
		if o.Met {
			met = 1
		}
		gauge(descMet, met, o.Workload, o.Objective)
		if o.Latency && o.Target > 0 {
			gauge(descAttain, o.Value/o.Target, o.Workload, o.Objective)
		}
	}
}
