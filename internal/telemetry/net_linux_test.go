package telemetry

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sculpt/internal/host"
	"sculpt/internal/testload"
	"sculpt/internal/workload"
)

func readNetFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "net", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseNetDev(t *testing.T) {
	got, err := parseNetDev(readNetFixture(t, "proc/100/net/dev"))
	if err != nil {
		t.Fatal(err)
	}
	if want := (netDevTotals{rxBytes: 1005000, txBytes: 200700}); got != want {
		t.Errorf("got %+v, want %+v (lo left out)", got, want)
	}
	for _, bad := range []string{"malformed/dev", "malformed/dev-noname"} {
		if _, err := parseNetDev(readNetFixture(t, bad)); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestParseInetSockets(t *testing.T) {
	got := map[uint64]sockInfo{}
	if err := parseInetSockets(readNetFixture(t, "proc/100/net/tcp"), sockTCP, func(i uint64, si sockInfo) { got[i] = si }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Errorf("%d sockets, want 3 (the TIME_WAIT one has no inode)", len(got))
	}
	c := got[1001]
	if c.local != netip.MustParseAddrPort("127.0.0.1:40000") || c.remote != netip.MustParseAddrPort("127.0.0.1:8080") || c.state != 1 || c.queue != 0x30 {
		t.Errorf("socket 1001 = %+v", c)
	}
	if got[1000].state != tcpListen {
		t.Errorf("socket 1000 state %d, want listen", got[1000].state)
	}
	got6 := map[uint64]sockInfo{}
	if err := parseInetSockets(readNetFixture(t, "proc/100/net/tcp6"), sockTCP, func(i uint64, si sockInfo) { got6[i] = si }); err != nil {
		t.Fatal(err)
	}
	if si := got6[1100]; si.local != netip.MustParseAddrPort("[::]:22") {
		t.Errorf("tcp6 socket 1100 = %+v", si)
	}
	for _, bad := range []string{"malformed/tcp", "malformed/tcp-addr", "malformed/tcp-short"} {
		if err := parseInetSockets(readNetFixture(t, bad), sockTCP, func(uint64, sockInfo) {}); err == nil {
			t.Errorf("%s parsed", bad)
		}
	}
}

func TestParseHexAddrPortV6Mapped(t *testing.T) {
	// ::ffff:127.0.0.1 port 8080 as a little-endian kernel prints it.
	ap, err := parseHexAddrPort([]byte("0000000000000000FFFF00000100007F:1F90"))
	if err != nil {
		t.Fatal(err)
	}
	if ap != netip.MustParseAddrPort("127.0.0.1:8080") {
		t.Errorf("got %v, want 127.0.0.1:8080 (unmapped)", ap)
	}
}

func TestParseUnixSockets(t *testing.T) {
	var inodes []uint64
	if err := parseUnixSockets(readNetFixture(t, "proc/100/net/unix"), func(i uint64) { inodes = append(inodes, i) }); err != nil {
		t.Fatal(err)
	}
	if len(inodes) != 3 || inodes[0] != 2001 || inodes[2] != 2003 {
		t.Errorf("inodes %v", inodes)
	}
	if err := parseUnixSockets(readNetFixture(t, "malformed/unix"), func(uint64) {}); err == nil {
		t.Error("malformed unix parsed")
	}
}

func TestParseFDLink(t *testing.T) {
	for _, c := range []struct {
		in   string
		kind byte
		ino  uint64
	}{
		{"socket:[123]", 's', 123}, {"pipe:[9]", 'p', 9}, {"/dev/null", 0, 0},
		{"socket:[]", 0, 0}, {"socket:[12", 0, 0}, {"anon_inode:[eventfd]", 0, 0},
	} {
		k, ino := parseFDLink([]byte(c.in))
		if k != c.kind || ino != c.ino {
			t.Errorf("parseFDLink(%q) = %c %d, want %c %d", c.in, k, ino, c.kind, c.ino)
		}
	}
}

func netFixtureSample() *Sample {
	ws := []workload.Workload{
		{ID: "a", Procs: []workload.Proc{{PID: 100, StartTime: 1}}},
		{ID: "b", Procs: []workload.Proc{{PID: 200, StartTime: 2}}},
		{ID: "c", Procs: []workload.Proc{{PID: 250, StartTime: 3}, {PID: 300, StartTime: 4}}}, // 250 is gone
	}
	return NewSample(time.Now(), ws)
}

func TestNetCollectorFixture(t *testing.T) {
	roots := host.Roots{Proc: filepath.Join("testdata", "net", "proc")}
	unixCalls := 0
	c := NewNetCollector(roots, NetOptions{unixPeers: func() (map[uint64]uint64, error) {
		unixCalls++
		return map[uint64]uint64{2001: 2002, 2002: 2001, 2003: 0}, nil
	}})
	s := netFixtureSample()
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	a, b, cc := s.Groups["a"], s.Groups["b"], s.Groups["c"]
	wantVal(t, "a", a, NetRxBytes, 1005000)
	wantVal(t, "a", a, NetTxBytes, 200700)
	wantVal(t, "a (host netns)", a, NetNSShared, 1)
	wantVal(t, "b", b, NetRxBytes, 1005000)
	wantVal(t, "c", cc, NetRxBytes, 4242)
	wantVal(t, "c", cc, NetTxBytes, 2121)
	wantVal(t, "c (own netns)", cc, NetNSShared, 0)

	pa := &s.Procs[ProcKey{100, 1}].Values
	wantVal(t, "pid 100", pa, Sockets, 2) // 1001 twice (dup) and 2001
	wantVal(t, "pid 100", pa, Pipes, 1)
	wantVal(t, "pid 100", pa, SocketsTCP, 1)
	wantVal(t, "pid 100", pa, SocketsUnix, 1)
	wantVal(t, "pid 100", pa, SockQueueBytes, 0x30)
	pb := &s.Procs[ProcKey{200, 2}].Values
	wantVal(t, "pid 200", pb, Sockets, 4)
	wantVal(t, "pid 200", pb, SocketsTCP, 2)
	wantVal(t, "pid 200", pb, SockQueueBytes, 5+0x100)
	p3 := &s.Procs[ProcKey{300, 4}].Values
	wantVal(t, "pid 300", p3, SocketsTCP, 1)
	wantVal(t, "pid 300", p3, SockQueueBytes, 3)
	if n := s.Procs[ProcKey{250, 3}].Len(); n != 0 {
		t.Errorf("gone pid 250 got %d values", n)
	}

	// a and b share pipe 500, TCP 1001<->1002 and unix 2001<->2002.
	if got := s.Peers["a"]["b"]; got != 3 {
		t.Errorf("peer weight a-b = %v, want 3 (pipe, tcp, unix); peers %v", got, s.Peers)
	}
	if got := s.Peers["b"]["a"]; got != 3 {
		t.Errorf("peer weight b-a = %v, want 3", got)
	}
	if len(s.Peers["c"]) != 0 {
		t.Errorf("c has peers %v, want none", s.Peers["c"])
	}
	if unixCalls != 1 || !c.Stats().UnixPeers {
		t.Errorf("unix diag called %d times, stats %+v", unixCalls, c.Stats())
	}
}

func TestNetCollectorUnixDiagFails(t *testing.T) {
	roots := host.Roots{Proc: filepath.Join("testdata", "net", "proc")}
	c := NewNetCollector(roots, NetOptions{unixPeers: func() (map[uint64]uint64, error) {
		return nil, errors.New("protocol not supported")
	}})
	s := netFixtureSample()
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := s.Peers["a"]["b"]; got != 2 {
		t.Errorf("peer weight a-b = %v, want 2 (pipe, tcp; no unix)", got)
	}
	if st := c.Stats(); st.UnixPeers || !strings.Contains(st.UnixPeersReason, "protocol not supported") {
		t.Errorf("stats %+v, want unix peers off with the reason", st)
	}
}

func TestNetCollectorFDScanEvery(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "net", "proc"))); err != nil {
		t.Fatal(err)
	}
	c := NewNetCollector(host.Roots{Proc: dir}, NetOptions{FDScanEvery: 2, unixPeers: func() (map[uint64]uint64, error) { return nil, nil }})
	s := netFixtureSample()
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	// Close pid 100's pipe: the next sweep repeats the last scan, the one after sees it.
	if err := os.Remove(filepath.Join(dir, "100", "fd", "3")); err != nil {
		t.Fatal(err)
	}
	pipes := func() float64 {
		s := netFixtureSample()
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		v, _ := s.Procs[ProcKey{100, 1}].Get(Pipes)
		return v
	}
	if got := pipes(); got != 1 {
		t.Errorf("sweep 2 (no scan) pipes = %v, want the repeated 1", got)
	}
	if got := pipes(); got != 0 {
		t.Errorf("sweep 3 (scan) pipes = %v, want 0", got)
	}
}

