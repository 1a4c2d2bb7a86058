package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sculpt/internal/engine"
)

// systemdUnit is a unit file: each key's values in file order, by key (sections
// are not told apart: sculpt.service uses no key twice across them).
type systemdUnit map[string][]string

func readUnit(t *testing.T, file string) systemdUnit {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	u := systemdUnit{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == ';' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", file, line)
		}
		u[strings.TrimSpace(k)] = append(u[strings.TrimSpace(k)], strings.TrimSpace(v))
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

func (u systemdUnit) one(t *testing.T, key string) string {
	t.Helper()
	if len(u[key]) != 1 {
		t.Fatalf("unit: %s set %d times, want once", key, len(u[key]))
	}
	return u[key][0]
}

// runFlags returns the --name value pairs of an ExecStart line after "run",
// failing on any word that is not a flag of sculpt run.
func runFlags(t *testing.T, words []string) map[string]string {
	t.Helper()
	cmd := newRootCmd(&app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	runCmd, _, err := cmd.Find([]string{"run"})
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]string{}
	for i := 0; i < len(words); i++ {
		name, ok := strings.CutPrefix(words[i], "--")
		f := runCmd.Flags().Lookup(name)
		if f == nil {
			f = runCmd.InheritedFlags().Lookup(name)
		}
		if !ok || f == nil {
			t.Errorf("ExecStart: %q is not a flag of sculpt run", words[i])
			continue
		}
		if f.Value.Type() == "bool" || i+1 == len(words) {
			flags[name] = "true"
			continue
		}
		flags[name] = words[i+1]
		i++
	}
	return flags
}

// TestSystemdUnit checks deploy/systemd against sculpt itself: ExecStart is sculpt run
// in apply mode with flags it knows, what it writes lies in ReadWritePaths, the
// capabilities are the DaemonSet's (docs/kubernetes.md), the packaged rules are the
// embedded ones and the packaged config is the defaults.
func TestSystemdUnit(t *testing.T) {
	u := readUnit(t, "../../deploy/systemd/sculpt.service")
	words := strings.Fields(u.one(t, "ExecStart"))
	if len(words) < 2 || words[0] != "/usr/bin/sculpt" || words[1] != "run" {
		t.Fatalf("ExecStart %v: want /usr/bin/sculpt run ...", words)
	}
	flags := runFlags(t, words[2:])
	for k, v := range map[string]string{"mode": "apply", "config": "/etc/sculpt/config.yaml", "rules": "/etc/sculpt/rules.yaml", "log-format": "json"} {
		if flags[k] != v {
			t.Errorf("ExecStart: --%s %q, want %q", k, flags[k], v)
		}
	}
	for k, v := range map[string]string{"Type": "simple", "Restart": "on-failure", "ProtectSystem": "strict", "NoNewPrivileges": "yes",
		"ProtectHome": "yes", "PrivateTmp": "yes", "RuntimeDirectory": "sculpt", "StateDirectory": "sculpt", "ExecReload": "/bin/kill -HUP $MAINPID"} {
		if got := u.one(t, k); got != v {
			t.Errorf("unit: %s=%s, want %s", k, got, v)
		}
	}

	// What sculpt writes is writable under ProtectSystem=strict.
	rw := strings.Fields(u.one(t, "ReadWritePaths"))
	writable := func(p string) bool {
		return slices.ContainsFunc(rw, func(d string) bool { return p == d || strings.HasPrefix(p, d+"/") })
	}
	listen := "/run/sculpt/sculpt.sock" // run's default
	for _, p := range []string{flags["journal"], flags["experience"], listen, "/sys/fs/cgroup/sculpt.slice", "/proc/irq/24/smp_affinity", "/sys/class/net/eth0/queues/rx-0/rps_cpus"} {
		if p == "" || !writable(p) {
			t.Errorf("%q is not under ReadWritePaths %v", p, rw)
		}
	}
	if !strings.HasPrefix(flags["journal"], "/var/lib/sculpt/") || !strings.HasPrefix(flags["experience"], "/var/lib/sculpt/") {
		t.Errorf("journal %q and experience %q belong in StateDirectory /var/lib/sculpt", flags["journal"], flags["experience"])
	}

	// The capabilities are the DaemonSet's, bounded and ambient.
	ds := readManifests(t)["DaemonSet/sculpt"]
	var dsCaps []string
	for _, c := range ds.Spec.Template.Spec.Containers[0].SecurityContext.Capabilities.Add {
		dsCaps = append(dsCaps, "CAP_"+c)
	}
	slices.Sort(dsCaps)
	for _, k := range []string{"CapabilityBoundingSet", "AmbientCapabilities"} {
		got := slices.Sorted(slices.Values(strings.Fields(u.one(t, k))))
		if len(dsCaps) == 0 || !slices.Equal(got, dsCaps) {
			t.Errorf("unit: %s %v, want the DaemonSet's %v (docs/kubernetes.md, docs/install.md)", k, got, dsCaps)
		}
	}

	// The packaged rules are the embedded default rules, and they check clean.
	code, want, errOut := runCLI(t, "rules", "default")
	if code != 0 {
		t.Fatalf("rules default: exit %d: %s", code, errOut)
	}
	got, err := os.ReadFile("../../deploy/systemd/rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("deploy/systemd/rules.yaml differs from `sculpt rules default`: run scripts/package.sh (or sculpt rules default > deploy/systemd/rules.yaml)")
	}

	// The packaged config is valid and is the defaults.
	data, err := os.ReadFile("../../deploy/systemd/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := engine.ParseConfig("deploy/systemd/config.yaml", data)
	if err != nil {
		t.Fatalf("the packaged config: %v", err)
	}
	if !reflect.DeepEqual(cfg, engine.DefaultConfig()) {
		t.Errorf("the packaged config is not the defaults:\n got %+v\nwant %+v", cfg, engine.DefaultConfig())
	}
}

// TestPackageInstall builds the .deb (scripts/package.sh, nfpm through the Go module
// proxy: only with SCULPT_TEST_PACKAGE=1), checks it with dpkg-deb, installs it with
// dpkg -i into this machine and purges it afterwards, verifies the installed unit,
// and runs the installed unit's ExecStart line as the unit would: under its
// capability bounding set, without new privileges. It adds --mode advise, --for,
// an interval, a temporary socket, journal and experience so that it changes
// nothing on the machine and meets no other sculpt; then sculpt status must answer
// through the socket and sculpt must exit 0.
func TestPackageInstall(t *testing.T) {
	if os.Getenv("SCULPT_TEST_PACKAGE") == "" {
		t.Skip("SCULPT_TEST_PACKAGE unset: building the package downloads nfpm (scripts/test.sh sets it)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root: dpkg -i")
	}
	for _, tool := range []string{"dpkg", "dpkg-deb", "setpriv", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s missing: %v", tool, err)
		}
	}
	if err := exec.Command("dpkg", "-s", "sculpt").Run(); err == nil {
		t.Skip("a sculpt package is installed here: not replacing it")
	}
	for _, p := range []string{"/usr/bin/sculpt", "/etc/sculpt", "/lib/systemd/system/sculpt.service"} {
		if _, err := os.Stat(p); err == nil {
			t.Skipf("%s exists and belongs to no sculpt package: not overwriting it", p)
		}
	}
	_, err := os.Stat("/var/lib/sculpt")
	stateExisted := err == nil

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	build := exec.CommandContext(ctx, "../../scripts/package.sh")
	var buildErr bytes.Buffer
	build.Stderr = &buildErr
	out, err := build.Output()
	if err != nil {
		t.Fatalf("scripts/package.sh: %v\n%s", err, buildErr.String())
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	deb := filepath.Join("../..", lines[len(lines)-1])
	t.Cleanup(func() { _ = os.Remove(deb) })

	sh := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	info := sh("dpkg-deb", "--info", deb)
	for _, want := range []string{"Package: sculpt", "Architecture: ", "postinst"} {
		if !strings.Contains(info, want) {
			t.Errorf("dpkg-deb --info: no %q in\n%s", want, info)
		}
	}
	if conf := sh("dpkg-deb", "--info", deb, "conffiles"); conf != "/etc/sculpt/config.yaml\n/etc/sculpt/rules.yaml\n" {
		t.Errorf("conffiles %q, want the config and the rules", conf)
	}
	contents := sh("dpkg-deb", "--contents", deb)
	for _, want := range []string{"-rwxr-xr-x root/root", "./usr/bin/sculpt", "./lib/systemd/system/sculpt.service",
		"./etc/sculpt/config.yaml", "./etc/sculpt/rules.yaml", "drwx------ root/root         0", "./var/lib/sculpt/"} {
		if !strings.Contains(contents, want) {
			t.Errorf("dpkg-deb --contents: no %q in\n%s", want, contents)
		}
	}

	sh("dpkg", "-i", deb)
	t.Cleanup(func() {
		if out, err := exec.Command("dpkg", "--purge", "sculpt").CombinedOutput(); err != nil {
			t.Errorf("dpkg --purge sculpt: %v\n%s", err, out)
		}
		if !stateExisted {
			_ = os.Remove("/var/lib/sculpt") // only when empty, as dpkg --purge leaves it
		}
		for _, p := range []string{"/usr/bin/sculpt", "/etc/sculpt", "/lib/systemd/system/sculpt.service"} {
			if _, err := os.Stat(p); err == nil {
				t.Errorf("%s left after dpkg --purge", p)
			}
		}
	})
	if v := sh("/usr/bin/sculpt", "version"); !strings.HasPrefix(v, "sculpt ") {
		t.Errorf("installed sculpt version: %q", v)
	}
	// dpkg keeps the mode of a directory that existed before.
	if st, err := os.Stat("/var/lib/sculpt"); err != nil || !st.IsDir() || (!stateExisted && st.Mode().Perm() != 0o700) {
		t.Errorf("/var/lib/sculpt: %v; want a directory, mode 0700 when the package made it", err)
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		// verify says what it finds wrong with the unit on stderr, naming it, and exits non-zero.
		out, err := exec.CommandContext(ctx, "systemd-analyze", "verify", "/lib/systemd/system/sculpt.service").CombinedOutput()
		if err != nil || strings.Contains(string(out), "sculpt.service") {
			t.Errorf("systemd-analyze verify: %v\n%s", err, out)
		}
	} else {
		t.Log("systemd-analyze missing: the unit is not verified")
	}

	// Run ExecStart as the unit would: its capability bounding set (setpriv stands
	// in for systemd; PID 1 here is not systemd), no new privileges.
	u := readUnit(t, "/lib/systemd/system/sculpt.service")
	words := strings.Fields(u.one(t, "ExecStart"))
	var caps []string
	for _, c := range strings.Fields(u.one(t, "CapabilityBoundingSet")) {
		caps = append(caps, "+"+strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "sculpt.sock")
	args := append([]string{"--bounding-set=-all," + strings.Join(caps, ","), "--no-new-privs", "--"}, words...)
	args = append(args, "--mode", "advise", "--for", "6s", "--interval", "1s", "--listen", sock,
		"--journal", filepath.Join(dir, "journal.json"), "--experience", filepath.Join(dir, "experience.json"))
	agent := exec.CommandContext(ctx, "setpriv", args...)
	var agentErr bytes.Buffer
	agent.Stderr = &agentErr
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	var status string
	var statusErr error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var b []byte
		b, statusErr = exec.CommandContext(ctx, "/usr/bin/sculpt", "status", "--server", sock).CombinedOutput()
		status = string(b)
		if statusErr == nil {
			break
		}
	}
	if statusErr != nil || !strings.Contains(status, "mode advise") {
		t.Errorf("sculpt status --server %s: %v\n%s", sock, statusErr, status)
	}
	// setpriv execs sculpt: the agent's process holds the unit's capabilities and no other.
	capNum := map[string]uint{"CAP_SYS_NICE": unix.CAP_SYS_NICE, "CAP_SYS_PTRACE": unix.CAP_SYS_PTRACE, "CAP_DAC_READ_SEARCH": unix.CAP_DAC_READ_SEARCH,
		"CAP_NET_ADMIN": unix.CAP_NET_ADMIN, "CAP_SYS_ADMIN": unix.CAP_SYS_ADMIN, "CAP_BPF": unix.CAP_BPF, "CAP_PERFMON": unix.CAP_PERFMON}
	var wantMask uint64
	for _, c := range strings.Fields(u.one(t, "CapabilityBoundingSet")) {
		n, ok := capNum[c]
		if !ok {
			t.Fatalf("CapabilityBoundingSet: %s is not one of the capabilities docs/install.md explains", c)
		}
		wantMask |= 1 << n
	}
	if st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", agent.Process.Pid)); err == nil {
		for _, l := range strings.Split(string(st), "\n") {
			k, v, _ := strings.Cut(l, ":")
			if k == "CapBnd" || k == "CapEff" {
				if got, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil || got != wantMask {
					t.Errorf("the agent's %s %s, want %016x", k, strings.TrimSpace(v), wantMask)
				}
			}
		}
	} else {
		t.Errorf("the agent's status: %v", err)
	}
	if err := agent.Wait(); err != nil {
		t.Errorf("the unit's ExecStart: %v\n%s", err, agentErr.String())
	}
	// --log-format json: every stderr line is a JSON object.
	for _, l := range strings.Split(strings.TrimSpace(agentErr.String()), "\n") {
		if !strings.HasPrefix(l, "{") {
			t.Errorf("ExecStart's --log-format json wrote a non-JSON line: %q", l)
		}
	}
}
