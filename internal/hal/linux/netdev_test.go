package linux

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
	"sculpt/internal/host"
)

func TestMaskFromCPUs(t *testing.T) {
	cases := []struct {
		cpus []int
		want string
	}{
		{nil, "0"},
		{[]int{0}, "1"},
		{[]int{0, 1}, "3"},
		{[]int{1, 0, 1}, "3"},
		{[]int{4, 5, 6, 7}, "f0"},
		{[]int{31}, "80000000"},
		{[]int{32}, "1,00000000"},
		{[]int{0, 40}, "100,00000001"},
		{[]int{-1, 2}, "4"},
	}
	for _, c := range cases {
		if got := MaskFromCPUs(c.cpus); got != c.want {
			t.Errorf("MaskFromCPUs(%v) = %q, want %q", c.cpus, got, c.want)
		}
	}
}

func TestCPUsFromMask(t *testing.T) {
	good := []struct {
		mask string
		want []int
	}{
		{"0", []int{}},
		{"00000000,00000000", []int{}},
		{"3", []int{0, 1}},
		{"3\n", []int{0, 1}},
		{"f0", []int{4, 5, 6, 7}},
		{"F0", []int{4, 5, 6, 7}},
		{"00000000,00000003", []int{0, 1}},
		{"1,00000000", []int{32}},
		{"100,00000001", []int{0, 40}},
		{"100000001", []int{0, 32}}, // no commas: one long hex number
		{"1,1", []int{0, 32}},       // short lower group is zero padded
	}
	for _, c := range good {
		got, err := CPUsFromMask(c.mask)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("CPUsFromMask(%q) = %v, %v; want %v", c.mask, got, err, c.want)
		}
		if err == nil {
			// Round trip through MaskFromCPUs keeps the set.
			back, err := CPUsFromMask(MaskFromCPUs(got))
			if err != nil || !slices.Equal(back, got) {
				t.Errorf("round trip of %q: %v, %v", c.mask, back, err)
			}
		}
	}
	bad := []string{"", " ", "g", "0x3", "3,", ",3", "1,,2", "1,123456789", "-1", "3 4", strings.Repeat("f", 20000)}
	for _, m := range bad {
		if got, err := CPUsFromMask(m); err == nil {
			t.Errorf("CPUsFromMask(%q) = %v, want an error", m, got)
		} else if !strings.Contains(err.Error(), "cpu mask") {
			t.Errorf("CPUsFromMask(%q) error %q does not say it is a cpu mask", m, err)
		}
	}
}

// fakeNetSys builds roots.Sys with a 4-CPU machine and iface with rx/tx
// queues 0 and 1; tx-1 lacks xps_cpus.
func fakeNetSys(t *testing.T, iface string) host.Roots {
	t.Helper()
	sys := t.TempDir()
	files := map[string]string{
		"devices/system/cpu/possible":                    "0-3\n",
		"class/net/" + iface + "/queues/rx-0/rps_cpus":   "0\n",
		"class/net/" + iface + "/queues/rx-1/rps_cpus":   "0\n",
		"class/net/" + iface + "/queues/tx-0/xps_cpus":   "0\n",
		"class/net/" + iface + "/queues/tx-1/tx_maxrate": "0\n",
	}
	for name, content := range files {
		p := filepath.Join(sys, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return host.Roots{Sys: sys}
}

func TestQueueMaskFixture(t *testing.T) {
	roots := fakeNetSys(t, "eth0")
	rx, tx, err := QueueCount(roots, "eth0")
	if err != nil || rx != 2 || tx != 2 {
		t.Fatalf("QueueCount = %d, %d, %v; want 2, 2", rx, tx, err)
	}
	if _, _, err := QueueCount(roots, "eth9"); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "eth9") {
		t.Errorf("QueueCount(eth9) = %v, want ENOENT naming eth9", err)
	}

	if err := WriteQueueMask(roots, "eth0", QueueRPS, 1, "a"); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadQueueMask(roots, "eth0", QueueRPS, 1); err != nil || got != "a" {
		t.Errorf("ReadQueueMask after writing a = %q, %v", got, err)
	}
	if err := WriteQueueMask(roots, "eth0", QueueXPS, 0, "0000000f"); err != nil {
		t.Fatal(err)
	}

	// Bad masks are refused, name the mask, and write nothing.
	for _, m := range []string{"", "xyz", "1,,2", "10", "1,00000000"} {
		err := WriteQueueMask(roots, "eth0", QueueRPS, 0, m)
		if err == nil || !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), `"`+m+`"`) {
			t.Errorf("WriteQueueMask(%q) = %v, want EINVAL quoting the mask", m, err)
		}
	}
	if got, _ := ReadQueueMask(roots, "eth0", QueueRPS, 0); got != "0" {
		t.Errorf("rx-0 rps_cpus = %q after refused writes, want it untouched (0)", got)
	}

	// A queue that exists without the file: not supported. A queue that
	// does not exist: ENOENT.
	if _, err := ReadQueueMask(roots, "eth0", QueueXPS, 1); !errors.Is(err, hal.ErrNotSupported) {
		t.Errorf("ReadQueueMask(tx-1 without xps_cpus) = %v, want not supported", err)
	}
	if _, err := ReadQueueMask(roots, "eth0", QueueRPS, 7); !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "rx-7") {
		t.Errorf("ReadQueueMask(rx-7) = %v, want ENOENT naming rx-7", err)
	}
	for _, bad := range []struct {
		iface string
		kind  QueueKind
		q     int
	}{{"../x", QueueRPS, 0}, {"eth0", QueueKind(9), 0}, {"eth0", QueueRPS, -1}} {
		if _, err := ReadQueueMask(roots, bad.iface, bad.kind, bad.q); !errors.Is(err, unix.EINVAL) {
			t.Errorf("ReadQueueMask(%q, %v, %d) = %v, want EINVAL", bad.iface, bad.kind, bad.q, err)
		}
	}
}

