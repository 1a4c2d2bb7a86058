package telemetry

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"sculpt/internal/host"
	"sculpt/internal/telemetry/bpf"
)

// EBPFCollector counts, per process, system calls by class (raw_syscalls
// sys_enter), socket bytes by family (sock sock_send_length and
// sock_recv_length), pipe bytes (sys_enter notes a read or write on a pipe,
// sys_exit adds what it returned), the bytes processes exchange over
// pipes, unix sockets and loopback TCP, and the requests each process
// serves with their latency (sock sk_data_ready to sock_send_length on the
// server's end of a TCP or unix stream connection; Linux 6.6+). All programs are BTF-typed raw
// tracepoints (tp_btf): no kprobes, no fentry. The kernel aggregates into
// two maps that Collect reads in batches; see docs/telemetry.md ("eBPF")
// for the approach and its limits. Needs x86_64 Linux with BTF
// (/sys/kernel/btf/vmlinux) and root (CAP_BPF and CAP_PERFMON); the socket
// tracepoints need Linux 6.3+ (without them socket bytes and unix/TCP peers
// are absent).
//
// The collector owns its programs, links and maps until Close.
type EBPFCollector struct {
	coll  *ebpf.Collection
	links []link.Link
	procs *ebpf.Map
	chans *ebpf.Map
	reqs  *ebpf.Map
	ncpu  int
	opts  EBPFOptions

	haveSock, haveUnix, havePipe, haveReq bool
	hooks, missing                        []string

	tracker chanTracker
	stats   EBPFStats

	// reusable batch buffers
	procKeys []uint32
	procVals []bpf.SculptProcStats
	chanKeys []bpf.SculptChanKey
	chanVals []bpf.SculptChanVal
	reqKeys  []uint32
	reqVals  []bpf.SculptReqHist
}

var _ Collector = (*EBPFCollector)(nil)
var _ Closer = (*EBPFCollector)(nil)

// ebpfHook is one program and where it attaches. Optional hooks may be
// missing on a kernel; their metrics are then absent.
type ebpfHook struct {
	prog    string
	targets []string // kernel functions or tracepoints, first present wins
	family  string   // "sys", "exit", "sock", "pipe", "req", "reqrole"
}

var ebpfHooks = []ebpfHook{
	{bpf.SculptProgSysEnter, []string{"sys_enter"}, "sys"},
	{bpf.SculptProgSysExit, []string{"sys_exit"}, "pipe"},
	{bpf.SculptProgProcExit, []string{"sched_process_exit"}, "exit"},
	{bpf.SculptProgSockSend, []string{"sock_send_length"}, "sock"},
	{bpf.SculptProgSockRecv, []string{"sock_recv_length"}, "sock"},
	{bpf.SculptProgSkReady, []string{"sk_data_ready"}, "req"},
	{bpf.SculptProgSkState, []string{"inet_sock_set_state"}, "reqrole"},
}

// kernelHasTracepoint reports whether the kernel's BTF has the
// btf_trace_<name> typedef of a raw tracepoint.
func kernelHasTracepoint(k *btf.Spec, name string) bool {
	var td *btf.Typedef
	return k.TypeByName("btf_trace_"+name, &td) == nil
}

// probeTracingProgram loads (and closes) an empty BTF raw-tracepoint
// program on sys_enter: the program type every hook uses.
func probeTracingProgram() error {
	p, err := ebpf.NewProgram(&ebpf.ProgramSpec{
		Type:         ebpf.Tracing,
		AttachType:   ebpf.AttachTraceRawTp,
		AttachTo:     "sys_enter",
		Instructions: asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()},
		License:      "GPL",
	})
	if err != nil {
		return err
	}
	return p.Close()
}

