package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"sculpt/internal/engine"
	"sculpt/internal/hal/linux"
)

func init() { register(newRulesCmd) }

func newRulesCmd(a *app) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Check rule files, print the default rules",
	}
	var asJSON bool
	check := &cobra.Command{
		Use:   "check FILE",
		Short: "Check a rule file: every error and warning with its rule and line",
		Long: `check parses a rule file (docs/rules.md) and reports every problem with the
rule's name and line: unknown fields, bad values, CEL syntax and type errors (with
CEL's message), and genes that do not exist (a warning: such a gene is always
absent). It warns too where a rule asks for a change this machine cannot make (a
block I/O cap without blkio throttling, interrupts without writable affinity, ...),
with the reason, as 'sculpt topology' gives it. It exits 2 when there is an error,
0 otherwise.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			path := args[0]
			data, err := os.ReadFile(path)
			if err != nil {
				return usagef("%v", err)
			}
			rs, diags := engine.ParseRules(path, data)
			if rs != nil {
				// What the rules ask of this machine that it cannot do.
				if be, err := linux.New(a.roots, linux.Options{}); err == nil {
					diags = append(diags, engine.CapabilityWarnings(rs, be.Capabilities())...)
				}
			}
			if asJSON {
				out := map[string]any{"file": path, "ok": rs != nil, "diagnostics": diags}
				if diags == nil {
					out["diagnostics"] = []engine.Diagnostic{}
				}
				if rs != nil {
					out["rules"] = len(rs.Rules)
				}
				if err := writeJSON(a, out); err != nil {
					return err
				}
			} else {
				for _, l := range checkLines(path, diags) {
					fmt.Fprintln(a.stdout, l)
				}
			}
			if rs == nil {
				n := 0
				for _, d := range diags {
					if d.Severity == "error" {
						n++
					}
				}
				return usagef("%s", errorCount(path, n))
			}
			if !asJSON {
				fmt.Fprintf(a.stdout, "%s: %d rules OK\n", path, len(rs.Rules))
			}
			return nil
		},
	}
	check.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	show := &cobra.Command{
		Use:   "default",
		Short: "Print the embedded default rule set",
		Args:  cobra.NoArgs,
		RunE: func(_ *cobra.Command, _ []string) error {
			_, err := a.stdout.Write(engine.DefaultRulesYAML())
			return err
		},
	}
	cmd.AddCommand(check, show)
	return cmd
}
