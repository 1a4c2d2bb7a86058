package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"sculpt/internal/engine"
	"sculpt/internal/hal"
	"sculpt/internal/hal/journal"
	"sculpt/internal/hal/linux"
	"sculpt/internal/hal/topology"
)

func init() { register(newActCmd) }

// actOpts are the flags every `sculpt act` subcommand shares.
type actOpts struct {
	json      bool
	journal   string
	config    string // engine config whose protected set act honours
	testPause string // hidden: hang at "recorded" or "changed" (crash tests)
}

func newActCmd(a *app) *cobra.Command {
	o := &actOpts{}
	cmd := &cobra.Command{
		Use:   "act <action> [flags]",
		Short: "Apply one journaled, revertible change by hand",
		Long: `act applies one change to the machine, as taskset, chrt, numactl/migratepages,
ethtool and ip link would, but journaled first (with the value to restore) so
that ` + "`sculpt revert`" + ` undoes it. Bad input changes nothing and exits 2.
What ` + "`sculpt run`" + ` never touches, act refuses too (exit 2): PID 1, kernel threads,
sculpt itself and the processes that started it, and with --config the
config's protected set.`,
	}
	pf := cmd.PersistentFlags()
	pf.BoolVar(&o.json, "json", false, "print the result as JSON")
	pf.StringVar(&o.journal, "journal", "", "journal file (default $SCULPT_JOURNAL or "+journal.DefaultPath+")")
	pf.StringVar(&o.config, "config", "", "engine config file whose protected set (docs/config.md) act refuses to touch")
	pf.StringVar(&o.testPause, "test-pause-at", "", "")
	_ = pf.MarkHidden("test-pause-at")

	cmd.AddCommand(
		actPin(a, o), actSched(a, o), actWeight(a, o), actQuota(a, o), actCpuset(a, o),
		actBlkio(a, o), actIOLimit(a, o), actMemBind(a, o), actMemMigrate(a, o), actIRQ(a, o),
		actQueue(a, o, hal.QueueRPS), actQueue(a, o, hal.QueueXPS), actChannels(a, o),
		actVFs(a, o), actVNIC(a, o),
	)
	return cmd
}

// journalPath resolves --journal, then $SCULPT_JOURNAL, then the default.
func journalPath(flag string) string {
	if flag != "" {
		return flag
	}
	if env := os.Getenv("SCULPT_JOURNAL"); env != "" {
		return env
	}
	return journal.DefaultPath
}

// applyAction checks act against the machine (bad input: exit 2, nothing
// journaled), then journals and applies it and prints the result.
func applyAction(cmd *cobra.Command, a *app, o *actOpts, act hal.Action) error {
	opts := linux.Options{}
	if o.testPause != "" {
		opts.Pause = pauseAt(a, o.testPause)
	} else {
		hook, err := crashHook()
		if err != nil {
			return err
		}
		opts.Pause = hook
	}
	be, err := linux.New(a.roots, opts)
	if err != nil {
		return err
	}
	if err := be.Check(act); err != nil {
		return checkError(err)
	}
	cfg := engine.DefaultConfig()
	if o.config != "" {
		data, err := readTrusted(o.config)
		if err != nil {
			return usagef("--config: %v", err)
		}
		if cfg, err = engine.ParseConfig(o.config, data); err != nil {
			return usageError{err}
		}
	}
	why, err := actRefusal(a, cfg, act)
	if err != nil {
		return err
	}
	if why != "" {
		return usagef("refused: %s", why)
	}
	j, err := journal.Open(journalPath(o.journal))
	if err != nil {
		return err
	}
	defer func() { _ = j.Close() }()
	be.SetJournal(j)
	var before *hal.ProcessState
	if pid := hal.TargetPID(act); pid > 0 {
		if arr, err := be.Snapshot(cmd.Context(), []int{pid}); err == nil {
			before = arr.Process(pid)
		}
	}
	undo, err := be.Apply(cmd.Context(), act)
	if err != nil {
		return err
	}
	msg := describe(act, undo, before)
	if o.json {
		var seq uint64
		if es := j.Entries(); len(es) > 0 {
			seq = es[len(es)-1].Seq
		}
		return writeJSON(a, map[string]any{
			"applied": hal.JSONAction{Action: act}, "undo": hal.JSONAction{Action: undo},
			"seq": seq, "journal": j.Path(), "message": msg,
		})
	}
	fmt.Fprintf(a.stdout, "%s — undo with `sculpt revert`\n", msg)
	return nil
}

