package workload

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// pfKthread is PF_KTHREAD in the flags field of /proc/PID/stat.
const pfKthread = 0x00200000

// procStat is what discovery needs from /proc/PID/stat.
type procStat struct {
	pid   int
	comm  []byte // aliases the read buffer
	state byte
	ppid  int
	sid   int    // field 6, the session ID
	tty   uint64 // field 7, the controlling terminal (0: none)
	flags uint64
	start uint64 // field 22, clock ticks since boot
}

// errGone marks a process that exited while it was being read.
var errGone = errors.New("process gone")

// parseStat parses the contents of /proc/PID/stat (proc(5)): "pid (comm)
// state ppid pgrp session tty_nr tpgid flags ... starttime ...". The comm may
// itself hold spaces and parentheses, so it runs to the last ')'.
func parseStat(b []byte) (procStat, error) {
	var s procStat
	open := bytes.IndexByte(b, '(')
	closing := bytes.LastIndexByte(b, ')')
	if open < 1 || closing < open {
		return s, fmt.Errorf("no (comm) in %q", truncate(b))
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:open])))
	if err != nil {
		return s, fmt.Errorf("pid field %q: %w", b[:open], err)
	}
	s.pid = pid
	s.comm = b[open+1 : closing]
	rest := b[closing+1:]
	// Fields after comm, numbered from 3 (state) as in proc(5).
	field := 3
	for len(rest) > 0 && field <= 22 {
		rest = bytes.TrimLeft(rest, " ")
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		tok := bytes.TrimRight(rest[:end], "\n")
		rest = rest[end:]
		switch field {
		case 3:
			if len(tok) != 1 {
				return s, fmt.Errorf("state field %q", tok)
			}
			s.state = tok[0]
		case 4:
			v, err := atou(tok)
			if err != nil {
				return s, fmt.Errorf("ppid field: %w", err)
			}
			s.ppid = int(v)
		case 6, 7:
			// Both are printed signed: a process that is exiting shows
			// session -1, and a negative value names no session or
			// terminal.
			if len(tok) > 0 && tok[0] != '-' {
				v, err := atou(tok)
				if err != nil {
					return s, fmt.Errorf("field %d: %w", field, err)
				}
				if field == 6 {
					s.sid = int(v)
				} else {
					s.tty = v
				}
			}
		case 9:
			v, err := atou(tok)
			if err != nil {
				return s, fmt.Errorf("flags field: %w", err)
			}
			s.flags = v
		case 22:
			v, err := atou(tok)
			if err != nil {
				return s, fmt.Errorf("starttime field: %w", err)
			}
			s.start = v
		}
		field++
	}
	if field <= 22 {
		return s, fmt.Errorf("only %d fields, want at least 22", field-1)
	}
	return s, nil
}

// atou parses a decimal unsigned integer without allocating.
func atou(b []byte) (uint64, error) {
	if len(b) == 0 {
		return 0, errors.New("empty number")
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a number: %q", b)
		}
		if v > (1<<64-1-9)/10 {
			return 0, fmt.Errorf("number out of range: %q", b)
		}
		v = v*10 + uint64(c-'0')
	}
	return v, nil
}

func truncate(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}

// cgEntry is one hierarchy's path in /proc/PID/cgroup. Key is "" for the
// unified (v2) hierarchy, a controller name ("cpu", "memory") or a named
// hierarchy ("name=systemd") for v1.
type cgEntry struct {
	key  string
	path string
}

// keySystemd is the key of systemd's named v1 hierarchy.
const keySystemd = "name=systemd"

