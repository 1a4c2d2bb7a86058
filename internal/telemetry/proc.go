package telemetry

import (
	"cmp"
	"context"
	"fmt"
	"math/bits"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"

	"sculpt/internal/host"
)

// ProcOptions tunes the ProcCollector. The zero value is the default
// (DefaultProcOptions); a negative cadence turns that file off.
type ProcOptions struct {
	// SmapsEvery reads /proc/PID/smaps_rollup every this many sweeps (the
	// kernel walks the page tables to produce it): 0 means 5, negative never.
	// A process is read on the first sweep it appears in, and its last values
	// are re-emitted in between.
	SmapsEvery int
	// NUMAEvery reads /proc/PID/numa_maps every this many sweeps (it walks
	// every mapping): 0 means 10, negative never.
	NUMAEvery int
	// NoSched skips /proc/PID/sched (per thread), leaving Migrations absent.
	// The kernel formats about 30 lines for it, a large share of a sweep's
	// cost (see docs/benchmarks.md).
	NoSched bool
	// IdleRefreshEvery is the idle skip's refresh cadence: a process whose
	// run time (schedstat field 1, of every thread) has not changed since its
	// last full read did not run, so its stat, status, io and sched cannot
	// have changed either (no context switch, fault, I/O, migration or
	// thread without running), and only schedstat is read; the values of
	// the other files are re-emitted. Gauges that do change while a process
	// sleeps (VmRSS through reclaim or swap) are read again every this many
	// sweeps anyway: 0 means 30, negative turns the idle skip off (every
	// file read every sweep). smaps_rollup and numa_maps keep their own
	// cadences unless IdleSlowFiles.
	IdleRefreshEvery int
	// IdleSlowFiles extends the idle skip to smaps_rollup and numa_maps: an
	// idle process's are read at its next full read (its refresh, or when it
	// runs) once due, instead of on their own cadence. Their gauges (PSS,
	// anonymous and swapped memory, pages per node) change without the
	// process running only through reclaim, swap-out, page migration or
	// other processes mapping or unmapping shared pages: so at the refresh
	// of a process that is still idle with an unchanged VmRSS they wait
	// further, for at most 4 refreshes (120 sweeps by default) since they
	// were last read; reclaim and swap-out change VmRSS, and the shared
	// pages' PSS and page migrations are what that bound covers. DefaultProcOptions
	// and the zero ProcOptions turn it on; a ProcOptions with any field set
	// has it as given.
	IdleSlowFiles bool
}

// DefaultProcOptions reads smaps_rollup every 5 sweeps, numa_maps every 10
// and sched every sweep, each only when the process ran since, with a full
// read of an idle process every 30 sweeps.
func DefaultProcOptions() ProcOptions {
	return ProcOptions{SmapsEvery: 5, NUMAEvery: 10, IdleRefreshEvery: 30, IdleSlowFiles: true}
}

// withDefaults resolves zero cadences to the defaults and negative ones to 0
// (off).
func (o ProcOptions) withDefaults() ProcOptions {
	d := DefaultProcOptions()
	if o == (ProcOptions{}) {
		return d
	}
	if o.SmapsEvery == 0 {
		o.SmapsEvery = d.SmapsEvery
	}
	if o.NUMAEvery == 0 {
		o.NUMAEvery = d.NUMAEvery
	}
	if o.IdleRefreshEvery == 0 {
		o.IdleRefreshEvery = d.IdleRefreshEvery
	}
	o.IdleRefreshEvery = max(o.IdleRefreshEvery, 0)
	o.SmapsEvery = max(o.SmapsEvery, 0)
	o.NUMAEvery = max(o.NUMAEvery, 0)
	return o
}

// ProcStats counts what happened to the processes of the last sweep.
type ProcStats struct {
	Sweeps    uint64    // sweeps so far
	Processes int       // processes asked for in the last sweep
	Gone      int       // of them, exited (or their PID reused) before they could be read
	Failed    int       // of them, with at least one file that could not be read or parsed
	Denied    int       // of them, with at least one file we may not read (EACCES/EPERM)
	Idle      int       // of them, not run since their last full read: only schedstat read
	HeldFDs   int       // descriptors this collector keeps open between sweeps
	Reads     ProcReads // files read in the last sweep
	LastError error     // the last read or parse error, naming the file and field
	// NUMAError says why the NUMA metrics are off when the node topology
	// could not be read; nil otherwise.
	NUMAError error
}

