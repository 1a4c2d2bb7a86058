package main

import (
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/pflag"

	"sculpt/internal/dna"
	"sculpt/internal/engine"
	"sculpt/internal/telemetry"
	"sculpt/internal/workload"
)

// newObserver wires discovery, the default collectors (less those tel
// turns off) and the profiler. The caller closes the returned resources
// (held /proc descriptors, perf events, eBPF links) with closeObserver.
//
// Discovery is told the processes that started sculpt (its shell, terminal
// multiplexer, ssh session), so that the programs started from the same
// shell are workloads of their own (docs/workloads.md, "Sessions").
func (a *app) newObserver(sel workload.Selector, window time.Duration, tel telemetry.DefaultOptions) (*engine.Observer, *observerResources, error) {
	ancestors, err := workload.Ancestors(a.roots, os.Getpid())
	if err != nil {
		// Not fatal: say so and go on.
		a.log.Warn("cannot list the processes that started sculpt: they are not protected, and their session is one workload", "err", err)
	}
	disc := workload.NewDiscoverer(a.roots, workload.Options{Self: os.Getpid(), Ancestors: ancestors})
	sampler, notes, err := telemetry.NewDefaultSampler(a.roots, tel)
	if err != nil {
		_ = disc.Close()
		return nil, nil, err
	}
	for _, n := range notes {
		a.log.Debug("telemetry", "note", n)
	}
	return engine.NewObserver(disc, sampler, sel, window), &observerResources{disc, sampler, ancestors}, nil
}

// withoutFlag adds --without to a command that observes: telemetry
// sources to leave off.
func withoutFlag(f *pflag.FlagSet, dst *[]string) {
	f.StringSliceVar(dst, "without", nil, "telemetry sources to leave off: perf (hardware counters, where there is a PMU), ebpf (it hooks every system call of the watched processes); the genes they feed are then absent")
}

// telemetryOptions checks the values of --without and returns the
// collectors' options.
func telemetryOptions(without []string) (telemetry.DefaultOptions, error) {
	var o telemetry.DefaultOptions
	for _, s := range without {
		switch s {
		case "perf":
			o.NoPerf = true
		case "ebpf":
			o.NoEBPF = true
		default:
			return o, usagef("--without %s: want perf or ebpf", flagValue(s))
		}
	}
	return o, nil
}

// observerResources are what an observer holds open.
type observerResources struct {
	disc      *workload.Discoverer
	sampler   *telemetry.Sampler
	ancestors []int // the processes that started sculpt, nearest first
}

// closeObserver releases the observer's kernel resources, logging failures:
// they cannot change the command's result any more.
func (a *app) closeObserver(r *observerResources) {
	if err := r.sampler.Close(); err != nil {
		a.log.Warn("closing collectors", "err", err)
	}
	if err := r.disc.Close(); err != nil {
		a.log.Warn("closing workload discovery", "err", err)
	}
}

// dnaJSON is the contract's shape of `sculpt dna --json` (and of one line of
// `sculpt run --json`).
type dnaJSON struct {
	Time      time.Time `json:"time"`
	Workloads []dna.DNA `json:"workloads"`
	System    dna.Genes `json:"system"`
	Exited    []int     `json:"exited,omitempty"`
	Errors    []string  `json:"collector_errors,omitempty"`
}

func toJSON(obs *engine.Observation) dnaJSON {
	out := dnaJSON{Time: obs.Time, Workloads: obs.DNA, System: obs.System, Exited: obs.Exited}
	if out.Workloads == nil {
		out.Workloads = []dna.DNA{}
	}
	for _, r := range obs.Reports {
		if r.Err != nil {
			out.Errors = append(out.Errors, fmt.Sprintf("%s: %v", r.Name, r.Err))
		}
	}
	return out
}

// tableColumn is one gene column of the live table: its heading, what
// the legend says of it, and how to read its value from the genes.
type tableColumn struct {
	head, legend string
	value        func(dna.Genes) (float64, string, bool) // value, gene to format it as, present
}

