package telemetry

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"sculpt/internal/host"
)

// NetOptions tune the network collector.
type NetOptions struct {
	// FDScanEvery scans every process's open file descriptors (sockets,
	// pipes, peers) once per this many sweeps (default 1: every sweep); in
	// between, the last scan's socket gauges and peers are repeated. The
	// scan readlinks every fd of every process: about 1-2 µs per fd.
	FDScanEvery int
	// unixPeers replaces the sock_diag dump in tests.
	unixPeers func() (map[uint64]uint64, error)
}

// NetStats says what the last sweep of the network collector did.
type NetStats struct {
	Namespaces     int           `json:"namespaces"`        // network namespaces read
	ScannedProcs   int           `json:"scanned_processes"` // processes whose fds were listed in the last scan
	ScannedFDs     int           `json:"scanned_fds"`
	FDScanDuration time.Duration `json:"fd_scan_ns"`
	// ReusedProcs are the processes of the last scan that had not run since
	// the scan before (same RunTimeSec): their fd tables were not listed
	// again but taken from that scan.
	ReusedProcs     int    `json:"reused_processes"`
	UnixPeers       bool   `json:"unix_peers"`                  // unix socket peers resolved (sock_diag)
	UnixPeersReason string `json:"unix_peers_reason,omitempty"` // why not
}

// NetCollector reads network namespaces, sockets and pipes.
//
// Per workload (Sample.Groups): NetRxBytes/NetTxBytes, the bytes of the
// non-loopback interfaces of the network namespace of its first live
// process (roots.Proc/PID/net/dev), and NetNSShared, 1 when that namespace
// is the host's (that of PID 1, or of kthreadd) or holds another workload too: then the bytes
// are the namespace's, not the workload's.
//
// Per process (Sample.Procs), from its fds and its namespace's
// net/{tcp,tcp6,udp,udp6,unix}: Sockets (every socket fd, any family),
// SocketsTCP, SocketsUnix, Pipes (distinct inodes each) and SockQueueBytes
// (tx+rx queues of its TCP and UDP sockets).
//
// A process whose RunTimeSec (from the procfs collector, which runs first)
// is unchanged since the last scan has not run, so it cannot have opened,
// closed or received a descriptor: its fd table is not listed again, the
// last listing is reused (Stats().ReusedProcs); the socket tables, queues
// and peers are still computed afresh from it.
//
// Peers (Sample.AddPeer, weight = number of channels): a pipe held by
// processes of two workloads; a TCP connection whose two ends are in the same
// namespace (loopback) and owned by two workloads; a connected unix socket
// pair (peers from NETLINK_SOCK_DIAG UNIX_DIAG_PEER, only in sculpt's own
// network namespace). Connections that cross namespaces (veth, bridges) are
// not matched.
type NetCollector struct {
	roots  host.Roots
	opts   NetOptions
	sweeps int
	last   map[ProcKey]Values // socket gauges of the last scan
	// fds holds, per process, what the last scan listed in its fd table and
	// the process's run time then (ProcSample RunTimeSec).
	fds map[ProcKey]scannedFDs
	// nsOfProc caches each process's network namespace with its run time
	// then: a process changes namespace only by running (setns, unshare).
	nsOfProc map[ProcKey]procNS
	peers    map[[2]string]float64
	stats    NetStats
}

var _ Collector = (*NetCollector)(nil)

// NewNetCollector reads through roots; at most one NetOptions may be given.
func NewNetCollector(roots host.Roots, opts ...NetOptions) *NetCollector {
	var o NetOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.FDScanEvery <= 0 {
		o.FDScanEvery = 1
	}
	if o.unixPeers == nil {
		o.unixPeers = unixPeersSockDiag
	}
	return &NetCollector{roots: roots, opts: o}
}

// Name returns "net".
func (c *NetCollector) Name() string { return "net" }

// Stats returns what the last sweep did.
func (c *NetCollector) Stats() NetStats { return c.stats }

// netSweep is the state of one Collect.
type netSweep struct {
	c      *NetCollector
	ns     map[int]uint64 // pid -> netns inode (0: unknown)
	tables map[uint64]*nsSockets
	buf    []byte
}

// nsSockets are one namespace's socket tables.
type nsSockets struct {
	socks map[uint64]sockInfo
	err   error
}

// nsOf returns the inode of pid's network namespace (roots.Proc/PID/ns/net),
// 0 when the process is gone.
func (w *netSweep) nsOf(pid int) uint64 {
	if ns, ok := w.ns[pid]; ok {
		return ns
	}
	ns := w.nsOfName(strconv.Itoa(pid))
	w.ns[pid] = ns
	return ns
}

func (w *netSweep) nsOfName(name string) uint64 {
	l, err := os.Readlink(w.c.roots.ProcPath(name, "ns", "net"))
	if err != nil {
		return 0
	}
	ns, _ := parseNSLink(l)
	return ns
}

