package telemetry

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sort"
	"time"

	"golang.org/x/sys/unix"

	"sculpt/internal/telemetry/bpf"
	"sculpt/internal/workload"
)

// MeasureEBPFOverhead measures, in one run and interleaved rounds, what the
// collector adds to system calls and what reading its maps costs. It needs
// what NewEBPFCollector needs (root, BTF). The system-call loops run on one
// locked OS thread and are timed in that thread's CPU time; the figures are
// medians over rounds.
func MeasureEBPFOverhead(ctx context.Context, o EBPFBenchOptions) (EBPFOverhead, error) {
	if o.Rounds <= 0 {
		o.Rounds = 7
	}
	if o.Calls <= 0 {
		o.Calls = 200000
	}
	if o.Workloads <= 0 {
		o.Workloads = 1000
	}
	if o.Collects <= 0 {
		o.Collects = 20
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return EBPFOverhead{}, fmt.Errorf("pipe: %w", err)
	}
	defer func() { _ = unix.Close(p[0]) }() // only this benchmark used the pipe
	defer func() { _ = unix.Close(p[1]) }()
	// Thread CPU time, not wall time: on a shared machine a preempted loop
	// would count other tenants' time. The programs run in the calling
	// thread's context, so their cost is in its system time.
	getppid := func() float64 {
		start := ebpfThreadCPU()
		for i := 0; i < o.Calls; i++ {
			unix.Getppid()
		}
		return (ebpfThreadCPU() - start) * 1e9 / float64(o.Calls)
	}
	// pipeErr keeps the first failed pipe write or read; a failed write
	// would leave the read blocked, so the loop stops there.
	var pipeErr error
	pipeRT := func() float64 {
		b := []byte{1}
		start := ebpfThreadCPU()
		for i := 0; i < o.Calls/2 && pipeErr == nil; i++ {
			if _, err := unix.Write(p[1], b); err != nil {
				pipeErr = fmt.Errorf("write pipe: %w", err)
			} else if _, err := unix.Read(p[0], b); err != nil {
				pipeErr = fmt.Errorf("read pipe: %w", err)
			}
		}
		return (ebpfThreadCPU() - start) * 1e9 / float64(o.Calls/2*2)
	}
	rt, err := newLoopbackRT()
	if err != nil {
		return EBPFOverhead{}, err
	}
	defer func() { _ = rt.close() }()
	reqs := max(o.Calls/20, 1)
	reqRT := func() float64 {
		start := ebpfProcessCPU()
		for i := 0; i < reqs && pipeErr == nil; i++ {
			pipeErr = rt.roundTrip()
		}
		return (ebpfProcessCPU() - start) * 1e9 / float64(reqs)
	}
	var gOff, gOn, gAdd, pOff, pOn, pAdd, rOff, rOn, rAdd, cpu []float64
	res := EBPFOverhead{Rounds: o.Rounds, Calls: o.Calls, Workloads: o.Workloads}
	for r := 0; r < o.Rounds; r++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		off := func() (float64, float64, float64) { return getppid(), pipeRT(), reqRT() }
		g0, p0, r0 := off()
		c, err := NewEBPFCollector(EBPFOptions{})
		if err != nil {
			return res, err
		}
		g1, p1, r1 := getppid(), pipeRT(), reqRT()
		sec, chans, err := c.benchCollect(ctx, o.Workloads, o.Collects)
		// A link left attached would inflate the next "off" measurement.
		if err := errors.Join(err, c.Close()); err != nil {
			return res, err
		}
		// The second "off" measurement brackets the "on" one, so drift
		// (other tenants of the machine) cancels in the difference.
		g2, p2, r2 := off()
		if pipeErr != nil {
			return res, pipeErr
		}
		gOff = append(gOff, (g0+g2)/2)
		pOff = append(pOff, (p0+p2)/2)
		gOn = append(gOn, g1)
		pOn = append(pOn, p1)
		gAdd = append(gAdd, g1-(g0+g2)/2)
		pAdd = append(pAdd, p1-(p0+p2)/2)
		rOff = append(rOff, (r0+r2)/2)
		rOn = append(rOn, r1)
		rAdd = append(rAdd, r1-(r0+r2)/2)
		cpu = append(cpu, sec)
		res.Channels = chans
	}
	res.GetppidNsOff, res.GetppidNsOn, res.GetppidNsAdded = ebpfMedian(gOff), ebpfMedian(gOn), ebpfMedian(gAdd)
	res.PipeNsOff, res.PipeNsOn, res.PipeNsAdded = ebpfMedian(pOff), ebpfMedian(pOn), ebpfMedian(pAdd)
	res.ReqNsOff, res.ReqNsOn, res.ReqNsAdded = ebpfMedian(rOff), ebpfMedian(rOn), ebpfMedian(rAdd)
	res.Requests = reqs
	res.CollectCPUSec = ebpfMedian(cpu)
	res.CoreFracAt1s = res.CollectCPUSec
	return res, nil
}

