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
			return o, usagef("--without %q: want perf or ebpf", s)
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

// tableGenes are the columns of the live table.
var tableGenes = []struct{ gene, head string }{
	{"cpu_util", "CPU"},
	{"user_frac", "USER"},
	{"runq_delay_frac", "RUNQ"},
	{"ctx_vol_rate", "VCSW/s"},
	{"minflt_rate", "FLT/s"},
	{"rss_bytes", "RSS"},
	{"io_write_bps", "WR/s"},
	{"ipc_rate", "IPC/s"},
	{"comm_peers", "PEERS"},
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
	for _, c := range tableGenes {
		head = append(head, c.head)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, d := range ds {
		row := []string{trunc(d.Name, 28), truncID(d.ID, 32), fmt.Sprint(len(d.PIDs)), archLabel(d)}
		for _, c := range tableGenes {
			row = append(row, formatGene(c.gene, d.Genes))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	return tw.Flush()
}

// writeDetail prints every gene of each workload.
func writeDetail(w io.Writer, ds []dna.DNA) error {
	for _, d := range ds {
		fmt.Fprintf(w, "%s  (%s, %s, pids %s)\n", d.Name, d.ID, d.Kind, pidList(d.PIDs))
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
		var absent []string
		for _, gi := range dna.Catalog {
			if !present[gi.Name] {
				absent = append(absent, gi.Name)
			}
		}
		if len(d.Peers) > 0 {
			var ps []string
			for _, id := range dna.SortedPeers(d.Peers) {
				ps = append(ps, fmt.Sprintf("%s (%g)", id, d.Peers[id]))
			}
			fmt.Fprintf(w, "  peers      %s\n", strings.Join(ps, ", "))
		}
		if len(absent) > 0 {
			fmt.Fprintf(w, "  not measured: %s\n", strings.Join(absent, ", "))
		}
		fmt.Fprintln(w)
	}
	return nil
}

func archLabel(d dna.DNA) string {
	if d.Archetype == "" {
		return "-"
	}
	return fmt.Sprintf("%s (%.2f)", d.Archetype, d.Confidence)
}

func formatGene(name string, g dna.Genes) string {
	v, ok := g[name]
	if !ok {
		return "-"
	}
	return humanValue(name, v)
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
