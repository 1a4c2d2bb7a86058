package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/spf13/cobra"

	"sculpt/internal/api"
	"sculpt/internal/dna"
)

func init() { register(newTopCmd) }

func newTopCmd(a *app) *cobra.Command {
	var cf clientFlags
	var refresh time.Duration
	cmd := &cobra.Command{
		Use:   "top",
		Short: "A live terminal view of a running sculpt: workloads, genes, archetypes, decisions",
		Long: `Watch a running sculpt (sculpt run --mode advise|apply with --listen) in the
terminal: its workloads with their kind, archetype, key genes, arrangement and
last decision, refreshed every --refresh.

Keys: up/down (or k/j) move, s cycles the sort (cpu_util, rss, run-queue
delay, name, archetype), / filters by name, ID, kind or archetype (enter keeps
the filter, esc clears it), enter opens the selected workload's "why" (as
sculpt why prints it; esc goes back), q quits.`,
		Example: `  sculpt top
  sculpt top --server 127.0.0.1:9477 --refresh 1s`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m := newTopModel(cmd.Context(), cf.client(), refresh)
			p := tea.NewProgram(m, tea.WithAltScreen(), tea.WithContext(cmd.Context()), tea.WithOutput(a.stdout))
			_, err := p.Run()
			return err
		},
	}
	cf.add(cmd.Flags())
	cmd.Flags().DurationVar(&refresh, "refresh", 2*time.Second, "how often to ask the server")
	return cmd
}

// topSorts are the orders s cycles through.
var topSorts = []string{"cpu_util", "rss_bytes", "runq_delay_frac", "name", "archetype"}

// topModel is sculpt top's state (bubbletea's Model).
type topModel struct {
	ctx     context.Context
	c       *api.Client
	refresh time.Duration

	status    api.StatusBody
	workloads []dna.DNA
	plan      api.PlanBody
	err       error

	sort      int
	filter    string
	filtering bool
	cursor    int // index in the visible rows
	why       string
	whyOf     string // the workload whose why is open; "" in the table
	width     int
	height    int
}

func newTopModel(ctx context.Context, c *api.Client, refresh time.Duration) *topModel {
	return &topModel{ctx: ctx, c: c, refresh: max(refresh, 100*time.Millisecond), width: 120, height: 30}
}

type topData struct {
	status    api.StatusBody
	workloads []dna.DNA
	plan      api.PlanBody
	err       error
}

type topTick struct{}

type topWhy struct {
	id   string
	text string
	err  error
}

func (m *topModel) fetch() tea.Msg {
	var d topData
	var ws api.WorkloadsBody
	for _, g := range []struct {
		path string
		v    any
	}{{"/v1/status", &d.status}, {"/v1/workloads", &ws}, {"/v1/plan", &d.plan}} {
		if err := m.c.Get(m.ctx, g.path, g.v); err != nil {
			d.err = err
			return d
		}
	}
	d.workloads = ws.Workloads
	return d
}

func (m *topModel) fetchWhy(id string) tea.Cmd {
	return func() tea.Msg {
		var wb api.WorkloadBody
		if err := m.c.Get(m.ctx, api.WorkloadPath(id), &wb); err != nil {
			return topWhy{id: id, err: err}
		}
		recs, err := auditOf(m.ctx, m.c, wb.DNA.ID, 20)
		if err != nil {
			return topWhy{id: id, err: err}
		}
		var b bytes.Buffer
		printWhy(&b, wb, recs)
		return topWhy{id: id, text: b.String()}
	}
}

func (m *topModel) Init() tea.Cmd { return m.fetch }

// rows are the workloads shown: filtered, then sorted.
func (m *topModel) rows() []dna.DNA {
	f := strings.ToLower(m.filter)
	var out []dna.DNA
	for _, d := range m.workloads {
		if f == "" || strings.Contains(strings.ToLower(d.Name+"\x00"+d.ID+"\x00"+d.WorkloadKind+"\x00"+d.Archetype), f) {
			out = append(out, d)
		}
	}
	key := topSorts[m.sort]
	slices.SortStableFunc(out, func(a, b dna.DNA) int {
		var c int
		switch key {
		case "name":
			c = cmp.Compare(a.Name, b.Name)
		case "archetype":
			c = cmp.Compare(a.Archetype, b.Archetype)
		default: // a gene, largest first; absent last
			va, oka := a.Genes[key]
			vb, okb := b.Genes[key]
			switch {
			case oka != okb:
				c = map[bool]int{true: -1, false: 1}[oka]
			default:
				c = cmp.Compare(vb, va)
			}
		}
		return cmp.Or(c, cmp.Compare(a.ID, b.ID))
	})
	return out
}

func (m *topModel) Update(msg tea.Msg) (tea.Model, tea.Cmd) {
	switch msg := msg.(type) {
	case tea.WindowSizeMsg:
		m.width, m.height = msg.Width, msg.Height
	case topData:
		m.err = msg.err
		if msg.err == nil {
			m.status, m.workloads, m.plan = msg.status, msg.workloads, msg.plan
		}
		return m, tea.Tick(m.refresh, func(time.Time) tea.Msg { return topTick{} })
	case topTick:
		if m.whyOf != "" {
			return m, tea.Batch(m.fetch, m.fetchWhy(m.whyOf))
		}
		return m, m.fetch
	case topWhy:
		if msg.id == m.whyOf {
			m.why = msg.text
			if msg.err != nil {
				m.why = "error: " + msg.err.Error()
			}
		}
	case tea.KeyMsg:
		return m.key(msg)
	}
	return m, nil
}

