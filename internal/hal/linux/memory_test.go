package linux

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sculpt/internal/host"
	"sculpt/internal/testload"
)

// init lets this test binary be re-executed as a testload workload without
// claiming TestMain, which other files of the package may define.
func init() { testload.MaybeRun() }

func fixtureRoots(sys string) host.Roots {
	return host.Roots{Proc: "testdata/proc", Sys: sys, Cgroup: "testdata/cgroup"}
}

func TestPageNodesFixture(t *testing.T) {
	if os.Getpagesize() != 4096 {
		t.Skip("fixture counts assume 4 KiB base pages")
	}
	got, err := PageNodes(4242, fixtureRoots("testdata/sys-2node"))
	if err != nil {
		t.Fatal(err)
	}
	// N0: 300+2+32000+3; N1: 10+120+768 + 2 huge pages of 2 MiB (512 base pages each).
	want := map[int]int{0: 32305, 1: 10 + 120 + 768 + 2*512}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("PageNodes = %v, want %v", got, want)
	}
}

func TestPageNodesMissingProcess(t *testing.T) {
	_, err := PageNodes(99999, fixtureRoots("testdata/sys-2node"))
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "99999/numa_maps") {
		t.Fatalf("err = %v, want ErrNotExist naming the path", err)
	}
}

func TestParseNumaMapsMalformed(t *testing.T) {
	for file, wantLine := range map[string]string{
		"short-line":  "line 2",
		"bad-count":   "line 2",
		"bad-address": "line 1",
	} {
		data, err := os.ReadFile(filepath.Join("testdata/numa_maps", file))
		if err != nil {
			t.Fatal(err)
		}
		_, err = parseNumaMaps(data)
		if err == nil || !strings.Contains(err.Error(), wantLine) {
			t.Errorf("%s: err = %v, want an error naming %s", file, err, wantLine)
		}
	}
}

func TestParseMapsSkipsSpecial(t *testing.T) {
	maps := `00400000-00401000 r-xp 00000000 08:01 1 /init
c000000000-c000400000 rw-p 00000000 00:00 0
c000400000-c004000000 ---p 00000000 00:00 0
7ffd1000-7ffd3000 rw-p 00000000 00:00 0 [stack]
7ffd4000-7ffd6000 r--p 00000000 00:00 0 [vvar]
7ffd6000-7ffd8000 r-xp 00000000 00:00 0 [vdso]
ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0 [vsyscall]
`
	got, err := parseMaps([]byte(maps))
	if err != nil {
		t.Fatal(err)
	}
	want := []vma{{0x400000, 0x401000}, {0xc000000000, 0xc000400000}, {0x7ffd1000, 0x7ffd3000}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseMaps = %x, want %x", got, want)
	}
	if _, err := parseMaps([]byte("00400000 r-xp 0 0 0\n")); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad range: err = %v, want an error naming line 1", err)
	}
}

func TestNodeCount(t *testing.T) {
	if n := NodeCount(fixtureRoots("testdata/sys-2node")); n != 2 {
		t.Errorf("NodeCount(2-node fixture) = %d, want 2", n)
	}
	if n := NodeCount(fixtureRoots(t.TempDir())); n != 1 {
		t.Errorf("NodeCount(no node dir) = %d, want 1", n)
	}
}

func TestNodeMask(t *testing.T) {
	m, err := nodeMask([]int{0, 3, 65})
	if err != nil {
		t.Fatal(err)
	}
	if want := []uint64{1<<0 | 1<<3, 1 << 1}; !reflect.DeepEqual(m, want) {
		t.Fatalf("nodeMask = %b, want %b", m, want)
	}
	if _, err := nodeMask([]int{-1}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("nodeMask(-1) err = %v, want EINVAL", err)
	}
}

// startSleeper starts an idle Go process and waits until its runtime is up
// (at least 200 resident pages), so that there are several chunks to move.
func startSleeper(t *testing.T) *exec.Cmd {
	t.Helper()
	cmd := testload.Start(t, "sleep", nil)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		counts, err := PageNodes(cmd.Process.Pid, host.DefaultRoots())
		if err != nil {
			t.Fatal(err)
		}
		sum := 0
		for _, n := range counts {
			sum += n
		}
		if sum >= 200 {
			return cmd
		}
	}
	t.Fatalf("pid %d never had 200 resident pages", cmd.Process.Pid)
	return nil
}

// requireRoot skips unless the test can move another process's pages.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("moving another process's pages needs root (CAP_SYS_NICE)")
	}
	if _, err := os.Stat("/proc/self/numa_maps"); err != nil {
		t.Skip("kernel without NUMA support (no /proc/self/numa_maps)")
	}
}

