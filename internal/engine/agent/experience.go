package agent

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/sealed"
)

// The experience file's format: a sealed JSON body (internal/sealed).
const (
	ExperienceMagic   = "sculpt-experience"
	ExperienceVersion = 1
	// MaxEntries bounds the file: the least recently used entry goes first.
	MaxEntries = 512
)

// Context is what the agent's experience is keyed by: the service whose
// objective it arranges for, by its learned DNA, and the kinds of batch
// work beside it.
type Context struct {
	// Service is the service's kind (its archetype), e.g.
	// latency-critical-server.
	Service string `json:"service"`
	// Resembles is the known program its DNA is nearest (informative).
	Resembles string `json:"resembles,omitempty"`
	// Embedding is the service's learned DNA embedding, when a model is in
	// use.
	Embedding []float64 `json:"embedding,omitempty"`
	// Batch are the kinds of the batch workloads beside it, sorted.
	Batch []string `json:"batch"`
	// Ladder names the throttle ladder the levels belong to: experience
	// from another ladder is not used.
	Ladder string `json:"ladder"`
}

// Entry is what worked for one context.
type Entry struct {
	Context
	Level      int       `json:"level"`      // the least throttling that met the objectives
	Throughput float64   `json:"throughput"` // the batch work's throughput there (CPU cores)
	Attainment float64   `json:"attainment"` // share of intervals within the objectives there
	Intervals  int       `json:"intervals"`  // intervals it held
	Seen       int       `json:"seen"`       // times it was learned or confirmed
	Updated    time.Time `json:"updated"`
}

// Experience is what the agent learned, across restarts.
type Experience struct {
	Entries []Entry `json:"entries"`
}

// ErrExperience matches every *ExperienceError with errors.Is.
var ErrExperience = errors.New("experience file")

// ExperienceError says an experience file cannot be used.
type ExperienceError struct {
	Path    string
	Problem string
}

func (e *ExperienceError) Error() string {
	return fmt.Sprintf("experience file %s: %s; the agent will not use it (move it away to start with no experience, or point --experience elsewhere)", e.Path, e.Problem)
}

// Is makes errors.Is(err, ErrExperience) true.
func (e *ExperienceError) Is(target error) bool { return target == ErrExperience }

// LoadExperience reads an experience file; a missing file is no
// experience. A file that is corrupt, truncated, someone else's or from a
// newer sculpt is refused with an *ExperienceError.
func LoadExperience(path string) (*Experience, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return &Experience{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read experience file %s: %w", path, err)
	}
	_, body, err := sealed.Open(data, ExperienceMagic, "experience file", ExperienceVersion)
	if err != nil {
		return nil, &ExperienceError{Path: path, Problem: err.Error()}
	}
	var x Experience
	if err := json.Unmarshal(body, &x); err != nil {
		return nil, &ExperienceError{Path: path, Problem: fmt.Sprintf("corrupt body: %v", err)}
	}
	for i, e := range x.Entries {
		if e.Service == "" || e.Level < 0 || e.Ladder == "" {
			return nil, &ExperienceError{Path: path, Problem: fmt.Sprintf("entry %d: want a service kind, a ladder and a level >= 0", i)}
		}
	}
	return &x, nil
}

// Save writes the experience to path (0600, atomically), creating its
// directory.
func (x *Experience) Save(path string) error {
	body, err := json.Marshal(x)
	if err != nil {
		return fmt.Errorf("encode experience: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create directory of experience file %s: %w", path, err)
	}
	if err := sealed.WriteFile(path, sealed.Seal(ExperienceMagic, ExperienceVersion, body), 0o600); err != nil {
		return fmt.Errorf("experience file: %w", err)
	}
	return nil
}

// MinSimilarity is how close (cosine) two services' embeddings must be for
// one's experience to serve the other when the service's kind is known;
// StrictSimilarity when it is not (the DNA model calls it novel or is not
// sure): then the embedding alone says it is the same kind of workload as
// one the agent learned about.
const (
	MinSimilarity    = 0.5
	StrictSimilarity = 0.9
)

// unknownKind reports whether a service kind names no kind: the learned
// model found the workload novel or was not sure.
func unknownKind(kind string) bool {
	return kind == "" || kind == dna.KindNovel || kind == dna.KindUnknown
}

// Nearest returns the entry that serves c best: the same ladder, batch
// kinds overlapping by half or more, and either the same service kind with
// an embedding at least MinSimilarity alike (when both have one), or — for
// a service of no known kind — an embedding at least StrictSimilarity alike.
// The most similar wins. ok is false when none serves.
func (x *Experience) Nearest(c Context) (Entry, float64, bool) {
	best, bestScore := -1, math.Inf(-1)
	for i, e := range x.Entries {
		if e.Ladder != c.Ladder || jaccard(e.Batch, c.Batch) < 0.5 {
			continue
		}
		both := len(e.Embedding) > 0 && len(e.Embedding) == len(c.Embedding)
		need := MinSimilarity
		if unknownKind(c.Service) {
			if !both {
				continue
			}
			need = StrictSimilarity
		} else if e.Service != c.Service {
			continue
		}
		score := jaccard(e.Batch, c.Batch)
		if both {
			sim := dna.Cosine(e.Embedding, c.Embedding)
			if sim < need {
				continue
			}
			score += sim
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return Entry{}, 0, false
	}
	return x.Entries[best], bestScore, true
}

// Record stores what held for c: it updates the entry of the same context
// (same kind, ladder and batch kinds, embedding within 0.95 cosine) or adds
// one, dropping the least recently updated beyond MaxEntries.
func (x *Experience) Record(c Context, level int, throughput, attainment float64, intervals int, now time.Time) {
	c.Batch = slices.Clone(c.Batch)
	slices.Sort(c.Batch)
	for i := range x.Entries {
		e := &x.Entries[i]
		if e.Service != c.Service || e.Ladder != c.Ladder || !slices.Equal(e.Batch, c.Batch) {
			continue
		}
		if len(e.Embedding) > 0 && len(c.Embedding) == len(e.Embedding) && dna.Cosine(e.Embedding, c.Embedding) < 0.95 {
			continue
		}
		e.Level, e.Throughput, e.Attainment, e.Intervals = level, throughput, attainment, intervals
		e.Seen++
		e.Updated = now
		if len(c.Embedding) > 0 {
			e.Embedding = slices.Clone(c.Embedding)
		}
		e.Resembles = c.Resembles
		return
	}
	x.Entries = append(x.Entries, Entry{Context: c, Level: level, Throughput: throughput, Attainment: attainment,
		Intervals: intervals, Seen: 1, Updated: now})
	if len(x.Entries) > MaxEntries {
		oldest := 0
		for i, e := range x.Entries {
			if e.Updated.Before(x.Entries[oldest].Updated) {
				oldest = i
			}
		}
		x.Entries = slices.Delete(x.Entries, oldest, oldest+1)
	}
}

func jaccard(a, b []string) float64 {
	if len(a) == 0 && len(b) == 0 {
		return 1
	}
	in := 0
	for _, s := range a {
		if slices.Contains(b, s) {
			in++
		}
	}
	return float64(in) / float64(len(a)+len(b)-in)
}
