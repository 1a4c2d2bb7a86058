package linux

// Memory remapping: move a process's resident pages between NUMA nodes with
// move_pages(2) in bounded, paced chunks, or all at once with
// migrate_pages(2), and count where its pages are from numa_maps.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"sculpt/internal/host"
)

// Flags of move_pages(2) and migrate_pages(2) (linux/mempolicy.h).
const (
	mpolMFMove    = 1 << 1 // move pages owned only by this process
	mpolMFMoveAll = 1 << 2 // move every page of the process (CAP_SYS_NICE)
)

// hugeSpan is the span of a PMD-sized transparent huge page on x86-64 and
// arm64 with 4 KiB pages; chunks end on its boundaries.
const (
	hugeSpan      = 2 << 20
	hugeSpanPages = 512
)

// MoveOptions bound and pace MovePages.
type MoveOptions struct {
	// ChunkPages is how many pages one move_pages call handles (default
	// 1024). From 512 up a chunk runs on to the next 2 MiB boundary (at most
	// 512 pages more) so that a transparent huge page moves within one call.
	ChunkPages int
	// Pause is slept between chunks so the target never stalls for long
	// (default 1ms).
	Pause time.Duration
	// Retries is how many extra passes pages that came back -EBUSY or
	// -EAGAIN (typically under transparent huge pages) get (default 3).
	Retries int
	// Unbounded moves every page in one call, without chunks or pauses; it
	// exists for the benchmark that compares it with chunked moves.
	Unbounded bool
	// Shared moves pages other processes map too (page cache, shared
	// libraries and text: MPOL_MF_MOVE_ALL, which needs CAP_SYS_NICE).
	// Without it only the pages the process maps alone move
	// (MPOL_MF_MOVE); the others stay where they are and are counted in
	// MoveStats.Shared, so moving one workload never drags memory another
	// one uses.
	Shared bool
}

func (o MoveOptions) withDefaults() MoveOptions {
	if o.ChunkPages <= 0 {
		o.ChunkPages = 1024
	}
	if o.Pause <= 0 {
		o.Pause = time.Millisecond
	}
	if o.Retries <= 0 {
		o.Retries = 3
	}
	return o
}

// MoveStats counts what MovePages did. Pages = Moved + AlreadyThere + Failed
// + NotPresent + Shared.
type MoveStats struct {
	Pages        int           // resident pages found in the target's mappings
	Moved        int           // pages now on the target node that were elsewhere
	AlreadyThere int           // pages that were on the target node already
	Failed       int           // pages that could not be moved (see Errors)
	NotPresent   int           // pages gone or unmovable by nature (-ENOENT, -EFAULT): neither moved nor failed
	Shared       int           // pages other processes map too, left in place (without MoveOptions.Shared: -EACCES)
	Bytes        int64         // bytes moved (Moved × page size)
	Duration     time.Duration // wall time of the whole move, pauses included
	LongestCall  time.Duration // the longest single move_pages call that migrated pages
	// Errors maps errno -> number of pages that ended with it. A page the
	// kernel gave up migrating (move_pages returned a count of pages not
	// migrated) and that is still off the target counts as EAGAIN; one
	// that landed on another node than asked counts as EIO.
	Errors map[int]int
}

// errExited is the error MovePages returns when the target goes away.
func errExited(pid int, err error) error {
	if errors.Is(err, unix.ESRCH) {
		return fmt.Errorf("move pages of pid %d: pid exited: %w", pid, err)
	}
	return fmt.Errorf("move pages of pid %d: pid exited (%w): %w", pid, err, unix.ESRCH)
}