func TestMovePagesToCurrentNode(t *testing.T) {
	requireRoot(t)
	roots := host.DefaultRoots()
	if NodeCount(roots) != 1 {
		t.Skip("checks the single-node case; the multi-node case runs in test/vm")
	}
	cmd := startSleeper(t)
	pid := cmd.Process.Pid
	before, err := PageNodes(pid, roots)
	if err != nil {
		t.Fatal(err)
	}
	st, err := MovePages(context.Background(), pid, 0, MoveOptions{ChunkPages: 64})
	if err != nil {
		t.Fatal(err)
	}
	if st.Pages < 200 {
		t.Fatalf("found %d resident pages in a running Go process, want many: %+v", st.Pages, st)
	}
	if st.Moved != 0 || st.Failed != 0 || st.Bytes != 0 {
		t.Fatalf("one node: want nothing moved or failed, got %+v", st)
	}
	if st.AlreadyThere+st.NotPresent != st.Pages || st.AlreadyThere == 0 {
		t.Fatalf("pages do not add up: %+v", st)
	}
	if before[0] == 0 {
		t.Fatalf("numa_maps shows no pages on node 0: %v", before)
	}
}

func TestMovePagesTargetExitsMidway(t *testing.T) {
	requireRoot(t)
	cmd := startSleeper(t)
	pid := cmd.Process.Pid
	chunks := 0
	st, err := movePagesHook(context.Background(), pid, 0, MoveOptions{ChunkPages: 16}, func() {
		chunks++
		if chunks == 1 {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})
	if !errors.Is(err, unix.ESRCH) || !strings.Contains(err.Error(), "exited") {
		t.Fatalf("err = %v, want ESRCH saying the pid exited (%d chunks, %+v)", err, chunks, st)
	}
	if chunks != 1 || st.Pages < 16 {
		t.Fatalf("want the stats of the first chunk, got %d chunks, %+v", chunks, st)
	}
}

func TestMovePagesNoSuchProcess(t *testing.T) {
	requireRoot(t)
	cmd := startSleeper(t)
	pid := cmd.Process.Pid
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	if _, err := MovePages(context.Background(), pid, 0, MoveOptions{}); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("MovePages(reaped pid) err = %v, want ESRCH", err)
	}
	if _, err := MigrateProcess(pid, []int{0}, []int{0}); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("MigrateProcess(reaped pid) err = %v, want ESRCH", err)
	}
}

func TestMovePagesMissingNode(t *testing.T) {
	requireRoot(t)
	node := NodeCount(host.DefaultRoots())
	cmd := startSleeper(t)
	st, err := MovePages(context.Background(), cmd.Process.Pid, node, MoveOptions{})
	if !errors.Is(err, unix.ENODEV) {
		t.Fatalf("move to missing node %d: err = %v, want ENODEV", node, err)
	}
	if want := "node " + itoa(node); !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want it to name %q", err, want)
	}
	if st.Moved != 0 {
		t.Fatalf("moved %d pages to a missing node", st.Moved)
	}
	if _, err := MigrateProcess(cmd.Process.Pid, []int{0}, []int{node}); !errors.Is(err, unix.EINVAL) || !strings.Contains(err.Error(), "["+itoa(node)+"]") {
		t.Fatalf("MigrateProcess to missing node %d: err = %v, want EINVAL naming it", node, err)
	}
}

func TestMovePagesCancelled(t *testing.T) {
	requireRoot(t)
	cmd := startSleeper(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st, err := MovePages(ctx, cmd.Process.Pid, 0, MoveOptions{ChunkPages: 16})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if st.Pages != 16 {
		t.Fatalf("want exactly one chunk handled before the cancel is seen, got %+v", st)
	}
}

func TestMigrateProcessSameNode(t *testing.T) {
	requireRoot(t)
	cmd := startSleeper(t)
	left, err := MigrateProcess(cmd.Process.Pid, []int{0}, []int{0})
	if err != nil || left != 0 {
		t.Fatalf("MigrateProcess 0->0 = %d, %v; want 0, nil", left, err)
	}
	if _, err := MigrateProcess(cmd.Process.Pid, nil, []int{0}); !errors.Is(err, unix.EINVAL) {
		t.Fatalf("empty from set: err = %v, want EINVAL", err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestMoveNote(t *testing.T) {
	if got := moveNote(MoveStats{Pages: 10, Moved: 8, AlreadyThere: 2}); got != "" {
		t.Fatalf("every page moved: note %q, want none", got)
	}
	got := moveNote(MoveStats{Pages: 100, Moved: 90, Failed: 4, Shared: 6,
		Errors: map[int]int{int(unix.EIO): 1, int(unix.EAGAIN): 3}})
	want := "moved 90 pages; 4 of 100 pages could not be moved (EIO 1, EAGAIN 3); 6 pages mapped by other processes too left in place"
	if got != want {
		t.Fatalf("note = %q, want %q", got, want)
	}
}
