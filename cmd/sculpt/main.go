// Command sculpt is the sculpt node agent: it profiles the workloads on a
// Linux server and rearranges the machine around them.
//
// This package only wires flags to the internal packages; the logic lives
// under internal/.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"sculpt/internal/host"
	"sculpt/internal/workload"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// app holds what every command shares: the roots it reads the machine
// through, where it writes, and its logger.
type app struct {
	roots  host.Roots
	stdout io.Writer
	stderr io.Writer
	log    *slog.Logger
}

// usageError marks bad input: the command exits 2 instead of 1.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// flagged is an error whose message names the command-line flags involved.
type flagged struct {
	msg string
	err error
}

func (e flagged) Error() string { return e.msg }
func (e flagged) Unwrap() error { return e.err }

// selectionError turns workload discovery's error about the --pid and
// --cgroup selection (one line per bad value, "pid 999999: no such
// process") into a usage error whose lines name the flag, as sculpt act's
// do ("--pid 999999: no such process"). Other errors pass through.
func selectionError(err error) error {
	if !errors.Is(err, workload.ErrNoSuchProcess) && !errors.Is(err, workload.ErrNoSuchCgroup) && !errors.Is(err, workload.ErrExcluded) {
		return err
	}
	lines := strings.Split(err.Error(), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "pid ") || strings.HasPrefix(l, "cgroup ") {
			lines[i] = "--" + l
		}
	}
	return usageError{flagged{strings.Join(lines, "\n"), err}}
}

// flagValue formats a flag's value for a message: as typed when it is one
// plain word, quoted when it is empty or holds spaces or quotes.
func flagValue(v string) string {
	if v == "" || strings.ContainsAny(v, " \t\n\"'") {
		return strconv.Quote(v)
	}
	return v
}

func newRootCmd(a *app) *cobra.Command {
	root := &cobra.Command{
		Use:   "sculpt",
		Short: "Profile each workload's DNA and reshape the server around it",
		Long: `sculpt learns how each workload on a Linux server behaves (its workload DNA)
and rearranges cores, memory, interrupts and virtual NICs around it, journaling
every change so that it can be undone.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	def := host.DefaultRoots()
	pf := root.PersistentFlags()
	pf.StringVar(&a.roots.Proc, "proc-root", def.Proc, "procfs mount point (e.g. /host/proc in a container)")
	pf.StringVar(&a.roots.Sys, "sys-root", def.Sys, "sysfs mount point")
	pf.StringVar(&a.roots.Cgroup, "cgroup-root", def.Cgroup, "cgroup filesystem root")
	root.SetOut(a.stdout)
	root.SetErr(a.stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	for _, add := range subcommands {
		root.AddCommand(add(a))
	}
	return root
}

// subcommands is filled by each command's file in its init function, so
// adding a command touches only its own file.
var subcommands []func(*app) *cobra.Command

func register(f func(*app) *cobra.Command) { subcommands = append(subcommands, f) }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code: 0 on success,
// 2 for bad input, 1 for any other failure.
func run(args []string, stdout, stderr io.Writer) int {
	a := &app{
		stdout: stdout,
		stderr: stderr,
		log:    slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd(a)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "sculpt: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) || isCobraUsage(err) {
		return 2
	}
	return 1
}