// pauseAt returns a hook that prints the stage and hangs there, so a crash
// test can kill -9 sculpt at a known point (hidden flag --test-pause-at).
func pauseAt(a *app, at string) func(string) {
	return func(stage string) {
		if stage == at {
			fmt.Fprintf(a.stderr, "paused at %s\n", stage)
			for {
				time.Sleep(time.Hour)
			}
		}
	}
}

// checkError turns a bad-input error into a usage error (exit 2) naming
// the flag; other errors (not supported, unreadable state) pass through.
func checkError(err error) error {
	var ie *hal.InvalidError
	if errors.As(err, &ie) {
		flag := strings.ReplaceAll(ie.Field, " ", "-")
		if flag == "queue-kind" {
			flag = "kind"
		}
		return usagef("--%s %s: %s", flag, flagValue(ie.Value), ie.Reason)
	}
	return err
}

func writeJSON(a *app, v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// describe says what was done, and what it was before, in a sentence.
func describe(act, undo hal.Action, before *hal.ProcessState) string {
	who := func(pid int) string {
		if before != nil && before.Comm != "" {
			return fmt.Sprintf("pid %d (%s)", pid, before.Comm)
		}
		return fmt.Sprintf("pid %d", pid)
	}
	switch a := act.(type) {
	case hal.PinThreads:
		n := len(a.Threads)
		was := ""
		if before != nil {
			n = len(before.Threads)
			was = "; was " + threadSummary(before, func(t hal.ThreadState) string { return hal.FormatList(t.CPUs) })
		}
		s := fmt.Sprintf("pinned %s of %s to CPUs %s%s", threads(n), who(a.PID), hal.FormatList(a.CPUs), was)
		if st, ok := undo.(hal.Steps); ok && len(st.Steps) > 0 {
			if cs, ok := st.Steps[0].(hal.SetCpuset); ok {
				s += fmt.Sprintf(" (and its own cpuset cgroup %s, was %s)", cs.Cgroup, hal.FormatList(cs.CPUs))
			}
		}
		return s
	case hal.SetSched:
		nice := ""
		if a.Nice != nil {
			nice = fmt.Sprintf(", nice %d", *a.Nice)
		}
		n, was := 0, ""
		if before != nil {
			n = len(before.Threads)
			was = "; was " + threadSummary(before, func(t hal.ThreadState) string { return fmt.Sprintf("%s nice %d", t.Policy, t.Nice) })
		}
		return fmt.Sprintf("set %s of %s to policy %s%s%s", threads(n), who(a.PID), a.Policy, nice, was)
	case hal.MemMigrate:
		was := ""
		if before != nil && len(before.PageNodes) > 0 {
			was = "; pages per node were " + nodeCounts(before.PageNodes)
		}
		return fmt.Sprintf("moved the memory of %s to nodes %s%s", who(a.PID), hal.FormatList(a.ToNodes), was)
	}
	return fmt.Sprintf("%s; to undo: %s", capitalizeFirst(act.String()), undo.String())
}

func threads(n int) string {
	if n == 1 {
		return "1 thread"
	}
	return fmt.Sprintf("%d threads", n)
}

// threadSummary groups threads by a rendered value: "0-3" or
// "0-3 on 9 threads, 1 on 3 threads".
func threadSummary(p *hal.ProcessState, f func(hal.ThreadState) string) string {
	count := map[string]int{}
	for _, t := range p.Threads {
		count[f(t)]++
	}
	if len(count) == 1 {
		for k := range count {
			return k
		}
	}
	var keys []string
	for k := range count {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return count[keys[i]] > count[keys[j]] })
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s on %s", k, threads(count[k]))
	}
	return strings.Join(parts, ", ")
}