// ProcReads counts the files one sweep read, by name (a benchmark replays
// them to measure the floor of what the collector read).
type ProcReads struct {
	Stat, Status, Schedstat, Sched, IO int // /proc/PID/<name>
	Smaps, NUMAMaps                    int // smaps_rollup, numa_maps
	Task                               int // /proc/PID/task/TID/{status,schedstat,sched}
}

// ProcCollector reads the per-process files of procfs for every process of
// a Sample: /proc/PID/{stat,status,schedstat,sched,io,smaps_rollup,numa_maps}
// and, for multi-threaded processes, /proc/PID/task/TID/{status,schedstat,sched}.
//
// stat also gives the parent's PID (ProcSample.PPID) and the counters of
// the children the process reaped (cutime, cstime, cminflt, cmajflt), which
// the Sampler uses to count processes that start and exit between two
// sweeps. Processes are read oldest first (by start time), so a parent is
// read before its children.
//
// Counters in stat are kept by the kernel for the whole thread group; the
// context switches of status and the values of schedstat and sched are per
// task, so for a process with more than one thread they are summed over its
// task directory. Threads that exited take their share with them: such a
// counter can go down, and the Sampler then drops that interval's delta.
//
// Every file of a process is opened relative to one descriptor of its
// /proc/PID directory, whose stat field 22 (starttime) must equal the
// ProcKey's StartTime (when non-zero): a reused PID is treated as gone.
// Between sweeps the collector keeps that directory and the process's
// schedstat open, and rereads schedstat with pread(2) at offset 0 (the
// kernel regenerates the text; no path lookup, no open). An
// open /proc/PID descriptor stays tied to its process: once it exits, reads
// fail with ESRCH (and opens relative to the directory with ENOENT), also
// when its PID has been reused, so a held descriptor never reads another
// process. The descriptors held are bounded by RLIMIT_NOFILE (see
// procHeldLimit; the Go runtime raises the soft limit to the hard one at
// start) and closed when a process leaves the sample or by Close.
//
// Idle skip (ProcOptions.IdleRefreshEvery): schedstat is read first; when
// the run time of every thread is unchanged since the last full read, the
// process has not run, and the other files' values are re-emitted.
//
// Units: stat times are clock ticks of UserHZ (100; see default.go),
// reported in seconds; schedstat nanoseconds are reported in seconds; status
// and smaps_rollup kB in bytes. NUMA page counts are in base pages (a 2 MiB
// huge page counts 512), local meaning on a node whose CPUs intersect the
// process's Cpus_allowed_list when numa_maps was read.
//
// Errors: ENOENT/ESRCH mean the process (or a thread) exited and skip it
// silently; EACCES/EPERM (io, smaps_rollup, numa_maps of other users'
// processes without CAP_SYS_PTRACE, or a hidepid mount) skip that file;
// anything else, including a parse error, skips that file's metrics for the
// process and is counted in Stats.
type ProcCollector struct {
	roots    host.Roots
	opts     ProcOptions
	hz       float64
	pageSize uint64
	r        *procReader
	// nodes holds the CPUs of each NUMA node (index = node id; nil for a
	// node that does not exist); nil when the machine has no node directory
	// (one node 0 holding every CPU).
	nodes     []cpuSet
	numaErr   error
	cache     map[ProcKey]*procCache
	sweep     uint64
	stats     ProcStats
	tids      []int
	runs      []taskRun
	prevTasks []taskRun
	order     []ProcKey // this sweep's processes, oldest first
	cpus      cpuSet
	local     cpuSet
	held      int // descriptors held open between sweeps
	maxHeld   int
	reads     ProcReads
	localOK   bool // c.local was computed by the last full read
}

// Indexes of the descriptors a procCache holds.
const (
	hDir = iota // O_PATH /proc/PID
	hStat
	hStatus
	hSchedstat
	hSched
	hIO
	nHeld
)

// taskRun is one thread's run time at the last full read.
type taskRun struct {
	tid   int
	runNS uint64
}

