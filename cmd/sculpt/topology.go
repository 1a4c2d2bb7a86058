package main

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"sculpt/internal/hal"
	"sculpt/internal/hal/linux"
	"sculpt/internal/hal/topology"
	"sculpt/internal/telemetry"
)

func init() { register(newTopologyCmd) }

// topIRQs is how many interrupt lines the text output shows.
const topIRQs = 10

// topologyReport is what `sculpt topology --json` prints: the discovered
// topology with the telemetry sources beside it.
type topologyReport struct {
	*topology.Topology
	TelemetrySources []telemetry.SourceStatus `json:"telemetry_sources"`
	// NUMABalancing says whether the kernel's automatic NUMA balancing, or
	// sculpt, owns page placement.
	NUMABalancing hal.Capability `json:"numa_balancing"`
}

func newTopologyCmd(a *app) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "topology",
		Short: "Print the machine's CPUs, caches, NUMA nodes, PCI devices, NICs, disks, IRQs and telemetry sources",
		Long: `Print what sculpt sees of the machine: CPUs with their cores, packages and SMT
siblings; caches and the CPUs sharing each; NUMA nodes with memory and distances;
PCI devices with link speed/width and SR-IOV; NICs with queues and IRQs; the
busiest interrupts; and which telemetry sources work here. --json prints all of
it (every IRQ included). See docs/topology.md for each field.`,
		Example: `  sculpt topology
  sculpt topology --json | jq '.nodes'
  sculpt --sys-root /host/sys --proc-root /host/proc topology`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			topo, err := topology.Discover(a.roots)
			if err != nil {
				return fmt.Errorf("discover topology: %w", err)
			}
			rep := topologyReport{Topology: topo, TelemetrySources: telemetry.ProbeSources(a.roots), NUMABalancing: linux.NUMABalancing(a.roots)}
			if asJSON {
				return writeJSON(a, rep)
			}
			return writeTopologyText(a.stdout, rep)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the whole structure as JSON")
	return cmd
}