// ebpfPrereqs checks what loading needs: kernel BTF under roots.Sys (and as
// the library reads it, /sys/kernel/btf/vmlinux), the sys_enter tracepoint,
// and permission to load a tp_btf program.
// It returns the kernel BTF or a *NotSupportedError.
func ebpfPrereqs(roots host.Roots) (*btf.Spec, error) {
	ns := func(format string, a ...any) error {
		return &NotSupportedError{Source: SourceEBPF, Reason: fmt.Sprintf(format, a...)}
	}
	if roots == (host.Roots{}) {
		roots = host.DefaultRoots()
	}
	p := roots.SysPath("kernel", "btf", "vmlinux")
	if _, err := os.Stat(p); err != nil {
		return nil, ns("no kernel BTF: %v (kernel built without CONFIG_DEBUG_INFO_BTF)", err)
	}
	k, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, ns("load kernel BTF: %v", err)
	}
	if !kernelHasTracepoint(k, "sys_enter") {
		return nil, ns("kernel has no raw_syscalls/sys_enter tracepoint in its BTF")
	}
	if err := probeTracingProgram(); err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, ns("loading BPF programs is not permitted (needs root, or CAP_BPF and CAP_PERFMON): %v", err)
		}
		return nil, ns("kernel cannot load BTF raw-tracepoint (tp_btf) programs: %v", err)
	}
	return k, nil
}

// NewEBPFCollector loads sculpt's eBPF programs and attaches them. It
// returns a *NotSupportedError with the reason when the machine cannot run
// them (not root, no BTF, no tracing programs, no sys_enter tracepoint, or
// the kernel refused the programs with EPERM); other errors are wrapped
// load or attach failures. Optional hooks that are missing (e.g. udpv6 when
// IPv6 is off) leave their metrics absent and are named in Stats().Missing.
// The caller must Close the collector.
func NewEBPFCollector(opts EBPFOptions) (*EBPFCollector, error) {
	if opts.MaxProcs <= 0 {
		opts.MaxProcs = 16384
	}
	if opts.MaxChannels <= 0 {
		opts.MaxChannels = 65536
	}
	if opts.MaxServers <= 0 {
		opts.MaxServers = 4096
	}
	if opts.MaxReqSockets <= 0 {
		opts.MaxReqSockets = 65536
	}
	k, err := ebpfPrereqs(opts.Roots)
	if err != nil {
		return nil, err
	}
	spec, err := bpf.LoadSculpt()
	if err != nil {
		return nil, fmt.Errorf("load embedded eBPF object: %w", err)
	}
	if err := spec.Variables[bpf.SculptVarSysClass].Set(syscallClasses()); err != nil {
		return nil, fmt.Errorf("set syscall table: %w", err)
	}
	spec.Maps[bpf.SculptMapProcs].MaxEntries = uint32(opts.MaxProcs)
	spec.Maps[bpf.SculptMapChans].MaxEntries = uint32(opts.MaxChannels)
	spec.Maps[bpf.SculptMapReqs].MaxEntries = uint32(opts.MaxServers)
	spec.Maps[bpf.SculptMapReqSocks].MaxEntries = uint32(opts.MaxReqSockets)

	c := &EBPFCollector{opts: opts}
	// Point each program at the first target the kernel has; drop optional
	// programs whose target is missing before loading (the verifier would
	// refuse them).
	type planned struct {
		hook   ebpfHook
		target string
	}
	var plan []planned
	for _, h := range ebpfHooks {
		target := ""
		for _, t := range h.targets {
			if kernelHasTracepoint(k, t) {
				target = t
				break
			}
		}
		if target == "" {
			if h.family == "sys" {
				return nil, &NotSupportedError{Source: SourceEBPF, Reason: "kernel has no raw_syscalls/sys_enter tracepoint"}
			}
			c.missing = append(c.missing, fmt.Sprintf("%s: kernel has no %s", h.prog, strings.Join(h.targets, " or ")))
			delete(spec.Programs, h.prog)
			continue
		}
		spec.Programs[h.prog].AttachTo = target
		plan = append(plan, planned{h, target})
	}
	coll, err := ebpf.NewCollection(spec)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, &NotSupportedError{Source: SourceEBPF, Reason: fmt.Sprintf("kernel refused the programs (needs root, or CAP_BPF and CAP_PERFMON): %v", err)}
		}
		return nil, fmt.Errorf("load eBPF programs: %w", err)
	}
	c.coll = coll
	c.procs = coll.Maps[bpf.SculptMapProcs]
	c.chans = coll.Maps[bpf.SculptMapChans]
	c.reqs = coll.Maps[bpf.SculptMapReqs]
	if c.ncpu, err = ebpf.PossibleCPU(); err != nil {
		_ = c.Close() // undoing a half-built collector; err is the one to report
		return nil, fmt.Errorf("count possible CPUs: %w", err)
	}
	attached := map[string]int{}
	for _, p := range plan {
		l, err := link.AttachTracing(link.TracingOptions{Program: coll.Programs[p.hook.prog]})
		if err != nil {
			if p.hook.family == "sys" {
				_ = c.Close() // undoing a half-built collector; err is the one to report
				return nil, fmt.Errorf("attach %s to %s: %w", p.hook.prog, p.target, err)
			}
			c.missing = append(c.missing, fmt.Sprintf("%s: attach to %s: %v", p.hook.prog, p.target, err))
			continue
		}
		c.links = append(c.links, l)
		c.hooks = append(c.hooks, p.target)
		attached[p.hook.family]++
	}
	// A family counts only with both directions attached.
	c.haveSock = attached["sock"] == 2
	c.haveUnix = c.haveSock
	c.havePipe = attached["pipe"] == 1
	// Requests need the arrival hook and the send hook (the reply); the
	// handshake hook only sharpens which end of a TCP connection serves.
	c.haveReq = attached["req"] == 1 && c.haveSock
	c.stats.Hooks = c.hooks
	c.stats.Missing = c.missing
	return c, nil
}

