package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchProc is a process the co-location benchmark started, the leader of
// its own process group, so that killing the group also ends the workers it
// forked (nginx workers, stress-ng stressors).
type benchProc struct {
	name    string
	cmd     *exec.Cmd
	outPath string // stdout and stderr
	done    chan struct{}
	waitErr error
}

// startProc starts argv in a new process group with stdout and stderr to
// outPath. Should the benchmark die without cleaning up, the kernel kills the
// leader (Pdeathsig); the group is killed by kill.
func startProc(name string, argv []string, dir, outPath string) (*benchProc, error) {
	out, err := os.Create(outPath)
	if err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	// The child holds its own copy and does the writing; closing ours loses nothing.
	defer func() { _ = out.Close() }()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s (%s): %w", name, strings.Join(argv, " "), err)
	}
	p := &benchProc{name: name, cmd: cmd, outPath: outPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *benchProc) pid() int { return p.cmd.Process.Pid }

// errExitedOK stands in for a nil wait error in messages about a process
// that ended when it should not have, so %w always has an error to wrap.
var errExitedOK = errors.New("exit status 0")

// exitErr is why p ended: its wait error, or errExitedOK. Call it only
// after p has exited.
func (p *benchProc) exitErr() error {
	if p.waitErr != nil {
		return p.waitErr
	}
	return errExitedOK
}

func (p *benchProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// output is what the process wrote so far.
func (p *benchProc) output() []byte {
	b, _ := os.ReadFile(p.outPath)
	return b
}

// kill sends SIGKILL to the process group, reaps the leader and waits up to
// 10 s for the rest of the group to go (a process in uninterruptible I/O
// dies when it leaves the kernel; orphans are reaped by init). The group may
// outlive its leader, so it is signalled either way.
func (p *benchProc) kill() error {
	_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
	<-p.done
	for range 500 {
		if err := syscall.Kill(-p.pid(), syscall.SIGKILL); errors.Is(err, syscall.ESRCH) {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("%s: process group %d still has processes 10s after SIGKILL", p.name, p.pid())
}

// terminate sends SIGTERM to the leader and waits up to grace for it to exit,
// then kills the group. It returns the leader's exit error, or an error
// saying it had to be killed.
func (p *benchProc) terminate(grace time.Duration) error {
	if !p.exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		if err := p.kill(); err != nil {
			return err
		}
		return p.waitErr
	case <-t.C:
		_ = p.kill()
		return fmt.Errorf("%s (pid %d) did not exit within %v of SIGTERM; killed", p.name, p.pid(), grace)
	}
}

// wait waits up to timeout for the leader to exit.
func (p *benchProc) wait(ctx context.Context, timeout time.Duration) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%s (pid %d) still running after %v", p.name, p.pid(), timeout)
	}
}