// currentNetnsVeth creates a veth pair with queues queues in the current
// namespace, so its sysfs is /sys/class/net, and deletes it at the end.
func currentNetnsVeth(t *testing.T, queues int) (string, string) {
	t.Helper()
	netRequireRoot(t)
	a, b := netUniqueName("sctst"), netUniqueName("sctsp")
	if err := CreateVNIC(VNICSpec{Kind: "veth", Name: a, Peer: b, Queues: queues}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := DeleteVNIC("", a); err != nil {
			t.Errorf("delete veth %s: %v", a, err)
		}
	})
	return a, b
}

func TestQueueMaskRoot(t *testing.T) {
	iface, _ := currentNetnsVeth(t, 4)
	roots := host.DefaultRoots()
	rx, tx, err := QueueCount(roots, iface)
	if err != nil || rx != 4 || tx != 4 {
		t.Fatalf("QueueCount(%s) = %d, %d, %v; want 4, 4", iface, rx, tx, err)
	}
	n, ok := possibleCPUs(roots)
	if !ok {
		t.Fatal("cannot read /sys/devices/system/cpu/possible")
	}
	for _, kind := range []QueueKind{QueueRPS, QueueXPS} {
		for q := range 4 {
			orig, err := ReadQueueMask(roots, iface, kind, q)
			if err != nil {
				t.Fatalf("read %s queue %d of %s: %v", kind, q, iface, err)
			}
			want := MaskFromCPUs([]int{q % n})
			if err := WriteQueueMask(roots, iface, kind, q, want); err != nil {
				t.Fatalf("write %s queue %d of %s: %v", kind, q, iface, err)
			}
			got, err := ReadQueueMask(roots, iface, kind, q)
			if err != nil {
				t.Fatal(err)
			}
			if a, _ := CPUsFromMask(got); !slices.Equal(a, []int{q % n}) {
				t.Errorf("%s queue %d: kernel shows %q after writing %q", kind, q, got, want)
			}
			if err := WriteQueueMask(roots, iface, kind, q, orig); err != nil {
				t.Fatalf("restore %s queue %d of %s to %q: %v", kind, q, iface, orig, err)
			}
			if got, _ := ReadQueueMask(roots, iface, kind, q); got != orig {
				t.Errorf("%s queue %d: %q after restoring %q", kind, q, got, orig)
			}
		}
	}
	// A CPU beyond the machine is refused before the kernel sees it.
	err = WriteQueueMask(roots, iface, QueueRPS, 0, MaskFromCPUs([]int{n}))
	if !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "possible CPUs") {
		t.Errorf("mask naming CPU %d: %v, want EINVAL about possible CPUs", n, err)
	}
}

func TestChannelsRoot(t *testing.T) {
	iface, _ := currentNetnsVeth(t, 4)
	ch, err := ReadChannels(iface)
	if errors.Is(err, hal.ErrNotSupported) {
		t.Skipf("veth on this kernel reports no channels: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s channels: %+v", iface, ch)
	if ch.RX != 4 || ch.TX != 4 || ch.MaxRX < 4 || ch.MaxTX < 4 {
		t.Fatalf("veth with 4 queues reports %+v, want rx 4 tx 4", ch)
	}
	set := ch
	set.RX, set.TX = 2, 2
	if err := WriteChannels(iface, set); err != nil {
		t.Fatalf("WriteChannels(%s, rx 2 tx 2): %v", iface, err)
	}
	got, err := ReadChannels(iface)
	if err != nil || got.RX != 2 || got.TX != 2 {
		t.Errorf("after setting 2/2: %+v, %v", got, err)
	}
	if rx, tx, _ := QueueCount(host.DefaultRoots(), iface); rx != 2 || tx != 2 {
		t.Errorf("after setting 2/2 sysfs shows %d rx / %d tx queues", rx, tx)
	}
	tooMany := ch
	tooMany.RX = ch.MaxRX + 1
	if err := WriteChannels(iface, tooMany); !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "maximum") {
		t.Errorf("WriteChannels above the maximum = %v, want EINVAL naming the maximum", err)
	}
	if err := WriteChannels(iface, ch); err != nil {
		t.Fatalf("restore channels of %s: %v", iface, err)
	}
	if got, _ := ReadChannels(iface); got != ch {
		t.Errorf("after restore %+v, want %+v", got, ch)
	}
}

func TestChannelsErrors(t *testing.T) {
	netRequireRoot(t)
	if _, err := ReadChannels("sculptnone0"); !errors.Is(err, unix.ENODEV) || !strings.Contains(err.Error(), "sculptnone0") {
		t.Errorf("ReadChannels(missing) = %v, want ENODEV naming it", err)
	}
	// The loopback driver has no channels.
	_, err := ReadChannels("lo")
	if !errors.Is(err, hal.ErrNotSupported) || !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("ReadChannels(lo) = %v, want not supported wrapping EOPNOTSUPP", err)
	}
	if _, err := ReadChannels("a/b"); !errors.Is(err, unix.EINVAL) {
		t.Errorf("ReadChannels(a/b) = %v, want EINVAL", err)
	}
}
