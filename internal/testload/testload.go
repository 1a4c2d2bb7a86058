// Package testload holds small workloads of clearly different kinds for root
// tests and benchmarks: a test binary re-executes itself with
// SCULPT_TESTLOAD=<mode> and calls MaybeRun from TestMain.
//
//	func TestMain(m *testing.M) { testload.MaybeRun(); os.Exit(m.Run()) }
//
// Modes:
//
//	cpu        spin on arithmetic (user CPU, few voluntary switches)
//	mem        stream over fresh anonymous memory (faults, growing RSS up to ~512 MiB)
//	pipe       ping-pong one byte over fd 3 (read) and fd 4 (write); the
//	           first to write is the one with SCULPT_TESTLOAD_FIRST=1
//	disk       write and fsync 256 KiB blocks to a file in SCULPT_TESTLOAD_DIR
//	sockserver accept TCP on SCULPT_TESTLOAD_ADDR and echo
//	sockclient connect to SCULPT_TESTLOAD_ADDR and exchange small messages
//	reqserver  accept on SCULPT_TESTLOAD_ADDR (network SCULPT_TESTLOAD_NET:
//	           tcp, the default, or unix) and answer every 64-byte request
//	           with a 64-byte reply after spinning SCULPT_TESTLOAD_SERVICE
//	           (a duration; default 1ms) on the CPU
//	sleep      sleep (an idle daemon)
//	threads    start SCULPT_TESTLOAD_THREADS goroutine-locked OS threads that sleep
//	forker     print "ready" on stdout, then on every SIGUSR1 start a child
//	           (this binary in mode sleep) and print "child <pid>"; the
//	           child is killed when the forker dies unless
//	           SCULPT_TESTLOAD_ORPHAN=1 (then it lives on, reparented)
//
// Every mode runs until killed.
package testload

import (
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"syscall"
	"time"
)

// Env is the variable that selects a mode.
const Env = "SCULPT_TESTLOAD"

// MaybeRun runs the mode named by $SCULPT_TESTLOAD and never returns; without
// it, MaybeRun returns at once.
func MaybeRun() {
	mode := os.Getenv(Env)
	if mode == "" {
		return
	}
	if err := Run(mode); err != nil {
		fmt.Fprintf(os.Stderr, "testload %s: %v\n", mode, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Run runs one mode until the process is killed.
func Run(mode string) error {
	switch mode {
	case "cpu":
		x := 1.0
		for {
			for i := 0; i < 1e6; i++ {
				x = x*1.0000001 + 1e-9
			}
			if x < 0 {
				fmt.Println(x)
			}
		}
	case "mem":
		return memStream()
	case "pipe":
		return pipePingPong()
	case "disk":
		return diskWriter()
	case "sockserver":
		return sockServer(os.Getenv("SCULPT_TESTLOAD_ADDR"))
	case "sockclient":
		return sockClient(os.Getenv("SCULPT_TESTLOAD_ADDR"))
	case "reqserver":
		return reqServer(os.Getenv("SCULPT_TESTLOAD_NET"), os.Getenv("SCULPT_TESTLOAD_ADDR"), os.Getenv("SCULPT_TESTLOAD_SERVICE"))
	case "sleep":
		for {
			time.Sleep(time.Hour)
		}
	case "forker":
		return forker()
	case "threads":
		n, err := strconv.Atoi(os.Getenv("SCULPT_TESTLOAD_THREADS"))
		if err != nil || n < 1 {
			return fmt.Errorf("SCULPT_TESTLOAD_THREADS=%q: want a positive number", os.Getenv("SCULPT_TESTLOAD_THREADS"))
		}
		for i := 0; i < n; i++ {
			go func() {
				runtime.LockOSThread()
				for {
					time.Sleep(time.Hour)
				}
			}()
		}
		for {
			time.Sleep(time.Hour)
		}
	}
	return fmt.Errorf("unknown mode %q", mode)
}

// memStream maps fresh anonymous memory, touches every page, and frees it
// again, so that it keeps faulting and holds a large RSS.
func memStream() error {
	const chunk = 64 << 20
	var held [][]byte
	for {
		b, err := syscall.Mmap(-1, 0, chunk, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
		if err != nil {
			return fmt.Errorf("mmap %d bytes: %w", chunk, err)
		}
		for i := 0; i < len(b); i += 4096 {
			b[i] = byte(i)
		}
		held = append(held, b)
		if len(held) > 8 { // keep ~512 MiB resident, keep faulting
			if err := syscall.Munmap(held[0]); err != nil {
				return fmt.Errorf("munmap: %w", err)
			}
			held = held[1:]
		}
	}
}

func pipePingPong() error {
	r := os.NewFile(3, "pipe-read")
	w := os.NewFile(4, "pipe-write")
	if r == nil || w == nil {
		return fmt.Errorf("pipe mode needs fds 3 (read) and 4 (write)")
	}
	buf := make([]byte, 1)
	if os.Getenv("SCULPT_TESTLOAD_FIRST") == "1" {
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write pipe: %w", err)
		}
	}
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			return fmt.Errorf("read pipe: %w", err)
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write pipe: %w", err)
		}
	}
}

func diskWriter() error {
	dir := os.Getenv("SCULPT_TESTLOAD_DIR")
	if dir == "" {
		dir = os.TempDir()
	}
	path := filepath.Join(dir, fmt.Sprintf("sculpt-testload-%d", os.Getpid()))
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { _ = os.Remove(path) }() // on the way out with a write error already
	block := make([]byte, 256<<10)
	for i := range block {
		block[i] = byte(i * 7)
	}
	var off int64
	for {
		if _, err := f.WriteAt(block, off); err != nil {
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", path, err)
		}
		off += int64(len(block))
		if off >= 64<<20 {
			off = 0
		}
	}
}

func sockServer(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", addr, err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return fmt.Errorf("accept on %s: %w", addr, err)
		}
		go func() {
			defer func() { _ = c.Close() }()
			_, _ = io.Copy(c, c)
		}()
	}
}

