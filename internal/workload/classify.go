package workload

import (
	"slices"
	"strings"
)

// cgInfo is one distinct content of /proc/PID/cgroup, parsed and classified
// once: most processes share their cgroup file with many others.
type cgInfo struct {
	entries []cgEntry
	hasV2   bool
	v2      string

	kind Kind   // "" when the process sits in the root cgroup (grouped as a tree)
	id   string // workload ID for container, unit and cgroup kinds
	name string
	pod  string
	// login is set for a systemd login session's scope (session-N.scope).
	login bool
	// mark is the container ID or unit name: each hierarchy's path is cut
	// after the element that holds it to give the workload's cgroup.
	mark string
	// memo holds cgroups(mark) results (one or two marks per cgInfo).
	memo []cgMemo
}

// cgMemo is one memoised cgInfo.cgroups result.
type cgMemo struct {
	mark string
	cgs  Cgroups
}

// groupingV1 are the v1 controllers whose path groups a process when neither
// the v2 nor the systemd hierarchy places it, in order of preference.
var groupingV1 = []string{"cpu", "cpuacct", "memory", "cpuset", "blkio", "pids"}

func newCgInfo(entries []cgEntry) *cgInfo {
	ci := &cgInfo{entries: entries}
	for _, e := range entries {
		if e.key == "" {
			ci.hasV2, ci.v2 = true, e.path
			break
		}
	}
	if !slices.ContainsFunc(entries, func(e cgEntry) bool { return IsSculptCgroup(e.path) }) {
		ci.classify()
		return ci
	}
	// A process sculpt moved into a cgroup of its own (to weigh or cap its
	// CPU) stays the workload it was: it is grouped as if it were still
	// where sculpt found it, the hierarchy's root.
	as := &cgInfo{entries: slices.Clone(entries), hasV2: ci.hasV2, v2: ci.v2}
	for i := range as.entries {
		if IsSculptCgroup(as.entries[i].path) {
			as.entries[i].path = "/"
		}
	}
	if IsSculptCgroup(as.v2) {
		as.v2 = "/"
	}
	as.classify()
	ci.kind, ci.id, ci.name, ci.pod, ci.mark = as.kind, as.id, as.name, as.pod, as.mark
	return ci
}

// SculptCgroupPrefix starts the name of every cgroup sculpt makes for a
// workload (engine.SculptCgroup): a child of a hierarchy's root.
const SculptCgroupPrefix = "/sculpt-w-"

// IsSculptCgroup reports whether path is a cgroup sculpt made for a
// workload (or one below it).
func IsSculptCgroup(path string) bool { return strings.HasPrefix(path, SculptCgroupPrefix) }

// lookup returns the path of hierarchy key ("" for v2).
func (ci *cgInfo) lookup(key string) (string, bool) {
	for _, e := range ci.entries {
		if e.key == key {
			return e.path, true
		}
	}
	return "", false
}

// searchOrder lists paths in the order the grouping rules consult them: v2,
// then systemd's hierarchy, then every v1 controller in file order.
func (ci *cgInfo) searchOrder() []string {
	paths := make([]string, 0, len(ci.entries))
	if ci.hasV2 {
		paths = append(paths, ci.v2)
	}
	if p, ok := ci.lookup(keySystemd); ok {
		paths = append(paths, p)
	}
	for _, e := range ci.entries {
		if e.key != "" && e.key != keySystemd {
			paths = append(paths, e.path)
		}
	}
	return paths
}

// classify applies the grouping rules, most specific first: container,
// systemd unit, other non-root cgroup. It leaves kind "" for the root cgroup.
func (ci *cgInfo) classify() {
	paths := ci.searchOrder()
	for _, p := range paths {
		if id, ok := containerID(p); ok {
			ci.kind, ci.mark = KindContainer, id
			ci.id, ci.name = "ctr:"+id[:12], id[:12]
			ci.pod = podUID(p)
			return
		}
	}
	var unitPaths []string
	if ci.hasV2 {
		unitPaths = append(unitPaths, ci.v2)
	}
	if p, ok := ci.lookup(keySystemd); ok {
		unitPaths = append(unitPaths, p)
	}
	for _, p := range unitPaths {
		if u := unitName(p); u != "" {
			ci.kind, ci.mark = KindUnit, u
			ci.id, ci.name = "unit:"+u, u
			ci.login = strings.HasPrefix(u, "session-") && strings.HasSuffix(u, ".scope")
			return
		}
	}
	for _, p := range unitPaths {
		if p != "/" {
			ci.setCgroup(p)
			return
		}
	}
	for _, c := range groupingV1 {
		if p, ok := ci.lookup(c); ok && p != "/" {
			ci.setCgroup(p)
			return
		}
	}
}

