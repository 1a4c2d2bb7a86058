package hal

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func ptr[T any](v T) *T { return &v }

// every holds one valid action of each kind.
var every = []Action{
	PinThreads{PID: 7, CPUs: []int{0, 1}},
	PinThreads{PID: 7, CPUs: []int{0}, Threads: map[int][]int{7: {0}, 8: {1}}},
	SetSched{PID: 7, Policy: PolicyBatch, Nice: ptr(5)},
	SetSched{PID: 7, Threads: map[int]ThreadSched{7: {Policy: "fifo", Priority: 10}}},
	SetCgroupCPU{Cgroup: "/a", Weight: ptr(uint64(200)), QuotaUS: ptr(int64(-1)), PeriodUS: ptr(uint64(100000))},
	SetCpuset{Cgroup: "/a", CPUs: []int{0}, Mems: []int{0}},
	MoveToCgroup{PID: 7, Cgroup: "/a", Controllers: []string{"cpuset", ""}},
	CreateCgroup{Cgroup: "/a/b"},
	RemoveCgroup{Cgroup: "/a/b", Controllers: []string{"cpu"}},
	BlkioWeight{Cgroup: "/a", Weight: 300},
	BlkioLimit{Cgroup: "/a", Device: "254:0", WriteBPS: 4 << 20},
	MemMigrate{PID: 7, ToNodes: []int{1}, Chunked: true},
	MemMigrate{PID: 7, ToNodes: []int{1}, Chunked: true, Shared: true},
	MemBind{Cgroup: "/a", Nodes: []int{0, 1}, Migrate: true},
	IRQAffinity{IRQ: 24, CPUs: []int{2, 3}},
	QueueMask{Iface: "veth0", Type: QueueXPS, Queue: 1, Mask: "3"},
	Channels{Iface: "eth0", Combined: ptr(4)},
	SetVFs{PCIAddr: "0000:3b:00.0", Count: 8},
	CreateVNIC{Spec: VNICSpec{Kind: VNICVeth, Name: "v0", Peer: "v1", Netns: "x", Queues: 4}},
	DeleteVNIC{Netns: "x", Name: "v0"},
	Steps{Steps: []Action{SetCpuset{Cgroup: "/a", CPUs: []int{1}}, PinThreads{PID: 7, CPUs: []int{1}}}},
	Steps{},
}

func TestActionJSONRoundTrip(t *testing.T) {
	kinds := map[string]bool{}
	for _, a := range every {
		kinds[a.Kind()] = true
		if err := a.Validate(); err != nil {
			t.Errorf("%#v: Validate: %v", a, err)
		}
		b, err := MarshalAction(a)
		if err != nil {
			t.Fatalf("marshal %#v: %v", a, err)
		}
		if !strings.HasPrefix(string(b), `{"kind":"`+a.Kind()+`"`) {
			t.Errorf("%s does not open with its kind", b)
		}
		back, err := UnmarshalAction(b)
		if err != nil {
			t.Fatalf("unmarshal %s: %v", b, err)
		}
		if !reflect.DeepEqual(back, a) && (a.Kind() != "steps" || len(a.(Steps).Steps) != 0) {
			t.Errorf("round trip of %s:\n got %#v\nwant %#v", b, back, a)
		}
		if a.String() == "" {
			t.Errorf("%#v has no String", a)
		}
	}
	if len(kinds) != len(decoders)+1 {
		t.Errorf("test covers %d kinds, the codec knows %d", len(kinds), len(decoders)+1)
	}
	if _, err := UnmarshalAction([]byte(`{"kind":"reboot"}`)); err == nil || !strings.Contains(err.Error(), `unknown kind "reboot"`) {
		t.Errorf("unknown kind: %v", err)
	}
}

