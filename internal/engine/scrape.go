package engine

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// ScrapeFamilies fetches a Prometheus endpoint (text, OpenMetrics or
// protobuf, as the server answers) and decodes it with
// prometheus/common/expfmt.
func ScrapeFamilies(ctx context.Context, client *http.Client, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	req.Header.Set("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: HTTP %s", url, resp.Status)
	}
	fams, err := DecodeFamilies(io.LimitReader(resp.Body, 16<<20), expfmt.ResponseFormat(resp.Header))
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return fams, nil
}

// DecodeFamilies decodes every metric family of an exposition in format.
func DecodeFamilies(r io.Reader, format expfmt.Format) (map[string]*dto.MetricFamily, error) {
	dec := expfmt.NewDecoder(r, format)
	fams := map[string]*dto.MetricFamily{}
	for {
		mf := &dto.MetricFamily{}
		if err := dec.Decode(mf); err != nil {
			if errors.Is(err, io.EOF) {
				return fams, nil
			}
			return nil, fmt.Errorf("decode: %w", err)
		}
		fams[mf.GetName()] = mf
	}
}

// Scrape fetches a Prometheus endpoint and returns the value of the first
// sample of metric whose labels include labels (a gauge, counter or
// untyped value; a summary's quantile with the "quantile" label).
func Scrape(ctx context.Context, client *http.Client, url, metric string, labels map[string]string) (float64, error) {
	fams, err := ScrapeFamilies(ctx, client, url)
	if err != nil {
		return 0, err
	}
	v, err := SampleValue(fams, metric, labels)
	if err != nil {
		return 0, fmt.Errorf("scrape %s: %w", url, err)
	}
	return v, nil
}

// findMetric returns the family called name and its first metric whose
// labels include labels ("quantile" and "le" are not matched here).
func findMetric(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (*dto.MetricFamily, *dto.Metric, error) {
	mf, ok := fams[name]
	if !ok {
		return nil, nil, fmt.Errorf("metric %s: not exposed", name)
	}
	for _, m := range mf.GetMetric() {
		have := map[string]string{}
		for _, lp := range m.GetLabel() {
			have[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, v := range labels {
			if k != "quantile" && have[k] != v {
				match = false
				break
			}
		}
		if match {
			return mf, m, nil
		}
	}
	return nil, nil, fmt.Errorf("metric %s%s: no such sample", name, formatLabels(labels))
}

// SampleValue returns the value of metric's first sample with labels.
func SampleValue(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, error) {
	mf, m, err := findMetric(fams, name, labels)
	if err != nil {
		return 0, err
	}
	switch mf.GetType() {
	case dto.MetricType_GAUGE:
		return m.GetGauge().GetValue(), nil
	case dto.MetricType_COUNTER:
		return m.GetCounter().GetValue(), nil
	case dto.MetricType_UNTYPED:
		return m.GetUntyped().GetValue(), nil
	case dto.MetricType_SUMMARY:
		q, ok := labels["quantile"]
		if !ok {
			return 0, fmt.Errorf("metric %s is a summary: give the quantile label", name)
		}
		for _, sq := range m.GetSummary().GetQuantile() {
			if fmt.Sprint(sq.GetQuantile()) == q || fmt.Sprintf("%g", sq.GetQuantile()) == q {
				return sq.GetValue(), nil
			}
		}
		return 0, fmt.Errorf("metric %s: no quantile %s", name, q)
	}
	return 0, fmt.Errorf("metric %s is a %s: read it with a quantile", name, strings.ToLower(mf.GetType().String()))
}

// Buckets is a histogram's cumulative bucket counts by upper bound, and its
// total count: the state a latency objective differences between scrapes.
type Buckets struct {
	Upper []float64 // ascending; the last may be +Inf
	Count []float64 // cumulative
}

// HistogramBuckets returns the buckets of a histogram metric's sample.
func HistogramBuckets(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (Buckets, error) {
	mf, m, err := findMetric(fams, name, labels)
	if err != nil {
		return Buckets{}, err
	}
	if mf.GetType() != dto.MetricType_HISTOGRAM {
		return Buckets{}, fmt.Errorf("metric %s is a %s, not a histogram", name, strings.ToLower(mf.GetType().String()))
	}
	h := m.GetHistogram()
	var b Buckets
	for _, bk := range h.GetBucket() {
		b.Upper = append(b.Upper, bk.GetUpperBound())
		b.Count = append(b.Count, float64(bk.GetCumulativeCount()))
	}
	if len(b.Upper) == 0 || !math.IsInf(b.Upper[len(b.Upper)-1], 1) {
		b.Upper = append(b.Upper, math.Inf(1))
		b.Count = append(b.Count, float64(h.GetSampleCount()))
	}
	return b, nil
}

// Since returns the buckets of the observations made after prev (the same
// histogram scraped earlier); a restarted process (counts that fell) gives
// b itself.
func (b Buckets) Since(prev Buckets) Buckets {
	if !slices.Equal(b.Upper, prev.Upper) {
		return b
	}
	d := Buckets{Upper: b.Upper, Count: make([]float64, len(b.Count))}
	for i := range b.Count {
		d.Count[i] = b.Count[i] - prev.Count[i]
		if d.Count[i] < 0 {
			return b
		}
	}
	return d
}

// Total is the number of observations.
func (b Buckets) Total() float64 {
	if len(b.Count) == 0 {
		return 0
	}
	return b.Count[len(b.Count)-1]
}

// Quantile estimates the q-quantile by linear interpolation within the
// bucket that holds it, as PromQL's histogram_quantile does: the lower
// bound of the first bucket is 0, and a quantile in the +Inf bucket is the
// highest finite bound. ok is false with no observations.
func (b Buckets) Quantile(q float64) (float64, bool) {
	total := b.Total()
	if total <= 0 || q < 0 || q > 1 {
		return 0, false
	}
	rank := q * total
	i := sort.Search(len(b.Count), func(i int) bool { return b.Count[i] >= rank })
	if i >= len(b.Count) {
		i = len(b.Count) - 1
	}
	if math.IsInf(b.Upper[i], 1) {
		if i == 0 {
			return 0, false
		}
		return b.Upper[i-1], true
	}
	lower, below := 0.0, 0.0
	if i > 0 {
		lower, below = b.Upper[i-1], b.Count[i-1]
	}
	in := b.Count[i] - below
	if in <= 0 {
		return b.Upper[i], true
	}
	return lower + (b.Upper[i]-lower)*(rank-below)/in, true
}