// MovePages moves the resident pages of process pid to NUMA node toNode with
// move_pages(2), ChunkPages at a time with a Pause between chunks, retrying
// pages that come back busy. It reads /proc/PID/maps for the mappings
// (skipping [vsyscall], [vdso], [vvar] and inaccessible ones) and
// /proc/PID/pagemap for which pages are present; where pagemap cannot be read
// every page of each mapping is tried, and absent ones come back -ENOENT.
//
// Each chunk is first queried (move_pages with no target nodes) so that pages
// already on toNode are counted and not moved. By default only the pages the
// process maps alone move (MPOL_MF_MOVE); pages other processes map too stay
// and are counted in Stats.Shared. With opt.Shared and CAP_SYS_NICE shared
// pages move too (MPOL_MF_MOVE_ALL, as migrate_pages(2) does for root);
// without the capability they fail with EACCES.
//
// When move_pages gives up on some pages (it returns how many it did not
// migrate and leaves their status unwritten), the chunk's pages are queried
// again and those still off toNode are retried like busy ones.
//
// Errors: ctx cancelled between chunks returns the stats so far and ctx's
// error; the target exiting returns the stats so far and an error wrapping
// unix.ESRCH; a node that does not exist or has no memory returns an error
// wrapping unix.ENODEV that names the node; EPERM when the caller may not
// move the target's pages. Per-page failures are counted in Stats.Errors, not
// returned as an error.
func MovePages(ctx context.Context, pid int, toNode int, opt MoveOptions) (MoveStats, error) {
	return movePagesHook(ctx, pid, toNode, opt, nil)
}

// movePagesHook is MovePages with a hook called after each chunk (for tests).
func movePagesHook(ctx context.Context, pid int, toNode int, opt MoveOptions, afterChunk func()) (st MoveStats, err error) {
	opt = opt.withDefaults()
	st.Errors = map[int]int{}
	start := time.Now()
	defer func() { st.Duration = time.Since(start) }()
	if toNode < 0 {
		return st, fmt.Errorf("move pages of pid %d to node %d: %w", pid, toNode, unix.EINVAL)
	}

	mapsPath := fmt.Sprintf("/proc/%d/maps", pid)
	data, err := os.ReadFile(mapsPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH) {
			return st, errExited(pid, err)
		}
		return st, fmt.Errorf("read %s: %w", mapsPath, err)
	}
	vmas, err := parseMaps(data)
	if err != nil {
		return st, fmt.Errorf("parse %s: %w", mapsPath, err)
	}
	if len(vmas) == 0 {
		// A zombie has no mappings left.
		return st, errExited(pid, unix.ESRCH)
	}

	m := &mover{pid: pid, to: toNode, opt: opt, st: &st, pageSize: uint64(os.Getpagesize())}
	m.flags = mpolMFMove
	if opt.Shared && hasCapSysNice() {
		m.flags = mpolMFMoveAll
	}
	pagemapPath := fmt.Sprintf("/proc/%d/pagemap", pid)
	pm, err := os.Open(pagemapPath)
	if err != nil && (errors.Is(err, os.ErrNotExist) || errors.Is(err, unix.ESRCH)) {
		return st, errExited(pid, err)
	}
	if err == nil {
		defer func() { _ = pm.Close() }()
	} else {
		pm = nil // fall back to every page of each mapping
	}

	limit := opt.ChunkPages
	if opt.Unbounded {
		limit = 0
	}
	var buf []uintptr
	flush := func(last bool) error {
		if len(buf) == 0 {
			return nil
		}
		if err := m.chunk(ctx, buf); err != nil {
			return err
		}
		buf = buf[:0]
		if afterChunk != nil {
			afterChunk()
		}
		if last {
			return nil
		}
		return sleepCtx(ctx, opt.Pause)
	}
	entries := make([]byte, 8*512)
	for _, v := range vmas {
		for addr := v.start; addr < v.end; {
			n := (v.end - addr) / m.pageSize
			if n > 512 {
				n = 512
			}
			var got []byte // nil without pagemap: try every page
			if pm != nil {
				k, err := pm.ReadAt(entries[:8*n], int64(addr/m.pageSize*8))
				if err != nil && !errors.Is(err, io.EOF) {
					if errors.Is(err, unix.ESRCH) {
						return st, errExited(pid, err)
					}
					return st, fmt.Errorf("read %s at %#x: %w", pagemapPath, addr, err)
				}
				if k < int(8*n) && processGone(pid) {
					// pagemap of an exited process reads empty.
					return st, errExited(pid, unix.ESRCH)
				}
				got = entries[:k]
			}
			for i := uint64(0); i < n; i++ {
				if pm != nil {
					if int(8*i+8) > len(got) {
						break
					}
					e := binary.LittleEndian.Uint64(got[8*i:])
					if e&(1<<63) == 0 { // not present in RAM
						continue
					}
				}
				page := addr + i*m.pageSize
				// A chunk of at least a huge page ends on a huge-page
				// boundary so that a transparent huge page moves within
				// one chunk (else the next chunk finds it moved already).
				if limit > 0 && len(buf) >= limit && (limit < hugeSpanPages || page%hugeSpan == 0 || len(buf) >= limit+hugeSpanPages) {
					if err := flush(false); err != nil {
						return st, err
					}
				}
				buf = append(buf, uintptr(page))
			}
			addr += n * m.pageSize
		}
	}
	if err := flush(true); err != nil {
		return st, err
	}
	return st, nil
}

