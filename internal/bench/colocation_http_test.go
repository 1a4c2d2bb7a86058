package bench

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestReadHTTPReply(t *testing.T) {
	for _, tc := range []struct {
		name     string
		reply    string
		replyErr bool   // an error reply: the connection goes on
		errLike  string // another error
	}{
		{name: "content-length", reply: "HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello"},
		{name: "header case and spaces", reply: "HTTP/1.1 200 OK\r\ncontent-length:   3  \r\n\r\nabc"},
		{name: "no reason phrase", reply: "HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"},
		{name: "chunked", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n"},
		{name: "chunked with trailer, beats content-length", reply: "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n0\r\nX-Trailer: 1\r\n\r\n"},
		{name: "interim 100 skipped", reply: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"},
		{name: "304 has no body", reply: "HTTP/1.1 304 Not Modified\r\nContent-Length: 1234\r\n\r\n", replyErr: true},
		{name: "404", reply: "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found", replyErr: true},
		{name: "500 chunked", reply: "HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n4\r\noops\r\n0\r\n\r\n", replyErr: true},
		{name: "not http", reply: "STORED\r\n", errLike: "malformed status line"},
		{name: "bad code", reply: "HTTP/1.1 2x0 OK\r\n\r\n", errLike: "malformed status line"},
		{name: "bad content-length", reply: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", errLike: "malformed header"},
		{name: "conflicting content-length", reply: "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", errLike: "malformed header"},
		{name: "header without colon", reply: "HTTP/1.1 200 OK\r\nContent-Length 1\r\n\r\na", errLike: "malformed header"},
		{name: "no length", reply: "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody", errLike: "cannot be delimited"},
		{name: "gzip only", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", errLike: "cannot be delimited"},
		{name: "bad chunk size", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", errLike: "malformed chunk size"},
		{name: "chunk too long", reply: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n", errLike: "not followed by CRLF"},
	} {
		r := bufio.NewReader(strings.NewReader(tc.reply + "NEXT\r\n"))
		err := readHTTPReply(r)
		var re replyError
		switch {
		case tc.errLike != "":
			if err == nil || errors.As(err, &re) || !strings.Contains(err.Error(), tc.errLike) {
				t.Errorf("%s: err %v, want a connection error with %q", tc.name, err, tc.errLike)
			}
			continue
		case tc.replyErr:
			if !errors.As(err, &re) || !strings.Contains(re.Error(), tc.reply[:12]) {
				t.Errorf("%s: err %v, want a replyError naming the status", tc.name, err)
			}
		case err != nil:
			t.Errorf("%s: %v", tc.name, err)
		}
		// The whole reply was consumed, and no more: the connection is usable.
		if rest, _ := r.ReadString('\n'); rest != "NEXT\r\n" {
			t.Errorf("%s: left %q unread", tc.name, rest)
		}
	}
}

// TestReadHTTPReplyTruncated cuts a reply at every byte: each cut is an
// error other than an error reply, io.ErrUnexpectedEOF once a reply started.
func TestReadHTTPReplyTruncated(t *testing.T) {
	for _, full := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	} {
		if err := readHTTPReply(bufio.NewReader(strings.NewReader(full))); err != nil && !strings.Contains(full, "404") {
			t.Fatalf("%q whole: %v", full, err)
		}
		for n := range len(full) {
			err := readHTTPReply(bufio.NewReader(strings.NewReader(full[:n])))
			var re replyError
			if err == nil || errors.As(err, &re) {
				t.Errorf("%q cut at %d: err %v, want a connection error", full, n, err)
				continue
			}
			// A cut within the status line leaves no line to parse: plain EOF.
			if n > strings.Index(full, "\n") && !errors.Is(err, io.ErrUnexpectedEOF) {
				t.Errorf("%q cut at %d: err %v, want io.ErrUnexpectedEOF", full, n, err)
			}
		}
	}
}

// startHTTPServer serves 1 KiB bodies on every path, with Content-Length on
// even requests and chunked on odd ones; on /flaky every 4th request it
// serves is a 500. It counts the requests it serves.
func startHTTPServer(t *testing.T) (*httptest.Server, *atomic.Int64) {
	t.Helper()
	var served atomic.Int64
	body := strings.Repeat("x", 1024)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := served.Add(1)
		if r.URL.Path == "/flaky" && n%4 == 0 {
			http.Error(w, "flaky", http.StatusInternalServerError)
			return
		}
		if n%2 == 0 {
			w.Header().Set("Content-Length", "1024")
		} else {
			w.(http.Flusher).Flush() // headers out before the body: chunked
		}
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, &served
}

// TestHTTPLoadOpenLoop runs the open-loop HTTP client against net/http
// for 1 s: every request scheduled is sent and answered, pipelined over
// keep-alive connections.
func TestHTTPLoadOpenLoop(t *testing.T) {
	srv, served := startHTTPServer(t)
	h := httpLoad{Addr: strings.TrimPrefix(srv.URL, "http://"), Rate: 1000, Conns: 2, Seed: 1}
	res, err := h.Run(context.Background(), 0, time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	// 1000 req/s for 1 s over 2 connections: 500 scheduled on each.
	if res.Requests != 1000 || res.Errors != 0 {
		t.Errorf("requests %d, errors %d; want 1000 and 0", res.Requests, res.Errors)
	}
	if got := served.Load(); got != 1000 {
		t.Errorf("server served %d requests, want 1000", got)
	}
	if res.P50 <= 0 || res.P50 > res.P99 {
		t.Errorf("p50 %v, p99 %v: want 0 < p50 <= p99", res.P50, res.P99)
	}
	if res.Throughput != 1000 {
		t.Errorf("throughput %v, want 1000 replies/s", res.Throughput)
	}
}

// TestHTTPLoadErrorReplies checks that 500s are counted as errors and the
// connection goes on: every request is still answered.
func TestHTTPLoadErrorReplies(t *testing.T) {
	srv, served := startHTTPServer(t)
	h := httpLoad{Addr: strings.TrimPrefix(srv.URL, "http://"), Path: "/flaky", Rate: 400, Conns: 2}
	res, err := h.Run(context.Background(), 0, time.Second, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests != 300 || res.Errors != 100 {
		t.Errorf("requests %d, errors %d; want 300 and 100 (every 4th a 500)", res.Requests, res.Errors)
	}
	if got := served.Load(); got != 400 {
		t.Errorf("server served %d requests, want 400", got)
	}
}

// TestHTTPLoadRefused: a server that is not there fails the run, naming
// the address.
func TestHTTPLoadRefused(t *testing.T) {
	srv, _ := startHTTPServer(t)
	addr := strings.TrimPrefix(srv.URL, "http://")
	srv.Close()
	_, err := httpLoad{Addr: addr, Rate: 100}.Run(context.Background(), 0, 100*time.Millisecond, time.Second)
	if err == nil || !strings.Contains(err.Error(), addr) {
		t.Errorf("Run against a closed port: %v, want an error naming %s", err, addr)
	}
}

// TestColocationSetupNginxClient: wrk is needed for the wrk client only,
// and an unknown client is refused.
func TestColocationSetupNginxClient(t *testing.T) {
	bin := t.TempDir() // a PATH with nginx and nothing else
	if err := os.WriteFile(filepath.Join(bin, "nginx"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	opts := ColocationOptions{Services: []string{"nginx"}, Cases: []string{CaseAlone}}
	got, _, err := colocationSetup(opts)
	if err != nil || got.NginxClient != NginxClientOpen {
		t.Errorf("default client: %q, err %v; want %q and no error (wrk not needed)", got.NginxClient, err, NginxClientOpen)
	}
	opts.NginxClient = NginxClientWrk
	var missing *MissingProgramsError
	if _, _, err := colocationSetup(opts); !errors.As(err, &missing) || !slices.Equal(missing.Programs, []string{"wrk"}) {
		t.Errorf("wrk client without wrk: err %v, want wrk missing", err)
	}
	opts.NginxClient = "wrk2"
	if _, _, err := colocationSetup(opts); err == nil || !strings.Contains(err.Error(), `nginx client "wrk2"`) {
		t.Errorf("client wrk2: err %v, want it refused", err)
	}
}