// parseCgroupFile parses the contents of /proc/PID/cgroup (cgroups(7)): one
// "hierarchy-ID:controller-list:path" line per hierarchy. A v1 line naming
// joined controllers ("cpu,cpuacct") gives each controller its own entry; the
// v2 line ("0::/path") has the key "".
func parseCgroupFile(b []byte) ([]cgEntry, error) {
	var out []cgEntry
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if len(line) == 0 {
			continue
		}
		c1 := bytes.IndexByte(line, ':')
		if c1 < 0 {
			return nil, fmt.Errorf("cgroup line %q: want id:controllers:path", line)
		}
		c2 := bytes.IndexByte(line[c1+1:], ':')
		if c2 < 0 {
			return nil, fmt.Errorf("cgroup line %q: want id:controllers:path", line)
		}
		c2 += c1 + 1
		ctrls, path := line[c1+1:c2], string(line[c2+1:])
		if len(path) == 0 || path[0] != '/' {
			return nil, fmt.Errorf("cgroup line %q: path is not absolute", line)
		}
		if len(ctrls) == 0 {
			out = append(out, cgEntry{"", path})
			continue
		}
		for len(ctrls) > 0 {
			c := ctrls
			if i := bytes.IndexByte(ctrls, ','); i >= 0 {
				c, ctrls = ctrls[:i], ctrls[i+1:]
			} else {
				ctrls = nil
			}
			if len(c) > 0 {
				out = append(out, cgEntry{string(c), path})
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no cgroup lines")
	}
	return out, nil
}

// The per-process files discovery reads.
const (
	fileStat = iota
	fileCgroup
	nFiles
)

var fileNames = [nFiles]string{"stat", "cgroup"}

// heldFiles are a process's /proc files kept open between sweeps.
type heldFiles struct {
	fds [nFiles]int // -1 when not open
	gen uint64      // the last sweep that saw the process
}

// procReader reads small /proc files relative to an open /proc directory,
// reusing one buffer. It keeps the files of up to max processes open between
// sweeps and rereads them with pread(2) at offset 0, which regenerates a
// seq file's contents at half the cost of open, read and close. A held file
// of a process that has exited fails with ESRCH even when its PID is reused,
// since it refers to the old process. It is not safe for concurrent use.
type procReader struct {
	dirfd int
	name  []byte
	buf   []byte
	held  map[int]*heldFiles
	max   int
	gen   uint64
}

// read reads /proc/<pid>/<file> into the reader's buffer; the result is valid
// until the next read. A process that has exited gives errGone.
func (r *procReader) read(pid, file int) ([]byte, error) {
	h := r.held[pid]
	if h != nil {
		h.gen = r.gen
		if fd := h.fds[file]; fd >= 0 {
			b, err := r.pread(fd)
			if err == nil && len(b) > 0 {
				return b, nil
			}
			// Gone, or its PID reused: open afresh by name.
			r.drop(pid, h)
			h = nil
		}
	}
	r.name = strconv.AppendInt(r.name[:0], int64(pid), 10)
	r.name = append(r.name, '/')
	r.name = append(r.name, fileNames[file]...)
	fd, err := unix.Openat(r.dirfd, string(r.name), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, goneOr(err)
	}
	b, err := r.pread(fd)
	if err != nil {
		_ = unix.Close(fd)
		return nil, goneOr(err)
	}
	if h == nil && len(r.held) < r.max {
		h = &heldFiles{fds: [nFiles]int{-1, -1}, gen: r.gen}
		if r.held == nil {
			r.held = make(map[int]*heldFiles)
		}
		r.held[pid] = h
	}
	if h != nil {
		h.fds[file] = fd
	} else {
		_ = unix.Close(fd)
	}
	return b, nil
}

// pread reads a whole file from offset 0 into the reader's buffer.
func (r *procReader) pread(fd int) ([]byte, error) {
	if r.buf == nil {
		r.buf = make([]byte, 4096)
	}
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Pread(fd, r.buf[n:], int64(n))
		if err != nil {
			if err == unix.EINTR {
				continue
			}
			return nil, err
		}
		if m == 0 {
			return r.buf[:n], nil
		}
		n += m
		if n < len(r.buf) {
			// stat and cgroup are single-record seq files: a short read
			// is the whole file, so skip the read that would return 0.
			return r.buf[:n], nil
		}
	}
}

// touch keeps the files held for pid open through this sweep without
// reading them.
func (r *procReader) touch(pid int) {
	if h := r.held[pid]; h != nil {
		h.gen = r.gen
	}
}

// sweep starts a sweep; files of processes not read since the last one are
// closed by endSweep.
func (r *procReader) sweep() { r.gen++ }

// endSweep closes the files of processes this sweep did not see.
func (r *procReader) endSweep() {
	for pid, h := range r.held {
		if h.gen != r.gen {
			r.drop(pid, h)
		}
	}
}

func (r *procReader) drop(pid int, h *heldFiles) {
	for _, fd := range h.fds {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
	delete(r.held, pid)
}

// forget closes the held files of pid (its PID now names another process).
func (r *procReader) forget(pid int) {
	if h := r.held[pid]; h != nil {
		r.drop(pid, h)
	}
}

// close closes every held file.
func (r *procReader) close() {
	for pid, h := range r.held {
		r.drop(pid, h)
	}
}

// pidEnt is one numeric entry of /proc and the inode number getdents(2)
// reports for it.
type pidEnt struct {
	pid int
	ino uint64
}

// listPIDs appends the numeric entries of the open /proc directory fd to
// ents, reading it with getdents64(2) into buf so that no name is allocated.
func listPIDs(fd int, buf []byte, ents []pidEnt) ([]pidEnt, error) {
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return ents, err
	}
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return ents, err
		}
		if n <= 0 {
			return ents, nil
		}
		for b := buf[:n]; len(b) >= 19; {
			// struct linux_dirent64: ino u64, off s64, reclen u16, type u8, name.
			reclen := int(b[16]) | int(b[17])<<8
			if reclen < 19 || reclen > len(b) {
				return ents, fmt.Errorf("getdents: bad record length %d", reclen)
			}
			name := b[19:reclen]
			if i := bytes.IndexByte(name, 0); i >= 0 {
				name = name[:i]
			}
			// Entries such as "self" or "sys" are skipped before atou,
			// whose error would allocate.
			if len(name) == 0 || name[0] < '1' || name[0] > '9' {
				b = b[reclen:]
				continue
			}
			if pid, err := atou(name); err == nil && pid > 0 && pid < 1<<31 {
				ino := binary.NativeEndian.Uint64(b[:8])
				ents = append(ents, pidEnt{pid: int(pid), ino: ino})
			}
			b = b[reclen:]
		}
	}
}

func goneOr(err error) error {
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return errGone
	}
	return err
}
