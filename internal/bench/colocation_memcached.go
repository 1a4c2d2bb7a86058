package bench

import (
	"bufio"
	"bytes"
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

// memcacheLoad is an open-loop load generator for memcached's text protocol:
// each connection sends requests on a fixed schedule whether or not earlier
// ones were answered (pipelining them), so a slow server shows as queueing
// latency instead of as fewer requests sent (no coordinated omission). A
// request's latency runs from its scheduled send time to its reply.
//
// memcaslap, the load generator Debian ships (libmemcached-tools 1.1.4), is
// closed-loop, ignores its --tps rate in that version and reports latency only
// as a power-of-two histogram, hence this client.
type memcacheLoad struct {
	Addr      string
	Rate      float64 // requests per second, all connections together
	Conns     int     // connections; default 4
	Keys      int     // key space; default 1000
	ValueSize int     // bytes per value; default 100
	SetFrac   float64 // share of requests that are sets (the rest gets); 0.1 like memaslap
	Seed      uint64
}

// loadResult is what a load generator measured over its measurement window.
type loadResult struct {
	P50, P99   time.Duration
	Throughput float64 // replies per second (requests per second for wrk)
	Requests   int     // replies measured
	Errors     int     // error replies, lost replies and socket errors
}

func (m memcacheLoad) withDefaults() memcacheLoad {
	if m.Conns <= 0 {
		m.Conns = 4
	}
	if m.Keys <= 0 {
		m.Keys = 1000
	}
	if m.ValueSize <= 0 {
		m.ValueSize = 100
	}
	return m
}

func (m memcacheLoad) key(i int) string { return "sculpt-bench:" + strconv.Itoa(i) }

// Preload stores every key once, so that gets hit.
func (m memcacheLoad) Preload(ctx context.Context) error {
	m = m.withDefaults()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", m.Addr)
	if err != nil {
		return fmt.Errorf("memcached %s: %w", m.Addr, err)
	}
	defer func() { _ = c.Close() }() // read side: the reply already proved the sets
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(dl)
	} else {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	w := bufio.NewWriter(c)
	val := bytes.Repeat([]byte{'v'}, m.ValueSize)
	for i := range m.Keys {
		// A bufio.Writer keeps its first error and Flush below returns it.
		fmt.Fprintf(w, "set %s 0 0 %d noreply\r\n", m.key(i), m.ValueSize)
		_, _ = w.Write(val)
		_, _ = w.WriteString("\r\n")
	}
	// A get of the last key confirms every set before it was processed.
	fmt.Fprintf(w, "get %s\r\n", m.key(m.Keys-1))
	if err := w.Flush(); err != nil {
		return fmt.Errorf("memcached %s: preload: %w", m.Addr, err)
	}
	r := bufio.NewReader(c)
	miss, err := readMemcacheReply(r, true)
	if err != nil {
		return fmt.Errorf("memcached %s: preload: %w", m.Addr, err)
	}
	if miss {
		return fmt.Errorf("memcached %s: preload: key %s missing after set", m.Addr, m.key(m.Keys-1))
	}
	return nil
}

// pending is a request sent and not yet answered.
type pending struct {
	due time.Time // scheduled send time
	get bool
}

// Run offers load for warmup+measure and returns what it measured over the
// last measure (requests scheduled in that window). It waits up to grace
// after the window for replies still outstanding; those that do not come are
// counted as errors.
func (m memcacheLoad) Run(ctx context.Context, warmup, measure, grace time.Duration) (loadResult, error) {
	m = m.withDefaults()
	if m.Rate <= 0 {
		return loadResult{}, fmt.Errorf("memcached load: rate %v: want a positive rate", m.Rate)
	}
	conns := make([]net.Conn, 0, m.Conns)
	defer func() {
		for _, c := range conns {
			_ = c.Close() // load generator connections: nothing to report on close
		}
	}()
	var d net.Dialer
	for range m.Conns {
		c, err := d.DialContext(ctx, "tcp", m.Addr)
		if err != nil {
			return loadResult{}, fmt.Errorf("memcached %s: %w", m.Addr, err)
		}
		conns = append(conns, c)
	}
	start := time.Now().Add(10 * time.Millisecond)
	winStart := start.Add(warmup)
	winEnd := winStart.Add(measure)
	interval := time.Duration(float64(time.Second) * float64(m.Conns) / m.Rate)
	if interval <= 0 {
		return loadResult{}, fmt.Errorf("memcached load: rate %v over %d connections: interval under 1ns", m.Rate, m.Conns)
	}

	type connResult struct {
		lat    []time.Duration
		errors int
		err    error
	}
	results := make([]connResult, m.Conns)
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
		queue := make(chan pending, int(m.Rate*(warmup+measure).Seconds())/m.Conns+1024)
		rng := rand.New(rand.NewPCG(m.Seed, uint64(ci)))
		offset := time.Duration(int64(interval) * int64(ci) / int64(m.Conns))
		// Sender: every request due is sent; when it falls behind, it sends
		// the late ones at once, each keeping its scheduled time.
		go func() {
			defer wg.Done()
			defer close(queue)
			w := bufio.NewWriter(c)
			val := bytes.Repeat([]byte{'v'}, m.ValueSize)
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
				key := m.key(rng.IntN(m.Keys))
				get := rng.Float64() >= m.SetFrac
				// A bufio.Writer keeps its first error; the next Flush returns it.
				if get {
					_, _ = w.WriteString("get ")
					_, _ = w.WriteString(key)
					_, _ = w.WriteString("\r\n")
				} else {
					fmt.Fprintf(w, "set %s 0 0 %d\r\n", key, m.ValueSize)
					_, _ = w.Write(val)
					_, _ = w.WriteString("\r\n")
				}
				select {
				case queue <- pending{due: due, get: get}:
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
				_, err := readMemcacheReply(r, p.get)
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
	for _, r := range results {
		if r.err != nil {
			return loadResult{}, fmt.Errorf("memcached %s: %w", m.Addr, r.err)
		}
		all = append(all, r.lat...)
		out.Errors += r.errors
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

// readMemcacheReply reads one reply of memcached's text protocol: to a get
// ("VALUE <key> <flags> <bytes>\r\n<data>\r\nEND\r\n", or "END\r\n" for a
// miss, reported as miss) or to a set ("STORED\r\n").
func readMemcacheReply(r *bufio.Reader, get bool) (miss bool, err error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return false, err
	}
	line = bytes.TrimRight(line, "\r\n")
	switch {
	case get && bytes.Equal(line, []byte("END")):
		return true, nil
	case get && bytes.HasPrefix(line, []byte("VALUE ")):
		f := bytes.Fields(line)
		if len(f) < 4 {
			return false, fmt.Errorf("malformed reply %q", line)
		}
		n, err := strconv.Atoi(string(f[3]))
		if err != nil || n < 0 {
			return false, fmt.Errorf("malformed reply %q", line)
		}
		if _, err := r.Discard(n + 2); err != nil {
			return false, err
		}
		end, err := r.ReadSlice('\n')
		if err != nil {
			return false, err
		}
		if !bytes.Equal(bytes.TrimRight(end, "\r\n"), []byte("END")) {
			return false, fmt.Errorf("malformed reply: %q after the value, want END", end)
		}
		return false, nil
	case !get && bytes.Equal(line, []byte("STORED")):
		return false, nil
	case bytes.HasPrefix(line, []byte("SERVER_ERROR")), bytes.HasPrefix(line, []byte("CLIENT_ERROR")),
		bytes.Equal(line, []byte("ERROR")), bytes.Equal(line, []byte("NOT_STORED")):
		return false, replyError{string(line)}
	}
	return false, fmt.Errorf("unexpected reply %q", line)
}
