package engine

import (
	"os"
	"strings"
	"testing"

	"sculpt/internal/dna"
)

func TestDefaultRulesParseClean(t *testing.T) {
	rs, diags := ParseRules("default", DefaultRulesYAML())
	if rs == nil || len(diags) != 0 {
		t.Fatalf("default rules: %v", diags)
	}
	if len(rs.Rules) < 4 {
		t.Errorf("default rules hold %d rules", len(rs.Rules))
	}
}

// Genes of real workloads (shapes seen from `sculpt dna` on this VM): the
// default rules must tell the service from the antagonists by DNA alone.
func TestDefaultRulesTellServiceFromAntagonists(t *testing.T) {
	rs := LoadDefaultRules()
	cases := []struct {
		name  string
		genes dna.Genes
		rule  string
		cores string
		count int
	}{
		{"echo server", dna.Genes{"cpu_util": 0.35, "user_frac": 0.2, "ctx_vol_rate": 18000, "sockets": 2, "comm_peers": 1, "runq_delay_frac": 0.8}, "latency-critical-service", CoresDedicated, 1},
		{"memcached, 4 threads", dna.Genes{"cpu_util": 0.9, "ctx_vol_rate": 40000, "sockets": 70, "comm_peers": 0}, "latency-critical-service", CoresDedicated, 2},
		{"pipe pair", dna.Genes{"cpu_util": 0.5, "ctx_vol_rate": 60000, "comm_peers": 1, "sockets": 0}, "latency-critical-service", CoresDedicated, 1},
		{"cpu spinner", dna.Genes{"cpu_util": 1.0, "user_frac": 0.99, "ctx_vol_rate": 2, "sockets": 0}, "cpu-bound-batch", CoresShared, 0},
		{"spinner on a crowded machine", dna.Genes{"cpu_util": 0.27, "user_frac": 1, "runq_delay_frac": 2.68, "ctx_vol_rate": 0, "sockets": 0}, "cpu-bound-batch", CoresShared, 0},
		{"spinner starved on a very crowded machine", dna.Genes{"cpu_util": 0.02, "user_frac": 1, "runq_delay_frac": 102, "ctx_vol_rate": 0.5, "sockets": 0}, "cpu-bound-batch", CoresShared, 0},
		{"stress-ng cpu x2", dna.Genes{"cpu_util": 1.9, "ctx_vol_rate": 30, "sockets": 0}, "cpu-bound-batch", CoresShared, 0},
		{"memory streamer", dna.Genes{"cpu_util": 0.95, "user_frac": 0.3, "minflt_rate": 250000, "ctx_vol_rate": 5}, "cpu-bound-batch", CoresShared, 0},
		{"memory streamer, little cpu", dna.Genes{"cpu_util": 0.3, "minflt_rate": 250000, "ctx_vol_rate": 5}, "memory-streaming", CoresShared, 0},
		{"disk writer", dna.Genes{"cpu_util": 0.2, "ctx_vol_rate": 300, "io_write_bps": 50 << 20, "io_read_bps": 0, "sockets": 0}, "io-streaming", CoresShared, 0},
		{"busy chatty socket user with big cpu", dna.Genes{"cpu_util": 1.8, "ctx_vol_rate": 900, "sockets": 3}, "busy-other", CoresShared, 0},
		{"idle daemon", dna.Genes{"cpu_util": 0.001, "ctx_vol_rate": 1, "sockets": 3}, "", "", 0},
		{"nothing measured", dna.Genes{}, "", "", 0},
	}
	for _, c := range cases {
		m, errs := rs.Evaluate(Input{Genes: c.genes, Kind: "tree", Name: c.name, ID: "tree:1@1", PIDs: 1})
		if len(errs) > 0 {
			t.Errorf("%s: evaluation errors %v", c.name, errs)
		}
		got := ""
		if m != nil {
			got = m.Rule
		}
		if got != c.rule {
			t.Errorf("%s: rule %q, want %q", c.name, got, c.rule)
			continue
		}
		if m == nil {
			continue
		}
		if m.Want.Cores != c.cores || (c.count > 0 && m.Want.Count != c.count) {
			t.Errorf("%s: want %+v, want cores %s count %d", c.name, m.Want, c.cores, c.count)
		}
		if len(m.Genes) == 0 {
			t.Errorf("%s: the match lists no genes that led to it", c.name)
		}
	}
}

