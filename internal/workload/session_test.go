package workload

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"sculpt/internal/host"
)

// shellHash is the last element of a shared session cgroup, named by a hash
// as a process API names the cgroups of the shells it starts.
const shellHash = "cca032aa2000d755d7498014716ebf4c"

// sessionHost is a machine where everything started by hand shares its
// shell's cgroup: the v1 memory cgroup of the shell that started sculpt, a
// systemd login scope with a tmux server and two interactive shells, an
// interactive shell in the root cgroup, and a container with a terminal.
func sessionHost() []fproc {
	shared := v1only("/", "/", "/process_api/"+shellHash)
	login := all("/user.slice/user-0.slice/session-4.scope")
	ctr := all("/docker/" + idDocker)
	return []fproc{
		{pid: 1, ppid: 0, comm: "init", start: 1, cgroup: v1only("/init.scope", "/", "/")},
		{pid: 50, ppid: 1, comm: "process_api", start: 2, cgroup: v1only("/", "/", "/")},
		// The shell that started sculpt: no terminal, but sculpt's ancestor.
		{pid: 100, ppid: 50, comm: "bash", start: 10, cgroup: shared},
		{pid: selfPID, ppid: 100, comm: "sculpt", start: 30, sid: 100, cgroup: shared},
		// Started from that shell: a service, a spinner loop and its
		// spinner, a daemon that left the session (setsid, no terminal).
		{pid: 110, ppid: 100, comm: "redis-server", start: 11, sid: 100, cgroup: shared},
		{pid: 111, ppid: 110, comm: "redis-bio", start: 12, sid: 100, cgroup: shared},
		{pid: 120, ppid: 100, comm: "sh", start: 13, sid: 100, cgroup: shared},
		{pid: 121, ppid: 120, comm: "spin", start: 14, sid: 100, cgroup: shared},
		{pid: 130, ppid: 100, comm: "daemon", start: 15, cgroup: shared},
		// A login scope: sshd's session process, a tmux server with two
		// interactive shells (session leaders with a terminal), each
		// running a program.
		{pid: 200, ppid: 1, comm: "sshd-session", start: 20, cgroup: login},
		{pid: 201, ppid: 200, comm: "bash", start: 21, tty: 34816, cgroup: login},
		{pid: 210, ppid: 1, comm: "tmux: server", start: 22, cgroup: login},
		{pid: 211, ppid: 210, comm: "bash", start: 23, tty: 34817, cgroup: login},
		{pid: 212, ppid: 211, comm: "make", start: 24, sid: 211, cgroup: login},
		{pid: 213, ppid: 212, comm: "cc1", start: 25, sid: 211, cgroup: login},
		{pid: 221, ppid: 210, comm: "bash", start: 26, tty: 34818, cgroup: login},
		{pid: 222, ppid: 221, comm: "top", start: 27, sid: 221, cgroup: login},
		// An interactive shell in the root cgroup, under a daemon.
		{pid: 300, ppid: 1, comm: "getty", start: 40, cgroup: v1only("/", "/", "/")},
		{pid: 301, ppid: 300, comm: "bash", start: 41, tty: 1024, cgroup: v1only("/", "/", "/")},
		{pid: 302, ppid: 301, comm: "python3", start: 42, sid: 301, cgroup: v1only("/", "/", "/")},
		// A container's interactive shell does not split the container.
		{pid: 400, ppid: 1, comm: "nginx", start: 50, cgroup: ctr},
		{pid: 401, ppid: 1, comm: "bash", start: 51, tty: 34819, cgroup: ctr},
		{pid: 402, ppid: 401, comm: "vi", start: 52, sid: 401, cgroup: ctr},
	}
}

