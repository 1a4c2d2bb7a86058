package telemetry

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sculpt/internal/host"
	"sculpt/internal/testload"
	"sculpt/internal/workload"
)

func TestSyscallClassTable(t *testing.T) {
	tab := syscallClasses()
	for _, c := range []struct {
		nr   int
		want uint8
	}{
		{unix.SYS_READ, sysMarkFDRead}, {unix.SYS_PWRITE64, sysMarkFDWrite},
		{unix.SYS_SENDTO, sysMarkSockIO}, {unix.SYS_RECVMSG, sysMarkSockIO},
		{unix.SYS_SOCKET, sysMarkSocket},
		{unix.SYS_OPENAT, uint8(SysFile)}, {unix.SYS_FSYNC, uint8(SysFile)},
		{unix.SYS_FUTEX, uint8(SysIPC)}, {unix.SYS_PIPE2, uint8(SysIPC)}, {unix.SYS_SOCKETPAIR, uint8(SysIPC)},
		{unix.SYS_MMAP, uint8(SysMem)}, {unix.SYS_MADVISE, uint8(SysMem)},
		{unix.SYS_SCHED_YIELD, uint8(SysSched)}, {unix.SYS_EPOLL_PWAIT, uint8(SysSched)},
		{unix.SYS_GETPPID, uint8(SysProc)}, {unix.SYS_CLONE3, uint8(SysProc)},
		{unix.SYS_UNAME, uint8(SysOther)}, {unix.SYS_BPF, uint8(SysOther)},
	} {
		if tab[c.nr] != c.want {
			t.Errorf("syscall %d: class %d, want %d", c.nr, tab[c.nr], c.want)
		}
	}
}

func TestEBPFNotSupportedWithoutBTF(t *testing.T) {
	roots := host.DefaultRoots()
	roots.Sys = t.TempDir() // no kernel/btf/vmlinux
	_, err := NewEBPFCollector(EBPFOptions{Roots: roots})
	var nse *NotSupportedError
	if !errors.As(err, &nse) || !strings.Contains(nse.Reason, "no kernel BTF") {
		t.Fatalf("err = %v, want *NotSupportedError naming the missing BTF", err)
	}
	if st := probeEBPF(roots); st.Available || !strings.Contains(st.Reason, "BTF") {
		t.Errorf("probe = %+v, want unavailable for lack of BTF", st)
	}
}

