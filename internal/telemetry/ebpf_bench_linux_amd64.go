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
	var gOff, gOn, gAdd, pOff, pOn, pAdd, cpu []float64
	res := EBPFOverhead{Rounds: o.Rounds, Calls: o.Calls, Workloads: o.Workloads}
	for r := 0; r < o.Rounds; r++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		off := func() (float64, float64) { return getppid(), pipeRT() }
		g0, p0 := off()
		c, err := NewEBPFCollector(EBPFOptions{})
		if err != nil {
			return res, err
		}
		g1, p1 := getppid(), pipeRT()
		sec, chans, err := c.benchCollect(ctx, o.Workloads, o.Collects)
		// A link left attached would inflate the next "off" measurement.
		if err := errors.Join(err, c.Close()); err != nil {
			return res, err
		}
		// The second "off" measurement brackets the "on" one, so drift
		// (other tenants of the machine) cancels in the difference.
		g2, p2 := off()
		if pipeErr != nil {
			return res, pipeErr
		}
		gOff = append(gOff, (g0+g2)/2)
		pOff = append(pOff, (p0+p2)/2)
		gOn = append(gOn, g1)
		pOn = append(pOn, p1)
		gAdd = append(gAdd, g1-(g0+g2)/2)
		pAdd = append(pAdd, p1-(p0+p2)/2)
		cpu = append(cpu, sec)
		res.Channels = chans
	}
	res.GetppidNsOff, res.GetppidNsOn, res.GetppidNsAdded = ebpfMedian(gOff), ebpfMedian(gOn), ebpfMedian(gAdd)
	res.PipeNsOff, res.PipeNsOn, res.PipeNsAdded = ebpfMedian(pOff), ebpfMedian(pOn), ebpfMedian(pAdd)
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