// Collect fills the namespace traffic of every workload and, on scan sweeps,
// the socket gauges and peers of every process. A process that exits is
// skipped. It returns an error naming the file when a namespace's tables
// cannot be parsed; the other values are still set.
func (c *NetCollector) Collect(ctx context.Context, s *Sample) error {
	w := &netSweep{c: c, ns: make(map[int]uint64), tables: make(map[uint64]*nsSockets), buf: make([]byte, 256)}
	var errs []error
	// The host's namespace: that of PID 1 or, when PID 1 is not dumpable
	// (its ns links then read EACCES), that of kthreadd (PID 2): kernel
	// threads always live in the initial namespace.
	initNS := w.nsOf(1)
	if initNS == 0 {
		initNS = w.nsOf(2)
	}

	// Namespace traffic, one read of net/dev per namespace.
	type nsGroup struct {
		pid int
		wls []string
	}
	groups := make(map[uint64]*nsGroup)
	var order []uint64
	if c.nsOfProc == nil {
		c.nsOfProc = make(map[ProcKey]procNS)
	}
	for i := range s.Workloads {
		wl := &s.Workloads[i]
		for _, p := range wl.Procs {
			key := ProcKey{p.PID, p.StartTime}
			var ns uint64
			run, hasRun := 0.0, false
			if ps := s.Procs[key]; ps != nil {
				run, hasRun = ps.Get(RunTimeSec)
			}
			if old, ok := c.nsOfProc[key]; ok && hasRun && old.run == run {
				ns = old.ns
				w.ns[p.PID] = ns
			} else {
				ns = w.nsOf(p.PID)
			}
			if ns == 0 {
				delete(c.nsOfProc, key)
				continue // gone
			}
			if hasRun {
				c.nsOfProc[key] = procNS{run: run, ns: ns, seen: c.sweeps}
			}
			g := groups[ns]
			if g == nil {
				g = &nsGroup{pid: p.PID}
				groups[ns] = g
				order = append(order, ns)
			}
			g.wls = append(g.wls, wl.ID)
			break
		}
	}
	for _, ns := range order {
		g := groups[ns]
		path := c.roots.ProcPath(strconv.Itoa(g.pid), "net", "dev")
		b, err := os.ReadFile(path)
		if err != nil {
			if !isGone(err) {
				errs = append(errs, fmt.Errorf("read %s: %w", path, err))
			}
			continue
		}
		t, err := parseNetDev(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("parse %s: %w", path, err))
			continue
		}
		shared := 0.0
		if len(g.wls) > 1 || ns == initNS {
			shared = 1
		}
		for _, id := range g.wls {
			if v := s.Groups[id]; v != nil {
				v.Set(NetRxBytes, float64(t.rxBytes))
				v.Set(NetTxBytes, float64(t.txBytes))
				v.Set(NetNSShared, shared)
			}
		}
	}
	c.stats.Namespaces = len(order)
	for key, e := range c.nsOfProc {
		if e.seen != c.sweeps {
			delete(c.nsOfProc, key)
		}
	}

	if c.sweeps%c.opts.FDScanEvery == 0 {
		if err := w.scan(ctx, s); err != nil {
			errs = append(errs, err)
		}
	}
	c.sweeps++
	for key, v := range c.last {
		if ps := s.Procs[key]; ps != nil {
			ps.Merge(&v)
		}
	}
	for e, n := range c.peers {
		s.AddPeer(e[0], e[1], n)
	}
	return errors.Join(errs...)
}

// procNS is a process's network namespace inode and its RunTimeSec when
// read.
type procNS struct {
	run  float64
	ns   uint64
	seen int // the sweep that last used it
}

// scannedFDs is one process's fd table as a scan found it.
type scannedFDs struct {
	run   float64 // RunTimeSec when it was listed
	ns    uint64
	nfds  int
	socks []uint64
	pipes []pipeEnd
}

// procFDs is what one process holds.
type procFDs struct {
	key      ProcKey
	workload string
	ns       uint64
	socks    []uint64
	pipes    []pipeEnd
}

// pipeEnd is one pipe inode a process holds, and which ends: the mode of a
// /proc/PID/fd link says whether the fd was opened for reading and/or
// writing.
type pipeEnd struct {
	inode         uint64
	read, written bool
}

