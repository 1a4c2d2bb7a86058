package dna

import (
	_ "embed"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"sculpt/internal/telemetry"
)

// ModelMagic opens every model file.
const ModelMagic = "SCULPTDM"

// ModelVersion is the model file format version this build reads and writes.
// Version 2 added the behavioural kind of every catalog prototype.
const ModelVersion = 2

// ModelClassifierName is DNA.Classifier when the learned model decided.
const ModelClassifierName = "learned-v1"

// ModelFeatures are the genes the encoder can read, computed per frame. A
// model keeps those that were present in its training data (Model.Features).
// burstiness and mem_growth_rate need several frames and are left to the
// encoder's view of the sequence.
var ModelFeatures = []string{
	"cpu_util", "user_frac", "runq_delay_frac", "ctx_vol_rate", "ctx_invol_rate",
	"migrations_rate", "minflt_rate", "majflt_rate", "rss_bytes", "numa_local_frac",
	"io_read_bps", "io_write_bps", "io_ops_rate", "io_avg_size", "net_rx_bps",
	"net_tx_bps", "ipc_rate", "comm_peers", "sockets", "threads",
	"cpu_throttled_frac", "syscall_entropy", "psi_cpu", "psi_mem", "psi_io",
	"ipc_insn_per_cycle", "llc_miss_ratio", "cache_miss_rate", "branch_miss_ratio",
}

// linearFeature reports whether a feature is a bounded fraction fed as is;
// every other feature is fed as log1p(max(0, x)).
func linearFeature(name string) bool {
	return name == "user_frac" || name == "numa_local_frac" || name == "cpu_throttled_frac" ||
		strings.HasPrefix(name, "psi_") || name == "llc_miss_ratio" || name == "branch_miss_ratio"
}

func transformFeature(name string, v float64) float64 {
	if linearFeature(name) {
		return v
	}
	return math.Log1p(math.Max(0, v))
}

// clipZ bounds a normalised feature, so one wild reading cannot dominate.
const clipZ = 8

// ModelShape is the network's size.
type ModelShape struct {
	Hidden int `json:"hidden"` // GRU units
	Latent int `json:"latent"` // embedding length
	Dec    int `json:"decoder"`
	Window int `json:"window"` // frames per window
}

// TrainInfo records how a model was trained.
type TrainInfo struct {
	Seed    uint64   `json:"seed"`
	Epochs  int      `json:"epochs"`
	Traces  []string `json:"traces"`
	Windows int      `json:"windows"`
	Loss    float64  `json:"final_loss"`
	// Seconds and TrainedAt are not written to the file, so that training
	// the same traces with the same seed gives the same bytes.
	Seconds   float64   `json:"-"`
	TrainedAt time.Time `json:"-"`
}

// Model is a trained sequence autoencoder with its normalisation and
// archetype catalog. It is read-only once built; use an Embedder per
// goroutine.
type Model struct {
	Features []string         `json:"features"`
	Mean     []float64        `json:"mean"`
	Std      []float64        `json:"std"`
	Shape    ModelShape       `json:"shape"`
	Catalog  ArchetypeCatalog `json:"catalog"`
	Phase    PhaseRule        `json:"phase"`
	Info     TrainInfo        `json:"info"`
	params   []float64
	l        layout
	geneIdx  map[string]int
}

// maxShapeDim bounds each dimension of a model's shape, so that the
// parameter count computed from a file's header cannot overflow and wrap
// onto the (small) count the file stores.
const maxShapeDim = 1 << 12