// procCache holds the slowly refreshed values and the open files of one
// process.
type procCache struct {
	seen      uint64 // sweep it was last asked for
	fds       [nHeld]int32
	idleOK    bool      // last holds a complete full read
	readFull  bool      // read in full at least once
	fullDue   uint64    // sweep of the next full read, idle or not
	threads   uint64    // num_threads at the last full read
	ppid      int       // stat ppid at the last full read
	runNS     uint64    // single-threaded: run time at the last full read
	tasks     []taskRun // multi-threaded: run time per thread
	last      Values    // stat, status, schedstat, sched and io values of the last full read
	smapsDue  uint64
	numaDue   uint64
	smaps     procSmaps
	hasSmaps  bool
	numa      numaCounts
	hasNUMA   bool
	hasLocal  bool
	readSmaps bool // read at least once (due times are staggered after the first)
	readNUMA  bool
	// slowBy is the sweep by which an idle process's slow files are read
	// at its refresh even when it stayed idle (IdleSlowFiles).
	slowBy uint64
}

var (
	_ Collector = (*ProcCollector)(nil)
	_ Closer    = (*ProcCollector)(nil)
)

// NewProcCollector returns a collector reading the proc files under
// roots.Proc. It reads the CPUs of each NUMA node from
// roots.Sys/devices/system/node/node*/cpulist once; a machine without that
// directory has one node 0. If the node files cannot be read the NUMA metrics
// stay absent and Stats().NUMAError says why.
func NewProcCollector(roots host.Roots, opts ProcOptions) *ProcCollector {
	c := &ProcCollector{
		roots:    roots,
		opts:     opts.withDefaults(),
		hz:       UserHZ,
		pageSize: uint64(os.Getpagesize()),
		r:        newProcReader(),
		cache:    make(map[ProcKey]*procCache),
		maxHeld:  procHeldLimit(),
	}
	if c.opts.NUMAEvery > 0 {
		c.nodes, c.numaErr = readNodeCPUs(roots)
	}
	return c
}

// Name implements Collector.
func (c *ProcCollector) Name() string { return "procfs" }

// Stats returns the counts of the last sweep.
func (c *ProcCollector) Stats() ProcStats {
	s := c.stats
	s.NUMAError = c.numaErr
	return s
}

// readNodeCPUs reads roots.Sys/devices/system/node/node*/cpulist.
func readNodeCPUs(roots host.Roots) ([]cpuSet, error) {
	dir := roots.SysPath("devices", "system", "node")
	ents, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read NUMA nodes: %w", err)
	}
	var nodes []cpuSet
	for _, e := range ents {
		id, ok := strings.CutPrefix(e.Name(), "node")
		if !ok {
			continue
		}
		n, err := strconv.Atoi(id)
		if err != nil || n < 0 || n >= maxCPUs {
			continue
		}
		path := filepath.Join(dir, e.Name(), "cpulist")
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read NUMA node cpus: %w", err)
		}
		set, err := parseCPUList(nil, b)
		if err != nil {
			return nil, fmt.Errorf("parse %s: %w", path, err)
		}
		for len(nodes) <= n {
			nodes = append(nodes, nil)
		}
		nodes[n] = set
	}
	if len(nodes) == 0 {
		return nil, nil
	}
	return nodes, nil
}

// localNodes sets c.local to the nodes whose CPUs intersect the CPU list
// allowed (Cpus_allowed_list).
func (c *ProcCollector) localNodes(allowed []byte) error {
	c.local = c.local[:0]
	if c.nodes == nil {
		c.local = append(c.local, 1) // node 0
		return nil
	}
	var err error
	if c.cpus, err = parseCPUList(c.cpus, allowed); err != nil {
		return err
	}
	for n, cpus := range c.nodes {
		if cpus.intersects(c.cpus) {
			for len(c.local) <= n/64 {
				c.local = append(c.local, 0)
			}
			c.local[n/64] |= 1 << (n % 64)
		}
	}
	return nil
}

// procResult says how reading one process went.
type procResult struct {
	gone, failed, denied, idle bool
	err                        error
}

// note records in res what err from the file name of process pid means:
// gone, denied or failed.
func (c *ProcCollector) note(res *procResult, pid int, name string, err error) {
	switch {
	case isGone(err):
		res.gone = true
	case isDenied(err):
		res.denied = true
	default:
		res.failed = true
		res.err = fmt.Errorf("%s/%d/%s: %w", c.roots.Proc, pid, name, err)
	}
}

