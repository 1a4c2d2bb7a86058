package engine

import (
	_ "embed"
	"fmt"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/ext"
	"go.yaml.in/yaml/v3"

	"sculpt/internal/dna"
	"sculpt/internal/hal/topology"
)

// RulesVersion is the rule file format this code reads.
const RulesVersion = 1

//go:embed rules/default.yaml
var defaultRules []byte

// DefaultRulesYAML returns the embedded default rule set (docs/rules.md).
func DefaultRulesYAML() []byte { return slices.Clone(defaultRules) }

// Abstract arrangement values of a rule's `then`.
const (
	CoresDedicated = "dedicated" // CPUs of its own; everything else keeps off them
	CoresShared    = "shared"    // the shared pool: every CPU not dedicated to someone
	CoresAny       = "any"       // leave CPU placement alone

	// MemoryLocal keeps memory and threads on one node, moving whichever
	// costs fewer bytes: on shared CPUs its threads go to its memory's
	// node; on dedicated CPUs (a latency-bound service) its pages follow.
	MemoryLocal = "local"
	// MemoryFollowThreads moves its pages to the node its threads run on.
	MemoryFollowThreads = "follow-threads"
	// MemoryInterleave spreads it over every node's shared CPUs (a
	// bandwidth-bound streamer); its pages are not moved yet.
	MemoryInterleave = "interleave"
	MemoryNone       = "none" // leave page placement alone (the default)
	MemoryAny        = "any"  // the same as none (older rule files)

	IRQsAway = "away" // device interrupts off its (dedicated) CPUs
	IRQsAny  = "any"
)

// Want is the arrangement a rule asks for, stated abstractly; the planner
// turns it into CPUs, classes and actions for this machine. Empty or nil
// fields leave that setting alone.
type Want struct {
	Cores    string `json:"cores,omitempty"`
	Count    int    `json:"count,omitempty"` // CPUs for dedicated (>= 1)
	Sched    string `json:"sched,omitempty"` // other, batch, idle
	Nice     *int   `json:"nice,omitempty"`
	CPUShare uint64 `json:"cpu_share,omitempty"` // cgroup v2 cpu.weight scale 1..10000 (100 is the default)
	// CPUQuota caps the workload's CPU time, in cores (0.5: half a CPU's
	// time per period), through its cgroup's bandwidth quota; 0 leaves it
	// alone. The learning agent sets it for batch work.
	CPUQuota float64 `json:"cpu_quota,omitempty"`
	// IOReadMBps and IOWriteMBps cap the workload's block I/O on every
	// disk (MB/s, through its blkio cgroup); 0 leaves it alone, -1 lifts a
	// cap. The learning agent sets them for batch work that does I/O.
	IOReadMBps  float64 `json:"io_read_mbps,omitempty"`
	IOWriteMBps float64 `json:"io_write_mbps,omitempty"`
	Memory      string  `json:"memory,omitempty"`
	IRQs        string  `json:"irqs,omitempty"`
}

// BaseSignature is Signature without what the agent fine-tunes
// (cpu_quota): the arrangement the guard's cool-down counts changes of. The
// agent's steps are spaced by its own judgment intervals instead.
func (w Want) BaseSignature() string {
	w.CPUQuota, w.IOReadMBps, w.IOWriteMBps = 0, 0, 0
	return w.Signature()
}

