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

func TestThrottleAndIOMaxParsing(t *testing.T) {
	if v := throttleOf("8:0 100\n254:0 4194304", "254:0"); v != 4194304 {
		t.Errorf("throttleOf = %d, want 4194304", v)
	}
	if v := throttleOf("", "254:0"); v != 0 {
		t.Errorf("throttleOf(empty) = %d, want 0", v)
	}
	r, w := ioMaxOf("8:0 rbps=1 wbps=2 riops=max wiops=max\n254:0 rbps=max wbps=1048576 riops=max wiops=max", "254:0")
	if r != 0 || w != 1048576 {
		t.Errorf("ioMaxOf = %d, %d; want 0 (max), 1048576", r, w)
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
