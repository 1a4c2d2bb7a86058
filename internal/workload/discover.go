package workload

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"

	"sculpt/internal/host"
)

// ErrNoSuchProcess is wrapped by Discover's error for a selected PID that
// does not exist: "pid 12345: no such process".
var ErrNoSuchProcess = errors.New("no such process")

// ErrNoSuchCgroup is wrapped by Discover's error for a selected cgroup path
// that exists in no hierarchy under the cgroup root.
var ErrNoSuchCgroup = errors.New("no such cgroup")

// ErrExcluded is wrapped by Discover's error for a selected PID that is never
// a workload: a kernel thread or sculpt itself.
var ErrExcluded = errors.New("excluded from discovery")

// Options configure a Discoverer.
type Options struct {
	// Self is sculpt's own PID, never part of a workload. 0 means
	// os.Getpid(); a negative value excludes no process as self.
	Self int
	// Protected PIDs are discovered like any other process, but Protected
	// reports the workloads that hold them, so that nothing acts on them.
	Protected []int
	// Ancestors are the processes that started sculpt (see Ancestors): its
	// shell, terminal multiplexer, ssh session. The cgroup (or root-cgroup
	// process tree) holding one is a session, split into the trees of the
	// programs started from it; docs/workloads.md says how.
	Ancestors []int
	// RefreshEvery is how many Discover calls pass between rereads of a
	// known process's /proc/PID/stat and /proc/PID/cgroup: 0 means
	// DefaultRefreshEvery, 1 rereads both every call. A process is known
	// while its /proc entry keeps its inode number (see Discover); its files
	// are read in full when it first appears and again on the next call
	// (catching the fork-exec-move of a new process), then every
	// RefreshEvery calls, staggered by PID. So a process moved to another
	// cgroup, or one that execs under a new name after its first two
	// sweeps, is seen within RefreshEvery calls; a process whose parent
	// exited has its stat (its new parent) reread at once.
	RefreshEvery int
}

// DefaultRefreshEvery is Options.RefreshEvery's default: with one Discover
// per second, a process moved to another cgroup is regrouped within 5 s.
const DefaultRefreshEvery = 5

// Skip records a process that Discover could not read for a reason other
// than its exit (a malformed /proc/PID/stat, a permission error) and left out.
type Skip struct {
	PID int
	Err error
}

// Discoverer finds workloads by walking /proc. Between calls it keeps parsed
// cgroup files and each process's /proc/PID/stat and /proc/PID/cgroup open
// (two descriptors per process, bounded by RLIMIT_NOFILE), so reuse one and
// Close it when done. It is safe for concurrent use; calls are serialised.
type Discoverer struct {
	roots host.Roots
	self  int
	prot  []int
	anc   []int

	mu       sync.Mutex
	reader   procReader
	procs    []proc
	index    map[int]int32
	cgCache  map[string]*cgInfo
	comms    map[string]string
	skipped  []Skip
	claimed  []bool
	dirBuf   []byte
	children [][]int32
	every    int
	tick     uint64
	ents     []pidEnt
	known    map[int]*known
	stack    []int32 // selectPID's walk, reused
	infra    []bool  // groupAll: index -> a session's infrastructure
	sessions map[string]bool
}

// known is a process seen by an earlier Discover, with what was read of it.
type known struct {
	p         proc
	ino       uint64 // inode number of its /proc/PID entry
	parentIno uint64 // of its parent's, when stat was read (0: not listed)
	statDue   uint64 // Discover call at which stat is read again
	cgDue     uint64 // likewise cgroup
	reads     int    // times stat was read
	seen      uint64 // the last call that listed it
}

// proc is one process seen in a sweep.
type proc struct {
	Proc
	ppid     int
	shell    bool    // an interactive shell: a session leader with a controlling terminal
	cg       *cgInfo // nil when excluded
	excluded bool    // a kernel thread or sculpt itself
	id       string  // treeID(Proc), built on first use and kept while known
}

