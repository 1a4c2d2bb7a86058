package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"sculpt/internal/api"
	"sculpt/internal/engine"
	"sculpt/internal/hal/journal"
	"sculpt/internal/hal/linux"
	"sculpt/internal/hal/topology"
	"sculpt/internal/nri"
	"sculpt/internal/telemetry"
	"sculpt/internal/workload"
)

// recoverAtStart finds a journal left by a sculpt that did not stop cleanly
// and undoes it (or, with keep, adopts it). No journal file: nothing to do.
func (a *app) recoverAtStart(ctx context.Context, path string, keep bool) error {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	j, err := journal.Open(path)
	if err != nil {
		return fmt.Errorf("journal left by an earlier run: %w", err)
	}
	defer func() {
		if err := j.Close(); err != nil {
			a.log.Warn("closing journal", "path", path, "err", err)
		}
	}()
	if j.Len() == 0 {
		return nil
	}
	if keep {
		a.log.Info("adopting changes left in the journal (--keep)", "journal", path, "entries", j.Len())
		return nil
	}
	be, err := linux.New(a.roots, linux.Options{Journal: j})
	if err != nil {
		return err
	}
	a.log.Info("undoing changes left in the journal by an earlier run", "journal", path, "entries", j.Len())
	steps, err := RecoverJournal(ctx, be, j, false)
	toStderr := *a // keep stdout for the run's own output (JSON lines)
	toStderr.stdout = a.stderr
	printRevert(&toStderr, path, steps, j.Len())
	if err != nil {
		return fmt.Errorf("recover journal %s: %w", path, err)
	}
	return nil
}

func init() { register(newRunCmd) }