// realNetSweep runs the real collector once over ws.
func realNetSweep(t *testing.T, ws []workload.Workload) (*Sample, *NetCollector) {
	t.Helper()
	c := NewNetCollector(host.DefaultRoots())
	s := NewSample(time.Now(), ws)
	if err := c.Collect(context.Background(), s); err != nil {
		t.Fatalf("collect: %v", err)
	}
	return s, c
}

func TestNetPipePeersReal(t *testing.T) {
	a, b := startPipePair(t)
	ws := []workload.Workload{loadWorkload(t, "a", a), loadWorkload(t, "b", b)}
	s, _ := realNetSweep(t, ws)
	// Exactly 2: the loads also share the test's stderr pipe, which both
	// only write, and that is no channel between them.
	if got := s.Peers["a"]["b"]; got != 2 {
		t.Errorf("pipe loads: peer weight %v, want 2 (two pipes); peers %v", got, s.Peers)
	}
	if v, _ := procValue(s, ws[0], Pipes); v < 2 {
		t.Errorf("pipes of a = %v, want >= 2", v)
	}
}

func TestNetTCPPeersReal(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil { // free the port for the server
		t.Fatal(err)
	}
	env := []string{"SCULPT_TESTLOAD_ADDR=" + addr}
	srv := testload.Start(t, "sockserver", env)
	cli := testload.Start(t, "sockclient", env)
	ws := []workload.Workload{loadWorkload(t, "srv", srv), loadWorkload(t, "cli", cli)}
	var s *Sample
	for i := 0; i < 250; i++ { // wait for the client to connect, not for a time
		s, _ = realNetSweep(t, ws)
		if v, _ := procValue(s, ws[1], SocketsTCP); v > 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := s.Peers["srv"]["cli"]; got != 1 {
		t.Errorf("TCP pair: peer weight %v, want 1; peers %v", got, s.Peers)
	}
	for _, w := range ws {
		if v, ok := procValue(s, w, SocketsTCP); !ok || v < 1 {
			t.Errorf("%s: sockets_tcp = %v (present %v), want >= 1", w.ID, v, ok)
		}
	}
	if v, _ := procValue(s, ws[0], NetNSShared); v != 0 {
		t.Errorf("netns_shared should be a workload value, not a process one")
	}
	wantVal(t, "srv (host netns)", s.Groups["srv"], NetNSShared, 1)
	if !s.Groups["srv"].Has(NetRxBytes) {
		t.Error("net_rx_bytes absent")
	}
}

func TestNetUnixPeersReal(t *testing.T) {
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	end0 := os.NewFile(uintptr(fds[0]), "end0")
	end1 := os.NewFile(uintptr(fds[1]), "end1")
	// pipe mode reads fd 3 and writes fd 4: both are the same socket end.
	a := testload.Start(t, "pipe", []string{"SCULPT_TESTLOAD_FIRST=1"}, end0, end0)
	b := testload.Start(t, "pipe", nil, end1, end1)
	_ = end0.Close() // the children hold their own copies
	_ = end1.Close()
	ws := []workload.Workload{loadWorkload(t, "a", a), loadWorkload(t, "b", b)}
	s, c := realNetSweep(t, ws)
	if !c.Stats().UnixPeers {
		t.Skipf("unix peers unavailable: %s", c.Stats().UnixPeersReason)
	}
	if got := s.Peers["a"]["b"]; got != 1 {
		t.Errorf("socketpair loads: peer weight %v, want 1; peers %v", got, s.Peers)
	}
	if v, _ := procValue(s, ws[0], SocketsUnix); v != 1 {
		t.Errorf("sockets_unix of a = %v, want 1", v)
	}
}

// BenchmarkNetCollectorAllProcesses sweeps every process on the machine as a
// workload of its own, scanning fds every sweep; it reports the cost per
// process and per fd.
func BenchmarkNetCollectorAllProcesses(b *testing.B) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		b.Fatal(err)
	}
	var ws []workload.Workload
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ws = append(ws, workload.Workload{ID: e.Name(), Procs: []workload.Proc{{PID: pid}}})
	}
	c := NewNetCollector(host.DefaultRoots())
	cpuTime := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		s := NewSample(time.Now(), ws)
		if err := c.Collect(context.Background(), s); err != nil {
			b.Fatal(err)
		}
	}
	// CPU time, not wall time: the machine may be shared.
	perSweep := float64((cpuTime() - cpu0).Nanoseconds()) / float64(b.N)
	st := c.Stats()
	b.ReportMetric(perSweep, "cpu-ns/sweep")
	b.ReportMetric(perSweep/float64(max(st.ScannedProcs, 1)), "cpu-ns/process")
	b.ReportMetric(perSweep/float64(max(st.ScannedFDs, 1)), "cpu-ns/fd")
	b.ReportMetric(float64(st.ScannedProcs), "processes")
	b.ReportMetric(float64(st.ScannedFDs), "fds")
}