// NewDiscoverer returns a Discoverer reading /proc and cgroupfs under roots.
func NewDiscoverer(roots host.Roots, opts Options) *Discoverer {
	self := opts.Self
	if self == 0 {
		self = os.Getpid()
	}
	d := &Discoverer{
		roots:   roots,
		self:    self,
		prot:    slices.Clone(opts.Protected),
		anc:     slices.Clone(opts.Ancestors),
		index:   make(map[int]int32),
		cgCache: make(map[string]*cgInfo),
		comms:   make(map[string]string),
		every:   opts.RefreshEvery,
		known:   make(map[int]*known),
	}
	if d.every <= 0 {
		d.every = DefaultRefreshEvery
	}
	d.reader.max = heldLimit()
	return d
}

// heldLimit is how many processes' files a Discoverer keeps open: up to 4096
// (8192 descriptors), and at most a quarter of what RLIMIT_NOFILE leaves
// above 1024 for the rest of the program.
func heldLimit() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur <= 1024 {
		return 0
	}
	return int(min((lim.Cur-1024)/(4*nFiles), 4096))
}

// Close closes the /proc files the Discoverer keeps open between sweeps. The
// Discoverer stays usable; the next Discover opens them again.
func (d *Discoverer) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.reader.close()
	return nil
}

// Listed returns how many processes the last Discover found in /proc.
func (d *Discoverer) Listed() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.ents)
}

// Skipped returns the processes the last Discover left out because their
// /proc files could not be read or parsed. Processes that exited during the
// sweep are not listed: they are simply gone.
func (d *Discoverer) Skipped() []Skip {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.skipped)
}

// Protected reports whether w holds PID 1, sculpt itself or a PID of
// Options.Protected: a workload nothing may act on.
func (d *Discoverer) Protected(w *Workload) bool {
	for _, p := range w.Procs {
		if p.PID == 1 || p.PID == d.self || slices.Contains(d.prot, p.PID) {
			return true
		}
	}
	return false
}

