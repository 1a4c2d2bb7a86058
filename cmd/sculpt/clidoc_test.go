package main

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var updateDocs = flag.Bool("update", false, "rewrite docs/cli.md")

func TestCLIDocUpToDate(t *testing.T) {
	const path = "../../docs/cli.md"
	var buf bytes.Buffer
	root := newRootCmd(&app{stdout: &buf, stderr: &buf})
	var doc bytes.Buffer
	writeCLIDoc(&doc, root, func(path string) string {
		b, err := os.ReadFile("../../docs/examples/" + path + ".txt")
		if err != nil {
			return ""
		}
		return string(b)
	})
	old, err := os.ReadFile(path)
	if err == nil && bytes.Equal(old, doc.Bytes()) {
		return
	}
	if *updateDocs {
		if err := os.WriteFile(path, doc.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s is out of date with the commands: run go test ./cmd/sculpt -run TestCLIDocUpToDate -update", path)
}