// Name returns "ebpf".
func (c *EBPFCollector) Name() string { return "ebpf" }

// Stats describes the last Collect and the hooks in use.
func (c *EBPFCollector) Stats() EBPFStats { return c.stats }

// Collect reads both maps in batches and adds, to every process of s,
// cumulative counters since the collector attached (the syscall classes,
// and socket, unix and pipe bytes where those hooks are attached), and, to
// s.Peers, the bytes exchanged between workloads since the previous
// Collect. A process the maps do not hold gets zeros: it made no system
// call while the collector was attached.
func (c *EBPFCollector) Collect(ctx context.Context, s *Sample) error {
	procs, err := c.readProcs()
	if err != nil {
		return err
	}
	var edges map[procPair]float64
	if !c.opts.NoPeers {
		entries, err := c.readChans()
		if err != nil {
			return err
		}
		edges = c.tracker.edges(entries)
		c.stats.Channels = len(entries)
	}
	c.stats.Procs = len(procs)
	c.stats.Edges = len(edges)
	applyEBPF(s, procs, edges, c.haveSock, c.haveUnix, c.havePipe, !c.opts.NoPeers)
	if c.haveReq {
		reqs, err := c.readReqs()
		if err != nil {
			return err
		}
		c.stats.Servers = len(reqs)
		applyReqs(s, reqs)
	}
	return nil
}