// Signature is a short text form of w, for hysteresis and the audit log.
func (w Want) Signature() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cores=%s", orDash(w.Cores))
	if w.Cores == CoresDedicated {
		fmt.Fprintf(&b, "/%d", w.Count)
	}
	fmt.Fprintf(&b, " sched=%s", orDash(w.Sched))
	if w.Nice != nil {
		fmt.Fprintf(&b, " nice=%d", *w.Nice)
	}
	if w.CPUShare != 0 {
		fmt.Fprintf(&b, " cpu_share=%d", w.CPUShare)
	}
	if w.CPUQuota != 0 {
		fmt.Fprintf(&b, " cpu_quota=%.2f", w.CPUQuota)
	}
	if w.IOReadMBps != 0 {
		fmt.Fprintf(&b, " io_read_mbps=%.1f", w.IOReadMBps)
	}
	if w.IOWriteMBps != 0 {
		fmt.Fprintf(&b, " io_write_mbps=%.1f", w.IOWriteMBps)
	}
	if w.Memory != "" {
		fmt.Fprintf(&b, " memory=%s", w.Memory)
	}
	if w.IRQs != "" {
		fmt.Fprintf(&b, " irqs=%s", w.IRQs)
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Rule is one named rule of a rule file.
type Rule struct {
	Name        string
	Description string
	Priority    int
	When        string   // CEL, bool
	Line        int      // line of the rule in its file
	Then        Want     // Count is filled from CountExpr at evaluation
	CountExpr   string   // CEL, int or double; "" means 1
	Genes       []string // genes it reads, through traits too
	Traits      []string // traits it reads directly

	order int
	when  cel.Program
	count cel.Program
}

// RuleSet is a parsed, checked rule file. It is immutable once built and
// safe for concurrent use.
type RuleSet struct {
	Source string // file name, or "default" for the embedded set
	Traits []*Trait
	Rules  []*Rule
}

// Trait is a named CEL expression of a rule file's traits section, computed
// for each workload before the rules (in file order, so a trait may use
// the traits above it) and seen by rules and later traits as traits.NAME.
type Trait struct {
	Name   string
	Expr   string
	Line   int
	Genes  []string // genes it reads, through other traits too
	Traits []string // traits it reads directly

	prg cel.Program
}

// Diagnostic is one problem found in a rule file.
type Diagnostic struct {
	Severity string `json:"severity"` // error or warning
	Line     int    `json:"line"`
	Rule     string `json:"rule,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
}

func (d Diagnostic) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "line %d: %s", d.Line, d.Severity)
	if d.Rule != "" {
		fmt.Fprintf(&b, ": rule %q", d.Rule)
	}
	if d.Field != "" {
		fmt.Fprintf(&b, ": %s", d.Field)
	}
	return b.String() + ": " + d.Message
}

// RulesError holds the errors (and warnings) of a rule file that could not
// be loaded.
type RulesError struct {
	Source      string
	Diagnostics []Diagnostic
}

func (e *RulesError) Error() string {
	var errs []string
	for _, d := range e.Diagnostics {
		if d.Severity == "error" {
			errs = append(errs, e.Source+": "+d.String())
		}
	}
	return strings.Join(errs, "\n")
}

// Input is what a rule's expressions see of one workload.
type Input struct {
	Genes      dna.Genes
	Archetype  string  // the behavioural kind, or unknown, novel, mixed (dna.DNA.Archetype)
	Confidence float64 // of the archetype
	// The learned model's verdict (docs/dna-model.md): the nearest known
	// program, novelty (0 with the gene classifier), whether it is novel,
	// whether the phase detector flagged a change; the classifier's name.
	Resembles   string
	Novelty     float64
	Novel       bool
	PhaseChange bool
	Classifier  string
	Kind        string // the workload's: tree, cgroup, unit, container
	Name        string
	ID          string
	PIDs        int
	Machine     Machine
}

// Machine is what rules see of the machine's size, as machine.cpus,
// machine.cores and machine.nodes.
type Machine struct {
	CPUs  int // online logical CPUs
	Cores int // physical cores with an online CPU
	Nodes int // NUMA nodes with an online CPU
}

// MachineOf counts the online CPUs, cores and nodes of t. Where the
// kernel does not say which core a CPU belongs to, each CPU counts as one.
func MachineOf(t topology.Topology) Machine {
	m := Machine{CPUs: len(t.OnlineCPUs()), Cores: t.Cores()}
	if m.Cores == 0 {
		m.Cores = m.CPUs
	}
	nodes := map[int]bool{}
	for _, c := range t.CPUs {
		if c.Online {
			nodes[max(c.Node, 0)] = true
		}
	}
	m.Nodes = len(nodes)
	return m
}

var geneRef = regexp.MustCompile(`\bgenes\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*["']([^"']+)["']\s*\])`)

var traitRef = regexp.MustCompile(`\btraits\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*["']([^"']+)["']\s*\])`)

var traitName = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// refsOf lists the names an expression reads through re (genes or traits).
func refsOf(re *regexp.Regexp, expr string) []string {
	var refs []string
	for _, m := range re.FindAllStringSubmatch(expr, -1) {
		g := m[1]
		if g == "" {
			g = m[2]
		}
		refs = append(refs, g)
	}
	slices.Sort(refs)
	return slices.Compact(refs)
}

var knownGenes = func() map[string]bool {
	m := map[string]bool{}
	for _, g := range dna.Catalog {
		m[g.Name] = true
	}
	return m
}()

// dnaFields are the fields of the dna variable of rules, with their CEL
// types: each is declared as the variable "dna.NAME", so that a misspelt
// field or a comparison of the wrong type fails when the file is loaded.
var dnaFields = []struct {
	name string
	typ  *cel.Type
}{
	{"archetype", cel.StringType}, {"kind", cel.StringType}, {"resembles", cel.StringType},
	{"confidence", cel.DoubleType}, {"novelty", cel.DoubleType}, {"novel", cel.BoolType},
	{"phase_change", cel.BoolType}, {"classifier", cel.StringType},
}

// celEnv declares what rules may use: genes (map of double; absent genes
// are absent keys, test with has(genes.x)), dna.{archetype, kind,
// resembles, confidence, novelty, novel, phase_change, classifier},
// archetype and confidence (as dna.archetype and dna.confidence),
// workload {kind, name, id, pids}, machine {cpus, cores, nodes}, traits
// (the file's traits, by name), ceil/floor (double -> int) and the CEL
// math extension (math.greatest, math.least, ...).
func celEnv() (*cel.Env, error) {
	opts := []cel.EnvOption{
		cel.Variable("genes", cel.MapType(cel.StringType, cel.DoubleType)),
		cel.Variable("archetype", cel.StringType),
		cel.Variable("confidence", cel.DoubleType),
		cel.Variable("workload", cel.MapType(cel.StringType, cel.DynType)),
		cel.Variable("machine", cel.MapType(cel.StringType, cel.IntType)),
		cel.Variable("traits", cel.MapType(cel.StringType, cel.DynType)),
		ext.Math(),
		ext.Strings(),
		cel.Function("ceil", cel.Overload("ceil_double", []*cel.Type{cel.DoubleType}, cel.IntType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Int(math.Ceil(float64(v.(types.Double)))) }))),
		cel.Function("floor", cel.Overload("floor_double", []*cel.Type{cel.DoubleType}, cel.IntType,
			cel.UnaryBinding(func(v ref.Val) ref.Val { return types.Int(math.Floor(float64(v.(types.Double)))) }))),
	}
	for _, f := range dnaFields {
		opts = append(opts, cel.Variable("dna."+f.name, f.typ))
	}
	return cel.NewEnv(opts...)
}

// kindLiteral finds a string literal compared with the archetype or kind
// (either side of == or !=).
var kindLiteral = regexp.MustCompile(`(?:\b(?:dna\s*\.\s*(?:archetype|kind)|archetype)\s*[!=]=\s*["']([^"']*)["'])|(?:["']([^"']*)["']\s*[!=]=\s*(?:dna\s*\.\s*(?:archetype|kind)|archetype)\b)`)

// unknownKinds returns the strings expr compares the archetype with that
// no classifier reports: a program name (use dna.resembles) or a typo.
func unknownKinds(expr string) []string {
	var out []string
	for _, m := range kindLiteral.FindAllStringSubmatch(expr, -1) {
		k := m[1] + m[2]
		if !dna.IsKind(k) && k != dna.KindUnknown && k != dna.KindNovel {
			out = append(out, k)
		}
	}
	return out
}

// ParseRules reads a rule file. It returns the rule set and every problem
// found (warnings too); the set is nil when there is at least one error.
func ParseRules(source string, data []byte) (*RuleSet, []Diagnostic) {
	var diags []Diagnostic
	errAt := func(line int, rule, field, format string, args ...any) {
		diags = append(diags, Diagnostic{Severity: "error", Line: line, Rule: rule, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	warnAt := func(line int, rule, field, format string, args ...any) {
		diags = append(diags, Diagnostic{Severity: "warning", Line: line, Rule: rule, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		line, msg := yamlSyntaxError(data, err)
		errAt(line, "", "", "not valid YAML: %s", msg)
		return nil, diags
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		errAt(max(doc.Line, 1), "", "", "want a mapping with version and rules")
		return nil, diags
	}
	env, err := celEnv()
	if err != nil {
		errAt(0, "", "", "CEL environment: %v", err)
		return nil, diags
	}
	top := doc.Content[0]
	rs := &RuleSet{Source: source}
	var version, rulesNode, traitsNode *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		switch k.Value {
		case "version":
			version = v
		case "traits":
			traitsNode = v
		case "rules":
			rulesNode = v
		default:
			errAt(k.Line, "", k.Value, "unknown field (want version, traits, rules)")
		}
	}
	switch {
	case version == nil:
		errAt(top.Line, "", "version", "missing: want version: %d", RulesVersion)
	case version.Value != strconv.Itoa(RulesVersion):
		errAt(version.Line, "", "version", "%q: this sculpt reads version %d", version.Value, RulesVersion)
	}
	if rulesNode == nil || rulesNode.Kind != yaml.SequenceNode {
		line := top.Line
		if rulesNode != nil {
			line = rulesNode.Line
		}
		errAt(line, "", "rules", "want a list of rules")
		return nil, diags
	}
	traits := parseTraits(env, traitsNode, rs, errAt, warnAt)
	// traitRefs checks the traits an expression reads (each must be defined
	// in the traits section; a trait only above itself) and returns them.
	traitRefs := func(expr string, line int, label, field string, defined map[string]int) []string {
		refs := refsOf(traitRef, expr)
		for _, n := range refs {
			if _, ok := defined[n]; !ok {
				if l, later := traits[n]; later {
					errAt(line, label, field, "traits.%s is defined below, on line %d: a trait reads only traits above it", n, l)
				} else {
					errAt(line, label, field, "traits.%s: no such trait (see the traits section)", n)
				}
			}
		}
		return refs
	}
	traitDefined := map[string]int{}
	for _, t := range rs.Traits {
		t.Traits = traitRefs(t.Expr, t.Line, "", "traits."+t.Name, traitDefined)
		t.Genes = refsOf(geneRef, t.Expr)
		for _, n := range t.Traits {
			if u := rs.trait(n); u != nil && traitDefined[n] > 0 {
				t.Genes = append(t.Genes, u.Genes...)
			}
		}
		slices.Sort(t.Genes)
		t.Genes = slices.Compact(t.Genes)
		for _, g := range refsOf(geneRef, t.Expr) {
			if !knownGenes[g] {
				warnAt(t.Line, "", "traits."+t.Name+": genes."+g, "unknown gene (see docs/genes.md); it is always absent")
			}
		}
		for _, k := range unknownKinds(t.Expr) {
			warnAt(t.Line, "", "traits."+t.Name, "%s", kindWarning(k))
		}
		traitDefined[t.Name] = t.Line
	}
	names := map[string]int{}
	for idx, rn := range rulesNode.Content {
		r := &Rule{Line: rn.Line, order: idx}
		label := fmt.Sprintf("#%d", idx+1)
		if rn.Kind != yaml.MappingNode {
			errAt(rn.Line, label, "", "want a mapping with name, when and then")
			continue
		}
		// The name first, so every later message can carry it.
		for i := 0; i+1 < len(rn.Content); i += 2 {
			if rn.Content[i].Value == "name" {
				r.Name = rn.Content[i+1].Value
			}
		}
		if r.Name != "" {
			label = r.Name
		}
		var whenNode, countNode *yaml.Node
		refLine := map[string]int{}
		for i := 0; i+1 < len(rn.Content); i += 2 {
			k, v := rn.Content[i], rn.Content[i+1]
			switch k.Value {
			case "name":
				if v.Kind != yaml.ScalarNode || v.Value == "" {
					errAt(v.Line, label, "name", "want a non-empty string")
				}
			case "description":
				r.Description = v.Value
			case "priority":
				p, err := strconv.Atoi(v.Value)
				if err != nil || v.Kind != yaml.ScalarNode {
					errAt(v.Line, label, "priority", "%q: want an integer", v.Value)
				}
				r.Priority = p
			case "when":
				whenNode = v
				r.When = v.Value
			case "then":
				countNode = parseThen(v, label, &r.Then, errAt)
			default:
				errAt(k.Line, label, k.Value, "unknown field (want name, description, priority, when, then)")
			}
		}
		if r.Name == "" {
			errAt(rn.Line, label, "name", "missing")
		} else if prev, dup := names[r.Name]; dup {
			errAt(rn.Line, label, "name", "duplicate: also the name of the rule on line %d", prev)
		} else {
			names[r.Name] = rn.Line
		}
		if whenNode == nil {
			errAt(rn.Line, label, "when", "missing: want a CEL condition (use \"true\" to always match)")
		} else {
			prg, msg := compileCEL(env, r.When, resultBool)
			if msg != "" {
				errAt(whenNode.Line, label, "when", "%s", msg)
			}
			for _, k := range unknownKinds(r.When) {
				warnAt(whenNode.Line, label, "when", "%s", kindWarning(k))
			}
			r.when = prg
			r.Traits = traitRefs(r.When, whenNode.Line, label, "when", traits)
			refs := refsOf(geneRef, r.When)
			r.Genes = append(r.Genes, refs...)
			for _, g := range refs {
				refLine[g] = whenNode.Line
			}
		}
		if countNode != nil {
			r.CountExpr = countNode.Value
			prg, msg := compileCEL(env, r.CountExpr, resultNumber)
			if msg != "" {
				errAt(countNode.Line, label, "then.count", "%s", msg)
			}
			r.count = prg
			r.Traits = append(r.Traits, traitRefs(r.CountExpr, countNode.Line, label, "then.count", traits)...)
			slices.Sort(r.Traits)
			r.Traits = slices.Compact(r.Traits)
			refs := refsOf(geneRef, r.CountExpr)
			r.Genes = append(r.Genes, refs...)
			for _, g := range refs {
				if _, ok := refLine[g]; !ok {
					refLine[g] = countNode.Line
				}
			}
		}
		slices.Sort(r.Genes)
		r.Genes = slices.Compact(r.Genes)
		for _, g := range r.Genes {
			if !knownGenes[g] {
				warnAt(refLine[g], label, "genes."+g, "unknown gene (see docs/genes.md); it is always absent")
			}
		}
		// The genes that led to a match include those its traits read.
		for _, n := range r.Traits {
			if t := rs.trait(n); t != nil {
				r.Genes = append(r.Genes, t.Genes...)
			}
		}
		slices.Sort(r.Genes)
		r.Genes = slices.Compact(r.Genes)
		if r.Then.Cores == CoresDedicated && countNode == nil {
			r.CountExpr = "1"
			r.count, _ = compileCEL(env, "1", resultNumber)
		}
		rs.Rules = append(rs.Rules, r)
	}
	sort.SliceStable(diags, func(i, j int) bool { return diags[i].Line < diags[j].Line })
	for _, d := range diags {
		if d.Severity == "error" {
			return nil, diags
		}
	}
	sort.SliceStable(rs.Rules, func(i, j int) bool { return rs.Rules[i].Priority > rs.Rules[j].Priority })
	return rs, diags
}

func kindWarning(k string) string {
	return fmt.Sprintf("%q is not a kind, so the archetype never equals it (kinds: %s, unknown, novel; a program name is dna.resembles)",
		k, strings.Join(dna.KindNames(), ", "))
}

// parseTraits reads the traits section (a mapping of name to CEL
// expression) into rs.Traits, compiling each, and returns the line of every
// trait by name.
func parseTraits(env *cel.Env, n *yaml.Node, rs *RuleSet, errAt, warnAt func(int, string, string, string, ...any)) map[string]int {
	lines := map[string]int{}
	if n == nil {
		return lines
	}
	if n.Kind != yaml.MappingNode {
		errAt(n.Line, "", "traits", "want a mapping of trait name to CEL expression")
		return lines
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		label := ""
		switch {
		case !traitName.MatchString(k.Value):
			errAt(k.Line, label, "traits."+k.Value, "a trait name is lower case letters, digits and _")
			continue
		case lines[k.Value] > 0:
			errAt(k.Line, label, "traits."+k.Value, "duplicate: also defined on line %d", lines[k.Value])
			continue
		case v.Kind != yaml.ScalarNode:
			errAt(v.Line, label, "traits."+k.Value, "want a CEL expression")
			continue
		}
		prg, msg := compileCEL(env, v.Value, resultAny)
		if msg != "" {
			errAt(v.Line, label, "traits."+k.Value, "%s", msg)
		}
		lines[k.Value] = k.Line
		rs.Traits = append(rs.Traits, &Trait{Name: k.Value, Expr: v.Value, Line: k.Line, prg: prg})
	}
	return lines
}

// trait returns the trait named n, nil if there is none.
func (rs *RuleSet) trait(n string) *Trait {
	for _, t := range rs.Traits {
		if t.Name == n {
			return t
		}
	}
	return nil
}

// parseThen reads a rule's then mapping into w; it returns the count node.
func parseThen(n *yaml.Node, label string, w *Want, errAt func(int, string, string, string, ...any)) *yaml.Node {
	if n.Kind != yaml.MappingNode {
		errAt(n.Line, label, "then", "want a mapping (cores, count, sched, nice, cpu_share, cpu_quota, io_read_mbps, io_write_mbps, memory, irqs)")
		return nil
	}
	oneOf := func(v *yaml.Node, field string, dst *string, allowed ...string) {
		if !slices.Contains(allowed, v.Value) || v.Kind != yaml.ScalarNode {
			errAt(v.Line, label, "then."+field, "%q: want %s", v.Value, strings.Join(allowed, ", "))
			return
		}
		*dst = v.Value
	}
	var count *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		switch k.Value {
		case "cores":
			oneOf(v, "cores", &w.Cores, CoresDedicated, CoresShared, CoresAny)
		case "count":
			count = v
		case "sched":
			oneOf(v, "sched", &w.Sched, "other", "batch", "idle")
		case "nice":
			x, err := strconv.Atoi(v.Value)
			if err != nil || x < -20 || x > 19 {
				errAt(v.Line, label, "then.nice", "%q: want an integer -20..19", v.Value)
				continue
			}
			w.Nice = &x
		case "cpu_share":
			x, err := strconv.ParseUint(v.Value, 10, 64)
			if err != nil || x < 1 || x > 10000 {
				errAt(v.Line, label, "then.cpu_share", "%q: want a cpu weight 1..10000 (100 is the kernel's default)", v.Value)
				continue
			}
			w.CPUShare = x
		case "cpu_quota":
			x, err := strconv.ParseFloat(v.Value, 64)
			if err != nil || x < 0.01 || x > 4096 {
				errAt(v.Line, label, "then.cpu_quota", "%q: want CPU cores of time per period, at least 0.01 (e.g. 0.5)", v.Value)
				continue
			}
			w.CPUQuota = x
		case "io_read_mbps", "io_write_mbps":
			x, err := strconv.ParseFloat(v.Value, 64)
			if err != nil || x < 0.1 || x > 1e6 {
				errAt(v.Line, label, "then."+k.Value, "%q: want MB/s of block I/O, at least 0.1 (e.g. 50)", v.Value)
				continue
			}
			if k.Value == "io_read_mbps" {
				w.IOReadMBps = x
			} else {
				w.IOWriteMBps = x
			}
		case "memory":
			oneOf(v, "memory", &w.Memory, MemoryLocal, MemoryFollowThreads, MemoryInterleave, MemoryNone, MemoryAny)
		case "irqs":
			oneOf(v, "irqs", &w.IRQs, IRQsAway, IRQsAny)
		default:
			errAt(k.Line, label, "then."+k.Value, "unknown field (want cores, count, sched, nice, cpu_share, cpu_quota, memory, irqs)")
		}
	}
	if count != nil && w.Cores != CoresDedicated {
		errAt(count.Line, label, "then.count", "count applies only to cores: dedicated")
	}
	return count
}

// resultKind is what type a CEL expression of a rule file must have.
type resultKind int

const (
	resultBool   resultKind = iota // when
	resultNumber                   // count: int, uint or double
	resultAny                      // a trait
)

// compileCEL parses and checks expr for the result kind want. It returns
// the program and an error message ("" when it compiled).
func compileCEL(env *cel.Env, expr string, want resultKind) (cel.Program, string) {
	if strings.TrimSpace(expr) == "" {
		return nil, "empty expression"
	}
	ast, iss := env.Compile(expr)
	if iss != nil && iss.Err() != nil {
		return nil, celMessage(iss.Err())
	}
	out := ast.OutputType()
	isAny := func(ts ...*cel.Type) bool {
		for _, t := range append(ts, cel.DynType) {
			if out.IsExactType(t) {
				return true
			}
		}
		return false
	}
	switch want {
	case resultBool:
		if !isAny(cel.BoolType) {
			return nil, fmt.Sprintf("type error: the expression is %s, want %s", out, cel.BoolType)
		}
	case resultNumber:
		if !isAny(cel.IntType, cel.DoubleType, cel.UintType) {
			return nil, fmt.Sprintf("type error: the expression is %s, want a number", out)
		}
	}
	prg, err := env.Program(ast, cel.EvalOptions(cel.OptOptimize))
	if err != nil {
		return nil, "CEL: " + err.Error()
	}
	return prg, ""
}

// Match is the rule that decided a workload's wanted arrangement.
type Match struct {
	Rule     string             `json:"rule"`
	Priority int                `json:"priority"`
	Want     Want               `json:"want"`
	Genes    map[string]float64 `json:"genes"`            // the genes the rule reads (through its traits too), as they were (absent ones left out)
	Traits   map[string]any     `json:"traits,omitempty"` // the traits the rule reads, as they were
}

// Evaluate returns the first rule, by priority then file order, whose
// condition holds for in, with its count evaluated; nil when none does.
// The traits are computed first, in file order. A trait or rule whose
// expression fails at run time (e.g. reads a gene without has()) is left
// out or does not match; its error is returned in errs.
func (rs *RuleSet) Evaluate(in Input) (*Match, []error) {
	traits := map[string]any{}
	vars := map[string]any{
		"genes":            map[string]float64(in.Genes),
		"archetype":        in.Archetype,
		"confidence":       in.Confidence,
		"dna.archetype":    in.Archetype,
		"dna.kind":         in.Archetype,
		"dna.resembles":    in.Resembles,
		"dna.confidence":   in.Confidence,
		"dna.novelty":      in.Novelty,
		"dna.novel":        in.Novel,
		"dna.phase_change": in.PhaseChange,
		"dna.classifier":   in.Classifier,
		"workload":         map[string]any{"kind": in.Kind, "name": in.Name, "id": in.ID, "pids": int64(in.PIDs)},
		"machine":          map[string]int64{"cpus": int64(in.Machine.CPUs), "cores": int64(in.Machine.Cores), "nodes": int64(in.Machine.Nodes)},
		"traits":           traits,
	}
	if in.Genes == nil {
		vars["genes"] = map[string]float64{}
	}
	var errs []error
	for _, t := range rs.Traits {
		out, _, err := t.prg.Eval(vars)
		if err != nil {
			errs = append(errs, fmt.Errorf("trait %q: %w", t.Name, err))
			continue
		}
		traits[t.Name] = out.Value()
	}
	for _, r := range rs.Rules {
		out, _, err := r.when.Eval(vars)
		if err != nil {
			errs = append(errs, fmt.Errorf("rule %q: when: %w", r.Name, err))
			continue
		}
		if b, ok := out.Value().(bool); !ok || !b {
			continue
		}
		m := &Match{Rule: r.Name, Priority: r.Priority, Want: r.Then, Genes: map[string]float64{}}
		for _, g := range r.Genes {
			if v, ok := in.Genes[g]; ok {
				m.Genes[g] = v
			}
		}
		for _, n := range r.Traits {
			if v, ok := traits[n]; ok {
				if m.Traits == nil {
					m.Traits = map[string]any{}
				}
				m.Traits[n] = v
			}
		}
		if r.count != nil {
			n, err := evalCount(r.count, vars)
			if err != nil {
				errs = append(errs, fmt.Errorf("rule %q: then.count: %w", r.Name, err))
				continue
			}
			m.Want.Count = n
		}
		return m, errs
	}
	return nil, errs
}

func evalCount(prg cel.Program, vars map[string]any) (int, error) {
	out, _, err := prg.Eval(vars)
	if err != nil {
		return 0, err
	}
	var f float64
	switch v := out.Value().(type) {
	case int64:
		f = float64(v)
	case uint64:
		f = float64(v)
	case float64:
		f = math.Ceil(v)
	default:
		return 0, fmt.Errorf("evaluated to %v (%T), want a number", out.Value(), out.Value())
	}
	if math.IsNaN(f) || f < 1 {
		return 1, nil
	}
	if f > 1<<16 {
		f = 1 << 16
	}
	return int(f), nil
}

// LoadDefaultRules parses the embedded default rule set; it panics only if
// the embedded file is broken, which a test rules out.
func LoadDefaultRules() *RuleSet {
	rs, diags := ParseRules("default", defaultRules)
	if rs == nil {
		panic(fmt.Sprintf("embedded default rules: %v", diags))
	}
	return rs
}
