package bench

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"time"
)

// memcacheLoad is an open-loop load generator (openLoop) for memcached's
// text protocol.
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

// Run offers load for warmup+measure and returns what it measured over the
// last measure (requests scheduled in that window), with openLoop's rules.
func (m memcacheLoad) Run(ctx context.Context, warmup, measure, grace time.Duration) (loadResult, error) {
	m = m.withDefaults()
	o := openLoop{Service: "memcached", Addr: m.Addr, Rate: m.Rate, Conns: m.Conns, Seed: m.Seed}
	return o.run(ctx, memcacheProtocol{m: m, val: bytes.Repeat([]byte{'v'}, m.ValueSize)}, warmup, measure, grace)
}

// memcacheProtocol is memcached's text protocol for openLoop: gets and sets
// (SetFrac of them) of random keys. The tag of a request is 1 for a get.
type memcacheProtocol struct {
	m   memcacheLoad
	val []byte // the value of every set
}

var _ loadProtocol = memcacheProtocol{}

func (p memcacheProtocol) writeRequest(w *bufio.Writer, rng *rand.Rand) int {
	key := p.m.key(rng.IntN(p.m.Keys))
	// A bufio.Writer keeps its first error; the engine's next Flush returns it.
	if rng.Float64() >= p.m.SetFrac {
		_, _ = w.WriteString("get ")
		_, _ = w.WriteString(key)
		_, _ = w.WriteString("\r\n")
		return 1
	}
	fmt.Fprintf(w, "set %s 0 0 %d\r\n", key, p.m.ValueSize)
	_, _ = w.Write(p.val)
	_, _ = w.WriteString("\r\n")
	return 0
}

func (p memcacheProtocol) readReply(r *bufio.Reader, tag int) error {
	_, err := readMemcacheReply(r, tag == 1)
	return err
}

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
