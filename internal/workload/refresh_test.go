package workload

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"syscall"
	"testing"

	"sculpt/internal/host"
	"sculpt/internal/testload"
)

// workloadOf returns the workload holding pid, or nil.
func workloadOf(ws []Workload, pid int) *Workload {
	for i := range ws {
		if slices.Contains(ws[i].PIDs(), pid) {
			return &ws[i]
		}
	}
	return nil
}

// TestRealCgroupMoveWithinRefresh moves a known process into a new v1 cgroup
// and checks that a Discoverer with RefreshEvery K regroups it within K
// calls (with K = 1, on the first).
func TestRealCgroupMoveWithinRefresh(t *testing.T) {
	mount := v1Hierarchy(t, "cpu")
	const k = 4
	for _, every := range []int{1, k} {
		t.Run(fmt.Sprint("every-", every), func(t *testing.T) {
			name := fmt.Sprintf("sculpt-test-%d-%d", os.Getpid(), rand.Uint32())
			dir := filepath.Join(mount, name)
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := os.Remove(dir); err != nil {
					t.Errorf("remove test cgroup: %v", err)
				}
			})
			cmd := testload.Start(t, "sleep", nil)
			pid := cmd.Process.Pid
			t.Cleanup(func() {
				_ = os.WriteFile(filepath.Join(mount, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644)
			})
			d := NewDiscoverer(host.DefaultRoots(), Options{RefreshEvery: every})
			defer func() { _ = d.Close() }()
			if own := cgroupFile(t, pid); (own.hasV2 && own.v2 != "/") || sdPath(own) != "/" {
				t.Skipf("pid %d is placed by its v2 or systemd cgroup: cpu cgroup grouping not testable here", pid)
			}
			// Past the first two reads, so that the stagger applies.
			for i := 0; i < 3; i++ {
				if _, err := d.Discover(Selector{All: true}); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0o644); err != nil {
				t.Fatalf("move pid %d into %s: %v", pid, dir, err)
			}
			want := "cg:/" + name
			seen := 0
			for call := 1; call <= every; call++ {
				ws, err := d.Discover(Selector{All: true})
				if err != nil {
					t.Fatal(err)
				}
				if w := workloadOf(ws, pid); w != nil && w.ID == want {
					seen = call
					break
				}
			}
			if seen == 0 {
				t.Fatalf("RefreshEvery %d: pid %d not in %s within %d calls after its move", every, pid, want, every)
			}
			t.Logf("RefreshEvery %d: regrouped on call %d after the move", every, seen)
			if every == 1 && seen != 1 {
				t.Errorf("RefreshEvery 1: regrouped on call %d, want 1", seen)
			}
		})
	}
}

// TestRealReparentAtOnce kills the parent of a known process: the child's
// stat is reread in the next call (its parent's /proc entry vanished), so
// the tree selector of the dead parent no longer holds it, however large
// RefreshEvery is.
func TestRealReparentAtOnce(t *testing.T) {
	parent, kids := startTree(t, 1)
	d := NewDiscoverer(host.DefaultRoots(), Options{RefreshEvery: 1000})
	defer func() { _ = d.Close() }()
	for i := 0; i < 3; i++ {
		if _, err := d.Discover(Selector{PIDs: []int{parent}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := syscall.Kill(parent, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(parent, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	// The child is now ours (this test is its subreaper).
	got, err := d.Discover(Selector{PIDs: []int{kids[0]}})
	if err != nil {
		t.Fatal(err)
	}
	d.mu.Lock()
	ppid := d.procs[d.index[kids[0]]].ppid
	d.mu.Unlock()
	if ppid != os.Getpid() {
		t.Errorf("child %d: parent %d after its parent died, want this process %d (the subreaper)", kids[0], ppid, os.Getpid())
	}
	if len(got) != 1 || !slices.Equal(got[0].PIDs(), []int{kids[0]}) {
		t.Errorf("Discover(PIDs %d) = %v", kids[0], summary(got))
	}
}

// TestDiscoverCachedIDsAndCgroups checks the per-process caches (tree IDs
// and each cgroup file's workload cgroups) against a process that moves
// cgroups and a PID reused by a new process: the workload follows each
// change at the next re-read, and a selected Cgroups.V1 matches a fresh
// computation.
func TestDiscoverCachedIDsAndCgroups(t *testing.T) {
	dir := t.TempDir()
	roots := host.Roots{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Cgroup: filepath.Join(dir, "cgroup")}
	p := fproc{pid: 300, ppid: 1, comm: "app", start: 50, cgroup: v1only("/", "/a", "/a")}
	writeProcs(t, roots.Proc, []fproc{p})
	d := NewDiscoverer(roots, Options{Self: selfPID, RefreshEvery: 1})
	defer func() { _ = d.Close() }()
	discover := func() Workload {
		t.Helper()
		ws, err := d.Discover(Selector{PIDs: []int{300}})
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) != 1 {
			t.Fatalf("got %d workloads, want 1", len(ws))
		}
		return ws[0]
	}
	for i := 0; i < 3; i++ {
		w := discover()
		if w.ID != "tree:300@50" || w.Cgroups.V1["cpu"] != "/a" || w.Cgroups.V1["memory"] != "/a" {
			t.Fatalf("call %d: %s %+v, want tree:300@50 in /a", i, w.ID, w.Cgroups)
		}
	}
	// Moved: the next call (RefreshEvery 1) re-reads its cgroup file.
	if err := os.WriteFile(filepath.Join(roots.Proc, "300", "cgroup"), []byte(v1only("/", "/b", "/b")), 0o644); err != nil {
		t.Fatal(err)
	}
	w := discover()
	if w.Cgroups.V1["cpu"] != "/b" || w.Cgroups.V1["memory"] != "/b" {
		t.Errorf("after the move: %+v, want /b", w.Cgroups)
	}
	entries, err := parseCgroupFile([]byte(v1only("/", "/b", "/b")))
	if err != nil {
		t.Fatal(err)
	}
	if want := cgroupsOf([]*cgInfo{newCgInfo(entries)}, ""); !reflect.DeepEqual(w.Cgroups, want) {
		t.Errorf("cached cgroups %+v, want %+v", w.Cgroups, want)
	}
	// The PID reused by a new process (a new /proc entry, with an inode
	// number of its own since both exist at once, and a new start time).
	p.start, p.cgroup = 77, v1only("/", "/a", "/a")
	tmp := filepath.Join(dir, "new")
	writeProcs(t, tmp, []fproc{p})
	if err := os.RemoveAll(filepath.Join(roots.Proc, "300")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(tmp, "300"), filepath.Join(roots.Proc, "300")); err != nil {
		t.Fatal(err)
	}
	if w := discover(); w.ID != "tree:300@77" || w.Cgroups.V1["cpu"] != "/a" {
		t.Errorf("reused PID: %s %+v, want tree:300@77 in /a", w.ID, w.Cgroups)
	}
}
