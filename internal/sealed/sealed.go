// Package sealed reads and writes sculpt's small state files (the journal,
// the agent's experience): a header line naming the format, its version,
// the body's length and its SHA-256, then the body; written through a
// temporary file, fsync, rename and an fsync of the directory, so a file on
// disk is always a whole old or a whole new version.
//
//	<magic> <version> <body length> <sha256 of body, hex>\n<body>
package sealed

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Seal returns body behind its header.
func Seal(magic string, version int, body []byte) []byte {
	sum := sha256.Sum256(body)
	var out bytes.Buffer
	fmt.Fprintf(&out, "%s %d %d %s\n", magic, version, len(body), hex.EncodeToString(sum[:]))
	out.Write(body)
	return out.Bytes()
}

// Open checks data's header against magic and versions 1..maxVersion, its
// length and checksum, and returns the version and body. The error says
// what is wrong in words an operator can act on ("truncated: ...",
// "corrupt: the SHA-256 checksum does not match", "written by a newer
// sculpt ..."); callers put the path and what to do around it. what names
// the kind of file ("journal", "experience file").
func Open(data []byte, magic, what string, maxVersion int) (int, []byte, error) {
	header, rest, ok := bytes.Cut(data, []byte("\n"))
	if !bytes.HasPrefix(data, []byte(magic+" ")) {
		if len(data) == 0 {
			return 0, nil, fmt.Errorf("the file is empty (truncated)")
		}
		return 0, nil, fmt.Errorf("not a sculpt %s (it does not start with %q)", what, magic)
	}
	if !ok {
		return 0, nil, fmt.Errorf("truncated: the header line is incomplete")
	}
	f := strings.Fields(string(header))
	if len(f) != 4 {
		return 0, nil, fmt.Errorf("malformed header %q", header)
	}
	v, err := strconv.Atoi(f[1])
	if err != nil {
		return 0, nil, fmt.Errorf("malformed version %q", f[1])
	}
	if v > maxVersion {
		return v, nil, fmt.Errorf("written by a newer sculpt (format version %d, this sculpt reads up to %d)", v, maxVersion)
	}
	if v < 1 {
		return v, nil, fmt.Errorf("unknown format version %d", v)
	}
	n, err := strconv.Atoi(f[2])
	if err != nil || n < 0 {
		return v, nil, fmt.Errorf("malformed length %q", f[2])
	}
	// Only the form Seal writes: single spaces, no leading zeros or signs.
	if string(header) != fmt.Sprintf("%s %d %d %s", magic, v, n, f[3]) {
		return v, nil, fmt.Errorf("malformed header %q", header)
	}
	if len(rest) < n {
		return v, nil, fmt.Errorf("truncated: the header promises %d bytes, the file holds %d", n, len(rest))
	}
	if len(rest) > n {
		return v, nil, fmt.Errorf("%d unexpected bytes after the body", len(rest)-n)
	}
	sum := sha256.Sum256(rest)
	if hex.EncodeToString(sum[:]) != f[3] {
		return v, nil, fmt.Errorf("corrupt: the SHA-256 checksum does not match the contents")
	}
	return v, rest, nil
}

// WriteFile replaces path with data: a temporary file beside it with mode
// perm, fsync, rename over path, fsync of the directory.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
	if err != nil {
		return named("write", tmp, err)
	}
	if _, err := f.Write(data); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return named("write", tmp, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		_ = os.Remove(tmp)
		return named("fsync", tmp, err)
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(tmp)
		return named("close", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		_ = os.Remove(tmp)
		return named("rename "+tmp+" to", path, err)
	}
	return SyncDir(filepath.Dir(path))
}

// named wraps err with op and path unless it names the path already (an
// *fs.PathError or *os.LinkError from the os package does): a message says
// each path once.
func named(op, path string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	if errors.As(err, &pe) || errors.As(err, &le) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, path, err)
}

// SyncDir fsyncs a directory, so that a rename in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer func() { _ = d.Close() }()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}