// mover carries the state of one MovePages run.
type mover struct {
	pid      int
	to       int
	flags    int
	opt      MoveOptions
	st       *MoveStats
	pageSize uint64
	nodes    []int32
	status   []int32
}

// chunk queries where pages are, moves those not on the target, and retries
// the busy ones.
func (m *mover) chunk(ctx context.Context, pages []uintptr) error {
	m.st.Pages += len(pages)
	status := m.statusBuf(len(pages))
	if _, err := movePages(m.pid, pages, nil, status, 0); err != nil {
		return m.callErr(err)
	}
	todo := make([]uintptr, 0, len(pages))
	for i, s := range status {
		switch {
		case int(s) == m.to:
			m.st.AlreadyThere++
		case s >= 0:
			todo = append(todo, pages[i])
		case isNotPresent(-s):
			m.st.NotPresent++
		default:
			// Present but not queryable; let the move say why.
			todo = append(todo, pages[i])
		}
	}
	for pass := 0; len(todo) > 0; pass++ {
		if pass > 0 {
			if err := sleepCtx(ctx, m.opt.Pause); err != nil {
				return err
			}
		}
		status = m.statusBuf(len(todo))
		for i := range status {
			status[i] = statusUnset
		}
		nodes := m.nodeBuf(len(todo))
		t0 := time.Now()
		left, err := movePages(m.pid, todo, nodes, status, m.flags)
		if d := time.Since(t0); d > m.st.LongestCall {
			m.st.LongestCall = d
		}
		if err != nil {
			return m.callErr(err)
		}
		if left > 0 {
			// The kernel gave up on some pages and stopped: the status of
			// the pages from the failed batch on is unwritten. Ask where
			// they are now.
			if err := m.requery(todo, status); err != nil {
				return err
			}
		}
		busy := todo[:0]
		last := pass >= m.opt.Retries
		for i, s := range status {
			switch {
			case int(s) == m.to:
				m.st.Moved++
				m.st.Bytes += int64(m.pageSize)
			case s == statusNotMigrated && !last:
				busy = append(busy, todo[i])
			case s == statusNotMigrated:
				m.st.Failed++
				m.st.Errors[int(unix.EAGAIN)]++
			case s >= 0:
				// Moved somewhere else: count it as a failure to reach the target.
				m.st.Failed++
				m.st.Errors[int(unix.EIO)]++
			case isNotPresent(-s):
				m.st.NotPresent++
			case -s == int32(unix.EACCES) && m.flags == mpolMFMove && !m.opt.Shared:
				// Mapped by other processes too: left where it is.
				m.st.Shared++
			case (-s == int32(unix.EBUSY) || -s == int32(unix.EAGAIN)) && !last:
				busy = append(busy, todo[i])
			default:
				m.st.Failed++
				m.st.Errors[int(-s)]++
			}
		}
		todo = busy
	}
	return nil
}

// Status values of a page that the move call did not report: statusUnset
// before the call, statusNotMigrated after requery found the page still off
// the target. Both lie outside node numbers and negative errnos.
const (
	statusUnset       = math.MinInt32
	statusNotMigrated = math.MinInt32 + 1
)

// requery asks where the pages whose status the move left unwritten are now
// (a move_pages query of just those): on the target they count as moved,
// elsewhere as not migrated (retried); a page gone reports its errno.
func (m *mover) requery(pages []uintptr, status []int32) error {
	var idx []int
	var ask []uintptr
	for i, s := range status {
		if s == statusUnset {
			idx, ask = append(idx, i), append(ask, pages[i])
		}
	}
	if len(ask) == 0 {
		return nil
	}
	where := make([]int32, len(ask))
	if _, err := movePages(m.pid, ask, nil, where, 0); err != nil {
		return m.callErr(err)
	}
	for k, i := range idx {
		switch s := where[k]; {
		case int(s) == m.to || s < 0:
			status[i] = s
		default:
			status[i] = statusNotMigrated
		}
	}
	return nil
}