// groupingHierarchy returns a cgroup hierarchy that groups processes without
// controlling any resource, where the benchmark puts every service and
// antagonist in a cgroup of its own, as a container runtime or systemd would:
// the cgroup2 hierarchy if it has no CPU, memory or I/O controller enabled
// for children, else systemd's named v1 hierarchy; "" if neither is there.
// It reads <root>/unified or <root> (cgroup.subtree_control) and
// <root>/systemd.
func groupingHierarchy(root string) string {
	for _, dir := range []string{filepath.Join(root, "unified"), root} {
		b, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
		if err != nil {
			continue
		}
		if f := strings.Fields(string(b)); !slices.ContainsFunc(f, func(c string) bool { return c == "cpu" || c == "memory" || c == "io" || c == "cpuset" }) {
			return dir
		}
	}
	if _, err := os.Stat(filepath.Join(root, "systemd", "cgroup.procs")); err == nil {
		return filepath.Join(root, "systemd")
	}
	return ""
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer func() { _ = l.Close() }() // only the port number was wanted
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitListening waits until addr accepts TCP connections, p exits, or
// timeout passes.
func waitListening(ctx context.Context, addr string, p *benchProc, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			return c.Close()
		}
		if p.exited() {
			return fmt.Errorf("%s exited before listening on %s: %w: %s", p.name, addr, p.exitErr(), lastBytes(p.output(), 400))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not listening on %s after %v: %w", p.name, addr, timeout, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// staticSetting is a hand setting of the kind an operator makes once with
// taskset, nice, chrt or a cgroup: it wraps the service's and the
// antagonists' command lines.
type staticSetting struct {
	name            string
	serviceCPUs     string // taskset -c for the service
	antagonistCPUs  string // taskset -c for the antagonists
	antagonistNice  int    // nice -n
	antagonistIdle  bool   // chrt -i 0 (SCHED_IDLE)
	cgroupShares    bool   // cgroup v1 cpu.shares
	serviceShares   int
	antagonistShare int
	// antagonistQuota caps the antagonists together at this many cores
	// (cgroup v1 cpu.cfs_quota_us); 0: no cap. antagonistMinWeight gives
	// their cgroup the least cpu.shares (2). Either puts the antagonists in
	// one cpu cgroup (quotaCgroup).
	antagonistQuota     float64
	antagonistMinWeight bool
}

// The static settings Colocation can try; StaticSettings lists their names.
func staticSettings(ncpu int) []staticSetting {
	last := strconv.Itoa(ncpu - 1)
	rest := "0"
	if ncpu > 2 {
		rest = "0-" + strconv.Itoa(ncpu-2)
	}
	return []staticSetting{
		{name: "pin", serviceCPUs: last, antagonistCPUs: rest},
		{name: "nice", antagonistNice: 19},
		{name: "idle", antagonistIdle: true},
		{name: "shares", cgroupShares: true, serviceShares: 10240, antagonistShare: 2},
		{name: "pin+idle", serviceCPUs: last, antagonistCPUs: rest, antagonistIdle: true},
	}
}

// StaticSettings are the names of the static hand settings the co-location
// benchmark can try.
var StaticSettings = []string{"pin", "nice", "idle", "shares", "pin+idle"}

func (s staticSetting) describe() string {
	var parts []string
	if s.serviceCPUs != "" {
		parts = append(parts, "service on CPU "+s.serviceCPUs+", antagonists on CPU "+s.antagonistCPUs+" (taskset)")
	}
	if s.antagonistNice != 0 {
		parts = append(parts, "antagonists at nice "+strconv.Itoa(s.antagonistNice))
	}
	if s.antagonistIdle {
		parts = append(parts, "antagonists SCHED_IDLE (chrt -i 0)")
	}
	if s.cgroupShares {
		parts = append(parts, fmt.Sprintf("cgroup v1 cpu.shares: service %d, antagonists %d", s.serviceShares, s.antagonistShare))
	}
	if s.antagonistQuota > 0 {
		parts = append(parts, fmt.Sprintf("antagonists capped at %.2f cores together (cpu.cfs_quota_us)", s.antagonistQuota))
	}
	if s.antagonistMinWeight {
		parts = append(parts, "antagonists at the least weight (cpu.shares 2)")
	}
	if len(parts) == 0 {
		return "Linux default (no settings)"
	}
	return strings.Join(parts, "; ")
}

// wrap returns argv wrapped for role ("service" or "antagonist") under this
// setting, first entering cgroupDirs (already made; paths without spaces).
func (s staticSetting) wrap(role string, argv []string, cgroupDirs ...string) []string {
	var pre []string
	if len(cgroupDirs) > 0 {
		// Enter the cgroups before exec, so every process it forks is in them.
		pre = append(pre, "/bin/sh", "-c", `for d in $0; do echo $$ > "$d/cgroup.procs" || exit 1; done; exec "$@"`, strings.Join(cgroupDirs, " "))
	}
	if role == "service" {
		if s.serviceCPUs != "" {
			pre = append(pre, "taskset", "-c", s.serviceCPUs)
		}
		return append(pre, argv...)
	}
	if s.antagonistCPUs != "" {
		pre = append(pre, "taskset", "-c", s.antagonistCPUs)
	}
	if s.antagonistIdle {
		pre = append(pre, "chrt", "-i", "0")
	}
	if s.antagonistNice != 0 {
		pre = append(pre, "nice", "-n", strconv.Itoa(s.antagonistNice))
	}
	return append(pre, argv...)
}

// programs are the helper programs the setting runs.
func (s staticSetting) programs() []string {
	var p []string
	if s.serviceCPUs != "" || s.antagonistCPUs != "" {
		p = append(p, "taskset")
	}
	if s.antagonistIdle {
		p = append(p, "chrt")
	}
	if s.antagonistNice != 0 {
		p = append(p, "nice")
	}
	return p
}

// makeShareCgroups makes the service's and the antagonists' cgroups under
// the cgroup v1 cpu controller at base (<cgroup root>/cpu/<name>) and sets
// their cpu.shares.
func (s staticSetting) makeShareCgroups(base string) (service, antagonists string, err error) {
	if _, err := os.Stat(filepath.Join(filepath.Dir(base), "cpu.shares")); err != nil {
		return "", "", fmt.Errorf("static setting %s: no cgroup v1 cpu controller: %w", s.name, err)
	}
	service, antagonists = filepath.Join(base, "service"), filepath.Join(base, "antagonists")
	for dir, shares := range map[string]int{service: s.serviceShares, antagonists: s.antagonistShare} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return "", "", fmt.Errorf("static setting %s: %w", s.name, err)
		}
		p := filepath.Join(dir, "cpu.shares")
		if err := os.WriteFile(p, []byte(strconv.Itoa(shares)), 0o644); err != nil {
			return "", "", fmt.Errorf("write %d to %s: %w", shares, p, err)
		}
	}
	return service, antagonists, nil
}

