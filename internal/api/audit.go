package api

import (
	"bytes"
	"encoding/json"
	"sync"
)

// DefaultAuditSize is how many audit records an AuditLog keeps by default.
const DefaultAuditSize = 10000

// AuditLog keeps the latest records of the engine's audit log (one JSON
// object per Write, as json.Encoder writes them), numbered from 1. Safe
// for concurrent use.
type AuditLog struct {
	mu   sync.Mutex
	size int
	recs []AuditEntry // oldest first
	seq  uint64
}

// AuditEntry is one record with its sequence number.
type AuditEntry struct {
	Seq    uint64          `json:"seq"`
	Record json.RawMessage `json:"record"`
	event  string
	work   string
}

// NewAuditLog keeps the latest size records (0: DefaultAuditSize).
func NewAuditLog(size int) *AuditLog {
	if size <= 0 {
		size = DefaultAuditSize
	}
	return &AuditLog{size: size}
}

// Write takes one or more JSON lines; a line that is not a JSON object is
// dropped (the audit log is best effort, like the engine's).
func (l *AuditLog) Write(p []byte) (int, error) {
	for line := range bytes.SplitSeq(p, []byte{'\n'}) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var head struct {
			Event    string `json:"event"`
			Workload string `json:"workload"`
		}
		if json.Unmarshal(line, &head) != nil {
			continue
		}
		l.mu.Lock()
		l.seq++
		l.recs = append(l.recs, AuditEntry{Seq: l.seq, Record: bytes.Clone(line), event: head.Event, work: head.Workload})
		if len(l.recs) > l.size {
			l.recs = append(l.recs[:0], l.recs[len(l.recs)-l.size:]...)
		}
		l.mu.Unlock()
	}
	return len(p), nil
}

// AuditFilter selects records: after a sequence number, of one workload
// and/or one event, at most Limit of them.
type AuditFilter struct {
	After    uint64
	Workload string
	Event    string
	Limit    int
}

// Query returns the oldest records matching f after f.After, and the
// cursor to pass as After for the next page.
func (l *AuditLog) Query(f AuditFilter) ([]AuditEntry, uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []AuditEntry
	next := f.After
	for _, r := range l.recs {
		if r.Seq <= f.After {
			continue
		}
		if len(out) == f.Limit {
			break
		}
		next = r.Seq
		if (f.Workload != "" && r.work != f.Workload) || (f.Event != "" && r.event != f.Event) {
			continue
		}
		out = append(out, r)
	}
	return out, next
}
