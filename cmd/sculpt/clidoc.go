package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// writeCLIDoc renders every command, its description and flags as
// markdown: docs/cli.md is this output (a test keeps it in step).
// writeCLIDoc writes docs/cli.md; example returns the output of a real run
// of a command, kept in docs/examples/<command-path>.txt ("" for none).
func writeCLIDoc(w io.Writer, root *cobra.Command, example func(path string) string) {
	fmt.Fprintf(w, "# sculpt command line\n\nGenerated from the commands themselves (`go test ./cmd/sculpt -run TestCLIDocUpToDate -update`).\n")
	fmt.Fprintf(w, "Exit codes: 0 success, 1 failure, 2 bad input (nothing was changed).\n\n")
	fmt.Fprintf(w, "Flags of every command:\n\n")
	writeFlags(w, root.PersistentFlags())
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if sub.Hidden || sub.Name() == "help" || sub.Name() == "completion" {
				continue
			}
			fmt.Fprintf(w, "\n## %s\n\n", sub.CommandPath())
			fmt.Fprintf(w, "```\n%s\n```\n\n", sub.UseLine())
			desc := sub.Long
			if desc == "" {
				desc = sub.Short
			}
			fmt.Fprintf(w, "%s\n", strings.TrimSpace(desc))
			if sub.Example != "" {
				fmt.Fprintf(w, "\nExamples:\n\n```\n%s\n```\n", strings.TrimRight(sub.Example, "\n"))
			}
			if out := example(strings.ReplaceAll(sub.CommandPath(), " ", "-")); out != "" {
				fmt.Fprintf(w, "\nOutput of a real run (docs/examples):\n\n```\n%s\n```\n", strings.TrimRight(out, "\n"))
			}
			// The command's own flags, and those it passes to its subcommands.
			own := pflag.NewFlagSet(sub.Name(), pflag.ContinueOnError)
			own.AddFlagSet(sub.LocalNonPersistentFlags())
			own.AddFlagSet(sub.PersistentFlags())
			if own.HasAvailableFlags() {
				fmt.Fprintf(w, "\n")
				writeFlags(w, own)
			}
			walk(sub)
		}
	}
	walk(root)
}

func writeFlags(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "| flag | default | meaning |\n| --- | --- | --- |\n")
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Hidden {
			return
		}
		def := f.DefValue
		if def == "" || def == "[]" {
			def = " "
		} else {
			def = "`" + def + "`"
		}
		fmt.Fprintf(w, "| `--%s` | %s | %s |\n", f.Name, def, strings.ReplaceAll(f.Usage, "|", `\|`))
	})
}