func sockClient(addr string) error {
	var c net.Conn
	var err error
	for i := 0; i < 100; i++ { // the server may still be starting
		if c, err = net.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return fmt.Errorf("dial %s: %w", addr, err)
	}
	msg := make([]byte, 512)
	for {
		if _, err := c.Write(msg); err != nil {
			return fmt.Errorf("write to %s: %w", addr, err)
		}
		if _, err := io.ReadFull(c, msg); err != nil {
			return fmt.Errorf("read from %s: %w", addr, err)
		}
	}
}

// ReqSize is the size of reqserver's requests and replies.
const ReqSize = 64

func reqServer(network, addr, service string) error {
	if network == "" {
		network = "tcp"
	}
	svc := time.Millisecond
	if service != "" {
		d, err := time.ParseDuration(service)
		if err != nil {
			return fmt.Errorf("SCULPT_TESTLOAD_SERVICE %q: %w", service, err)
		}
		svc = d
	}
	l, err := net.Listen(network, addr)
	if err != nil {
		return fmt.Errorf("listen %s %s: %w", network, addr, err)
	}
	for {
		c, err := l.Accept()
		if err != nil {
			return fmt.Errorf("accept on %s: %w", addr, err)
		}
		go func() {
			defer func() { _ = c.Close() }()
			buf := make([]byte, ReqSize)
			for {
				if _, err := io.ReadFull(c, buf); err != nil {
					return
				}
				x := 1.0
				for start := time.Now(); time.Since(start) < svc; {
					for i := 0; i < 1000; i++ {
						x = x*1.0000001 + 1e-9
					}
				}
				buf[0] = byte(x)
				if _, err := c.Write(buf); err != nil {
					return
				}
			}
		}()
	}
}

// forker starts a sleeping child per SIGUSR1, so that a test can change the
// forker and then make it fork: the child inherits what the forker's
// threads hold at that moment (affinity, scheduling policy, nice).
func forker() error {
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary: %w", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGUSR1)
	fmt.Println("ready")
	for range sig {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), Env+"=sleep")
		cmd.Stderr = os.Stderr
		if os.Getenv("SCULPT_TESTLOAD_ORPHAN") != "1" {
			cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		}
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start child: %w", err)
		}
		fmt.Printf("child %d\n", cmd.Process.Pid)
	}
	return nil
}
