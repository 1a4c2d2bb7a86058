package bench

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "colocation", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseWrk(t *testing.T) {
	// Real output of Debian's wrk 4.1.0 against nginx next to the antagonists.
	got, err := parseWrk(readFixture(t, "wrk-4.1.txt"))
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{P50: 412 * time.Microsecond, P99: 1300 * time.Millisecond, RequestsSec: 894.63, Requests: 9750}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestParseWrkErrors(t *testing.T) {
	out := `Running 2s test @ http://127.0.0.1:8080/
  1 threads and 8 connections
  Latency Distribution
     50%   95.00us
     75%  120.00us
     90%  150.00us
     99%    2.50ms
  100 requests in 2.00s, 10.00KB read
  Socket errors: connect 1, read 2, write 3, timeout 4
  Non-2xx or 3xx responses: 5
Requests/sec:     50.00
`
	got, err := parseWrk([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	want := wrkResult{P50: 95 * time.Microsecond, P99: 2500 * time.Microsecond, RequestsSec: 50, Requests: 100, Errors: 15}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}

	// Without --latency there is no distribution: an error, not zeros.
	noDist := "Running 2s test\n  100 requests in 2.00s, 10.00KB read\nRequests/sec:     50.00\n"
	if _, err := parseWrk([]byte(noDist)); err == nil || !strings.Contains(err.Error(), "--latency") {
		t.Errorf("output without a latency distribution: err %v, want one naming --latency", err)
	}
	bad := strings.Replace(out, "2.50ms", "2.50xs", 1)
	if _, err := parseWrk([]byte(bad)); err == nil || !strings.Contains(err.Error(), "2.50xs") {
		t.Errorf("bad latency figure: err %v, want one naming it", err)
	}
}

func TestParseWrkDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"812.00us": 812 * time.Microsecond,
		"1.21ms":   1210 * time.Microsecond,
		"2.00s":    2 * time.Second,
		"1.50m":    90 * time.Second,
	} {
		got, err := parseWrkDuration(in)
		if err != nil || got != want {
			t.Errorf("%q: got %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "12", "abcms"} {
		if _, err := parseWrkDuration(in); err == nil {
			t.Errorf("%q: no error", in)
		}
	}
}

func TestParseStressNGMetrics(t *testing.T) {
	for _, tc := range []struct {
		fixture string
		want    map[string]float64
	}{
		// stress-ng 0.15 (Debian 12): "metrc:" lines, miscellaneous metrics after the table.
		{"stress-ng-0.15.txt", map[string]float64{"cpu": 371.12, "cache": 43719.60}},
		// Older versions print the table with "info:".
		{"stress-ng-info-prefix.txt", map[string]float64{"vm": 2140.32, "hdd": 1020.94}},
	} {
		got, err := parseStressNGMetrics(readFixture(t, tc.fixture))
		if err != nil {
			t.Errorf("%s: %v", tc.fixture, err)
			continue
		}
		if len(got) != len(tc.want) {
			t.Errorf("%s: got %v, want %v", tc.fixture, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", tc.fixture, k, got[k], v)
			}
		}
	}
	// Killed before the end: no table, an error quoting the output.
	if _, err := parseStressNGMetrics(readFixture(t, "stress-ng-killed.txt")); err == nil || !strings.Contains(err.Error(), "dispatching hogs") {
		t.Errorf("output without metrics: err %v, want one quoting the output", err)
	}
}

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 100; i >= 1; i-- {
		ds = append(ds, time.Duration(i))
	}
	if got := percentile(ds, 50); got != 50 {
		t.Errorf("p50 of 1..100: %v", got)
	}
	if got := percentile(ds, 99); got != 99 {
		t.Errorf("p99 of 1..100: %v", got)
	}
	if got := percentile(ds, 100); got != 100 {
		t.Errorf("p100 of 1..100: %v", got)
	}
	if got := percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one: %v", got)
	}
	if got := percentile(nil, 99); got != 0 {
		t.Errorf("p99 of none: %v", got)
	}
}

func TestReadMemcacheReply(t *testing.T) {
	for _, tc := range []struct {
		reply    string
		get      bool
		miss     bool
		errLike  string
		replyErr bool
	}{
		{reply: "VALUE k 0 5\r\nhello\r\nEND\r\n", get: true},
		{reply: "END\r\n", get: true, miss: true},
		{reply: "STORED\r\n"},
		{reply: "SERVER_ERROR out of memory storing object\r\n", replyErr: true},
		{reply: "NOT_STORED\r\n", replyErr: true},
		{reply: "VALUE k 0 5\r\nhello\r\nVALUE\r\n", get: true, errLike: "want END"},
		{reply: "VALUE k 0 x\r\n", get: true, errLike: "malformed"},
		{reply: "STORED\r\n", get: true, errLike: "unexpected reply"},
	} {
		r := bufio.NewReader(strings.NewReader(tc.reply + "NEXT\r\n"))
		miss, err := readMemcacheReply(r, tc.get)
		switch {
		case tc.replyErr:
			var re replyError
			if !errors.As(err, &re) {
				t.Errorf("%q: err %v, want a replyError", tc.reply, err)
			}
		case tc.errLike != "":
			if err == nil || !strings.Contains(err.Error(), tc.errLike) {
				t.Errorf("%q: err %v, want %q", tc.reply, err, tc.errLike)
			}
		default:
			if err != nil || miss != tc.miss {
				t.Errorf("%q: miss %v err %v, want miss %v", tc.reply, miss, err, tc.miss)
			}
			// The whole reply was consumed, and no more.
			if rest, _ := r.ReadString('\n'); rest != "NEXT\r\n" {
				t.Errorf("%q: left %q unread", tc.reply, rest)
			}
		}
	}
}
