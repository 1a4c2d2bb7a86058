package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"sculpt/internal/api"
	"sculpt/internal/engine"
	"sculpt/internal/hal/journal"
	"sculpt/internal/hal/linux"
	"sculpt/internal/hal/topology"
)

// listenNone turns the API off.
const listenNone = "none"

// service is the API side of `sculpt run` in advise and apply mode: the
// server, and the loop's state its writes change. Its methods run on the
// loop's goroutine only.
type service struct {
	a      *app
	fl     engineFlags
	srv    *api.Server
	eng    *engine.Engine
	j      *journal.Journal
	rules  *engine.RuleSet
	paused bool
	last   *engine.Step
	obs    *engine.Observation
	names  map[string]string // workload name -> ID, from the last observation
	wg     sync.WaitGroup
}

var _ api.Control = (*service)(nil)

// startService opens fl.listen and serves the API until ctx is done; nil
// when the API is off. The default socket held by another sculpt is
// reported and the run goes on without an API; an address given on the
// command line that cannot be opened is an error.
func (a *app) startService(ctx context.Context, fl engineFlags, eng *engine.Engine, be *linux.Backend, topo *topology.Topology,
	cfg engine.Config, j *journal.Journal, rules *engine.RuleSet, audit *api.AuditLog) (*service, error) {
	if fl.listen == "" || fl.listen == listenNone {
		return nil, nil
	}
	var token []byte
	if !api.IsUnix(fl.listen) {
		var err error
		if token, err = api.TokenFile(fl.tokenFile, true); err != nil {
			return nil, usagef("--token-file: %v", err)
		}
	}
	l, err := api.Listen(fl.listen)
	if err != nil {
		if !fl.listenSet {
			a.log.Warn("API off: the default socket is not available", "err", err)
			return nil, nil
		}
		return nil, usagef("--listen: %v", err)
	}
	srv := api.New(api.Options{Token: token, Topology: topo, Capabilities: be.Capabilities(), Version: version,
		Objectives: cfg.Objectives, MaxWorkloads: fl.maxWorkloads, Audit: audit})
	s := &service{a: a, fl: fl, srv: srv, eng: eng, j: j, rules: rules, names: map[string]string{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := api.Serve(ctx, l, srv); err != nil {
			a.log.Error("API stopped", "listen", fl.listen, "err", err)
		}
	}()
	a.log.Info("API listening", "listen", l.Addr().String(), "token_file", map[bool]string{true: fl.tokenFile}[token != nil])
	return s, nil
}

// wait returns once the server has shut down (after ctx is done).
func (s *service) wait() {
	if s != nil {
		s.wg.Wait()
	}
}

// requests is nil (never ready) without an API.
func (s *service) requests() <-chan *api.Request {
	if s == nil {
		return nil
	}
	return s.srv.Requests()
}

// publish hands the interval's result to the API.
func (s *service) publish(obs *engine.Observation, st *engine.Step, cost time.Duration, interval time.Duration) {
	if s == nil {
		return
	}
	snap := &api.Snapshot{Mode: s.eng.Mode(), Paused: s.paused, Interval: interval, RulesSource: s.rules.Source,
		RuleCount: len(s.rules.Rules), Arranged: s.eng.Arranged(), TickDuration: cost}
	if st != nil {
		s.last = st
	}
	snap.Step = s.last
	if snap.Step != nil {
		snap.Tick = snap.Step.Tick
	}
	if obs != nil {
		s.obs = obs
		s.names = map[string]string{}
		for _, d := range obs.DNA {
			s.names[d.Name] = d.ID
		}
	}
	if s.obs != nil {
		snap.Time, snap.Workloads, snap.Reports = s.obs.Time, s.obs.DNA, s.obs.Reports
	}
	if s.j != nil {
		snap.Journal = s.j.Entries()
	}
	s.srv.Publish(snap)
}

// republish publishes the last snapshot again after a write changed the
// loop's state.
func (s *service) republish(interval time.Duration) {
	// The observation is the one already published: keep its workloads.
	s.publish(nil, nil, 0, interval)
}

// SetMode implements api.Control.
func (s *service) SetMode(ctx context.Context, m engine.Mode) ([]engine.AppliedAction, error) {
	if m == engine.ModeApply && s.j == nil {
		return nil, api.Status(http.StatusConflict, errors.New("mode apply needs the journal: start `sculpt run --mode apply` (it can then go to advise or observe and back)"))
	}
	undone, err := s.eng.SetMode(ctx, m)
	if err != nil {
		return nil, api.Status(http.StatusBadRequest, err)
	}
	s.a.log.Info("mode changed through the API", "mode", m, "undone", len(undone))
	return undone, nil
}

// Revert implements api.Control.
func (s *service) Revert(ctx context.Context, workload string) ([]engine.AppliedAction, error) {
	ids := s.eng.Arranged()
	if workload != "" {
		id := workload
		if alt, ok := s.names[workload]; ok && !contains(ids, workload) {
			id = alt
		}
		ids = []string{id}
	}
	var all []engine.AppliedAction
	for _, id := range ids {
		undone, err := s.eng.RevertWorkload(ctx, id, "reverted through the API")
		if err != nil {
			return all, err
		}
		all = append(all, undone...)
	}
	s.a.log.Info("reverted through the API", "workload", workload, "undone", len(all))
	return all, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Reload implements api.Control: both files are validated before either
// is put in force.
func (s *service) Reload(_ context.Context, rules, config bool) (api.ReloadResult, error) {
	var res api.ReloadResult
	var rs *engine.RuleSet
	var cfg engine.Config
	if rules {
		if s.fl.rules == "" {
			return res, api.Status(http.StatusConflict, errors.New("sculpt runs the embedded rules: start it with --rules FILE to reload them"))
		}
		var err error
		if rs, err = s.a.loadRules(s.fl.rules); err != nil {
			var re *engine.RulesError
			if errors.As(err, &re) {
				// The message of `sculpt rules check FILE`.
				n := 0
				for _, d := range re.Diagnostics {
					if d.Severity == "error" {
						n++
					}
				}
				lines := append(checkLines(s.fl.rules, re.Diagnostics), errorCount(s.fl.rules, n))
				return res, api.Status(http.StatusUnprocessableEntity, errors.New(strings.Join(lines, "\n")))
			}
			return res, api.Status(http.StatusUnprocessableEntity, fmt.Errorf("rules not reloaded: %w", err))
		}
	}
	if config {
		if s.fl.config == "" {
			return res, api.Status(http.StatusConflict, errors.New("sculpt runs the default config: start it with --config FILE to reload it"))
		}
		data, err := os.ReadFile(s.fl.config)
		if err != nil {
			return res, api.Status(http.StatusUnprocessableEntity, fmt.Errorf("config not reloaded: %w", err))
		}
		if cfg, err = engine.ParseConfig(s.fl.config, data); err != nil {
			return res, api.Status(http.StatusUnprocessableEntity, fmt.Errorf("config not reloaded; the last good config stays in force: %w", err))
		}
	}
	if rs != nil {
		s.eng.SetRules(rs)
		s.rules = rs
		res.Rules = fmt.Sprintf("rules from %s in force (%d rules)", rs.Source, len(rs.Rules))
		s.a.log.Info("rules reloaded", "file", s.fl.rules, "why", "API", "rule_count", len(rs.Rules))
	}
	if config {
		s.eng.SetConfig(cfg)
		res.Config = fmt.Sprintf("config from %s in force", s.fl.config)
		s.a.log.Info("config reloaded", "file", s.fl.config, "why", "API")
	}
	return res, nil
}

// Pause implements api.Control.
func (s *service) Pause(paused bool) error {
	if s.paused != paused {
		s.paused = paused
		s.eng.Note("pause", fmt.Sprintf("paused=%t through the API", paused))
		s.a.log.Info("pause through the API", "paused", paused)
	}
	return nil
}

// checkLines are the diagnostics of a rule file as `sculpt rules check`
// prints them, one "FILE:LINE: severity: message" each.
func checkLines(path string, diags []engine.Diagnostic) []string {
	out := make([]string, 0, len(diags))
	for _, d := range diags {
		out = append(out, fmt.Sprintf("%s:%s", path, strings.TrimPrefix(d.String(), "line ")))
	}
	return out
}

// errorCount is the last line of `sculpt rules check` on a bad file.
func errorCount(path string, n int) string { return fmt.Sprintf("%s: %d error(s)", path, n) }

// setLogFormat makes a.log write text or JSON lines to stderr.
func (a *app) setLogFormat(format string) error {
	opts := &slog.HandlerOptions{Level: slog.LevelInfo}
	switch format {
	case "text", "":
		a.log = slog.New(slog.NewTextHandler(a.stderr, opts))
	case "json":
		a.log = slog.New(slog.NewJSONHandler(a.stderr, opts))
	default:
		return usagef("--log-format %s: want text or json", flagValue(format))
	}
	return nil
}
