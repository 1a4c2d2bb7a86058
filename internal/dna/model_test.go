package dna

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"sculpt/internal/telemetry"
)

// synth makes n one-second frames of a made-up kind, with noise.
func synth(kind string, n int, rng *rand.Rand) []telemetry.Frame {
	t0 := time.Unix(1000, 0)
	var out []telemetry.Frame
	for i := 0; i < n; i++ {
		f := telemetry.Frame{Workload: kind, Time: t0.Add(time.Duration(i) * time.Second), Interval: time.Second}
		j := func(x float64) float64 { return x * (1 + 0.1*rng.NormFloat64()) }
		set := func(m telemetry.Metric, v float64) { f.Values.Set(m, math.Max(0, v)) }
		set(telemetry.Threads, 1)
		set(telemetry.RSSBytes, j(50<<20))
		set(telemetry.Sockets, 0)
		set(telemetry.Pipes, 0)
		switch kind {
		case "spin":
			set(telemetry.CPUUserSec, j(0.98))
			set(telemetry.CPUSystemSec, j(0.01))
			set(telemetry.CtxVoluntary, j(2))
			set(telemetry.CtxInvoluntary, j(100))
			set(telemetry.IOReadOps, 0)
			set(telemetry.IOWriteOps, 0)
		case "writer":
			set(telemetry.CPUUserSec, j(0.05))
			set(telemetry.CPUSystemSec, j(0.3))
			set(telemetry.CtxVoluntary, j(400))
			set(telemetry.IOWriteBytes, j(100<<20))
			set(telemetry.IOWriteChars, j(100<<20))
			set(telemetry.IOWriteOps, j(400))
			set(telemetry.IOReadOps, 0)
		case "chatty":
			set(telemetry.CPUUserSec, j(0.2))
			set(telemetry.CPUSystemSec, j(0.4))
			set(telemetry.CtxVoluntary, j(50000))
			set(telemetry.IOReadOps, j(50000))
			set(telemetry.IOWriteOps, j(50000))
			set(telemetry.IOReadChars, j(50000))
			set(telemetry.IOWriteChars, j(50000))
			set(telemetry.Pipes, 2)
		case "faulter": // never in training
			set(telemetry.CPUUserSec, j(0.3))
			set(telemetry.CPUSystemSec, j(0.7))
			set(telemetry.MinorFaults, j(300000))
			set(telemetry.RSSBytes, j(2<<30))
			set(telemetry.CtxVoluntary, j(5))
			set(telemetry.IOReadOps, 0)
			set(telemetry.IOWriteOps, 0)
		}
		out = append(out, f)
	}
	return out
}

var synthKinds = []string{"spin", "writer", "chatty"}

func synthSeries(seed uint64, n int) []LabelledSeries {
	rng := rand.New(rand.NewPCG(seed, 99))
	var out []LabelledSeries
	for _, k := range synthKinds {
		out = append(out, LabelledSeries{Label: k, Source: k, Frames: synth(k, n, rng)})
	}
	return out
}

// synthKindOf gives the synthetic labels their behavioural kinds, as
// `sculpt train --kind LABEL=KIND` does.
var synthKindOf = map[string]string{"spin": ArchCPUBound, "writer": ArchIOStreaming, "chatty": ArchIPCChatty}

var smallTrain = TrainOptions{Shape: ModelShape{Hidden: 8, Latent: 4, Dec: 8, Window: 4}, Epochs: 8, Seed: 3, Kinds: synthKindOf}

