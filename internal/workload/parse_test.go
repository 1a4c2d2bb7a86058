package workload

import (
	"reflect"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	real := "1234 (nginx: worker) S 1200 1200 1200 0 -1 4194624 100 0 0 0 7 3 0 0 20 0 1 0 567890 1000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n"
	s, err := parseStat([]byte(real))
	if err != nil {
		t.Fatal(err)
	}
	if s.pid != 1234 || string(s.comm) != "nginx: worker" || s.state != 'S' || s.ppid != 1200 || s.sid != 1200 || s.tty != 0 || s.flags != 4194624 || s.start != 567890 {
		t.Errorf("parseStat = %+v", s)
	}

	// An interactive shell: a session leader with a terminal (pts/0).
	s, err = parseStat([]byte(statLine(fproc{pid: 9, ppid: 8, comm: "bash", start: 3, tty: 34816})))
	if err != nil {
		t.Fatal(err)
	}
	if s.sid != 9 || s.tty != 34816 {
		t.Errorf("shell: session %d tty %d, want 9 and 34816", s.sid, s.tty)
	}

	// An exiting process shows session -1: no session, not an error.
	s, err = parseStat([]byte("12 (x) Z 1 -1 -1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5"))
	if err != nil || s.sid != 0 || s.start != 5 {
		t.Errorf("exiting process: %+v, %v; want session 0 and no error", s, err)
	}

	kthread := "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 9 0 0 18446744073709551615 0 0 0 0 0 0 0 2147483647 0 1 0 0 0 1 0 0 0 0 0 0 0 0 0 0 0 0 0"
	s, err = parseStat([]byte(kthread))
	if err != nil {
		t.Fatal(err)
	}
	if s.flags&pfKthread == 0 || s.start != 9 {
		t.Errorf("kthreadd = %+v, want PF_KTHREAD and start 9", s)
	}

	// A comm may hold ") (" and spaces: it runs to the last ')'.
	s, err = parseStat([]byte(statLine(fproc{pid: 7, ppid: 1, comm: ") x (y) ", start: 42})))
	if err != nil {
		t.Fatal(err)
	}
	if string(s.comm) != ") x (y) " || s.ppid != 1 || s.start != 42 {
		t.Errorf("odd comm: %+v", s)
	}

	for _, bad := range []string{
		"",
		"1234 nginx S 1",
		"(x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0",     // 21 fields
		"12 (x) S one 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5", // ppid
		"12 (x) S 1 1 s 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",   // session
		"12 (x) S 1 1 1 0 -1 0x10 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 -5",
		"12 (x) SS 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 5",
		"12 (x) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 99999999999999999999999",
	} {
		if s, err := parseStat([]byte(bad)); err == nil {
			t.Errorf("parseStat(%q) = %+v, want an error", bad, s)
		}
	}
}

func TestParseCgroupFile(t *testing.T) {
	got, err := parseCgroupFile([]byte("12:pids:/a\n5:cpu,cpuacct:/b:c\n1:name=systemd:/system.slice/x.service\n0::/\n"))
	if err != nil {
		t.Fatal(err)
	}
	want := []cgEntry{{"pids", "/a"}, {"cpu", "/b:c"}, {"cpuacct", "/b:c"}, {keySystemd, "/system.slice/x.service"}, {"", "/"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseCgroupFile = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "\n", "0:/", "garbage\n", "3:cpu:relative\n"} {
		if got, err := parseCgroupFile([]byte(bad)); err == nil {
			t.Errorf("parseCgroupFile(%q) = %v, want an error", bad, got)
		}
	}
}

func TestContainerID(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/docker/" + id, true},
		{"/system.slice/docker-" + id + ".scope", true},
		{"/kubepods/burstable/pod1234/" + id, true},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1_2.slice/cri-containerd-" + id + ".scope", true},
		{"/kubepods.slice/x.slice/crio-" + id + ".scope", true},
		{"/machine.slice/libpod-" + id + ".scope/container", true},
		{"/system.slice/crio-conmon-" + id + ".scope", false},
		{"/docker/" + id[:63], false},
		{"/docker/" + strings.ToUpper(id), false},
		{"/docker/x" + id, false},
		{"/system.slice/docker.service", false},
		{"/", false},
	} {
		got, ok := containerID(tc.path)
		if ok != tc.ok || (ok && got != id) {
			t.Errorf("containerID(%q) = %q, %v; want ok=%v", tc.path, got, ok, tc.ok)
		}
	}
}