// Collect implements Collector: it fills the per-process metrics of every
// ProcSample in s. A process that exited, or whose PID was reused, is skipped
// and left without values; a file that cannot be parsed leaves that file's
// metrics absent for that process. Collect returns an error only when every
// process asked for failed (not merely exited), naming the last failure;
// Stats counts the rest.
func (c *ProcCollector) Collect(ctx context.Context, s *Sample) error {
	c.sweep++
	c.reads = ProcReads{}
	st := ProcStats{Sweeps: c.sweep, Processes: len(s.Procs)}
	// Oldest first, so that a parent is read before its children: a child
	// that its parent reaped after the parent was read is then gone when
	// read, never read alive and also counted in its parent's cutime (see
	// Sampler.reaped).
	c.order = c.order[:0]
	for key := range s.Procs {
		c.order = append(c.order, key)
	}
	slices.SortFunc(c.order, func(a, b ProcKey) int {
		if a.StartTime != b.StartTime {
			return cmp.Compare(a.StartTime, b.StartTime)
		}
		return a.PID - b.PID
	})
	for i, key := range c.order {
		if i%64 == 63 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		ps := s.Procs[key]
		res := c.collect(key, ps)
		if e := c.cache[key]; e != nil && !res.gone && e.readFull {
			ps.PPID = e.ppid
		}
		switch {
		case res.gone:
			st.Gone++
			ps.Values = Values{}
			ps.Gone = true
		case res.failed:
			st.Failed++
			st.LastError = res.err
		}
		if res.denied {
			st.Denied++
		}
		if res.idle {
			st.Idle++
		}
	}
	for key, e := range c.cache {
		if e.seen != c.sweep {
			c.release(e)
			delete(c.cache, key)
		}
	}
	st.HeldFDs = c.held
	st.Reads = c.reads
	c.stats = st
	if st.Failed > 0 && st.Failed == st.Processes {
		return fmt.Errorf("procfs: all %d processes failed, last: %w", st.Failed, st.LastError)
	}
	return nil
}

// Files relative to /proc/PID.
var (
	fileStat      = []byte("stat\x00")
	fileStatus    = []byte("status\x00")
	fileSchedstat = []byte("schedstat\x00")
	fileSched     = []byte("sched\x00")
	fileIO        = []byte("io\x00")
	fileSmaps     = []byte("smaps_rollup\x00")
	fileNUMAMaps  = []byte("numa_maps\x00")
	fileTask      = []byte("task\x00")
)

// Close closes the files the collector keeps open between sweeps and
// forgets its per-process state; the collector stays usable. It implements
// Closer and never fails.
func (c *ProcCollector) Close() error {
	for key, e := range c.cache {
		c.release(e)
		delete(c.cache, key)
	}
	return nil
}

// release closes the descriptors e holds.
func (c *ProcCollector) release(e *procCache) {
	for i, fd := range e.fds {
		if fd >= 0 {
			closeFD(int(fd))
			c.held--
			heldTotal.Add(-1)
			e.fds[i] = -1
		}
	}
}

// hold keeps fd open in e.fds[i] when the budget allows and reports whether
// it did; the caller closes fd otherwise.
func (c *ProcCollector) hold(e *procCache, i int, fd int) bool {
	if heldTotal.Load() >= int64(c.maxHeld) || fd > 1<<31-1 {
		return false
	}
	heldTotal.Add(1)
	e.fds[i] = int32(fd)
	c.held++
	return true
}

// heldTotal counts the descriptors held by every ProcCollector of the
// program, which share one budget (procHeldLimit).
var heldTotal atomic.Int64

