package main

import "testing"

func TestParseCrashAt(t *testing.T) {
	for _, c := range []struct {
		in    string
		stage string
		n     int64
		ok    bool
	}{
		{"recorded:3", "recorded", 3, true},
		{"changed:1", "changed", 1, true},
		{"recorded", "recorded", 1, true},
		{"applied:1", "", 0, false},
		{"recorded:0", "", 0, false},
		{"recorded:x", "", 0, false},
	} {
		stage, n, err := parseCrashAt(c.in)
		if (err == nil) != c.ok || stage != c.stage || n != c.n {
			t.Errorf("parseCrashAt(%q) = %q, %d, %v; want %q, %d, ok %v", c.in, stage, n, err, c.stage, c.n, c.ok)
		}
	}
}
