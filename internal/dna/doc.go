package dna

import (
	"fmt"
	"strings"
)

// GenesMarkdown renders Catalog as the table in docs/genes.md.
func GenesMarkdown() string {
	var b strings.Builder
	b.WriteString("| gene | unit | source | formula | absent when |\n| --- | --- | --- | --- | --- |\n")
	esc := func(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
	for _, g := range Catalog {
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", g.Name, esc(g.Unit), esc(g.Source), esc(g.Formula), esc(g.Absent))
	}
	return b.String()
}