// readHeld reads the file name of the process through its held descriptor
// i, opening it (relative to dirfd) and holding it when it is not held yet.
// Only schedstat, which the idle skip reads every sweep, is held: holding
// stat, status, sched and io too would save a running process about 10 µs
// per sweep for four more descriptors per process, which several
// collectors, the discoverer and perf events over a thousand processes
// cannot all afford under a 20000-descriptor limit. The result is valid
// until the next read.
func (c *ProcCollector) readHeld(e *procCache, i, dirfd int, name []byte) ([]byte, error) {
	switch i {
	case hStat:
		c.reads.Stat++
	case hStatus:
		c.reads.Status++
	case hSchedstat:
		c.reads.Schedstat++
	case hSched:
		c.reads.Sched++
	case hIO:
		c.reads.IO++
	}
	if fd := e.fds[i]; fd >= 0 {
		return c.r.pread(int(fd), true)
	}
	if i != hSchedstat {
		return c.r.read(dirfd, name, true)
	}
	fd, err := openat(dirfd, name, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	b, err := c.r.pread(fd, true)
	if err != nil || !c.hold(e, i, fd) {
		closeFD(fd)
	}
	return b, err
}

// collect reads one process into ps.
func (c *ProcCollector) collect(key ProcKey, ps *ProcSample) procResult {
	var res procResult
	r := c.r
	pid := key.PID
	e := c.cache[key]
	if e == nil {
		e = &procCache{smapsDue: c.sweep, numaDue: c.sweep, fds: [nHeld]int32{-1, -1, -1, -1, -1, -1}}
		c.cache[key] = e
	}
	e.seen = c.sweep
	dirfd := int(e.fds[hDir])
	if dirfd < 0 {
		var err error
		dirfd, err = openat(unix.AT_FDCWD, r.cpath(c.roots.Proc+"/", pid, ""), unix.O_PATH|unix.O_DIRECTORY)
		if err != nil {
			c.note(&res, pid, "", err)
			return res
		}
		if !c.hold(e, hDir, dirfd) {
			defer closeFD(dirfd)
		}
	}
	numaDue := c.opts.NUMAEvery > 0 && c.numaErr == nil && c.sweep >= e.numaDue

	// The idle skip needs the directory held (so that the process read is
	// the one read in full before) and a complete last read.
	var ss *procSchedstat
	var ssBuf procSchedstat
	if c.opts.IdleRefreshEvery > 0 && e.idleOK && e.fds[hDir] >= 0 && c.sweep < e.fullDue && (c.opts.IdleSlowFiles || !numaDue) {
		var idle, haveSS bool
		idle, haveSS = c.idle(e, dirfd, pid, &ps.Values, &res, &ssBuf)
		if haveSS {
			ss = &ssBuf
		}
		if res.gone {
			c.release(e)
			e.idleOK = false
			return res
		}
		res = procResult{} // an error is reported by the full read
		if idle {
			res.idle = true
			c.slowFiles(e, dirfd, pid, &ps.Values, &res, !c.opts.IdleSlowFiles, false)
			return res
		}
	}
	// An idle refresh: the process did not run since its last complete
	// read, which is read again in full (below) on the refresh cadence.
	quiet := c.opts.IdleSlowFiles && e.idleOK && c.sweep < e.slowBy
	var prevRun uint64
	var prevRSS float64
	var prevHasRSS bool
	if quiet {
		prevRun = e.runNS
		prevRSS, prevHasRSS = e.last.Get(RSSBytes)
		if e.threads > 1 {
			c.prevTasks = append(c.prevTasks[:0], e.tasks...)
		}
	}
	c.full(e, key, dirfd, ss, numaDue, &res)
	if res.gone {
		c.release(e)
		e.idleOK = false
		return res
	}
	setAll(&ps.Values, &e.last)
	if quiet {
		// Still idle, with the same resident set: smaps_rollup and
		// numa_maps wait (see ProcOptions.IdleSlowFiles).
		rss, hasRSS := e.last.Get(RSSBytes)
		if e.threads > 1 {
			quiet = slices.Equal(c.prevTasks, e.tasks)
		} else {
			quiet = prevRun == e.runNS
		}
		quiet = quiet && e.idleOK && rss == prevRSS && hasRSS == prevHasRSS
	}
	if quiet {
		c.slowFiles(e, dirfd, pid, &ps.Values, &res, false, false)
		return res
	}
	if c.opts.IdleSlowFiles {
		e.slowBy = c.sweep + uint64(idleSlowRefreshes*c.opts.IdleRefreshEvery)
	}
	c.slowFiles(e, dirfd, pid, &ps.Values, &res, true, numaDue)
	return res
}

// idleSlowRefreshes is how many idle refreshes (ProcOptions.IdleRefreshEvery)
// at most pass between two reads of an idle process's smaps_rollup and
// numa_maps under ProcOptions.IdleSlowFiles.
const idleSlowRefreshes = 4

// setAll sets every metric present in src in dst.
func setAll(dst, src *Values) {
	if dst.has == [len(dst.has)]uint64{} {
		*dst = *src // the usual case: the procfs collector runs first
		return
	}
	for i, w := range src.has {
		for w != 0 {
			m := Metric(i*64 + bits.TrailingZeros64(w))
			w &= w - 1
			dst.Set(m, src.v[m])
		}
	}
}

// idle reads the schedstat of every thread of the process and, when no
// thread's run time changed since the last full read, sets v from it and
// e.last and returns true. Otherwise it returns false and, for a
// single-threaded process, stores the schedstat it read in out (for the full
// read to reuse) and reports haveSS.
func (c *ProcCollector) idle(e *procCache, dirfd, pid int, v *Values, res *procResult, out *procSchedstat) (idle, haveSS bool) {
	if e.threads <= 1 {
		b, err := c.readHeld(e, hSchedstat, dirfd, fileSchedstat)
		if err != nil {
			c.note(res, pid, "schedstat", err)
			return false, false
		}
		ss, err := parseSchedstat(b)
		if err != nil {
			return false, false
		}
		if ss.RunNS != e.runNS {
			*out = ss
			return false, true
		}
		setAll(v, &e.last)
		v.Set(RunTimeSec, float64(ss.RunNS)/1e9)
		v.Set(RunDelaySec, float64(ss.DelayNS)/1e9)
		v.Set(Timeslices, float64(ss.Slices))
		return true, false
	}
	sum, ok := c.taskRuns(dirfd)
	if !ok || !slices.Equal(c.runs, e.tasks) {
		return false, false
	}
	setAll(v, &e.last)
	v.Set(RunTimeSec, float64(sum.RunNS)/1e9)
	v.Set(RunDelaySec, float64(sum.DelayNS)/1e9)
	v.Set(Timeslices, float64(sum.Slices))
	return true, false
}

// taskRuns lists the threads of the process and reads each one's schedstat
// into c.runs, returning their sum; false when a thread could not be read
// (it exited: the process ran).
func (c *ProcCollector) taskRuns(dirfd int) (procSchedstat, bool) {
	var sum procSchedstat
	var err error
	c.runs = c.runs[:0]
	c.tids, err = c.r.readTIDs(dirfd, fileTask, c.tids[:0])
	if err != nil {
		return sum, false
	}
	for _, tid := range c.tids {
		c.reads.Task++
		b, err := c.r.read(dirfd, c.r.cpath("task/", tid, "/schedstat"), true)
		if err != nil {
			return sum, false
		}
		ss, err := parseSchedstat(b)
		if err != nil {
			return sum, false
		}
		c.runs = append(c.runs, taskRun{tid: tid, runNS: ss.RunNS})
		sum.RunNS += ss.RunNS
		sum.DelayNS += ss.DelayNS
		sum.Slices += ss.Slices
	}
	return sum, true
}

// full reads stat, status, schedstat, sched and io of the process into
// e.last (ss, when not nil, is its schedstat read moments ago) and records
// what the idle skip compares against.
func (c *ProcCollector) full(e *procCache, key ProcKey, dirfd int, ss *procSchedstat, numaDue bool, res *procResult) {
	pid := key.PID
	e.last = Values{}
	e.idleOK = false
	v := &e.last

	// The run times the idle skip compares against are read first: a
	// thread that runs after this point changes them, so the next sweep
	// reads in full again instead of re-emitting values older than them.
	guessMulti := e.threads > 1
	runsOK := false
	if !guessMulti {
		if ss == nil {
			if b, err := c.readHeld(e, hSchedstat, dirfd, fileSchedstat); err == nil {
				if one, err := parseSchedstat(b); err == nil {
					ss = &one
				}
			}
		}
		if ss != nil {
			e.runNS, runsOK = ss.RunNS, true
		}
	} else {
		_, runsOK = c.taskRuns(dirfd)
		e.tasks = append(e.tasks[:0], c.runs...)
	}

	// stat: identity check first, then the thread-group counters.
	threads := uint64(1)
	statOK := false
	b, err := c.readHeld(e, hStat, dirfd, fileStat)
	if err == nil {
		var st procStat
		if st, err = parseStat(b); err == nil {
			if key.StartTime != 0 && st.StartTime != key.StartTime {
				res.gone = true
				return
			}
			v.Set(CPUUserSec, float64(st.UTime)/c.hz)
			v.Set(CPUSystemSec, float64(st.STime)/c.hz)
			v.Set(MinorFaults, float64(st.MinFlt))
			v.Set(MajorFaults, float64(st.MajFlt))
			v.Set(ChildCPUUserSec, float64(st.CUTime)/c.hz)
			v.Set(ChildCPUSystemSec, float64(st.CSTime)/c.hz)
			v.Set(ChildMinorFaults, float64(st.CMinFlt))
			v.Set(ChildMajorFaults, float64(st.CMajFlt))
			e.ppid = int(st.PPID)
			v.Set(Threads, float64(st.NumThreads))
			v.Set(Processes, 1)
			threads = st.NumThreads
			statOK = true
		}
	}
	if err != nil {
		if c.note(res, pid, "stat", err); res.gone {
			return
		}
	}
	c.localOK = false

	// status: RSS, allowed CPUs, and the main thread's context switches.
	b, err = c.readHeld(e, hStatus, dirfd, fileStatus)
	if err == nil {
		var st procStatus
		if st, err = parseStatus(b); err == nil {
			if st.HasRSS {
				v.Set(RSSBytes, float64(st.RSSBytes))
			}
			if st.HasCtx && threads <= 1 {
				v.Set(CtxVoluntary, float64(st.VolCtx))
				v.Set(CtxInvoluntary, float64(st.InvolCtx))
			}
			if numaDue && st.CPUsAllowed != nil {
				if err = c.localNodes(st.CPUsAllowed); err == nil {
					c.localOK = true
				}
			}
		}
	}
	if err != nil {
		if c.note(res, pid, "status", err); res.gone {
			return
		}
	}

	if threads <= 1 {
		c.readTask(e, dirfd, pid, -1, ss, v, res)
	} else {
		c.readThreads(e, dirfd, pid, v, res)
	}
	if res.gone {
		return
	}

	// io: other users' processes need ptrace access; EACCES is skipped.
	b, err = c.readHeld(e, hIO, dirfd, fileIO)
	if err == nil {
		var io procIO
		if io, err = parseIO(b); err == nil {
			v.Set(IOReadBytes, float64(io.ReadBytes))
			v.Set(IOWriteBytes, float64(io.WriteBytes))
			v.Set(IOReadChars, float64(io.RChar))
			v.Set(IOWriteChars, float64(io.WChar))
			v.Set(IOReadOps, float64(io.SyscR))
			v.Set(IOWriteOps, float64(io.SyscW))
		}
	}
	if err != nil {
		if c.note(res, pid, "io", err); res.gone {
			return
		}
	}

	// What the idle skip compares against. A failed file would be re-emitted
	// absent: only a complete read (denied files aside) qualifies.
	e.idleOK = statOK && runsOK && !res.failed && guessMulti == (threads > 1)
	e.threads = threads
	if every := c.opts.IdleRefreshEvery; every > 0 {
		if e.readFull {
			e.fullDue = c.sweep + uint64(every)
		} else {
			e.fullDue = c.sweep + 1 + uint64(pid%every)
		}
	}
	e.readFull = true
}

// slowFiles reads smaps_rollup (when read and due) and numa_maps (when
// numaDue, after a full read set c.localOK) and sets their last values in v.
func (c *ProcCollector) slowFiles(e *procCache, dirfd, pid int, v *Values, res *procResult, read, numaDue bool) {
	r := c.r
	if read && c.opts.SmapsEvery > 0 && c.sweep >= e.smapsDue {
		e.smapsDue = c.nextDue(e.readSmaps, c.opts.SmapsEvery, pid)
		e.readSmaps = true
		c.reads.Smaps++
		b, err := r.read(dirfd, fileSmaps, true)
		if err == nil {
			e.smaps, err = parseSmapsRollup(b)
		}
		e.hasSmaps = err == nil
		if err != nil {
			if c.note(res, pid, "smaps_rollup", err); res.gone {
				return
			}
		}
	}
	if e.hasSmaps {
		v.Set(PSSBytes, float64(e.smaps.PSSBytes))
		v.Set(AnonBytes, float64(e.smaps.AnonBytes))
		v.Set(SwapBytes, float64(e.smaps.SwapBytes))
	}

	if numaDue {
		e.numaDue = c.nextDue(e.readNUMA, c.opts.NUMAEvery, pid)
		e.readNUMA = true
		localOK := c.localOK
		if !localOK {
			c.local = c.local[:0]
		}
		c.reads.NUMAMaps++
		b, err := r.read(dirfd, fileNUMAMaps, false)
		if err == nil {
			e.numa, err = parseNUMAMaps(b, c.local, c.pageSize)
		}
		e.hasNUMA, e.hasLocal = err == nil, err == nil && localOK
		if err != nil {
			if c.note(res, pid, "numa_maps", err); res.gone {
				return
			}
		}
	}
	if e.hasNUMA {
		v.Set(NUMAPagesTotal, e.numa.Total)
		if e.hasLocal {
			v.Set(NUMAPagesLocal, e.numa.Local)
		}
	}
}

// nextDue returns the sweep a slow file is read next. The first re-read is
// staggered by PID so that processes that appeared together do not all walk
// their page tables in the same sweep.
func (c *ProcCollector) nextDue(readBefore bool, every, pid int) uint64 {
	if readBefore {
		return c.sweep + uint64(every)
	}
	return c.sweep + 1 + uint64(pid%every)
}

// readThreads sums status context switches, schedstat and sched over the
// tasks of a multi-threaded process.
func (c *ProcCollector) readThreads(e *procCache, dirfd, pid int, v *Values, res *procResult) {
	var err error
	c.tids, err = c.r.readTIDs(dirfd, fileTask, c.tids[:0])
	if err != nil {
		c.note(res, pid, "task", err)
		return
	}
	var sum Values
	for _, tid := range c.tids {
		var one procResult
		c.reads.Task++
		b, err := c.r.read(dirfd, c.r.cpath("task/", tid, "/status"), true)
		if err == nil {
			var st procStatus
			if st, err = parseStatus(b); err == nil && st.HasCtx {
				sum.Add(CtxVoluntary, float64(st.VolCtx))
				sum.Add(CtxInvoluntary, float64(st.InvolCtx))
			}
		}
		if err != nil {
			c.note(&one, pid, "task/"+strconv.Itoa(tid)+"/status", err)
		}
		if !one.gone {
			c.readTask(e, dirfd, pid, tid, nil, &sum, &one)
		}
		// A thread that exited is not the process exiting.
		if one.failed {
			res.failed, res.err = true, one.err
		}
		res.denied = res.denied || one.denied
	}
	for _, m := range [...]Metric{CtxVoluntary, CtxInvoluntary, RunTimeSec, RunDelaySec, Timeslices, Migrations} {
		if x, ok := sum.Get(m); ok {
			v.Set(m, x)
		}
	}
}

// readTask adds schedstat (ss when not nil, else read) and (unless
// opts.NoSched) sched of one task to v: of the main thread through its held
// /proc/PID/{schedstat,sched} when tid < 0, else through
// /proc/PID/task/TID.
func (c *ProcCollector) readTask(e *procCache, dirfd, pid, tid int, ss *procSchedstat, v *Values, res *procResult) {
	var err error
	if ss == nil {
		var b []byte
		if tid < 0 {
			b, err = c.readHeld(e, hSchedstat, dirfd, fileSchedstat)
		} else {
			c.reads.Task++
			b, err = c.r.read(dirfd, c.r.cpath("task/", tid, "/schedstat"), true)
		}
		if err == nil {
			var one procSchedstat
			if one, err = parseSchedstat(b); err == nil {
				ss = &one
			}
		}
	}
	if ss != nil {
		v.Add(RunTimeSec, float64(ss.RunNS)/1e9)
		v.Add(RunDelaySec, float64(ss.DelayNS)/1e9)
		v.Add(Timeslices, float64(ss.Slices))
	}
	if err != nil {
		if c.note(res, pid, taskFile(tid, "schedstat"), err); res.gone {
			return
		}
	}
	if c.opts.NoSched {
		return
	}
	var b []byte
	if tid < 0 {
		b, err = c.readHeld(e, hSched, dirfd, fileSched)
	} else {
		c.reads.Task++
		b, err = c.r.read(dirfd, c.r.cpath("task/", tid, "/sched"), true)
	}
	if err == nil {
		var n uint64
		if n, err = parseSchedMigrations(b); err == nil {
			v.Add(Migrations, float64(n))
		}
	}
	if err != nil {
		c.note(res, pid, taskFile(tid, "sched"), err)
	}
}

// taskFile names a per-task file for an error message.
func taskFile(tid int, name string) string {
	if tid < 0 {
		return name
	}
	return "task/" + strconv.Itoa(tid) + "/" + name
}
