package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"sculpt/internal/host"
)

// fakeSculpt prints, every 200 ms, what the real one prints each interval
// with --json: in observe mode a DNA line with the --pid's req_p99_s of
// 2 ms, in apply mode a step whose agent (if --config is given) has settled
// after 3 intervals with its objective at 1 ms. It records its arguments.
const fakeSculpt = `#!/bin/sh
echo "$@" >> "$(dirname "$0")/args"
mode=; pid=; cfg=
while [ $# -gt 0 ]; do
	case "$1" in
	--mode) mode=$2; shift;;
	--pid) [ -z "$pid" ] && pid=$2; shift;;
	--config) cfg=$2; shift;;
	esac
	shift
done
trap 'exit 0' TERM
i=0
while :; do
	i=$((i+1))
	if [ "$mode" = observe ]; then
		echo '{"time":"2026-12-03T09:00:00Z","workloads":[{"pids":['$pid'],"genes":{"req_p99_s":0.002}}]}'
	elif [ -n "$cfg" ]; then
		echo '{"tick":'$i',"plan":{"decisions":null},"agent":{"settled":true,"converged_after":3,"objectives":[{"value":0.001,"known":true}]}}'
	else
		echo '{"tick":'$i',"plan":{"decisions":null}}'
	fi
	sleep 0.2
done
`

// TestColocationSLOPlumbing runs the SLO benchmark end to end once with a
// fake sculpt: every case yields a per-interval series from the client and
// from the observer or the agent, the antagonists' CPU is counted, the agent
// runs only on the benchmark's processes, and nothing is left behind. The
// figures themselves are measured, not asserted.
func TestColocationSLOPlumbing(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "sculpt")
	if err := os.WriteFile(fake, []byte(fakeSculpt), 0o755); err != nil {
		t.Fatal(err)
	}
	var groups groupTracker
	opts := SLOOptions{
		ColocationOptions: ColocationOptions{
			Sculpt: fake, Services: []string{"memcached"}, Antagonists: []string{"cpu"}, Runs: 1,
			Duration: 3 * time.Second, Warmup: time.Second, Settle: time.Second, Rate: 1000,
			TempDir: dir, started: groups.started,
		},
		Factors: []float64{1.5}, Quotas: []float64{0.5},
	}
	needColocation(t, ColocationOptions{Services: []string{"memcached"}, Cases: []string{CaseAlone, CaseDefault}})
	var progress bytes.Buffer
	res, err := ColocationSLO(context.Background(), opts, &progress)
	groups.checkGone(t)
	if err != nil {
		t.Fatalf("%v\nprogress:\n%s", err, progress.String())
	}
	s := res.Services[0]
	var names []string
	for _, m := range s.Measurements {
		names = append(names, m.Case)
		if m.Err != "" {
			t.Errorf("%s: %s", m.Case, m.Err)
			continue
		}
		if len(m.ClientP99Micros) != 3 || slices.Contains(m.ClientP99Micros, 0) {
			t.Errorf("%s: client series %v, want 3 measured intervals", m.Case, m.ClientP99Micros)
		}
		want := 2000.0 // the observer's
		if m.Case == SLOCaseAgentCold {
			want = 1000 // the agent's objective value
		}
		if len(m.ServerP99Micros) < 5 || MedianKnown(m.ServerP99Micros) != want {
			t.Errorf("%s: server series %v, want the fake's %v µs every 200 ms", m.Case, m.ServerP99Micros, want)
		}
		if (m.Case == SLOCaseAlone) != (m.AntagonistCPU == 0) {
			t.Errorf("%s: antagonists' CPU %v cores", m.Case, m.AntagonistCPU)
		}
		if m.Case == SLOCaseAgentCold && (m.AgentConvergedAfter != 3 || m.SettledAt != 0) {
			t.Errorf("agent: converged after %d, settled at %d; want 3, 0 (before the window)", m.AgentConvergedAfter, m.SettledAt)
		}
	}
	if names[0] != SLOCaseAlone || names[1] != CaseDefault || !slices.Contains(names, SLOCaseRules) || names[len(names)-1] != SLOCaseAgentCold {
		t.Errorf("cases %v: want alone, default, the grid, rules, agent-cold", names)
	}
	args, err := os.ReadFile(filepath.Join(dir, "args"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(string(args)), "\n") {
		if strings.Contains(l, "--mode apply") && strings.Count(l, "--pid ") != 2 {
			t.Errorf("agent started with %q: want --pid for the service and the one antagonist", l)
		}
	}
	for _, h := range []string{"cpu", "cpuacct"} {
		ents, _ := os.ReadDir(host.DefaultRoots().CgroupPath(h, ""))
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "sculpt-bench-") && strings.Contains(e.Name(), "-"+strconv.Itoa(os.Getpid())+"-") {
				t.Errorf("cgroup %s/%s left behind", h, e.Name())
			}
		}
	}
	if len(s.Factors) != 1 || len(s.Signal.Arrangements) < 3 {
		t.Errorf("judgement: %d factors, signal over %v", len(s.Factors), s.Signal.Arrangements)
	}
}