func nodeCounts(m map[int]int) string {
	var nodes []int
	for n := range m {
		nodes = append(nodes, n)
	}
	sort.Ints(nodes)
	parts := make([]string, len(nodes))
	for i, n := range nodes {
		parts[i] = fmt.Sprintf("node %d: %d", n, m[n])
	}
	return strings.Join(parts, ", ")
}

func capitalizeFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// parseListFlag parses a CPU or node list flag ("0-3,8").
func parseListFlag(flag, v string) ([]int, error) {
	if strings.TrimSpace(v) == "" {
		return nil, usagef("--%s: missing; give a list such as 0-3,8", flag)
	}
	l, err := topology.ParseCPUList(v)
	if err != nil {
		return nil, usagef("--%s %s: %v", flag, flagValue(v), err)
	}
	return l, nil
}

func requirePID(pid int) error {
	if pid <= 0 {
		return usagef("--pid: missing or not positive (%d); give the process ID", pid)
	}
	return nil
}

func actPin(a *app, o *actOpts) *cobra.Command {
	var pid int
	var cpus string
	c := &cobra.Command{
		Use:   "pin --pid N --cpus LIST",
		Short: "Pin every thread of a process to CPUs (sched_setaffinity per thread)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requirePID(pid); err != nil {
				return err
			}
			l, err := parseListFlag("cpus", cpus)
			if err != nil {
				return err
			}
			return applyAction(cmd, a, o, hal.PinThreads{PID: pid, CPUs: l})
		},
	}
	c.Flags().IntVar(&pid, "pid", 0, "process ID")
	c.Flags().StringVar(&cpus, "cpus", "", "CPU list, e.g. 0-3,8")
	return c
}

func actSched(a *app, o *actOpts) *cobra.Command {
	var pid, nice int
	var policy string
	c := &cobra.Command{
		Use:   "sched --pid N --policy other|batch|idle [--nice N]",
		Short: "Set the scheduling policy (and nice) of every thread of a process",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requirePID(pid); err != nil {
				return err
			}
			act := hal.SetSched{PID: pid, Policy: policy}
			if cmd.Flags().Changed("nice") {
				act.Nice = &nice
			}
			return applyAction(cmd, a, o, act)
		},
	}
	c.Flags().IntVar(&pid, "pid", 0, "process ID")
	c.Flags().StringVar(&policy, "policy", "", "other, batch or idle")
	c.Flags().IntVar(&nice, "nice", 0, "nice value -20..19 (default: keep each thread's)")
	return c
}

func actWeight(a *app, o *actOpts) *cobra.Command {
	var cg string
	var weight, shares uint64
	c := &cobra.Command{
		Use:   "weight --cgroup PATH (--weight 1..10000 | --shares 2..262144)",
		Short: "Set a cgroup's CPU weight (cpu.weight on v2, cpu.shares on v1)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			act := hal.SetCgroupCPU{Cgroup: cg}
			if cmd.Flags().Changed("weight") {
				act.Weight = &weight
			}
			if cmd.Flags().Changed("shares") {
				act.Shares = &shares
			}
			return applyAction(cmd, a, o, act)
		},
	}
	c.Flags().StringVar(&cg, "cgroup", "", "cgroup path, e.g. /sculpt/web")
	c.Flags().Uint64Var(&weight, "weight", 0, "cgroup v2 weight 1..10000 (converted to shares on v1)")
	c.Flags().Uint64Var(&shares, "shares", 0, "cgroup v1 shares 2..262144 (converted to weight on v2)")
	return c
}

