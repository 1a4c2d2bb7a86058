package api

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"sculpt/internal/dna"
)

// busySnapshot is an interval of n workloads, each with 30 genes and a
// 32-long embedding, as a busy machine would publish.
func busySnapshot(n, tick int) *Snapshot {
	snap := fixture()
	snap.Tick, snap.Time = tick, snap.Time.Add(time.Duration(tick)*time.Second)
	snap.Workloads = nil
	for i := range n {
		g := dna.Genes{}
		for j := range 30 {
			g[fmt.Sprintf("gene_%02d", j)] = float64(i*j%97) / 7
		}
		e := make([]float64, 32)
		for j := range e {
			e[j] = float64((i*31+j*17+tick)%101) / 101
		}
		snap.Workloads = append(snap.Workloads, dna.DNA{ID: fmt.Sprintf("tree:%d@1", 1000+i), Name: fmt.Sprintf("w%d", i),
			Genes: g, Embedding: e, Archetype: []string{"cpu-bound", "latency-critical", "idle"}[i%3]})
	}
	return snap
}

// BenchmarkPublish is what the API adds to each interval of the loop
// (metrics counters and the genes' history), 200 workloads.
func BenchmarkPublish(b *testing.B) {
	s := New(Options{})
	snaps := make([]*Snapshot, 16)
	for i := range snaps {
		snaps[i] = busySnapshot(200, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		snap := *snaps[i%len(snaps)]
		snap.Time = snap.Time.Add(time.Duration(i) * time.Hour) // a new interval each time
		s.Publish(&snap)
	}
}

// BenchmarkDashboardPoll is one poll of an open dashboard with a workload
// selected (the reads app.js makes once per interval: the history only
// since the last frame it holds), 200 workloads, through a real HTTP
// server: the cost an open dashboard adds per interval.
func BenchmarkDashboardPoll(b *testing.B) {
	s := New(Options{})
	for i := range 240 {
		s.Publish(busySnapshot(200, i))
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	paths := []string{"/v1/status", "/v1/workloads", "/v1/plan", "/v1/map", "/v1/objectives", "/v1/journal",
		"/v1/audit?after=1&limit=1000"}
	get := func(p string) {
		resp, err := ts.Client().Get(ts.URL + p)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d", p, resp.StatusCode)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	defer func() { b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op") }()
	for i := range b.N {
		if i%4 == 0 { // a new interval every few polls: the map is projected again
			b.StopTimer()
			s.Publish(busySnapshot(200, 240+i))
			b.StartTimer()
		}
		for _, p := range paths {
			get(p)
		}
		get("/v1/history?workload=w7&since=" + url.QueryEscape(s.snapshot().Time.Add(-time.Nanosecond).Format(time.RFC3339Nano)))
	}
}

// cpuTime is the CPU this process has used (user and system, from
// /proc/self/stat in USER_HZ ticks of 10 ms; the benchmarks run for
// seconds): on a crowded machine, what a poll costs is its CPU, not its
// wall time. It counts the client's side of the requests too, so it is an
// upper bound.
func cpuTime(b *testing.B) time.Duration {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		b.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		b.Fatalf("/proc/self/stat: unexpected %q", data)
	}
	var ticks int64
	for _, v := range f[11:13] { // utime, stime
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			b.Fatalf("/proc/self/stat: %v", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// BenchmarkMetricsScrape is one Prometheus scrape of /metrics (200
// workloads, the exported cap's worth of genes) through a real HTTP
// server: the cost a scraping Prometheus adds per scrape interval.
func BenchmarkMetricsScrape(b *testing.B) {
	s := New(Options{})
	for i := range 3 {
		s.Publish(busySnapshot(200, i))
	}
	ts := httptest.NewServer(s)
	defer ts.Close()
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	defer func() { b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(time.Millisecond)/float64(b.N), "cpu-ms/op") }()
	for range b.N {
		resp, err := ts.Client().Get(ts.URL + "/metrics")
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK || n == 0 {
			b.Fatalf("GET /metrics: %d, %d bytes", resp.StatusCode, n)
		}
	}
}
