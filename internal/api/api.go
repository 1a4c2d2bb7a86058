// Package api serves a running sculpt: the HTTP JSON API under /v1, the
// Prometheus metrics at /metrics and the web dashboard at / (embedded; it
// reads the same /v1 endpoints).
//
// The engine is not safe for concurrent use, so the API never touches it:
// reads come from the Snapshot the loop publishes after each interval, and
// writes are Requests the loop runs between intervals through its Control
// (the only way the API changes anything). When the listener is TCP, every
// write needs the bearer token, compared in constant time.
package api

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/engine"
	"sculpt/internal/hal"
	"sculpt/internal/hal/journal"
	"sculpt/internal/hal/topology"
	"sculpt/internal/telemetry"
)

// Snapshot is what the loop publishes after each interval; the API reads
// only this. The loop hands it over and does not change it afterwards.
type Snapshot struct {
	Time     time.Time
	Tick     int
	Mode     engine.Mode
	Paused   bool
	Interval time.Duration
	// RulesSource and RuleCount describe the rules in force.
	RulesSource string
	RuleCount   int
	Workloads   []dna.DNA
	// Step is the last interval's result (nil before the first, and while
	// paused it is the last one before the pause).
	Step     *engine.Step
	Arranged []string        // workloads with changes applied
	Journal  []journal.Entry // the journal's entries (nil: no journal)
	Reports  []telemetry.CollectorReport
	// TickDuration is what the interval's observe and step cost.
	TickDuration time.Duration
}

// Control is how the loop carries out writes, between intervals. Its errors
// reach the client as they are; wrap one with Status to choose the HTTP
// status (default 500; engine.ErrUnknownWorkload is 404).
type Control interface {
	SetMode(ctx context.Context, m engine.Mode) (undone []engine.AppliedAction, err error)
	// Revert undoes what sculpt applied to workload, or to every workload
	// when it is "".
	Revert(ctx context.Context, workload string) (undone []engine.AppliedAction, err error)
	// Reload re-reads and validates the rules and/or the config file and
	// puts them in force; a bad file changes nothing.
	Reload(ctx context.Context, rules, config bool) (ReloadResult, error)
	Pause(paused bool) error
}

// ReloadResult says what a reload put in force.
type ReloadResult struct {
	Rules  string `json:"rules,omitempty"`  // e.g. "rules from /etc/sculpt/rules.yaml in force (4 rules)"
	Config string `json:"config,omitempty"` // e.g. "config from /etc/sculpt/config.yaml in force"
}

// StatusError carries the HTTP status of a Control error.
type StatusError struct {
	Code int
	Err  error
}

func (e *StatusError) Error() string { return e.Err.Error() }
func (e *StatusError) Unwrap() error { return e.Err }

// Status wraps err with the HTTP status code the client gets.
func Status(code int, err error) error { return &StatusError{Code: code, Err: err} }

// Options configure a Server.
type Options struct {
	// Token, when not nil, is needed (Authorization: Bearer) by every
	// write. Set it when the listener is TCP.
	Token []byte
	// Topology and Capabilities are the machine's, served as they are.
	Topology     *topology.Topology
	Capabilities hal.Capabilities
	Version      string
	// Objectives are the configured objectives (their attainment comes
	// from each step's agent state).
	Objectives []engine.Objective
	// MaxWorkloads caps the workloads whose genes /metrics exports (the
	// busiest by cpu_util); 0 means DefaultMaxWorkloads.
	MaxWorkloads int
	// Audit is the log /v1/audit serves, filled by the engine's audit
	// writer; nil: a new one (Server.Audit).
	Audit *AuditLog
	// WriteTimeout bounds how long a write waits for the loop to take it
	// (it runs between intervals); 0 means one minute.
	WriteTimeout time.Duration
	// History is how many intervals of genes /v1/history keeps per
	// workload; 0 means DefaultHistory.
	History int
}