func newRunCmd(a *app) *cobra.Command {
	var (
		mode     string
		interval time.Duration
		forDur   time.Duration
		window   time.Duration
		top      int
		asJSON   bool
		pids     []int
		without  []string
		cgroups  []string
		keep     bool
		jpath    string
		model    string
		agentF   string
		expF     string
		rulesF   string
		configF  string
		auditF   string
		listen   string
		tokenF   string
		logFmt   string
		maxW     int
		nriOn    bool
		nriSock  string
	)
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the agent loop: observe, advise or apply",
		Long: `Run sculpt's loop every --interval until interrupted or until --for has passed.

In observe mode sculpt discovers the workloads, samples their telemetry and prints
their DNA each interval: a table of the busiest workloads, or one JSON object per
line with --json. It changes nothing on the machine.

In advise mode it also evaluates the rules (--rules, default: the embedded set,
see docs/rules.md), plans an arrangement and prints what it would do and why;
nothing is applied. In apply mode the plan goes through the guard and is applied
through the journaled HAL; on exit (a signal or --for) every change is reverted
unless --keep. The rules file is re-read when it changes or on SIGHUP; a bad
file is reported and the last good rules stay in force.

Programs started from the shell that started sculpt are workloads of their own,
even when they share its cgroup (docs/workloads.md, "Sessions"). In every mode a
line "excluded: NAME (ID): never touched: WHY" says once, when a workload first
appears, that sculpt never touches it and which setting excludes it (with --json:
in the step's "excluded" list, or in observe mode on stderr).

` + tableLegend(),
		Example: `  sculpt run                       # observe every workload, 5 s interval
  sculpt run --interval 1s --for 30s --json > dna.jsonl
  sculpt run --mode advise --interval 2s
  sculpt run --mode apply --interval 1s --audit /var/log/sculpt-audit.jsonl`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := a.setLogFormat(logFmt); err != nil {
				return err
			}
			switch mode {
			case "observe", "advise", "apply":
			default:
				return usagef("--mode %s: want observe, advise or apply", flagValue(mode))
			}
			if interval <= 0 {
				return usagef("--interval must be a positive duration, got %v", interval)
			}
			if forDur < 0 {
				return usagef("--for must not be negative, got %v", forDur)
			}
			if window <= 0 {
				window = interval
			}
			tel, err := telemetryOptions(without)
			if err != nil {
				return err
			}
			if mode != "observe" {
				return a.runEngine(cmd.Context(), engineFlags{
					mode: engine.Mode(mode), interval: interval, forDur: forDur, window: window, asJSON: asJSON,
					sel:  workload.Selector{PIDs: pids, Cgroups: cgroups, All: len(pids) == 0 && len(cgroups) == 0},
					keep: keep, journal: journalPath(jpath), rules: rulesF, config: configF, audit: auditF,
					tel: tel, model: model, agent: agentF, experience: experiencePath(expF),
					listen: listen, listenSet: cmd.Flags().Changed("listen"), tokenFile: tokenF, maxWorkloads: maxW,
					nri: nriOn, nriSocket: nriSock,
				})
			}
			if cmd.Flags().Changed("listen") && listen != listenNone {
				return usagef("--listen needs --mode advise or apply (the API can then switch to observe)")
			}
			if nriOn {
				return usagef("--nri needs --mode apply")
			}
			if rulesF != "" || configF != "" || auditF != "" {
				return usagef("--rules, --config and --audit need --mode advise or apply")
			}
			if cmd.Flags().Changed("agent") || expF != "" {
				return usagef("--agent and --experience need --mode apply")
			}
			if err := a.recoverAtStart(cmd.Context(), journalPath(jpath), keep); err != nil {
				return err
			}
			sel := workload.Selector{PIDs: pids, Cgroups: cgroups, All: len(pids) == 0 && len(cgroups) == 0}
			obsv, sampler, err := a.newObserver(sel, window, tel)
			if err != nil {
				return err
			}
			defer a.closeObserver(sampler)
			if m := a.loadDNAModel(model); m != nil {
				obsv.SetModel(m)
			}
			// The guard of advise and apply, with the default protected
			// set: observe mode says what those modes would never touch.
			guard := engine.NewGuard(engine.DefaultConfig(), os.Getpid())
			guard.SetAncestors(sampler.ancestors)
			said := map[string]bool{}
			ctx := cmd.Context()
			var deadline <-chan time.Time
			if forDur > 0 {
				t := time.NewTimer(forDur)
				defer t.Stop()
				deadline = t.C
			}
			a.log.Info("sculpt running", "mode", mode, "interval", interval, "for", forDur)
			if _, err := obsv.Tick(ctx); err != nil {
				return selectionError(err)
			}
			tick := time.NewTicker(interval)
			defer tick.Stop()
			enc := json.NewEncoder(a.stdout)
			legendShown := false
			for {
				select {
				case <-ctx.Done():
					a.log.Info("sculpt stopping", "reason", "signal")
					return nil
				case <-deadline:
					a.log.Info("sculpt stopping", "reason", "--for elapsed")
					return nil
				case <-tick.C:
				}
				obs, err := obsv.Tick(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return err
				}
				for _, r := range obs.Reports {
					if r.Err != nil {
						a.log.Warn("collector failed", "collector", r.Name, "err", r.Err)
					}
				}
				for i := range obs.Workloads {
					w := &obs.Workloads[i]
					if said[w.ID] {
						continue
					}
					if why := guard.ExcludedWorkload(w); why != "" {
						said[w.ID] = true
						x := engine.Exclusion{Workload: w.ID, Name: w.Name, Reason: why}
						if asJSON {
							a.log.Info("excluded", "workload", x.Workload, "name", x.Name, "reason", "never touched: "+x.Reason)
						} else {
							fmt.Fprintln(a.stdout, exclusionLine(x))
						}
					}
				}
				if asJSON {
					if err := enc.Encode(toJSON(obs)); err != nil {
						return err
					}
					continue
				}
				if !legendShown {
					fmt.Fprint(a.stdout, tableLegend()+"\n")
					legendShown = true
				}
				fmt.Fprintf(a.stdout, "--- %s  %d workloads (top %d by CPU)\n", obs.Time.Format(time.TimeOnly), len(obs.DNA), min(top, len(obs.DNA)))
				if err := writeTable(a.stdout, obs.DNA, top); err != nil {
					return err
				}
			}
		},
	}
	f := cmd.Flags()
	f.StringVar(&mode, "mode", "observe", "observe (DNA only), advise (print the plan, apply nothing) or apply")
	f.DurationVar(&interval, "interval", 5*time.Second, "time between sweeps")
	f.DurationVar(&forDur, "for", 0, "stop after this long (0: until interrupted)")
	f.DurationVar(&window, "window", 0, "history each DNA is computed over (default: one interval)")
	f.IntVar(&top, "top", 15, "rows in the live table")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per interval")
	f.IntSliceVar(&pids, "pid", nil, "observe only the process tree rooted at this PID (repeatable)")
	f.StringArrayVar(&cgroups, "cgroup", nil, "observe only this cgroup (repeatable)")
	f.BoolVar(&keep, "keep", false, "keep changes on exit (apply mode) and adopt changes left in the journal by a sculpt that crashed, instead of undoing them")
	f.StringVar(&rulesF, "rules", "", "rule file (default: the embedded rules, docs/rules.md); re-read when it changes or on SIGHUP")
	f.StringVar(&configF, "config", "", "engine config file (docs/config.md)")
	f.StringVar(&auditF, "audit", "", "append the audit log (JSON lines: decisions, actions, rewards) to this file")
	f.StringVar(&jpath, "journal", "", "journal file (default $SCULPT_JOURNAL or "+journal.DefaultPath+")")
	withoutFlag(f, &without)
	f.StringVar(&model, "model", "", modelFlagHelp)
	f.StringVar(&agentF, "agent", "sculpt", "apply mode: the learning agent that fine-tunes the rules' plan to meet the config's objectives (docs/agent.md), or none for the rules alone")
	f.StringVar(&listen, "listen", api.DefaultSocket, "advise and apply: serve the API and /metrics on this unix socket (mode 0600) or host:port (TCP, loopback when the host is empty; writes need the token), or none (docs/api.md)")
	f.StringVar(&tokenF, "token-file", api.DefaultTokenFile, "the bearer token of a TCP --listen (mode 0600; created when missing)")
	f.IntVar(&maxW, "metrics-workloads", api.DefaultMaxWorkloads, "export the genes of at most this many workloads (the busiest) on /metrics")
	f.StringVar(&logFmt, "log-format", "text", "log lines on stderr as text or json")
	f.BoolVar(&nriOn, "nri", false, "apply mode: register as an NRI plugin with the container runtime and apply containers' CPUs, CPU weight and quota through it (docs/kubernetes.md); without it sculpt leaves container cgroups to the runtime")
	f.StringVar(&nriSock, "nri-socket", nri.DefaultSocket, "the container runtime's NRI socket (with --nri)")
	f.StringVar(&expF, "experience", "", "the agent's experience file (default $SCULPT_EXPERIENCE or "+defaultExperience+")")
	return cmd
}

