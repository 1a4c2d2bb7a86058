package telemetry

// SourceStatus says whether one telemetry source works on this machine.
type SourceStatus struct {
	Name      string `json:"name"` // e.g. "procfs", "psi", "perf-software", "perf-hardware", "ebpf", "cgroup-v1", "cgroup-v2"
	Available bool   `json:"available"`
	Detail    string `json:"detail,omitempty"` // what is there (e.g. controllers), when available
	Reason    string `json:"reason,omitempty"` // why not, when unavailable
}

// ProbeSources(roots host.Roots) []SourceStatus is defined beside this type
// by the collectors' probes.
