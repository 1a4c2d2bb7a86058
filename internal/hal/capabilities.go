package hal

// Capability says whether one action family works on this machine: Detail
// says what is there when it does (e.g. "cgroup v1"), Reason why not when it
// does not.
type Capability struct {
	Supported bool   `json:"supported"`
	Detail    string `json:"detail,omitempty"`
	Reason    string `json:"reason,omitempty"`
}

// Yes is a supported capability with a detail.
func Yes(detail string) Capability { return Capability{Supported: true, Detail: detail} }

// No is an unsupported capability with the reason.
func No(reason string) Capability { return Capability{Reason: reason} }

// Capabilities lists what this machine can change, per action family.
type Capabilities struct {
	Pin        Capability `json:"pin"`         // sched_setaffinity per thread
	Sched      Capability `json:"sched"`       // policy other/batch/idle and nice
	Cpuset     Capability `json:"cpuset"`      // cgroup v1 or v2 cpuset
	CPUWeight  Capability `json:"cpu_weight"`  // cpu.shares (v1) / cpu.weight (v2)
	CPUQuota   Capability `json:"cpu_quota"`   // cpu.cfs_quota_us (v1) / cpu.max (v2)
	Cgroups    Capability `json:"cgroups"`     // create, remove, move processes
	MemBind    Capability `json:"mem_bind"`    // cpuset.mems (+ memory_migrate)
	MemMigrate Capability `json:"mem_migrate"` // migrate_pages / move_pages; useful only with >1 node
	// NUMABalancing is the kernel's automatic NUMA balancing
	// (/proc/sys/kernel/numa_balancing): Supported when it is on, and then
	// the kernel owns page placement (sculpt places threads and moves no
	// pages: one arbiter per knob); not supported when it is off or absent,
	// and then sculpt's memory rules own page placement. It gates no action.
	NUMABalancing Capability `json:"numa_balancing"`
	BlkioWeight   Capability `json:"blkio_weight"` // blkio.weight / io.weight
	BlkioLimit    Capability `json:"blkio_limit"`  // blkio.throttle.*_bps_device / io.max
	IRQAffinity   Capability `json:"irq_affinity"` // /proc/irq/N/smp_affinity_list
	QueueMasks    Capability `json:"queue_masks"`  // RPS/XPS: /sys/class/net/*/queues/*/{rps,xps}_cpus
	Channels      Capability `json:"channels"`     // ethtool channels
	SRIOV         Capability `json:"sriov"`        // sriov_numvfs
	PCIeLanes     Capability `json:"pcie_lanes"`   // lane reallocation: platform specific
	// VNICs is keyed by kind: veth, tap, bridge, macvlan, ipvlan.
	VNICs map[string]Capability `json:"vnics"`
}

// For returns the capability that gates action a.
func (c Capabilities) For(a Action) Capability {
	switch a := a.(type) {
	case PinThreads:
		return c.Pin
	case SetSched:
		return c.Sched
	case SetCpuset:
		return c.Cpuset
	case SetCgroupCPU:
		if a.QuotaUS != nil || a.PeriodUS != nil {
			if !c.CPUQuota.Supported {
				return c.CPUQuota
			}
		}
		if a.Weight != nil || a.Shares != nil {
			return c.CPUWeight
		}
		return c.CPUQuota
	case CreateCgroup, RemoveCgroup, MoveToCgroup:
		return c.Cgroups
	case MemBind:
		return c.MemBind
	case MemMigrate:
		return c.MemMigrate
	case BlkioWeight:
		return c.BlkioWeight
	case BlkioLimit:
		return c.BlkioLimit
	case IRQAffinity:
		return c.IRQAffinity
	case QueueMask:
		return c.QueueMasks
	case Channels:
		return c.Channels
	case SetVFs:
		return c.SRIOV
	case CreateVNIC:
		return c.vnic(a.Spec.Kind)
	case DeleteVNIC:
		return Yes("")
	case Steps:
		for _, s := range a.Steps {
			if cp := c.For(s); !cp.Supported {
				return cp
			}
		}
		return Yes("")
	}
	return No("unknown action")
}

func (c Capabilities) vnic(kind string) Capability {
	if cp, ok := c.VNICs[kind]; ok {
		return cp
	}
	return No("virtual NIC kind " + kind + " is not known to this machine")
}