func trainSmall(t *testing.T) *Model {
	t.Helper()
	m, err := Train(synthSeries(1, 60), smallTrain)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestTrainSeparatesKindsAndFlagsNovelty(t *testing.T) {
	m := trainSmall(t)
	if got := m.Catalog.Names(); strings.Join(got, ",") != "chatty,spin,writer" {
		t.Fatalf("archetypes %v", got)
	}
	for _, f := range m.Features {
		if f == "ipc_insn_per_cycle" || f == "psi_cpu" {
			t.Errorf("feature %s never present in training but kept", f)
		}
	}
	test := synthSeries(2, 30) // fresh noise: another "run"
	ev := EvaluateModel(m, test)
	if ev.Top1 < 0.95 {
		t.Errorf("top-1 on fresh runs %.3f, want >= 0.95", ev.Top1)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	ev = EvaluateModel(m, []LabelledSeries{{Label: "faulter", Frames: synth("faulter", 30, rng)}})
	if ev.UnseenNovel < 0.8 {
		t.Errorf("unseen kind flagged novel in %.2f of windows, want >= 0.8", ev.UnseenNovel)
	}
}

func TestTrainIsDeterministic(t *testing.T) {
	a, err := trainSmall(t).Marshal()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := trainSmall(t).Marshal()
	if !bytes.Equal(a, b) {
		t.Fatal("two trainings with the same seed and data differ")
	}
	o := smallTrain
	o.Seed = 4
	m, err := Train(synthSeries(1, 60), o)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := m.Marshal()
	if bytes.Equal(a, c) {
		t.Fatal("a different seed gave the same model")
	}
}

func TestModelFileRoundTripAndRefusal(t *testing.T) {
	m := trainSmall(t)
	path := filepath.Join(t.TempDir(), "m.model")
	if err := m.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	m2, err := LoadModel(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := [][]float64{nil, m.Row(&synthSeries(7, 2)[0].Frames[1])}
	z1, z2 := m.NewEmbedder().Embed(rows), m2.NewEmbedder().Embed(rows)
	for i := range z1 {
		if z1[i] != z2[i] {
			t.Fatalf("embedding differs after a round trip: %v vs %v", z1, z2)
		}
	}
	good, _ := os.ReadFile(path)
	for _, n := range []int{0, 5, 13, 100, len(good) / 2, len(good) - 1} {
		if _, err := ParseModel(good[:n], "cut.model"); !errors.Is(err, ErrModelCorrupt) || !strings.Contains(err.Error(), "cut.model") {
			t.Errorf("truncated to %d bytes: %v", n, err)
		}
	}
	for i := 0; i < len(good); i += 7 {
		bad := bytes.Clone(good)
		bad[i] ^= 0x20
		if _, err := ParseModel(bad, "bad.model"); err == nil {
			t.Fatalf("flipped byte %d accepted", i)
		}
	}
	// Another format version, checksum intact: a mismatch, not corruption.
	v2 := bytes.Clone(good)
	binary.LittleEndian.PutUint16(v2[len(ModelMagic):], ModelVersion+1)
	binary.LittleEndian.PutUint32(v2[len(v2)-4:], crc32c(v2[:len(v2)-4]))
	if _, err := ParseModel(v2, "v2.model"); !errors.Is(err, ErrModelMismatch) || !strings.Contains(err.Error(), fmt.Sprintf("version %d", ModelVersion+1)) {
		t.Errorf("version %d: %v", ModelVersion+1, err)
	}
	// A version 1 file (before prototypes had kinds) is refused as such.
	v1 := bytes.Clone(good)
	binary.LittleEndian.PutUint16(v1[len(ModelMagic):], 1)
	binary.LittleEndian.PutUint32(v1[len(v1)-4:], crc32c(v1[:len(v1)-4]))
	if _, err := ParseModel(v1, "v1.model"); !errors.Is(err, ErrModelMismatch) || !strings.Contains(err.Error(), "model format version 1,") {
		t.Errorf("version 1: %v", err)
	}
	// A prototype whose kind is not in the vocabulary.
	kind := m.Catalog.Archetypes[0].Kind
	m.Catalog.Archetypes[0].Kind = "stress-vm"
	odd, _ := m.Marshal()
	if _, err := ParseModel(odd, "odd.model"); !errors.Is(err, ErrModelMismatch) || !strings.Contains(err.Error(), `kind "stress-vm"`) {
		t.Errorf("a prototype of kind stress-vm: %v", err)
	}
	m.Catalog.Archetypes[0].Kind = kind
	// A feature this build does not know (a model from a newer sculpt).
	m.Features[0] = "gene_from_the_future"
	fut, _ := m.Marshal()
	if _, err := ParseModel(fut, "new.model"); !errors.Is(err, ErrModelMismatch) || !strings.Contains(err.Error(), "gene_from_the_future") {
		t.Errorf("unknown feature: %v", err)
	}
}

func TestPhaseDetectorNeedsTheShiftToStay(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	rule := PhaseRule{Alpha: 0.3, Threshold: 4, Floor: 0.05, Hold: 2, Warmup: 4}
	noise := func(c float64) []float64 { return []float64{c + 0.1*rng.NormFloat64(), 0.1 * rng.NormFloat64()} }
	det := NewPhaseDetector(rule)
	for i := 0; i < 30; i++ {
		if f, _ := det.Observe(noise(0)); f {
			t.Fatalf("steady noise flagged at %d", i)
		}
	}
	// A one-interval spike is not a phase.
	if f, _ := det.Observe(noise(5)); f {
		t.Fatal("spike flagged on its first interval")
	}
	for i := 0; i < 5; i++ {
		if f, _ := det.Observe(noise(0)); f {
			t.Fatal("flagged after the spike went away")
		}
	}
	// A shift that stays: flagged on its second interval, once.
	if f, _ := det.Observe(noise(5)); f {
		t.Fatal("shift flagged on its first interval")
	}
	if f, _ := det.Observe(noise(5)); !f {
		t.Fatal("shift not flagged on its second interval")
	}
	for i := 0; i < 10; i++ {
		if f, _ := det.Observe(noise(5)); f {
			t.Fatalf("the new phase flagged again at %d", i)
		}
	}
}

func TestArchetypesMatchAndNovelty(t *testing.T) {
	var vecs [][]float64
	var labels []string
	rng := rand.New(rand.NewPCG(2, 2))
	for i := 0; i < 200; i++ {
		vecs = append(vecs, []float64{rng.NormFloat64() * 0.1, rng.NormFloat64() * 0.1})
		labels = append(labels, "a")
		vecs = append(vecs, []float64{3 + rng.NormFloat64()*0.1, rng.NormFloat64() * 0.1})
		labels = append(labels, "b")
	}
	kinds := map[string]string{"a": ArchCPUBound, "b": ArchIdle}
	c, err := BuildArchetypes(vecs, labels, kinds, 0.99, 1)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Match([]float64{2.9, 0})
	if m.Archetype != "b" || m.Kind != ArchIdle || m.Novel || m.Confidence < 0.8 || m.KindConfidence != m.Confidence {
		t.Errorf("near b: %+v", m)
	}
	m = c.Match([]float64{1.5, 5})
	if !m.Novel || m.Novelty < 1 {
		t.Errorf("far from both: %+v, want novel", m)
	}
	m = c.Match([]float64{1.5, 0})
	if m.Confidence > 0.1 {
		t.Errorf("half-way: confidence %v, want near 0", m.Confidence)
	}
	if _, err := BuildArchetypes(vecs[:2], []string{"a", ""}, kinds, 0.99, 1); err == nil {
		t.Error("an unlabelled vector was accepted")
	}
	if _, err := BuildArchetypes(vecs[:2], []string{"a", "c"}, kinds, 0.99, 1); err == nil || !strings.Contains(err.Error(), `"c"`) {
		t.Errorf("a label without a kind: %v", err)
	}
	// Two labels of one kind: telling them apart is uncertain, their kind
	// is not.
	kinds["b"] = ArchCPUBound
	kinds["far"] = ArchIdle
	vecs = append(vecs, []float64{0, 40}, []float64{0.1, 40})
	labels = append(labels, "far", "far")
	c, err = BuildArchetypes(vecs, labels, kinds, 0.99, 1)
	if err != nil {
		t.Fatal(err)
	}
	m = c.Match([]float64{1.5, 0})
	// (Half-way is novel, which halves both confidences.)
	if m.Kind != ArchCPUBound || m.Confidence > 0.05 || m.KindConfidence < 0.4 {
		t.Errorf("between two labels of one kind: %+v, want label confidence near 0, kind confidence high", m)
	}
}

func TestProfilerUsesTheModel(t *testing.T) {
	m := trainSmall(t)
	p := NewProfiler(5 * time.Second)
	p.SetModel(m)
	rng := rand.New(rand.NewPCG(9, 9))
	frames := synth("writer", 12, rng)
	first := frames[0]
	first.Interval = 0
	p.Observe([]telemetry.Frame{first})
	d := p.Profile("writer")
	if d.Classifier != ClassifierName || len(d.Embedding) != 0 {
		t.Errorf("first sweep (no rates): classifier %q embedding %v, want the gene classifier", d.Classifier, d.Embedding)
	}
	for _, f := range frames[1:] {
		p.Observe([]telemetry.Frame{f})
	}
	d = p.Profile("writer")
	if d.Classifier != ModelClassifierName || len(d.Embedding) != m.Shape.Latent || d.Archetype != ArchIOStreaming || d.Kind != ArchIOStreaming || d.Resembles != "writer" || d.Novelty == nil {
		t.Errorf("with the model: %+v", d)
	}
	// Switch the workload's behaviour: a phase change within 2 sweeps.
	chat := synth("chatty", 4, rng)
	flagged := 0
	for i, f := range chat {
		f.Workload = "writer"
		p.Observe([]telemetry.Frame{f})
		if p.Profile("writer").PhaseChange {
			flagged = i + 1
			break
		}
	}
	if flagged == 0 || flagged > 2 {
		t.Errorf("phase change flagged after %d sweeps, want 1-2", flagged)
	}
	p.SetModel(nil)
	p.Observe([]telemetry.Frame{chat[0]})
	if d := p.Profile("chatty"); d.Classifier != ClassifierName {
		t.Errorf("after SetModel(nil): %q", d.Classifier)
	}
}

func crc32c(b []byte) uint32 {
	return crc32Checksum(b)
}

// BenchmarkModelStep is the per-workload cost of one sweep with the default
// shape: projecting the new frame, embedding the window, matching the
// catalog and the phase detector.
func BenchmarkModelStep(b *testing.B) {
	m, err := DefaultModel()
	if err != nil {
		b.Fatal(err)
	}
	mp := &modelProfiler{m: m, emb: m.NewEmbedder()}
	st := &modelState{det: NewPhaseDetector(m.Phase)}
	rows := [][]float64{}
	for _, s := range synthSeries(2, 10) {
		for i := range s.Frames {
			rows = append(rows, m.Row(&s.Frames[i]))
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		mp.step(st, mp.emb.Project(rows[i%len(rows)]), m.Window())
	}
}

// TestDefaultModelLoads: the embedded model parses, reads only genes this
// build has, and embeds a window.
func TestDefaultModelLoads(t *testing.T) {
	m, err := DefaultModel()
	if err != nil {
		t.Fatalf("embedded model: %v (retrain it with make model)", err)
	}
	if len(m.Catalog.Names()) < 2 {
		t.Errorf("embedded catalog %v", m.Catalog.Names())
	}
	f := synthSeries(1, 2)[0].Frames[1]
	z := m.NewEmbedder().Embed([][]float64{m.Row(&f)})
	if len(z) != m.Shape.Latent {
		t.Errorf("embedding of length %d, want %d", len(z), m.Shape.Latent)
	}
}
