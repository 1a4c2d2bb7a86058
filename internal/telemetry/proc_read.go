package telemetry

import (
	"errors"
	"strconv"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// procReader reads small procfs files with plain openat/read/close system
// calls into buffers it reuses, so a sweep over a thousand processes makes no
// garbage: os.Open would add an epoll registration attempt, a *File and a
// finalizer per file.
type procReader struct {
	buf   []byte // the contents of the file read last
	path  []byte // NUL-terminated scratch path
	dents []byte // getdents64 buffer
}

func newProcReader() *procReader {
	return &procReader{buf: make([]byte, 4096), path: make([]byte, 0, 256), dents: make([]byte, 8192)}
}

// cpath makes r.path hold prefix + middle + suffix + NUL and returns it.
func (r *procReader) cpath(prefix string, middle int, suffix string) []byte {
	p := append(r.path[:0], prefix...)
	if middle >= 0 {
		p = strconv.AppendInt(p, int64(middle), 10)
	}
	p = append(p, suffix...)
	p = append(p, 0)
	r.path = p
	return p
}

// openat opens the NUL-terminated path relative to dirfd.
func openat(dirfd int, path []byte, flags int) (int, error) {
	for {
		fd, _, e := syscall.Syscall6(syscall.SYS_OPENAT, uintptr(dirfd), uintptr(unsafe.Pointer(&path[0])),
			uintptr(flags|unix.O_CLOEXEC), 0, 0, 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return -1, e
		}
		return int(fd), nil
	}
}

// closeFD closes fd; procfs and sysfs files have nothing to flush, so the
// error of close is of no use to a reader.
func closeFD(fd int) { _ = syscall.Close(fd) }

// read reads the file at the NUL-terminated path (relative to dirfd) into
// r.buf and returns its contents, valid until the next read. When oneRecord
// is set the file is a single-record seq_file (stat, status, io, ...), whose
// first read returns all of it when the buffer is large enough: a short read
// then ends the file without a second read(2).
func (r *procReader) read(dirfd int, path []byte, oneRecord bool) ([]byte, error) {
	fd, err := openat(dirfd, path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := syscall.Read(fd, r.buf[n:])
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			closeFD(fd)
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
		if oneRecord && n < len(r.buf) {
			break
		}
	}
	closeFD(fd)
	return r.buf[:n], nil
}

// pread reads the whole file open as fd from offset 0 into r.buf and returns
// its contents, valid until the next read. A procfs seq_file read at offset
// 0 regenerates its text, so a descriptor held between sweeps gives fresh
// values each time without the path lookup and open; a descriptor of a
// process that has exited fails with ESRCH. oneRecord is as for read.
func (r *procReader) pread(fd int, oneRecord bool) ([]byte, error) {
	n := 0
	for {
		if n == len(r.buf) {
			r.buf = append(r.buf, make([]byte, len(r.buf))...)
		}
		m, err := unix.Pread(fd, r.buf[n:], int64(n))
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
		if oneRecord && n < len(r.buf) {
			break
		}
	}
	return r.buf[:n], nil
}

// procHeldLimit is how many descriptors a ProcCollector keeps open between
// sweeps: half of what RLIMIT_NOFILE's soft limit leaves above 1024 (the
// workload discoverer takes at most a quarter, the rest of the program the
// remainder), and at most 32768. The Go runtime raises the soft limit to the
// hard one at start, so this is normally half the hard limit.
func procHeldLimit() int {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil || lim.Cur <= 1024 {
		return 0
	}
	return int(min((lim.Cur-1024)/2, 32768))
}

// readTIDs lists the numeric entries of the directory at path (relative to
// dirfd), appending them to tids.
func (r *procReader) readTIDs(dirfd int, path []byte, tids []int) ([]int, error) {
	fd, err := openat(dirfd, path, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return tids, err
	}
	defer closeFD(fd)
	for {
		n, err := syscall.ReadDirent(fd, r.dents)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return tids, err
		}
		if n <= 0 {
			return tids, nil
		}
		b := r.dents[:n]
		// struct linux_dirent64 { u64 ino; s64 off; u16 reclen; u8 type; char name[]; }
		for len(b) >= 19 {
			reclen := int(b[16]) | int(b[17])<<8
			if reclen < 19 || reclen > len(b) {
				break
			}
			name := b[19:reclen]
			for i, c := range name {
				if c == 0 {
					name = name[:i]
					break
				}
			}
			if tid, ok := parseUint(name); ok {
				tids = append(tids, int(tid))
			}
			b = b[reclen:]
		}
	}
}

// isGone reports whether err from a /proc/PID file means the process (or
// thread) has exited.
func isGone(err error) bool {
	return errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ESRCH) || errors.Is(err, ErrProcessGone)
}

// isDenied reports whether err means we may not read the file (io,
// smaps_rollup and numa_maps of other users' processes without
// CAP_SYS_PTRACE).
func isDenied(err error) bool {
	return errors.Is(err, syscall.EACCES) || errors.Is(err, syscall.EPERM)
}
