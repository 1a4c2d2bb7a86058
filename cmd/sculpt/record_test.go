package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"sculpt/internal/telemetry"
	"sculpt/internal/testload"
	"sculpt/internal/trace"
)

func TestRecordBadInput(t *testing.T) {
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"record"}, "--out"},
		{[]string{"record", "--out", "x", "--interval", "0s"}, "--interval must be a positive duration"},
		{[]string{"record", "--out", "x", "--label", "has space"}, `--label "has space"`},
		{[]string{"record", "--out", "x", "--label", "abc=def"}, "before '=' give a PID or a cgroup path"},
		{[]string{"record", "--out", "x", "--label", "a", "--label", "b"}, "already given"},
		{[]string{"record", "--out", filepath.Join(t.TempDir(), "x"), "--pid", strconv.Itoa(1 << 30)}, "no such process"},
	}
	for _, c := range cases {
		code, out, errs := runCLI(t, c.args...)
		if code != 2 || !strings.Contains(errs, c.want) || out != "" {
			t.Errorf("%v: exit %d, stderr %q (want exit 2 saying %q), stdout %q", c.args, code, errs, c.want, out)
		}
	}
}

func TestRecordWritesALabelledTrace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read another process's io and fd table")
	}
	cpu := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"})
	idle := testload.Start(t, "sleep", nil)
	path := filepath.Join(t.TempDir(), "r.trace.gz")
	code, _, errs := runCLI(t, "record", "--out", path, "--for", "1500ms", "--interval", "250ms",
		"--pid", strconv.Itoa(cpu.Process.Pid), "--pid", strconv.Itoa(idle.Process.Pid),
		"--label", "spinner", "--label", strconv.Itoa(idle.Process.Pid)+"=sleeper")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(errs, "wrote "+path) {
		t.Errorf("stderr %q does not report the trace", errs)
	}
	tr, err := trace.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for _, w := range tr.Workloads {
		labels[w.Label] = w.ID
	}
	if labels["spinner"] == "" || labels["sleeper"] == "" {
		t.Fatalf("labels %+v, want spinner and sleeper", tr.Workloads)
	}
	if len(tr.Ticks) < 4 {
		t.Fatalf("%d ticks in 1.5 s at 250 ms", len(tr.Ticks))
	}
	cpuOf := func(label string) float64 {
		var sec float64
		for _, f := range tr.Series()[labels[label]] {
			v, _ := f.Values.Get(telemetry.CPUUserSec)
			sec += v
		}
		return sec
	}
	// The spinner burns CPU, the sleeper does not (however loaded the machine).
	if s, z := cpuOf("spinner"), cpuOf("sleeper"); s <= z || s <= 0 {
		t.Errorf("user CPU in the trace: spinner %v s, sleeper %v s", s, z)
	}
}