func (ci *cgInfo) setCgroup(p string) {
	ci.kind = KindCgroup
	ci.id, ci.name = "cg:"+p, shortHex(lastElem(p))
}

// shortHex shortens a name that is a long hex hash (16 digits or more) to
// its first 8 digits, which tell it apart from its neighbours; any other
// name is returned whole.
func shortHex(name string) string {
	if len(name) >= 16 && isHex(strings.ToLower(name)) {
		return name[:8]
	}
	return name
}

// containerID finds a container ID, 64 hex digits, in a cgroup path: a whole
// element ("/docker/<id>", "/kubepods/burstable/pod<uid>/<id>") or a systemd
// scope named after it ("docker-<id>.scope", "cri-containerd-<id>.scope",
// "crio-<id>.scope", "libpod-<id>.scope"). The scopes of container monitors
// ("crio-conmon-<id>.scope") are not the container and do not match.
func containerID(path string) (string, bool) {
	for path != "" {
		var el string
		el, path = nextElem(path)
		el = strings.TrimSuffix(el, ".scope")
		if len(el) < 64 {
			continue
		}
		id := el[len(el)-64:]
		if !isHex(id) {
			continue
		}
		if len(el) == 64 || (el[len(el)-65] == '-' && !strings.Contains(el, "conmon")) {
			return id, true
		}
	}
	return "", false
}

// podUID finds the Kubernetes pod UID in a kubepods cgroup path: "pod<uid>"
// with the cgroupfs driver, "kubepods-<qos>-pod<uid_with_underscores>.slice"
// with the systemd driver. It returns the UID with dashes, or "".
func podUID(path string) string {
	if !strings.Contains(path, "kubepods") {
		return ""
	}
	for path != "" {
		var el string
		el, path = nextElem(path)
		el = strings.TrimSuffix(el, ".slice")
		i := strings.LastIndex(el, "pod")
		if i < 0 || (i > 0 && el[i-1] != '-') {
			continue
		}
		uid := el[i+3:]
		if len(uid) >= 32 {
			return strings.ReplaceAll(uid, "_", "-")
		}
	}
	return ""
}

// unitName returns the deepest element of path naming a systemd service or
// scope, or "".
func unitName(path string) string {
	unit := ""
	for path != "" {
		var el string
		el, path = nextElem(path)
		if strings.HasSuffix(el, ".service") || strings.HasSuffix(el, ".scope") {
			unit = el
		}
	}
	return unit
}

// cutAfter cuts path after the deepest element that is mark or, for a
// container ID, holds it ("docker-<id>.scope"); it returns path unchanged
// when no element does.
func cutAfter(path, mark string) string {
	if mark == "" {
		return path
	}
	end := -1
	for i := 0; i < len(path); {
		j := strings.IndexByte(path[i+1:], '/')
		if j < 0 {
			j = len(path)
		} else {
			j += i + 1
		}
		el := path[i+1 : j]
		if el == mark || (len(mark) == 64 && strings.Contains(el, mark)) {
			end = j
		}
		i = j
	}
	if end < 0 {
		return path
	}
	return path[:end]
}

// commonPath returns the deepest cgroup that holds both a and b.
func commonPath(a, b string) string {
	if a == b {
		return a
	}
	if len(a) > len(b) {
		a, b = b, a
	}
	if a == "/" || (strings.HasPrefix(b, a) && b[len(a)] == '/') {
		return a
	}
	i := 0
	last := 0
	for i < len(a) && a[i] == b[i] {
		if a[i] == '/' {
			last = i
		}
		i++
	}
	if last == 0 {
		return "/"
	}
	return a[:last]
}

// under reports whether path is dir or a cgroup below it.
func under(path, dir string) bool {
	if dir == "/" {
		return true
	}
	return path == dir || (strings.HasPrefix(path, dir) && path[len(dir)] == '/')
}

func nextElem(path string) (string, string) {
	path = strings.TrimLeft(path, "/")
	if i := strings.IndexByte(path, '/'); i >= 0 {
		return path[:i], path[i+1:]
	}
	return path, ""
}

func lastElem(path string) string {
	path = strings.TrimRight(path, "/")
	return path[strings.LastIndexByte(path, '/')+1:]
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