// Server is the API of one running sculpt.
type Server struct {
	opts    Options
	mu      sync.Mutex
	snap    *Snapshot
	reqs    chan *Request
	audit   *AuditLog
	metrics *metrics
	history *history
	mux     *http.ServeMux

	mapMu   sync.Mutex
	mapSnap *Snapshot // the snapshot mapBody was projected from
	mapBody MapBody
}

// New returns a server with nothing published yet.
func New(opts Options) *Server {
	if opts.WriteTimeout <= 0 {
		opts.WriteTimeout = time.Minute
	}
	s := &Server{opts: opts, reqs: make(chan *Request), audit: opts.Audit}
	if s.audit == nil {
		s.audit = NewAuditLog(0)
	}
	s.metrics = newMetrics(s, opts)
	s.history = newHistory(opts.History)
	s.routes()
	return s
}

// Audit returns the writer the engine's audit log should also go to (JSON
// lines); /v1/audit serves the latest records from it.
func (s *Server) Audit() *AuditLog { return s.audit }

// Publish makes snap what the API serves and counts the step's decisions,
// actions, refusals and undos in the metrics. Call it once per interval,
// from the loop.
func (s *Server) Publish(snap *Snapshot) {
	s.mu.Lock()
	s.snap = snap
	s.mu.Unlock()
	s.metrics.observe(snap)
	s.history.observe(snap)
}

// Reverted counts undos made outside a step (a revert or a mode change
// asked through the API, or the revert on exit) in the metrics.
func (s *Server) Reverted(undone []engine.AppliedAction) { s.metrics.reverted(undone) }

func (s *Server) snapshot() *Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

// Requests delivers the writes clients ask for; the loop runs each with
// Request.Run between intervals.
func (s *Server) Requests() <-chan *Request { return s.reqs }

// Request is one write, run by the loop.
type Request struct {
	do    func(ctx context.Context, c Control) (any, error)
	reply chan result
}

type result struct {
	v   any
	err error
}

// Run carries out the request through c and answers the client.
func (r *Request) Run(ctx context.Context, c Control) {
	v, err := r.do(ctx, c)
	r.reply <- result{v, err} // buffered: never blocks
}

// submit hands a write to the loop and waits for its answer.
func (s *Server) submit(ctx context.Context, do func(ctx context.Context, c Control) (any, error)) (any, error) {
	r := &Request{do: do, reply: make(chan result, 1)}
	ctx, cancel := context.WithTimeout(ctx, s.opts.WriteTimeout)
	defer cancel()
	select {
	case s.reqs <- r:
	case <-ctx.Done():
		return nil, Status(http.StatusServiceUnavailable, fmt.Errorf("the loop did not take the request within %v: %w", s.opts.WriteTimeout, ctx.Err()))
	}
	res := <-r.reply // once taken, the loop always answers
	return res.v, res.err
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) routes() {
	m := http.NewServeMux()
	m.Handle("GET /metrics", s.metrics.handler())
	m.HandleFunc("GET /v1/status", s.getStatus)
	m.HandleFunc("GET /v1/workloads", s.getWorkloads)
	m.HandleFunc("GET /v1/workloads/{id}", s.getWorkload)
	m.HandleFunc("GET /v1/topology", s.getTopology)
	m.HandleFunc("GET /v1/plan", s.getPlan)
	m.HandleFunc("GET /v1/audit", s.getAudit)
	m.HandleFunc("GET /v1/journal", s.getJournal)
	m.HandleFunc("GET /v1/objectives", s.getObjectives)
	m.HandleFunc("GET /v1/map", s.getMap)
	m.HandleFunc("GET /v1/history", s.getHistory)
	m.HandleFunc("GET /{$}", serveIndex)
	m.Handle("GET /ui/", uiFiles())
	m.HandleFunc("POST /v1/mode", s.write(s.postMode))
	m.HandleFunc("POST /v1/revert", s.write(s.postRevert))
	m.HandleFunc("POST /v1/reload", s.write(s.postReload))
	m.HandleFunc("POST /v1/pause", s.write(s.postPause))
	s.mux = m
}

