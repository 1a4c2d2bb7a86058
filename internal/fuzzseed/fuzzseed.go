// Package fuzzseed feeds the project's checked-in fixtures to fuzz targets
// as seed corpora, so every fixture of a kernel file, rule file or state
// file is also a starting point for `go test -fuzz` (docs/reliability.md).
// It is used by tests only.
package fuzzseed

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"testing"
)

// Files returns the contents of every regular file under root whose base
// name is one of names (every file when names is empty), in path order.
// A missing root fails the test: a seed corpus that silently vanished
// would leave a target fuzzing from nothing.
func Files(tb testing.TB, root string, names ...string) [][]byte {
	tb.Helper()
	var paths []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && (len(names) == 0 || slices.Contains(names, d.Name())) {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("seed corpus: %v", err)
	}
	sort.Strings(paths)
	out := make([][]byte, 0, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			tb.Fatalf("seed corpus: %v", err)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		tb.Fatalf("seed corpus: no file named %v under %s", names, root)
	}
	return out
}

var fence = regexp.MustCompile("(?s)```(?:ya?ml)\n(.*?)```")

// YAMLBlocks returns the ```yaml blocks of a Markdown file (the examples
// in docs/*.md), failing the test when there are none.
func YAMLBlocks(tb testing.TB, path string) [][]byte {
	tb.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		tb.Fatalf("seed corpus: %v", err)
	}
	var out [][]byte
	for _, m := range fence.FindAllSubmatch(b, -1) {
		out = append(out, bytes.Clone(m[1]))
	}
	if len(out) == 0 {
		tb.Fatalf("seed corpus: no yaml block in %s", path)
	}
	return out
}
