package telemetry

import (
	"testing"
	"time"

	"sculpt/internal/workload"
)

func TestChanTrackerEdges(t *testing.T) {
	const pipe, unixSock = 0xa0, 0xb0
	var tr chanTracker
	// Interval 1: 10 writes 100 bytes into a pipe that 20 reads; 30 sends 50
	// bytes to the unix socket of 40 and 40 reads them; 50 writes a pipe
	// it reads itself.
	e := tr.edges([]chanEntry{
		{TGID: 10, Kind: chanPipe, ID: pipe, Tx: 100},
		{TGID: 20, Kind: chanPipe, ID: pipe, Rx: 100},
		{TGID: 30, Kind: chanUnix, ID: unixSock, Tx: 50},
		{TGID: 40, Kind: chanUnix, ID: unixSock, Rx: 50},
		{TGID: 50, Kind: chanPipe, ID: 0xc0, Tx: 7, Rx: 7},
	})
	want := map[procPair]float64{{10, 20}: 100, {30, 40}: 50}
	if len(e) != len(want) || e[procPair{10, 20}] != 100 || e[procPair{30, 40}] != 50 {
		t.Fatalf("interval 1 edges = %v, want %v", e, want)
	}
	// Interval 2: counters are cumulative; only the increase counts. 10 sent
	// 60 more, read by 20 (40 of it) and a new reader 21 (20 of it). The
	// unix pair was idle; the unix writer's entry was evicted and re-created
	// with 5 bytes (below its old value: counts from zero).
	e = tr.edges([]chanEntry{
		{TGID: 10, Kind: chanPipe, ID: pipe, Tx: 160},
		{TGID: 20, Kind: chanPipe, ID: pipe, Rx: 140},
		{TGID: 21, Kind: chanPipe, ID: pipe, Rx: 20},
		{TGID: 30, Kind: chanUnix, ID: unixSock, Tx: 5},
		{TGID: 40, Kind: chanUnix, ID: unixSock, Rx: 50},
	})
	if got := e[procPair{10, 20}]; got != 40 {
		t.Errorf("10-20 = %v, want 40 (60 bytes, 2/3 read by 20)", got)
	}
	if got := e[procPair{10, 21}]; got != 20 {
		t.Errorf("10-21 = %v, want 20", got)
	}
	// No rx in the interval: the 5 bytes go to the known reader.
	if got := e[procPair{30, 40}]; got != 5 {
		t.Errorf("30-40 = %v, want 5 (re-created entry, reader by total)", got)
	}
	// Interval 3: nothing moved.
	e = tr.edges([]chanEntry{
		{TGID: 10, Kind: chanPipe, ID: pipe, Tx: 160},
		{TGID: 20, Kind: chanPipe, ID: pipe, Rx: 140},
	})
	if len(e) != 0 {
		t.Errorf("idle interval edges = %v, want none", e)
	}
	// A writer with no reader ever seen is no edge.
	if e := (&chanTracker{}).edges([]chanEntry{{TGID: 1, Kind: chanTCP, ID: 3, Tx: 9}}); len(e) != 0 {
		t.Errorf("writer only: %v, want none", e)
	}
}

func TestApplyEBPF(t *testing.T) {
	ws := []workload.Workload{
		{ID: "a", Procs: []workload.Proc{{PID: 10, StartTime: 1}, {PID: 11, StartTime: 1}}},
		{ID: "b", Procs: []workload.Proc{{PID: 20, StartTime: 1}}},
		{ID: "c", Procs: []workload.Proc{{PID: 30, StartTime: 1}}},
	}
	s := NewSample(time.Unix(0, 0), ws)
	procs := map[uint32]*procCounters{
		10: {Sys: [NumSyscallClasses]uint64{SysFile: 5, SysIPC: 7}, InetTx: 3, PipeTx: 100},
		20: {Sys: [NumSyscallClasses]uint64{SysNet: 1}, PipeRx: 100},
		99: {Sys: [NumSyscallClasses]uint64{SysOther: 1}}, // not in the sample
	}
	edges := map[procPair]float64{
		{10, 20}: 100, // a-b
		{11, 20}: 10,  // a-b again, other process
		{10, 11}: 50,  // within a: no peer
		{20, 99}: 8,   // 99 unknown: no peer
	}
	applyEBPF(s, procs, edges, true, false, true, true)
	get := func(pid int, m Metric) (float64, bool) {
		return s.Procs[ProcKey{pid, 1}].Get(m)
	}
	for _, c := range []struct {
		pid  int
		m    Metric
		want float64
	}{
		{10, EBPFSysFile, 5}, {10, EBPFSysIPC, 7}, {10, EBPFSysNet, 0}, {10, EBPFSockTxBytes, 3},
		{10, EBPFPipeTxBytes, 100}, {20, EBPFPipeRxBytes, 100}, {20, EBPFSysNet, 1},
		{11, EBPFSysFile, 0}, {11, EBPFSysOther, 0}, {30, EBPFSockRxBytes, 0},
	} {
		if v, ok := get(c.pid, c.m); !ok || v != c.want {
			t.Errorf("pid %d %s = %v (present %v), want %v", c.pid, c.m, v, ok, c.want)
		}
	}
	// Unix hooks "not attached": their metrics stay absent.
	if _, ok := get(10, EBPFUnixTxBytes); ok {
		t.Error("unix_tx_bytes present without unix hooks")
	}
	if got := s.PeerBytes["a"]["b"]; got != 110 {
		t.Errorf("peers a-b = %v, want 110 bytes; peers %v", got, s.PeerBytes)
	}
	if got := s.PeerBytes["b"]["a"]; got != 110 {
		t.Errorf("peers b-a = %v, want 110", got)
	}
	if len(s.PeerBytes["a"]) != 1 || len(s.PeerBytes["c"]) != 0 {
		t.Errorf("peers = %v, want only a<->b", s.PeerBytes)
	}
	s2 := NewSample(time.Unix(0, 0), ws)
	applyEBPF(s2, procs, edges, true, true, true, false)
	if len(s2.PeerBytes) != 0 {
		t.Errorf("NoPeers: peers %v, want none", s2.PeerBytes)
	}
}

func TestSyscallClassMetrics(t *testing.T) {
	for c := SyscallClass(0); c < NumSyscallClasses; c++ {
		m := SyscallClassMetric(c)
		if want := "sys_" + c.String() + "_calls"; m.String() != want {
			t.Errorf("class %d metric %s, want %s", c, m, want)
		}
		if MetricInfo[m].Kind != Counter {
			t.Errorf("%s is not a counter", m)
		}
	}
	if SyscallClass(99).String() != "class(?)" {
		t.Error("String of an unknown class")
	}
}
