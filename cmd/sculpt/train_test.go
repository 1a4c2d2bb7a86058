package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/telemetry"
	"sculpt/internal/testload"
	"sculpt/internal/trace"
)

// writeSynthTrace writes a trace of two labelled made-up workloads.
func writeSynthTrace(t *testing.T, path string, seed uint64, labels ...string) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	f, err := trace.Create(path, trace.Header{Interval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range labels {
		if err := f.Define(trace.WorkloadInfo{ID: "w" + l, Label: l, PIDs: []int{100 + i}}); err != nil {
			t.Fatal(err)
		}
	}
	for tick := 0; tick < 40; tick++ {
		var frames []telemetry.Frame
		for i, l := range labels {
			fr := telemetry.Frame{Workload: "w" + l, Time: time.Unix(int64(tick), 0), Interval: time.Second}
			scale := float64(1+i*i*50) * (1 + 0.1*rng.NormFloat64())
			fr.Values.Set(telemetry.CPUUserSec, 0.01*scale)
			fr.Values.Set(telemetry.CtxVoluntary, 10*scale)
			fr.Values.Set(telemetry.MinorFaults, float64(i)*1000*scale)
			fr.Values.Set(telemetry.Threads, float64(1+i))
			frames = append(frames, fr)
		}
		if err := f.WriteTick(time.Unix(int64(tick), 0), time.Second, frames); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestTrainBenchAndModelFallback(t *testing.T) {
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a.trace"), filepath.Join(dir, "b.trace.gz"), filepath.Join(dir, "c.trace")
	writeSynthTrace(t, a, 1, "idle", "busy")
	writeSynthTrace(t, b, 2, "idle", "busy")
	writeSynthTrace(t, c, 3, "idle", "busy", "weird")
	model := filepath.Join(dir, "m.model")
	small := []string{"--epochs", "3", "--hidden", "6", "--latent", "4", "--window", "4"}
	// "idle" is a kind; "busy" and "weird" need one.
	code, _, errs := runCLI(t, append([]string{"train", "--in", filepath.Join(dir, "*.trace*"), "--out", model}, small...)...)
	if code != 2 || !strings.Contains(errs, "label(s) busy, weird have no kind") || !strings.Contains(errs, "LABEL=KIND") {
		t.Errorf("labels without a kind: exit %d, %q", code, errs)
	}
	if _, err := os.Stat(model); err == nil {
		t.Error("a model was written for labels without a kind")
	}
	small = append(small, "--kind", "busy=cpu-bound-batch")
	code, out, errs := runCLI(t, append([]string{"train", "--in", filepath.Join(dir, "*.trace*"), "--out", model, "--holdout", c, "--kind", "weird=memory-streaming"}, small...)...)
	if code != 0 {
		t.Fatalf("train: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "epoch 3/3") || !strings.Contains(errs, "wrote "+model) {
		t.Errorf("train progress missing: %q", errs)
	}
	if !strings.Contains(out, "holdout:") {
		t.Errorf("holdout score missing: %q", out)
	}
	code, out, errs = runCLI(t, append([]string{"bench", "dna", "--train", a, "--train", b, "--test", c, "--json"}, small...)...)
	if code != 0 {
		t.Fatalf("bench dna: exit %d: %s", code, errs)
	}
	var res struct {
		Unseen  []string `json:"unseen_labels"`
		Learned struct {
			Top1     *float64 `json:"top1"`
			Top1Kind *float64 `json:"top1_kind"`
		} `json:"learned"`
		Baseline struct {
			Top1 *float64 `json:"top1"`
		} `json:"baseline"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("bench dna --json: %v\n%s", err, out)
	}
	if len(res.Unseen) != 1 || res.Unseen[0] != "weird" || res.Learned.Top1 == nil || res.Learned.Top1Kind == nil || res.Baseline.Top1 == nil {
		t.Errorf("bench result %s", out)
	}

	// A corrupt trace is refused, naming it.
	raw, _ := os.ReadFile(a)
	raw[len(raw)-30] ^= 0xff
	bad := filepath.Join(dir, "bad.trace")
	if err := os.WriteFile(bad, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = runCLI(t, "train", "--in", bad, "--out", filepath.Join(dir, "x.model"))
	if code != 2 || !strings.Contains(errs, "bad.trace") || !strings.Contains(errs, "byte offset") {
		t.Errorf("corrupt trace: exit %d, %q", code, errs)
	}

	// A corrupt model: sculpt dna says so and falls back to the genes.
	mb, _ := os.ReadFile(model)
	if err := os.WriteFile(model, mb[:len(mb)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to read another process's io and fd table")
	}
	idle := testload.Start(t, "sleep", nil)
	code, out, errs = runCLI(t, "dna", "--pid", strconv.Itoa(idle.Process.Pid), "--window", "300ms", "--step", "100ms", "--json", "--model", model)
	if code != 0 {
		t.Fatalf("dna with a corrupt model: exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "falling back to the gene classifier") || !strings.Contains(errs, model) {
		t.Errorf("stderr %q does not say it fell back", errs)
	}
	if !strings.Contains(out, `"classifier": "gene-thresholds-v1"`) {
		t.Errorf("output does not come from the gene classifier: %s", out)
	}
}

// TestDNAUsesTheEmbeddedModel: sculpt dna fills the learned fields.
func TestDNAUsesTheEmbeddedModel(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read another process's io and fd table")
	}
	p := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"})
	code, out, errs := runCLI(t, "dna", "--pid", strconv.Itoa(p.Process.Pid), "--window", "1500ms", "--step", "500ms", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if strings.Contains(errs, "falling back") {
		t.Fatalf("the embedded model was refused: %s", errs)
	}
	var doc struct {
		Workloads []struct {
			Embedding    []float64 `json:"embedding"`
			Archetype    string    `json:"archetype"`
			Kind         string    `json:"kind"`
			Resembles    string    `json:"resembles"`
			WorkloadKind string    `json:"workload_kind"`
			Novelty      *float64  `json:"novelty"`
			Classifier   string    `json:"classifier"`
		} `json:"workloads"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Workloads) != 1 {
		t.Fatalf("bad JSON (%v): %s", err, out)
	}
	w := doc.Workloads[0]
	if w.Classifier != "learned-v1" || len(w.Embedding) == 0 || w.Novelty == nil || w.Archetype == "" {
		t.Errorf("learned fields not filled: %+v", w)
	}
	// The archetype is a kind (or unknown/novel), never a program name;
	// the program is in resembles.
	if w.Kind != w.Archetype || (!dna.IsKind(w.Archetype) && w.Archetype != dna.KindUnknown && w.Archetype != dna.KindNovel) {
		t.Errorf("archetype %q, kind %q: want one kind of %v, unknown or novel", w.Archetype, w.Kind, dna.KindNames())
	}
	if _, ok := dna.ZooKinds[w.Resembles]; !ok || w.WorkloadKind != "tree" {
		t.Errorf("resembles %q (want a zoo program), workload_kind %q (want tree)", w.Resembles, w.WorkloadKind)
	}
}