// scan lists every process's fds and recomputes c.last and c.peers.
func (w *netSweep) scan(ctx context.Context, s *Sample) error {
	c := w.c
	start := time.Now()
	var procs []procFDs
	nfds, reused := 0, 0
	fds := make(map[ProcKey]scannedFDs, len(s.Procs))
	for key, ps := range s.Procs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		pf := procFDs{key: key, workload: ps.Workload}
		// A process that has not run since the last scan cannot have
		// opened, closed or received a descriptor, nor changed namespace:
		// reuse that scan's listing. (The exception: a process sharing its
		// fd table with another through clone(CLONE_FILES) without being
		// its thread, which no common program does.) RunTimeSec comes from
		// the procfs collector, which runs first; without it the table is
		// listed.
		run, hasRun := ps.Get(RunTimeSec)
		if old, ok := c.fds[key]; ok && hasRun && old.run == run {
			pf.ns, pf.socks, pf.pipes = old.ns, old.socks, old.pipes
			fds[key] = old
			nfds += old.nfds
			reused++
			procs = append(procs, pf)
			continue
		}
		n, err := w.listFDs(key.PID, &pf)
		if err != nil {
			continue // gone or not ours to read: its gauges stay absent
		}
		nfds += n
		pf.ns = w.nsOf(key.PID)
		procs = append(procs, pf)
		if hasRun {
			fds[key] = scannedFDs{run: run, ns: pf.ns, nfds: n, socks: pf.socks, pipes: pf.pipes}
		}
	}
	c.fds = fds
	c.stats.ScannedProcs = len(procs)
	c.stats.ScannedFDs = nfds
	c.stats.ReusedProcs = reused

	var errs []error
	owner := make(map[uint64]string) // socket inode -> workload
	type pipeSides struct{ readers, writers []string }
	pipeOwners := make(map[uint64]*pipeSides) // pipe inode -> workloads at each end
	last := make(map[ProcKey]Values, len(procs))
	for i := range procs {
		pf := &procs[i]
		var v Values
		v.Set(Sockets, float64(len(pf.socks)))
		v.Set(Pipes, float64(len(pf.pipes)))
		for _, e := range pf.pipes {
			ps := pipeOwners[e.inode]
			if ps == nil {
				ps = &pipeSides{}
				pipeOwners[e.inode] = ps
			}
			if e.read && !slices.Contains(ps.readers, pf.workload) {
				ps.readers = append(ps.readers, pf.workload)
			}
			if e.written && !slices.Contains(ps.writers, pf.workload) {
				ps.writers = append(ps.writers, pf.workload)
			}
		}
		for _, ino := range pf.socks {
			if _, ok := owner[ino]; !ok {
				owner[ino] = pf.workload
			}
		}
		if len(pf.socks) > 0 && pf.ns != 0 {
			t := w.table(pf.ns, pf.key.PID)
			if t.err != nil {
				if !isGone(t.err) {
					errs = append(errs, t.err)
				}
			} else {
				var tcp, ux, q float64
				for _, ino := range pf.socks {
					si, ok := t.socks[ino]
					if !ok {
						continue
					}
					switch si.kind {
					case sockTCP:
						tcp++
						q += float64(si.queue)
					case sockUDP:
						q += float64(si.queue)
					case sockUnix:
						ux++
					}
				}
				v.Set(SocketsTCP, tcp)
				v.Set(SocketsUnix, ux)
				v.Set(SockQueueBytes, q)
			}
		} else if len(pf.socks) == 0 {
			v.Set(SocketsTCP, 0)
			v.Set(SocketsUnix, 0)
			v.Set(SockQueueBytes, 0)
		}
		last[pf.key] = v
	}

	peers := make(map[[2]string]float64)
	edge := func(a, b string) {
		if a == b {
			return
		}
		if b < a {
			a, b = b, a
		}
		peers[[2]string{a, b}]++
	}
	// A pipe joins the workloads writing it to those reading it; a pipe that
	// several workloads only write (a shared stderr) joins nobody.
	for _, ps := range pipeOwners {
		var seen [][2]string
		for _, wr := range ps.writers {
			for _, rd := range ps.readers {
				if wr == rd {
					continue
				}
				k := [2]string{min(wr, rd), max(wr, rd)}
				if !slices.Contains(seen, k) {
					seen = append(seen, k)
					edge(k[0], k[1])
				}
			}
		}
	}
	// Loopback / same-namespace TCP: local=X remote=Y meets local=Y remote=X.
	type conn struct{ l, r netip.AddrPort }
	for _, t := range w.tables {
		if t.err != nil {
			continue
		}
		ends := make(map[conn]string)
		for ino, si := range t.socks {
			if si.kind != sockTCP || si.state == tcpListen || si.remote.Port() == 0 {
				continue
			}
			if o, ok := owner[ino]; ok {
				ends[conn{si.local, si.remote}] = o
			}
		}
		for k, a := range ends {
			if k.l.Compare(k.r) >= 0 {
				continue // count each connection once
			}
			if b, ok := ends[conn{k.r, k.l}]; ok {
				edge(a, b)
			}
		}
	}
	// Unix socket pairs, in sculpt's own namespace.
	selfNS := w.nsOfName("self")
	if _, ok := w.tables[selfNS]; ok {
		pairs, err := c.opts.unixPeers()
		switch {
		case err != nil:
			c.stats.UnixPeers, c.stats.UnixPeersReason = false, "sock_diag: "+err.Error()
		default:
			c.stats.UnixPeers, c.stats.UnixPeersReason = true, ""
			for ino, peer := range pairs {
				if ino > peer {
					if back, ok := pairs[peer]; ok && back == ino {
						continue // counted from the other end
					}
				}
				a, okA := owner[ino]
				b, okB := owner[peer]
				if okA && okB {
					edge(a, b)
				}
			}
		}
	}
	c.last, c.peers = last, peers
	c.stats.FDScanDuration = time.Since(start)
	if len(errs) > 8 {
		errs = errs[:8]
	}
	return errors.Join(errs...)
}

