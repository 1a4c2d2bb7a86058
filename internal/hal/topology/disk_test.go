package topology

import (
	"os"
	"path/filepath"
	"testing"

	"sculpt/internal/host"
)

func TestReadDisksSkipsVirtualAndReadsScheduler(t *testing.T) {
	sys := t.TempDir()
	write := func(rel, v string) {
		p := filepath.Join(sys, "block", rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("vda/dev", "254:0\n")
	write("vda/queue/scheduler", "none [mq-deadline] kyber bfq\n")
	write("vda/queue/rotational", "0\n")
	write("sdb/dev", "8:16\n")
	write("sdb/queue/scheduler", "[bfq]\n")
	write("sdb/queue/rotational", "1\n")
	write("sdb/device/numa_node", "1\n")
	write("loop0/dev", "7:0\n")
	write("zram0/dev", "253:0\n")
	disks, err := readDisks(host.Roots{Sys: sys})
	if err != nil {
		t.Fatal(err)
	}
	if len(disks) != 2 || disks[0].Name != "sdb" || disks[1].Name != "vda" {
		t.Fatalf("disks = %+v, want sdb and vda only", disks)
	}
	if d := disks[0]; d.Dev != "8:16" || d.Scheduler != "bfq" || !d.Rotational || d.NUMANode != 1 {
		t.Errorf("sdb = %+v", d)
	}
	if d := disks[1]; d.Dev != "254:0" || d.Scheduler != "mq-deadline" || d.Rotational || d.NUMANode != -1 {
		t.Errorf("vda = %+v", d)
	}
	write("bad/dev", "vda\n")
	if _, err := readDisks(host.Roots{Sys: sys}); err == nil {
		t.Error("a dev file without MAJOR:MINOR was accepted")
	}
}
