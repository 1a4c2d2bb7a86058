package main

import (
	"fmt"
	"io"
	"strings"
	"time"

	"sculpt/internal/engine"
	"sculpt/internal/hal"
)

// stepPrinter writes the text output of sculpt run in advise and apply
// modes. An interval prints only what changed: a workload's plan when it is
// new or differs from the one printed last for it (so a steady advice is
// said once, not every interval), a plan that lapsed, and every action
// applied, undone or held back. Each interval that prints anything opens
// with one line holding its time.
type stepPrinter struct {
	w    io.Writer
	mode engine.Mode
	// shown is the last plan printed per workload ID: its text and name.
	shown map[string]shownPlan
	// agent is the last agent line printed (its context and level).
	agent string
}

// shownPlan is what a printed plan is compared by: the rule, the wanted
// arrangement, its notes and actions, not the gene values of the moment.
type shownPlan struct{ name, key string }

func newStepPrinter(w io.Writer, mode engine.Mode) *stepPrinter {
	return &stepPrinter{w: w, mode: mode, shown: map[string]shownPlan{}}
}

// print writes one interval's plans (advise) or changes (apply).
func (p *stepPrinter) print(t time.Time, st *engine.Step) {
	var b strings.Builder
	verb := "would"
	if p.mode == engine.ModeApply {
		verb = "applied"
	}
	for _, x := range st.Excluded {
		fmt.Fprintf(&b, "  %s\n", exclusionLine(x))
	}
	planned := map[string]bool{}
	unchanged := 0
	for _, d := range st.Plan.Decisions {
		if len(d.Actions) == 0 && p.mode == engine.ModeApply {
			continue
		}
		planned[d.Workload] = true
		key := decisionKey(d)
		if prev, ok := p.shown[d.Workload]; ok && prev.key == key {
			unchanged++
			continue
		}
		p.shown[d.Workload] = shownPlan{d.Name, key}
		b.WriteString(decisionText(d, p.mode, verb))
	}
	if p.mode == engine.ModeAdvise {
		for id, prev := range p.shown {
			if !planned[id] {
				fmt.Fprintf(&b, "  %s (%s): no plan any more (no rule matches, or it left)\n", prev.name, id)
				delete(p.shown, id)
			}
		}
	}
	if a := st.Agent; a != nil {
		key := fmt.Sprintf("%s|%d|%v", a.Context, a.Level, a.Settled)
		if key != p.agent || a.Move != "" {
			p.agent = key
			b.WriteString(agentLine(a))
		}
	}
	for _, ap := range st.Applied {
		if ap.Gone {
			fmt.Fprintf(&b, "    skipped: %s  (the process exited first)\n", ap.Action)
			continue
		}
		if ap.Err != nil {
			fmt.Fprintf(&b, "    FAILED: %s: %v\n", ap.Action, ap.Err)
			continue
		}
		fmt.Fprintf(&b, "    %s: %s  (%s)\n", verb, ap.Action, ap.Reason)
	}
	for _, u := range st.Undone {
		fmt.Fprintf(&b, "    undone: %s  (%s)\n", u.Action, u.Reason)
	}
	for _, r := range st.Refused {
		fmt.Fprintf(&b, "    held back: %s  (%s)\n", r.Action, r.Reason)
	}
	if b.Len() == 0 {
		return
	}
	fmt.Fprintf(p.w, "%s", t.Format(time.TimeOnly))
	if unchanged > 0 {
		fmt.Fprintf(p.w, "  (%d plan(s) as before)", unchanged)
	}
	fmt.Fprintf(p.w, "\n%s", b.String())
}

// decisionKey identifies a plan for "as before": everything but the genes.
func decisionKey(d engine.Decision) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s|%s|%v|%q", d.Rule, d.Want.Signature(), d.CPUs, d.Notes)
	for _, pa := range d.Actions {
		fmt.Fprintf(&b, "|%s", pa.Action)
	}
	return b.String()
}

// decisionText is one workload's plan: the rule, the genes it read, what it
// wants and (advise) the actions that would carry it out.
func decisionText(d engine.Decision, mode engine.Mode, verb string) string {
	var b strings.Builder
	genes := make([]string, 0, len(d.Genes))
	for _, g := range sortedKeys(d.Genes) {
		genes = append(genes, fmt.Sprintf("%s=%s", g, humanValue(g, d.Genes[g])))
	}
	fmt.Fprintf(&b, "  %s (%s): rule %s [%s] -> %s", d.Name, d.Workload, d.Rule, strings.Join(genes, " "), d.Want.Signature())
	if d.CPUs != nil {
		fmt.Fprintf(&b, " on CPUs %s", hal.FormatList(d.CPUs))
	}
	b.WriteByte('\n')
	for _, n := range d.Notes {
		fmt.Fprintf(&b, "    note: %s\n", n)
	}
	if mode == engine.ModeAdvise {
		for _, pa := range d.Actions {
			fmt.Fprintf(&b, "    %s: %s  (%s)\n", verb, pa.Action, pa.Reason)
		}
	}
	return b.String()
}

// agentLine is the agent's state as a person reads it: what it arranges
// for, the level in force, how it got there and the objectives' last
// measure.
func agentLine(a *engine.AgentState) string {
	var b strings.Builder
	if a.Levels == 0 {
		fmt.Fprintf(&b, "  agent: idle (%s)\n", a.Context)
		return b.String()
	}
	state := "searching"
	if a.Settled {
		state = fmt.Sprintf("settled after %d intervals", a.ConvergedAfter)
	}
	fmt.Fprintf(&b, "  agent: %s: level %d of %d, %s", a.Context, a.Level, a.Levels-1, state)
	if a.Start != "" {
		fmt.Fprintf(&b, " (started from %s)", a.Start)
	}
	b.WriteByte('\n')
	if a.Move != "" {
		fmt.Fprintf(&b, "    %s\n", a.Move)
	}
	for _, o := range a.Objectives {
		switch {
		case !o.Latency:
			fmt.Fprintf(&b, "    %s %s: %.2f cores\n", o.Name, o.Objective, o.Value)
		case !o.Known:
			fmt.Fprintf(&b, "    %s %s: not measured (%s)\n", o.Name, o.Objective, o.Why)
		default:
			verdict := "met"
			if !o.Met {
				verdict = "VIOLATED"
			}
			fmt.Fprintf(&b, "    %s %s: %v, %s (batch work %.2f cores)\n", o.Name, o.Objective,
				time.Duration(o.Value*float64(time.Second)).Round(time.Microsecond), verdict, a.BatchCPU)
		}
	}
	return b.String()
}
