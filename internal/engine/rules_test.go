package engine

import (
	"os"
	"strings"
	"testing"

	"sculpt/internal/dna"
	"sculpt/internal/hal/topology"
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
// default rules must tell the service from the antagonists by DNA alone, on
// a large machine (dedicated cores) and on a small one (the idle class).
func TestDefaultRulesTellServiceFromAntagonists(t *testing.T) {
	rs := LoadDefaultRules()
	big := Machine{CPUs: 64, Cores: 32, Nodes: 4}
	small := Machine{CPUs: 2, Cores: 2, Nodes: 1}
	cases := []struct {
		name      string
		genes     dna.Genes
		rule      string // on the big machine
		cores     string
		count     int
		smallRule string // on the small machine
		sched     string // on the small machine
	}{
		{"echo server", dna.Genes{"cpu_util": 0.35, "user_frac": 0.2, "ctx_vol_rate": 18000, "sockets": 2, "comm_peers": 1, "runq_delay_frac": 0.8}, "latency-critical-service", CoresDedicated, 1, "latency-critical-service-small", "other"},
		{"memcached, 4 threads", dna.Genes{"cpu_util": 0.9, "ctx_vol_rate": 40000, "sockets": 70, "comm_peers": 0}, "latency-critical-service", CoresDedicated, 2, "latency-critical-service-small", "other"},
		{"pipe pair", dna.Genes{"cpu_util": 0.5, "ctx_vol_rate": 60000, "comm_peers": 1, "sockets": 0}, "latency-critical-service", CoresDedicated, 1, "latency-critical-service-small", "other"},
		{"cpu spinner", dna.Genes{"cpu_util": 1.0, "user_frac": 0.99, "ctx_vol_rate": 2, "sockets": 0}, "cpu-bound-batch", CoresShared, 0, "batch-idle-small", "idle"},
		{"spinner on a crowded machine", dna.Genes{"cpu_util": 0.27, "user_frac": 1, "runq_delay_frac": 2.68, "ctx_vol_rate": 0, "sockets": 0}, "cpu-bound-batch", CoresShared, 0, "batch-idle-small", "idle"},
		{"spinner starved on a very crowded machine", dna.Genes{"cpu_util": 0.02, "user_frac": 1, "runq_delay_frac": 102, "ctx_vol_rate": 0.5, "sockets": 0}, "cpu-bound-batch", CoresShared, 0, "batch-idle-small", "idle"},
		{"stress-ng cpu x2", dna.Genes{"cpu_util": 1.9, "ctx_vol_rate": 30, "sockets": 0}, "cpu-bound-batch", CoresShared, 0, "batch-idle-small", "idle"},
		{"memory streamer", dna.Genes{"cpu_util": 0.95, "user_frac": 0.3, "minflt_rate": 250000, "ctx_vol_rate": 5}, "cpu-bound-batch", CoresShared, 0, "batch-idle-small", "idle"},
		{"memory streamer, little cpu", dna.Genes{"cpu_util": 0.3, "minflt_rate": 250000, "ctx_vol_rate": 5}, "memory-streaming", CoresShared, 0, "batch-idle-small", "idle"},
		{"disk writer", dna.Genes{"cpu_util": 0.2, "ctx_vol_rate": 300, "io_write_bps": 50 << 20, "io_read_bps": 0, "sockets": 0}, "io-streaming", CoresShared, 0, "batch-idle-small", "idle"},
		{"busy chatty socket user with big cpu", dna.Genes{"cpu_util": 1.8, "ctx_vol_rate": 900, "sockets": 3}, "busy-other", CoresShared, 0, "busy-other", ""},
		{"idle daemon", dna.Genes{"cpu_util": 0.001, "ctx_vol_rate": 1, "sockets": 3}, "", "", 0, "", ""},
		{"nothing measured", dna.Genes{}, "", "", 0, "", ""},
	}
	for _, c := range cases {
		for _, mc := range []struct {
			name    string
			machine Machine
			rule    string
		}{{"big", big, c.rule}, {"small", small, c.smallRule}} {
			m, errs := rs.Evaluate(Input{Genes: c.genes, Kind: "tree", Name: c.name, ID: "tree:1@1", PIDs: 1, Machine: mc.machine})
			if len(errs) > 0 {
				t.Errorf("%s (%s machine): evaluation errors %v", c.name, mc.name, errs)
			}
			got := ""
			if m != nil {
				got = m.Rule
			}
			if got != mc.rule {
				t.Errorf("%s (%s machine): rule %q, want %q", c.name, mc.name, got, mc.rule)
				continue
			}
			if m == nil {
				continue
			}
			if mc.name == "big" && (m.Want.Cores != c.cores || (c.count > 0 && m.Want.Count != c.count)) {
				t.Errorf("%s: want %+v, want cores %s count %d", c.name, m.Want, c.cores, c.count)
			}
			if mc.name == "small" && (m.Want.Sched != c.sched || m.Want.Cores == CoresDedicated) {
				t.Errorf("%s (small machine): want %+v, want sched %q and no dedicated cores", c.name, m.Want, c.sched)
			}
			// The genes behind the match include those its traits read
			// (the planner orders services by two of them).
			_, cpu := m.Genes["cpu_util"]
			_, vcsw := m.Genes["ctx_vol_rate"]
			if len(m.Genes) == 0 || (strings.HasPrefix(m.Rule, "latency-critical") && (!cpu || !vcsw)) {
				t.Errorf("%s (%s machine): the match lists genes %v", c.name, mc.name, m.Genes)
			}
			if len(m.Traits) == 0 {
				t.Errorf("%s (%s machine): the match lists no traits", c.name, mc.name)
			}
		}
	}
}

func TestMachineOf(t *testing.T) {
	cpu := func(id, pkg, core, node int, online bool) topology.CPU {
		return topology.CPU{ID: id, Online: online, PackageID: pkg, CoreID: core, Node: node}
	}
	got := MachineOf(topology.Topology{CPUs: []topology.CPU{
		cpu(0, 0, 0, 0, true), cpu(1, 0, 0, 0, true), // SMT siblings
		cpu(2, 0, 1, 0, true), cpu(3, 1, 0, 1, true), // core 0 of package 1 is another core
		cpu(4, 1, -1, 1, false), // offline: not counted
	}})
	if want := (Machine{CPUs: 4, Cores: 3, Nodes: 2}); got != want {
		t.Errorf("MachineOf = %+v, want %+v", got, want)
	}
	// No core topology: every CPU counts as a core.
	got = MachineOf(topology.Topology{CPUs: []topology.CPU{cpu(0, -1, -1, -1, true), cpu(1, -1, -1, -1, true)}})
	if want := (Machine{CPUs: 2, Cores: 2, Nodes: 1}); got != want {
		t.Errorf("MachineOf without core topology = %+v, want %+v", got, want)
	}
}

func TestTraits(t *testing.T) {
	rs, diags := ParseRules("t", []byte(`version: 1
traits:
  busy: has(genes.cpu_util) && genes.cpu_util > 1.0
  load: genes.cpu_util * 2.0
  big_and_busy: traits.busy && machine.cpus >= 8
rules:
  - name: both
    priority: 10
    when: traits.big_and_busy
    then: {cores: dedicated, count: traits.load}
  - name: busy
    when: traits.busy
    then: {cores: shared}
`))
	if rs == nil {
		t.Fatal(diags)
	}
	m, errs := rs.Evaluate(Input{Genes: dna.Genes{"cpu_util": 1.6}, Machine: Machine{CPUs: 16}})
	if m == nil || m.Rule != "both" || m.Want.Count != 4 || len(errs) != 0 {
		t.Fatalf("match %+v errs %v, want rule both with count ceil(3.2) = 4", m, errs)
	}
	if m.Traits["big_and_busy"] != true || m.Traits["load"] != 3.2 || m.Genes["cpu_util"] != 1.6 {
		t.Errorf("match traits %v genes %v", m.Traits, m.Genes)
	}
	m, _ = rs.Evaluate(Input{Genes: dna.Genes{"cpu_util": 1.6}, Machine: Machine{CPUs: 2}})
	if m == nil || m.Rule != "busy" {
		t.Errorf("small machine: match %+v, want busy", m)
	}
	// A trait that fails (reads an absent gene) is left out and named; the
	// rules that do not read it still match.
	m, errs = rs.Evaluate(Input{Genes: dna.Genes{}, Machine: Machine{CPUs: 16}})
	if m != nil {
		t.Errorf("no genes: match %+v", m)
	}
	if len(errs) == 0 || !strings.Contains(errs[0].Error(), `trait "load"`) {
		t.Errorf("no genes: errors %v, want one naming trait load", errs)
	}

	bad := `version: 1
traits:
  first: traits.second > 1.0
  second: 2.0
  Bad-Name: "true"
  second: 3.0
  typo: genes.cpu_utl > 1.0
  broken: genes.cpu_util >
rules:
  - name: r
    when: traits.nosuch
    then: {cores: shared}
`
	rs, diags = ParseRules("bad", []byte(bad))
	if rs != nil {
		t.Fatal("bad traits accepted")
	}
	for _, want := range []string{
		`line 3: error: traits.first: traits.second is defined below, on line 4`,
		`line 5: error: traits.Bad-Name: a trait name is lower case`,
		`line 6: error: traits.second: duplicate: also defined on line 4`,
		`line 7: warning: traits.typo: genes.cpu_utl: unknown gene`,
		`line 8: error: traits.broken: CEL: Syntax error: mismatched input '<EOF>'`,
		`line 11: error: rule "r": when: traits.nosuch: no such trait`,
	} {
		found := false
		for _, d := range diags {
			found = found || strings.HasPrefix(d.String(), want)
		}
		if !found {
			t.Errorf("no diagnostic starting %q in\n%v", want, diags)
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

// A YAML mistake is reported on its own line, not on the line of the block
// the parser was in (yaml's own "line N" is often several lines above).
func TestParseRulesYAMLErrorLine(t *testing.T) {
	for _, tc := range []struct {
		src  string
		line int
	}{
		{"version: 1\nrules:\n  - name: x\n    when: \"true\"\n    then:\n      cores: shared\n    description: {a: 1\n  - name: y\n", 7},
		{"version: 1\nrules:\n  - name: a\n    when: \"true\"\n    then:\n      cores: shared\n  - name: b\n    when: {x: [1, 2}\n", 8},
		{"version: 1\nrules:\n\t- name: a\n", 3},
	} {
		_, diags := ParseRules("f", []byte(tc.src))
		if len(diags) != 1 || diags[0].Line != tc.line || !strings.Contains(diags[0].Message, "not valid YAML") {
			t.Errorf("%q: diagnostics %v, want one YAML error on line %d", tc.src, diags, tc.line)
		}
		if len(diags) == 1 && strings.Contains(diags[0].Message, "line ") {
			t.Errorf("%q: message %q repeats the parser's own line", tc.src, diags[0].Message)
		}
	}
}

// A CEL error keeps cel-go's source line and caret on lines of their own.
func TestCELErrorDiagram(t *testing.T) {
	src := "version: 1\nrules:\n  - name: x\n    when: has(genes.cpu_util) && genes.cpu_util > \"a\"\n    then: {cores: shared}\n"
	_, diags := ParseRules("f", []byte(src))
	if len(diags) != 1 {
		t.Fatalf("diagnostics %v, want one", diags)
	}
	lines := strings.Split(diags[0].String(), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "no matching overload") || !strings.Contains(lines[0], "column 39") ||
		!strings.HasSuffix(lines[1], `genes.cpu_util > "a"`) || !strings.HasSuffix(lines[2], "^") ||
		strings.Index(lines[2], "^")-strings.Index(lines[1], "|") != strings.Index(lines[1], `> "a"`)-strings.Index(lines[1], "|") {
		t.Errorf("diagnostic\n%s\nwant the message, the expression and a caret under '>' on three lines", diags[0])
	}
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

// The dna variable: every field reads the workload's verdict; a misspelt
// field or a wrong type fails at load; comparing the archetype with
// something no classifier reports (a program name) is warned about.
func TestRulesReadLearnedDNA(t *testing.T) {
	src := `version: 1
rules:
  - name: novel-or-phase
    when: dna.novel && dna.novelty > 1.5 && dna.phase_change && dna.resembles == "memcached" && dna.classifier == "learned-v1"
    then: {cores: shared}
  - name: sure-server
    when: dna.kind == "latency-critical-server" && dna.archetype == dna.kind && dna.confidence >= 0.5
    then: {cores: any, sched: other}
`
	rs, diags := ParseRules("dna.yaml", []byte(src))
	if rs == nil || len(diags) != 0 {
		t.Fatalf("diagnostics %v", diags)
	}
	novel := Input{Archetype: dna.KindNovel, Resembles: "memcached", Novelty: 2, Novel: true, PhaseChange: true, Classifier: "learned-v1"}
	if m, errs := rs.Evaluate(novel); len(errs) > 0 || m == nil || m.Rule != "novel-or-phase" {
		t.Errorf("novel workload: %+v %v", m, errs)
	}
	novel.PhaseChange = false
	if m, _ := rs.Evaluate(novel); m != nil {
		t.Errorf("without the phase change: matched %s", m.Rule)
	}
	server := Input{Archetype: dna.ArchLatencyServer, Confidence: 0.7}
	if m, _ := rs.Evaluate(server); m == nil || m.Rule != "sure-server" {
		t.Errorf("confident server: %+v", m)
	}
	server.Confidence = 0.3
	if m, _ := rs.Evaluate(server); m != nil {
		t.Errorf("unsure server matched %s", m.Rule)
	}

	bad := `version: 1
rules:
  - name: typo
    when: dna.archtype == "idle"
    then: {cores: shared}
  - name: wrong-type
    when: dna.novelty == "high"
    then: {cores: shared}
`
	if rs, diags := ParseRules("bad.yaml", []byte(bad)); rs != nil || len(diags) != 2 {
		t.Errorf("misspelt field and wrong type: %v", diags)
	}
	prog := `version: 1
traits:
  vm: archetype == "stress-vm"
rules:
  - name: by-program
    when: '"sysbench-memory" == dna.kind || traits.vm || dna.kind == "unknown" || dna.archetype != "novel"'
    then: {cores: shared}
`
	rs, diags = ParseRules("prog.yaml", []byte(prog))
	if rs == nil || len(diags) != 2 {
		t.Fatalf("program names compared with the kind: %v, want 2 warnings", diags)
	}
	for _, d := range diags {
		if d.Severity != "warning" || !strings.Contains(d.Message, "not a kind") || !strings.Contains(d.Message, "dna.resembles") {
			t.Errorf("diagnostic %v", d)
		}
	}
}

// The default rules work with the learned model's kinds: a workload whose
// genes alone sit under the rules' thresholds is arranged by its kind, and
// "unknown" or "novel" leave it to the genes.
func TestDefaultRulesUseKinds(t *testing.T) {
	rs := LoadDefaultRules()
	big := Machine{CPUs: 64, Cores: 32, Nodes: 4}
	cases := []struct {
		name  string
		genes dna.Genes
		kind  string
		rule  string
	}{
		{"memory streamer under the fault threshold", dna.Genes{"cpu_util": 0.3, "minflt_rate": 5000, "ctx_vol_rate": 5}, dna.ArchMemStreaming, "memory-streaming"},
		{"same genes, not sure", dna.Genes{"cpu_util": 0.3, "minflt_rate": 5000, "ctx_vol_rate": 5}, dna.KindUnknown, "busy-other"},
		{"random reader", dna.Genes{"cpu_util": 0.1, "io_read_bps": 1 << 20, "io_write_bps": 0, "ctx_vol_rate": 250}, dna.ArchSmallRandomIO, "io-streaming"},
		{"random reader, novel", dna.Genes{"cpu_util": 0.1, "io_read_bps": 1 << 20, "io_write_bps": 0, "ctx_vol_rate": 250}, dna.KindNovel, ""},
		{"server with few wake-ups per CPU-second", dna.Genes{"cpu_util": 0.4, "ctx_vol_rate": 300, "sockets": 20}, dna.ArchLatencyServer, "latency-critical-service"},
		{"same genes, idle kind", dna.Genes{"cpu_util": 0.4, "ctx_vol_rate": 300, "sockets": 20}, dna.ArchIdle, "busy-other"},
		{"compiler fan-out", dna.Genes{"cpu_util": 0.9, "ctx_vol_rate": 900}, dna.ArchCPUBound, "cpu-bound-batch"},
		{"idle server", dna.Genes{"cpu_util": 0.001, "ctx_vol_rate": 2, "sockets": 3}, dna.ArchLatencyServer, ""},
	}
	for _, c := range cases {
		m, errs := rs.Evaluate(Input{Genes: c.genes, Archetype: c.kind, Confidence: 0.8, Machine: big})
		if len(errs) > 0 {
			t.Errorf("%s: %v", c.name, errs)
		}
		got := ""
		if m != nil {
			got = m.Rule
		}
		if got != c.rule {
			t.Errorf("%s (%s): rule %q, want %q", c.name, c.kind, got, c.rule)
		}
	}
}

// io_read_mbps and io_write_mbps reach the want; a bad value names the
// field and its line.
func TestParseRulesIOCaps(t *testing.T) {
	rs, diags := ParseRules("io.yaml", []byte(`version: 1
rules:
  - name: writer
    when: genes.io_write_bps > 20e6
    then: {sched: idle, io_write_mbps: 20, io_read_mbps: 5.5}
`))
	if rs == nil {
		t.Fatalf("rules refused: %s", diagList(diags))
	}
	if w := rs.Rules[0].Then; w.IOWriteMBps != 20 || w.IOReadMBps != 5.5 || !strings.Contains(w.Signature(), "io_write_mbps=20.0") {
		t.Errorf("want %+v (%s)", w, w.Signature())
	}
	_, diags = ParseRules("io.yaml", []byte(`version: 1
rules:
  - name: writer
    when: "true"
    then:
      io_write_mbps: fast
`))
	found := false
	for _, d := range diags {
		found = found || (d.Line == 6 && d.Field == "then.io_write_mbps" && strings.Contains(d.Message, "MB/s"))
	}
	if !found {
		t.Errorf("no error at line 6 for then.io_write_mbps; got:\n%s", diagList(diags))
	}
}