func TestParseRulesReportsEveryErrorWithRuleAndLine(t *testing.T) {
	src := `version: 1
rules:
  - name: one
    when: genes.cpu_util >
    then: {cores: dedicated}
  - name: two
    priority: x
    when: has(genes.cpu_utl) && genes.cpu_utl > 1.0
    then:
      cores: sometimes
      colour: red
  - name: three
    when: genes.cpu_util + 1.0
    then: {cores: shared, count: 2}
  - name: one
    when: "true"
    bogus: 1
  - name: five
    when: archetype == 3
    then: {cores: dedicated, count: "archetype"}
`
	rs, diags := ParseRules("bad.yaml", []byte(src))
	if rs != nil {
		t.Fatalf("a bad file gave a rule set")
	}
	want := []struct {
		line  int
		rule  string
		field string
		text  string
		sev   string
	}{
		{4, "one", "when", "CEL", "error"},
		{7, "two", "priority", "want an integer", "error"},
		{8, "two", "genes.cpu_utl", "unknown gene", "warning"},
		{10, "two", "then.cores", "sometimes", "error"},
		{11, "two", "then.colour", "unknown field", "error"},
		{13, "three", "when", "want bool", "error"},
		{14, "three", "then.count", "only to cores: dedicated", "error"},
		{15, "one", "name", "duplicate", "error"},
		{17, "one", "bogus", "unknown field", "error"},
		{19, "five", "when", "CEL", "error"},
		{20, "five", "then.count", "want a number", "error"},
	}
	for _, w := range want {
		found := false
		for _, d := range diags {
			if d.Line == w.line && d.Rule == w.rule && d.Field == w.field && d.Severity == w.sev && strings.Contains(d.Message, w.text) {
				found = true
			}
		}
		if !found {
			t.Errorf("no %s at line %d for rule %s field %s containing %q; got:\n%s", w.sev, w.line, w.rule, w.field, w.text, diagList(diags))
		}
	}
}

func diagList(ds []Diagnostic) string {
	var b strings.Builder
	for _, d := range ds {
		b.WriteString("  " + d.String() + "\n")
	}
	return b.String()
}

func TestParseRulesFileLevelErrors(t *testing.T) {
	for name, src := range map[string]string{
		"not yaml":       "rules: [",
		"no version":     "rules: []",
		"wrong version":  "version: 2\nrules: []",
		"rules not list": "version: 1\nrules: {a: 1}",
		"unknown top":    "version: 1\nrules: []\nextra: 1",
		"missing when":   "version: 1\nrules:\n  - name: a\n    then: {cores: shared}",
	} {
		if rs, diags := ParseRules(name, []byte(src)); rs != nil || len(diags) == 0 {
			t.Errorf("%s: accepted (diags %v)", name, diags)
		}
	}
}

func TestEvaluatePriorityAndAbsentGenes(t *testing.T) {
	rs, diags := ParseRules("t", []byte(`version: 1
rules:
  - name: low
    priority: 1
    when: "true"
    then: {cores: shared}
  - name: reads-without-has
    priority: 5
    when: genes.psi_cpu > 0.1
    then: {cores: shared, sched: idle}
  - name: high
    priority: 10
    when: has(genes.cpu_util) && workload.pids >= 2 && workload.kind == "unit"
    then: {cores: dedicated, count: ceil(genes.cpu_util) + 1}
`))
	if rs == nil {
		t.Fatal(diags)
	}
	m, errs := rs.Evaluate(Input{Genes: dna.Genes{"cpu_util": 1.2}, Kind: "unit", PIDs: 3})
	if m == nil || m.Rule != "high" || m.Want.Count != 3 {
		t.Fatalf("match %+v, want rule high with count 3", m)
	}
	if len(errs) != 0 {
		t.Errorf("errors %v", errs)
	}
	// psi_cpu absent: the rule reading it without has() errs and does not
	// match; the lower rule matches.
	m, errs = rs.Evaluate(Input{Genes: dna.Genes{"cpu_util": 1.2}, Kind: "tree", PIDs: 3})
	if m == nil || m.Rule != "low" {
		t.Fatalf("match %+v, want low", m)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "reads-without-has") {
		t.Errorf("errors %v, want one from reads-without-has", errs)
	}
}

// docs/rules.md documents every default rule, and its ready-to-use
// alternative rule file parses.
func TestRulesDocMatchesCode(t *testing.T) {
	doc, err := os.ReadFile("../../docs/rules.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	for _, r := range LoadDefaultRules().Rules {
		if !strings.Contains(s, "`"+r.Name+"`") {
			t.Errorf("docs/rules.md does not document default rule %s", r.Name)
		}
	}
	i := strings.Index(s, "## An alternative")
	if i < 0 {
		t.Fatal("docs/rules.md lost its alternative rule file")
	}
	block := s[i:]
	start := strings.Index(block, "```yaml\n")
	end := strings.Index(block[start+8:], "```")
	if start < 0 || end < 0 {
		t.Fatal("no yaml block in the alternative section")
	}
	if rs, diags := ParseRules("docs/rules.md", []byte(block[start+8:start+8+end])); rs == nil || len(diags) > 0 {
		t.Errorf("the alternative rules in docs/rules.md do not check clean: %v", diags)
	}
}
