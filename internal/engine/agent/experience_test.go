package agent

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExperienceRoundTripAndNearest(t *testing.T) {
	p := filepath.Join(t.TempDir(), "sub", "experience")
	x, err := LoadExperience(p)
	if err != nil || len(x.Entries) != 0 {
		t.Fatalf("missing file: %v %v, want empty experience", x, err)
	}
	now := time.Unix(1e9, 0)
	memcached := Context{Service: "latency-critical-server", Resembles: "memcached", Embedding: []float64{1, 0.2, 0}, Batch: []string{"memory-streaming", "cpu-bound-batch"}, Ladder: "cpu-quota/10"}
	x.Record(memcached, 5, 0.7, 0.98, 40, now)
	x.Record(Context{Service: "cpu-bound-batch", Batch: nil, Ladder: "cpu-quota/10"}, 2, 1, 1, 10, now)
	if err := x.Save(p); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("saved file: %v %v, want mode 0600", fi, err)
	}
	y, err := LoadExperience(p)
	if err != nil || len(y.Entries) != 2 {
		t.Fatalf("reload: %v %v", y, err)
	}
	// A similar service beside the same batch kinds (in another order)
	// finds memcached's entry; another kind, a dissimilar embedding or
	// another ladder does not.
	redis := Context{Service: "latency-critical-server", Resembles: "redis", Embedding: []float64{0.9, 0.3, 0.1}, Batch: []string{"cpu-bound-batch", "memory-streaming"}, Ladder: "cpu-quota/10"}
	if e, _, ok := y.Nearest(redis); !ok || e.Level != 5 || e.Resembles != "memcached" {
		t.Errorf("Nearest(redis) = %+v %v, want memcached's level 5", e, ok)
	}
	for name, c := range map[string]Context{
		"other kind":   {Service: "ipc-chatty", Embedding: redis.Embedding, Batch: redis.Batch, Ladder: redis.Ladder},
		"unlike DNA":   {Service: redis.Service, Embedding: []float64{-1, 0, 0}, Batch: redis.Batch, Ladder: redis.Ladder},
		"other ladder": {Service: redis.Service, Embedding: redis.Embedding, Batch: redis.Batch, Ladder: "cpu-quota/4"},
		"other batch":  {Service: redis.Service, Embedding: redis.Embedding, Batch: []string{"io-streaming"}, Ladder: redis.Ladder},
	} {
		if e, _, ok := y.Nearest(c); ok {
			t.Errorf("%s: Nearest = %+v, want none", name, e)
		}
	}
	// Recording the same context again updates its entry.
	y.Record(memcached, 4, 0.8, 0.97, 30, now.Add(time.Minute))
	if len(y.Entries) != 2 || y.Entries[0].Level != 4 || y.Entries[0].Seen != 2 {
		t.Errorf("after a second record: %+v", y.Entries)
	}
}

func TestExperienceRefusesBadFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	x := &Experience{}
	x.Record(Context{Service: "s", Ladder: "l"}, 1, 1, 1, 1, time.Unix(0, 0))
	if err := x.Save(good); err != nil {
		t.Fatal(err)
	}
	data, _ := os.ReadFile(good)
	for name, b := range map[string][]byte{
		"truncated": data[:len(data)-3],
		"flipped":   []byte(strings.Replace(string(data), `"level":1`, `"level":7`, 1)),
		"foreign":   []byte("{}\n"),
		"newer":     []byte(strings.Replace(string(data), ExperienceMagic+" 1 ", ExperienceMagic+" 9 ", 1)),
	} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadExperience(p)
		var xe *ExperienceError
		if !errors.As(err, &xe) || !errors.Is(err, ErrExperience) || !strings.Contains(err.Error(), p) {
			t.Errorf("%s: error %v, want an *ExperienceError naming %s", name, err, p)
		}
	}
}
