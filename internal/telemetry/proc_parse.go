package telemetry

import (
	"bytes"
	"fmt"
	"math"
)

// This file holds the parsers of the per-process procfs files the
// ProcCollector reads. They work on the bytes of one file, allocate nothing
// on success, and return an error naming the field (the caller adds the
// path) when a value is missing or not a number.

// fieldError says which field of a procfs file could not be parsed.
type fieldError struct {
	Field string
	Value []byte // the offending bytes; nil when the field is missing
}

func (e *fieldError) Error() string {
	if e.Value == nil {
		return fmt.Sprintf("field %s missing (file truncated?)", e.Field)
	}
	v := e.Value
	if len(v) > 32 {
		v = v[:32]
	}
	return fmt.Sprintf("field %s: %q is not a number", e.Field, v)
}

func missing(field string) error { return &fieldError{Field: field} }

func badValue(field string, v []byte) error {
	return &fieldError{Field: field, Value: append([]byte{}, v...)}
}

// parseUint parses a decimal unsigned integer that fills all of b.
func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 20 {
		return 0, false
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		d := uint64(c - '0')
		if v > (math.MaxUint64-d)/10 {
			return 0, false
		}
		v = v*10 + d
	}
	return v, true
}

// trimSpace trims spaces and tabs on both sides.
func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}

// nextLine splits b at its first newline.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// cutPrefix returns the bytes after prefix when line starts with it.
func cutPrefix(line []byte, prefix string) ([]byte, bool) {
	if len(line) < len(prefix) || string(line[:len(prefix)]) != prefix {
		return nil, false
	}
	return line[len(prefix):], true
}

// parseKB parses "  1756 kB" into bytes.
func parseKB(field string, v []byte) (uint64, error) {
	v = trimSpace(v)
	if n := len(v); n >= 2 && v[n-2] == 'k' && v[n-1] == 'B' {
		v = trimSpace(v[:n-2])
	}
	n, ok := parseUint(v)
	if !ok {
		return 0, badValue(field, v)
	}
	return n * 1024, nil
}

// procStat holds the fields of /proc/PID/stat the collector uses, in the
// kernel's units (clock ticks, counts).
type procStat struct {
	PPID           uint64
	MinFlt, MajFlt uint64
	UTime, STime   uint64
	// Of the children this process waited for (reaped), over their whole
	// lives (their own reaped children included): cminflt, cmajflt,
	// cutime, cstime.
	CMinFlt, CMajFlt uint64
	CUTime, CSTime   uint64
	NumThreads       uint64
	StartTime        uint64
}

// statFields names the fields of /proc/PID/stat (1-based, see proc(5))
// parseStat reads; the last one ends the scan.
var statFields = [...]struct {
	n    int
	name string
}{
	{4, "ppid"}, {10, "minflt"}, {11, "cminflt"}, {12, "majflt"}, {13, "cmajflt"},
	{14, "utime"}, {15, "stime"}, {16, "cutime"}, {17, "cstime"}, {20, "num_threads"}, {22, "starttime"},
}

// parseStat parses /proc/PID/stat. The command name (field 2) may hold
// spaces and parentheses, so the fields after it are counted from the last
// ')' in the file.
func parseStat(b []byte) (procStat, error) {
	var st procStat
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, missing("comm")
	}
	rest := b[i+1:]
	field := 2
	want := 0
	for want < len(statFields) {
		// skip separators, then take one field
		for len(rest) > 0 && rest[0] == ' ' {
			rest = rest[1:]
		}
		if len(rest) == 0 || rest[0] == '\n' {
			return st, missing(statFields[want].name)
		}
		j := bytes.IndexByte(rest, ' ')
		if j < 0 {
			j = len(rest)
		}
		tok := rest[:j]
		rest = rest[j:]
		field++
		if field != statFields[want].n {
			continue
		}
		if len(rest) == 0 || rest[0] == '\n' {
			tok = bytes.TrimRight(tok, "\n")
		}
		v, ok := parseUint(tok)
		if !ok {
			return st, badValue(statFields[want].name, tok)
		}
		switch statFields[want].n {
		case 4:
			st.PPID = v
		case 10:
			st.MinFlt = v
		case 11:
			st.CMinFlt = v
		case 12:
			st.MajFlt = v
		case 13:
			st.CMajFlt = v
		case 14:
			st.UTime = v
		case 15:
			st.STime = v
		case 16:
			st.CUTime = v
		case 17:
			st.CSTime = v
		case 20:
			st.NumThreads = v
		case 22:
			st.StartTime = v
		}
		want++
	}
	return st, nil
}

// procStatus holds the fields of /proc/PID/status (or
// /proc/PID/task/TID/status) the collector uses.
type procStatus struct {
	RSSBytes    uint64
	HasRSS      bool // kernel threads have no VmRSS
	VolCtx      uint64
	InvolCtx    uint64
	HasCtx      bool
	CPUsAllowed []byte // Cpus_allowed_list, a slice of the input
}

