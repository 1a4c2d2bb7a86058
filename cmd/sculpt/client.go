package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"sculpt/internal/api"
	"sculpt/internal/engine"
	"sculpt/internal/hal"
)

func init() {
	register(newStatusCmd)
	register(newPlanCmd)
	register(newWhyCmd)
}

// clientFlags are the flags of the commands that talk to a running sculpt.
type clientFlags struct {
	server, tokenFile string
	asJSON            bool
}

func (c *clientFlags) add(f *pflag.FlagSet) {
	def := api.DefaultSocket
	if env := os.Getenv("SCULPT_SERVER"); env != "" {
		def = env
	}
	f.StringVar(&c.server, "server", def, "the running sculpt: its --listen socket path or host:port ($SCULPT_SERVER)")
	f.StringVar(&c.tokenFile, "token-file", api.DefaultTokenFile, "bearer token of a TCP server (sent only to TCP servers)")
	f.BoolVar(&c.asJSON, "json", false, "print the API's JSON answer as it is")
}

// client returns an API client; a TCP server gets the token when its file
// is readable.
func (c *clientFlags) client() *api.Client {
	var token []byte
	if !api.IsUnix(c.server) {
		if t, err := api.TokenFile(c.tokenFile, false); err == nil {
			token = t
		}
	}
	return api.NewClient(c.server, token)
}

func printJSON(a *app, v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newStatusCmd(a *app) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show a running sculpt's mode, workloads, arrangements and objectives",
		Long: `Ask a running sculpt (sculpt run --mode advise|apply, which serves the API on
--listen) for its state: mode, the interval it is at, the rules in force, how
many workloads it profiles and which it has arranged, the objectives'
attainment and each collector's last sweep. docs/api.md describes the API.`,
		Example: `  sculpt status
  sculpt status --server 127.0.0.1:9477 --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var st api.StatusBody
			if err := cf.client().Get(cmd.Context(), "/v1/status", &st); err != nil {
				return err
			}
			if cf.asJSON {
				return printJSON(a, st)
			}
			w := a.stdout
			paused := ""
			if st.Paused {
				paused = " (paused: observing, deciding nothing)"
			}
			fmt.Fprintf(w, "sculpt %s: mode %s%s, interval %d every %v, at %s\n", st.Version, st.Mode, paused, st.Tick,
				time.Duration(st.IntervalSeconds*float64(time.Second)), st.Time.Format(time.TimeOnly))
			fmt.Fprintf(w, "rules: %s (%d rules)\n", st.Rules.Source, st.Rules.Count)
			fmt.Fprintf(w, "workloads: %d profiled, %d arranged\n", st.Workloads, len(st.Arranged))
			for _, id := range st.Arranged {
				fmt.Fprintf(w, "  arranged: %s\n", id)
			}
			for _, o := range st.Objectives {
				fmt.Fprintf(w, "objective: %s\n", objectiveText(o))
			}
			for _, c := range st.Collectors {
				state := "ok"
				if c.Error != "" {
					state = "FAILED: " + c.Error
				}
				fmt.Fprintf(w, "collector %s: %v, %s\n", c.Name, time.Duration(c.DurationSeconds*float64(time.Second)).Round(time.Microsecond), state)
			}
			return nil
		},
	}
	cf.add(cmd.Flags())
	return cmd
}

// objectiveText is one objective's attainment as a person reads it.
func objectiveText(o engine.ObjectiveStatus) string {
	switch {
	case !o.Latency:
		return fmt.Sprintf("%s %s: %.2f", o.Name, o.Objective, o.Value)
	case !o.Known:
		return fmt.Sprintf("%s %s: not measured (%s)", o.Name, o.Objective, o.Why)
	case o.Met:
		return fmt.Sprintf("%s %s: %v, met", o.Name, o.Objective, time.Duration(o.Value*float64(time.Second)).Round(time.Microsecond))
	}
	return fmt.Sprintf("%s %s: %v, VIOLATED", o.Name, o.Objective, time.Duration(o.Value*float64(time.Second)).Round(time.Microsecond))
}

func newPlanCmd(a *app) *cobra.Command {
	var cf clientFlags
	cmd := &cobra.Command{
		Use:   "plan",
		Short: "Show a running sculpt's current plan and what became of it",
		Long: `Ask a running sculpt for the plan of its last interval: per workload the rule
that matched, the genes it read, the arrangement it wants and the actions that
carry it out (advise: would; apply: applied), the actions the guard held back
and those undone, as sculpt run prints them.`,
		Example: `  sculpt plan
  sculpt plan --json | jq '.plan.decisions[].rule'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p api.PlanBody
			if err := cf.client().Get(cmd.Context(), "/v1/plan", &p); err != nil {
				return err
			}
			if cf.asJSON {
				return printJSON(a, p)
			}
			fmt.Fprintf(a.stdout, "plan of interval %d (mode %s), %d decision(s), %d workload(s) arranged\n",
				p.Tick, p.Mode, len(p.Plan.Decisions), len(p.Arranged))
			st := &engine.Step{Tick: p.Tick, Plan: p.Plan, Applied: p.Applied, Refused: p.Refused, Undone: p.Undone, Rewards: p.Rewards}
			// A plan printed once is said in full: advise lists the
			// actions, apply the ones applied.
			newStepPrinter(a.stdout, p.Mode).print(p.Time, st)
			return nil
		},
	}
	cf.add(cmd.Flags())
	return cmd
}