// ErrorBody is every error's response.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v) // the client went away: nothing to do
}

func writeError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	var se *StatusError
	switch {
	case errors.As(err, &se):
		code = se.Code
	case errors.Is(err, engine.ErrUnknownWorkload):
		code = http.StatusNotFound
	}
	writeJSON(w, code, ErrorBody{Error: err.Error()})
}

// write guards a mutating handler with the token (when there is one).
func (s *Server) write(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.opts.Token != nil {
			got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sculpt"`)
				writeError(w, Status(http.StatusUnauthorized, errors.New("this write needs Authorization: Bearer <token> (the token file sculpt run was given)")))
				return
			}
			if subtle.ConstantTimeCompare([]byte(strings.TrimSpace(got)), s.opts.Token) != 1 {
				w.Header().Set("WWW-Authenticate", `Bearer realm="sculpt", error="invalid_token"`)
				writeError(w, Status(http.StatusUnauthorized, errors.New("bad bearer token")))
				return
			}
		}
		h(w, r)
	}
}

// decode reads a small JSON body into v, refusing unknown fields.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<16))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return Status(http.StatusBadRequest, fmt.Errorf("request body: %w", err))
	}
	return nil
}

// current is the latest snapshot; before the loop's first interval it
// answers 503 and returns nil.
func (s *Server) current(w http.ResponseWriter) *Snapshot {
	snap := s.snapshot()
	if snap == nil {
		writeError(w, Status(http.StatusServiceUnavailable, errors.New("sculpt has not finished its first interval yet")))
	}
	return snap
}

// StatusBody is GET /v1/status.
type StatusBody struct {
	Version         string                   `json:"version"`
	Time            time.Time                `json:"time"`
	Tick            int                      `json:"tick"`
	Mode            engine.Mode              `json:"mode"`
	Paused          bool                     `json:"paused"`
	IntervalSeconds float64                  `json:"interval_seconds"`
	Rules           RulesInfo                `json:"rules"`
	Workloads       int                      `json:"workloads"`
	Arranged        []string                 `json:"arranged"`
	Objectives      []engine.ObjectiveStatus `json:"objectives"`
	Collectors      []CollectorStatus        `json:"collectors"`
}

// RulesInfo names the rules in force.
type RulesInfo struct {
	Source string `json:"source"`
	Count  int    `json:"count"`
}

// CollectorStatus is one collector's last sweep.
type CollectorStatus struct {
	Name            string  `json:"name"`
	DurationSeconds float64 `json:"duration_seconds"`
	Error           string  `json:"error,omitempty"`
}

func objectives(snap *Snapshot) []engine.ObjectiveStatus {
	if snap.Step != nil && snap.Step.Agent != nil && snap.Step.Agent.Objectives != nil {
		return snap.Step.Agent.Objectives
	}
	return []engine.ObjectiveStatus{}
}

