package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"sculpt/internal/dna"
	"sculpt/internal/engine"
	"sculpt/internal/hal"
	"sculpt/internal/hal/journal"
	"sculpt/internal/hal/topology"
	"sculpt/internal/telemetry"
)

const testToken = "s3cret-token"

// fakeControl records the writes the loop was asked to carry out.
type fakeControl struct {
	mu       sync.Mutex
	calls    []string
	arranged map[string][]engine.AppliedAction
	mode     engine.Mode
	paused   bool
	rulesErr error
}

func (c *fakeControl) record(s string) {
	c.mu.Lock()
	c.calls = append(c.calls, s)
	c.mu.Unlock()
}

func (c *fakeControl) Calls() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.calls...)
}

func (c *fakeControl) SetMode(_ context.Context, m engine.Mode) ([]engine.AppliedAction, error) {
	c.record("mode " + string(m))
	if m == engine.ModeApply {
		return nil, Status(http.StatusConflict, errors.New("mode apply needs the journal"))
	}
	var undone []engine.AppliedAction
	if c.mode == engine.ModeApply {
		for _, u := range c.arranged {
			undone = append(undone, u...)
		}
		c.arranged = nil
	}
	c.mode = m
	return undone, nil
}

func (c *fakeControl) Revert(_ context.Context, w string) ([]engine.AppliedAction, error) {
	c.record("revert " + w)
	u, ok := c.arranged[w]
	if !ok {
		return nil, fmt.Errorf("revert %q: %w", w, engine.ErrUnknownWorkload)
	}
	delete(c.arranged, w)
	return u, nil
}

func (c *fakeControl) Reload(_ context.Context, rules, config bool) (ReloadResult, error) {
	c.record(fmt.Sprintf("reload rules=%t config=%t", rules, config))
	if config {
		return ReloadResult{}, Status(http.StatusConflict, errors.New("sculpt runs the default config: start it with --config FILE to reload it"))
	}
	if c.rulesErr != nil {
		return ReloadResult{}, Status(http.StatusUnprocessableEntity, c.rulesErr)
	}
	return ReloadResult{Rules: "rules from r.yaml in force (1 rules)"}, nil
}

func (c *fakeControl) Pause(p bool) error {
	c.record(fmt.Sprintf("pause %t", p))
	c.paused = p
	return nil
}

// loop runs the server's write requests through c until the test ends, as
// sculpt run's loop does between intervals.
func loop(t *testing.T, s *Server, c Control) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case r := <-s.Requests():
				r.Run(ctx, c)
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// fixture is an interval with one of everything: two workloads (one
// arranged), a plan with a pinning decision, an applied, a refused, a
// rolled back action, rewards, the agent with a met and a violated
// objective, a journal entry and a failed collector.
func fixture() *Snapshot {
	nice := 5
	pin := hal.PinThreads{PID: 4242, CPUs: []int{1}}
	unpin := hal.PinThreads{PID: 4242, CPUs: []int{0, 1}}
	sched := hal.SetSched{PID: 4343, Policy: "batch", Nice: &nice}
	now := time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)
	return &Snapshot{
		Time: now, Tick: 7, Mode: engine.ModeAdvise, Interval: time.Second, RulesSource: "default", RuleCount: 7,
		Workloads: []dna.DNA{
			{ID: "cg:/svc/web", Name: "web", WorkloadKind: "cgroup", PIDs: []int{4242}, Cgroup: "/svc/web",
				Genes: dna.Genes{"cpu_util": 0.9, "req_p99_s": 0.0015}, Embedding: []float64{0.1, 0.2}, Archetype: "latency-critical", Kind: "latency-critical", Confidence: 0.8},
			{ID: "tree:4343@99", Name: "batch", WorkloadKind: "tree", PIDs: []int{4343}, Genes: dna.Genes{"cpu_util": 1.9}, Archetype: "cpu-bound", Kind: "cpu-bound", Confidence: 0.9},
		},
		Step: &engine.Step{Tick: 7,
			Plan: engine.Plan{Dedicated: map[string][]int{"cg:/svc/web": {1}}, Shared: []int{0},
				Decisions: []engine.Decision{{Workload: "cg:/svc/web", Name: "web", Rule: "latency-critical", Genes: map[string]float64{"cpu_util": 0.9},
					Want: engine.Want{Cores: "dedicated", Count: 1}, CPUs: []int{1}, Actions: []engine.PlannedAction{{Action: pin, Reason: "dedicate CPU 1"}}}}},
			Applied: []engine.AppliedAction{{Workload: "cg:/svc/web", Action: pin, Undo: unpin, Reason: "dedicate CPU 1"},
				{Workload: "tree:4343@99", Action: sched, Reason: "demote", Err: errors.New("process is gone")}},
			Refused: []engine.Refusal{{Workload: "tree:4343@99", Action: sched, Reason: "budget of 4 actions per interval spent"}},
			Undone:  []engine.AppliedAction{{Workload: "tree:4343@99", Action: unpin, Reason: "reward fell from 0.9 to 0.5", Event: "rollback"}},
			Rewards: map[string]engine.Reward{"cg:/svc/web": {Kind: "latency", Value: 0.9, Parts: map[string]float64{"runq_delay_frac": 0.1}}},
			Agent: &engine.AgentState{Agent: "sculpt", Level: 1, Levels: 4, Context: "web vs batch", Objectives: []engine.ObjectiveStatus{
				{Workload: "cg:/svc/web", Name: "web", Objective: "p99 <= 2ms", Latency: true, Value: 0.0015, Target: 0.002, Known: true, Met: true, Source: "ebpf"},
				{Workload: "cg:/svc/api", Name: "api", Objective: "p99 <= 1ms", Latency: true, Value: 0.003, Target: 0.001, Known: true, Met: false, Source: "ebpf"},
			}, BatchCPU: 1.9},
		},
		Arranged: []string{"cg:/svc/web"},
		Journal: []journal.Entry{{Seq: 1, Time: now, State: journal.Applied, Action: pin, Undo: unpin,
			Process: &journal.Process{PID: 4242, StartTime: 99, Comm: "web"}}},
		Reports:      []telemetry.CollectorReport{{Name: "procfs", Duration: 2 * time.Millisecond}, {Name: "perf", Duration: time.Millisecond, Err: errors.New("perf_event_open: not permitted")}},
		TickDuration: 30 * time.Millisecond,
	}
}

