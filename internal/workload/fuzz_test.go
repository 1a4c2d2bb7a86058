package workload

import (
	"testing"

	"sculpt/internal/fuzzseed"
)

// FuzzParseStat feeds discovery's /proc/PID/stat parser bytes it does not
// control (a comm may hold spaces, parentheses and newlines): it returns
// an error on garbage, never panics. Seeds: the telemetry fixtures' stat
// files and generated lines (docs/reliability.md).
func FuzzParseStat(f *testing.F) {
	for _, b := range fuzzseed.Files(f, "../telemetry/testdata", "stat") {
		f.Add(b)
	}
	f.Add([]byte(statLine(fproc{pid: 42, ppid: 1, comm: "a) b (c", start: 99})))
	f.Add([]byte(statLine(fproc{pid: 2, comm: "kthreadd", kthread: true})))
	f.Fuzz(func(t *testing.T, b []byte) { _, _ = parseStat(b) })
}

// FuzzParseCgroupFile fuzzes the /proc/PID/cgroup parser (v1, v2 and
// hybrid lines).
func FuzzParseCgroupFile(f *testing.F) {
	f.Add([]byte("0::/system.slice/nginx.service\n"))
	f.Add([]byte("12:pids:/a\n5:cpu,cpuacct:/b:c\n1:name=systemd:/system.slice/x.service\n0::/\n"))
	f.Add([]byte(v1only("/", "/b", "/b")))
	f.Fuzz(func(t *testing.T, b []byte) {
		entries, err := parseCgroupFile(b)
		if err != nil {
			return
		}
		_ = newCgInfo(entries)
	})
}