// listFDs readlinks every entry of roots.Proc/PID/fd into pf and returns
// how many there were.
func (w *netSweep) listFDs(pid int, pf *procFDs) (int, error) {
	dir := w.c.roots.ProcPath(strconv.Itoa(pid), "fd")
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	f := os.NewFile(uintptr(dfd), dir)
	defer func() { _ = f.Close() }() // a directory opened to read: nothing lost on close
	names, err := f.Readdirnames(-1)
	if err != nil {
		return 0, err
	}
	for _, name := range names {
		n, err := unix.Readlinkat(dfd, name, w.buf)
		if err != nil {
			continue // closed meanwhile
		}
		kind, ino := parseFDLink(w.buf[:n])
		switch kind {
		case 's':
			pf.socks = append(pf.socks, ino)
		case 'p':
			var st unix.Stat_t
			end := pipeEnd{inode: ino, read: true, written: true}
			if unix.Fstatat(dfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil {
				end.read, end.written = st.Mode&unix.S_IRUSR != 0, st.Mode&unix.S_IWUSR != 0
			}
			pf.pipes = append(pf.pipes, end)
		}
	}
	// The same inode may sit behind several fds (dup, inheritance).
	slices.Sort(pf.socks)
	pf.socks = slices.Compact(pf.socks)
	pf.pipes = mergePipeEnds(pf.pipes)
	return len(names), nil
}

// table returns the socket tables of namespace ns, reading them through pid
// the first time.
func (w *netSweep) table(ns uint64, pid int) *nsSockets {
	if t := w.tables[ns]; t != nil {
		return t
	}
	t := &nsSockets{socks: make(map[uint64]sockInfo)}
	w.tables[ns] = t
	dir := w.c.roots.ProcPath(strconv.Itoa(pid), "net")
	add := func(ino uint64, si sockInfo) { t.socks[ino] = si }
	for _, f := range [...]struct {
		name string
		kind sockKind
	}{{"tcp", sockTCP}, {"tcp6", sockTCP}, {"udp", sockUDP}, {"udp6", sockUDP}, {"unix", sockUnix}} {
		path := dir + "/" + f.name
		b, err := os.ReadFile(path)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) && f.name != "tcp" {
				continue // no IPv6 (or no unix) in this kernel
			}
			t.err = fmt.Errorf("read %s: %w", path, err)
			if isGone(err) {
				delete(w.tables, ns) // try again through another process
			}
			return t
		}
		if f.kind == sockUnix {
			err = parseUnixSockets(b, func(ino uint64) { t.socks[ino] = sockInfo{kind: sockUnix} })
		} else {
			err = parseInetSockets(b, f.kind, add)
		}
		if err != nil {
			t.err = fmt.Errorf("parse %s: %w", path, err)
			return t
		}
	}
	return t
}

// unixPeersSockDiag dumps the unix sockets of the caller's network namespace
// with NETLINK_SOCK_DIAG and returns inode -> peer inode for connected ones.
func unixPeersSockDiag() (map[uint64]uint64, error) {
	resp, err := netlink.UnixSocketDiagInfo()
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return nil, err
	}
	m := make(map[uint64]uint64, len(resp))
	for _, r := range resp {
		if r.DiagMsg == nil || r.Peer == nil || *r.Peer == 0 {
			continue
		}
		m[uint64(r.DiagMsg.INode)] = uint64(*r.Peer)
	}
	return m, nil
}

// mergePipeEnds sorts ends by inode and merges the ends of each inode.
func mergePipeEnds(ends []pipeEnd) []pipeEnd {
	if len(ends) < 2 {
		return ends
	}
	slices.SortFunc(ends, func(a, b pipeEnd) int {
		switch {
		case a.inode < b.inode:
			return -1
		case a.inode > b.inode:
			return 1
		}
		return 0
	})
	out := ends[:1]
	for _, e := range ends[1:] {
		last := &out[len(out)-1]
		if e.inode == last.inode {
			last.read = last.read || e.read
			last.written = last.written || e.written
			continue
		}
		out = append(out, e)
	}
	return out
}