func isNotPresent(errno int32) bool {
	return errno == int32(unix.ENOENT) || errno == int32(unix.EFAULT)
}

// callErr turns a failed move_pages call into the error MovePages returns.
func (m *mover) callErr(err error) error {
	switch {
	case errors.Is(err, unix.ESRCH):
		return errExited(m.pid, err)
	case errors.Is(err, unix.EINVAL) && processGone(m.pid):
		// A zombie has no mm: move_pages says EINVAL.
		return errExited(m.pid, err)
	case errors.Is(err, unix.ENODEV):
		return fmt.Errorf("move pages of pid %d to node %d: node %d does not exist or has no memory: %w", m.pid, m.to, m.to, err)
	case errors.Is(err, unix.EACCES):
		return fmt.Errorf("move pages of pid %d to node %d: node %d is not in the process's allowed memory nodes (cpuset): %w", m.pid, m.to, m.to, err)
	}
	return fmt.Errorf("move pages of pid %d to node %d: %w", m.pid, m.to, err)
}

func (m *mover) statusBuf(n int) []int32 {
	if cap(m.status) < n {
		m.status = make([]int32, n)
	}
	return m.status[:n]
}

func (m *mover) nodeBuf(n int) []int32 {
	if cap(m.nodes) < n {
		m.nodes = make([]int32, n)
	}
	nodes := m.nodes[:n]
	for i := range nodes {
		nodes[i] = int32(m.to)
	}
	return nodes
}

// movePages is move_pages(2). nodes nil queries where the pages are. It
// returns the kernel's count of pages not migrated (move_pages returns it
// when migration gave up on some pages; their status is then not written).
func movePages(pid int, pages []uintptr, nodes, status []int32, flags int) (int, error) {
	if len(pages) == 0 {
		return 0, nil
	}
	var np unsafe.Pointer
	if nodes != nil {
		np = unsafe.Pointer(&nodes[0])
	}
	r, _, e := unix.Syscall6(unix.SYS_MOVE_PAGES, uintptr(pid), uintptr(len(pages)),
		uintptr(unsafe.Pointer(&pages[0])), uintptr(np), uintptr(unsafe.Pointer(&status[0])), uintptr(flags))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

// processGone reports whether pid has exited (gone or a zombie).
func processGone(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] == 'Z' || b[i+2] == 'X'
}

// hasCapSysNice reports whether this process has CAP_SYS_NICE in effect.
func hasCapSysNice() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[0].Effective&(1<<unix.CAP_SYS_NICE) != 0
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// vma is one mapping of /proc/PID/maps worth moving.
type vma struct{ start, end uint64 }