// gene is a column showing one gene as it is.
func gene(name string) func(dna.Genes) (float64, string, bool) {
	return func(g dna.Genes) (float64, string, bool) {
		v, ok := g[name]
		return v, name, ok
	}
}

// tableColumns are the gene columns of the live table, in order.
var tableColumns = []tableColumn{
	{"CPU", "CPU used, in cores (cpu_util)", gene("cpu_util")},
	{"USER", "share of that CPU in user space (user_frac)", gene("user_frac")},
	{"WAIT", "time runnable but waiting for a CPU, in cores: threads waiting on average (runq_delay_frac x cpu_util)",
		func(g dna.Genes) (float64, string, bool) {
			f, okF := g["runq_delay_frac"]
			c, okC := g["cpu_util"]
			return f * c, "cpu_util", okF && okC
		}},
	{"VCSW/s", "voluntary context switches per second: the threads blocked and woke up (ctx_vol_rate)", gene("ctx_vol_rate")},
	{"FLT/s", "minor page faults per second: fresh memory touched (minflt_rate)", gene("minflt_rate")},
	{"RSS", "resident memory (rss_bytes)", gene("rss_bytes")},
	{"WR/s", "bytes written to storage per second (io_write_bps)", gene("io_write_bps")},
	{"IPC/s", "inter-process communication calls per second: pipes, unix sockets, futexes (ipc_rate)", gene("ipc_rate")},
	{"PEERS", "distinct processes it talks to over pipes and sockets (comm_peers)", gene("comm_peers")},
}

// tableLegend explains the live table's columns; sculpt run --help and
// docs/cli.md show it, and observe mode prints it above its first table.
func tableLegend() string {
	var b strings.Builder
	b.WriteString("Columns of the table (\"-\": not measured on this machine, see docs/genes.md):\n")
	b.WriteString("  WORKLOAD   its name: the unit, container, or main command\n")
	b.WriteString("  ID         its stable ID (shortened so that its distinguishing part shows)\n")
	b.WriteString("  PIDS       how many processes it has\n")
	b.WriteString("  ARCHETYPE  the kind of behaviour it resembles, with the classifier's confidence 0..1 in parentheses\n")
	for _, c := range tableColumns {
		fmt.Fprintf(&b, "  %-9s  %s\n", c.head, c.legend)
	}
	return b.String()
}