// writeTopologyText prints the report section by section for a person.
func writeTopologyText(out io.Writer, rep topologyReport) error {
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	w := &topoPrinter{w: tw}
	t := rep.Topology

	topoSection(w, "CPUs & cores")
	threads := 0
	for _, c := range t.CPUs {
		threads = max(threads, len(c.ThreadSiblings))
	}
	w.printf("  %d CPUs (%d online), %d cores, %d package(s), %d thread(s) per core\n",
		len(t.CPUs), len(t.OnlineCPUs()), t.Cores(), len(t.Packages()), threads)
	for _, p := range t.Packages() {
		var cpus []int
		for _, c := range t.CPUs {
			if c.PackageID == p {
				cpus = append(cpus, c.ID)
			}
		}
		w.printf("  package %d\tCPUs %s\n", p, topology.FormatCPUList(cpus))
	}
	if off := topoOfflineCPUs(t); len(off) > 0 {
		w.printf("  offline\tCPUs %s\n", topology.FormatCPUList(off))
	}

	topoSection(w, "Caches")
	type cacheKind struct {
		level  int
		typ    string
		size   int64
		shared int
	}
	var kinds []cacheKind
	count := map[cacheKind]int{}
	example := map[cacheKind][]int{}
	for _, c := range t.Caches {
		k := cacheKind{c.Level, c.Type, c.SizeBytes, len(c.CPUs)}
		if count[k] == 0 {
			kinds = append(kinds, k)
			example[k] = c.CPUs
		}
		count[k]++
	}
	if len(kinds) == 0 {
		w.printf("  none reported by the kernel\n")
	}
	for _, k := range kinds {
		w.printf("  L%d %s\t%s\tx%d\tshared by %d CPU(s), e.g. %s\n",
			k.level, k.typ, topoBytes(uint64(k.size)), count[k], k.shared, topology.FormatCPUList(example[k]))
	}

	topoSection(w, "NUMA nodes")
	w.printf("  node\tCPUs\tmemory\tdistances\n")
	for _, n := range t.Nodes {
		d := make([]string, len(n.Distances))
		for i, v := range n.Distances {
			d[i] = fmt.Sprint(v)
		}
		w.printf("  %d\t%s\t%s\t%s\n", n.ID, topoDash(topology.FormatCPUList(n.CPUs)), topoBytes(n.MemTotalBytes), strings.Join(d, " "))
	}
	if nb := rep.NUMABalancing; nb.Supported {
		w.printf("  page placement: automatic NUMA balancing on (%s)\n", nb.Detail)
	} else if nb.Reason != "" {
		w.printf("  page placement: automatic NUMA balancing off (%s)\n", nb.Reason)
	}

	topoSection(w, "PCI devices")
	if len(t.PCIDevices) == 0 {
		w.printf("  none\n")
	}
	for _, d := range t.PCIDevices {
		var extra []string
		if d.CurrentLinkSpeed != "" || d.CurrentLinkWidth > 0 {
			extra = append(extra, fmt.Sprintf("link %s x%d (max %s x%d)", d.CurrentLinkSpeed, d.CurrentLinkWidth, d.MaxLinkSpeed, d.MaxLinkWidth))
		}
		if d.SRIOVTotalVFs != nil {
			num := 0
			if d.SRIOVNumVFs != nil {
				num = *d.SRIOVNumVFs
			}
			extra = append(extra, fmt.Sprintf("SR-IOV %d/%d VFs", num, *d.SRIOVTotalVFs))
		}
		w.printf("  %s\t%s\t%s:%s\t%s\t%s\t%s\n", d.Address, topoDash(d.ClassName), strings.TrimPrefix(d.Vendor, "0x"),
			strings.TrimPrefix(d.Device, "0x"), topoDash(d.Driver), topoNodeName(d.NUMANode), strings.Join(extra, ", "))
	}

	nodeNote(w, t, slices.ContainsFunc(t.PCIDevices, func(d topology.PCIDevice) bool { return d.NUMANode < 0 }))

	topoSection(w, "NICs")
	for _, n := range t.NICs {
		where := n.PCIAddress
		if n.Virtual {
			where = "virtual"
		}
		speed := "-"
		if n.SpeedMbps > 0 {
			speed = fmt.Sprintf("%d Mb/s", n.SpeedMbps)
		}
		w.printf("  %s\t%s\t%s\t%s\t%s\t%s\tmtu %d\t%d rx / %d tx queues\t%d IRQs\n", n.Name, topoDash(n.Driver), topoDash(where),
			topoNodeName(n.NUMANode), n.OperState, speed, n.MTU, n.RxQueues, n.TxQueues, len(n.IRQs))
	}

	nodeNote(w, t, slices.ContainsFunc(t.NICs, func(n topology.NIC) bool { return n.NUMANode < 0 }))

	topoSection(w, "Disks (the devices block I/O caps and weights name)")
	if len(t.Disks) == 0 {
		w.printf("  none under /sys/block (loop, RAM and zram devices are left out)\n")
	}
	for _, d := range t.Disks {
		kind := "ssd"
		if d.Rotational {
			kind = "rotational"
		}
		note := ""
		if d.Scheduler != "bfq" {
			note = "proportional weights need bfq"
		}
		w.printf("  %s\t%s\t%s\tscheduler %s\t%s\t%s\n", d.Name, d.Dev, kind, topoDash(d.Scheduler), topoNodeName(d.NUMANode), note)
	}

	topoSection(w, fmt.Sprintf("IRQs (busiest %d of %d; --json lists all)", min(topIRQs, len(t.IRQs)), len(t.IRQs)))
	irqs := slices.Clone(t.IRQs)
	slices.SortStableFunc(irqs, func(a, b topology.IRQ) int { return cmp.Compare(b.Total, a.Total) })
	w.printf("  irq\ttotal\taffinity\teffective\tactions\n")
	for _, q := range irqs[:min(topIRQs, len(irqs))] {
		what := strings.Join(q.Actions, ", ")
		if q.Number < 0 {
			what = q.Description
		}
		w.printf("  %s\t%d\t%s\t%s\t%s\n", q.IRQ, q.Total, topoDash(topology.FormatCPUList(q.SMPAffinity)),
			topoDash(topology.FormatCPUList(q.EffectiveAffinity)), what)
	}

	topoSection(w, "Telemetry sources")
	for _, s := range rep.TelemetrySources {
		state, why := "available", s.Detail
		if !s.Available {
			state, why = "unavailable", s.Reason
		}
		w.printf("  %s\t%s\t%s\n", s.Name, state, why)
	}
	if w.err != nil {
		return w.err
	}
	return tw.Flush()
}

// topoPrinter remembers the first write error so that the sections above
// read as plain prints; go vet checks printf's format like fmt.Printf's.
type topoPrinter struct {
	w   io.Writer
	err error
}

func (p *topoPrinter) printf(format string, args ...any) {
	if p.err == nil {
		_, p.err = fmt.Fprintf(p.w, format, args...)
	}
}

func topoSection(w *topoPrinter, title string) {
	w.printf("\n%s\n", title)
}

func topoOfflineCPUs(t *topology.Topology) []int {
	var ids []int
	for _, c := range t.CPUs {
		if !c.Online {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// nodeNote explains "node ?" under a section that shows it.
func nodeNote(w *topoPrinter, t *topology.Topology, shown bool) {
	if !shown {
		return
	}
	w.printf("  (node ?: the kernel knows no NUMA node for it: numa_node is -1, as for virtual devices and on firmware that does not say")
	if len(t.Nodes) == 1 {
		w.printf("; with one node it can only be node %d", t.Nodes[0].ID)
	}
	w.printf(")\n")
}

func topoNodeName(n int) string {
	if n < 0 {
		return "node ?"
	}
	return fmt.Sprintf("node %d", n)
}

func topoDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// topoBytes writes n in binary units: "512 KiB", "62.8 GiB".
func topoBytes(n uint64) string {
	if n == 0 {
		return "-"
	}
	units := []string{"B", "KiB", "MiB", "GiB", "TiB"}
	v, i := float64(n), 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	if v == float64(int64(v)) {
		return fmt.Sprintf("%d %s", int64(v), units[i])
	}
	return fmt.Sprintf("%.1f %s", v, units[i])
}
