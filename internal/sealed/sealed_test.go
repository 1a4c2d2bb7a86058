package sealed

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSealOpenRoundTripAndRefusals(t *testing.T) {
	good := Seal("sculpt-test", 2, []byte(`{"a":1}`))
	v, body, err := Open(good, "sculpt-test", "test file", 2)
	if err != nil || v != 2 || string(body) != `{"a":1}` {
		t.Fatalf("Open(Seal) = %d %q %v", v, body, err)
	}
	flipped := []byte(strings.Replace(string(good), `"a"`, `"b"`, 1))
	for name, tc := range map[string]struct {
		data []byte
		max  int
		want string
	}{
		"empty":     {nil, 2, "empty"},
		"foreign":   {[]byte("hello\n"), 2, `not a sculpt test file`},
		"cut":       {good[:len(good)-2], 2, "truncated: the header promises 7 bytes, the file holds 5"},
		"no header": {[]byte("sculpt-test 2 7"), 2, "header line is incomplete"},
		"flipped":   {flipped, 2, "checksum does not match"},
		"newer":     {good, 1, "newer sculpt (format version 2, this sculpt reads up to 1)"},
		"trailing":  {append(append([]byte{}, good...), 'x'), 2, "1 unexpected bytes"},
	} {
		if _, _, err := Open(tc.data, "sculpt-test", "test file", tc.max); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to say %q", name, err, tc.want)
		}
	}
}

func TestWriteFileReplacesWhole(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	for _, s := range []string{"first version", "second"} {
		if err := WriteFile(p, []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(p)
		if err != nil || string(b) != s {
			t.Fatalf("read %q %v, want %q", b, err, s)
		}
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %v %v, want 0600", fi.Mode(), err)
	}
	if _, err := os.Stat(p + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left behind: %v", err)
	}
	if err := WriteFile(filepath.Join(p, "under-a-file"), []byte("x"), 0o600); err == nil {
		t.Error("write under a regular file succeeded")
	}
}

// TestWriteFileNamesPathOnce: a failed write names the file once, not
// "write X: write X: ..." (the crash torture's disk-full journal said each
// path twice).
func TestWriteFileNamesPathOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing", "state")
	err := WriteFile(path, []byte("x"), 0o600)
	if err == nil {
		t.Fatal("WriteFile into a missing directory succeeded")
	}
	if n := strings.Count(err.Error(), path+".tmp"); n != 1 {
		t.Errorf("error %q names %s.tmp %d times, want once", err, path, n)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error %q does not wrap fs.ErrNotExist", err)
	}
}