func (s *Server) getStatus(w http.ResponseWriter, _ *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	b := StatusBody{Version: s.opts.Version, Time: snap.Time, Tick: snap.Tick, Mode: snap.Mode, Paused: snap.Paused,
		IntervalSeconds: snap.Interval.Seconds(), Rules: RulesInfo{snap.RulesSource, snap.RuleCount},
		Workloads: len(snap.Workloads), Arranged: nonNil(snap.Arranged), Objectives: objectives(snap), Collectors: []CollectorStatus{}}
	for _, r := range snap.Reports {
		c := CollectorStatus{Name: r.Name, DurationSeconds: r.Duration.Seconds()}
		if r.Err != nil {
			c.Error = r.Err.Error()
		}
		b.Collectors = append(b.Collectors, c)
	}
	writeJSON(w, http.StatusOK, b)
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// WorkloadsBody is GET /v1/workloads.
type WorkloadsBody struct {
	Time      time.Time `json:"time"`
	Workloads []dna.DNA `json:"workloads"`
}

func (s *Server) getWorkloads(w http.ResponseWriter, _ *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	writeJSON(w, http.StatusOK, WorkloadsBody{Time: snap.Time, Workloads: nonNil(snap.Workloads)})
}

// WorkloadBody is GET /v1/workloads/{id}: a workload's DNA and what sculpt
// decided and did for it in the last interval.
type WorkloadBody struct {
	DNA      dna.DNA                `json:"dna"`
	Arranged bool                   `json:"arranged"`
	Decision *engine.Decision       `json:"decision,omitempty"`
	Applied  []engine.AppliedAction `json:"applied"`
	Refused  []engine.Refusal       `json:"refused"`
	Undone   []engine.AppliedAction `json:"undone"`
	Reward   *engine.Reward         `json:"reward,omitempty"`
}

// findWorkload resolves an ID, or a name that only one workload has.
func findWorkload(snap *Snapshot, key string) (*dna.DNA, error) {
	var byName []*dna.DNA
	for i := range snap.Workloads {
		d := &snap.Workloads[i]
		if d.ID == key {
			return d, nil
		}
		if d.Name == key {
			byName = append(byName, d)
		}
	}
	switch len(byName) {
	case 1:
		return byName[0], nil
	case 0:
		return nil, fmt.Errorf("workload %q: %w: no workload has this ID or name", key, engine.ErrUnknownWorkload)
	}
	ids := make([]string, len(byName))
	for i, d := range byName {
		ids[i] = d.ID
	}
	return nil, Status(http.StatusConflict, fmt.Errorf("workload %q: %d workloads have this name (%s): give the ID", key, len(byName), strings.Join(ids, ", ")))
}

func (s *Server) getWorkload(w http.ResponseWriter, r *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	d, err := findWorkload(snap, r.PathValue("id"))
	if err != nil {
		writeError(w, err)
		return
	}
	b := WorkloadBody{DNA: *d, Applied: []engine.AppliedAction{}, Refused: []engine.Refusal{}, Undone: []engine.AppliedAction{}}
	for _, id := range snap.Arranged {
		b.Arranged = b.Arranged || id == d.ID
	}
	if st := snap.Step; st != nil {
		for i := range st.Plan.Decisions {
			if st.Plan.Decisions[i].Workload == d.ID {
				b.Decision = &st.Plan.Decisions[i]
			}
		}
		for _, a := range st.Applied {
			if a.Workload == d.ID {
				b.Applied = append(b.Applied, a)
			}
		}
		for _, a := range st.Refused {
			if a.Workload == d.ID {
				b.Refused = append(b.Refused, a)
			}
		}
		for _, a := range st.Undone {
			if a.Workload == d.ID {
				b.Undone = append(b.Undone, a)
			}
		}
		if rw, ok := st.Rewards[d.ID]; ok {
			b.Reward = &rw
		}
	}
	writeJSON(w, http.StatusOK, b)
}

// TopologyBody is GET /v1/topology.
type TopologyBody struct {
	Topology     *topology.Topology `json:"topology"`
	Capabilities hal.Capabilities   `json:"capabilities"`
}

func (s *Server) getTopology(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, TopologyBody{Topology: s.opts.Topology, Capabilities: s.opts.Capabilities})
}

// PlanBody is GET /v1/plan: the last interval's plan and what became of
// it, and the workloads arranged now.
type PlanBody struct {
	Time     time.Time                `json:"time"`
	Tick     int                      `json:"tick"`
	Mode     engine.Mode              `json:"mode"`
	Paused   bool                     `json:"paused"`
	Plan     engine.Plan              `json:"plan"`
	Applied  []engine.AppliedAction   `json:"applied"`
	Refused  []engine.Refusal         `json:"refused"`
	Undone   []engine.AppliedAction   `json:"undone"`
	Rewards  map[string]engine.Reward `json:"rewards"`
	Arranged []string                 `json:"arranged"`
}