func actQuota(a *app, o *actOpts) *cobra.Command {
	var cg, quota string
	var period uint64
	c := &cobra.Command{
		Use:   "quota --cgroup PATH --quota MICROSECONDS|max [--period MICROSECONDS]",
		Short: "Set a cgroup's CPU bandwidth (cpu.max on v2, cfs_quota_us/cfs_period_us on v1)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			act := hal.SetCgroupCPU{Cgroup: cg}
			if cmd.Flags().Changed("quota") {
				q := int64(-1)
				if quota != "max" {
					n, err := strconv.ParseInt(quota, 10, 64)
					if err != nil {
						return usagef("--quota %s: want microseconds per period, or max", flagValue(quota))
					}
					q = n
				}
				act.QuotaUS = &q
			}
			if cmd.Flags().Changed("period") {
				act.PeriodUS = &period
			}
			return applyAction(cmd, a, o, act)
		},
	}
	c.Flags().StringVar(&cg, "cgroup", "", "cgroup path")
	c.Flags().StringVar(&quota, "quota", "", "CPU time per period in µs, or max for no limit")
	c.Flags().Uint64Var(&period, "period", 0, "period in µs (1000..1000000)")
	return c
}

func actCpuset(a *app, o *actOpts) *cobra.Command {
	var cg, cpus, mems string
	c := &cobra.Command{
		Use:   "cpuset --cgroup PATH [--cpus LIST] [--mems LIST]",
		Short: "Set a cgroup's cpuset.cpus and/or cpuset.mems",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			act := hal.SetCpuset{Cgroup: cg}
			var err error
			if cmd.Flags().Changed("cpus") {
				if act.CPUs, err = parseListFlag("cpus", cpus); err != nil {
					return err
				}
			}
			if cmd.Flags().Changed("mems") {
				if act.Mems, err = parseListFlag("mems", mems); err != nil {
					return err
				}
			}
			return applyAction(cmd, a, o, act)
		},
	}
	c.Flags().StringVar(&cg, "cgroup", "", "cgroup path")
	c.Flags().StringVar(&cpus, "cpus", "", "CPU list")
	c.Flags().StringVar(&mems, "mems", "", "NUMA node list")
	return c
}

func actBlkio(a *app, o *actOpts) *cobra.Command {
	var cg string
	var weight uint64
	c := &cobra.Command{
		Use:   "io-weight --cgroup PATH --weight 1..1000",
		Short: "Set a cgroup's proportional block I/O weight (blkio.weight / io.weight, BFQ)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return applyAction(cmd, a, o, hal.BlkioWeight{Cgroup: cg, Weight: weight})
		},
	}
	c.Flags().StringVar(&cg, "cgroup", "", "cgroup path")
	c.Flags().Uint64Var(&weight, "weight", 0, "weight 1..1000")
	return c
}

