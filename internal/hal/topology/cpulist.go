package topology

import (
	"fmt"
	mathbits "math/bits"
	"slices"
	"strconv"
	"strings"
)

// ParseCPUList parses a kernel CPU list such as "0-3,8,10-11" (the format
// of cpulist, thread_siblings_list, shared_cpu_list, smp_affinity_list and
// cpuset.cpus). It returns the CPUs ascending and without duplicates; an
// empty or all-blank list gives an empty, non-nil slice. A malformed token
// (not a number, a negative number, a descending range, an empty element)
// is an error that quotes the token and the list.
func ParseCPUList(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return []int{}, nil
	}
	// A bitmap, not a slice per token: a list that repeats a long range
	// ("0-65536,0-65536,...") then costs at most maxCPUNumber bits, not
	// the range's length once per token.
	var set []uint64
	n := 0
	for tok := range strings.SplitSeq(s, ",") {
		t := strings.TrimSpace(tok)
		lo, hi, isRange := strings.Cut(t, "-")
		first, err := parseCPUNumber(lo)
		if err != nil {
			return nil, fmt.Errorf("cpu list %q: bad token %q", s, tok)
		}
		last := first
		if isRange {
			last, err = parseCPUNumber(hi)
			if err != nil || last < first {
				return nil, fmt.Errorf("cpu list %q: bad token %q", s, tok)
			}
		}
		for len(set) <= last/64 {
			set = append(set, 0)
		}
		for c := first; c <= last; c++ {
			if set[c/64]&(1<<(c%64)) == 0 {
				set[c/64] |= 1 << (c % 64)
				n++
			}
		}
	}
	cpus := make([]int, 0, n)
	for w, bits := range set {
		for ; bits != 0; bits &= bits - 1 {
			cpus = append(cpus, w*64+mathbits.TrailingZeros64(bits))
		}
	}
	return cpus, nil
}

// maxCPUNumber bounds a list element so a corrupt file cannot make the
// parser allocate without limit (the kernel's NR_CPUS tops out at 8192).
const maxCPUNumber = 1 << 16

func parseCPUNumber(s string) (int, error) {
	if s == "" || s[0] == '+' {
		return 0, strconv.ErrSyntax
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, err
	}
	if n < 0 || n > maxCPUNumber {
		return 0, strconv.ErrRange
	}
	return n, nil
}

// FormatCPUList writes cpus in the kernel's canonical list form: ascending,
// without duplicates, runs of two or more consecutive CPUs as "a-b", e.g.
// []int{3, 0, 1, 2, 8, 10, 11} -> "0-3,8,10-11". An empty slice gives "".
func FormatCPUList(cpus []int) string {
	if len(cpus) == 0 {
		return ""
	}
	s := slices.Clone(cpus)
	slices.Sort(s)
	s = slices.Compact(s)
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return b.String()
}

// IntersectCPUs returns the CPUs of a that are also in b, in a's order.
func IntersectCPUs(a, b []int) []int {
	var out []int
	for _, x := range a {
		if slices.Contains(b, x) {
			out = append(out, x)
		}
	}
	return out
}
