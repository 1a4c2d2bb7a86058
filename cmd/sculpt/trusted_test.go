package main

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sculpt/internal/engine"
)

type fakeInfo struct {
	mode fs.FileMode
	uid  uint32
}

func (f fakeInfo) Name() string       { return "f" }
func (f fakeInfo) Size() int64        { return 0 }
func (f fakeInfo) Mode() fs.FileMode  { return f.mode }
func (f fakeInfo) ModTime() time.Time { return time.Time{} }
func (f fakeInfo) IsDir() bool        { return false }
func (f fakeInfo) Sys() any           { return &syscall.Stat_t{Uid: f.uid} }

func TestCheckTrusted(t *testing.T) {
	cases := []struct {
		mode fs.FileMode
		uid  uint32
		euid int
		want string // "" accepted
	}{
		{0o600, 0, 0, ""},
		{0o644, 0, 1000, ""},    // root's file, read by a user's sculpt
		{0o444, 1000, 1000, ""}, // the user's own
		{0o755, 1000, 1000, ""}, // executable bits do not matter
		{0o620, 0, 0, "writable by its group (mode 0620): refused"},
		{0o602, 0, 0, "writable by others (mode 0602)"},
		{0o666, 0, 0, "writable by group and others (mode 0666)"},
		{0o600, 1000, 0, "owned by uid 1000, neither root nor the user running sculpt (uid 0)"},
		{0o600, 1001, 1000, "owned by uid 1001"},
	}
	for _, c := range cases {
		err := checkTrusted("/etc/sculpt/x.yaml", fakeInfo{c.mode, c.uid}, c.euid)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("mode %04o uid %d euid %d: refused: %v", c.mode, c.uid, c.euid, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("mode %04o uid %d euid %d: %v, want %q", c.mode, c.uid, c.euid, err, c.want)
		}
		if err != nil && !strings.Contains(err.Error(), "/etc/sculpt/x.yaml") {
			t.Errorf("%v does not name the file", err)
		}
	}
	if err := checkTrusted("x", fakeInfo{0o622, 0}, 0); err == nil || !strings.Contains(err.Error(), "run chmod go-w x") {
		t.Errorf("mode refusal %v does not say to chmod go-w", err)
	}
}

// untrustedFile writes a valid file of its kind and makes it writable by
// others (mode 0666, set after the umask).
func untrustedFile(t *testing.T, name string, body []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, body, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o666); err != nil {
		t.Fatal(err)
	}
	return p
}

// Each file sculpt takes orders from is refused when others can write it:
// the config (run and act: exit 2), the rules (exit 2), the model (the gene
// classifier decides) and the experience (the agent is off).
func TestUntrustedFilesRefused(t *testing.T) {
	cfg := untrustedFile(t, "config.yaml", []byte("budget: 4\n"))
	code, _, stderr := actCLI(t, "act", "pin", "--pid", "1", "--cpus", "0", "--config", cfg, "--journal", filepath.Join(t.TempDir(), "j"))
	if code != 2 || !strings.Contains(stderr, "--config: "+cfg+" is writable by group and others (mode 0666)") || !strings.Contains(stderr, "chmod go-w "+cfg) {
		t.Errorf("act --config (0666): exit %d, %q", code, stderr)
	}
	code, _, stderr = actCLI(t, "run", "--mode", "advise", "--config", cfg, "--for", "1ms")
	if code != 2 || !strings.Contains(stderr, "chmod go-w "+cfg) {
		t.Errorf("run --config (0666): exit %d, %q", code, stderr)
	}
	rules := untrustedFile(t, "rules.yaml", engine.DefaultRulesYAML())
	code, _, stderr = actCLI(t, "run", "--mode", "advise", "--rules", rules, "--for", "1ms")
	if code != 2 || !strings.Contains(stderr, "--rules: read rules: "+rules+" is writable") {
		t.Errorf("run --rules (0666): exit %d, %q", code, stderr)
	}

	var errb bytes.Buffer
	a := &app{stdout: &errb, stderr: &errb, log: slog.New(slog.NewTextHandler(&errb, nil))}
	model := untrustedFile(t, "x.model", []byte("not even a model"))
	if m := a.loadDNAModel(model); m != nil || !strings.Contains(errb.String(), "chmod go-w "+model) {
		t.Errorf("--model (0666): model %v, stderr %q", m, errb.String())
	}
	errb.Reset()
	exp := untrustedFile(t, "experience", nil)
	ag, err := a.newAgent(engineFlags{mode: engine.ModeApply, agent: "sculpt", experience: exp}, engine.DefaultConfig())
	if ag != nil || err != nil || !strings.Contains(errb.String(), "the agent is off") || !strings.Contains(errb.String(), "chmod go-w "+exp) {
		t.Errorf("--experience (0666): agent %v, %v, log %q", ag, err, errb.String())
	}
	if b, err := os.ReadFile(exp); err != nil || len(b) != 0 {
		t.Errorf("the refused experience file was changed: %q %v", b, err)
	}
}

// A file owned by another user is refused even with a strict mode (root
// only: it takes chown).
func TestUntrustedOwnerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a file to another user")
	}
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte("budget: 4\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(p, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := actCLI(t, "act", "pin", "--pid", "1", "--cpus", "0", "--config", p, "--journal", filepath.Join(t.TempDir(), "j"))
	if code != 2 || !strings.Contains(stderr, "owned by uid 65534, neither root nor the user running sculpt (uid 0)") {
		t.Errorf("act --config owned by 65534: exit %d, %q", code, stderr)
	}
}
