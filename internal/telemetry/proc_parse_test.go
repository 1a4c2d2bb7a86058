package telemetry

import (
	"errors"
	"os"
	"strings"
	"testing"
)

func TestParseStat(t *testing.T) {
	tail := " 3133440 393 18446744073709551615 0 0 0\n"
	tests := []struct {
		name    string
		in      string
		want    procStat
		errWant string // substring of the error; "" for success
	}{
		{
			name: "plain",
			in:   "5073 (cat) R 5071 5071 4060 0 -1 4194304 101 11 2 13 7 3 16 17 20 0 1 0 34053" + tail,
			want: procStat{PPID: 5071, MinFlt: 101, CMinFlt: 11, MajFlt: 2, CMajFlt: 13, UTime: 7, STime: 3, CUTime: 16, CSTime: 17, NumThreads: 1, StartTime: 34053},
		},
		{
			name: "comm with spaces and parentheses",
			in:   "42 ((a) b) c) S 1 42 42 0 -1 0 5 0 6 0 70 80 0 0 -2 -5 12 0 999" + tail,
			want: procStat{PPID: 1, MinFlt: 5, MajFlt: 6, UTime: 70, STime: 80, NumThreads: 12, StartTime: 999},
		},
		{
			name: "starttime is the last field",
			in:   "1 (x) S 1 1 1 0 -1 0 1 0 2 0 3 4 0 0 20 0 1 0 55\n",
			want: procStat{PPID: 1, MinFlt: 1, MajFlt: 2, UTime: 3, STime: 4, NumThreads: 1, StartTime: 55},
		},
		{name: "truncated", in: "1 (x) S 1 1 1 0 -1 0 1 0 2 0 3 4 0 0", errWant: "field num_threads missing"},
		{name: "garbage cutime", in: "1 (x) S 1 1 1 0 -1 0 1 0 2 0 3 4 x5 0 20 0 1 0 55\n", errWant: `field cutime: "x5" is not a number`},
		{name: "no comm", in: "1 x S 1", errWant: "field comm missing"},
		{name: "empty", in: "", errWant: "field comm missing"},
		{name: "garbage utime", in: "1 (x) S 1 1 1 0 -1 0 1 0 2 0 3z 4 0 0 20 0 1 0 55\n", errWant: `field utime: "3z" is not a number`},
		{name: "negative minflt", in: "1 (x) S 1 1 1 0 -1 0 -1 0 2 0 3 4 0 0 20 0 1 0 55\n", errWant: "field minflt"},
		{name: "overflow", in: "1 (x) S 1 1 1 0 -1 0 1 0 2 0 3 4 0 0 20 0 1 0 99999999999999999999999\n", errWant: "field starttime"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseStat([]byte(tc.in))
			if tc.errWant != "" {
				if err == nil || !strings.Contains(err.Error(), tc.errWant) {
					t.Fatalf("err = %v, want one containing %q", err, tc.errWant)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestParseStatus(t *testing.T) {
	b, err := os.ReadFile("testdata/proc/tree/proc/100/status")
	if err != nil {
		t.Fatal(err)
	}
	st, err := parseStatus(b)
	if err != nil {
		t.Fatal(err)
	}
	if !st.HasRSS || st.RSSBytes != 2048*1024 || !st.HasCtx || st.VolCtx != 11 || st.InvolCtx != 3 || string(st.CPUsAllowed) != "0-1" {
		t.Fatalf("got %+v", st)
	}
	// A kernel thread has neither VmRSS nor (in this cut) context switches.
	st, err = parseStatus([]byte("Name:\tkthreadd\nVmPeak:\t0 kB\nCpus_allowed_list:\t0-3\n"))
	if err != nil || st.HasRSS || st.HasCtx {
		t.Fatalf("kernel thread: got %+v, %v", st, err)
	}
	for _, tc := range []struct{ in, field string }{
		{"VmRSS:\t  12x kB\n", "VmRSS"},
		{"voluntary_ctxt_switches:\t-1\n", "voluntary_ctxt_switches"},
		{"nonvoluntary_ctxt_switches:\t\n", "nonvoluntary_ctxt_switches"},
	} {
		_, err := parseStatus([]byte(tc.in))
		var fe *fieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("parseStatus(%q) = %v, want a field error on %s", tc.in, err, tc.field)
		}
	}
}

func TestParseSchedstat(t *testing.T) {
	got, err := parseSchedstat([]byte("1500000000 250000000 42\n"))
	if err != nil || got != (procSchedstat{1500000000, 250000000, 42}) {
		t.Fatalf("got %+v, %v", got, err)
	}
	for _, in := range []string{"", "1 2\n", "1 x 3\n"} {
		if _, err := parseSchedstat([]byte(in)); err == nil {
			t.Errorf("parseSchedstat(%q): no error", in)
		}
	}
}

func TestParseSchedMigrations(t *testing.T) {
	b, err := os.ReadFile("testdata/proc/tree/proc/100/sched")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := parseSchedMigrations(b); err != nil || n != 9 {
		t.Fatalf("got %d, %v; want 9", n, err)
	}
	if _, err := parseSchedMigrations([]byte("x (1, #threads: 1)\n---\nse.exec_start : 1\n")); err == nil {
		t.Error("missing se.nr_migrations: no error")
	}
	if _, err := parseSchedMigrations([]byte("x\nse.nr_migrations    :   1.5\n")); err == nil {
		t.Error("garbage se.nr_migrations: no error")
	}
}

func TestParseIO(t *testing.T) {
	got, err := parseIO([]byte("rchar: 6976\nwchar: 1\nsyscr: 10\nsyscw: 2\nread_bytes: 4096\nwrite_bytes: 8192\ncancelled_write_bytes: 0\n"))
	want := procIO{RChar: 6976, WChar: 1, SyscR: 10, SyscW: 2, ReadBytes: 4096, WriteBytes: 8192}
	if err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	if _, err := parseIO([]byte("rchar: 1\nwchar: 2\n")); err == nil || !strings.Contains(err.Error(), "syscr missing") {
		t.Errorf("truncated io: err = %v", err)
	}
	if _, err := parseIO([]byte("rchar: 1\nwchar: 2\nsyscr: ?\n")); err == nil || !strings.Contains(err.Error(), "syscr") {
		t.Errorf("garbage io: err = %v", err)
	}
}

func TestParseSmapsRollup(t *testing.T) {
	b, err := os.ReadFile("testdata/proc/tree/proc/100/smaps_rollup")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSmapsRollup(b)
	// Pss_Anon, Pss_File and SwapPss must not be taken for Pss and Swap.
	if want := (procSmaps{455 << 10, 112 << 10, 8 << 10}); err != nil || got != want {
		t.Fatalf("got %+v, %v; want %+v", got, err, want)
	}
	if _, err := parseSmapsRollup([]byte("Rss: 1 kB\nPss: 1 kB\n")); err == nil {
		t.Error("truncated smaps_rollup: no error")
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   string
		has  []int
		not  []int
		fail bool
	}{
		{in: "0-1\n", has: []int{0, 1}, not: []int{2}},
		{in: "0,2-3,64-65", has: []int{0, 2, 3, 64, 65}, not: []int{1, 4, 63, 66}},
		{in: "", not: []int{0}},
		{in: "3-1", fail: true},
		{in: "a", fail: true},
		{in: "0-99999", fail: true},
	} {
		s, err := parseCPUList(nil, []byte(tc.in))
		if tc.fail {
			if err == nil {
				t.Errorf("parseCPUList(%q): no error", tc.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseCPUList(%q): %v", tc.in, err)
			continue
		}
		for _, c := range tc.has {
			if !s.has(c) {
				t.Errorf("parseCPUList(%q) lacks %d", tc.in, c)
			}
		}
		for _, c := range tc.not {
			if s.has(c) {
				t.Errorf("parseCPUList(%q) has %d", tc.in, c)
			}
		}
	}
}

func TestParseNUMAMaps(t *testing.T) {
	b, err := os.ReadFile("testdata/proc/tree/proc/100/numa_maps")
	if err != nil {
		t.Fatal(err)
	}
	// N0: 2+1+4 base pages; N1: 3 base pages + 2 huge pages of 2 MiB (512 each).
	local0, _ := parseCPUList(nil, []byte("0"))
	got, err := parseNUMAMaps(b, local0, 4096)
	if want := (numaCounts{Total: 1034, Local: 7}); err != nil || got != want {
		t.Fatalf("local node 0: got %+v, %v; want %+v", got, err, want)
	}
	local1, _ := parseCPUList(nil, []byte("1"))
	if got, _ := parseNUMAMaps(b, local1, 4096); got.Local != 1027 {
		t.Fatalf("local node 1: got %+v, want Local 1027", got)
	}
	if _, err := parseNUMAMaps([]byte("7f00 default N0=x kernelpagesize_kB=4\n"), local0, 4096); err == nil {
		t.Error("garbage page count: no error")
	}
}