func TestValidateNamesFieldAndValue(t *testing.T) {
	cases := []struct {
		a     Action
		field string
		value string
	}{
		{PinThreads{PID: 0, CPUs: []int{0}}, "pid", "0"},
		{PinThreads{PID: 1}, "cpus", ""},
		{PinThreads{PID: 1, CPUs: []int{-1}}, "cpus", ""},
		{SetSched{PID: 1, Policy: "fifo"}, "policy", "fifo"},
		{SetSched{PID: 1, Policy: "batch", Nice: ptr(20)}, "nice", "20"},
		{SetCgroupCPU{Cgroup: "/a"}, "weight", ""},
		{SetCgroupCPU{Cgroup: "/a", Weight: ptr(uint64(0))}, "weight", "0"},
		{SetCgroupCPU{Cgroup: "/a", QuotaUS: ptr(int64(5))}, "quota", "5"},
		{SetCpuset{Cgroup: "a", CPUs: []int{0}}, "cgroup", "a"},
		{SetCpuset{Cgroup: "/a/../b", CPUs: []int{0}}, "cgroup", "/a/../b"},
		{RemoveCgroup{Cgroup: "/"}, "cgroup", "/"},
		{MemMigrate{PID: 1, ToNodes: []int{0, 1}, Chunked: true}, "to", "0-1"},
		{QueueMask{Iface: "eth0", Type: "rfs", Mask: "1"}, "queue kind", "rfs"},
		{QueueMask{Iface: "a/b", Type: "rps", Mask: "1"}, "iface", "a/b"},
		{QueueMask{Iface: "eth0", Type: "rps", Mask: "0x3"}, "mask", "0x3"},
		{SetVFs{PCIAddr: "3b:00.0"}, "pci", "3b:00.0"},
		{CreateVNIC{Spec: VNICSpec{Kind: "veth", Name: "v0"}}, "peer", ""},
		{CreateVNIC{Spec: VNICSpec{Kind: "macvlan", Name: "m0"}}, "parent", ""},
		{BlkioWeight{Cgroup: "/a", Weight: 5000}, "weight", "5000"},
		{BlkioLimit{Cgroup: "/a", Device: "sda"}, "device", "sda"},
		{BlkioLimit{Cgroup: "/", Device: "8:0"}, "cgroup", "/"},
	}
	for _, c := range cases {
		err := c.a.Validate()
		var ie *InvalidError
		if !errors.As(err, &ie) {
			t.Errorf("%#v: Validate = %v, want an *InvalidError", c.a, err)
			continue
		}
		if ie.Field != c.field || (c.value != "" && ie.Value != c.value) {
			t.Errorf("%#v: error on %s=%q, want %s=%q (%v)", c.a, ie.Field, ie.Value, c.field, c.value, err)
		}
	}
}

func TestCapabilitiesFor(t *testing.T) {
	c := Capabilities{Pin: Yes("x"), CPUWeight: Yes("v1"), CPUQuota: No("no cpu.max"), VNICs: map[string]Capability{"veth": Yes("")}}
	if !c.For(PinThreads{}).Supported || c.For(SetSched{}).Supported {
		t.Error("Pin should be supported and Sched not")
	}
	if got := c.For(SetCgroupCPU{Weight: ptr(uint64(1)), QuotaUS: ptr(int64(-1))}); got.Supported || got.Reason != "no cpu.max" {
		t.Errorf("weight+quota with quota unsupported = %+v", got)
	}
	if !c.For(CreateVNIC{Spec: VNICSpec{Kind: "veth"}}).Supported || c.For(CreateVNIC{Spec: VNICSpec{Kind: "tap"}}).Supported {
		t.Error("vnic kinds not looked up")
	}
	if c.For(Steps{Steps: []Action{PinThreads{}, SetSched{}}}).Supported {
		t.Error("Steps with an unsupported step reported supported")
	}
}

func TestTargetPIDAndFormatList(t *testing.T) {
	if TargetPID(Steps{Steps: []Action{SetCpuset{Cgroup: "/a"}, PinThreads{PID: 9}}}) != 9 || TargetPID(IRQAffinity{}) != 0 {
		t.Error("TargetPID")
	}
	if got := FormatList([]int{8, 0, 1, 2, 3, 10, 11, 3}); got != "0-3,8,10-11" {
		t.Errorf("FormatList = %q", got)
	}
}