func newWhyCmd(a *app) *cobra.Command {
	var cf clientFlags
	var last int
	cmd := &cobra.Command{
		Use:   "why WORKLOAD",
		Short: "Explain a workload's arrangement: its DNA, the decisions and the rewards behind it",
		Long: `Ask a running sculpt why WORKLOAD (its ID, or a name only one workload has) is
arranged as it is: its archetype and genes, the rule and want in force this
interval with the actions planned, applied or refused, its reward, and the
latest audit records about it (decisions, actions, refusals, undos, rewards
and verdicts).`,
		Example: `  sculpt why memcached
  sculpt why 'cg:/system.slice/nginx.service' --last 50`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c := cf.client()
			var wb api.WorkloadBody
			if err := c.Get(cmd.Context(), api.WorkloadPath(args[0]), &wb); err != nil {
				var ae *api.APIError
				if errors.As(err, &ae) && ae.Code == 404 {
					return usageError{err}
				}
				return err
			}
			recs, err := auditOf(cmd.Context(), c, wb.DNA.ID, last)
			if err != nil {
				return err
			}
			if cf.asJSON {
				return printJSON(a, struct {
					Workload api.WorkloadBody  `json:"workload"`
					Audit    []json.RawMessage `json:"audit"`
				}{wb, recs})
			}
			printWhy(a.stdout, wb, recs)
			return nil
		},
	}
	cf.add(cmd.Flags())
	cmd.Flags().IntVar(&last, "last", 20, "audit records to show")
	return cmd
}

// printWhy says why a workload is arranged as it is: its DNA, this
// interval's decision and actions, its reward and its audit history.
func printWhy(w io.Writer, wb api.WorkloadBody, recs []json.RawMessage) {
	d := wb.DNA
	fmt.Fprintf(w, "%s (%s): %s", d.Name, d.ID, d.Archetype)
	if d.Archetype != "" {
		fmt.Fprintf(w, " (confidence %.2f)", d.Confidence)
	}
	fmt.Fprintln(w)
	genes := make([]string, 0, len(d.Genes))
	for _, g := range sortedKeys(d.Genes) {
		genes = append(genes, fmt.Sprintf("%s=%s", g, humanValue(g, d.Genes[g])))
	}
	fmt.Fprintf(w, "  genes: %s\n", strings.Join(genes, " "))
	switch {
	case wb.Decision != nil:
		fmt.Fprint(w, decisionText(*wb.Decision, engine.ModeAdvise, "planned"))
	case wb.Arranged:
		fmt.Fprintln(w, "  no decision this interval; its arrangement stays in force")
	default:
		fmt.Fprintln(w, "  no rule wants anything for it: sculpt leaves it as it is")
	}
	for _, x := range wb.Applied {
		fmt.Fprintf(w, "  applied: %s  (%s)%s\n", x.Action, x.Reason, errText(x.Err))
	}
	for _, x := range wb.Refused {
		fmt.Fprintf(w, "  held back: %s  (%s)\n", x.Action, x.Reason)
	}
	for _, x := range wb.Undone {
		fmt.Fprintf(w, "  undone: %s  (%s)%s\n", x.Action, x.Reason, errText(x.Err))
	}
	if wb.Reward != nil {
		fmt.Fprintf(w, "  reward: %s %.3f\n", wb.Reward.Kind, wb.Reward.Value)
	}
	fmt.Fprintf(w, "history (last %d audit records):\n", len(recs))
	for _, r := range recs {
		fmt.Fprintf(w, "  %s\n", auditLine(r))
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return ": " + err.Error()
}

// auditOf pages through the server's audit log for one workload and keeps
// the latest n records.
func auditOf(ctx context.Context, c *api.Client, id string, n int) ([]json.RawMessage, error) {
	var out []json.RawMessage
	after := uint64(0)
	for {
		var page api.AuditBody
		q := url.Values{"workload": {id}, "after": {fmt.Sprint(after)}, "limit": {"1000"}}
		if err := c.Get(ctx, "/v1/audit?"+q.Encode(), &page); err != nil {
			return nil, err
		}
		for _, r := range page.Records {
			out = append(out, r.Record)
		}
		if page.Next == after {
			break
		}
		after = page.Next
	}
	return out[max(0, len(out)-n):], nil
}

// auditLine is one audit record in a line.
func auditLine(raw json.RawMessage) string {
	var r struct {
		Time    time.Time       `json:"time"`
		Tick    int             `json:"tick"`
		Event   string          `json:"event"`
		Rule    string          `json:"rule"`
		Action  *hal.JSONAction `json:"action"`
		Reason  string          `json:"reason"`
		Error   string          `json:"error"`
		Before  *engine.Reward  `json:"reward_before"`
		Reward  *engine.Reward  `json:"reward"`
		Verdict string          `json:"verdict"`
	}
	if err := json.Unmarshal(raw, &r); err != nil {
		return string(raw)
	}
	parts := []string{fmt.Sprintf("%s #%d %s", r.Time.Format(time.TimeOnly), r.Tick, r.Event)}
	if r.Rule != "" {
		parts = append(parts, "rule "+r.Rule)
	}
	if r.Action != nil {
		parts = append(parts, fmt.Sprint(r.Action.Action))
	}
	if r.Reason != "" {
		parts = append(parts, r.Reason)
	}
	if r.Before != nil && r.Reward != nil {
		parts = append(parts, fmt.Sprintf("reward %.3f -> %.3f", r.Before.Value, r.Reward.Value))
	} else if r.Reward != nil {
		parts = append(parts, fmt.Sprintf("reward %.3f", r.Reward.Value))
	}
	if r.Verdict != "" {
		parts = append(parts, r.Verdict)
	}
	if r.Error != "" {
		parts = append(parts, "error: "+r.Error)
	}
	return strings.Join(parts, ": ")
}