func TestDiscoverSessions(t *testing.T) {
	dir := t.TempDir()
	roots := host.Roots{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Cgroup: filepath.Join(dir, "cgroup")}
	ps := sessionHost()
	writeProcs(t, roots.Proc, ps)
	d := NewDiscoverer(roots, Options{Self: selfPID, Ancestors: []int{100, 50}})
	want := []string{
		`cg:/process_api/` + shellHash + ` cgroup "bash (cca032aa)" [100]`,
		`ctr:3f2a9c1b0d4e container "nginx (3f2a9c1b0d4e)" [400 401 402]`,
		`tree:110@11 tree "redis-server" [110 111]`,
		`tree:120@13 tree "sh" [120 121]`,
		`tree:130@15 tree "daemon" [130]`,
		`tree:212@24 tree "make" [212 213]`,
		`tree:222@27 tree "top" [222]`,
		`tree:300@40 tree "getty" [300 301]`,
		`tree:302@42 tree "python3" [302]`,
		`tree:50@2 tree "process_api" [50]`,
		`unit:init.scope unit "init.scope" [1]`,
		`unit:session-4.scope unit "session-4.scope" [200 201 210 211 221]`,
	}
	ws, err := d.Discover(Selector{})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(ws); !reflect.DeepEqual(got, want) {
		t.Fatalf("workloads:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, w := range ws {
		if w.ID == "tree:110@11" && w.Cgroups.V1["memory"] != "/process_api/"+shellHash {
			t.Errorf("redis-server's memory cgroup %q, want the shared /process_api/%s", w.Cgroups.V1["memory"], shellHash)
		}
	}

	// IDs hold while a tree's children come and go: the spinner loop
	// starts another spinner, redis's helper exits.
	if err := os.RemoveAll(filepath.Join(roots.Proc, "111")); err != nil {
		t.Fatal(err)
	}
	writeProcs(t, roots.Proc, []fproc{{pid: 122, ppid: 120, comm: "spin", start: 60, sid: 100, cgroup: v1only("/", "/", "/process_api/"+shellHash)}})
	ws, err = d.Discover(Selector{})
	if err != nil {
		t.Fatal(err)
	}
	got := summary(ws)
	for _, w := range []string{`tree:110@11 tree "redis-server" [110]`, `tree:120@13 tree "sh" [120 121 122]`} {
		if !strings.Contains(strings.Join(got, "\n"), w) {
			t.Errorf("after churn, no %s in:\n%s", w, strings.Join(got, "\n"))
		}
	}

	// Without sculpt's ancestors, the shared cgroup with no interactive
	// shell is one workload, as any other cgroup.
	d = NewDiscoverer(roots, Options{Self: selfPID})
	ws, err = d.Discover(Selector{})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range ws {
		if strings.HasPrefix(w.ID, "cg:/process_api/") && len(w.Procs) != 6 {
			t.Errorf("without ancestors: %s holds %v, want the 6 processes of the cgroup but sculpt", w.ID, w.PIDs())
		}
	}
}

func TestShortHex(t *testing.T) {
	for in, want := range map[string]string{
		shellHash:           "cca032aa",
		"job1":              "job1",
		"0123456789abcdeZ":  "0123456789abcdeZ",
		"0123456789ABCDEF0": "01234567",
		"deadbeef":          "deadbeef",
	} {
		if got := shortHex(in); got != want {
			t.Errorf("shortHex(%q) = %q, want %q", in, got, want)
		}
	}
}

// A process sculpt moved into a cpu cgroup of its own (to cap or weigh its
// CPU) keeps its workload and ID: a tree stays a tree, a unit's process
// stays in the unit.
func TestDiscoverIgnoresSculptsOwnCgroups(t *testing.T) {
	dir := t.TempDir()
	roots := host.Roots{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Cgroup: filepath.Join(dir, "cgroup")}
	ps := sessionHost()
	for i := range ps {
		switch ps[i].pid {
		case 121: // the spinner, moved by sculpt; its loop stays
			ps[i].cgroup = v1only("/", SculptCgroupPrefix+"tree-120-13", "/process_api/"+shellHash)
		case 302:
			ps[i].cgroup = v1only("/", SculptCgroupPrefix+"tree-302-42", "/")
		}
	}
	writeProcs(t, roots.Proc, ps)
	d := NewDiscoverer(roots, Options{Self: selfPID, Ancestors: []int{100, 50}})
	ws, err := d.Discover(Selector{})
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(summary(ws), "\n")
	for _, w := range []string{`tree:120@13 tree "sh" [120 121]`, `tree:302@42 tree "python3" [302]`} {
		if !strings.Contains(got, w) {
			t.Errorf("no %s in:\n%s", w, got)
		}
	}
	if strings.Contains(got, "cg:"+SculptCgroupPrefix) {
		t.Errorf("a sculpt cgroup became a workload:\n%s", got)
	}
	for _, w := range ws {
		if w.ID == "tree:120@13" && w.Cgroups.V1["cpu"] == "" {
			t.Errorf("the tree lost its real cpu cgroup path: %+v", w.Cgroups)
		}
	}
}
