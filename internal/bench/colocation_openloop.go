package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

// loadResult is what a load generator measured over its measurement window.
type loadResult struct {
	P50, P99   time.Duration
	Throughput float64 // replies per second (requests per second for wrk)
	Requests   int     // replies measured
	Errors     int     // error replies, lost replies and socket errors
	// IntervalP99 is the p99 of each second of the measurement window (by
	// scheduled send time); 0 for a second without a reply. Only the
	// open-loop clients fill it in.
	IntervalP99 []time.Duration
}

// loadProtocol is what openLoop needs of a request-reply protocol whose
// replies come in request order on a connection (pipelining).
type loadProtocol interface {
	// writeRequest writes the next request of a connection to w, drawing
	// any randomness from rng (the connection's own), and returns a tag
	// that readReply gets with the request's reply. Write errors stay in w
	// (a bufio.Writer keeps its first) for the engine's next Flush.
	writeRequest(w *bufio.Writer, rng *rand.Rand) (tag int)
	// readReply reads one whole reply from r. A replyError is an error
	// reply that leaves the connection usable (counted, and reading goes
	// on); any other error ends the connection.
	readReply(r *bufio.Reader, tag int) error
}

// openLoop is an open-loop load generator over Conns TCP connections: each
// connection sends requests on a fixed schedule whether or not earlier ones
// were answered (pipelining them), so a slow server shows as queueing
// latency instead of as fewer requests sent (no coordinated omission). A
// request's latency runs from its scheduled send time to its reply.
type openLoop struct {
	Service string  // names the server in errors: "memcached", "http"
	Addr    string  // host:port
	Rate    float64 // requests per second, all connections together
	Conns   int     // connections, at least 1
	Seed    uint64  // connection i draws from rand.NewPCG(Seed, i)
}

// pending is a request sent and not yet answered.
type pending struct {
	due time.Time // scheduled send time
	tag int       // from writeRequest, for readReply
}

// run offers load for warmup+measure and returns what it measured over the
// last measure (requests scheduled in that window). It waits up to grace
// after the window for replies still outstanding; those that do not come are
// counted as errors, as are error replies and the requests outstanding on a
// connection that failed. A connection that fails for another reason than
// the grace deadline fails the run; so does cancellation (ctx.Err()).
func (o openLoop) run(ctx context.Context, proto loadProtocol, warmup, measure, grace time.Duration) (loadResult, error) {
	if o.Rate <= 0 {
		return loadResult{}, fmt.Errorf("%s load: rate %v: want a positive rate", o.Service, o.Rate)
	}
	if o.Conns <= 0 {
		return loadResult{}, fmt.Errorf("%s load: %d connections: want at least 1", o.Service, o.Conns)
	}
	conns := make([]net.Conn, 0, o.Conns)
	defer func() {
		for _, c := range conns {
			_ = c.Close() // load generator connections: nothing to report on close
		}
	}()
	var d net.Dialer
	for range o.Conns {
		c, err := d.DialContext(ctx, "tcp", o.Addr)
		if err != nil {
			return loadResult{}, fmt.Errorf("%s %s: %w", o.Service, o.Addr, err)
		}
		conns = append(conns, c)
	}
	start := time.Now().Add(10 * time.Millisecond)
	winStart := start.Add(warmup)
	winEnd := winStart.Add(measure)
	interval := time.Duration(float64(time.Second) * float64(o.Conns) / o.Rate)
	if interval <= 0 {
		return loadResult{}, fmt.Errorf("%s load: rate %v over %d connections: interval under 1ns", o.Service, o.Rate, o.Conns)
	}

	type connResult struct {
		lat    []time.Duration
		sec    []int // the second of the window each of lat was due in
		errors int
		err    error
	}
	results := make([]connResult, o.Conns)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-stop:
		}
		// Unblock readers and writers on cancellation.
		if ctx.Err() != nil {
			for _, c := range conns {
				_ = c.SetDeadline(time.Now())
			}
		}
	}()
	defer close(stop)
	for ci, c := range conns {
		wg.Add(2)
		queue := make(chan pending, int(o.Rate*(warmup+measure).Seconds())/o.Conns+1024)
		rng := rand.New(rand.NewPCG(o.Seed, uint64(ci)))
		offset := time.Duration(int64(interval) * int64(ci) / int64(o.Conns))
		// Sender: every request due is sent; when it falls behind, it sends
		// the late ones at once, each keeping its scheduled time.
		go func() {
			defer wg.Done()
			defer close(queue)
			w := bufio.NewWriter(c)
			for i := 0; ; i++ {
				due := start.Add(offset + time.Duration(i)*interval)
				if ctx.Err() != nil {
					return
				}
				if !due.Before(winEnd) {
					_ = w.Flush() // requests sent late are still in the buffer
					return
				}
				if wait := time.Until(due); wait > 0 {
					if w.Buffered() > 0 {
						if err := w.Flush(); err != nil {
							return
						}
					}
					time.Sleep(wait)
				}
				tag := proto.writeRequest(w, rng)
				select {
				case queue <- pending{due: due, tag: tag}:
				default:
					return // the server stopped answering long ago
				}
				if time.Until(start.Add(offset+time.Duration(i+1)*interval)) > 0 {
					if err := w.Flush(); err != nil {
						return
					}
				}
			}
		}()
		// Reader: replies come in request order on a connection.
		go func() {
			defer wg.Done()
			res := &results[ci]
			r := bufio.NewReader(c)
			for p := range queue {
				err := proto.readReply(r, p.tag)
				now := time.Now()
				inWindow := !p.due.Before(winStart) && p.due.Before(winEnd)
				if err != nil {
					var re replyError
					if errors.As(err, &re) {
						if inWindow {
							res.errors++
						}
						continue
					}
					// Connection failed or timed out: the rest are lost.
					if inWindow {
						res.errors++
					}
					for p := range queue {
						if !p.due.Before(winStart) && p.due.Before(winEnd) {
							res.errors++
						}
					}
					if ctx.Err() == nil && !errors.Is(err, os.ErrDeadlineExceeded) {
						res.err = err
					}
					return
				}
				if inWindow {
					res.lat = append(res.lat, now.Sub(p.due))
					res.sec = append(res.sec, int(p.due.Sub(winStart)/time.Second))
				}
			}
		}()
		// The reader waits for a reply at most until the grace period ends.
		_ = c.SetReadDeadline(winEnd.Add(grace))
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return loadResult{}, err
	}
	var all []time.Duration
	var out loadResult
	secs := make([][]time.Duration, int((measure+time.Second-1)/time.Second))
	for _, r := range results {
		if r.err != nil {
			return loadResult{}, fmt.Errorf("%s %s: %w", o.Service, o.Addr, r.err)
		}
		all = append(all, r.lat...)
		out.Errors += r.errors
		for i, s := range r.sec {
			if s >= 0 && s < len(secs) {
				secs[s] = append(secs[s], r.lat[i])
			}
		}
	}
	out.IntervalP99 = make([]time.Duration, len(secs))
	for i, l := range secs {
		out.IntervalP99[i] = percentile(l, 99)
	}
	out.Requests = len(all)
	out.Throughput = float64(len(all)) / measure.Seconds()
	out.P50 = percentile(all, 50)
	out.P99 = percentile(all, 99)
	return out, nil
}

// replyError is an error reply from the server (the connection is fine).
type replyError struct{ line string }

func (e replyError) Error() string { return "server replied " + strconv.Quote(e.line) }
