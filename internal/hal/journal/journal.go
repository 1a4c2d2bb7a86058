// Package journal is sculpt's crash-safe record of the changes it made to
// the machine: every action is written, with the action that undoes it,
// before it is applied, so that `sculpt revert` or a start-up after a crash
// can put the machine back.
//
// # File format
//
// One header line, then a JSON body:
//
//	sculpt-journal 1 <body length> <sha256 of body, hex>\n
//	{"next_seq":3,"entries":[{"seq":1,"state":"applied","action":{"kind":"pin",...},"undo":{...},"process":{...}}, ...]}
//
// Every write goes to a temporary file that is fsynced, renamed over the
// journal, and followed by an fsync of the directory, so the journal on disk
// is always either the old or the new version, never a mix. A journal whose
// magic, version, length or checksum does not match is refused with a
// *FormatError that says what is wrong and what to do.
//
// An exclusive flock on "<path>.lock" is held from Open to Close, so two
// sculpt processes never interleave their changes.
package journal

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
	"sculpt/internal/sealed"
)

// DefaultPath is where sculpt keeps its journal unless told otherwise
// (--journal, $SCULPT_JOURNAL).
const DefaultPath = "/var/lib/sculpt/journal.json"

// Magic opens every journal file; Version is the format this code writes.
const (
	Magic   = "sculpt-journal"
	Version = 1
)

// State says how far an entry got.
type State string

const (
	// Pending: recorded, the change may or may not have been made (sculpt
	// stopped or failed in between). Its undo is safe to apply either way.
	Pending State = "pending"
	// Applied: the change was made.
	Applied State = "applied"
)

// Process identifies the process an action changed: a PID alone can be
// reused, PID plus start time cannot.
type Process struct {
	PID       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // /proc/PID/stat field 22, clock ticks after boot
	Comm      string `json:"comm,omitempty"`
}

// Entry is one journaled action.
type Entry struct {
	Seq     uint64
	Time    time.Time
	State   State
	Action  hal.Action
	Undo    hal.Action
	Process *Process // nil when the action changes no single process
	// BootTicks is CLOCK_BOOTTIME when the entry was recorded (before the
	// change), in clock ticks (USER_HZ) like /proc/PID/stat starttime: a
	// process whose start time is at least BootTicks started after the
	// action and may have inherited it. 0 in entries written before the
	// field existed.
	BootTicks uint64
}

