package linux

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
	"sculpt/internal/host"
)

// fakeSRIOV builds a sysfs with an SR-IOV physical function 0000:3b:00.0
// (8 VFs at most, numvfs as given) and a device 0000:00:1f.0 without SR-IOV.
// Its sriov_numvfs is a regular file, so every write is visible.
func fakeSRIOV(t *testing.T, numvfs string) (host.Roots, string) {
	t.Helper()
	sys := t.TempDir()
	pf := filepath.Join(sys, "bus/pci/devices/0000:3b:00.0")
	plain := filepath.Join(sys, "bus/pci/devices/0000:00:1f.0")
	for _, d := range []string{pf, plain} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, v := range map[string]string{"sriov_totalvfs": "8\n", "sriov_numvfs": numvfs} {
		if err := os.WriteFile(filepath.Join(pf, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return host.Roots{Sys: sys}, filepath.Join(pf, "sriov_numvfs")
}

func TestNumVFsFixture(t *testing.T) {
	roots, numvfs := fakeSRIOV(t, "0\n")
	const pf = "0000:3b:00.0"
	if n, err := ReadNumVFs(roots, pf); err != nil || n != 0 {
		t.Fatalf("ReadNumVFs = %d, %v; want 0", n, err)
	}
	if err := WriteNumVFs(roots, pf, 4); err != nil {
		t.Fatal(err)
	}
	if n, err := ReadNumVFs(roots, pf); err != nil || n != 4 {
		t.Fatalf("after WriteNumVFs 4: %d, %v", n, err)
	}

	// 4 -> 2 (through 0: see TestNumVFsGoesThroughZero).
	if err := WriteNumVFs(roots, pf, 2); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(numvfs); string(b) != "2" {
		t.Errorf("sriov_numvfs = %q after 4 -> 2, want \"2\"", b)
	}
	if err := WriteNumVFs(roots, pf, 0); err != nil {
		t.Fatal(err)
	}
	if n, _ := ReadNumVFs(roots, pf); n != 0 {
		t.Errorf("after WriteNumVFs 0: %d", n)
	}

	// More than sriov_totalvfs: refused, names both, writes nothing.
	err := WriteNumVFs(roots, pf, 9)
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "sriov_totalvfs is 8") || !strings.Contains(err.Error(), "9 VFs") {
		t.Errorf("WriteNumVFs 9 = %v, want EINVAL naming 9 and totalvfs 8", err)
	}
	if err := WriteNumVFs(roots, pf, -1); !errors.Is(err, unix.EINVAL) {
		t.Errorf("WriteNumVFs -1 = %v, want EINVAL", err)
	}
	if n, _ := ReadNumVFs(roots, pf); n != 0 {
		t.Errorf("refused writes changed sriov_numvfs to %d", n)
	}

	// A device without SR-IOV, an unknown device, a bad address.
	for _, f := range []func() error{
		func() error { _, err := ReadNumVFs(roots, "0000:00:1f.0"); return err },
		func() error { return WriteNumVFs(roots, "0000:00:1f.0", 1) },
	} {
		if err := f(); !errors.Is(err, hal.ErrNotSupported) || !strings.Contains(err.Error(), "0000:00:1f.0") {
			t.Errorf("device without SR-IOV: %v, want not supported naming it", err)
		}
	}
	if _, err := ReadNumVFs(roots, "0000:99:00.0"); !errors.Is(err, os.ErrNotExist) || errors.Is(err, hal.ErrNotSupported) {
		t.Errorf("unknown device: %v, want ENOENT", err)
	}
	for _, addr := range []string{"", "..", "0000:3b:00.0/../x"} {
		if _, err := ReadNumVFs(roots, addr); !errors.Is(err, unix.EINVAL) {
			t.Errorf("ReadNumVFs(%q) = %v, want EINVAL", addr, err)
		}
	}
}

// kernelNumVFsWriter plays the kernel's rule on a fixture file: a non-zero
// count changes only through 0 (EBUSY otherwise). It records every write;
// failAt makes the write with that index fail with ENOMEM.
type kernelNumVFsWriter struct {
	writes []string
	failAt int
}

func (k *kernelNumVFsWriter) write(path, value string) error {
	k.writes = append(k.writes, value)
	if len(k.writes)-1 == k.failAt {
		return fmt.Errorf("write %q to %s: %w", value, path, unix.ENOMEM)
	}
	cur, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if c := strings.TrimSpace(string(cur)); c != "0" && value != "0" {
		return fmt.Errorf("write %q to %s: %w", value, path, unix.EBUSY)
	}
	return ionetWrite(path, value)
}

func TestNumVFsGoesThroughZero(t *testing.T) {
	const pf = "0000:3b:00.0"
	cases := []struct {
		from       string
		to         int
		failAt     int
		wantWrites []string
		wantFinal  string
		wantErr    string
	}{
		{"3", 2, -1, []string{"0", "2"}, "2", ""},
		{"0", 5, -1, []string{"5"}, "5", ""},
		{"5", 0, -1, []string{"0"}, "0", ""},
		{"4", 4, -1, nil, "4", ""},
		{"3", 2, 0, []string{"0"}, "3", "disable 3 VFs before enabling 2"},
		{"3", 2, 1, []string{"0", "2"}, "0", "VFs are now 0 (were 3)"},
	}
	for _, c := range cases {
		roots, numvfs := fakeSRIOV(t, c.from)
		k := &kernelNumVFsWriter{failAt: c.failAt}
		err := sriovWriteNumVFs(roots, pf, c.to, k.write)
		if c.wantErr == "" && err != nil {
			t.Errorf("%s -> %d: %v", c.from, c.to, err)
		}
		if c.wantErr != "" && (err == nil || !strings.Contains(err.Error(), c.wantErr) || !errors.Is(err, unix.ENOMEM)) {
			t.Errorf("%s -> %d failing write %d: %v, want ENOMEM saying %q", c.from, c.to, c.failAt, err, c.wantErr)
		}
		if !slices.Equal(k.writes, c.wantWrites) {
			t.Errorf("%s -> %d wrote %q, want %q", c.from, c.to, k.writes, c.wantWrites)
		}
		if b, _ := os.ReadFile(numvfs); strings.TrimSpace(string(b)) != c.wantFinal {
			t.Errorf("%s -> %d left sriov_numvfs %q, want %q", c.from, c.to, b, c.wantFinal)
		}
	}
}