func newTestEBPF(t testing.TB, opts EBPFOptions) *EBPFCollector {
	t.Helper()
	c, err := NewEBPFCollector(opts)
	if errors.Is(err, ErrNotSupported) {
		t.Skipf("eBPF unavailable: %v", err)
	}
	if err != nil {
		t.Fatalf("NewEBPFCollector: %v", err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func ebpfSweep(t testing.TB, c *EBPFCollector, ws []workload.Workload) *Sample {
	t.Helper()
	s := NewSample(time.Now(), ws)
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatalf("collect: %v", err)
	}
	return s
}

// ebpfDelta returns m of w's first process in b minus in a.
func ebpfDelta(t testing.TB, a, b *Sample, w workload.Workload, m Metric) float64 {
	t.Helper()
	va, okA := procValue(a, w, m)
	vb, okB := procValue(b, w, m)
	if !okA || !okB {
		t.Fatalf("%s: %s absent (before %v, after %v)", w.ID, m, okA, okB)
	}
	return vb - va
}

func heaviestPeer(peers map[string]float64) string {
	best, bw := "", 0.0
	ids := make([]string, 0, len(peers))
	for id := range peers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		if peers[id] > bw {
			best, bw = id, peers[id]
		}
	}
	return best
}

// TestEBPFPeersPipeAndUnix: two pipe ping-pong processes and two processes
// ping-ponging over a unix socket pair are each other's heaviest peers, and
// the pairs are not peers of each other.
func TestEBPFPeersPipeAndUnix(t *testing.T) {
	c := newTestEBPF(t, EBPFOptions{})
	if !c.havePipe || !c.haveUnix {
		t.Skipf("pipe or unix hooks missing: %v", c.Stats().Missing)
	}
	a, b := startPipePair(t)
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	end0, end1 := os.NewFile(uintptr(fds[0]), "end0"), os.NewFile(uintptr(fds[1]), "end1")
	u1 := testload.Start(t, "pipe", []string{"SCULPT_TESTLOAD_FIRST=1"}, end0, end0)
	u2 := testload.Start(t, "pipe", nil, end1, end1)
	_ = end0.Close() // the children hold their own copies
	_ = end1.Close()
	idle := testload.Start(t, "sleep", nil)
	ws := []workload.Workload{
		loadWorkload(t, "pipe-a", a), loadWorkload(t, "pipe-b", b),
		loadWorkload(t, "unix-a", u1), loadWorkload(t, "unix-b", u2),
		loadWorkload(t, "idle", idle),
	}
	ebpfSweep(t, c, ws)
	var s *Sample
	for i := 0; i < 100; i++ { // until the pairs have exchanged something
		time.Sleep(50 * time.Millisecond)
		s = ebpfSweep(t, c, ws)
		if len(s.PeerBytes["pipe-a"]) > 0 && len(s.PeerBytes["unix-a"]) > 0 {
			break
		}
	}
	for _, p := range [][2]string{{"pipe-a", "pipe-b"}, {"pipe-b", "pipe-a"}, {"unix-a", "unix-b"}, {"unix-b", "unix-a"}} {
		if got := heaviestPeer(s.PeerBytes[p[0]]); got != p[1] {
			t.Errorf("heaviest peer of %s = %q, want %s; peers %v", p[0], got, p[1], s.PeerBytes[p[0]])
		}
	}
	if w := s.PeerBytes["pipe-a"]["unix-a"] + s.PeerBytes["pipe-a"]["unix-b"] + s.PeerBytes["idle"]["pipe-a"]; w != 0 {
		t.Errorf("unrelated loads are peers: %v", s.PeerBytes)
	}
	// Ping-pong of one byte: the bytes of the edge are the bytes written.
	if v, _ := procValue(s, ws[0], EBPFPipeTxBytes); v <= 0 {
		t.Errorf("pipe_tx_bytes of pipe-a = %v, want > 0", v)
	}
	if v, _ := procValue(s, ws[2], EBPFUnixTxBytes); v <= 0 {
		t.Errorf("unix_tx_bytes of unix-a = %v, want > 0", v)
	}
	if v, _ := procValue(s, ws[2], EBPFSysIPC); v <= 0 {
		t.Errorf("sys_ipc_calls of unix-a = %v, want > 0", v)
	}
}

// countProg makes exactly n calls of each kind when told to (one byte on
// stdin), then reports on stdout and waits: n 1-byte writes to a pipe it
// made (IPC), n getppid (process control), n 1-byte writes to /dev/null
// (file I/O), n mmap/munmap pairs (memory).
const countProg = `package main

import (
	"os"
	"strconv"
	"syscall"
)

func main() {
	n, _ := strconv.Atoi(os.Args[1])
	var p [2]int
	if err := syscall.Pipe(p[:]); err != nil {
		panic(err)
	}
	null, err := syscall.Open("/dev/null", syscall.O_WRONLY, 0)
	if err != nil {
		panic(err)
	}
	b := []byte{1}
	os.Stdout.Write([]byte("ready\n"))
	os.Stdin.Read(b)
	for i := 0; i < n; i++ {
		syscall.RawSyscall(syscall.SYS_WRITE, uintptr(p[1]), 0, 0) // zero bytes: still a call
		syscall.RawSyscall(syscall.SYS_GETPPID, 0, 0, 0)
		syscall.RawSyscall(syscall.SYS_WRITE, uintptr(null), 0, 0)
	}
	for i := 0; i < n; i++ {
		syscall.Write(p[1], b)
	}
	os.Stdout.Write([]byte("done\n"))
	os.Stdin.Read(b)
}
`

// TestEBPFCountsExact runs a program that makes a known number of calls of
// each class and checks the collector's counts: pipe bytes exactly, call
// counts within the Go runtime's own calls (at most 1% + 50 extra).
func TestEBPFCountsExact(t *testing.T) {
	c := newTestEBPF(t, EBPFOptions{})
	if !c.havePipe {
		t.Skipf("pipe hooks missing: %v", c.Stats().Missing)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go toolchain to build the counting program")
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(countProg), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte("module countprog\n\ngo 1.22\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "countprog")
	build := exec.Command(goBin, "build", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build counting program: %v\n%s", err, out)
	}
	const n = 20000
	cmd := exec.Command(bin, strconv.Itoa(n))
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	rd := bufio.NewReader(stdout)
	expect := func(word string) {
		line, err := rd.ReadString('\n')
		if err != nil || strings.TrimSpace(line) != word {
			t.Fatalf("counting program said %q (%v), want %q", line, err, word)
		}
	}
	expect("ready")
	ws := []workload.Workload{{ID: "count", Procs: []workload.Proc{loadProc(t, cmd.Process.Pid)}}}
	before := ebpfSweep(t, c, ws)
	if _, err := stdin.Write([]byte{1}); err != nil {
		t.Fatalf("start the counting program: %v", err)
	}
	expect("done")
	after := ebpfSweep(t, c, ws)
	w := ws[0]
	// Exactly: n bytes into its pipe plus "done\n" to stdout (a pipe).
	if got := ebpfDelta(t, before, after, w, EBPFPipeTxBytes); got != n+5 {
		t.Errorf("pipe_tx_bytes = %v, want exactly %d", got, n+5)
	}
	tol := float64(n)/100 + 50
	for _, cc := range []struct {
		m    Metric
		want float64
	}{
		{EBPFSysIPC, 2 * n}, // n empty + n 1-byte pipe writes
		{EBPFSysProc, n},
		{EBPFSysFile, n},
	} {
		got := ebpfDelta(t, before, after, w, cc.m)
		if got < cc.want || got > cc.want+tol {
			t.Errorf("%s = %v, want %v (+ at most %v runtime calls)", cc.m, got, cc.want, tol)
		}
	}
	if got := ebpfDelta(t, before, after, w, EBPFSysNet); got > tol {
		t.Errorf("sys_net_calls = %v, want ~0", got)
	}
}

// TestEBPFDiskMixIsFile: a program that writes a file with synchronous
// writes (dd oflag=dsync: read /dev/zero, write the file) makes mostly file
// I/O calls. (A Go program doing the same, like testload's disk mode, shows
// as many futex calls (IPC) as file calls: its runtime hands the P off
// while fsync blocks. The collector reports that as it is.)
func TestEBPFDiskMixIsFile(t *testing.T) {
	c := newTestEBPF(t, EBPFOptions{})
	dd, err := exec.LookPath("dd")
	if err != nil {
		t.Skip("no dd")
	}
	out := filepath.Join(t.TempDir(), "dd.out")
	cmd := exec.Command(dd, "if=/dev/zero", "of="+out, "bs=4k", "count=100000", "oflag=dsync", "status=none")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ws := []workload.Workload{{ID: "dd", Procs: []workload.Proc{loadProc(t, cmd.Process.Pid)}}}
	var before *Sample
	for i := 0; i < 200; i++ { // past its start-up (exec, libc mappings)
		before = ebpfSweep(t, c, ws)
		if v, _ := procValue(before, ws[0], EBPFSysFile); v >= 20 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	var after *Sample
	var file, total float64
	for i := 0; i < 200; i++ { // until it has made some calls
		time.Sleep(50 * time.Millisecond)
		after = ebpfSweep(t, c, ws)
		file = ebpfDelta(t, before, after, ws[0], EBPFSysFile)
		if file >= 200 {
			break
		}
	}
	mix := map[string]float64{}
	for cl := SyscallClass(0); cl < NumSyscallClasses; cl++ {
		v := ebpfDelta(t, before, after, ws[0], SyscallClassMetric(cl))
		mix[cl.String()] = v
		total += v
	}
	if total == 0 || file/total < 0.9 {
		t.Errorf("file share %v of %v calls, want > 0.9; mix %v", file, total, mix)
	}
}

// TestEBPFLoopbackIperf: iperf3 over 127.0.0.1 moves the most socket bytes,
// far above a small-message TCP echo pair and an idle process, and its
// client and server are each other's heaviest peers over loopback TCP.
func TestEBPFLoopbackIperf(t *testing.T) {
	c := newTestEBPF(t, EBPFOptions{})
	if !c.haveSock {
		t.Skipf("socket hooks missing: %v", c.Stats().Missing)
	}
	iperf, err := exec.LookPath("iperf3")
	if err != nil {
		t.Skip("iperf3 not installed (apt-get install iperf3)")
	}
	port := freePort(t)
	srv := exec.Command(iperf, "-s", "-p", strconv.Itoa(port))
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Process.Kill(); _ = srv.Wait() })
	for i := 0; i < 250 && !tcpListening(t, port); i++ { // until the server listens
		time.Sleep(20 * time.Millisecond)
	}
	cli := exec.Command(iperf, "-c", "127.0.0.1", "-p", strconv.Itoa(port), "-t", "30", "-b", "4G")
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cli.Process.Kill(); _ = cli.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	env := []string{"SCULPT_TESTLOAD_ADDR=" + addr}
	es := testload.Start(t, "sockserver", env)
	ec := testload.Start(t, "sockclient", env)
	idle := testload.Start(t, "sleep", nil)
	ws := []workload.Workload{
		{ID: "iperf-srv", Procs: []workload.Proc{loadProc(t, srv.Process.Pid)}},
		{ID: "iperf-cli", Procs: []workload.Proc{loadProc(t, cli.Process.Pid)}},
		loadWorkload(t, "echo-srv", es), loadWorkload(t, "echo-cli", ec), loadWorkload(t, "idle", idle),
	}
	before := ebpfSweep(t, c, ws)
	var after *Sample
	bytesOf := func(w workload.Workload) float64 {
		return ebpfDelta(t, before, after, w, EBPFSockTxBytes) + ebpfDelta(t, before, after, w, EBPFSockRxBytes)
	}
	for i := 0; i < 200; i++ { // until iperf has moved 400 MB
		time.Sleep(50 * time.Millisecond)
		after = ebpfSweep(t, c, ws)
		if bytesOf(ws[1]) > 400e6 {
			break
		}
	}
	got := map[string]float64{}
	for _, w := range ws {
		got[w.ID] = bytesOf(w)
	}
	for _, other := range []string{"echo-srv", "echo-cli", "idle"} {
		for _, ip := range []string{"iperf-srv", "iperf-cli"} {
			if got[ip] <= got[other] {
				t.Errorf("socket bytes of %s (%v) not above %s (%v)", ip, got[ip], other, got[other])
			}
		}
	}
	if got["echo-cli"] <= 0 {
		t.Errorf("echo client moved no socket bytes: %v", got)
	}
	// All of it is loopback.
	if loop := ebpfDelta(t, before, after, ws[1], EBPFLoopTxBytes); loop != ebpfDelta(t, before, after, ws[1], EBPFSockTxBytes) {
		t.Errorf("iperf client loopback tx %v != sock tx", loop)
	}
	if p := heaviestPeer(after.PeerBytes["iperf-cli"]); p != "iperf-srv" {
		t.Errorf("heaviest peer of iperf-cli = %q, want iperf-srv; peers %v", p, after.PeerBytes)
	}
	if p := heaviestPeer(after.PeerBytes["echo-srv"]); p != "echo-cli" {
		t.Errorf("heaviest peer of echo-srv = %q, want echo-cli; peers %v", p, after.PeerBytes)
	}
}

// tcpListening reports whether /proc/net/tcp{,6} has a listening socket on port.
func tcpListening(t *testing.T, port int) bool {
	t.Helper()
	want := fmt.Sprintf(":%04X ", port)
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			fs := strings.Fields(line)
			if len(fs) > 3 && strings.HasSuffix(fs[1]+" ", want) && fs[3] == "0A" {
				return true
			}
		}
	}
	return false
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }() // only the port number was wanted
	return l.Addr().(*net.TCPAddr).Port
}

func countFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestEBPFNoFDLeak: 20 start/collect/stop cycles leave no descriptor open.
func TestEBPFNoFDLeak(t *testing.T) {
	cycle := func() {
		c, err := NewEBPFCollector(EBPFOptions{MaxProcs: 1024, MaxChannels: 1024})
		if errors.Is(err, ErrNotSupported) {
			t.Skipf("eBPF unavailable: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		ebpfSweep(t, c, nil)
		if err := c.Close(); err != nil {
			t.Fatalf("close: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Fatalf("second close: %v", err)
		}
	}
	cycle() // warm the library's caches (kernel BTF, feature probes)
	before := countFDs(t)
	for i := 0; i < 20; i++ {
		cycle()
	}
	if after := countFDs(t); after != before {
		t.Errorf("fds: %d before 20 cycles, %d after", before, after)
	}
}

func TestEBPFProbeAvailable(t *testing.T) {
	st := probeEBPF(host.DefaultRoots())
	if !st.Available {
		t.Skipf("eBPF unavailable here: %s", st.Reason)
	}
	if !strings.Contains(st.Detail, "sys_enter") {
		t.Errorf("detail %q does not list sys_enter", st.Detail)
	}
}

// BenchmarkEBPFOverhead runs MeasureEBPFOverhead once per iteration and
// reports its medians (go test -run '^$' -bench EBPFOverhead -benchtime 1x).
func BenchmarkEBPFOverhead(b *testing.B) {
	if _, err := ebpfPrereqs(host.DefaultRoots()); err != nil {
		b.Skipf("eBPF unavailable: %v", err)
	}
	for i := 0; i < b.N; i++ {
		r, err := MeasureEBPFOverhead(context.Background(), EBPFBenchOptions{})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(r.GetppidNsAdded, "getppid-added-ns")
		b.ReportMetric(r.PipeNsAdded, "pipe-added-ns/call")
		b.ReportMetric(r.CollectCPUSec*1e6, "collect-1000-cpu-us")
		b.ReportMetric(r.CoreFracAt1s*100, "core%-at-1s")
	}
}

// BenchmarkEBPFCollect1000 times Collect with 1000 processes (and 2000
// channel entries) in the maps and a sample of 1000 one-process workloads.
func BenchmarkEBPFCollect1000(b *testing.B) {
	c := newTestEBPF(b, EBPFOptions{})
	if _, _, err := c.benchCollect(context.Background(), 1000, 1); err != nil {
		b.Fatal(err)
	}
	ws := make([]workload.Workload, 1000)
	for i := range ws {
		ws[i] = workload.Workload{ID: fmt.Sprintf("w%d", i), Procs: []workload.Proc{{PID: 1<<30 + i, StartTime: 1}}}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s := NewSample(time.Now(), ws)
		if err := c.Collect(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
}