type entryJSON struct {
	Seq       uint64         `json:"seq"`
	Time      time.Time      `json:"time"`
	State     State          `json:"state"`
	Action    hal.JSONAction `json:"action"`
	Undo      hal.JSONAction `json:"undo"`
	Process   *Process       `json:"process,omitempty"`
	BootTicks uint64         `json:"boot_ticks,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (e Entry) MarshalJSON() ([]byte, error) {
	return json.Marshal(entryJSON{e.Seq, e.Time, e.State, hal.JSONAction{Action: e.Action}, hal.JSONAction{Action: e.Undo}, e.Process, e.BootTicks})
}

// UnmarshalJSON implements json.Unmarshaler.
func (e *Entry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = Entry{Seq: j.Seq, Time: j.Time, State: j.State, Action: j.Action.Action, Undo: j.Undo.Action, Process: j.Process, BootTicks: j.BootTicks}
	return nil
}

type body struct {
	NextSeq uint64  `json:"next_seq"`
	Entries []Entry `json:"entries"`
}

// ErrFormat matches every *FormatError with errors.Is.
var ErrFormat = errors.New("journal format")

// FormatError says a journal file cannot be read as one: it is corrupt,
// truncated, someone else's, or from a newer sculpt.
type FormatError struct {
	Path    string
	Problem string
}

func (e *FormatError) Error() string {
	return fmt.Sprintf("journal %s: %s; sculpt will not act on it. If it is sculpt's, undo its changes by hand and run `sculpt revert --force-discard --journal %s` (it moves the file aside); if it is not, move it away or point sculpt elsewhere with --journal",
		e.Path, e.Problem, e.Path)
}

// Is makes errors.Is(err, ErrFormat) true.
func (e *FormatError) Is(target error) bool { return target == ErrFormat }

// ErrLocked is returned (wrapped) by Open when another process holds the
// journal.
var ErrLocked = errors.New("journal is locked by another sculpt process")

// Journal is an open, locked journal file.
type Journal struct {
	path string
	lock *os.File
	b    body
}

// Open locks and reads the journal at path, creating its directory if
// needed; a missing file is an empty journal. It fails with ErrLocked when
// another process has it open, and with a *FormatError when the file is not
// a journal this sculpt can read.
func Open(path string) (*Journal, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create journal directory %s: %w", dir, err)
	}
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open journal lock: %w", err) // the error names the file
	}
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = lock.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("journal %s: %w (wait for it to finish, or stop it)", path, ErrLocked)
		}
		return nil, fmt.Errorf("lock %s.lock: %w", path, err)
	}
	j := &Journal{path: path, lock: lock, b: body{NextSeq: 1}}
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return j, nil
	case err != nil:
		_ = j.Close()
		return nil, fmt.Errorf("read journal %s: %w", path, err)
	}
	if err := decodeFile(path, data, &j.b); err != nil {
		_ = j.Close()
		return nil, err
	}
	return j, nil
}

// decodeFile checks the header and checksum of data and decodes the body.
func decodeFile(path string, data []byte, b *body) error {
	v, rest, err := sealed.Open(data, Magic, "journal", Version)
	if err != nil {
		problem := err.Error()
		if v > Version {
			problem += "; use that sculpt to revert"
		}
		return &FormatError{Path: path, Problem: problem}
	}
	if err := json.Unmarshal(rest, b); err != nil {
		return &FormatError{Path: path, Problem: fmt.Sprintf("corrupt body: %v", err)}
	}
	if b.NextSeq == 0 {
		b.NextSeq = 1
	}
	return nil
}

// encodeFile renders b with its header.
func encodeFile(b *body) ([]byte, error) {
	js, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	return sealed.Seal(Magic, Version, js), nil
}

// Path returns the journal's file name.
func (j *Journal) Path() string { return j.path }

// Close releases the lock. The journal stays on disk.
func (j *Journal) Close() error {
	if j.lock == nil {
		return nil
	}
	err := j.lock.Close() // closing the descriptor drops the flock
	j.lock = nil
	return err
}

// Record appends e as pending (its Seq, Time and State are set here) and
// writes the journal to disk before returning its sequence number. Call it
// before making the change.
func (j *Journal) Record(e Entry) (uint64, error) {
	if e.Action == nil || e.Undo == nil {
		return 0, fmt.Errorf("journal %s: an entry needs an action and its undo", j.path)
	}
	e.Seq = j.b.NextSeq
	e.State = Pending
	if e.Time.IsZero() {
		e.Time = time.Now().UTC()
	}
	next := j.b
	next.NextSeq++
	next.Entries = append(slices.Clip(j.b.Entries), e)
	if err := j.write(&next); err != nil {
		return 0, err
	}
	j.b = next
	return e.Seq, nil
}

// MarkApplied records that the change of entry seq was made.
func (j *Journal) MarkApplied(seq uint64) error {
	return j.update(seq, func(e *Entry) { e.State = Applied })
}

// Drop removes entry seq (its change was undone, or never happened).
func (j *Journal) Drop(seq uint64) error {
	i := j.index(seq)
	if i < 0 {
		return fmt.Errorf("journal %s: no entry %d", j.path, seq)
	}
	next := j.b
	next.Entries = slices.Delete(slices.Clone(j.b.Entries), i, i+1)
	if err := j.write(&next); err != nil {
		return err
	}
	j.b = next
	return nil
}

// DropMany removes the given entries with one write (one fsync): a revert
// of many entries stays quick when the disk is slow, and re-undoing an
// entry after a crash in between is harmless. Unknown seqs are an error and
// nothing is dropped.
func (j *Journal) DropMany(seqs ...uint64) error {
	if len(seqs) == 0 {
		return nil
	}
	drop := make(map[uint64]bool, len(seqs))
	for _, seq := range seqs {
		if j.index(seq) < 0 {
			return fmt.Errorf("journal %s: no entry %d", j.path, seq)
		}
		drop[seq] = true
	}
	next := j.b
	next.Entries = slices.DeleteFunc(slices.Clone(j.b.Entries), func(e Entry) bool { return drop[e.Seq] })
	if err := j.write(&next); err != nil {
		return err
	}
	j.b = next
	return nil
}

func (j *Journal) update(seq uint64, f func(*Entry)) error {
	i := j.index(seq)
	if i < 0 {
		return fmt.Errorf("journal %s: no entry %d", j.path, seq)
	}
	next := j.b
	next.Entries = slices.Clone(j.b.Entries)
	f(&next.Entries[i])
	if err := j.write(&next); err != nil {
		return err
	}
	j.b = next
	return nil
}

func (j *Journal) index(seq uint64) int {
	return slices.IndexFunc(j.b.Entries, func(e Entry) bool { return e.Seq == seq })
}

// Entries returns the entries, oldest first.
func (j *Journal) Entries() []Entry { return slices.Clone(j.b.Entries) }

// Len is the number of entries.
func (j *Journal) Len() int { return len(j.b.Entries) }

// Clear empties the journal: the file is removed (and the removal synced),
// so a later start finds nothing to restore.
func (j *Journal) Clear() error {
	if err := os.Remove(j.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove journal %s: %w", j.path, err)
	}
	if err := sealed.SyncDir(filepath.Dir(j.path)); err != nil {
		return err
	}
	j.b = body{NextSeq: j.b.NextSeq}
	return nil
}

// write replaces the journal file with b: temp file, fsync, rename, fsync
// of the directory.
func (j *Journal) write(b *body) error {
	if j.lock == nil {
		return fmt.Errorf("journal %s is closed", j.path)
	}
	data, err := encodeFile(b)
	if err != nil {
		return fmt.Errorf("encode journal %s: %w", j.path, err)
	}
	if err := sealed.WriteFile(j.path, data, 0o600); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	return nil
}

// ForceDiscard moves an unreadable (or unwanted) journal aside to
// "<path>.discarded-<UTC time>" without acting on it, and returns the new
// name ("" when there was no journal). It takes the lock first.
func ForceDiscard(path string) (string, error) {
	lock, err := os.OpenFile(path+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return "", fmt.Errorf("open journal lock: %w", err) // the error names the file
	}
	defer func() { _ = lock.Close() }()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		if errors.Is(err, unix.EWOULDBLOCK) {
			return "", fmt.Errorf("journal %s: %w", path, ErrLocked)
		}
		return "", fmt.Errorf("lock %s.lock: %w", path, err)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	dst := path + ".discarded-" + time.Now().UTC().Format("20060102T150405Z")
	if err := os.Rename(path, dst); err != nil {
		return "", fmt.Errorf("move journal %s aside: %w", path, err)
	}
	return dst, sealed.SyncDir(filepath.Dir(path))
}