func (s *Server) getPlan(w http.ResponseWriter, _ *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	b := PlanBody{Time: snap.Time, Tick: snap.Tick, Mode: snap.Mode, Paused: snap.Paused, Arranged: nonNil(snap.Arranged),
		Applied: []engine.AppliedAction{}, Refused: []engine.Refusal{}, Undone: []engine.AppliedAction{}, Rewards: map[string]engine.Reward{}}
	b.Plan.Decisions, b.Plan.Shared, b.Plan.Dedicated = []engine.Decision{}, []int{}, map[string][]int{}
	if st := snap.Step; st != nil {
		b.Plan = st.Plan
		if b.Plan.Decisions == nil {
			b.Plan.Decisions = []engine.Decision{}
		}
		if b.Plan.Shared == nil {
			b.Plan.Shared = []int{}
		}
		if b.Plan.Dedicated == nil {
			b.Plan.Dedicated = map[string][]int{}
		}
		b.Applied, b.Refused, b.Undone = nonNil(st.Applied), nonNil(st.Refused), nonNil(st.Undone)
		if st.Rewards != nil {
			b.Rewards = st.Rewards
		}
	}
	writeJSON(w, http.StatusOK, b)
}

// AuditBody is GET /v1/audit.
type AuditBody struct {
	Records []AuditEntry `json:"records"`
	// Next is the cursor for the next page (pass it as after=).
	Next uint64 `json:"next"`
}

func (s *Server) getAudit(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f := AuditFilter{Workload: q.Get("workload"), Event: q.Get("event"), Limit: 100}
	after, err := uintParam(q.Get("after"), 0)
	if err != nil {
		writeError(w, Status(http.StatusBadRequest, fmt.Errorf("after: %w", err)))
		return
	}
	limit, err := uintParam(q.Get("limit"), 100)
	if err != nil || limit < 1 || limit > 1000 {
		writeError(w, Status(http.StatusBadRequest, fmt.Errorf("limit=%q: want 1 to 1000", q.Get("limit"))))
		return
	}
	f.After, f.Limit = after, int(limit)
	recs, next := s.audit.Query(f)
	writeJSON(w, http.StatusOK, AuditBody{Records: nonNil(recs), Next: next})
}

// uintParam parses a query parameter; def when it is absent.
func uintParam(v string, def uint64) (uint64, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q: want a non-negative integer", v)
	}
	return n, nil
}

// JournalBody is GET /v1/journal.
type JournalBody struct {
	Entries []journal.Entry `json:"entries"`
}

func (s *Server) getJournal(w http.ResponseWriter, _ *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	writeJSON(w, http.StatusOK, JournalBody{Entries: nonNil(snap.Journal)})
}

// ObjectivesBody is GET /v1/objectives: the configured objectives and, from
// the last interval, their attainment and the agent's state.
type ObjectivesBody struct {
	Configured []ConfiguredObjective    `json:"configured"`
	Attainment []engine.ObjectiveStatus `json:"attainment"`
	Agent      *engine.AgentState       `json:"agent,omitempty"`
}

func (s *Server) getObjectives(w http.ResponseWriter, _ *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	b := ObjectivesBody{Configured: []ConfiguredObjective{}, Attainment: objectives(snap)}
	for _, o := range s.opts.Objectives {
		b.Configured = append(b.Configured, ConfiguredObjective{Workload: o.Workload, Objective: o.String()})
	}
	if snap.Step != nil {
		b.Agent = snap.Step.Agent
	}
	writeJSON(w, http.StatusOK, b)
}

// ConfiguredObjective is one objective of the config.
type ConfiguredObjective struct {
	Workload  string `json:"workload"`  // a name or ID glob
	Objective string `json:"objective"` // "p99 <= 2ms", "maximize throughput"
}

// ModeRequest is POST /v1/mode.
type ModeRequest struct {
	Mode engine.Mode `json:"mode"`
}

// UndoneBody answers writes that may undo changes.
type UndoneBody struct {
	Mode   engine.Mode            `json:"mode,omitempty"`
	Undone []engine.AppliedAction `json:"undone"`
}

