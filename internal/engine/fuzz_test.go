package engine

import (
	"bytes"
	"testing"

	"github.com/prometheus/common/expfmt"

	"sculpt/internal/fuzzseed"
)

// The engine's inputs from files and endpoints it does not control: rule
// files, config files and Prometheus scrapes. Each parser reports a
// problem as a diagnostic or an error, never panics (docs/reliability.md).

// FuzzParseRules seeds from the embedded rules and the examples in
// docs/rules.md; a rule set accepted without errors also evaluates.
func FuzzParseRules(f *testing.F) {
	f.Add(DefaultRulesYAML())
	for _, b := range fuzzseed.YAMLBlocks(f, "../../docs/rules.md") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rs, diags := ParseRules("fuzz.yaml", b)
		for _, d := range diags {
			if d.Severity == "error" {
				return
			}
		}
		if rs != nil {
			_, _ = rs.Evaluate(Input{})
		}
	})
}

// FuzzParseConfig seeds from the examples in docs/config.md.
func FuzzParseConfig(f *testing.F) {
	for _, b := range fuzzseed.YAMLBlocks(f, "../../docs/config.md") {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = ParseConfig("fuzz.yaml", b) })
}

// FuzzScrape decodes an exposition in each format sculpt accepts and reads
// every family as a value and as a histogram, as an objective does.
func FuzzScrape(f *testing.F) {
	f.Add([]byte(exposition), uint8(0))
	f.Add([]byte(exposition+"# EOF\n"), uint8(2))
	formats := []expfmt.Format{
		expfmt.NewFormat(expfmt.TypeTextPlain),
		expfmt.NewFormat(expfmt.TypeProtoDelim),
		expfmt.NewFormat(expfmt.TypeOpenMetrics),
	}
	f.Fuzz(func(t *testing.T, body []byte, format uint8) {
		fams, err := DecodeFamilies(bytes.NewReader(body), formats[int(format)%len(formats)])
		if err != nil {
			return
		}
		for name := range fams {
			_, _ = SampleValue(fams, name, nil)
			b, err := HistogramBuckets(fams, name, nil)
			if err != nil {
				continue
			}
			_ = b.Total()
			_, _ = b.Since(b).Quantile(0.99)
			_, _ = b.Quantile(0.5)
		}
	})
}