// parseStatus parses /proc/PID/status: VmRSS, Cpus_allowed_list and the
// voluntary/nonvoluntary_ctxt_switches of the task read.
func parseStatus(b []byte) (procStatus, error) {
	var st procStatus
	var hasVol, hasInvol bool
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			continue
		}
		switch line[0] {
		case 'V':
			if v, ok := cutPrefix(line, "VmRSS:"); ok {
				n, err := parseKB("VmRSS", v)
				if err != nil {
					return st, err
				}
				st.RSSBytes, st.HasRSS = n, true
			}
		case 'C':
			if v, ok := cutPrefix(line, "Cpus_allowed_list:"); ok {
				st.CPUsAllowed = trimSpace(v)
			}
		case 'v':
			if v, ok := cutPrefix(line, "voluntary_ctxt_switches:"); ok {
				v = trimSpace(v)
				n, ok := parseUint(v)
				if !ok {
					return st, badValue("voluntary_ctxt_switches", v)
				}
				st.VolCtx, hasVol = n, true
			}
		case 'n':
			if v, ok := cutPrefix(line, "nonvoluntary_ctxt_switches:"); ok {
				v = trimSpace(v)
				n, ok := parseUint(v)
				if !ok {
					return st, badValue("nonvoluntary_ctxt_switches", v)
				}
				st.InvolCtx, hasInvol = n, true
			}
		}
	}
	st.HasCtx = hasVol && hasInvol
	return st, nil
}

// procSchedstat holds /proc/PID/schedstat: nanoseconds on the CPU,
// nanoseconds waiting on a run queue, and timeslices run.
type procSchedstat struct {
	RunNS, DelayNS, Slices uint64
}

var schedstatFields = [3]string{"run_time", "run_delay", "timeslices"}

// parseSchedstat parses /proc/PID/schedstat ("run delay slices\n").
func parseSchedstat(b []byte) (procSchedstat, error) {
	var v [3]uint64
	for i := range v {
		for len(b) > 0 && b[0] == ' ' {
			b = b[1:]
		}
		j := bytes.IndexAny(b, " \n")
		if j < 0 {
			j = len(b)
		}
		if j == 0 {
			return procSchedstat{}, missing(schedstatFields[i])
		}
		n, ok := parseUint(b[:j])
		if !ok {
			return procSchedstat{}, badValue(schedstatFields[i], b[:j])
		}
		v[i] = n
		b = b[j:]
	}
	return procSchedstat{RunNS: v[0], DelayNS: v[1], Slices: v[2]}, nil
}

var nrMigrations = []byte("\nse.nr_migrations")

// parseSchedMigrations parses se.nr_migrations out of /proc/PID/sched.
func parseSchedMigrations(b []byte) (uint64, error) {
	i := bytes.Index(b, nrMigrations)
	if i < 0 {
		return 0, missing("se.nr_migrations")
	}
	line, _ := nextLine(b[i+len(nrMigrations):])
	c := bytes.IndexByte(line, ':')
	if c < 0 {
		return 0, missing("se.nr_migrations")
	}
	v := trimSpace(line[c+1:])
	n, ok := parseUint(v)
	if !ok {
		return 0, badValue("se.nr_migrations", v)
	}
	return n, nil
}

// procIO holds /proc/PID/io.
type procIO struct {
	RChar, WChar, SyscR, SyscW, ReadBytes, WriteBytes uint64
}

// parseIO parses /proc/PID/io; every one of its six counters must be there.
func parseIO(b []byte) (procIO, error) {
	var io procIO
	var seen uint8
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		c := bytes.IndexByte(line, ':')
		if c < 0 {
			continue
		}
		var dst *uint64
		var bit uint8
		switch string(line[:c]) {
		case "rchar":
			dst, bit = &io.RChar, 1
		case "wchar":
			dst, bit = &io.WChar, 2
		case "syscr":
			dst, bit = &io.SyscR, 4
		case "syscw":
			dst, bit = &io.SyscW, 8
		case "read_bytes":
			dst, bit = &io.ReadBytes, 16
		case "write_bytes":
			dst, bit = &io.WriteBytes, 32
		default:
			continue
		}
		v := trimSpace(line[c+1:])
		n, ok := parseUint(v)
		if !ok {
			return io, badValue(string(line[:c]), v)
		}
		*dst = n
		seen |= bit
	}
	if seen != 63 {
		for i, name := range [...]string{"rchar", "wchar", "syscr", "syscw", "read_bytes", "write_bytes"} {
			if seen&(1<<i) == 0 {
				return io, missing(name)
			}
		}
	}
	return io, nil
}