// defaultExperience is where the agent keeps what it learned.
const defaultExperience = "/var/lib/sculpt/experience.json"

// experiencePath resolves --experience, then $SCULPT_EXPERIENCE, then the
// default.
func experiencePath(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("SCULPT_EXPERIENCE"); env != "" {
		return env
	}
	return defaultExperience
}

// engineFlags are the flags of `sculpt run` in advise and apply mode.
type engineFlags struct {
	mode                 engine.Mode
	interval, forDur     time.Duration
	window               time.Duration
	asJSON, keep         bool
	sel                  workload.Selector
	journal              string
	rules, config, audit string
	tel                  telemetry.DefaultOptions
	model                string // --model: "" the embedded model, "none" the gene classifier
	agent                string // --agent: sculpt or none
	experience           string // the agent's experience file
	listen               string // --listen: socket path, host:port, or none ("" in tests: none)
	listenSet            bool   // --listen was given: failing to open it is an error
	tokenFile            string
	maxWorkloads         int
	nri                  bool   // --nri: containers' CPU placement through the runtime's NRI
	nriSocket            string // --nri-socket
}

// loadRules reads the rule file at path (the embedded default when path is
// ""), logging warnings; errors come back as a *engine.RulesError.
func (a *app) loadRules(path string) (*engine.RuleSet, error) {
	if path == "" {
		return engine.LoadDefaultRules(), nil
	}
	data, err := readTrusted(path)
	if err != nil {
		return nil, fmt.Errorf("read rules: %w", err)
	}
	rs, diags := engine.ParseRules(path, data)
	for _, d := range diags {
		if d.Severity == "warning" {
			a.log.Warn("rules", "file", path, "problem", d.String())
		}
	}
	if rs == nil {
		return nil, &engine.RulesError{Source: path, Diagnostics: diags}
	}
	return rs, nil
}