func actIOLimit(a *app, o *actOpts) *cobra.Command {
	var cg, dev string
	var rd, wr float64
	c := &cobra.Command{
		Use:   "io-limit --cgroup PATH --device MAJ:MIN [--read-mbps N] [--write-mbps N]",
		Short: "Cap a cgroup's block I/O bandwidth on one disk (blkio.throttle / io.max; 0 removes the cap)",
		Long: `Cap a cgroup's block I/O bandwidth on one disk, in MB/s (10^6 bytes), through
cgroup v1's blkio.throttle.read_bps_device / write_bps_device or v2's io.max;
0 removes a cap. In cgroup v1 only direct I/O is capped: buffered writes reach
the disk through writeback, which the kernel charges to the root cgroup.
The disk is MAJ:MIN of a whole device (sculpt topology lists them).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, f := range []struct {
				name string
				v    float64
			}{{"read-mbps", rd}, {"write-mbps", wr}} {
				if f.v < 0 {
					return usagef("--%s %g: want MB/s >= 0 (0 removes the cap)", f.name, f.v)
				}
			}
			return applyAction(cmd, a, o, hal.BlkioLimit{Cgroup: cg, Device: dev, ReadBPS: uint64(rd * 1e6), WriteBPS: uint64(wr * 1e6)})
		},
	}
	c.Flags().StringVar(&cg, "cgroup", "", "cgroup path")
	c.Flags().StringVar(&dev, "device", "", "MAJ:MIN of the disk (e.g. 254:0)")
	c.Flags().Float64Var(&rd, "read-mbps", 0, "read cap in MB/s (0: none)")
	c.Flags().Float64Var(&wr, "write-mbps", 0, "write cap in MB/s (0: none)")
	return c
}

func actMemBind(a *app, o *actOpts) *cobra.Command {
	var cg, nodes string
	var migrate bool
	c := &cobra.Command{
		Use:   "mem-bind --cgroup PATH --nodes LIST [--migrate=false]",
		Short: "Confine a cgroup's memory to NUMA nodes (cpuset.mems, moving pages already placed)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			l, err := parseListFlag("nodes", nodes)
			if err != nil {
				return err
			}
			return applyAction(cmd, a, o, hal.MemBind{Cgroup: cg, Nodes: l, Migrate: migrate})
		},
	}
	c.Flags().StringVar(&cg, "cgroup", "", "cpuset cgroup path")
	c.Flags().StringVar(&nodes, "nodes", "", "NUMA node list")
	c.Flags().BoolVar(&migrate, "migrate", true, "also move pages already placed (cpuset.memory_migrate)")
	return c
}

func actMemMigrate(a *app, o *actOpts) *cobra.Command {
	var pid int
	var to, from string
	var chunked, shared bool
	c := &cobra.Command{
		Use:   "mem-migrate --pid N --to NODES [--from NODES] [--chunked=false] [--shared]",
		Short: "Move a process's pages to NUMA nodes (move_pages in paced chunks, or one migrate_pages)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := requirePID(pid); err != nil {
				return err
			}
			act := hal.MemMigrate{PID: pid, Chunked: chunked, Shared: shared}
			var err error
			if act.ToNodes, err = parseListFlag("to", to); err != nil {
				return err
			}
			if cmd.Flags().Changed("from") {
				if act.FromNodes, err = parseListFlag("from", from); err != nil {
					return err
				}
			}
			return applyAction(cmd, a, o, act)
		},
	}
	c.Flags().IntVar(&pid, "pid", 0, "process ID")
	c.Flags().StringVar(&to, "to", "", "target node(s); one node when chunked")
	c.Flags().StringVar(&from, "from", "", "source nodes (default: all)")
	c.Flags().BoolVar(&chunked, "chunked", true, "move in bounded, paced move_pages chunks so the process never stalls long")
	c.Flags().BoolVar(&shared, "shared", false, "chunked: also move pages other processes map (page cache, shared libraries; MPOL_MF_MOVE_ALL, root); without --chunked the kernel moves them whenever run as root")
	return c
}

func actIRQ(a *app, o *actOpts) *cobra.Command {
	var irq int
	var cpus string
	c := &cobra.Command{
		Use:   "irq --irq N --cpus LIST",
		Short: "Route a device interrupt to CPUs (/proc/irq/N/smp_affinity_list)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("irq") {
				return usagef("--irq: missing; give the IRQ number (see /proc/interrupts)")
			}
			l, err := parseListFlag("cpus", cpus)
			if err != nil {
				return err
			}
			return applyAction(cmd, a, o, hal.IRQAffinity{IRQ: irq, CPUs: l})
		},
	}
	c.Flags().IntVar(&irq, "irq", -1, "IRQ number")
	c.Flags().StringVar(&cpus, "cpus", "", "CPU list")
	return c
}

func actQueue(a *app, o *actOpts, kind string) *cobra.Command {
	var iface, mask, cpus string
	var queue int
	dir := "receive (RPS, rx-N/rps_cpus)"
	if kind == hal.QueueXPS {
		dir = "transmit (XPS, tx-N/xps_cpus)"
	}
	c := &cobra.Command{
		Use:   kind + " --iface NAME --queue N (--mask HEX | --cpus LIST)",
		Short: "Set the " + dir + " CPU mask of one queue of a network interface",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("cpus") == cmd.Flags().Changed("mask") {
				return usagef("--mask or --cpus: give exactly one")
			}
			if cmd.Flags().Changed("cpus") {
				l, err := parseListFlag("cpus", cpus)
				if err != nil {
					return err
				}
				mask = linux.MaskFromCPUs(l)
			}
			return applyAction(cmd, a, o, hal.QueueMask{Iface: iface, Type: kind, Queue: queue, Mask: mask})
		},
	}
	c.Flags().StringVar(&iface, "iface", "", "network interface")
	c.Flags().IntVar(&queue, "queue", 0, "queue index")
	c.Flags().StringVar(&mask, "mask", "", "hex CPU mask, e.g. 3")
	c.Flags().StringVar(&cpus, "cpus", "", "CPU list (instead of --mask)")
	return c
}

func actChannels(a *app, o *actOpts) *cobra.Command {
	var iface string
	var combined, rx, tx int
	c := &cobra.Command{
		Use:   "channels --iface NAME [--combined N] [--rx N] [--tx N]",
		Short: "Set a NIC's channel counts (ethtool -L)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			act := hal.Channels{Iface: iface}
			if cmd.Flags().Changed("combined") {
				act.Combined = &combined
			}
			if cmd.Flags().Changed("rx") {
				act.RX = &rx
			}
			if cmd.Flags().Changed("tx") {
				act.TX = &tx
			}
			return applyAction(cmd, a, o, act)
		},
	}
	c.Flags().StringVar(&iface, "iface", "", "network interface")
	c.Flags().IntVar(&combined, "combined", 0, "combined channels")
	c.Flags().IntVar(&rx, "rx", 0, "rx-only channels")
	c.Flags().IntVar(&tx, "tx", 0, "tx-only channels")
	return c
}

func actVFs(a *app, o *actOpts) *cobra.Command {
	var pci string
	var count int
	c := &cobra.Command{
		Use:   "vfs --pci ADDR --count N",
		Short: "Set the number of SR-IOV virtual functions of a PCI device",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return applyAction(cmd, a, o, hal.SetVFs{PCIAddr: pci, Count: count})
		},
	}
	c.Flags().StringVar(&pci, "pci", "", "PCI address, e.g. 0000:3b:00.0")
	c.Flags().IntVar(&count, "count", 0, "number of VFs")
	return c
}

func actVNIC(a *app, o *actOpts) *cobra.Command {
	parent := &cobra.Command{
		Use:   "vnic <create|delete>",
		Short: "Create or delete a virtual NIC (veth, tap, bridge, macvlan, ipvlan) via netlink",
	}
	var s hal.VNICSpec
	create := &cobra.Command{
		Use:   "create --kind KIND --name NAME [--peer NAME] [--netns NS] ...",
		Short: "Create a virtual NIC",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// As `ip -n NS link add ... type veth peer ...`: both ends in NS
			// unless --peer-netns says otherwise.
			if s.Kind == "veth" && s.PeerNetns == "" && !cmd.Flags().Changed("peer-netns") {
				s.PeerNetns = s.Netns
			}
			return applyAction(cmd, a, o, hal.CreateVNIC{Spec: s})
		},
	}
	f := create.Flags()
	f.StringVar(&s.Kind, "kind", "", "veth, tap, bridge, macvlan or ipvlan")
	f.StringVar(&s.Name, "name", "", "interface name")
	f.StringVar(&s.Peer, "peer", "", "veth: the other end's name")
	f.StringVar(&s.PeerNetns, "peer-netns", "", "veth: the other end's namespace (default: --netns)")
	f.StringVar(&s.Parent, "parent", "", "macvlan/ipvlan: the lower device")
	f.IntVar(&s.Queues, "queues", 0, "queues (a tap with more than one is multiqueue)")
	f.StringVar(&s.Netns, "netns", "", "named network namespace (/var/run/netns/NAME)")
	f.StringVar(&s.Mode, "mode", "", "macvlan: bridge|private|vepa|passthru; ipvlan: l2|l3|l3s")
	f.IntVar(&s.MTU, "mtu", 0, "MTU (default: the kernel's)")
	var d hal.DeleteVNIC
	del := &cobra.Command{
		Use:   "delete --name NAME [--netns NS]",
		Short: "Delete a virtual NIC (journaled with its spec, so revert recreates it)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return applyAction(cmd, a, o, d)
		},
	}
	del.Flags().StringVar(&d.Name, "name", "", "interface name")
	del.Flags().StringVar(&d.Netns, "netns", "", "named network namespace")
	parent.AddCommand(create, del)
	return parent
}