func (m *Model) init() error {
	f := len(m.Features)
	if f == 0 || len(m.Mean) != f || len(m.Std) != f {
		return fmt.Errorf("%d features, %d means, %d deviations", f, len(m.Mean), len(m.Std))
	}
	if m.Shape.Hidden <= 0 || m.Shape.Latent <= 0 || m.Shape.Dec <= 0 || m.Shape.Window <= 0 ||
		max(m.Shape.Hidden, m.Shape.Latent, m.Shape.Dec, m.Shape.Window) > maxShapeDim {
		return fmt.Errorf("bad shape %+v (each dimension 1..%d)", m.Shape, maxShapeDim)
	}
	known := map[string]bool{}
	for _, g := range Catalog {
		known[g.Name] = true
	}
	m.geneIdx = map[string]int{}
	for i, name := range m.Features {
		if !known[name] {
			return fmt.Errorf("feature %q is not a gene of this sculpt (model from another version?)", name)
		}
		if m.Std[i] <= 0 {
			return fmt.Errorf("feature %q has deviation %v", name, m.Std[i])
		}
		m.geneIdx[name] = i
	}
	m.l = newLayout(shape{F: f, H: m.Shape.Hidden, Z: m.Shape.Latent, D: m.Shape.Dec, W: m.Shape.Window})
	for _, a := range m.Catalog.Archetypes {
		if len(a.Centroid) != m.Shape.Latent {
			return fmt.Errorf("archetype %q centroid has %d dimensions, latent is %d", a.Name, len(a.Centroid), m.Shape.Latent)
		}
		if !IsKind(a.Kind) {
			return fmt.Errorf("archetype %q has kind %q, not one of %v", a.Name, a.Kind, KindNames())
		}
	}
	return nil
}

// Window is the number of frames the encoder reads.
func (m *Model) Window() int { return m.Shape.Window }

// Row turns one frame into an encoder input row (normalised values, then
// presence flags). A frame without an interval (a workload's first) has no
// rates and gives nil.
func (m *Model) Row(f *telemetry.Frame) []float64 {
	if f.Interval <= 0 {
		return nil
	}
	g, _ := ComputeGenes([]telemetry.Frame{*f})
	return m.RowFromGenes(g)
}

// RowFromGenes turns per-frame genes into an encoder input row.
func (m *Model) RowFromGenes(g Genes) []float64 {
	F := len(m.Features)
	row := make([]float64, 2*F)
	for i, name := range m.Features {
		v, ok := g[name]
		if !ok {
			continue
		}
		x := (transformFeature(name, v) - m.Mean[i]) / m.Std[i]
		row[i] = math.Max(-clipZ, math.Min(clipZ, x))
		row[F+i] = 1
	}
	return row
}

// Embedder embeds windows with one model; it is not safe for concurrent use.
type Embedder struct {
	m    *Model
	enc  *encoder
	rows [][]float64
}

// NewEmbedder returns an Embedder for m.
func (m *Model) NewEmbedder() *Embedder {
	return &Embedder{m: m, enc: newEncoder(m.l, m.params), rows: make([][]float64, m.Shape.Window)}
}

// Embed returns the embedding of the newest Window() rows (oldest first;
// nil rows count as all-absent). With fewer rows the window is padded at the
// start with all-absent rows, as in training.
func (e *Embedder) Embed(rows [][]float64) []float64 {
	z := make([]float64, e.m.Shape.Latent)
	e.EmbedInto(rows, z)
	return z
}

// EmbedInto is Embed writing into z (len Latent), without allocating.
func (e *Embedder) EmbedInto(rows [][]float64, z []float64) {
	W := e.m.Shape.Window
	if len(rows) > W {
		rows = rows[len(rows)-W:]
	}
	pad := W - len(rows)
	for i := 0; i < pad; i++ {
		e.rows[i] = nil
	}
	copy(e.rows[pad:], rows)
	e.enc.embed(e.rows, z)
}

// Project returns the encoder's input projection of one row (see
// EmbedProjected); nil stays nil (padding).
func (e *Embedder) Project(row []float64) []float64 {
	if row == nil {
		return nil
	}
	return e.enc.project(row)
}

// EmbedProjected is EmbedInto over rows already projected with Project: the
// cheap path for a workload observed every sweep (one projection per new
// frame, then only the recurrent steps).
func (e *Embedder) EmbedProjected(pres [][]float64, z []float64) {
	W := e.m.Shape.Window
	if len(pres) > W {
		pres = pres[len(pres)-W:]
	}
	pad := W - len(pres)
	for i := 0; i < pad; i++ {
		e.rows[i] = nil
	}
	copy(e.rows[pad:], pres)
	e.enc.embedProjected(e.rows[:W], z)
}

// Marshal encodes the model file: magic, version (uint16), JSON length
// (uint32), JSON (features, normalisation, shape, catalog, phase rule,
// training info), parameter count (uint32), float64 parameters, and a
// CRC-32C over everything before it. Integers are little-endian.
func (m *Model) Marshal() ([]byte, error) {
	js, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode model: %w", err)
	}
	b := make([]byte, 0, len(ModelMagic)+10+len(js)+8*len(m.params)+4)
	b = append(b, ModelMagic...)
	b = binary.LittleEndian.AppendUint16(b, ModelVersion)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(js)))
	b = append(b, js...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(m.params)))
	for _, p := range m.params {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(p))
	}
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b, castagnoliTable)), nil
}

