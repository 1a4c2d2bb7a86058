package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sculpt/internal/hal/journal"
	"sculpt/internal/testload"
)

func cpusAllowed(t *testing.T, pid int) string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no Cpus_allowed_list for pid %d", pid)
	return ""
}

func journalLen(t *testing.T, path string) int {
	t.Helper()
	j, err := journal.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = j.Close() }()
	return j.Len()
}

// TestRunRecoversJournalAtStart: changes left in the journal by an earlier
// sculpt are undone when `sculpt run` starts, or adopted with --keep.
func TestRunRecoversJournalAtStart(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to change another process's affinity")
	}
	p := testload.Start(t, "sleep", nil)
	pid := strconv.Itoa(p.Process.Pid)
	before := cpusAllowed(t, p.Process.Pid)
	jpath := filepath.Join(t.TempDir(), "journal.json")

	if code, _, errs := runCLI(t, "act", "pin", "--pid", pid, "--cpus", "0", "--journal", jpath); code != 0 {
		t.Fatalf("act pin: exit %d: %s", code, errs)
	}
	if got := cpusAllowed(t, p.Process.Pid); got != "0" {
		t.Fatalf("after pin, Cpus_allowed_list = %q, want 0", got)
	}

	// --keep adopts: the change stays, the journal keeps it.
	if code, _, errs := runCLI(t, "run", "--keep", "--journal", jpath, "--pid", pid, "--interval", "100ms", "--for", "200ms"); code != 0 {
		t.Fatalf("run --keep: exit %d: %s", code, errs)
	}
	if got := cpusAllowed(t, p.Process.Pid); got != "0" {
		t.Errorf("run --keep undid the pin: Cpus_allowed_list = %q", got)
	}
	if n := journalLen(t, jpath); n != 1 {
		t.Errorf("after run --keep the journal holds %d entries, want 1", n)
	}

	// Without --keep the start-up undoes it.
	code, out, errs := runCLI(t, "run", "--journal", jpath, "--pid", pid, "--interval", "100ms", "--for", "200ms", "--json")
	if code != 0 {
		t.Fatalf("run: exit %d: %s", code, errs)
	}
	if got := cpusAllowed(t, p.Process.Pid); got != before {
		t.Errorf("after recovery Cpus_allowed_list = %q, want %q", got, before)
	}
	if n := journalLen(t, jpath); n != 0 {
		t.Errorf("after recovery the journal holds %d entries, want 0", n)
	}
	if strings.Contains(out, "revert") {
		t.Errorf("recovery report went to stdout, mixed with JSON lines: %q", out)
	}
}

// truncID keeps the part of an ID that tells it from its neighbours.
func TestTruncID(t *testing.T) {
	for _, c := range []struct {
		id   string
		n    int
		want string
	}{
		{"cg:/batch", 32, "cg:/batch"},
		{"cg:/process_api/cca032aa2000d755d7498014716ebf4c", 32, "cg:/process_api/cca032aa2000d75…"},
		{"cg:/a/very/long/path/of/cgroups/to/jobs/job1", 20, "cg:…/to/jobs/job1"},
		{"tree:4123456@18446744073709", 16, "tree:4123456@18…"},
		{"unit:crio-conmon-cccc9c1b0d4e5f60718293a4b5c6d7e8.scope", 24, "unit:crio-conmon-cccc9c…"},
	} {
		got := truncID(c.id, c.n)
		if got != c.want {
			t.Errorf("truncID(%q, %d) = %q, want %q", c.id, c.n, got, c.want)
		}
		if n := len([]rune(got)); n > c.n {
			t.Errorf("truncID(%q, %d) = %q is %d characters long", c.id, c.n, got, n)
		}
	}
}