func TestNetOwnNamespaceReal(t *testing.T) {
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Skip("unshare(1) not installed")
	}
	cmd := exec.Command(unshare, "--net", "sleep", "300")
	if err := cmd.Start(); err != nil {
		t.Fatalf("start unshare: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	// unshare execs sleep once the namespace exists: wait for the switch.
	ours, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	switched := false
	for i := 0; i < 250 && !switched; i++ {
		l, err := os.Readlink("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/ns/net")
		switched = err == nil && l != ours
		time.Sleep(20 * time.Millisecond)
	}
	if !switched {
		t.Fatal("unshare --net did not move its process to a new network namespace")
	}
	iso := loadWorkload(t, "iso", cmd)
	host1 := loadWorkload(t, "host", testload.Start(t, "sleep", nil))
	s, _ := realNetSweep(t, []workload.Workload{iso, host1})
	wantVal(t, "iso", s.Groups["iso"], NetNSShared, 0)
	wantVal(t, "iso (only lo)", s.Groups["iso"], NetRxBytes, 0)
	wantVal(t, "iso (only lo)", s.Groups["iso"], NetTxBytes, 0)
	wantVal(t, "host", s.Groups["host"], NetNSShared, 1)
}

// TestNetCollectorIdleReuse checks that a process whose run time did not
// change since the last scan keeps that scan's fd listing, and that one whose
// run time changed is listed again.
func TestNetCollectorIdleReuse(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "net", "proc"))); err != nil {
		t.Fatal(err)
	}
	c := NewNetCollector(host.Roots{Proc: dir}, NetOptions{unixPeers: func() (map[uint64]uint64, error) { return nil, nil }})
	sweep := func(run float64) float64 {
		t.Helper()
		s := netFixtureSample()
		for _, ps := range s.Procs {
			ps.Set(RunTimeSec, run)
		}
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		v, ok := s.Procs[ProcKey{100, 1}].Get(Pipes)
		if !ok {
			t.Fatal("pipes of pid 100 absent")
		}
		return v
	}
	if got := sweep(1); got != 1 {
		t.Fatalf("first scan: pipes = %v, want 1", got)
	}
	// The pipe is closed, but the process (per its run time) did not run:
	// the listing is reused.
	if err := os.Remove(filepath.Join(dir, "100", "fd", "3")); err != nil {
		t.Fatal(err)
	}
	if got := sweep(1); got != 1 {
		t.Errorf("same run time: pipes = %v, want the reused 1", got)
	}
	if st := c.Stats(); st.ReusedProcs != 3 {
		t.Errorf("ReusedProcs = %d, want 3 (pids 100, 200, 300)", st.ReusedProcs)
	}
	if got := sweep(2); got != 0 {
		t.Errorf("run time changed: pipes = %v, want 0", got)
	}
	if st := c.Stats(); st.ReusedProcs != 0 {
		t.Errorf("ReusedProcs = %d after every process ran, want 0", st.ReusedProcs)
	}
}

