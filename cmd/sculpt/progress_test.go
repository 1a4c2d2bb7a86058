package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal and returns its controlling side and its
// terminal side, or skips when the kernel offers none.
func openPTY(t *testing.T) (ptm, pts *os.File) {
	t.Helper()
	fd, err := unix.Open("/dev/ptmx", unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: /dev/ptmx: %v", err)
	}
	ptm = os.NewFile(uintptr(fd), "/dev/ptmx")
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		_ = ptm.Close()
		t.Skipf("no pseudo-terminal: unlock: %v", err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		_ = ptm.Close()
		t.Skipf("no pseudo-terminal: TIOCGPTN: %v", err)
	}
	pts, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		_ = ptm.Close()
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { _ = pts.Close(); _ = ptm.Close() })
	return ptm, pts
}

// TestProgressOnlyOnTerminal runs the same bench engine twice: with stderr on a
// terminal it draws a bar (the ground truth that the bar exists); with stderr
// on a file it prints no bar, and stdout (--json) never carries one.
func TestProgressOnlyOnTerminal(t *testing.T) {
	args := []string{"bench", "engine", "--seeds", "1-3", "--steps", "20", "--json"}
	ptm, pts := openPTY(t)
	if !isTerminal(pts) {
		t.Fatalf("%s: not a terminal", pts.Name())
	}
	got := make(chan string, 1)
	go func() {
		var b bytes.Buffer
		_, _ = io.Copy(&b, ptm) // ends with EIO when the terminal side closes
		got <- b.String()
	}()
	var out bytes.Buffer
	if code := run(args, &out, pts); code != 0 {
		t.Fatalf("on a terminal: exit %d", code)
	}
	_ = pts.Close()
	var tty string
	select {
	case tty = <-got:
	case <-time.After(30 * time.Second):
		t.Fatal("the terminal's output never ended")
	}
	if !strings.Contains(tty, "bench engine: scenarios") || !strings.Contains(tty, "/3)") {
		t.Errorf("stderr on a terminal: no progress bar in %q", tty)
	}
	if strings.ContainsAny(out.String(), "\r█") {
		t.Errorf("a bar reached stdout: %q", out.String())
	}

	errFile, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = errFile.Close() }()
	out.Reset()
	if code := run(args, &out, errFile); code != 0 {
		t.Fatalf("stderr on a file: exit %d", code)
	}
	b, err := os.ReadFile(errFile.Name())
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "scenarios") || strings.ContainsAny(string(b), "\r█") {
		t.Errorf("stderr on a file carries a bar: %q", b)
	}
	if strings.Count(out.String(), "\n") != 4 {
		t.Errorf("--json: want 3 scenarios and a summary, got:\n%s", out.String())
	}
}

// TestProgressWriter: a line printed while the bar is drawn comes out whole, and
// the bar is drawn again after it; without a bar the line is written as it is.
func TestProgressWriter(t *testing.T) {
	var buf bytes.Buffer
	p := newProgressTo(&buf, 4, "runs")
	p.set(1, "")
	w := p.writer(&buf)
	fmt.Fprintf(w, "[run 1/2] memcached, alone\n")
	out := buf.String()
	i := strings.Index(out, "[run 1/2] memcached, alone\n")
	if i < 0 {
		t.Fatalf("the line is not in the output %q", out)
	}
	if after := out[i:]; !strings.Contains(after, "runs") || !strings.Contains(after, "(1/4)") {
		t.Errorf("no bar after the line: %q", after)
	}
	p.done()
	buf.Reset()
	fmt.Fprintf(w, "after\n")
	if buf.String() != "after\n" {
		t.Errorf("after done: %q, want the line alone", buf.String())
	}

	var nilBar *progress
	var plain bytes.Buffer
	if nilBar.writer(&plain) != io.Writer(&plain) {
		t.Error("without a bar, writer is not the writer itself")
	}
}
