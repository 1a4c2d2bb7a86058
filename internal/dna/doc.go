package dna

import (
	"fmt"
	"sort"
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

// KindsMarkdown renders Kinds, with the zoo labels of each (ZooKinds), as
// the table in docs/genes.md.
func KindsMarkdown() string {
	var b strings.Builder
	b.WriteString("| kind | behaviour | zoo programs of this kind |\n| --- | --- | --- |\n")
	for _, k := range Kinds {
		var labels []string
		for l, lk := range ZooKinds {
			if lk == k.Name {
				labels = append(labels, "`"+l+"`")
			}
		}
		sort.Strings(labels)
		zoo := strings.Join(labels, ", ")
		if zoo == "" {
			zoo = "—"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s |\n", k.Name, k.What, zoo)
	}
	return b.String()
}
