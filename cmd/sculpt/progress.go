package main

import (
	"io"
	"os"
	"sync"

	"github.com/schollz/progressbar/v3"
	"golang.org/x/term"
)

// progress is a progress bar on stderr for a long command (train's epochs,
// record's duration, bench's runs). It draws only when stderr is a terminal:
// redirected to a file or a pipe, or in a test, the command prints its usual
// lines and no bar, and a bar never reaches stdout (--json output stays clean).
// A nil *progress is valid and draws nothing.
type progress struct {
	bar      *progressbar.ProgressBar
	finished bool
}

// isTerminal reports whether w is a terminal (an *os.File on a tty).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// newProgress returns a bar of max steps (-1: a spinner of unknown length) titled
// desc, or nil when a.stderr is not a terminal. It redraws on every step (the
// steps of these commands come seconds apart).
func (a *app) newProgress(max int64, desc string) *progress {
	if !isTerminal(a.stderr) {
		return nil
	}
	return newProgressTo(a.stderr, max, desc)
}

// newProgressTo draws a bar on w, terminal or not.
func newProgressTo(w io.Writer, max int64, desc string) *progress {
	return &progress{bar: progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(w),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSpinnerType(14),
	)}
}

// active reports whether a bar is drawn (the caller then leaves out the lines the
// bar replaces).
func (p *progress) active() bool { return p != nil }

// set moves the bar to n with a new description ("" keeps it).
func (p *progress) set(n int64, desc string) {
	if p == nil {
		return
	}
	if desc != "" {
		p.bar.Describe(desc)
	}
	_ = p.bar.Set64(n)
}

// setMax changes the bar's length (-1: unknown).
func (p *progress) setMax(n int64) {
	if p == nil {
		return
	}
	p.bar.ChangeMax64(n)
}

// add advances the bar by n.
func (p *progress) add(n int64) {
	if p == nil {
		return
	}
	_ = p.bar.Add64(n)
}

// done clears the bar so that the lines after it start on a clean line.
func (p *progress) done() {
	if p == nil || p.finished {
		return
	}
	p.finished = true
	_ = p.bar.Finish()
	_ = p.bar.Clear()
}

// writer returns w for the lines a command prints while the bar is drawn: each
// write clears the bar, writes, and draws the bar again below it. Without a bar
// it is w.
func (p *progress) writer(w io.Writer) io.Writer {
	if p == nil {
		return w
	}
	return &barWriter{p: p, w: w}
}

type barWriter struct {
	mu sync.Mutex
	p  *progress
	w  io.Writer
}

func (b *barWriter) Write(data []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.p.finished {
		return b.w.Write(data)
	}
	_ = b.p.bar.Clear()
	n, err := b.w.Write(data)
	_ = b.p.bar.RenderBlank()
	return n, err
}
