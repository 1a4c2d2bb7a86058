package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"sculpt/internal/api"
	"sculpt/internal/testload"
)

// background runs a sculpt command line in this process until ctx is done
// (as a signal would stop it); wait returns its exit code and output.
func background(t *testing.T, ctx context.Context, args ...string) (wait func() (int, string, string)) {
	t.Helper()
	var (
		out, errb bytes.Buffer
		code      int
		wg        sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		a := &app{stdout: &out, stderr: &errb}
		if err := a.setLogFormat("text"); err != nil {
			code = 1
			return
		}
		root := newRootCmd(a)
		root.SetArgs(args)
		if err := root.ExecuteContext(ctx); err != nil {
			fmt.Fprintf(&errb, "sculpt: %v\n", err)
			code = 1
		}
	}()
	return func() (int, string, string) {
		wg.Wait()
		return code, out.String(), errb.String()
	}
}

// waitServing polls the API until it answers /v1/status with an interval
// done.
func waitServing(t *testing.T, c *api.Client, wait func() (int, string, string), done <-chan struct{}) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		var st api.StatusBody
		err := c.Get(context.Background(), "/v1/status", &st)
		if err == nil {
			return
		}
		select {
		case <-done:
			code, _, errs := wait()
			t.Fatalf("sculpt run ended (exit %d) before serving: %s", code, errs)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the API did not answer within a minute: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeAPIThroughTheLoop runs sculpt run in apply mode on a real
// process with a TCP listener and drives it through its API: the clients
// (status, plan, why), each refused write (no token, bad token, bad mode,
// bad rules, unknown workload) and each accepted one (mode, pause,
// reload, revert), reading back the state each write changed.
func TestServeAPIThroughTheLoop(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read other processes' telemetry and to apply")
	}
	p := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"})
	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yaml")
	good := "version: 1\nrules:\n  - name: calm-down\n    when: \"true\"\n    then: {cores: any, sched: batch}\n"
	if err := os.WriteFile(rules, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	addr, tokenFile := freeAddr(t), filepath.Join(dir, "token")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := background(t, ctx, "run", "--mode", "apply", "--interval", "500ms", "--rules", rules, "--pid", strconv.Itoa(p.Process.Pid),
		"--journal", filepath.Join(dir, "journal.json"), "--experience", filepath.Join(dir, "x.json"), "--listen", addr, "--token-file", tokenFile)
	done := make(chan struct{})
	go func() { _, _, _ = wait(); close(done) }()
	tok, err := api.TokenFile(tokenFile, false)
	for i := 0; err != nil && i < 100; i++ {
		time.Sleep(100 * time.Millisecond)
		tok, err = api.TokenFile(tokenFile, false)
	}
	if err != nil {
		t.Fatalf("sculpt run did not create its token file: %v", err)
	}
	reader := api.NewClient(addr, nil)
	waitServing(t, reader, wait, done)
	writer := api.NewClient(addr, tok)
	bctx := context.Background()

	// The process gets SCHED_BATCH within a few intervals.
	deadline := time.Now().Add(30 * time.Second)
	for schedPolicy(t, p.Process.Pid) != 3 {
		if time.Now().After(deadline) {
			_, _, errs := wait()
			t.Fatalf("the rule's sched batch was never applied: %s", errs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	var st api.StatusBody
	for len(st.Arranged) == 0 {
		if err := reader.Get(bctx, "/v1/status", &st); err != nil {
			t.Fatal(err)
		}
	}
	id := st.Arranged[0]
	// The clients.
	for _, args := range [][]string{{"status"}, {"plan"}, {"why", id}, {"why", id, "--json"}} {
		code, out, errs := runCLI(t, append(args, "--server", addr, "--token-file", tokenFile)...)
		if code != 0 {
			t.Errorf("sculpt %v: exit %d: %s", args, code, errs)
		}
		switch args[0] {
		case "status":
			if !strings.Contains(out, "mode apply") || !strings.Contains(out, "arranged: "+id) {
				t.Errorf("status does not show apply mode and %s arranged:\n%s", id, out)
			}
		case "why":
			if !strings.Contains(out, "calm-down") {
				t.Errorf("why %s does not name the rule behind its arrangement:\n%s", id, out)
			}
		}
	}
	if code, _, errs := runCLI(t, "why", "no-such-workload", "--server", addr); code != 2 || !strings.Contains(errs, "no-such-workload") {
		t.Errorf("why of an unknown workload: exit %d %s, want 2 naming it", code, errs)
	}

	// Refusals: nothing changes.
	refused := []struct {
		c        *api.Client
		path     string
		body     any
		code     int
		contains string
	}{
		{reader, "/v1/pause", api.PauseRequest{Paused: true}, 401, "Bearer"},
		{api.NewClient(addr, []byte("not-the-token")), "/v1/mode", api.ModeRequest{Mode: "observe"}, 401, "bad bearer token"},
		{writer, "/v1/mode", api.ModeRequest{Mode: "fast"}, 400, `mode "fast"`},
		{writer, "/v1/revert", api.RevertRequest{Workload: "no-such-workload"}, 404, "no-such-workload"},
	}
	for _, r := range refused {
		err := r.c.Post(bctx, r.path, r.body, nil)
		var ae *api.APIError
		if !errors.As(err, &ae) || ae.Code != r.code || !strings.Contains(ae.Message, r.contains) {
			t.Errorf("POST %s %+v: %v, want HTTP %d mentioning %q", r.path, r.body, err, r.code, r.contains)
		}
	}
	// Bad rules: refused with the message of `sculpt rules check`, the
	// good rules stay in force.
	if err := os.WriteFile(rules, []byte("version: 1\nrules:\n  - name: broken\n    when: nope(\n    then: {cores: any}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, checkOut, checkErr := runCLI(t, "rules", "check", rules)
	want := strings.TrimSpace(checkOut) + "\n" + strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(checkErr), "sculpt: "))
	err = writer.Post(bctx, "/v1/reload", api.ReloadRequest{Rules: true}, nil)
	var ae *api.APIError
	if !errors.As(err, &ae) || ae.Code != 422 || ae.Message != want {
		t.Errorf("reload of bad rules: %v\nwant HTTP 422 with the message of sculpt rules check:\n%s", err, want)
	}
	if err := reader.Get(bctx, "/v1/status", &st); err != nil || st.Rules.Source != rules || st.Rules.Count != 1 {
		t.Errorf("after the refused reload: rules %+v (%v), want the good file's one rule", st.Rules, err)
	}
	if schedPolicy(t, p.Process.Pid) != 3 {
		t.Error("a refused reload changed the arrangement")
	}
	// Pause, then revert the workload: the process is back to SCHED_OTHER
	// and, paused, stays so.
	if err := writer.Post(bctx, "/v1/pause", api.PauseRequest{Paused: true}, nil); err != nil {
		t.Fatal(err)
	}
	var undone api.UndoneBody
	if err := writer.Post(bctx, "/v1/revert", api.RevertRequest{Workload: id}, &undone); err != nil {
		t.Fatal(err)
	}
	if len(undone.Undone) == 0 || schedPolicy(t, p.Process.Pid) != 0 {
		t.Errorf("revert %s: undone %d actions, policy %d (want SCHED_OTHER, 0)", id, len(undone.Undone), schedPolicy(t, p.Process.Pid))
	}
	time.Sleep(1500 * time.Millisecond) // three intervals, paused
	if pol := schedPolicy(t, p.Process.Pid); pol != 0 {
		t.Errorf("paused, sculpt changed the process again (policy %d)", pol)
	}
	if err := reader.Get(bctx, "/v1/status", &st); err != nil || !st.Paused || len(st.Arranged) != 0 {
		t.Errorf("status after pause and revert: paused %t, arranged %v (%v)", st.Paused, st.Arranged, err)
	}
	// Mode observe: nothing applied after resuming.
	if err := writer.Post(bctx, "/v1/mode", api.ModeRequest{Mode: "observe"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := writer.Post(bctx, "/v1/pause", api.PauseRequest{Paused: false}, nil); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := reader.Get(bctx, "/v1/status", &st); err != nil || st.Mode != "observe" || st.Paused {
		t.Errorf("status: mode %s paused %t (%v), want observe, running", st.Mode, st.Paused, err)
	}
	if pol := schedPolicy(t, p.Process.Pid); pol != 0 {
		t.Errorf("in observe mode sculpt changed the process (policy %d)", pol)
	}
	// The audit log through the API holds the revert.
	var page api.AuditBody
	if err := reader.Get(bctx, "/v1/audit?"+url.Values{"workload": {id}, "event": {"undone"}}.Encode(), &page); err != nil || len(page.Records) == 0 {
		t.Errorf("audit of %s's undos: %d records (%v)", id, len(page.Records), err)
	}
	checkMetricsWithPromtool(t, addr)
	cancel()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("sculpt run did not stop")
	}
	if code, _, errs := wait(); code != 0 {
		t.Errorf("sculpt run: exit %d: %s", code, errs)
	}
}

// checkMetricsWithPromtool runs `promtool check metrics` (Debian's
// prometheus package) on sculpt's real /metrics.
func checkMetricsWithPromtool(t *testing.T, addr string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool check metrics skipped: promtool not installed (apt-get install prometheus; scripts/test.sh does)")
		return
	}
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sculpt_actions_total", "sculpt_reverts_total", "sculpt_workload_gene", "sculpt_tick_duration_seconds_bucket", "sculpt_build_info"} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("/metrics has no %s", name)
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestPrometheusScrapesSculpt starts a real Prometheus server (Debian's
// prometheus package) on loopback with a temporary data directory, lets it
// scrape a running sculpt and reads a series back through its query API.
func TestPrometheusScrapesSculpt(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to read other processes' telemetry")
	}
	prom, err := exec.LookPath("prometheus")
	if err != nil {
		t.Skip("prometheus not installed (apt-get install prometheus; scripts/test.sh does)")
	}
	p := testload.Start(t, "cpu", []string{"GOMAXPROCS=1"})
	dir := t.TempDir()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	wait := background(t, ctx, "run", "--mode", "advise", "--interval", "500ms", "--pid", strconv.Itoa(p.Process.Pid),
		"--journal", filepath.Join(dir, "journal.json"), "--listen", addr, "--token-file", filepath.Join(dir, "token"))
	done := make(chan struct{})
	go func() { _, _, _ = wait(); close(done) }()
	waitServing(t, api.NewClient(addr, nil), wait, done)

	promAddr := freeAddr(t)
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: sculpt\n    static_configs:\n      - targets: [%q]\n", addr), 0o644); err != nil {
		t.Fatal(err)
	}
	var promOut bytes.Buffer
	cmd := exec.Command(prom, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"), "--web.listen-address="+promAddr)
	cmd.Stdout, cmd.Stderr = &promOut, &promOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	query := "http://" + promAddr + "/api/v1/query?" + url.Values{"query": {`sculpt_workload_gene{gene="cpu_util",job="sculpt"}`}}.Encode()
	deadline := time.Now().Add(90 * time.Second)
	var last string
	for {
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus never returned sculpt's series; last answer %s\nprometheus output:\n%s", last, promOut.String())
		}
		time.Sleep(500 * time.Millisecond)
		resp, err := http.Get(query)
		if err != nil {
			last = err.Error()
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		last = string(body)
		var r struct {
			Status string `json:"status"`
			Data   struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  [2]any            `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		if json.Unmarshal(body, &r) != nil || r.Status != "success" {
			continue
		}
		for _, s := range r.Data.Result {
			if strings.Contains(s.Metric["workload"], strconv.Itoa(p.Process.Pid)) {
				v, err := strconv.ParseFloat(fmt.Sprint(s.Value[1]), 64)
				if err != nil || v <= 0 {
					t.Errorf("the CPU spinner's cpu_util through Prometheus: %v (%v), want > 0", s.Value[1], err)
				}
				cancel()
				<-done
				return
			}
		}
	}
}