func TestPodUID(t *testing.T) {
	for path, want := range map[string]string{
		"/kubepods/burstable/pod5678abcd-0000-1111-2222-333344445555/x":                                                 "5678abcd-0000-1111-2222-333344445555",
		"/kubepods/pod5678abcd-0000-1111-2222-333344445555/x":                                                           "5678abcd-0000-1111-2222-333344445555",
		"/kubepods.slice/kubepods-pod1234abcd_0000_1111_2222_333344445555.slice/cri-x":                                  "1234abcd-0000-1111-2222-333344445555",
		"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1234abcd_0000_1111_2222_333344445555.slice/x": "1234abcd-0000-1111-2222-333344445555",
		"/docker/pod5678abcd-0000-1111-2222-333344445555":                                                               "",
		"/kubepods/burstable/pod12": "",
	} {
		if got := podUID(path); got != want {
			t.Errorf("podUID(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestUnitName(t *testing.T) {
	for path, want := range map[string]string{
		"/system.slice/nginx.service":                                 "nginx.service",
		"/system.slice/nginx.service/workers":                         "nginx.service",
		"/user.slice/user-0.slice/user@0.service/app.slice/foo.scope": "foo.scope",
		"/init.scope":        "init.scope",
		"/system.slice":      "",
		"/batch/servicex":    "",
		"/":                  "",
		"/a.service.d/other": "",
	} {
		if got := unitName(path); got != want {
			t.Errorf("unitName(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestPathHelpers(t *testing.T) {
	id := strings.Repeat("0123456789abcdef", 4)
	for _, tc := range []struct{ a, b, want string }{
		{"/a/b", "/a/c", "/a"},
		{"/a/b", "/a/bc", "/a"},
		{"/a/b", "/a/b/c", "/a/b"},
		{"/a/b/c", "/a/b", "/a/b"},
		{"/x", "/y", "/"},
		{"/", "/y", "/"},
		{"/ab", "/ac", "/"},
		{"/a", "/a", "/a"},
	} {
		if got := commonPath(tc.a, tc.b); got != tc.want {
			t.Errorf("commonPath(%q, %q) = %q, want %q", tc.a, tc.b, got, tc.want)
		}
	}
	for _, tc := range []struct{ path, mark, want string }{
		{"/docker/" + id + "/init.scope", id, "/docker/" + id},
		{"/s/docker-" + id + ".scope/sub", id, "/s/docker-" + id + ".scope"},
		{"/s/x" + id[1:] + "/sub", id[1:] + "x", "/s/x" + id[1:] + "/sub"},
		{"/s/x.service", "x.service", "/s/x.service"},
		{"/other", "abc", "/other"},
		{"/s/ax.service/x.service/y", "x.service", "/s/ax.service/x.service"},
		{"/s/x.service/x.service/y", "x.service", "/s/x.service/x.service"},
		{"/a/b", "", "/a/b"},
	} {
		if got := cutAfter(tc.path, tc.mark); got != tc.want {
			t.Errorf("cutAfter(%q, %q) = %q, want %q", tc.path, tc.mark, got, tc.want)
		}
	}
	for _, tc := range []struct {
		path, dir string
		want      bool
	}{
		{"/a/b", "/a", true}, {"/a", "/a", true}, {"/ab", "/a", false}, {"/", "/a", false}, {"/x", "/", true},
	} {
		if got := under(tc.path, tc.dir); got != tc.want {
			t.Errorf("under(%q, %q) = %v", tc.path, tc.dir, got)
		}
	}
}