// writeTable prints the top workloads by CPU as a table.
func writeTable(w io.Writer, ds []dna.DNA, top int) error {
	ds = append([]dna.DNA(nil), ds...)
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].Genes["cpu_util"] > ds[j].Genes["cpu_util"] })
	if top > 0 && len(ds) > top {
		ds = ds[:top]
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	head := []string{"WORKLOAD", "ID", "PIDS", "ARCHETYPE"}
	for _, c := range tableColumns {
		head = append(head, c.head)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, d := range ds {
		row := []string{trunc(d.Name, 28), truncID(d.ID, 32), fmt.Sprint(len(d.PIDs)), archLabel(d)}
		for _, c := range tableColumns {
			cell := "-"
			if v, as, ok := c.value(d.Genes); ok {
				cell = humanValue(as, v)
			}
			row = append(row, cell)
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	return tw.Flush()
}

// writeDetail prints every gene of each workload.
func writeDetail(w io.Writer, ds []dna.DNA) error {
	for _, d := range ds {
		fmt.Fprintf(w, "%s  (%s, %s, pids %s)\n", d.Name, d.ID, d.WorkloadKind, pidList(d.PIDs))
		fmt.Fprintf(w, "  archetype  %s  [%s]\n", archLabel(d), d.Classifier)
		if d.Novelty != nil {
			verdict := "a known kind"
			if d.Novel {
				verdict = "NOVEL: far from every known kind"
			}
			fmt.Fprintf(w, "  novelty    %.2f (%s)\n", *d.Novelty, verdict)
		}
		if d.PhaseChange {
			fmt.Fprintf(w, "  phase change: its DNA shifted and stayed shifted\n")
		}
		present := map[string]bool{}
		for _, gi := range dna.Catalog {
			v, ok := d.Genes[gi.Name]
			if !ok {
				continue
			}
			present[gi.Name] = true
			fmt.Fprintf(w, "  %-20s %14s  %s\n", gi.Name, humanValue(gi.Name, v), gi.Unit)
		}
		// Absent genes grouped by why they are absent (docs/genes.md).
		var reasons []string
		absent := map[string][]string{}
		for _, gi := range dna.Catalog {
			if !present[gi.Name] {
				r := dna.AbsentReason(gi.Name)
				if _, ok := absent[r]; !ok {
					reasons = append(reasons, r)
				}
				absent[r] = append(absent[r], gi.Name)
			}
		}
		if len(d.Peers) > 0 {
			var ps []string
			for _, id := range dna.SortedPeers(d.Peers) {
				ps = append(ps, fmt.Sprintf("%s (%g)", id, d.Peers[id]))
			}
			fmt.Fprintf(w, "  peers      %s\n", strings.Join(ps, ", "))
		}
		if len(reasons) > 0 {
			fmt.Fprintf(w, "  not measured:\n")
			for _, r := range reasons {
				fmt.Fprintf(w, "    %s: %s\n", strings.Join(absent[r], ", "), r)
			}
		}
		fmt.Fprintln(w)
	}
	return nil
}

// archLabel is the archetype (a kind, unknown or novel) with its
// confidence and, from the learned model, the program it resembles:
// "memory-streaming (0.83) ~stress-vm", "novel ~idle-sleep".
func archLabel(d dna.DNA) string {
	if d.Archetype == "" {
		return "-"
	}
	s := d.Archetype
	if d.Archetype != dna.KindNovel && d.Archetype != dna.KindUnknown {
		s = fmt.Sprintf("%s (%.2f)", d.Archetype, d.Confidence)
	}
	if d.Resembles != "" {
		s += " ~" + d.Resembles
	}
	return s
}

func humanValue(name string, v float64) string {
	switch {
	case strings.HasSuffix(name, "_bytes"), strings.HasSuffix(name, "_bps"), name == "io_avg_size", name == "mem_growth_rate":
		return humanBytes(v)
	case strings.HasSuffix(name, "_frac"), strings.HasSuffix(name, "_ratio"), name == "cpu_util", strings.HasPrefix(name, "psi_"), name == "burstiness":
		return fmt.Sprintf("%.2f", v)
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v == float64(int64(v)):
		return fmt.Sprintf("%d", int64(v))
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func humanBytes(v float64) string {
	neg := v < 0
	if neg {
		v = -v
	}
	units := []string{"B", "K", "M", "G", "T"}
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	s := fmt.Sprintf("%.0f%s", v, units[i])
	if v < 10 && i > 0 {
		s = fmt.Sprintf("%.1f%s", v, units[i])
	}
	if neg {
		s = "-" + s
	}
	return s
}

func pidList(pids []int) string {
	if len(pids) > 6 {
		return fmt.Sprintf("%v … (%d)", pids[:6], len(pids))
	}
	return fmt.Sprint(pids)
}

// truncID shortens a workload ID to n characters so that the part that
// tells it from its neighbours shows: the leading path elements give way
// first ("cg:…/jobs/job1"); an ID whose last element alone is too long
// keeps its start ("cg:/process_api/cca032aa2000d7…", "tree:4312@1…",
// the PID whole).
func truncID(id string, n int) string {
	if len(id) <= n {
		return id
	}
	kind, path, ok := strings.Cut(id, ":")
	if ok && len(path) > 1 {
		for i := strings.IndexByte(path[1:], '/'); i >= 0; i = strings.IndexByte(path[1:], '/') {
			path = path[i+1:]
			if s := kind + ":…" + path; len(s)-len("…")+1 <= n {
				return s
			}
		}
	}
	return id[:n-1] + "…"
}

// exclusionLine is the line that says, once, why sculpt never touches a
// workload.
func exclusionLine(x engine.Exclusion) string {
	return fmt.Sprintf("excluded: %s (%s): never touched: %s", x.Name, x.Workload, x.Reason)
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