var castagnoliTable = crc32.MakeTable(crc32.Castagnoli)

// ErrModelMismatch is wrapped when a model file is intact but made for
// another format version or another set of genes.
var ErrModelMismatch = errors.New("model does not match this sculpt")

// ErrModelCorrupt is wrapped when a model file is damaged or truncated.
var ErrModelCorrupt = errors.New("model file corrupt")

// ParseModel decodes and checks a model file; name labels errors.
func ParseModel(b []byte, name string) (*Model, error) {
	bad := func(kind error, format string, args ...any) error {
		return fmt.Errorf("model %s: %s: %w", name, fmt.Sprintf(format, args...), kind)
	}
	pre := len(ModelMagic) + 2 + 4
	if len(b) < pre {
		return nil, bad(ErrModelCorrupt, "truncated: %d bytes", len(b))
	}
	if string(b[:len(ModelMagic)]) != ModelMagic {
		return nil, bad(ErrModelCorrupt, "not a sculpt model (magic %q)", b[:len(ModelMagic)])
	}
	if v := binary.LittleEndian.Uint16(b[len(ModelMagic):]); v != ModelVersion {
		return nil, bad(ErrModelMismatch, "model format version %d, this sculpt reads version %d", v, ModelVersion)
	}
	if len(b) < pre+4 {
		return nil, bad(ErrModelCorrupt, "truncated: %d bytes", len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if got := crc32.Checksum(body, castagnoliTable); got != sum {
		return nil, bad(ErrModelCorrupt, "checksum mismatch (crc32c %08x, stored %08x): damaged or truncated (%d bytes)", got, sum, len(b))
	}
	n := int(binary.LittleEndian.Uint32(b[len(ModelMagic)+2:]))
	if pre+n+4 > len(body) {
		return nil, bad(ErrModelCorrupt, "header of %d bytes runs past the end", n)
	}
	m := &Model{}
	if err := json.Unmarshal(b[pre:pre+n], m); err != nil {
		return nil, bad(ErrModelCorrupt, "bad header: %v", err)
	}
	if err := m.init(); err != nil {
		return nil, bad(ErrModelMismatch, "%v", err)
	}
	rest := body[pre+n:]
	np := int(binary.LittleEndian.Uint32(rest))
	rest = rest[4:]
	if np != m.l.n || len(rest) != 8*np {
		return nil, bad(ErrModelMismatch, "%d parameters (%d bytes) stored, the shape needs %d", np, len(rest), m.l.n)
	}
	m.params = make([]float64, np)
	for i := range m.params {
		m.params[i] = math.Float64frombits(binary.LittleEndian.Uint64(rest[8*i:]))
		if math.IsNaN(m.params[i]) || math.IsInf(m.params[i], 0) {
			return nil, bad(ErrModelCorrupt, "parameter %d is %v", i, m.params[i])
		}
	}
	return m, nil
}

// LoadModel reads a model file.
func LoadModel(path string) (*Model, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	return ParseModel(b, path)
}

// WriteFile writes the model to path via a temporary file, fsync and
// rename.
func (m *Model) WriteFile(path string) error {
	b, err := m.Marshal()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write model %s: %w", path, err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		_ = os.Remove(f.Name())
		return fmt.Errorf("write model %s: %w", path, err)
	}
	return nil
}

//go:embed models/default.model
var defaultModel []byte

// DefaultModelName names the embedded model in messages.
const DefaultModelName = "<embedded default>"

// DefaultModel returns the model embedded in the binary (trained by `make
// model`, docs/dna-model.md). An error means the embedded file is missing,
// corrupt or made for another version; callers fall back to the gene
// classifier.
func DefaultModel() (*Model, error) {
	if len(defaultModel) == 0 {
		return nil, fmt.Errorf("model %s: none embedded in this build: %w", DefaultModelName, ErrModelMismatch)
	}
	return ParseModel(defaultModel, DefaultModelName)
}

func crc32Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoliTable) }