func (m *topModel) key(k tea.KeyMsg) (tea.Model, tea.Cmd) {
	if m.filtering {
		switch k.Type {
		case tea.KeyEnter:
			m.filtering = false
		case tea.KeyEsc:
			m.filtering, m.filter = false, ""
		case tea.KeyBackspace:
			if r := []rune(m.filter); len(r) > 0 {
				m.filter = string(r[:len(r)-1])
			}
		case tea.KeyRunes, tea.KeySpace:
			m.filter += string(k.Runes)
		case tea.KeyCtrlC:
			return m, tea.Quit
		}
		m.cursor = 0
		return m, nil
	}
	switch k.String() {
	case "q", "ctrl+c":
		return m, tea.Quit
	}
	if m.whyOf != "" {
		if k.Type == tea.KeyEsc || k.Type == tea.KeyBackspace || k.Type == tea.KeyLeft {
			m.whyOf, m.why = "", ""
		}
		return m, nil
	}
	rows := m.rows()
	switch k.String() {
	case "up", "k":
		m.cursor = max(0, m.cursor-1)
	case "down", "j":
		m.cursor = min(max(0, len(rows)-1), m.cursor+1)
	case "s":
		m.sort = (m.sort + 1) % len(topSorts)
	case "/":
		m.filtering = true
	case "esc":
		m.filter = ""
	case "enter":
		if m.cursor < len(rows) {
			m.whyOf, m.why = rows[m.cursor].ID, "asking sculpt why…"
			return m, m.fetchWhy(m.whyOf)
		}
	}
	return m, nil
}

var (
	topTitle    = lipgloss.NewStyle().Bold(true)
	topHeader   = lipgloss.NewStyle().Bold(true).Underline(true)
	topSelected = lipgloss.NewStyle().Reverse(true)
	topNovel    = lipgloss.NewStyle().Foreground(lipgloss.Color("1")).Bold(true)
	topMuted    = lipgloss.NewStyle().Faint(true)
)

func (m *topModel) View() string {
	var b strings.Builder
	st := m.status
	paused := ""
	if st.Paused {
		paused = " (paused)"
	}
	b.WriteString(topTitle.Render(fmt.Sprintf("sculpt %s  mode %s%s  interval %d  %d workloads, %d arranged  rules %s (%d)",
		st.Version, st.Mode, paused, st.Tick, st.Workloads, len(st.Arranged), st.Rules.Source, st.Rules.Count)))
	b.WriteString("\n")
	if m.err != nil {
		b.WriteString(topNovel.Render("error: "+m.err.Error()) + "\n")
	}
	if m.whyOf != "" {
		b.WriteString(topMuted.Render("why "+m.whyOf+"  (esc: back, q: quit)") + "\n\n")
		lines := strings.Split(m.why, "\n")
		for i, l := range lines {
			if i >= m.height-4 {
				break
			}
			b.WriteString(truncate(l, m.width) + "\n")
		}
		return b.String()
	}
	filter := "/ filter"
	if m.filtering || m.filter != "" {
		filter = "filter: " + m.filter
		if m.filtering {
			filter += "_"
		}
	}
	b.WriteString(topMuted.Render(fmt.Sprintf("sort %s (s)  %s  enter: why  q: quit", topSorts[m.sort], filter)) + "\n")
	const row = "%-18s %-24s %-7s %-22s %8s %10s %8s %-14s %s"
	b.WriteString(topHeader.Render(truncate(fmt.Sprintf(row, "NAME", "ID", "KIND", "ARCHETYPE", "CPU", "RSS", "RUNQ", "ARRANGEMENT", "LAST DECISION"), m.width)) + "\n")
	decided := map[string]string{}
	for _, d := range m.plan.Plan.Decisions {
		decided[d.Workload] = d.Rule
	}
	arranged := map[string]bool{}
	for _, id := range m.plan.Arranged {
		arranged[id] = true
	}
	rows := m.rows()
	m.cursor = min(m.cursor, max(0, len(rows)-1))
	first := max(0, m.cursor-(m.height-6)+1)
	for i := first; i < len(rows) && i-first < m.height-5; i++ {
		d := rows[i]
		arch := d.Archetype
		if d.Novel {
			arch += " NOVEL"
		}
		if d.PhaseChange {
			arch += " PHASE"
		}
		arr := "-"
		if cpus, ok := m.plan.Plan.Dedicated[d.ID]; ok {
			arr = "cpus " + joinInts(cpus)
		} else if arranged[d.ID] {
			arr = "arranged"
		}
		line := truncate(fmt.Sprintf(row, clip(d.Name, 18), clip(d.ID, 24), d.WorkloadKind, clip(arch, 22),
			topGene(d, "cpu_util"), topGene(d, "rss_bytes"), topGene(d, "runq_delay_frac"), clip(arr, 14), cmp.Or(decided[d.ID], "-")), m.width)
		switch {
		case i == m.cursor:
			line = topSelected.Render(line)
		case d.Novel:
			line = topNovel.Render(line)
		}
		b.WriteString(line + "\n")
	}
	if len(rows) == 0 {
		b.WriteString(topMuted.Render("no workloads match") + "\n")
	}
	return b.String()
}

func topGene(d dna.DNA, name string) string {
	v, ok := d.Genes[name]
	if !ok {
		return "-"
	}
	return humanValue(name, v)
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// clip shortens s to n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func truncate(s string, width int) string {
	if width <= 0 {
		return s
	}
	return clip(s, width)
}
