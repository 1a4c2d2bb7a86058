package main

import (
	"io"
	"os"
	"time"

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
// desc, or nil when a.stderr is not a terminal.
func (a *app) newProgress(max int64, desc string) *progress {
	if !isTerminal(a.stderr) {
		return nil
	}
	return &progress{bar: progressbar.NewOptions64(max,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionSetWidth(30),
		progressbar.OptionShowCount(),
		progressbar.OptionSetElapsedTime(true),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionThrottle(100*time.Millisecond),
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
