package telemetry

import (
	"io"
	"math"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"sculpt/internal/testload"
	"sculpt/internal/workload"
)

// reqDrive sends n requests to a reqserver at addr over conns keep-alive
// connections, round robin, one request in flight at a time and one
// started every gap; after half of them it closes every connection and
// dials new ones (connection churn). It returns each request's latency as
// the client measured it, from just before its write to the end of its
// read.
func reqDrive(t *testing.T, network, addr string, conns, n int, gap time.Duration) []time.Duration {
	t.Helper()
	dial := func() []net.Conn {
		cs := make([]net.Conn, conns)
		for i := range cs {
			var err error
			for try := 0; try < 200; try++ { // the server may still be starting
				if cs[i], err = net.Dial(network, addr); err == nil {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				t.Fatalf("dial %s %s: %v", network, addr, err)
			}
		}
		return cs
	}
	closeAll := func(cs []net.Conn) {
		for _, c := range cs {
			_ = c.Close()
		}
	}
	cs := dial()
	buf := make([]byte, testload.ReqSize)
	lat := make([]time.Duration, 0, n)
	next := time.Now()
	for i := 0; i < n; i++ {
		if i == n/2 {
			closeAll(cs)
			cs = dial()
		}
		if d := time.Until(next); d > 0 {
			time.Sleep(d)
		}
		next = next.Add(gap)
		c := cs[i%conns]
		start := time.Now()
		if _, err := c.Write(buf); err != nil {
			t.Fatalf("request %d: write: %v", i, err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			t.Fatalf("request %d: read: %v", i, err)
		}
		lat = append(lat, time.Since(start))
	}
	closeAll(cs)
	return lat
}

func quantileOf(sorted []time.Duration, q float64) float64 {
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))].Seconds()
}

// TestEBPFRequestLatency: a server that spins a known time per request,
// over TCP and over a unix socket, driven by this test process as the
// client over many connections with reuse and churn. The collector counts
// exactly the requests sent; the server-side mean lies between the service
// time and the client's mean (the server's interval is inside the
// client's); p50 and p99 lie within the bucket error of the same bounds;
// and the client (this process) served nothing.
func TestEBPFRequestLatency(t *testing.T) {
	for _, network := range []string{"tcp", "unix"} {
		t.Run(network, func(t *testing.T) {
			c := newTestEBPF(t, EBPFOptions{NoPeers: true})
			if !c.haveReq {
				t.Skipf("request hooks missing (sk_data_ready needs Linux 6.6+): %v", c.Stats().Missing)
			}
			addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
			if network == "unix" {
				addr = filepath.Join(t.TempDir(), "req.sock")
			}
			const svc = 2 * time.Millisecond
			srv := testload.Start(t, "reqserver", []string{
				"SCULPT_TESTLOAD_NET=" + network, "SCULPT_TESTLOAD_ADDR=" + addr,
				"SCULPT_TESTLOAD_SERVICE=" + svc.String(),
			})
			server := loadWorkload(t, "server", srv)
			client := workload.Workload{ID: "client", Procs: []workload.Proc{loadProc(t, os.Getpid())}}
			ws := []workload.Workload{server, client}
			s0 := ebpfSweep(t, c, ws)
			const n = 240
			lat := reqDrive(t, network, addr, 24, n, 4*time.Millisecond)
			s1 := ebpfSweep(t, c, ws)

			delta := func(m Metric) float64 {
				a, _ := procValue(s0, server, m) // absent before it served: 0
				b, ok := procValue(s1, server, m)
				if !ok {
					t.Fatalf("server: %s absent after %d requests (collector stats %+v)", m, n, c.Stats())
				}
				return b - a
			}
			if got := delta(ReqServed); got != n {
				t.Errorf("server served %v requests, client sent %d", got, n)
			}
			var hist Values
			for b := 0; b < ReqLatBuckets; b++ {
				hist.Set(ReqLatBucket0+Metric(b), delta(ReqLatBucket0+Metric(b)))
			}
			slices.Sort(lat)
			var clientSum time.Duration
			for _, l := range lat {
				clientSum += l
			}
			clientMean := clientSum.Seconds() / n
			mean := delta(ReqLatencySec) / n
			p50, ok50 := ReqLatencyQuantile(&hist, 0.5)
			p99, ok99 := ReqLatencyQuantile(&hist, 0.99)
			cp50, cp99 := quantileOf(lat, 0.5), quantileOf(lat, 0.99)
			t.Logf("%s: server mean %.3fms p50 %.3fms p99 %.3fms; client mean %.3fms p50 %.3fms p99 %.3fms; service %v",
				network, mean*1e3, p50*1e3, p99*1e3, clientMean*1e3, cp50*1e3, cp99*1e3, svc)
			if !ok50 || !ok99 {
				t.Fatalf("no quantiles from the server's histogram")
			}
			// Firm: each request's server interval lies inside the client's
			// and lasts at least the spin.
			if mean < svc.Seconds() || mean > clientMean {
				t.Errorf("server mean %.3fms outside [service %v, client mean %.3fms]", mean*1e3, svc, clientMean*1e3)
			}
			// Quantiles: the same bounds, widened by the bucket width (25%).
			if p50 < 0.75*svc.Seconds() || p50 > 1.25*cp50 {
				t.Errorf("server p50 %.3fms outside [0.75 × service, 1.25 × client p50 %.3fms]", p50*1e3, cp50*1e3)
			}
			if p99 < 0.75*svc.Seconds() || p99 > 1.25*cp99 {
				t.Errorf("server p99 %.3fms outside [0.75 × service, 1.25 × client p99 %.3fms]", p99*1e3, cp99*1e3)
			}
			// Close to what the client sees: loopback and the client's own
			// wakeups are the difference.
			if mean < 0.5*clientMean {
				t.Errorf("server mean %.3fms under half the client's %.3fms", mean*1e3, clientMean*1e3)
			}
			if _, ok := procValue(s1, client, ReqServed); ok {
				v, _ := procValue(s1, client, ReqServed)
				t.Errorf("the client (this test process) served %v requests; want none", v)
			}
		})
	}
}
