package linux

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
)

// wholeDiskOf returns MAJ:MIN of the whole block device holding dir (the
// parent disk of a partition).
func wholeDiskOf(t *testing.T, dir string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	dev := fmt.Sprintf("%d:%d", unix.Major(st.Dev), unix.Minor(st.Dev))
	sys := "/sys/dev/block/" + dev
	if _, err := os.Stat(sys); err != nil {
		t.Skipf("%s is on %s, not a block device (%v)", dir, dev, err)
	}
	if _, err := os.Stat(sys + "/partition"); err == nil {
		b, err := os.ReadFile(sys + "/../dev")
		if err != nil {
			t.Fatal(err)
		}
		dev = strings.TrimSpace(string(b))
	}
	return dev
}

func TestReadBlkioCaps(t *testing.T) {
	dir := t.TempDir()
	for f, v := range map[string]string{throttleFiles[0]: "254:0 100\n", throttleFiles[1]: "8:0 7\n254:0 4194304\n", "io.max": "8:0 rbps=1 wbps=2 riops=max wiops=max\n254:0 rbps=max wbps=1048576 riops=max wiops=max\n"} {
		if err := os.WriteFile(filepath.Join(dir, f), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	v1, err := readBlkioCaps(dir, false)
	if err != nil || v1["254:0"] != (hal.BlkioRate{ReadBPS: 100, WriteBPS: 4194304}) || v1["8:0"] != (hal.BlkioRate{WriteBPS: 7}) {
		t.Errorf("v1 caps %v, %v", v1, err)
	}
	v2, err := readBlkioCaps(dir, true)
	if err != nil || v2["254:0"] != (hal.BlkioRate{WriteBPS: 1048576}) || v2["8:0"] != (hal.BlkioRate{ReadBPS: 1, WriteBPS: 2}) {
		t.Errorf("v2 caps %v, %v", v2, err)
	}
	if _, ok := v1["9:9"]; ok {
		t.Error("a device without a cap has an entry")
	}
}

// A write cap on a cgroup slows a direct writer in it to the cap (a lower
// bound on its time: a slow machine cannot make it faster), and its undo
// leaves the throttle file as it was.
func TestBlkioLimitCapsDirectWritesAndReverts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to create cgroups and set throttles")
	}
	const root = "/sys/fs/cgroup/blkio"
	if _, err := os.Stat(root + "/blkio.throttle.write_bps_device"); err != nil {
		t.Skip("needs the cgroup v1 blkio hierarchy with throttling: " + err.Error())
	}
	dd, err := exec.LookPath("dd")
	if err != nil {
		t.Skip("needs dd: " + err.Error())
	}
	dir := t.TempDir()
	dev := wholeDiskOf(t, dir)
	b, _ := newBackend(t)
	ctx := context.Background()
	cg := "/sculpt-test-blkio-" + strconv.Itoa(os.Getpid())
	if _, err := b.Apply(ctx, hal.CreateCgroup{Cgroup: cg, Controllers: []string{"blkio"}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.Remove(root + cg) })
	const capBPS = 4 << 20
	undo, err := b.Apply(ctx, hal.BlkioLimit{Cgroup: cg, Device: dev, WriteBPS: capBPS})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(root + cg + "/blkio.throttle.write_bps_device")
	if !strings.Contains(string(got), fmt.Sprintf("%s %d", dev, capBPS)) {
		t.Fatalf("write_bps_device = %q, want %s %d", got, dev, capBPS)
	}
	// 12 MiB at 4 MiB/s: at least ~2 s (the first second's budget may
	// pass at once).
	out := filepath.Join(dir, "f")
	cmd := exec.Command("sh", "-c", fmt.Sprintf("echo $$ > %s/cgroup.procs && exec %s if=/dev/zero of=%s bs=1M count=12 oflag=direct 2>/dev/null", root+cg, dd, out))
	start := time.Now()
	if msg, err := cmd.CombinedOutput(); err != nil {
		if strings.Contains(string(msg), "Invalid argument") {
			t.Skipf("the file system under %s refuses O_DIRECT: %s", dir, msg)
		}
		t.Fatalf("dd: %v: %s", err, msg)
	}
	if took := time.Since(start); took < 1500*time.Millisecond {
		t.Errorf("12 MiB of direct writes under a 4 MiB/s cap took %v, want >= 2 s (the cap did not hold)", took)
	}
	if _, err := b.Apply(ctx, undo); err != nil {
		t.Fatal(err)
	}
	got, _ = os.ReadFile(root + cg + "/blkio.throttle.write_bps_device")
	if strings.Contains(string(got), dev) {
		t.Errorf("after the undo write_bps_device = %q, want no rule for %s", got, dev)
	}
}

// A device number that is not a block device here is refused before
// anything is written.
func TestBlkioLimitRefusesUnknownDevice(t *testing.T) {
	b, _ := newBackend(t)
	err := b.checkBlockDevice("blkio-limit", "4095:9999999")
	if err == nil || !strings.Contains(err.Error(), "4095:9999999") {
		t.Errorf("checkBlockDevice = %v, want a refusal naming the device", err)
	}
	if err := (hal.BlkioLimit{Cgroup: "/", Device: "254:0"}).Validate(); err == nil {
		t.Error("a cap on the root cgroup validated")
	}
	if err := (hal.BlkioLimit{Cgroup: "/x", Device: "vda"}).Validate(); err == nil || !strings.Contains(err.Error(), "MAJOR:MINOR") {
		t.Errorf("Validate(device vda) = %v, want MAJOR:MINOR asked for", err)
	}
}
