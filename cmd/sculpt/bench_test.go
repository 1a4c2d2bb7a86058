package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
)

// children returns the PIDs of this process's children (from /proc/*/stat).
func children(t *testing.T) []int {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	self := os.Getpid()
	var kids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // exited meanwhile
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(self) {
			kids = append(kids, pid)
		}
	}
	return kids
}

func TestBenchProfilerJSON(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes and measures for a few seconds")
	}
	before := len(children(t))
	var out, errb bytes.Buffer
	code := run([]string{"bench", "profiler", "--n", "20", "--min-cpu", "50ms", "--pace", "5ms", "--json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	var res struct {
		Machine struct {
			CPUs int `json:"cpus"`
		} `json:"machine"`
		Runs []struct {
			N                int     `json:"n"`
			Sweeps           int     `json:"sweeps"`
			SculptRatio      float64 `json:"sculpt_over_floor"`
			ProcfsRatio      float64 `json:"procfs_over_floor"`
			SculptCPUPercent float64 `json:"sculpt_cpu_percent_at_1s"`
			AgentRSSBytes    uint64  `json:"agent_rss_bytes"`
			FloorRead        struct {
				CPU float64 `json:"cpu_seconds_per_sweep"`
			} `json:"floor_read"`
			Floor struct {
				CPU float64 `json:"cpu_seconds_per_sweep"`
			} `json:"floor"`
			TickCPUPercent float64            `json:"tick_cpu_percent_at_1s"`
			Idle           float64            `json:"idle_per_sweep"`
			ProcEntries    int                `json:"proc_entries"`
			TickParts      map[string]float64 `json:"tick_parts_ms"`
			Busy           *struct {
				Busy           int     `json:"busy"`
				Sweeps         int     `json:"sweeps"`
				TickCPUPercent float64 `json:"tick_cpu_percent_at_1s"`
				Idle           float64 `json:"idle_per_sweep"`
			} `json:"busy"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(out.Bytes(), &res); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.String())
	}
	if len(res.Runs) != 1 || res.Runs[0].N != 20 || res.Machine.CPUs < 1 {
		t.Fatalf("got %+v, want one run of 20 processes", res)
	}
	r := res.Runs[0]
	if r.SculptRatio <= 0 || r.ProcfsRatio <= 0 || r.SculptCPUPercent <= 0 || r.AgentRSSBytes == 0 || r.Sweeps < 10 {
		t.Errorf("run %+v: want positive ratios, CPU share, RSS and at least one round", r)
	}
	// The sleeping processes do not run: sculpt reads less than the full
	// file set (only schedstat of most), and says so.
	if r.Idle <= 0 || r.FloorRead.CPU <= 0 || r.FloorRead.CPU >= r.Floor.CPU {
		t.Errorf("idle %v per sweep, floor-read %v s, floor %v s: want idle processes and a smaller floor of what was read", r.Idle, r.FloorRead.CPU, r.Floor.CPU)
	}
	if r.TickCPUPercent <= 0 || r.ProcEntries < 20 {
		t.Errorf("tick %v%%, %d /proc entries: want a measured tick over at least the 20 processes", r.TickCPUPercent, r.ProcEntries)
	}
	for _, part := range []string{"discovery", "procfs", "net"} {
		if _, ok := r.TickParts[part]; !ok {
			t.Errorf("tick parts %v lack %s", r.TickParts, part)
		}
	}
	// Two of the 20 are busy: seen running in some sweeps (on a crowded
	// machine not in every one), so fewer than 20 idle on average.
	if b := r.Busy; b == nil || b.Busy != 2 || b.Sweeps < 10 || b.TickCPUPercent <= 0 || b.Idle >= 20 {
		t.Errorf("busy case %+v: want 2 of 20 busy (fewer than 20 idle per sweep on average) and a measured tick", b)
	}
	for _, want := range []string{"starting 20 processes", "measuring 20 processes", "sculpt", "starting 2 busy processes"} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, errb.String())
		}
	}
	if after := len(children(t)); after > before {
		t.Errorf("%d child processes left behind (%d before)", after, before)
	}
}

func TestBenchProfilerTableAndBadInput(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "profiler", "--n", "5", "--min-cpu", "10ms", "--pace", "2ms"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{"sculpt/floor", "procfs/floor", "machine:", "sculpt/floor-read", "full tick ms", "idle/sweep"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	for _, args := range [][]string{
		{"bench", "profiler", "--n", "0"},
		{"bench", "profiler", "--n", "x"},
		{"bench", "profiler", "--min-cpu", "0s"},
		{"bench", "profiler", "--pace", "0s"},
		{"bench", "nosuch"},
		{"bench"},
	} {
		out.Reset()
		errb.Reset()
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, errb.String())
		}
	}
}