// makeQuotaCgroup makes the antagonists' cgroup under the cgroup v1 cpu
// controller at base and sets its quota (per 100 ms period) and weight.
func (s staticSetting) makeQuotaCgroup(base string) (string, error) {
	if _, err := os.Stat(filepath.Join(filepath.Dir(base), "cpu.cfs_quota_us")); err != nil {
		return "", fmt.Errorf("setting %s: no cgroup v1 cpu controller with CFS quota: %w", s.name, err)
	}
	dir := filepath.Join(base, "antagonists")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("setting %s: %w", s.name, err)
	}
	write := func(file, v string) error {
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, []byte(v), 0o644); err != nil {
			return fmt.Errorf("write %s to %s: %w", v, p, err)
		}
		return nil
	}
	if s.antagonistQuota > 0 {
		if err := write("cpu.cfs_period_us", "100000"); err != nil {
			return "", err
		}
		if err := write("cpu.cfs_quota_us", strconv.Itoa(max(1000, int(s.antagonistQuota*100000)))); err != nil {
			return "", err
		}
	}
	// SCHED_IDLE antagonists in a cgroup give way to the service only when
	// the group is idle too (cpu.idle, Linux 5.15+): what sculpt's planner
	// does, so the grid measures the same arrangement. An idle group has
	// the least weight already (and refuses cpu.shares).
	if idle := filepath.Join(dir, "cpu.idle"); s.antagonistIdle && fileExists(idle) {
		return dir, write("cpu.idle", "1")
	}
	if s.antagonistMinWeight {
		if err := write("cpu.shares", "2"); err != nil {
			return "", err
		}
	}
	return dir, nil
}

// removeCgroups removes base and the cgroups right under it once their
// processes are gone (a cgroup is busy for a moment after its last task
// exits).
func removeCgroups(base string) error {
	var err error
	for range 50 {
		err = nil
		ents, _ := os.ReadDir(base)
		var dirs []string
		for _, e := range ents {
			if e.IsDir() {
				dirs = append(dirs, filepath.Join(base, e.Name()))
			}
		}
		for _, d := range append(dirs, base) {
			if e := syscall.Rmdir(d); e != nil && !errors.Is(e, syscall.ENOENT) {
				err = fmt.Errorf("remove cgroup %s: %w", d, e)
			}
		}
		if err == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}
