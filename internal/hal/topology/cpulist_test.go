package topology

import (
	"slices"
	"strings"
	"testing"
)

func TestParseCPUList(t *testing.T) {
	for _, tc := range []struct {
		in     string
		want   []int
		badTok string // when non-empty, the error must quote this token
	}{
		{in: "", want: []int{}},
		{in: " \n", want: []int{}},
		{in: "0", want: []int{0}},
		{in: "0-3,8,10-11\n", want: []int{0, 1, 2, 3, 8, 10, 11}},
		{in: "8,0-1,1", want: []int{0, 1, 8}},
		{in: "5-5", want: []int{5}},
		{in: "0-1x", badTok: "0-1x"},
		{in: "0,x,2", badTok: "x"},
		{in: "3-1", badTok: "3-1"},
		{in: "-1", badTok: "-1"},
		{in: "0,,2", badTok: ""},
		{in: "1-", badTok: "1-"},
		{in: "+1", badTok: "+1"},
		{in: "0-99999999", badTok: "0-99999999"},
	} {
		got, err := ParseCPUList(tc.in)
		if tc.want != nil {
			if err != nil || got == nil || !slices.Equal(got, tc.want) {
				t.Errorf("ParseCPUList(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseCPUList(%q) = %v, want an error", tc.in, got)
			continue
		}
		if !strings.Contains(err.Error(), `bad token "`+tc.badTok+`"`) {
			t.Errorf("ParseCPUList(%q) error %q does not name the token %q", tc.in, err, tc.badTok)
		}
	}
}

func TestFormatCPUList(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, ""},
		{[]int{0}, "0"},
		{[]int{3, 0, 1, 2, 8, 10, 11}, "0-3,8,10-11"},
		{[]int{1, 1, 2}, "1-2"},
		{[]int{0, 2, 4}, "0,2,4"},
		{[]int{0, 1, 2, 3, 64, 65, 66, 67}, "0-3,64-67"},
	} {
		if got := FormatCPUList(tc.in); got != tc.want {
			t.Errorf("FormatCPUList(%v) = %q, want %q", tc.in, got, tc.want)
		}
		back, err := ParseCPUList(tc.want)
		if err != nil {
			t.Fatalf("ParseCPUList(%q): %v", tc.want, err)
		}
		in := slices.Compact(slices.Sorted(slices.Values(tc.in)))
		if !slices.Equal(back, in) && len(in)+len(back) > 0 {
			t.Errorf("round trip of %v gave %v", tc.in, back)
		}
	}
}

// A list that repeats the widest range costs one bitmap, not the range
// once per token, and still gives each CPU once.
func TestParseCPUListRepeatedWideRange(t *testing.T) {
	s := strings.Repeat("0-65536,", 200) + "7"
	cpus, err := ParseCPUList(s)
	if err != nil || len(cpus) != maxCPUNumber+1 || cpus[0] != 0 || cpus[len(cpus)-1] != maxCPUNumber {
		t.Fatalf("got %d CPUs (%v), want 0..%d", len(cpus), err, maxCPUNumber)
	}
}