// Discover sweeps /proc once (reading /proc/PID/stat and /proc/PID/cgroup of
// every new process, and of known ones every Options.RefreshEvery calls) and
// returns the selected workloads sorted by ID.
// The returned workloads' Cgroups.V1 maps may be shared between workloads
// and between calls: treat them as read-only.
//
// A process is known when its /proc/PID entry has the inode number it had in
// the last call (getdents(2) of /proc reports it): the kernel drops a
// process's /proc entries when it exits, so a reused PID gets a new inode
// (numbers come from a 32-bit counter and would have to wrap around exactly
// onto the old one to be mistaken). A process whose parent's entry changed
// or vanished has its stat reread in the same call.
//
// Kernel threads and sculpt itself (Options.Self) are never part of a
// workload. A process that exits during the sweep is left out silently; one
// whose files cannot be parsed is left out and listed by Skipped.
//
// Selectors, applied in this order, each process going to the first workload
// that claims it:
//   - PIDs: for each PID, a workload "tree:<pid>@<starttime>" of that process
//     and all its descendants, whatever their cgroups. A PID that does not
//     exist gives an error wrapping ErrNoSuchProcess; a kernel thread or
//     sculpt itself one wrapping ErrExcluded.
//   - Cgroups: for each path, a workload "cg:<path>" of the processes in that
//     cgroup or below it. A path under the cgroup root (for example
//     /sys/fs/cgroup/cpu/batch) names one hierarchy; any other path (for
//     example /system.slice/x.service) is looked up in every hierarchy. A
//     cgroup found in none gives an error wrapping ErrNoSuchCgroup. An empty
//     cgroup gives a workload with no processes.
//   - All, or no selector at all: every remaining process, grouped as
//     docs/workloads.md describes (container, unit, cgroup, process tree).
//
// All selector errors are joined into one. Discover fails as a whole only
// when /proc cannot be listed.
func (d *Discoverer) Discover(sel Selector) ([]Workload, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.scan(); err != nil {
		return nil, err
	}
	d.claimed = slices.Grow(d.claimed[:0], len(d.procs))[:len(d.procs)]
	clear(d.claimed)
	d.children = d.children[:0]

	var (
		out  []Workload
		errs []error
		seen = make(map[string]int, len(sel.PIDs)+len(sel.Cgroups)) // ID -> index in out
	)
	out = make([]Workload, 0, len(sel.PIDs)+len(sel.Cgroups))
	emit := func(w Workload) {
		if i, ok := seen[w.ID]; ok {
			out[i].Procs = append(out[i].Procs, w.Procs...)
			slices.SortFunc(out[i].Procs, func(a, b Proc) int { return a.PID - b.PID })
			return
		}
		seen[w.ID] = len(out)
		out = append(out, w)
	}
	for _, pid := range sel.PIDs {
		w, err := d.selectPID(pid)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if len(w.Procs) > 0 { // empty when an earlier PID's tree holds it
			emit(w)
		}
	}
	for _, path := range sel.Cgroups {
		w, err := d.selectCgroup(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		emit(w) // the same cgroup named twice (by mount and by path) merges
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if sel.All || (len(sel.PIDs) == 0 && len(sel.Cgroups) == 0) {
		for _, w := range d.groupAll() {
			emit(w)
		}
	}
	slices.SortFunc(out, func(a, b Workload) int {
		switch {
		case a.ID < b.ID:
			return -1
		case a.ID > b.ID:
			return 1
		}
		return 0
	})
	return out, nil
}

// scan lists /proc and reads every process's stat and cgroup files.
func (d *Discoverer) scan() error {
	dir := d.roots.Proc
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open %s: %w", dir, err)
	}
	defer func() { _ = unix.Close(fd) }()
	if d.dirBuf == nil {
		d.dirBuf = make([]byte, 32<<10)
	}
	d.ents, err = listPIDs(fd, d.dirBuf, d.ents[:0])
	if err != nil {
		return fmt.Errorf("list %s: %w", dir, err)
	}
	slices.SortFunc(d.ents, func(a, b pidEnt) int { return a.pid - b.pid })
	d.tick++

	d.reader.dirfd = fd
	d.reader.sweep()
	defer func() {
		d.reader.endSweep()
		d.reader.dirfd = -1
	}()
	d.procs = d.procs[:0]
	d.skipped = d.skipped[:0]
	clear(d.index)
	if len(d.cgCache) > 4096 {
		clear(d.cgCache)
	}
	if len(d.comms) > 8192 {
		clear(d.comms)
	}
	for _, ent := range d.ents {
		p, err := d.readEnt(ent)
		if errors.Is(err, errGone) {
			continue
		}
		if err != nil {
			d.skipped = append(d.skipped, Skip{PID: ent.pid, Err: err})
			continue
		}
		d.index[ent.pid] = int32(len(d.procs))
		d.procs = append(d.procs, p)
	}
	for pid, k := range d.known {
		if k.seen != d.tick {
			delete(d.known, pid)
		}
	}
	return nil
}

// inoOf returns the inode number of /proc/PID in this call's listing, 0 when
// pid is not listed.
func (d *Discoverer) inoOf(pid int) uint64 {
	i, ok := slices.BinarySearchFunc(d.ents, pid, func(e pidEnt, pid int) int { return e.pid - pid })
	if !ok {
		return 0
	}
	return d.ents[i].ino
}

// due returns the call at which a file read now is read next: the next call
// after the first read, then staggered by PID, then every d.every calls.
func (d *Discoverer) due(reads, pid int) uint64 {
	switch reads {
	case 1:
		return d.tick + 1
	case 2:
		return d.tick + 1 + uint64(pid%d.every)
	}
	return d.tick + uint64(d.every)
}

// readEnt returns the process of one /proc entry, reading only what is due
// for a known process.
func (d *Discoverer) readEnt(ent pidEnt) (proc, error) {
	pid := ent.pid
	k := d.known[pid]
	if k != nil && (k.ino != ent.ino || ent.ino <= 1) {
		delete(d.known, pid) // another process now has this PID
		d.reader.forget(pid) // and its held files are the old one's
		k = nil
	}
	if k == nil {
		p, err := d.readProc(pid)
		if err != nil {
			return p, err
		}
		if ent.ino > 1 {
			d.known[pid] = &known{p: p, ino: ent.ino, parentIno: d.inoOf(p.ppid), reads: 1,
				statDue: d.due(1, pid), cgDue: d.due(1, pid), seen: d.tick}
		}
		return p, nil
	}
	k.seen = d.tick
	d.reader.touch(pid)
	if d.tick >= k.statDue || (k.p.ppid > 1 && d.inoOf(k.p.ppid) != k.parentIno) {
		p, err := d.readStat(pid)
		if err == nil && p.StartTime != k.p.StartTime {
			err = errGone // cannot happen with a matching inode; be safe
		}
		if err != nil {
			delete(d.known, pid)
			return p, err
		}
		p.cg, p.id = k.p.cg, k.p.id
		k.p, k.parentIno = p, d.inoOf(p.ppid)
		k.reads++
		k.statDue = d.due(k.reads, pid)
	}
	if !k.p.excluded && d.tick >= k.cgDue {
		cg, err := d.readCgroup(pid)
		if err != nil {
			delete(d.known, pid)
			return k.p, err
		}
		k.p.cg = cg
		k.cgDue = d.due(k.reads, pid)
	}
	return k.p, nil
}

// readProc reads /proc/PID/stat and, unless the process is excluded,
// /proc/PID/cgroup. It returns errGone when the process exited.
func (d *Discoverer) readProc(pid int) (proc, error) {
	p, err := d.readStat(pid)
	if err != nil || p.excluded {
		return p, err
	}
	p.cg, err = d.readCgroup(pid)
	return p, err
}

// readStat reads /proc/PID/stat into a proc without its cgroup.
func (d *Discoverer) readStat(pid int) (proc, error) {
	var p proc
	b, err := d.reader.read(pid, fileStat)
	if err != nil {
		if errors.Is(err, errGone) {
			return p, err
		}
		return p, fmt.Errorf("read %s: %w", d.roots.ProcPath(strconv.Itoa(pid), "stat"), err)
	}
	st, err := parseStat(b)
	if err != nil {
		return p, fmt.Errorf("parse %s: %w", d.roots.ProcPath(strconv.Itoa(pid), "stat"), err)
	}
	comm, ok := d.comms[string(st.comm)]
	if !ok {
		comm = string(st.comm)
		d.comms[comm] = comm
	}
	p.Proc = Proc{PID: pid, StartTime: st.start, Comm: comm}
	p.ppid = st.ppid
	p.shell = st.sid == pid && st.tty != 0
	if st.flags&pfKthread != 0 || pid == 2 || st.ppid == 2 || pid == d.self {
		p.excluded = true
	}
	return p, nil
}

// readCgroup reads and parses (once per distinct content) /proc/PID/cgroup.
func (d *Discoverer) readCgroup(pid int) (*cgInfo, error) {
	b, err := d.reader.read(pid, fileCgroup)
	if err != nil {
		if errors.Is(err, errGone) {
			return nil, err
		}
		return nil, fmt.Errorf("read %s: %w", d.roots.ProcPath(strconv.Itoa(pid), "cgroup"), err)
	}
	ci, ok := d.cgCache[string(b)]
	if !ok {
		entries, err := parseCgroupFile(b)
		if err != nil {
			if len(b) == 0 {
				// An exiting process may show an empty file.
				return nil, errGone
			}
			return nil, fmt.Errorf("parse %s: %w", d.roots.ProcPath(strconv.Itoa(pid), "cgroup"), err)
		}
		ci = newCgInfo(entries)
		d.cgCache[string(b)] = ci
	}
	return ci, nil
}

// selectPID builds the tree workload of pid and its descendants.
func (d *Discoverer) selectPID(pid int) (Workload, error) {
	i, ok := d.index[pid]
	if !ok {
		for _, s := range d.skipped {
			if s.PID == pid {
				return Workload{}, fmt.Errorf("pid %d: %w", pid, s.Err)
			}
		}
		return Workload{}, fmt.Errorf("pid %d: %w", pid, ErrNoSuchProcess)
	}
	root := &d.procs[i]
	if root.excluded {
		what := "a kernel thread"
		if pid == d.self {
			what = "sculpt itself"
		}
		return Workload{}, fmt.Errorf("pid %d is %s: %w", pid, what, ErrExcluded)
	}
	w := Workload{
		ID:      d.treeIDOf(i),
		Name:    root.Comm,
		Kind:    KindTree,
		Cgroups: root.cg.cgroups(""),
	}
	d.buildChildren()
	stack := append(d.stack[:0], i)
	for len(stack) > 0 {
		j := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		p := &d.procs[j]
		if !p.excluded && !d.claimed[j] {
			d.claimed[j] = true
			w.Procs = append(w.Procs, p.Proc)
		}
		stack = append(stack, d.children[j]...)
	}
	d.stack = stack
	slices.SortFunc(w.Procs, func(a, b Proc) int { return a.PID - b.PID })
	return w, nil
}

// buildChildren fills d.children (index -> child indexes) once per sweep.
func (d *Discoverer) buildChildren() {
	if len(d.children) == len(d.procs) {
		return
	}
	d.children = slices.Grow(d.children[:0], len(d.procs))[:len(d.procs)]
	for i := range d.children {
		d.children[i] = d.children[i][:0]
	}
	for i := range d.procs {
		if j, ok := d.index[d.procs[i].ppid]; ok && int(j) != i {
			d.children[j] = append(d.children[j], int32(i))
		}
	}
}

// treeIDOf returns treeID of the process at index i, built once per process
// while it stays known (its /proc entry keeps its inode, so its PID and start
// time cannot change).
func (d *Discoverer) treeIDOf(i int32) string {
	p := &d.procs[i]
	if p.id == "" {
		p.id = treeID(p.Proc)
		if k := d.known[p.PID]; k != nil && k.p.StartTime == p.StartTime {
			k.p.id = p.id
		}
	}
	return p.id
}

func treeID(p Proc) string {
	return "tree:" + strconv.Itoa(p.PID) + "@" + strconv.FormatUint(p.StartTime, 10)
}

// groupAll groups every unclaimed process by the rules in docs/workloads.md.
func (d *Discoverer) groupAll() []Workload {
	type group struct {
		w      Workload
		mark   string
		cgs    []*cgInfo
		oldest int32 // index of its oldest process
	}
	d.markSessions()
	groups := make(map[string]*group)
	var order []*group
	for i := range d.procs {
		p := &d.procs[i]
		if p.excluded || d.claimed[i] {
			continue
		}
		ci := p.cg
		id, name, kind := ci.id, ci.name, ci.kind
		switch {
		case kind == "":
			r := d.treeRoot(int32(i))
			id, name, kind = d.treeIDOf(r), d.procs[r].Comm, KindTree
		case d.sessions[ci.id] && !d.infra[i]:
			r := d.treeRoot(int32(i))
			id, name, kind = d.treeIDOf(r), d.procs[r].Comm, KindTree
		}
		g := groups[id]
		if g == nil {
			g = &group{w: Workload{ID: id, Name: name, Kind: kind, Pod: ci.pod}, mark: ci.mark, oldest: int32(i)}
			groups[id] = g
			order = append(order, g)
		}
		if o := &d.procs[g.oldest]; p.StartTime < o.StartTime || (p.StartTime == o.StartTime && p.PID < o.PID) {
			g.oldest = int32(i)
		}
		d.claimed[i] = true
		g.w.Procs = append(g.w.Procs, p.Proc)
		if !slices.Contains(g.cgs, ci) {
			g.cgs = append(g.cgs, ci)
		}
	}
	out := make([]Workload, len(order))
	for i, g := range order {
		if len(g.cgs) == 1 {
			g.w.Cgroups = g.cgs[0].cgroups(g.mark)
		} else {
			g.w.Cgroups = cgroupsOf(g.cgs, g.mark)
		}
		if g.w.Kind == KindCgroup || g.w.Kind == KindContainer {
			g.w.Name = d.procs[g.oldest].Comm + " (" + g.w.Name + ")"
		}
		out[i] = g.w
	}
	return out
}

// markSessions finds the sessions among the unclaimed processes and their
// infrastructure (docs/workloads.md, "Sessions"). A process is a seed when
// it is one of sculpt's ancestors or an interactive shell; the seed and its
// ancestors in the same cgroup are the session's infrastructure
// (d.infra), and a seed's cgroup, unless it is a container's, is a session
// (d.sessions, by workload ID; the root cgroup always splits at its
// infrastructure). A systemd login scope (session-N.scope) is a session
// whether or not a seed is found in it.
func (d *Discoverer) markSessions() {
	d.infra = slices.Grow(d.infra[:0], len(d.procs))[:len(d.procs)]
	clear(d.infra)
	if d.sessions == nil {
		d.sessions = make(map[string]bool)
	}
	clear(d.sessions)
	for i := range d.procs {
		p := &d.procs[i]
		if p.excluded || d.claimed[i] {
			continue
		}
		if p.cg.login {
			d.sessions[p.cg.id] = true
		}
		if !p.shell && !slices.Contains(d.anc, p.PID) {
			continue
		}
		if p.cg.kind == KindContainer {
			continue
		}
		if p.cg.kind != "" {
			d.sessions[p.cg.id] = true
		}
		for j := int32(i); !d.infra[j]; {
			d.infra[j] = true
			k, ok := d.index[d.procs[j].ppid]
			if !ok || d.procs[j].ppid <= 1 || d.procs[k].excluded || !sameGroup(d.procs[k].cg, p.cg) {
				break
			}
			j = k
		}
	}
}

// sameGroup reports whether two processes' cgroups give the same workload
// (both in the root cgroup, or the same container, unit or cgroup).
func sameGroup(a, b *cgInfo) bool {
	return a == b || (a.kind == b.kind && a.id == b.id)
}

// treeRoot walks up from the process at index i through its ancestors in
// the same group (the root cgroup, or a session cgroup) and returns the
// index of the one that is a child of PID 1 or 0, or, when the chain leaves
// the group or meets an excluded or vanished process or, from outside a
// session's infrastructure, the infrastructure, the last one in it.
func (d *Discoverer) treeRoot(i int32) int32 {
	infra := d.infra[i]
	for {
		pp := d.procs[i].ppid
		if pp <= 1 {
			return i
		}
		j, ok := d.index[pp]
		if !ok || d.procs[j].excluded || !sameGroup(d.procs[j].cg, d.procs[i].cg) || d.infra[j] != infra {
			return i
		}
		i = j
	}
}

// cgroups returns cgroupsOf(ci, mark), computed once per cgInfo and mark:
// the V1 map is shared by every workload (and Discover call) it is returned
// for, and never modified. ci may be nil (an empty Cgroups).
func (ci *cgInfo) cgroups(mark string) Cgroups {
	if ci == nil {
		return Cgroups{}
	}
	for _, m := range ci.memo {
		if m.mark == mark {
			return m.cgs
		}
	}
	c := cgroupsOf([]*cgInfo{ci}, mark)
	ci.memo = append(ci.memo, cgMemo{mark: mark, cgs: c})
	return c
}

// cgroupsOf returns, for each hierarchy, the deepest cgroup that holds every
// one of cgs, each path first cut after the element naming mark (the
// container ID or unit name).
func cgroupsOf(cgs []*cgInfo, mark string) Cgroups {
	var c Cgroups
	for _, ci := range cgs {
		if ci == nil {
			continue
		}
		for _, e := range ci.entries {
			p := cutAfter(e.path, mark)
			if e.key == "" {
				if c.V2 == "" {
					c.V2 = p
				} else {
					c.V2 = commonPath(c.V2, p)
				}
				continue
			}
			if c.V1 == nil {
				c.V1 = make(map[string]string, len(ci.entries))
			}
			if old, ok := c.V1[e.key]; ok {
				c.V1[e.key] = commonPath(old, p)
			} else {
				c.V1[e.key] = p
			}
		}
	}
	return c
}

// isDir reports whether path is a directory, and any error other than its
// absence.
func isDir(path string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
			return false, nil
		}
		return false, fmt.Errorf("stat %s: %w", path, err)
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}
