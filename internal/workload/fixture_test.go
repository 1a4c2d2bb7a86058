package workload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"sculpt/internal/host"
)

// fproc is one process of a fake /proc tree.
type fproc struct {
	pid, ppid int
	comm      string
	kthread   bool
	start     uint64
	sid       int    // session ID (field 6); 0 means pid: a session leader
	tty       int    // controlling terminal (field 7); 0 none
	cgroup    string // contents of /proc/PID/cgroup; "" writes no file (the process exited)
	stat      string // raw /proc/PID/stat, overriding the generated one
}

func statLine(p fproc) string {
	var flags uint64 = 0x400100
	if p.kthread {
		flags |= pfKthread
	}
	sid := p.sid
	if sid == 0 {
		sid = p.pid
	}
	// Fields 1-22 as in proc(5), then the rest of a real line.
	return fmt.Sprintf("%d (%s) S %d %d %d %d -1 %d 10 0 0 0 5 3 0 0 20 0 1 0 %d 1000 100 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n",
		p.pid, p.comm, p.ppid, p.pid, sid, p.tty, flags, p.start)
}

// writeProcs writes a fake /proc under dir.
func writeProcs(t *testing.T, dir string, ps []fproc) {
	t.Helper()
	for _, p := range ps {
		pdir := filepath.Join(dir, strconv.Itoa(p.pid))
		if err := os.MkdirAll(pdir, 0o755); err != nil {
			t.Fatal(err)
		}
		st := p.stat
		if st == "" {
			st = statLine(p)
		}
		if err := os.WriteFile(filepath.Join(pdir, "stat"), []byte(st), 0o644); err != nil {
			t.Fatal(err)
		}
		if p.cgroup != "" {
			if err := os.WriteFile(filepath.Join(pdir, "cgroup"), []byte(p.cgroup), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	// Non-process entries a real /proc has.
	for _, name := range []string{"self", "sys", "1x"} {
		if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

// hybrid is /proc/PID/cgroup on a hybrid host: v1 controllers, systemd's
// named hierarchy and the unified hierarchy.
func hybrid(v2, systemd, cpu, memory string) string {
	return fmt.Sprintf("12:pids:%s\n5:cpu,cpuacct:%s\n4:memory:%s\n3:devices:/\n1:name=systemd:%s\n0::%s\n",
		cpu, cpu, memory, systemd, v2)
}

// v1only is /proc/PID/cgroup on a host without a unified hierarchy.
func v1only(systemd, cpu, memory string) string {
	return fmt.Sprintf("7:pids:/\n6:cpuset:/\n5:cpu,cpuacct:%s\n4:memory:%s\n1:name=systemd:%s\n", cpu, memory, systemd)
}

func v2only(path string) string { return "0::" + path + "\n" }

func all(path string) string { return hybrid(path, path, path, path) }

const (
	idDocker = "3f2a9c1b0d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
	idCtrd   = "aaaa9c1b0d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
	idKubeFS = "bbbb9c1b0d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
	idCrio   = "cccc9c1b0d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8"
	podSD    = "1234abcd-0000-1111-2222-333344445555"
	podFS    = "5678abcd-0000-1111-2222-333344445555"
	selfPID  = 700
)

var (
	ctrdPath = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod" +
		strings.ReplaceAll(podSD, "-", "_") + ".slice/cri-containerd-" + idCtrd + ".scope"
	kubeFSPath = "/kubepods/burstable/pod" + podFS + "/" + idKubeFS
	crioPath   = "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" +
		strings.ReplaceAll(podSD, "-", "_") + ".slice/crio-" + idCrio + ".scope"
)

// hybridHost is a hybrid-layout machine with one process of every kind.
func hybridHost() []fproc {
	return []fproc{
		{pid: 1, ppid: 0, comm: "systemd", start: 5, cgroup: all("/init.scope")},
		{pid: 2, ppid: 0, comm: "kthreadd", kthread: true, start: 5},
		{pid: 3, ppid: 2, comm: "kworker/0:0", kthread: true, start: 6},
		{pid: 100, ppid: 1, comm: "dockerd", start: 50, cgroup: all("/system.slice/docker.service")},
		// docker, cgroupfs driver: the container id is a path element.
		{pid: 200, ppid: 150, comm: "nginx", start: 60, cgroup: hybrid("/", "/docker/"+idDocker, "/docker/"+idDocker, "/docker/"+idDocker)},
		{pid: 201, ppid: 200, comm: "nginx", start: 61, cgroup: hybrid("/", "/docker/"+idDocker, "/docker/"+idDocker+"/sub", "/docker/"+idDocker)},
		// containerd under kubepods, systemd driver.
		{pid: 300, ppid: 299, comm: "redis", start: 70, cgroup: all(ctrdPath)},
		// containerd under kubepods, cgroupfs driver.
		{pid: 310, ppid: 299, comm: "java", start: 71, cgroup: hybrid("/", "/", kubeFSPath, kubeFSPath)},
		// cri-o and its monitor.
		{pid: 320, ppid: 321, comm: "pause", start: 72, cgroup: all(crioPath)},
		{pid: 321, ppid: 1, comm: "conmon", start: 72, cgroup: all("/system.slice/crio-conmon-" + idCrio + ".scope")},
		// systemd units known only from the named v1 hierarchy.
		{pid: 400, ppid: 1, comm: "sshd", start: 80, cgroup: hybrid("/", "/system.slice/ssh.service", "/", "/")},
		// a login session: its shell, and a program started from it.
		{pid: 410, ppid: 400, comm: "bash", start: 81, tty: 34816, cgroup: all("/user.slice/user-0.slice/session-3.scope")},
		{pid: 411, ppid: 410, comm: "vim", start: 82, sid: 410, cgroup: all("/user.slice/user-0.slice/session-3.scope")},
		// a plain cgroup in v1 controllers only.
		{pid: 500, ppid: 1, comm: "batch", start: 90, cgroup: hybrid("/", "/", "/batch/job1", "/batch")},
		{pid: 501, ppid: 500, comm: "batch", start: 91, cgroup: hybrid("/", "/", "/batch/job1", "/batch/sub")},
		// process trees in the root cgroup.
		{pid: 600, ppid: 1, comm: "bash", start: 100, cgroup: all("/")},
		{pid: 601, ppid: 600, comm: "make", start: 101, cgroup: all("/")},
		{pid: 602, ppid: 601, comm: "cc1", start: 102, cgroup: all("/")},
		{pid: 610, ppid: 1, comm: "agetty", start: 103, cgroup: all("/")},
		// sculpt itself, and a child it started.
		{pid: selfPID, ppid: 600, comm: "sculpt", start: 110, cgroup: all("/")},
		{pid: 701, ppid: selfPID, comm: "helper", start: 111, cgroup: all("/")},
		// a malformed stat: skipped and recorded.
		{pid: 800, ppid: 1, comm: "bad", stat: "800 (bad) S 1\n", cgroup: all("/")},
		// stat read but gone before its cgroup file: skipped silently.
		{pid: 900, ppid: 1, comm: "gone", start: 120},
		// a comm with spaces and parentheses.
		{pid: 1000, ppid: 1, comm: "a b) (c", start: 130, cgroup: all("/")},
	}
}

func newFixture(t *testing.T, ps []fproc) (*Discoverer, host.Roots) {
	t.Helper()
	dir := t.TempDir()
	roots := host.Roots{Proc: filepath.Join(dir, "proc"), Sys: filepath.Join(dir, "sys"), Cgroup: filepath.Join(dir, "cgroup")}
	writeProcs(t, roots.Proc, ps)
	return NewDiscoverer(roots, Options{Self: selfPID, Protected: []int{400}}), roots
}

// summary renders workloads as "ID kind name [pids]" lines.
func summary(ws []Workload) []string {
	var out []string
	for _, w := range ws {
		s := fmt.Sprintf("%s %s %q %v", w.ID, w.Kind, w.Name, w.PIDs())
		if w.Pod != "" {
			s += " pod=" + w.Pod
		}
		out = append(out, s)
	}
	return out
}

func TestDiscoverHybridGrouping(t *testing.T) {
	d, _ := newFixture(t, hybridHost())
	ws, err := d.Discover(Selector{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		`cg:/batch/job1 cgroup "batch (job1)" [500 501]`,
		`ctr:3f2a9c1b0d4e container "nginx (3f2a9c1b0d4e)" [200 201]`,
		`ctr:aaaa9c1b0d4e container "redis (aaaa9c1b0d4e)" [300] pod=` + podSD,
		`ctr:bbbb9c1b0d4e container "java (bbbb9c1b0d4e)" [310] pod=` + podFS,
		`ctr:cccc9c1b0d4e container "pause (cccc9c1b0d4e)" [320] pod=` + podSD,
		`tree:1000@130 tree "a b) (c" [1000]`,
		`tree:411@82 tree "vim" [411]`,
		`tree:600@100 tree "bash" [600 601 602]`,
		`tree:610@103 tree "agetty" [610]`,
		`tree:701@111 tree "helper" [701]`,
		`unit:crio-conmon-` + idCrio + `.scope unit "crio-conmon-` + idCrio + `.scope" [321]`,
		`unit:docker.service unit "docker.service" [100]`,
		`unit:init.scope unit "init.scope" [1]`,
		`unit:session-3.scope unit "session-3.scope" [410]`,
		`unit:ssh.service unit "ssh.service" [400]`,
	}
	if got := summary(ws); !reflect.DeepEqual(got, want) {
		t.Errorf("workloads:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	skipped := d.Skipped()
	if len(skipped) != 1 || skipped[0].PID != 800 || !strings.Contains(skipped[0].Err.Error(), "800/stat") {
		t.Errorf("Skipped() = %v, want only pid 800 with an error naming its stat file", skipped)
	}

	byID := map[string]Workload{}
	for _, w := range ws {
		byID[w.ID] = w
	}
	// Cgroups are cut after the container element and merged to the
	// deepest common cgroup of the workload's processes.
	docker := byID["ctr:3f2a9c1b0d4e"].Cgroups
	if docker.V2 != "/" || docker.V1["cpu"] != "/docker/"+idDocker || docker.V1["cpuacct"] != "/docker/"+idDocker ||
		docker.V1["memory"] != "/docker/"+idDocker || docker.V1["name=systemd"] != "/docker/"+idDocker || docker.V1["devices"] != "/" {
		t.Errorf("docker cgroups = %+v", docker)
	}
	batch := byID["cg:/batch/job1"].Cgroups
	if batch.V1["cpu"] != "/batch/job1" || batch.V1["cpuacct"] != "/batch/job1" || batch.V1["memory"] != "/batch" {
		t.Errorf("batch cgroups = %+v, want cpu,cpuacct /batch/job1 and memory /batch", batch)
	}
	if got := byID["ctr:aaaa9c1b0d4e"].Cgroups.V2; got != ctrdPath {
		t.Errorf("containerd v2 cgroup = %q, want %q", got, ctrdPath)
	}
	if got := byID["tree:1000@130"].Procs[0]; got != (Proc{PID: 1000, StartTime: 130, Comm: "a b) (c"}) {
		t.Errorf("proc = %+v", got)
	}

	for _, w := range ws {
		wantProt := w.ID == "unit:init.scope" || w.ID == "unit:ssh.service"
		if got := d.Protected(&w); got != wantProt {
			t.Errorf("Protected(%s) = %v, want %v", w.ID, got, wantProt)
		}
	}
}

func TestDiscoverV1AndV2OnlyLayouts(t *testing.T) {
	for _, tc := range []struct {
		name string
		ps   []fproc
		want []string
	}{
		{
			name: "v1 only",
			ps: []fproc{
				{pid: 1, ppid: 0, comm: "init", start: 1, cgroup: v1only("/init.scope", "/", "/")},
				{pid: 10, ppid: 1, comm: "nginx", start: 2, cgroup: v1only("/system.slice/nginx.service", "/system.slice", "/system.slice/nginx.service")},
				{pid: 20, ppid: 1, comm: "job", start: 3, cgroup: v1only("/", "/", "/jobs/a")},
				{pid: 30, ppid: 1, comm: "ctr", start: 4, cgroup: v1only("/system.slice/docker-"+idDocker+".scope", "/docker/"+idDocker, "/docker/"+idDocker)},
				{pid: 40, ppid: 1, comm: "sh", start: 5, cgroup: v1only("/", "/", "/")},
			},
			want: []string{
				`cg:/jobs/a cgroup "job (a)" [20]`,
				`ctr:3f2a9c1b0d4e container "ctr (3f2a9c1b0d4e)" [30]`,
				`tree:40@5 tree "sh" [40]`,
				`unit:init.scope unit "init.scope" [1]`,
				`unit:nginx.service unit "nginx.service" [10]`,
			},
		},
		{
			name: "v2 only",
			ps: []fproc{
				{pid: 1, ppid: 0, comm: "init", start: 1, cgroup: v2only("/init.scope")},
				{pid: 10, ppid: 1, comm: "nginx", start: 2, cgroup: v2only("/system.slice/nginx.service")},
				{pid: 11, ppid: 10, comm: "nginx", start: 3, cgroup: v2only("/system.slice/nginx.service/workers")},
				{pid: 20, ppid: 1, comm: "job", start: 4, cgroup: v2only("/jobs/a")},
				{pid: 30, ppid: 1, comm: "ctr", start: 5, cgroup: v2only("/system.slice/docker-" + idDocker + ".scope")},
				{pid: 40, ppid: 1, comm: "sh", start: 6, cgroup: v2only("/")},
				{pid: 41, ppid: 40, comm: "sleep", start: 7, cgroup: v2only("/")},
			},
			want: []string{
				`cg:/jobs/a cgroup "job (a)" [20]`,
				`ctr:3f2a9c1b0d4e container "ctr (3f2a9c1b0d4e)" [30]`,
				`tree:40@6 tree "sh" [40 41]`,
				`unit:init.scope unit "init.scope" [1]`,
				`unit:nginx.service unit "nginx.service" [10 11]`,
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, _ := newFixture(t, tc.ps)
			ws, err := d.Discover(Selector{All: true})
			if err != nil {
				t.Fatal(err)
			}
			if got := summary(ws); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("workloads:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for _, w := range ws {
				if w.ID == "unit:nginx.service" && w.Cgroups.V2 != "" && w.Cgroups.V2 != "/system.slice/nginx.service" {
					t.Errorf("nginx v2 cgroup = %q, want the unit's cgroup", w.Cgroups.V2)
				}
				if w.ID == "unit:nginx.service" && w.Cgroups.V1 != nil &&
					(w.Cgroups.V1["cpu"] != "/system.slice" || w.Cgroups.V1["memory"] != "/system.slice/nginx.service") {
					t.Errorf("nginx v1 cgroups = %v", w.Cgroups.V1)
				}
			}
		})
	}
}

func TestDiscoverIDsStable(t *testing.T) {
	ps := hybridHost()
	d, roots := newFixture(t, ps)
	first, err := d.Discover(Selector{})
	if err != nil {
		t.Fatal(err)
	}
	// New processes appear, one of the tree's leaves exits: the IDs of the
	// workloads that live on do not change.
	writeProcs(t, roots.Proc, []fproc{
		{pid: 5000, ppid: 600, comm: "vim", start: 500, cgroup: all("/")},
		{pid: 5001, ppid: 1, comm: "cron", start: 501, cgroup: all("/system.slice/cron.service")},
	})
	if err := os.RemoveAll(filepath.Join(roots.Proc, "602")); err != nil {
		t.Fatal(err)
	}
	d2 := NewDiscoverer(roots, Options{Self: selfPID}) // a fresh Discoverer, as after a restart
	for _, dd := range []*Discoverer{d, d2} {
		second, err := dd.Discover(Selector{})
		if err != nil {
			t.Fatal(err)
		}
		ids := map[string][]int{}
		for _, w := range second {
			ids[w.ID] = w.PIDs()
		}
		for _, w := range first {
			if _, ok := ids[w.ID]; !ok {
				t.Errorf("workload %s vanished from the second sweep", w.ID)
			}
		}
		if got := ids["tree:600@100"]; !reflect.DeepEqual(got, []int{600, 601, 5000}) {
			t.Errorf("tree:600@100 = %v, want [600 601 5000]", got)
		}
		if _, ok := ids["unit:cron.service"]; !ok {
			t.Errorf("new unit cron.service not found")
		}
	}
}

func TestDiscoverPIDs(t *testing.T) {
	d, _ := newFixture(t, hybridHost())

	ws, err := d.Discover(Selector{PIDs: []int{601}})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(ws); !reflect.DeepEqual(got, []string{`tree:601@101 tree "make" [601 602]`}) {
		t.Errorf("PIDs [601] = %v", got)
	}
	if ws[0].Cgroups.V2 != "/" || ws[0].Cgroups.V1["memory"] != "/" {
		t.Errorf("cgroups = %+v, want those of pid 601", ws[0].Cgroups)
	}

	// A pid inside a container's cgroup still gives its own tree.
	ws, err = d.Discover(Selector{PIDs: []int{201}})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(ws); !reflect.DeepEqual(got, []string{`tree:201@61 tree "nginx" [201]`}) {
		t.Errorf("PIDs [201] = %v", got)
	}
	if got := ws[0].Cgroups.V1["cpu"]; got != "/docker/"+idDocker+"/sub" {
		t.Errorf("cpu cgroup = %q, want pid 201's own", got)
	}

	// Through sculpt: its child belongs to the tree, sculpt does not.
	ws, err = d.Discover(Selector{PIDs: []int{600}})
	if err != nil {
		t.Fatal(err)
	}
	if got := ws[0].PIDs(); !reflect.DeepEqual(got, []int{600, 601, 602, 701}) {
		t.Errorf("PIDs [600] = %v, want [600 601 602 701]", got)
	}

	// PIDs with All: the tree claims its processes first, the rest is
	// grouped as usual, no process appears twice.
	ws, err = d.Discover(Selector{PIDs: []int{500}, All: true})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]string{}
	var ids []string
	for _, w := range ws {
		ids = append(ids, w.ID)
		for _, pid := range w.PIDs() {
			if prev, dup := seen[pid]; dup {
				t.Errorf("pid %d in %s and %s", pid, prev, w.ID)
			}
			seen[pid] = w.ID
		}
	}
	if seen[500] != "tree:500@90" || seen[501] != "tree:500@90" || slices.Contains(ids, "cg:/batch/job1") {
		t.Errorf("PIDs [500] + All: %v", summary(ws))
	}
	if len(seen) != 19 {
		t.Errorf("%d processes in workloads, want 19 (24 minus 2 kernel threads, sculpt, a malformed stat and a gone one)", len(seen))
	}
}

func TestDiscoverPIDErrors(t *testing.T) {
	d, _ := newFixture(t, hybridHost())
	for _, tc := range []struct {
		pid  int
		want error
		msg  string
	}{
		{12345, ErrNoSuchProcess, "pid 12345: no such process"},
		{900, ErrNoSuchProcess, "pid 900: no such process"},
		{3, ErrExcluded, "pid 3 is a kernel thread"},
		{selfPID, ErrExcluded, "pid 700 is sculpt itself"},
		{800, nil, "pid 800: parse"},
	} {
		ws, err := d.Discover(Selector{PIDs: []int{tc.pid}})
		if err == nil {
			t.Errorf("pid %d: no error, got %v", tc.pid, summary(ws))
			continue
		}
		if tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("pid %d: error %v does not wrap %v", tc.pid, err, tc.want)
		}
		if !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("pid %d: error %q, want it to say %q", tc.pid, err, tc.msg)
		}
	}
	// Two bad pids: both are named.
	_, err := d.Discover(Selector{PIDs: []int{12345, 600, 54321}})
	if err == nil || !strings.Contains(err.Error(), "12345") || !strings.Contains(err.Error(), "54321") {
		t.Errorf("error %v, want both bad pids named", err)
	}
}

// mkCgroupRoot builds a fake hybrid cgroup mount root: v1 mounts, systemd's
// named hierarchy and cgroup2 at unified.
func mkCgroupRoot(t *testing.T, root string, dirs ...string) {
	t.Helper()
	for _, d := range append(dirs, "cpu,cpuacct", "memory", "systemd", "unified") {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(root, "unified", "cgroup.controllers"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, l := range []string{"cpu", "cpuacct"} {
		if err := os.Symlink("cpu,cpuacct", filepath.Join(root, l)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestDiscoverCgroups(t *testing.T) {
	d, roots := newFixture(t, hybridHost())
	mkCgroupRoot(t, roots.Cgroup, "cpu,cpuacct/batch/job1", "memory/batch/sub", "systemd/system.slice/ssh.service", "memory/empty")

	for _, tc := range []struct {
		sel  []string
		want []string
		v1   map[string]string
	}{
		// Relative: looked up in every hierarchy.
		{[]string{"/batch"}, []string{`cg:/batch cgroup "batch" [500 501]`},
			map[string]string{"cpu": "/batch", "cpuacct": "/batch", "memory": "/batch", "pids": "/batch/job1", "devices": "/", "name=systemd": "/"}},
		{[]string{"/system.slice/ssh.service"}, []string{`cg:/system.slice/ssh.service cgroup "ssh.service" [400]`}, nil},
		// Absolute: one hierarchy.
		{[]string{roots.Cgroup + "/memory/batch/sub"}, []string{`cg:/batch/sub cgroup "sub" [501]`}, nil},
		{[]string{roots.Cgroup + "/cpu/batch"}, []string{`cg:/batch cgroup "batch" [500 501]`}, nil},
		// An empty cgroup: a workload without processes.
		{[]string{"/empty"}, []string{`cg:/empty cgroup "empty" []`}, nil},
		// The first selector claims the processes.
		{[]string{"/batch/job1", "/batch"}, []string{`cg:/batch cgroup "batch" []`, `cg:/batch/job1 cgroup "job1" [500 501]`}, nil},
	} {
		ws, err := d.Discover(Selector{Cgroups: tc.sel})
		if err != nil {
			t.Errorf("%v: %v", tc.sel, err)
			continue
		}
		if got := summary(ws); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%v: %v, want %v", tc.sel, got, tc.want)
		}
		if tc.v1 != nil && !reflect.DeepEqual(ws[0].Cgroups.V1, tc.v1) {
			t.Errorf("%v: v1 cgroups %v, want %v", tc.sel, ws[0].Cgroups.V1, tc.v1)
		}
	}

	// PIDs and cgroups combined.
	ws, err := d.Discover(Selector{PIDs: []int{501}, Cgroups: []string{"/batch"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := summary(ws); !reflect.DeepEqual(got, []string{`cg:/batch cgroup "batch" [500]`, `tree:501@91 tree "batch" [501]`}) {
		t.Errorf("PIDs+Cgroups: %v", got)
	}

	for _, bad := range []string{"/nope", roots.Cgroup + "/memory/nope", roots.Cgroup + "/nope/x"} {
		_, err := d.Discover(Selector{Cgroups: []string{bad}})
		if !errors.Is(err, ErrNoSuchCgroup) || !strings.Contains(err.Error(), bad) {
			t.Errorf("cgroup %s: error %v, want ErrNoSuchCgroup naming it", bad, err)
		}
	}
}

func TestDiscoverCgroupsUnifiedRoot(t *testing.T) {
	ps := []fproc{
		{pid: 10, ppid: 1, comm: "a", start: 1, cgroup: v2only("/jobs/a")},
		{pid: 11, ppid: 1, comm: "b", start: 2, cgroup: v2only("/jobs/b/inner")},
		{pid: 12, ppid: 1, comm: "c", start: 3, cgroup: v2only("/other")},
	}
	d, roots := newFixture(t, ps)
	if err := os.MkdirAll(filepath.Join(roots.Cgroup, "jobs", "b", "inner"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(roots.Cgroup, "cgroup.controllers"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sel := range []string{"/jobs", roots.Cgroup + "/jobs", "jobs/"} {
		ws, err := d.Discover(Selector{Cgroups: []string{sel}})
		if err != nil {
			t.Fatalf("%s: %v", sel, err)
		}
		if got := summary(ws); !reflect.DeepEqual(got, []string{`cg:/jobs cgroup "jobs" [10 11]`}) || ws[0].Cgroups.V2 != "/jobs" {
			t.Errorf("%s: %v (v2 %q)", sel, got, ws[0].Cgroups.V2)
		}
	}
	if _, err := d.Discover(Selector{Cgroups: []string{"/other"}}); !errors.Is(err, ErrNoSuchCgroup) {
		t.Errorf("cgroup without a directory: %v, want ErrNoSuchCgroup", err)
	}
}

func TestDiscoverNoProc(t *testing.T) {
	d := NewDiscoverer(host.Roots{Proc: filepath.Join(t.TempDir(), "missing")}, Options{})
	if _, err := d.Discover(Selector{}); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("error %v, want one naming the missing /proc", err)
	}
}
