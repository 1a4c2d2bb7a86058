package main

import (
	"context"
	"strings"
	"testing"

	tea "github.com/charmbracelet/bubbletea"

	"sculpt/internal/api"
	"sculpt/internal/dna"
)

// TestTopKeys drives sculpt top's model with keys, without a terminal or a
// server: s cycles the sort, / filters (enter keeps, esc clears), the
// cursor stays on the rows shown, q quits.
func TestTopKeys(t *testing.T) {
	m := newTopModel(context.Background(), api.NewClient("127.0.0.1:1", nil), 0)
	m.Update(topData{workloads: []dna.DNA{
		{ID: "tree:1@1", Name: "web", Genes: dna.Genes{"cpu_util": 0.5, "rss_bytes": 9e9}, Archetype: "latency-critical"},
		{ID: "tree:2@1", Name: "batch", Genes: dna.Genes{"cpu_util": 1.9, "rss_bytes": 1e6}, Archetype: "cpu-bound"},
		{ID: "tree:3@1", Name: "idle", Genes: dna.Genes{"rss_bytes": 5e6}, Archetype: "idle", Novel: true},
	}})
	names := func() string {
		var s []string
		for _, d := range m.rows() {
			s = append(s, d.Name)
		}
		return strings.Join(s, " ")
	}
	press := func(keys ...string) {
		for _, k := range keys {
			var msg tea.KeyMsg
			switch k {
			case "enter":
				msg = tea.KeyMsg{Type: tea.KeyEnter}
			case "esc":
				msg = tea.KeyMsg{Type: tea.KeyEsc}
			case "down":
				msg = tea.KeyMsg{Type: tea.KeyDown}
			default:
				msg = tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune(k)}
			}
			m.Update(msg)
		}
	}
	if got := names(); got != "batch web idle" {
		t.Errorf("by cpu_util: %s, want batch web idle (absent last)", got)
	}
	press("s")
	if got := names(); got != "web idle batch" {
		t.Errorf("by rss_bytes: %s", got)
	}
	press("s", "s")
	if got := names(); got != "batch idle web" {
		t.Errorf("by name: %s", got)
	}
	press("down", "down", "down", "/", "c", "p", "u")
	if got := names(); got != "batch" || m.cursor != 0 {
		t.Errorf("filter cpu: %s, cursor %d; want batch alone under the cursor", got, m.cursor)
	}
	if v := m.View(); !strings.Contains(v, "filter: cpu_") || !strings.Contains(v, "batch") || strings.Contains(v, "web ") {
		t.Errorf("the view while filtering:\n%s", v)
	}
	press("enter")
	press("/", "esc")
	if got := names(); got != "batch idle web" {
		t.Errorf("esc clears the filter: %s", got)
	}
	_, cmd := m.Update(tea.KeyMsg{Type: tea.KeyRunes, Runes: []rune("q")})
	if cmd == nil {
		t.Fatal("q returned no command")
	}
	if _, ok := cmd().(tea.QuitMsg); !ok {
		t.Error("q does not quit")
	}
}
