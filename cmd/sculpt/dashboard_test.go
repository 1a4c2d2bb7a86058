package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"sculpt/internal/api"
	"sculpt/internal/testload"
)

// startServing runs `sculpt run --mode advise` over the given processes,
// listening on addr (a socket path or host:port), with a rule that wants
// something of every workload; it waits for its API and returns a client.
func startServing(t *testing.T, addr string, pids ...int) *api.Client {
	t.Helper()
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	if err := os.WriteFile(rules, []byte("version: 1\nrules:\n  - name: calm-down\n    when: \"true\"\n    then: {cores: any, sched: batch}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"run", "--mode", "advise", "--interval", "500ms", "--rules", rules, "--listen", addr,
		"--token-file", filepath.Join(dir, "token"), "--journal", filepath.Join(dir, "journal.json"), "--experience", filepath.Join(dir, "x.json")}
	for _, p := range pids {
		args = append(args, "--pid", strconv.Itoa(p))
	}
	ctx, cancel := context.WithCancel(context.Background())
	wait := background(t, ctx, args...)
	done := make(chan struct{})
	go func() { _, _, _ = wait(); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	c := api.NewClient(addr, nil)
	waitServing(t, c, wait, done)
	return c
}

// workloadOf waits until the running sculpt profiles the process tree of
// pid and returns its DNA as the API serves it: the ground truth the views
// are checked against.
func workloadOf(t *testing.T, c *api.Client, pid int) api.WorkloadBody {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var ws api.WorkloadsBody
		if err := c.Get(context.Background(), "/v1/workloads", &ws); err != nil {
			t.Fatal(err)
		}
		for _, d := range ws.Workloads {
			for _, p := range d.PIDs {
				if p == pid && d.Archetype != "" {
					return api.WorkloadBody{DNA: d}
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("sculpt never profiled pid %d (with an archetype): %d workloads", pid, len(ws.Workloads))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestDashboardInChromium loads the dashboard of a running sculpt over two
// real workloads in headless Chromium (Debian's chromium package) and
// checks what a person would look for: both workloads in the table under
// the names the API gives them, each on the DNA map, the genes over time of
// one after clicking it, the decisions timeline naming the rule, every
// online CPU in the topology, no error shown. With SCULPT_SCREENSHOT=FILE
// it writes a screenshot there (docs/dashboard.png).
func TestDashboardInChromium(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read other processes' telemetry")
	}
	browser := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			browser = p
			break
		}
	}
	if browser == "" {
		t.Skip("no Chromium: apt-get install chromium (scripts/test.sh does)")
	}
	cpu := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"})
	mem := testload.Start(t, "mem", nil)
	addr := freeAddr(t)
	c := startServing(t, addr, cpu.Process.Pid, mem.Process.Pid)
	spinner := workloadOf(t, c, cpu.Process.Pid).DNA
	streamer := workloadOf(t, c, mem.Process.Pid).DNA
	var topo api.TopologyBody
	if err := c.Get(context.Background(), "/v1/topology", &topo); err != nil {
		t.Fatal(err)
	}
	online := 0
	for _, n := range topo.Topology.Nodes {
		online += len(n.CPUs)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(browser), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1600), chromedp.Flag("disable-dev-shm-usage", true))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx)
	defer bcancel()
	ctx, cancel := context.WithTimeout(bctx, 2*time.Minute)
	defer cancel()

	// The page redraws on every poll, so each check is one predicate the
	// browser evaluates at once, polled until it holds.
	row := func(id string) string { return `#workloads tbody tr[data-id=` + jsString(id) + `]` }
	waitFor := func(what, predicate string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
			msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("error").textContent`))
			t.Fatalf("the dashboard never showed %s: %v (its error line: %q)", what, err, msg)
		}
	}
	if err := chromedp.Do(ctx, chromedp.Navigate("http://"+addr+"/")); err != nil {
		t.Fatal(err)
	}
	for _, d := range []api.WorkloadBody{{DNA: spinner}, {DNA: streamer}} {
		waitFor(d.DNA.ID+" named "+d.DNA.Name+" in the table",
			`document.querySelector(`+jsString(row(d.DNA.ID)+" td:first-child")+`)?.textContent === `+jsString(d.DNA.Name))
		// On the map once its encoder window is full.
		waitFor(d.DNA.ID+" on the DNA map", `document.querySelector(`+jsString(`#map circle[data-id=`+jsString(d.DNA.ID)+`]`)+`) !== null`)
	}
	// Clicking the spinner draws its genes over time; the timeline names
	// the rule that wants something of it.
	// (A click in the page itself: a row found by one call and clicked by
	// the next may have been redrawn in between.)
	waitFor("a row of "+spinner.ID+" to click", `(() => { const r = document.querySelector(`+jsString(row(spinner.ID))+`); r?.click(); return r !== null })()`)
	waitFor("the genes of "+spinner.ID, `document.getElementById("genes-for").textContent.includes(`+jsString(spinner.ID)+`) && `+
		`document.querySelector('#genes .spark[data-gene="cpu_util"] polyline') !== null`)
	waitFor("the rule calm-down in the timeline",
		`[...document.querySelectorAll("#timeline tbody td:nth-child(5)")].some(td => td.textContent === "calm-down")`)
	if cpus, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#topology .cpu").length`)); err != nil || cpus != online {
		t.Errorf("topology shows %d CPUs (%v), the machine's nodes hold %d", cpus, err, online)
	}
	if hidden, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById("error").hidden`)); err != nil || !hidden {
		msg, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.getElementById("error").textContent`))
		t.Errorf("the dashboard shows an error: %s (%v)", msg, err)
	}
	if out := os.Getenv("SCULPT_SCREENSHOT"); out != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(out, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot in %s (%d bytes)", out, len(png))
	}
}

// jsString quotes s for a CSS attribute selector (JSON string quoting is a
// subset CSS accepts).
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