func newTestServer(t *testing.T, token []byte, ctl Control) (*Server, *httptest.Server) {
	t.Helper()
	topo := &topology.Topology{}
	s := New(Options{Token: token, Topology: topo, Version: "test", WriteTimeout: 5 * time.Second,
		Objectives: []engine.Objective{{Workload: "web", P99: 2 * time.Millisecond}}})
	if ctl != nil {
		loop(t, s, ctl)
	}
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return s, ts
}

// call makes one request and returns its status and decoded body.
func call(t *testing.T, ts *httptest.Server, method, path, token, body string) (int, any, string) {
	t.Helper()
	req, err := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &v); err != nil {
			t.Fatalf("%s %s: answer is not JSON: %v\n%s", method, path, err, raw)
		}
	}
	return resp.StatusCode, v, string(raw)
}

// TestResponsesMatchOpenAPI calls every operation, the refusals included,
// checks the status each should get, and validates every answer against
// docs/openapi.yaml; every response the document lists must be exercised.
func TestResponsesMatchOpenAPI(t *testing.T) {
	spec := loadSpec(t)
	ctl := &fakeControl{arranged: map[string][]engine.AppliedAction{}}
	srv, ts := newTestServer(t, []byte(testToken), ctl)
	seen := map[string]bool{}
	check := func(method, path, route, token, body string, want int) any {
		t.Helper()
		code, v, raw := call(t, ts, method, path, token, body)
		if code != want {
			t.Errorf("%s %s: status %d, want %d: %s", method, path, code, want, raw)
		}
		status := fmt.Sprint(code)
		schema, documented := spec.responseSchema(method, route, status)
		if !documented {
			t.Errorf("%s %s: status %d is not in docs/openapi.yaml", method, route, code)
			return v
		}
		seen[fmt.Sprintf("%s %s %s", method, route, status)] = true
		if schema != nil {
			for _, e := range spec.validate("$", schema, v) {
				t.Errorf("%s %s (%d): %s", method, path, code, e)
			}
		}
		return v
	}
	reads := []string{"/v1/status", "/v1/workloads", "/v1/plan", "/v1/journal", "/v1/objectives", "/v1/map"}
	// Before the loop's first interval.
	for _, p := range reads {
		check("GET", p, p, "", "", http.StatusServiceUnavailable)
	}
	check("GET", "/v1/workloads/web", "/v1/workloads/{id}", "", "", http.StatusServiceUnavailable)
	check("GET", "/v1/history?workload=web", "/v1/history", "", "", http.StatusServiceUnavailable)
	// An empty interval (no step yet, nothing profiled), then a full one.
	srv.Publish(&Snapshot{Time: time.Now(), Mode: engine.ModeAdvise, RulesSource: "default"})
	for _, p := range reads {
		check("GET", p, p, "", "", http.StatusOK)
	}
	_, _ = srv.Audit().Write([]byte(`{"time":"2026-12-03T09:00:00Z","tick":7,"mode":"advise","event":"decision","workload":"cg:/svc/web","rule":"latency-critical"}` + "\n"))
	srv.Publish(fixture())
	for _, p := range reads {
		check("GET", p, p, "", "", http.StatusOK)
	}
	check("GET", "/v1/topology", "/v1/topology", "", "", http.StatusOK)
	check("GET", "/v1/audit", "/v1/audit", "", "", http.StatusOK)
	check("GET", "/v1/audit?workload=cg:/svc/web&event=decision&limit=5", "/v1/audit", "", "", http.StatusOK)
	check("GET", "/v1/audit?limit=0", "/v1/audit", "", "", http.StatusBadRequest)
	check("GET", "/v1/audit?after=x", "/v1/audit", "", "", http.StatusBadRequest)
	w := check("GET", WorkloadPath("cg:/svc/web"), "/v1/workloads/{id}", "", "", http.StatusOK).(map[string]any)
	if w["arranged"] != true || w["decision"] == nil || len(w["applied"].([]any)) != 1 {
		t.Errorf("workload web: want arranged with its decision and one applied action, got %v", w)
	}
	if got := check("GET", WorkloadPath("batch"), "/v1/workloads/{id}", "", "", http.StatusOK).(map[string]any); got["dna"].(map[string]any)["id"] != "tree:4343@99" {
		t.Errorf("workload by name batch: got %v", got["dna"])
	}
	check("GET", WorkloadPath("nope"), "/v1/workloads/{id}", "", "", http.StatusNotFound)
	h := check("GET", "/v1/history?workload=web&genes=cpu_util", "/v1/history", "", "", http.StatusOK).(map[string]any)
	if fs := h["frames"].([]any); h["id"] != "cg:/svc/web" || len(fs) != 1 || len(fs[0].(map[string]any)["genes"].(map[string]any)) != 1 {
		t.Errorf("history of web, cpu_util only: want its one frame with one gene, got %v", h)
	}
	check("GET", "/v1/history", "/v1/history", "", "", http.StatusBadRequest)
	check("GET", "/v1/history?workload=web&since=yesterday", "/v1/history", "", "", http.StatusBadRequest)
	if h := check("GET", "/v1/history?workload=web&since=2026-12-03T09:00:00Z", "/v1/history", "", "", http.StatusOK).(map[string]any); len(h["frames"].([]any)) != 0 {
		t.Errorf("history of web since its one frame: %v, want no frames", h["frames"])
	}
	check("GET", "/v1/history?workload=nope", "/v1/history", "", "", http.StatusNotFound)
	twins := fixture()
	twins.Workloads[1].Name = "web"
	srv.Publish(twins)
	check("GET", WorkloadPath("web"), "/v1/workloads/{id}", "", "", http.StatusConflict)
	check("GET", "/v1/history?workload=web", "/v1/history", "", "", http.StatusConflict)
	srv.Publish(fixture())

	// Writes: refused without the token, with a bad one, with bad input.
	writes := []struct{ path, body string }{
		{"/v1/mode", `{"mode":"observe"}`}, {"/v1/revert", `{}`}, {"/v1/reload", `{"rules":true}`}, {"/v1/pause", `{"paused":true}`},
	}
	for _, wr := range writes {
		check("POST", wr.path, wr.path, "", wr.body, http.StatusUnauthorized)
		check("POST", wr.path, wr.path, "wrong-"+testToken, wr.body, http.StatusUnauthorized)
		check("POST", wr.path, wr.path, testToken[:len(testToken)-1], wr.body, http.StatusUnauthorized)
		check("POST", wr.path, wr.path, testToken, `{"bogus":1}`, http.StatusBadRequest)
	}
	if calls := ctl.Calls(); len(calls) != 0 {
		t.Fatalf("refused writes reached the loop: %v", calls)
	}
	check("POST", "/v1/mode", "/v1/mode", testToken, `{"mode":"fast"}`, http.StatusBadRequest)
	check("POST", "/v1/mode", "/v1/mode", testToken, `{"mode":"apply"}`, http.StatusConflict)
	check("POST", "/v1/reload", "/v1/reload", testToken, `{}`, http.StatusBadRequest)
	check("POST", "/v1/reload", "/v1/reload", testToken, `{"config":true}`, http.StatusConflict)
	ctl.rulesErr = errors.New("r.yaml: line 3: undeclared reference to 'cpu_utl'")
	v := check("POST", "/v1/reload", "/v1/reload", testToken, `{"rules":true}`, http.StatusUnprocessableEntity)
	if msg := v.(map[string]any)["error"]; msg != ctl.rulesErr.Error() {
		t.Errorf("bad rules: error %q, want the check's message %q", msg, ctl.rulesErr)
	}
	ctl.rulesErr = nil
	check("POST", "/v1/reload", "/v1/reload", testToken, `{"rules":true}`, http.StatusOK)
	check("POST", "/v1/revert", "/v1/revert", testToken, `{"workload":"nope"}`, http.StatusNotFound)
	ctl.mu.Lock()
	ctl.arranged["cg:/svc/web"] = []engine.AppliedAction{{Workload: "cg:/svc/web", Action: hal.PinThreads{PID: 4242, CPUs: []int{0, 1}}, Reason: "reverted through the API"}}
	ctl.mu.Unlock()
	v = check("POST", "/v1/revert", "/v1/revert", testToken, `{"workload":"cg:/svc/web"}`, http.StatusOK)
	if u := v.(map[string]any)["undone"].([]any); len(u) != 1 {
		t.Errorf("revert web: undone %v, want its one action", u)
	}
	check("POST", "/v1/mode", "/v1/mode", testToken, `{"mode":"observe"}`, http.StatusOK)
	v = check("POST", "/v1/pause", "/v1/pause", testToken, `{"paused":true}`, http.StatusOK)
	if v.(map[string]any)["paused"] != true || !ctl.paused {
		t.Errorf("pause: answer %v, control paused %t", v, ctl.paused)
	}
	want := []string{"mode fast", "mode apply", "reload rules=false config=true", "reload rules=true config=false", "reload rules=true config=false", "revert nope", "revert cg:/svc/web", "mode observe", "pause true"}
	// "mode fast" never reaches the loop: refused by the server.
	want = want[1:]
	if got := ctl.Calls(); strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("the loop carried out %q, want %q", got, want)
	}
	// A loop that does not take the request in time: 503.
	stuck := New(Options{WriteTimeout: 50 * time.Millisecond})
	sts := httptest.NewServer(stuck)
	defer sts.Close()
	for _, wr := range writes {
		code, body, raw := call(t, sts, "POST", wr.path, "", wr.body)
		if code != http.StatusServiceUnavailable {
			t.Errorf("POST %s to a busy loop: status %d, want 503: %s", wr.path, code, raw)
			continue
		}
		schema, _ := spec.responseSchema("POST", wr.path, "503")
		for _, e := range spec.validate("$", schema, body) {
			t.Errorf("POST %s (503): %s", wr.path, e)
		}
		seen["POST "+wr.path+" 503"] = true
	}
	check("GET", "/metrics", "/metrics", "", "", http.StatusOK)
	for _, op := range spec.operations() {
		if !seen[op] {
			t.Errorf("docs/openapi.yaml documents %s, which no test call produced", op)
		}
	}
}

