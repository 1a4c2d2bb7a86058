package dna

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
)

// KindInfo documents one behavioural kind: the vocabulary both classifiers
// (the gene thresholds and the learned catalog) report as DNA.Archetype and
// DNA.Kind, and that rules match on.
type KindInfo struct {
	Name string
	What string // how a workload of this kind behaves
}

// Kinds is the vocabulary, in the order docs/genes.md lists it. ArchMixed is
// the gene classifier's "several behaviours, none dominant"; the learned
// model never reports it (it reports KindUnknown when it is not sure).
var Kinds = []KindInfo{
	{ArchIdle, "does next to nothing: sleeps, or an idle daemon waiting for requests"},
	{ArchCPUBound, "spins on the CPU (compute, cache thrashing, compilers); few voluntary switches"},
	{ArchMemStreaming, "streams through large memory buffers: high fault rate or memory bandwidth"},
	{ArchIOStreaming, "moves storage data in bulk (large reads or writes)"},
	{ArchSmallRandomIO, "many small (< 64 KiB) storage operations, e.g. random reads"},
	{ArchNetworkHeavy, "moves network data in bulk, or drives a server with requests"},
	{ArchIPCChatty, "wakes a peer process very often over pipes, sockets or futexes"},
	{ArchLatencyServer, "a request/response service: short bursts on many wake-ups, little CPU"},
	{ArchMixed, "gene classifier only: several behaviours, none dominant"},
}

// KindUnknown is DNA.Archetype when the learned model is not confident
// enough (DNA.Confidence < MinConfidence); KindNovel when the workload is far
// from every known archetype (DNA.Novel). Neither is a kind of the
// vocabulary: no prototype carries them.
const (
	KindUnknown = "unknown"
	KindNovel   = "novel"
)

// MinConfidence is the kind confidence below which the learned model's
// archetype is reported as KindUnknown. Chosen from `sculpt bench dna` on
// the zoo's held-out runs (docs/benchmarks.md, "Learned DNA"): of the
// known-kind windows not flagged novel, 1.3% have the wrong kind; at or
// above 0.15 that falls to 0.2% while 97% of those windows are kept
// (0.927 of 0.956); higher thresholds drop more windows for no gain.
const MinConfidence = 0.15

// learnedKinds lists the kinds a label may have (all but ArchMixed).
func learnedKinds() []string {
	var out []string
	for _, k := range Kinds {
		if k.Name != ArchMixed {
			out = append(out, k.Name)
		}
	}
	return out
}

// IsKind reports whether name is a kind of the vocabulary.
func IsKind(name string) bool {
	return slices.ContainsFunc(Kinds, func(k KindInfo) bool { return k.Name == name })
}

// KindNames lists the vocabulary.
func KindNames() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = k.Name
	}
	return out
}

// ZooKinds maps the labels of the zoo (docs/zoo.md) to their kinds: the
// built-in defaults of `sculpt train`. A label that is itself a kind needs
// no entry.
var ZooKinds = map[string]string{
	"stress-cpu":      ArchCPUBound,
	"sysbench-cpu":    ArchCPUBound,
	"stress-cache":    ArchCPUBound,
	"go-build":        ArchCPUBound,
	"stress-vm":       ArchMemStreaming,
	"sysbench-memory": ArchMemStreaming,
	"stress-hdd":      ArchIOStreaming,
	"fio-seqwrite":    ArchIOStreaming,
	"fio-randread":    ArchSmallRandomIO,
	"iperf3":          ArchNetworkHeavy,
	"load-iperf3":     ArchNetworkHeavy,
	"load-memcaslap":  ArchNetworkHeavy,
	"load-wrk":        ArchNetworkHeavy,
	"load-pgbench":    ArchNetworkHeavy,
	"pipe-pair":       ArchIPCChatty,
	"memcached":       ArchLatencyServer,
	"nginx":           ArchLatencyServer,
	"postgres":        ArchLatencyServer,
	"idle-sleep":      ArchIdle,
	"idle-nginx":      ArchIdle,
	"idle-memcached":  ArchIdle,
}

// ErrNoKind is wrapped when a label has no kind or a kind outside the
// vocabulary.
var ErrNoKind = errors.New("no behavioural kind")

// ResolveKinds returns the kind of every label: extra (LABEL=KIND from the
// command line) first, then ZooKinds, then the label itself when it is a
// kind. A label with none, or a kind outside the vocabulary, is an error
// that names them all: a model whose archetypes rules cannot match is
// refused at train time rather than reported as "unknown" forever.
func ResolveKinds(labels []string, extra map[string]string) (map[string]string, error) {
	out := make(map[string]string, len(labels))
	var missing, bad []string
	seen := map[string]bool{}
	for l, k := range extra {
		if !IsKind(k) || k == ArchMixed {
			bad = append(bad, fmt.Sprintf("%s=%s", l, k))
		}
	}
	for _, l := range labels {
		if seen[l] {
			continue
		}
		seen[l] = true
		switch k, ok := extra[l]; {
		case ok:
			out[l] = k
		case ZooKinds[l] != "":
			out[l] = ZooKinds[l]
		case IsKind(l):
			out[l] = l
		default:
			missing = append(missing, l)
		}
	}
	sort.Strings(missing)
	sort.Strings(bad)
	switch {
	case len(bad) > 0:
		return nil, fmt.Errorf("not a kind: %s (kinds: %s): %w", strings.Join(bad, ", "), strings.Join(learnedKinds(), ", "), ErrNoKind)
	case len(missing) > 0:
		return nil, fmt.Errorf("label(s) %s have no kind: give LABEL=KIND for each (kinds: %s): %w", strings.Join(missing, ", "), strings.Join(learnedKinds(), ", "), ErrNoKind)
	}
	return out, nil
}