// benchCollect fills the maps with n fake processes (TGIDs far above any
// real PID, so no exit hook removes them) and a pipe each, and returns the
// median CPU seconds of one Collect over a sample of n one-process
// workloads, and the channel entries read.
func (c *EBPFCollector) benchCollect(ctx context.Context, n, collects int) (float64, int, error) {
	const base = 1 << 30
	vals := make([]bpf.SculptProcStats, c.ncpu)
	ws := make([]workload.Workload, n)
	for i := 0; i < n; i++ {
		tgid := uint32(base + i)
		for cpu := range vals {
			vals[cpu].Sys = [8]uint64{uint64(i), 2, 3, 4, 5, 6, 7}
			vals[cpu].PipeTx = uint64(i)
		}
		if err := c.procs.Update(tgid, vals, 0); err != nil {
			return 0, 0, fmt.Errorf("fill %s: %w", bpf.SculptMapProcs, err)
		}
		for _, e := range []bpf.SculptChanKey{
			{Tgid: tgid, Kind: uint32(chanPipe), Id: uint64(base + i)},
			{Tgid: tgid + 1, Kind: uint32(chanPipe), Id: uint64(base + i)},
		} {
			v := bpf.SculptChanVal{Tx: uint64(i), Rx: uint64(i)}
			if err := c.chans.Update(e, v, 0); err != nil {
				return 0, 0, fmt.Errorf("fill %s: %w", bpf.SculptMapChans, err)
			}
		}
		ws[i] = workload.Workload{ID: fmt.Sprintf("w%d", i), Procs: []workload.Proc{{PID: int(tgid), StartTime: 1}}}
	}
	var per []float64
	for k := 0; k < collects; k++ {
		s := NewSample(time.Now(), ws)
		before := ebpfThreadCPU()
		if err := c.Collect(ctx, s); err != nil {
			return 0, 0, err
		}
		per = append(per, ebpfThreadCPU()-before)
	}
	return ebpfMedian(per), c.stats.Channels, nil
}

// loopbackRT is a request/response pair over loopback TCP: the benchmark's
// thread is the client, a locked OS thread the server answering each
// 64-byte request with 64 bytes. Raw blocking sockets: no netpoller work in
// the figures.
type loopbackRT struct {
	cli, srv, lis int
	buf           []byte
	done          chan error
}

func newLoopbackRT() (*loopbackRT, error) {
	rt := &loopbackRT{cli: -1, srv: -1, lis: -1, buf: make([]byte, 64)}
	fail := func(what string, err error) (*loopbackRT, error) {
		_ = rt.close()
		return nil, fmt.Errorf("loopback request benchmark: %s: %w", what, err)
	}
	var err error
	if rt.lis, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return fail("socket", err)
	}
	if err := unix.Bind(rt.lis, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return fail("bind 127.0.0.1:0", err)
	}
	if err := unix.Listen(rt.lis, 1); err != nil {
		return fail("listen", err)
	}
	sa, err := unix.Getsockname(rt.lis)
	if err != nil {
		return fail("getsockname", err)
	}
	if rt.cli, err = unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0); err != nil {
		return fail("socket", err)
	}
	if err := unix.Connect(rt.cli, sa); err != nil {
		return fail(fmt.Sprintf("connect to %v", sa), err)
	}
	if rt.srv, _, err = unix.Accept4(rt.lis, unix.SOCK_CLOEXEC); err != nil {
		return fail("accept", err)
	}
	for _, fd := range []int{rt.cli, rt.srv} {
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
			return fail("TCP_NODELAY", err)
		}
	}
	rt.done = make(chan error, 1)
	go func(fd int) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		b := make([]byte, 64)
		for {
			n, err := unix.Read(fd, b)
			if n <= 0 || err != nil {
				rt.done <- err
				return
			}
			if _, err := unix.Write(fd, b[:n]); err != nil {
				rt.done <- err
				return
			}
		}
	}(rt.srv)
	return rt, nil
}

// roundTrip sends one request and reads the whole reply.
func (rt *loopbackRT) roundTrip() error {
	if _, err := unix.Write(rt.cli, rt.buf); err != nil {
		return fmt.Errorf("loopback request: write: %w", err)
	}
	for got := 0; got < len(rt.buf); {
		n, err := unix.Read(rt.cli, rt.buf[got:])
		if err != nil || n == 0 {
			return fmt.Errorf("loopback request: read: %d bytes, %w", n, err)
		}
		got += n
	}
	return nil
}

// close shuts the client down (the server thread sees end of file and
// returns) and closes every socket.
//
// It returns the echo side's error: it ends with the client's shutdown,
// and an error there changes nothing the bench measured.
func (rt *loopbackRT) close() (echoErr error) {
	if rt.cli >= 0 {
		_ = unix.Shutdown(rt.cli, unix.SHUT_WR)
		if rt.done != nil {
			echoErr = <-rt.done
		}
		_ = unix.Close(rt.cli)
	}
	for _, fd := range []int{rt.srv, rt.lis} {
		if fd >= 0 {
			_ = unix.Close(fd)
		}
	}
	return echoErr
}

// ebpfProcessCPU returns the process's CPU seconds
// (CLOCK_PROCESS_CPUTIME_ID): a request round trip runs in two threads.
func ebpfProcessCPU() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_PROCESS_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return float64(ts.Nano()) / 1e9
}

// ebpfThreadCPU returns the calling thread's CPU seconds
// (CLOCK_THREAD_CPUTIME_ID, nanosecond resolution).
func ebpfThreadCPU() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		return 0
	}
	return float64(ts.Nano()) / 1e9
}

func ebpfMedian(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