func (s *Server) postMode(w http.ResponseWriter, r *http.Request) {
	var req ModeRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	switch req.Mode {
	case engine.ModeObserve, engine.ModeAdvise, engine.ModeApply:
	default:
		writeError(w, Status(http.StatusBadRequest, fmt.Errorf("mode %q: want observe, advise or apply", req.Mode)))
		return
	}
	v, err := s.submit(r.Context(), func(ctx context.Context, c Control) (any, error) {
		undone, err := c.SetMode(ctx, req.Mode)
		s.Reverted(undone)
		return UndoneBody{Mode: req.Mode, Undone: nonNil(undone)}, err
	})
	reply(w, v, err)
}

func reply(w http.ResponseWriter, v any, err error) {
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// RevertRequest is POST /v1/revert; an empty workload means all.
type RevertRequest struct {
	Workload string `json:"workload"`
}

func (s *Server) postRevert(w http.ResponseWriter, r *http.Request) {
	var req RevertRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	v, err := s.submit(r.Context(), func(ctx context.Context, c Control) (any, error) {
		undone, err := c.Revert(ctx, req.Workload)
		s.Reverted(undone)
		return UndoneBody{Undone: nonNil(undone)}, err
	})
	reply(w, v, err)
}

// ReloadRequest is POST /v1/reload.
type ReloadRequest struct {
	Rules  bool `json:"rules"`
	Config bool `json:"config"`
}

func (s *Server) postReload(w http.ResponseWriter, r *http.Request) {
	var req ReloadRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	if !req.Rules && !req.Config {
		writeError(w, Status(http.StatusBadRequest, errors.New(`nothing to reload: set "rules" and/or "config" to true`)))
		return
	}
	v, err := s.submit(r.Context(), func(ctx context.Context, c Control) (any, error) {
		return c.Reload(ctx, req.Rules, req.Config)
	})
	reply(w, v, err)
}

// PauseRequest is POST /v1/pause (and its answer).
type PauseRequest struct {
	Paused bool `json:"paused"`
}

func (s *Server) postPause(w http.ResponseWriter, r *http.Request) {
	var req PauseRequest
	if err := decode(r, &req); err != nil {
		writeError(w, err)
		return
	}
	v, err := s.submit(r.Context(), func(_ context.Context, c Control) (any, error) {
		return req, c.Pause(req.Paused)
	})
	reply(w, v, err)
}

func (s *Server) getMap(w http.ResponseWriter, _ *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	// Projected once per snapshot however many dashboards ask.
	s.mapMu.Lock()
	if s.mapSnap != snap {
		s.mapSnap, s.mapBody = snap, project(snap.Workloads)
		s.mapBody.Time = snap.Time
	}
	b := s.mapBody
	s.mapMu.Unlock()
	writeJSON(w, http.StatusOK, b)
}

// HistoryBody is GET /v1/history: one workload's genes over the last
// intervals, oldest first.
type HistoryBody struct {
	ID     string      `json:"id"`
	Name   string      `json:"name"`
	Frames []GeneFrame `json:"frames"`
}

func (s *Server) getHistory(w http.ResponseWriter, r *http.Request) {
	snap := s.current(w)
	if snap == nil {
		return
	}
	q := r.URL.Query()
	key := q.Get("workload")
	if key == "" {
		writeError(w, Status(http.StatusBadRequest, errors.New("workload: give a workload's ID or name (workload=...)")))
		return
	}
	d, err := findWorkload(snap, key)
	if err != nil {
		writeError(w, err)
		return
	}
	var since time.Time
	if v := q.Get("since"); v != "" {
		if since, err = time.Parse(time.RFC3339Nano, v); err != nil {
			writeError(w, Status(http.StatusBadRequest, fmt.Errorf("since=%q: want an RFC 3339 time (a frame's time)", v)))
			return
		}
	}
	only := map[string]bool{}
	for _, g := range strings.Split(q.Get("genes"), ",") {
		if g = strings.TrimSpace(g); g != "" {
			only[g] = true
		}
	}
	writeJSON(w, http.StatusOK, HistoryBody{ID: d.ID, Name: d.Name, Frames: s.history.of(d.ID, since, only)})
}
