package main

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

type cpioEntry struct {
	mode           uint64
	rmajor, rminor uint64
	data           string
}

// readNewc parses a newc archive, checking its magic and 4-byte padding.
func readNewc(t *testing.T, b []byte) map[string]cpioEntry {
	t.Helper()
	out := map[string]cpioEntry{}
	off := 0
	field := func(i int) uint64 {
		v, err := strconv.ParseUint(string(b[off+6+8*i:off+14+8*i]), 16, 64)
		if err != nil {
			t.Fatalf("header at %d field %d: %v", off, i, err)
		}
		return v
	}
	for {
		if string(b[off:off+6]) != "070701" {
			t.Fatalf("bad magic at offset %d: %q", off, b[off:off+6])
		}
		mode, size, rmaj, rmin, nameLen := field(1), field(6), field(9), field(10), field(11)
		name := string(b[off+110 : off+110+int(nameLen)-1])
		dataOff := (off + 110 + int(nameLen) + 3) &^ 3
		if name == "TRAILER!!!" {
			if dataOff != len(b) {
				t.Fatalf("trailer ends at %d, archive is %d bytes", dataOff, len(b))
			}
			return out
		}
		out[name] = cpioEntry{mode, rmaj, rmin, string(b[dataOff : dataOff+int(size)])}
		off = (dataOff + int(size) + 3) &^ 3
	}
}

func TestImageHasInitAndConsole(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "init")
	if err := os.WriteFile(src, []byte("#!init binary, 21 b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "initrd.cpio")
	if err := run(out, []string{"/init=" + src}); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	got := readNewc(t, b)
	if e := got["init"]; e.data != "#!init binary, 21 b\n" || e.mode != modeFile|0o755 {
		t.Errorf("init = %+v, want the file, mode 0100755", e)
	}
	if e := got["dev/console"]; e.mode != modeChar|0o600 || e.rmajor != 5 || e.rminor != 1 {
		t.Errorf("dev/console = %+v, want char 5,1", e)
	}
	for _, d := range []string{"dev", "proc", "sys", "tmp"} {
		if got[d].mode != modeDir|0o755 {
			t.Errorf("%s = %+v, want a directory", d, got[d])
		}
	}
	if err := run(out, []string{"init=" + src}); err == nil {
		t.Error("relative image path accepted, want an error")
	}
}