// readReqs reads the per-process request map.
func (c *EBPFCollector) readReqs() (map[uint32]*reqHist, error) {
	if c.reqKeys == nil {
		c.reqKeys = make([]uint32, ebpfBatch)
		c.reqVals = make([]bpf.SculptReqHist, ebpfBatch)
	}
	out := make(map[uint32]*reqHist)
	add := func(k uint32, v *bpf.SculptReqHist) {
		out[k] = &reqHist{Count: v.Count, SumNs: v.SumNs, Buckets: v.Buckets}
	}
	var cursor ebpf.MapBatchCursor
	for {
		n, err := c.reqs.BatchLookup(&cursor, c.reqKeys, c.reqVals, nil)
		for i := 0; i < n; i++ {
			add(c.reqKeys[i], &c.reqVals[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return out, nil
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			clear(out)
			var k uint32
			var v bpf.SculptReqHist
			it := c.reqs.Iterate()
			for it.Next(&k, &v) {
				add(k, &v)
			}
			if err := it.Err(); err != nil {
				return nil, fmt.Errorf("iterate eBPF map %s: %w", bpf.SculptMapReqs, err)
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read eBPF map %s: %w", bpf.SculptMapReqs, err)
		}
	}
}

const ebpfBatch = 1024

// readProcs reads the per-process map, summing each process's per-CPU values.
func (c *EBPFCollector) readProcs() (map[uint32]*procCounters, error) {
	if c.procKeys == nil {
		c.procKeys = make([]uint32, ebpfBatch)
		c.procVals = make([]bpf.SculptProcStats, ebpfBatch*c.ncpu)
	}
	out := make(map[uint32]*procCounters)
	add := func(keys []uint32, vals []bpf.SculptProcStats) {
		for i, k := range keys {
			pc := out[k]
			if pc == nil {
				pc = &procCounters{}
				out[k] = pc
			}
			for _, v := range vals[i*c.ncpu : (i+1)*c.ncpu] {
				pc.add(&v)
			}
		}
	}
	var cursor ebpf.MapBatchCursor
	for {
		n, err := c.procs.BatchLookup(&cursor, c.procKeys, c.procVals, nil)
		add(c.procKeys[:n], c.procVals)
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return out, nil
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			return c.iterateProcs()
		}
		if err != nil {
			return nil, fmt.Errorf("read eBPF map %s: %w", bpf.SculptMapProcs, err)
		}
	}
}

// add adds one CPU's slot of the per-CPU process map.
func (pc *procCounters) add(v *bpf.SculptProcStats) {
	for cl := range pc.Sys {
		pc.Sys[cl] += v.Sys[cl]
	}
	pc.InetTx += v.InetTx
	pc.InetRx += v.InetRx
	pc.LoopTx += v.LoopTx
	pc.LoopRx += v.LoopRx
	pc.UnixTx += v.UnixTx
	pc.UnixRx += v.UnixRx
	pc.PipeTx += v.PipeTx
	pc.PipeRx += v.PipeRx
}

// iterateProcs is readProcs for kernels without batch operations.
func (c *EBPFCollector) iterateProcs() (map[uint32]*procCounters, error) {
	out := make(map[uint32]*procCounters)
	var k uint32
	vals := make([]bpf.SculptProcStats, c.ncpu)
	it := c.procs.Iterate()
	for it.Next(&k, &vals) {
		pc := &procCounters{}
		for _, v := range vals {
			pc.add(&v)
		}
		out[k] = pc
	}
	if err := it.Err(); err != nil {
		return nil, fmt.Errorf("iterate eBPF map %s: %w", bpf.SculptMapProcs, err)
	}
	return out, nil
}

// readChans reads the channel map.
func (c *EBPFCollector) readChans() ([]chanEntry, error) {
	if c.chanKeys == nil {
		c.chanKeys = make([]bpf.SculptChanKey, ebpfBatch)
		c.chanVals = make([]bpf.SculptChanVal, ebpfBatch)
	}
	var out []chanEntry
	var cursor ebpf.MapBatchCursor
	for {
		n, err := c.chans.BatchLookup(&cursor, c.chanKeys, c.chanVals, nil)
		for i := 0; i < n; i++ {
			k, v := c.chanKeys[i], c.chanVals[i]
			out = append(out, chanEntry{TGID: k.Tgid, Kind: chanKind(k.Kind), ID: k.Id, Tx: v.Tx, Rx: v.Rx})
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return out, nil
		}
		if errors.Is(err, ebpf.ErrNotSupported) {
			out = out[:0]
			var k bpf.SculptChanKey
			var v bpf.SculptChanVal
			it := c.chans.Iterate()
			for it.Next(&k, &v) {
				out = append(out, chanEntry{TGID: k.Tgid, Kind: chanKind(k.Kind), ID: k.Id, Tx: v.Tx, Rx: v.Rx})
			}
			if err := it.Err(); err != nil {
				return nil, fmt.Errorf("iterate eBPF map %s: %w", bpf.SculptMapChans, err)
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read eBPF map %s: %w", bpf.SculptMapChans, err)
		}
	}
}

// Close detaches every link and closes the programs and maps. It is safe to
// call more than once.
func (c *EBPFCollector) Close() error {
	var errs []error
	for _, l := range c.links {
		if err := l.Close(); err != nil {
			errs = append(errs, fmt.Errorf("detach eBPF link: %w", err))
		}
	}
	c.links = nil
	if c.coll != nil {
		c.coll.Close()
		c.coll = nil
	}
	return errors.Join(errs...)
}

// probeEBPF checks the collector's prerequisites without loading it (BTF,
// tracing programs, the sys_enter tracepoint); see ebpfPrereqs.
func probeEBPF(roots host.Roots) SourceStatus {
	st := SourceStatus{Name: SourceEBPF}
	k, err := ebpfPrereqs(roots)
	if err != nil {
		var nse *NotSupportedError
		if errors.As(err, &nse) {
			st.Reason = nse.Reason
		} else {
			st.Reason = err.Error()
		}
		return st
	}
	var have []string
	for _, h := range ebpfHooks {
		for _, t := range h.targets {
			if kernelHasTracepoint(k, t) {
				have = append(have, t)
				break
			}
		}
	}
	sort.Strings(have)
	st.Available = true
	st.Detail = "tp_btf tracepoints " + strings.Join(have, ",")
	return st
}