// procSmaps holds the fields of /proc/PID/smaps_rollup the collector uses.
type procSmaps struct {
	PSSBytes, AnonBytes, SwapBytes uint64
}

// parseSmapsRollup parses /proc/PID/smaps_rollup: Pss, Anonymous and Swap.
func parseSmapsRollup(b []byte) (procSmaps, error) {
	var sm procSmaps
	var seen uint8
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		if len(line) == 0 {
			continue
		}
		var dst *uint64
		var name string
		var bit uint8
		var v []byte
		var ok bool
		switch line[0] {
		case 'P':
			v, ok = cutPrefix(line, "Pss:")
			dst, name, bit = &sm.PSSBytes, "Pss", 1
		case 'A':
			v, ok = cutPrefix(line, "Anonymous:")
			dst, name, bit = &sm.AnonBytes, "Anonymous", 2
		case 'S':
			v, ok = cutPrefix(line, "Swap:")
			dst, name, bit = &sm.SwapBytes, "Swap", 4
		}
		if !ok {
			continue
		}
		n, err := parseKB(name, v)
		if err != nil {
			return sm, err
		}
		*dst = n
		seen |= bit
	}
	switch {
	case seen&1 == 0:
		return sm, missing("Pss")
	case seen&2 == 0:
		return sm, missing("Anonymous")
	case seen&4 == 0:
		return sm, missing("Swap")
	}
	return sm, nil
}

// cpuSet is a set of CPU (or node) numbers.
type cpuSet []uint64

// maxCPUs bounds the CPU numbers parseCPUList accepts (the kernel's NR_CPUS
// is at most 8192).
const maxCPUs = 1 << 13

func (s cpuSet) has(i int) bool {
	w := i / 64
	return w < len(s) && s[w]&(1<<(i%64)) != 0
}

func (s cpuSet) intersects(o cpuSet) bool {
	for i := 0; i < len(s) && i < len(o); i++ {
		if s[i]&o[i] != 0 {
			return true
		}
	}
	return false
}

// parseCPUList parses a kernel cpu list ("0-3,8,10-11") into dst, which it
// reuses; an empty list is an empty set.
func parseCPUList(dst cpuSet, b []byte) (cpuSet, error) {
	dst = dst[:0]
	b = trimSpace(b)
	for len(b) > 0 {
		j := bytes.IndexByte(b, ',')
		if j < 0 {
			j = len(b)
		}
		part := b[:j]
		if j < len(b) {
			b = b[j+1:]
		} else {
			b = nil
		}
		lo, hi := part, part
		if d := bytes.IndexByte(part, '-'); d >= 0 {
			lo, hi = part[:d], part[d+1:]
		}
		l, ok1 := parseUint(lo)
		h, ok2 := parseUint(hi)
		if !ok1 || !ok2 || l > h || h >= maxCPUs {
			return dst, badValue("cpu list", part)
		}
		for len(dst) <= int(h)/64 {
			dst = append(dst, 0)
		}
		for c := l; c <= h; c++ {
			dst[c/64] |= 1 << (c % 64)
		}
	}
	return dst, nil
}

// numaCounts is what parseNUMAMaps adds up.
type numaCounts struct {
	Total, Local float64 // in base pages
}

// parseNUMAMaps sums the N<node>=<pages> counts over all mappings of
// /proc/PID/numa_maps, scaled to base pages of pageSize bytes by each
// mapping's kernelpagesize_kB; pages on a node in local count as Local.
func parseNUMAMaps(b []byte, local cpuSet, pageSize uint64) (numaCounts, error) {
	var c numaCounts
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		var total, loc uint64
		scale := uint64(1)
		for len(line) > 0 {
			j := bytes.IndexByte(line, ' ')
			if j < 0 {
				j = len(line)
			}
			tok := line[:j]
			if j < len(line) {
				line = line[j+1:]
			} else {
				line = nil
			}
			if len(tok) < 4 {
				continue
			}
			switch {
			case tok[0] == 'N' && tok[1] >= '0' && tok[1] <= '9':
				eq := bytes.IndexByte(tok, '=')
				if eq < 0 {
					continue
				}
				node, ok1 := parseUint(tok[1:eq])
				pages, ok2 := parseUint(tok[eq+1:])
				if !ok1 || !ok2 {
					return c, badValue("N<node>=<pages>", tok)
				}
				total += pages
				if node < maxCPUs && local.has(int(node)) {
					loc += pages
				}
			case tok[0] == 'k':
				if v, ok := cutPrefix(tok, "kernelpagesize_kB="); ok {
					kb, ok := parseUint(v)
					if !ok || kb == 0 {
						return c, badValue("kernelpagesize_kB", v)
					}
					if s := kb * 1024 / pageSize; s > 1 {
						scale = s
					}
				}
			}
		}
		c.Total += float64(total * scale)
		c.Local += float64(loc * scale)
	}
	return c, nil
}