// runEngine runs the loop in advise or apply mode.
func (a *app) runEngine(ctx context.Context, fl engineFlags) error {
	cfg := engine.DefaultConfig()
	if fl.config != "" {
		data, err := readTrusted(fl.config)
		if err != nil {
			return usagef("--config: %v", err)
		}
		if cfg, err = engine.ParseConfig(fl.config, data); err != nil {
			return usageError{err}
		}
	}
	if fl.nri && fl.mode != engine.ModeApply {
		return usagef("--nri needs --mode apply")
	}
	rules, err := a.loadRules(fl.rules)
	if err != nil {
		return usagef("--rules: %v", err)
	}
	ag, err := a.newAgent(fl, cfg)
	if err != nil {
		return err
	}
	var rulesStamp time.Time
	if fl.rules != "" {
		if fi, err := os.Stat(fl.rules); err == nil {
			rulesStamp = fi.ModTime()
		}
	}
	topo, err := topology.Discover(a.roots)
	if err != nil {
		return fmt.Errorf("discover topology: %w", err)
	}
	var auditW io.Writer
	if fl.audit != "" {
		f, err := os.OpenFile(fl.audit, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return usagef("--audit: %v", err)
		}
		defer func() { _ = f.Close() }()
		auditW = f
	}
	if err := a.recoverAtStart(ctx, fl.journal, fl.keep); err != nil {
		return err
	}
	var j *journal.Journal
	opts := linux.Options{}
	if fl.mode == engine.ModeApply {
		if j, err = journal.Open(fl.journal); err != nil {
			return err
		}
		defer func() {
			if err := j.Close(); err != nil {
				a.log.Warn("closing journal", "path", fl.journal, "err", err)
			}
		}()
		opts.Journal = j
		if opts.Pause, err = crashHook(); err != nil {
			return err
		}
	}
	be, err := linux.New(a.roots, opts)
	if err != nil {
		return err
	}
	window := fl.window
	if window <= 0 {
		window = fl.interval
	}
	obsv, sampler, err := a.newObserver(fl.sel, window, fl.tel)
	if err != nil {
		return err
	}
	defer a.closeObserver(sampler)
	if m := a.loadDNAModel(fl.model); m != nil {
		obsv.SetModel(m)
	}
	// The API's audit log is filled by the engine, which starts after it.
	apiAudit := api.NewAuditLog(0)
	if fl.listen != "" && fl.listen != listenNone {
		if auditW != nil {
			auditW = io.MultiWriter(auditW, apiAudit)
		} else {
			auditW = apiAudit
		}
	}
	eng := engine.New(engine.Options{Mode: fl.mode, HAL: be, Topology: topo, Rules: rules, Config: cfg, Audit: auditW, Agent: ag,
		Self: os.Getpid(), Ancestors: sampler.ancestors, NRI: fl.nri})
	var bridge *nriBridge
	if fl.nri {
		if bridge, err = startNRI(ctx, a.log, fl.nriSocket, topo); err != nil {
			return err
		}
		defer bridge.stop()
	} else {
		a.log.Info("container cgroups are left to the container runtime (--nri applies containers' CPU placement through it)")
	}
	sctx, stopService := context.WithCancel(context.Background())
	svc, err := a.startService(sctx, fl, eng, be, topo, cfg, j, rules, apiAudit)
	if err != nil {
		stopService()
		return err
	}
	// Deferred before the revert on exit, so it runs after it: the API
	// answers until the machine is back as it was.
	defer func() { stopService(); svc.wait() }()
	if fl.mode == engine.ModeApply && !fl.keep {
		defer func() {
			// The run's context may be cancelled (a signal): revert anyway.
			// Generous: leaving the machine changed is worse than a slow
			// exit; what is left stays in the journal for `sculpt revert`.
			rctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			steps, err := be.Revert(rctx, j)
			restored := 0
			for _, s := range steps {
				if s.Status == linux.Restored {
					restored++
				}
			}
			eng.Note("revert", fmt.Sprintf("reverted %d change(s) on exit (%d journal entries handled)", restored, len(steps)))
			if err != nil {
				a.log.Error("reverting on exit: run `sculpt revert --journal "+fl.journal+"` to undo what is left", "journal", fl.journal, "left", j.Len(), "err", err)
				return
			}
			a.log.Info("reverted every change on exit", "restored", restored, "entries", len(steps))
		}()
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	var deadline <-chan time.Time
	if fl.forDur > 0 {
		t := time.NewTimer(fl.forDur)
		defer t.Stop()
		deadline = t.C
	}
	a.log.Info("sculpt running", "mode", fl.mode, "interval", fl.interval, "for", fl.forDur, "rules", rules.Source, "rule_count", len(rules.Rules))
	for _, w := range engine.CapabilityWarnings(rules, be.Capabilities()) {
		a.log.Warn("a rule asks for what this machine cannot change: its plans will note the refusal", "rule", w.Rule, "line", w.Line, "field", w.Field, "why", w.Message)
	}
	reload := func(why string) {
		if fl.rules == "" {
			return
		}
		rs, err := a.loadRules(fl.rules)
		if err != nil {
			a.log.Error("rules not reloaded; the last good rules stay in force", "why", why, "err", err)
			eng.Note("rules-rejected", err.Error())
			return
		}
		eng.SetRules(rs)
		rules = rs
		if svc != nil {
			svc.rules = rs
		}
		a.log.Info("rules reloaded", "file", fl.rules, "why", why, "rule_count", len(rs.Rules))
	}
	reloadConfig := func(why string) {
		if fl.config == "" {
			return
		}
		data, err := os.ReadFile(fl.config)
		if err == nil {
			var c engine.Config
			if c, err = engine.ParseConfig(fl.config, data); err == nil {
				eng.SetConfig(c)
				a.log.Info("config reloaded", "file", fl.config, "why", why)
				return
			}
		}
		a.log.Error("config not reloaded; the last good config stays in force", "why", why, "err", err)
		eng.Note("config-rejected", err.Error())
	}
	enc := json.NewEncoder(a.stdout)
	printer := newStepPrinter(a.stdout, fl.mode)
	tick := time.NewTicker(fl.interval)
	defer tick.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				a.log.Info("sculpt stopping", "reason", "signal")
				return nil
			case <-deadline:
				a.log.Info("sculpt stopping", "reason", "--for elapsed")
				return nil
			case <-hup:
				reload("SIGHUP")
				reloadConfig("SIGHUP")
				svc.republish(fl.interval)
				continue
			case req := <-svc.requests():
				req.Run(ctx, svc)
				svc.republish(fl.interval)
				continue
			case <-tick.C:
			}
		}
		began := time.Now()
		if fl.rules != "" {
			if fi, err := os.Stat(fl.rules); err == nil && !fi.ModTime().Equal(rulesStamp) {
				rulesStamp = fi.ModTime()
				reload("file changed")
			}
		}
		obs, err := obsv.Tick(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			if first {
				return selectionError(err)
			}
			return err
		}
		if svc != nil && svc.paused {
			svc.publish(obs, nil, time.Since(began), fl.interval)
			continue
		}
		step, err := eng.Step(ctx, obs)
		svc.publish(obs, step, time.Since(began), fl.interval)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			a.log.Warn("engine step failed", "err", err)
			continue
		}
		if bridge != nil && eng.Mode() == engine.ModeApply {
			bridge.apply(ctx, step)
		}
		for _, w := range step.Warnings {
			a.log.Debug("rule evaluation", "warning", w)
		}
		if fl.asJSON {
			if err := enc.Encode(step); err != nil {
				return err
			}
			continue
		}
		printer.print(obs.Time, step)
	}
}

func sortedKeys(m map[string]float64) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}
