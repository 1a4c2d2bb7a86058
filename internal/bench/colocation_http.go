package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"time"
)

// httpLoad is an open-loop load generator (openLoop) for HTTP/1.1: keep-alive
// connections, each carrying pipelined GETs of one path on a fixed schedule.
// Debian's wrk is closed-loop and there is no wrk2 package, hence this client.
type httpLoad struct {
	Addr  string  // host:port, also the Host header
	Path  string  // default "/index.html"
	Rate  float64 // requests per second, all connections together
	Conns int     // connections; default 4
	Seed  uint64
}

// Run offers load for warmup+measure and returns what it measured over the
// last measure (requests scheduled in that window), with openLoop's rules: a
// reply with a status other than 2xx is an error reply (counted, the
// connection goes on); a malformed reply ends the connection and fails the
// run.
func (h httpLoad) Run(ctx context.Context, warmup, measure, grace time.Duration) (loadResult, error) {
	if h.Path == "" {
		h.Path = "/index.html"
	}
	if h.Conns <= 0 {
		h.Conns = 4
	}
	req := "GET " + h.Path + " HTTP/1.1\r\nHost: " + h.Addr + "\r\nUser-Agent: sculpt-bench\r\nConnection: keep-alive\r\n\r\n"
	o := openLoop{Service: "http", Addr: h.Addr, Rate: h.Rate, Conns: h.Conns, Seed: h.Seed}
	return o.run(ctx, httpProtocol{req: []byte(req)}, warmup, measure, grace)
}

// httpProtocol is HTTP/1.1 for openLoop: the same request every time.
type httpProtocol struct{ req []byte }

var _ loadProtocol = httpProtocol{}

func (p httpProtocol) writeRequest(w *bufio.Writer, _ *rand.Rand) int {
	_, _ = w.Write(p.req) // a bufio.Writer keeps its first error for the engine's Flush
	return 0
}

func (httpProtocol) readReply(r *bufio.Reader, _ int) error { return readHTTPReply(r) }

// readHTTPReply reads one HTTP/1.x reply to a GET and discards its body,
// which must be delimited by Content-Length or chunked transfer coding (the
// connection is kept open). Interim 1xx replies before it are skipped. A
// status other than 2xx comes back as a replyError, after the whole reply was
// read; a reply it cannot delimit or parse, or a stream that ends within it,
// is another error (io.ErrUnexpectedEOF for the latter).
func readHTTPReply(r *bufio.Reader) error {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return err // io.EOF before a reply starts: the server closed
		}
		status := string(bytes.TrimRight(line, "\r\n"))
		code, err := parseHTTPStatus(status)
		if err != nil {
			return err
		}
		length, chunked, err := readHTTPHeaders(r)
		if err != nil {
			return fmt.Errorf("reply %q: %w", status, err)
		}
		switch {
		case code >= 100 && code < 200:
			if code == 101 {
				return fmt.Errorf("reply %q: switching protocols", status)
			}
			continue // interim reply: the real one follows
		case code == 204 || code == 304:
			// No body, whatever the headers say.
		case chunked:
			if err := discardChunked(r); err != nil {
				return fmt.Errorf("reply %q: chunked body: %w", status, err)
			}
		case length >= 0:
			if _, err := r.Discard(int(length)); err != nil {
				return fmt.Errorf("reply %q: body: %w", status, eofUnexpected(err))
			}
		default:
			return fmt.Errorf("reply %q: neither Content-Length nor chunked: the body cannot be delimited", status)
		}
		if code < 200 || code > 299 {
			return replyError{status}
		}
		return nil
	}
}

// parseHTTPStatus parses a status line, "HTTP/1.1 200 OK", into its code.
func parseHTTPStatus(line string) (int, error) {
	if len(line) < 12 || line[:7] != "HTTP/1." || line[8] != ' ' || (len(line) > 12 && line[12] != ' ') {
		return 0, fmt.Errorf("malformed status line %q", line)
	}
	code, err := strconv.Atoi(line[9:12])
	if err != nil || code < 100 {
		return 0, fmt.Errorf("malformed status line %q", line)
	}
	return code, nil
}

// readHTTPHeaders reads header lines up to the empty line and returns the
// Content-Length (-1 if none) and whether the body is chunked.
func readHTTPHeaders(r *bufio.Reader) (length int64, chunked bool, err error) {
	length = -1
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, false, fmt.Errorf("headers: %w", eofUnexpected(err))
		}
		line = bytes.TrimRight(line, "\r\n")
		if len(line) == 0 {
			return length, chunked, nil
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || len(name) == 0 {
			return 0, false, fmt.Errorf("malformed header %q", line)
		}
		value = bytes.TrimSpace(value)
		switch {
		case bytes.EqualFold(name, []byte("Content-Length")):
			n, err := strconv.ParseInt(string(value), 10, 64)
			if err != nil || n < 0 || (length >= 0 && n != length) {
				return 0, false, fmt.Errorf("malformed header %q", line)
			}
			length = n
		case bytes.EqualFold(name, []byte("Transfer-Encoding")):
			// The last coding applied is the one that delimits the body.
			codings := bytes.Split(value, []byte{','})
			last := bytes.TrimSpace(codings[len(codings)-1])
			if !bytes.EqualFold(last, []byte("chunked")) {
				return 0, false, fmt.Errorf("transfer coding %q: the body cannot be delimited", value)
			}
			chunked = true
		}
	}
}

// discardChunked reads and discards a chunked body and its trailers.
func discardChunked(r *bufio.Reader) error {
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return eofUnexpected(err)
		}
		line = bytes.TrimRight(line, "\r\n")
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i] // chunk extensions
		}
		size, err := strconv.ParseInt(string(bytes.TrimSpace(line)), 16, 64)
		if err != nil || size < 0 {
			return fmt.Errorf("malformed chunk size %q", line)
		}
		if size == 0 {
			break
		}
		if _, err := r.Discard(int(size)); err != nil {
			return eofUnexpected(err)
		}
		crlf, err := r.Peek(2)
		if err != nil {
			return eofUnexpected(err)
		}
		if string(crlf) != "\r\n" {
			return fmt.Errorf("chunk of %d bytes not followed by CRLF", size)
		}
		_, _ = r.Discard(2) // peeked
	}
	for { // trailers, up to the empty line
		line, err := r.ReadSlice('\n')
		if err != nil {
			return eofUnexpected(err)
		}
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return nil
		}
	}
}

// eofUnexpected turns io.EOF within a reply into io.ErrUnexpectedEOF.
func eofUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
