package workload

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"sculpt/internal/host"
)

func TestAncestorsFixture(t *testing.T) {
	dir := t.TempDir()
	roots := host.Roots{Proc: dir}
	writeProcs(t, dir, []fproc{
		{pid: 1, ppid: 0, comm: "systemd"},
		{pid: 700, ppid: 1, comm: "sshd"},
		{pid: 710, ppid: 700, comm: "bash"},
		{pid: 720, ppid: 710, comm: "tmux: server"},
		{pid: 730, ppid: 720, comm: "sculpt"},
		{pid: 800, ppid: 2, comm: "kworker/0:1", kthread: true},
		{pid: 810, ppid: 990, comm: "orphan"}, // its parent has exited
		{pid: 820, ppid: 1, comm: "broken", stat: "820 broken"},
		{pid: 830, ppid: 820, comm: "child of broken"},
	})
	for _, c := range []struct {
		pid  int
		want []int
		err  bool
	}{
		{730, []int{720, 710, 700}, false},
		{700, nil, false},
		{800, nil, false},
		{810, nil, false}, // the walk ends where the parent is gone
		{830, []int{820}, true},
	} {
		got, err := Ancestors(roots, c.pid)
		if !slices.Equal(got, c.want) || (err != nil) != c.err {
			t.Errorf("Ancestors(%d) = %v, %v; want %v (error %v)", c.pid, got, err, c.want, c.err)
		}
		if err != nil && !strings.Contains(err.Error(), filepath.Join(dir, "820", "stat")) {
			t.Errorf("Ancestors(%d): error %q does not name the file", c.pid, err)
		}
	}
}

func TestAncestorsOfThisProcess(t *testing.T) {
	got, err := Ancestors(host.DefaultRoots(), os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if os.Getppid() > 2 && (len(got) == 0 || got[0] != os.Getppid()) {
		t.Errorf("Ancestors(self) = %v, want the parent %d first", got, os.Getppid())
	}
	if slices.Contains(got, 1) || slices.Contains(got, os.Getpid()) {
		t.Errorf("Ancestors(self) = %v holds PID 1 or itself", got)
	}
}
