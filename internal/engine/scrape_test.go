package engine

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

const exposition = `# HELP rpc_latency_seconds latency
# TYPE rpc_latency_seconds summary
rpc_latency_seconds{quantile="0.5",service="a"} 0.0002
rpc_latency_seconds{quantile="0.99",service="a"} 0.0031
rpc_latency_seconds_sum{service="a"} 12.5
rpc_latency_seconds_count{service="a"} 1000
# TYPE http_request_duration_seconds histogram
http_request_duration_seconds_bucket{handler="/",le="0.001"} 10
http_request_duration_seconds_bucket{handler="/",le="0.002"} 60
http_request_duration_seconds_bucket{handler="/",le="0.004"} 90
http_request_duration_seconds_bucket{handler="/",le="+Inf"} 100
http_request_duration_seconds_sum{handler="/"} 0.2
http_request_duration_seconds_count{handler="/"} 100
# TYPE requests_total counter
requests_total 4242
up 1
`

func decode(t *testing.T, body string) map[string]*dto.MetricFamily {
	t.Helper()
	fams, err := DecodeFamilies(strings.NewReader(body), expfmt.NewFormat(expfmt.TypeTextPlain))
	if err != nil {
		t.Fatal(err)
	}
	return fams
}

func TestSampleValueAndQuantiles(t *testing.T) {
	fams := decode(t, exposition)
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"rpc_latency_seconds", map[string]string{"quantile": "0.99"}, 0.0031},
		{"rpc_latency_seconds", map[string]string{"quantile": "0.5", "service": "a"}, 0.0002},
		{"requests_total", nil, 4242},
		{"up", nil, 1},
	} {
		if v, err := SampleValue(fams, tc.name, tc.labels); err != nil || v != tc.want {
			t.Errorf("%s%v = %v, %v; want %v", tc.name, tc.labels, v, err, tc.want)
		}
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   string
	}{
		{"rpc_latency_seconds", map[string]string{"quantile": "0.999"}, "no quantile 0.999"},
		{"rpc_latency_seconds", nil, "give the quantile label"},
		{"nope", nil, "not exposed"},
		{"requests_total", map[string]string{"job": "x"}, "no such sample"},
		{"http_request_duration_seconds", nil, "read it with a quantile"},
	} {
		if _, err := SampleValue(fams, tc.name, tc.labels); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s%v: error %v, want %q", tc.name, tc.labels, err, tc.want)
		}
	}
	b, err := HistogramBuckets(fams, "http_request_duration_seconds", map[string]string{"handler": "/"})
	if err != nil {
		t.Fatal(err)
	}
	// p50: rank 50 in (0.001, 0.002] holding 10..60: 0.001 + 0.001*40/50.
	if q, ok := b.Quantile(0.5); !ok || math.Abs(q-0.0018) > 1e-9 {
		t.Errorf("p50 = %v %v, want 0.0018", q, ok)
	}
	// p99 falls in +Inf: the highest finite bound.
	if q, ok := b.Quantile(0.99); !ok || q != 0.004 {
		t.Errorf("p99 = %v %v, want 0.004", q, ok)
	}
	if _, err := HistogramBuckets(fams, "requests_total", nil); err == nil {
		t.Error("a counter read as a histogram")
	}
	// The interval's histogram: 100 more observations, all under 1 ms.
	later := decode(t, strings.NewReplacer(`le="0.001"} 10`, `le="0.001"} 110`, `le="0.002"} 60`, `le="0.002"} 160`,
		`le="0.004"} 90`, `le="0.004"} 190`, `le="+Inf"} 100`, `le="+Inf"} 200`).Replace(exposition))
	b2, _ := HistogramBuckets(later, "http_request_duration_seconds", map[string]string{"handler": "/"})
	d := b2.Since(b)
	if q, ok := d.Quantile(0.99); d.Total() != 100 || !ok || q > 0.001 {
		t.Errorf("interval: total %v p99 %v, want 100 observations under 1ms", d.Total(), q)
	}
	if e := b.Since(b2); e.Total() != b.Total() {
		t.Errorf("counts that fell (a restart) give the new histogram, got total %v", e.Total())
	}
	if _, ok := (Buckets{}).Quantile(0.5); ok {
		t.Error("an empty histogram has a quantile")
	}
}

func TestScrapeOverHTTPAndErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/bad" {
			fmt.Fprint(w, "m{a=\"x} 1\n")
			return
		}
		if r.URL.Path == "/gone" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		fmt.Fprint(w, exposition)
	}))
	defer srv.Close()
	ctx := context.Background()
	if v, err := Scrape(ctx, srv.Client(), srv.URL+"/metrics", "rpc_latency_seconds", map[string]string{"quantile": "0.99"}); err != nil || v != 0.0031 {
		t.Errorf("Scrape = %v %v", v, err)
	}
	if _, err := Scrape(ctx, srv.Client(), srv.URL+"/bad", "m", nil); err == nil || !strings.Contains(err.Error(), "/bad") {
		t.Errorf("malformed exposition: %v", err)
	}
	if _, err := Scrape(ctx, srv.Client(), srv.URL+"/gone", "m", nil); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("404: %v", err)
	}
}
