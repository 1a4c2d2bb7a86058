package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"sculpt/internal/hal/journal"
	"sculpt/internal/hal/linux"
)

func init() { register(newRevertCmd) }

func newRevertCmd(a *app) *cobra.Command {
	var asJSON, discard bool
	var path string
	cmd := &cobra.Command{
		Use:   "revert [--json] [--journal PATH] [--force-discard]",
		Short: "Undo every change in the journal, newest first",
		Long: `revert walks the journal backwards and restores what each change replaced.
A process that has exited since (or whose PID now belongs to another process)
is skipped with a note. A journal sculpt cannot read is refused; --force-discard
moves it aside without acting on it.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := journalPath(path)
			if discard {
				dst, err := journal.ForceDiscard(p)
				if err != nil {
					return err
				}
				if asJSON {
					return writeJSON(a, map[string]any{"journal": p, "discarded_to": dst, "steps": []linux.RevertStep{}})
				}
				if dst == "" {
					fmt.Fprintf(a.stdout, "no journal at %s; nothing to discard\n", p)
				} else {
					fmt.Fprintf(a.stdout, "moved journal %s aside to %s without reverting anything\n", p, dst)
				}
				return nil
			}
			j, err := journal.Open(p)
			if err != nil {
				return err
			}
			defer func() { _ = j.Close() }()
			be, err := linux.New(a.roots, linux.Options{})
			if err != nil {
				return err
			}
			steps, rerr := be.Revert(cmd.Context(), j)
			if asJSON {
				out := map[string]any{"journal": p, "steps": steps, "remaining": j.Len()}
				if steps == nil {
					out["steps"] = []linux.RevertStep{}
				}
				if rerr != nil {
					out["error"] = rerr.Error()
				}
				if err := writeJSON(a, out); err != nil {
					return err
				}
				return rerr
			}
			printRevert(a, p, steps, j.Len())
			return rerr
		},
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print the steps as JSON")
	f.StringVar(&path, "journal", "", "journal file (default $SCULPT_JOURNAL or "+journal.DefaultPath+")")
	f.BoolVar(&discard, "force-discard", false, "move an unreadable or unwanted journal aside without reverting it")
	return cmd
}

func printRevert(a *app, path string, steps []linux.RevertStep, remaining int) {
	if len(steps) == 0 {
		fmt.Fprintf(a.stdout, "journal %s is empty: nothing to revert\n", path)
		return
	}
	for _, s := range steps {
		switch s.Status {
		case linux.Restored:
			fmt.Fprintf(a.stdout, "restored: %s (undoing: %s)\n", s.Undo, s.Action)
			if s.Note != "" {
				fmt.Fprintf(a.stdout, "          %s\n", s.Note)
			}
		case linux.Skipped:
			fmt.Fprintf(a.stdout, "skipped:  %s — %s\n", s.Action, s.Note)
		default:
			fmt.Fprintf(a.stdout, "FAILED:   %s — %s\n", s.Undo, s.Note)
		}
	}
	if remaining > 0 {
		fmt.Fprintf(a.stdout, "%d change(s) could not be undone and stay in %s; fix the cause and run `sculpt revert` again\n", remaining, path)
	} else {
		fmt.Fprintf(a.stdout, "reverted %d change(s); journal %s is empty\n", len(steps), path)
	}
}

// RecoverJournal handles a journal left by a sculpt that stopped without
// reverting (a crash, kill -9, power loss): with keep it adopts the entries
// (they stay, and a later revert undoes them); without, it undoes them now.
// `sculpt run` calls it at start-up with its --keep flag. An empty journal
// is left alone.
func RecoverJournal(ctx context.Context, be *linux.Backend, j *journal.Journal, keep bool) ([]linux.RevertStep, error) {
	if j.Len() == 0 || keep {
		return nil, nil
	}
	return be.Revert(ctx, j)
}