// parseMaps reads /proc/PID/maps and keeps the accessible mappings, skipping
// the kernel's special ones ([vsyscall], [vdso], [vvar]) and ones with no
// access rights (reservations such as guard pages).
func parseMaps(data []byte) ([]vma, error) {
	var out []vma
	for n, line := range strings.Split(string(data), "\n") {
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 5 {
			return nil, fmt.Errorf("line %d %q: want at least 5 fields", n+1, line)
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("line %d %q: bad address range", n+1, line)
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end < start {
			return nil, fmt.Errorf("line %d %q: bad address range", n+1, line)
		}
		if len(f) >= 6 {
			switch f[5] {
			case "[vsyscall]", "[vdso]", "[vvar]", "[vvar_vclock]":
				continue
			}
		}
		if strings.HasPrefix(f[1], "---") {
			continue
		}
		out = append(out, vma{start, end})
	}
	return out, nil
}

// MigrateProcess moves every page of process pid that is on one of fromNodes
// to the node at the same position in toNodes (the kernel maps the sets), with
// migrate_pages(2). It returns how many pages could not be moved.
//
// Errors wrap unix.ESRCH when the pid does not exist, unix.EPERM when the
// caller may not move its pages, unix.EINVAL for node sets the kernel refuses
// (a node that does not exist or has no memory).
func MigrateProcess(pid int, fromNodes, toNodes []int) (int, error) {
	if len(fromNodes) == 0 || len(toNodes) == 0 {
		return 0, fmt.Errorf("migrate pages of pid %d from %v to %v: empty node set: %w", pid, fromNodes, toNodes, unix.EINVAL)
	}
	from, err := nodeMask(fromNodes)
	if err != nil {
		return 0, fmt.Errorf("migrate pages of pid %d: from nodes %v: %w", pid, fromNodes, err)
	}
	to, err := nodeMask(toNodes)
	if err != nil {
		return 0, fmt.Errorf("migrate pages of pid %d: to nodes %v: %w", pid, toNodes, err)
	}
	words := max(len(from), len(to))
	from = append(from, make([]uint64, words-len(from))...)
	to = append(to, make([]uint64, words-len(to))...)
	r, _, e := unix.Syscall6(unix.SYS_MIGRATE_PAGES, uintptr(pid), uintptr(words*64+1),
		uintptr(unsafe.Pointer(&from[0])), uintptr(unsafe.Pointer(&to[0])), 0, 0)
	if e != 0 {
		if e == unix.ESRCH {
			return 0, fmt.Errorf("migrate pages of pid %d from nodes %v to %v: pid exited: %w", pid, fromNodes, toNodes, e)
		}
		return 0, fmt.Errorf("migrate pages of pid %d from nodes %v to %v: %w", pid, fromNodes, toNodes, e)
	}
	return int(r), nil
}

// nodeMask builds the unsigned-long bitmap the mempolicy syscalls take.
func nodeMask(nodes []int) ([]uint64, error) {
	hi := 0
	for _, n := range nodes {
		if n < 0 || n >= 4096 {
			return nil, fmt.Errorf("node %d out of range: %w", n, unix.EINVAL)
		}
		hi = max(hi, n)
	}
	mask := make([]uint64, hi/64+1)
	for _, n := range nodes {
		mask[n/64] |= 1 << (n % 64)
	}
	return mask, nil
}

// PageNodes counts the pages of process pid on each NUMA node from
// roots.Proc/PID/numa_maps, in base pages (huge-page mappings are scaled by
// their kernelpagesize_kB). Errors: the file's read error (wrapping
// os.ErrNotExist once the process is gone), or a parse error naming the line.
func PageNodes(pid int, roots host.Roots) (map[int]int, error) {
	path := roots.ProcPath(strconv.Itoa(pid), "numa_maps")
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	counts, err := parseNumaMaps(data)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", path, err)
	}
	return counts, nil
}

// parseNumaMaps sums the N<node>=<pages> fields of a numa_maps file.
func parseNumaMaps(data []byte) (map[int]int, error) {
	basekB := os.Getpagesize() / 1024
	counts := map[int]int{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 {
			return nil, fmt.Errorf("line %d %q: want an address and a policy", n, line)
		}
		if _, err := strconv.ParseUint(f[0], 16, 64); err != nil {
			return nil, fmt.Errorf("line %d %q: bad address %q", n, line, f[0])
		}
		scale := 1
		per := map[int]int{}
		for _, tok := range f[2:] {
			if v, ok := strings.CutPrefix(tok, "kernelpagesize_kB="); ok {
				kb, err := strconv.Atoi(v)
				if err != nil || kb <= 0 {
					return nil, fmt.Errorf("line %d %q: bad %q", n, line, tok)
				}
				if kb > basekB {
					scale = kb / basekB
				}
				continue
			}
			if len(tok) < 2 || tok[0] != 'N' || tok[1] < '0' || tok[1] > '9' {
				continue
			}
			k, v, ok := strings.Cut(tok[1:], "=")
			node, err1 := strconv.Atoi(k)
			pages, err2 := strconv.Atoi(v)
			if !ok || err1 != nil || err2 != nil || node < 0 || pages < 0 {
				return nil, fmt.Errorf("line %d %q: bad node count %q", n, line, tok)
			}
			per[node] += pages
		}
		for node, pages := range per {
			counts[node] += pages * scale
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return counts, nil
}

// NodeCount is the number of NUMA nodes under roots.Sys/devices/system/node
// (node0, node1, ...). A kernel without NUMA has no such directory: the
// machine is one node, and NodeCount says 1.
func NodeCount(roots host.Roots) int {
	ents, err := os.ReadDir(roots.SysPath("devices", "system", "node"))
	if err != nil {
		return 1
	}
	n := 0
	for _, e := range ents {
		if rest, ok := strings.CutPrefix(e.Name(), "node"); ok {
			if _, err := strconv.Atoi(rest); err == nil {
				n++
			}
		}
	}
	return max(n, 1)
}
