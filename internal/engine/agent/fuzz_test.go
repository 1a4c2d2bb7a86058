package agent

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"sculpt/internal/sealed"
)

// FuzzLoadExperience feeds LoadExperience whole files and bodies sealed
// with a good header: a file it cannot use is an *ExperienceError, never a
// panic, and the experience it accepts can be searched and recorded into
// (docs/reliability.md).
func FuzzLoadExperience(f *testing.F) {
	var x Experience
	x.Record(Context{Service: "latency-critical-server", Embedding: []float64{1, 0, 0.5}, Batch: []string{"cpu-bound-batch"}, Ladder: "quota"}, 2, 1.5, 0.99, 30, time.Unix(1700000000, 0))
	x.Record(Context{Service: "novel", Batch: []string{"memory-streaming"}, Ladder: "quota"}, 0, 0.5, 1, 10, time.Unix(1700000000, 0))
	path := filepath.Join(f.TempDir(), "experience")
	if err := x.Save(path); err != nil {
		f.Fatal(err)
	}
	file, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	_, body, err := sealed.Open(file, ExperienceMagic, "experience file", ExperienceVersion)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(file)
	f.Add(body)
	// One file per fuzzing process, rewritten by each input: a directory
	// made and removed per input would cost more than the parse.
	path = filepath.Join(f.TempDir(), "fuzzed")
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, in := range [][]byte{data, sealed.Seal(ExperienceMagic, ExperienceVersion, data)} {
			if err := os.WriteFile(path, in, 0o600); err != nil {
				t.Fatal(err)
			}
			x, err := LoadExperience(path)
			if err != nil {
				continue
			}
			for _, e := range x.Entries {
				_, _, _ = x.Nearest(e.Context)
				_, _, _ = x.Nearest(Context{Service: e.Service, Embedding: []float64{1, 2}, Batch: e.Batch, Ladder: e.Ladder})
			}
			if len(x.Entries) > 0 {
				e := x.Entries[0]
				x.Record(e.Context, e.Level+1, 1, 1, 1, time.Unix(1800000000, 0))
			}
		}
	})
}