// TestUnixSocketWritesNeedNoToken: without a token (a unix socket, whose
// mode 0600 is the guard) writes go through.
func TestUnixSocketWritesNeedNoToken(t *testing.T) {
	ctl := &fakeControl{}
	srv, ts := newTestServer(t, nil, ctl)
	srv.Publish(fixture())
	if code, _, raw := call(t, ts, "POST", "/v1/pause", "", `{"paused":true}`); code != http.StatusOK {
		t.Fatalf("pause without a token on a tokenless server: %d %s", code, raw)
	}
	if got := ctl.Calls(); len(got) != 1 || got[0] != "pause true" {
		t.Errorf("calls %v", got)
	}
}

func TestAuditPagesAndFilters(t *testing.T) {
	l := NewAuditLog(5)
	for i := 1; i <= 8; i++ {
		w := "a"
		if i%2 == 0 {
			w = "b"
		}
		fmt.Fprintf(l, `{"tick":%d,"event":"applied","workload":%q}`+"\n", i, w)
	}
	_, _ = l.Write([]byte("not json\n"))
	all, next := l.Query(AuditFilter{Limit: 100})
	if len(all) != 5 || all[0].Seq != 4 || next != 8 {
		t.Fatalf("kept %d records from seq %d (next %d), want the last 5 (4..8)", len(all), all[0].Seq, next)
	}
	var seqs []uint64
	after := uint64(0)
	for {
		page, n := l.Query(AuditFilter{Workload: "b", After: after, Limit: 1})
		for _, r := range page {
			seqs = append(seqs, r.Seq)
		}
		if n == after {
			break
		}
		after = n
	}
	if fmt.Sprint(seqs) != "[4 6 8]" {
		t.Errorf("workload b, a page at a time: %v, want [4 6 8]", seqs)
	}
	if recs, _ := l.Query(AuditFilter{Event: "refused", Limit: 10}); len(recs) != 0 {
		t.Errorf("event filter: %d records", len(recs))
	}
	var rec struct {
		Tick int `json:"tick"`
	}
	if err := json.Unmarshal(all[4].Record, &rec); err != nil || rec.Tick != 8 {
		t.Errorf("record kept as written: %s (%v)", all[4].Record, err)
	}
}

func TestWorkloadPathEscapes(t *testing.T) {
	p := WorkloadPath("cg:/system.slice/a b.service")
	if u, err := url.Parse(p); err != nil || strings.Count(u.EscapedPath(), "/") != 3 {
		t.Errorf("WorkloadPath = %q (%v): the ID's slashes must be escaped", p, err)
	}
}