// TestNetCollectorNamespaceCache moves pid 100 (workload a) into the
// namespace of pid 300 (workload c) between sweeps: while its run time is
// unchanged the collector keeps the namespace it read (a process cannot
// change namespace without running), so c's stays its own; once a's run
// time changes, the link is read again and c's namespace is shared.
func TestNetCollectorNamespaceCache(t *testing.T) {
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(filepath.Join("testdata", "net", "proc"))); err != nil {
		t.Fatal(err)
	}
	c := NewNetCollector(host.Roots{Proc: dir}, NetOptions{unixPeers: func() (map[uint64]uint64, error) { return nil, nil }})
	sharedC := func(runA float64) float64 {
		t.Helper()
		s := netFixtureSample()
		for key, ps := range s.Procs {
			ps.Set(RunTimeSec, 1)
			if key.PID == 100 {
				ps.Set(RunTimeSec, runA)
			}
		}
		if err := c.Collect(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		v, ok := s.Groups["c"].Get(NetNSShared)
		if !ok {
			t.Fatal("netns_shared of c absent")
		}
		return v
	}
	if got := sharedC(1); got != 0 {
		t.Fatalf("c alone in its namespace: netns_shared %v, want 0", got)
	}
	target, err := os.Readlink(filepath.Join(dir, "300", "ns", "net"))
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "100", "ns", "net")
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if got := sharedC(1); got != 0 {
		t.Errorf("a's run time unchanged: c's netns_shared %v, want 0 (a's namespace cached)", got)
	}
	if got := sharedC(2); got != 1 {
		t.Errorf("a ran: c's netns_shared %v, want 1 (a read again, now in c's namespace)", got)
	}
}
