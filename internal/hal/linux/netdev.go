package linux

import (
	"errors"
	"fmt"
	"io/fs"
	"math/bits"
	"os"
	"slices"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
	"sculpt/internal/hal/topology"
	"sculpt/internal/host"
)

// QueueKind selects a per-queue steering mask of a network device.
type QueueKind int

const (
	// QueueRPS is receive packet steering: which CPUs process packets
	// received on rx queue N (queues/rx-N/rps_cpus).
	QueueRPS QueueKind = iota
	// QueueXPS is transmit packet steering: which CPUs use tx queue N
	// (queues/tx-N/xps_cpus).
	QueueXPS
)

func (k QueueKind) String() string {
	switch k {
	case QueueRPS:
		return "rps"
	case QueueXPS:
		return "xps"
	}
	return "QueueKind(" + strconv.Itoa(int(k)) + ")"
}

// queueMaskPath gives roots.Sys/class/net/IFACE/queues/{rx-Q/rps_cpus,tx-Q/xps_cpus}.
func queueMaskPath(roots host.Roots, iface string, kind QueueKind, queue int) (dir, file string, err error) {
	if err := validIfName(iface); err != nil {
		return "", "", err
	}
	if queue < 0 {
		return "", "", fmt.Errorf("%s: negative queue %d: %w", iface, queue, unix.EINVAL)
	}
	switch kind {
	case QueueRPS:
		dir = roots.SysPath("class", "net", iface, "queues", "rx-"+strconv.Itoa(queue))
		return dir, dir + "/rps_cpus", nil
	case QueueXPS:
		dir = roots.SysPath("class", "net", iface, "queues", "tx-"+strconv.Itoa(queue))
		return dir, dir + "/xps_cpus", nil
	}
	return "", "", fmt.Errorf("%s: unknown queue kind %d: %w", iface, int(kind), unix.EINVAL)
}

// ReadQueueMask reads the RPS or XPS CPU mask of one queue of iface from
// roots.Sys/class/net/IFACE/queues/rx-Q/rps_cpus or tx-Q/xps_cpus, in the
// kernel's hex form ("3", "00000000,00000003"; "0" means steering is off).
// A queue that does not exist gives an error wrapping ENOENT; a queue
// without the file (XPS on a single-queue device, or a kernel without
// CONFIG_RPS/CONFIG_XPS) a *hal.NotSupportedError.
func ReadQueueMask(roots host.Roots, iface string, kind QueueKind, queue int) (string, error) {
	dir, path, err := queueMaskPath(roots, iface, kind, queue)
	if err != nil {
		return "", err
	}
	s, err := ionetRead(path)
	if err != nil {
		return "", queueMaskMissing(dir, path, kind, err)
	}
	return s, nil
}

// WriteQueueMask writes mask to the RPS or XPS file of one queue of iface
// (see ReadQueueMask). The mask is hex with optional commas between 32-bit
// groups, as the kernel prints it; a malformed mask, or one naming a CPU at
// or beyond the possible CPUs (roots.Sys/devices/system/cpu/possible), is an
// error wrapping EINVAL that quotes the mask, and nothing is written. Needs
// root.
func WriteQueueMask(roots host.Roots, iface string, kind QueueKind, queue int, mask string) error {
	dir, path, err := queueMaskPath(roots, iface, kind, queue)
	if err != nil {
		return err
	}
	mask = strings.TrimSpace(mask)
	cpus, err := CPUsFromMask(mask)
	if err != nil {
		return fmt.Errorf("%s %s queue %d: %w: %w", iface, kind, queue, err, unix.EINVAL)
	}
	if n, ok := possibleCPUs(roots); ok && len(cpus) > 0 && cpus[len(cpus)-1] >= n {
		return fmt.Errorf("%s %s queue %d: mask %q names CPU %d but the machine has %d possible CPUs: %w",
			iface, kind, queue, mask, cpus[len(cpus)-1], n, unix.EINVAL)
	}
	if err := ionetWrite(path, mask); err != nil {
		return queueMaskMissing(dir, path, kind, err)
	}
	return nil
}

func queueMaskMissing(dir, path string, kind QueueKind, err error) error {
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if _, serr := os.Stat(dir); serr == nil {
		return fmt.Errorf("%s: %w", path, &hal.NotSupportedError{
			What:   strings.ToUpper(kind.String()),
			Reason: "the queue has no " + kind.String() + " mask (single-queue device, or kernel without CONFIG_RPS/CONFIG_XPS)",
		})
	}
	return err
}

// possibleCPUs is the kernel's nr_cpu_ids: one more than the highest CPU in
// roots.Sys/devices/system/cpu/possible.
func possibleCPUs(roots host.Roots) (int, bool) {
	s, err := ionetRead(roots.SysPath("devices", "system", "cpu", "possible"))
	if err != nil {
		return 0, false
	}
	cpus, err := topology.ParseCPUList(s)
	if err != nil || len(cpus) == 0 {
		return 0, false
	}
	return cpus[len(cpus)-1] + 1, true
}

// QueueCount counts the rx-N and tx-N directories in
// roots.Sys/class/net/IFACE/queues: the device's real (active) receive and
// transmit queues. An unknown interface gives an error wrapping ENOENT.
func QueueCount(roots host.Roots, iface string) (rx, tx int, err error) {
	if err := validIfName(iface); err != nil {
		return 0, 0, err
	}
	dir := roots.SysPath("class", "net", iface, "queues")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("read %s: %w", dir, ionetErrno(err))
	}
	for _, e := range ents {
		switch {
		case strings.HasPrefix(e.Name(), "rx-"):
			rx++
		case strings.HasPrefix(e.Name(), "tx-"):
			tx++
		}
	}
	return rx, tx, nil
}

// MaskFromCPUs formats cpus as a kernel CPU mask: hex, 32-bit groups
// separated by commas, the top group without leading zeros, e.g. [0 1] ->
// "3", [0 40] -> "100,00000001". No CPUs give "0". Negative CPUs are ignored.
func MaskFromCPUs(cpus []int) string {
	var words []uint32 // least significant first
	for _, c := range cpus {
		if c < 0 {
			continue
		}
		for len(words) <= c/32 {
			words = append(words, 0)
		}
		words[c/32] |= 1 << (c % 32)
	}
	for len(words) > 0 && words[len(words)-1] == 0 {
		words = words[:len(words)-1]
	}
	if len(words) == 0 {
		return "0"
	}
	var b strings.Builder
	b.WriteString(strconv.FormatUint(uint64(words[len(words)-1]), 16))
	for i := len(words) - 2; i >= 0; i-- {
		fmt.Fprintf(&b, ",%08x", words[i])
	}
	return b.String()
}

// maxMaskBits bounds a parsed mask (the kernel's NR_CPUS tops out at 8192).
const maxMaskBits = 1 << 16

// CPUsFromMask parses a kernel CPU mask in hex, with optional commas
// between 32-bit groups ("3", "f0", "00000000,00000003"), and returns the
// CPUs it names, ascending. An empty mask, a non-hex character, a group of
// more than 8 digits between commas, or an empty group is an error that
// quotes the mask.
func CPUsFromMask(mask string) ([]int, error) {
	m := strings.TrimSpace(mask)
	if m == "" {
		return nil, fmt.Errorf("cpu mask %q: empty", mask)
	}
	groups := strings.Split(m, ",")
	var digits strings.Builder
	for i, g := range groups {
		if g == "" {
			return nil, fmt.Errorf("cpu mask %q: empty group", mask)
		}
		if len(groups) > 1 && len(g) > 8 {
			return nil, fmt.Errorf("cpu mask %q: group %q is wider than 32 bits", mask, g)
		}
		if len(groups) > 1 && i > 0 {
			digits.WriteString(strings.Repeat("0", 8-len(g)))
		}
		digits.WriteString(g)
	}
	hex := digits.String()
	if len(hex)*4 > maxMaskBits {
		return nil, fmt.Errorf("cpu mask %q: wider than %d bits", mask, maxMaskBits)
	}
	cpus := []int{}
	for i := len(hex) - 1; i >= 0; i-- {
		v, err := strconv.ParseUint(hex[i:i+1], 16, 8)
		if err != nil {
			return nil, fmt.Errorf("cpu mask %q: %q is not a hex digit", mask, hex[i:i+1])
		}
		base := (len(hex) - 1 - i) * 4
		for v != 0 {
			b := bits.TrailingZeros64(v)
			cpus = append(cpus, base+b)
			v &^= 1 << b
		}
	}
	slices.Sort(cpus)
	return cpus, nil
}

// Channels are a NIC's queue counts as ethtool -l shows them: the current
// counts and the driver's maxima (read only, ignored by WriteChannels).
type Channels struct {
	RX, TX, Other, Combined             uint32
	MaxRX, MaxTX, MaxOther, MaxCombined uint32
}

const (
	ethtoolGChannels = 0x3c // ETHTOOL_GCHANNELS
	ethtoolSChannels = 0x3d // ETHTOOL_SCHANNELS
)

// ethtoolChannels is struct ethtool_channels from linux/ethtool.h.
type ethtoolChannels struct {
	Cmd                                 uint32
	MaxRX, MaxTX, MaxOther, MaxCombined uint32
	RX, TX, Other, Combined             uint32
}

// ethtoolIfreq is struct ifreq with ifr_data (40 bytes on 64-bit).
type ethtoolIfreq struct {
	Name [unix.IFNAMSIZ]byte
	Data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

// ReadChannels reads iface's channel counts with the SIOCETHTOOL ioctl
// (ETHTOOL_GCHANNELS) on an AF_INET datagram socket, in the calling
// thread's network namespace. A driver without channel support gives a
// *hal.NotSupportedError that also wraps EOPNOTSUPP; an unknown
// interface an error wrapping ENODEV.
func ReadChannels(iface string) (Channels, error) {
	ec := ethtoolChannels{Cmd: ethtoolGChannels}
	if err := ethtoolIoctl(iface, &ec); err != nil {
		return Channels{}, fmt.Errorf("ethtool get channels of %s: %w", iface, err)
	}
	return Channels{
		RX: ec.RX, TX: ec.TX, Other: ec.Other, Combined: ec.Combined,
		MaxRX: ec.MaxRX, MaxTX: ec.MaxTX, MaxOther: ec.MaxOther, MaxCombined: ec.MaxCombined,
	}, nil
}

// WriteChannels sets iface's RX, TX, Other and Combined channel counts with
// SIOCETHTOOL (ETHTOOL_SCHANNELS), as `ethtool -L` does; the Max fields are
// ignored. Counts above the driver's maxima are rejected before the ioctl
// with an error wrapping EINVAL that names both. Errors are those of
// ReadChannels, plus EINVAL/EBUSY from the driver. Needs CAP_NET_ADMIN.
func WriteChannels(iface string, ch Channels) error {
	cur, err := ReadChannels(iface)
	if err != nil {
		return err
	}
	for _, c := range []struct {
		name     string
		val, max uint32
	}{{"rx", ch.RX, cur.MaxRX}, {"tx", ch.TX, cur.MaxTX}, {"other", ch.Other, cur.MaxOther}, {"combined", ch.Combined, cur.MaxCombined}} {
		if c.val > c.max {
			return fmt.Errorf("ethtool set channels of %s: %s %d exceeds the maximum %d: %w", iface, c.name, c.val, c.max, unix.EINVAL)
		}
	}
	ec := ethtoolChannels{Cmd: ethtoolSChannels, RX: ch.RX, TX: ch.TX, Other: ch.Other, Combined: ch.Combined}
	if err := ethtoolIoctl(iface, &ec); err != nil {
		return fmt.Errorf("ethtool set channels of %s to rx %d tx %d other %d combined %d: %w",
			iface, ch.RX, ch.TX, ch.Other, ch.Combined, err)
	}
	return nil
}

func ethtoolIoctl(iface string, ec *ethtoolChannels) error {
	if err := validIfName(iface); err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	defer func() { _ = unix.Close(fd) }()
	var ifr ethtoolIfreq
	copy(ifr.Name[:], iface)
	ifr.Data = unsafe.Pointer(ec)
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	if errno != 0 {
		if errno == unix.EOPNOTSUPP {
			return fmt.Errorf("%w: %w", &hal.NotSupportedError{
				What:   "ethtool channels",
				Reason: "driver of " + iface + " does not report channels",
			}, errno)
		}
		return errno
	}
	return nil
}

// validIfName applies the kernel's dev_valid_name: 1 to 15 bytes, not "."
// or "..", no '/', ':' or white space.
func validIfName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("interface name is empty: %w", unix.EINVAL)
	case len(name) >= unix.IFNAMSIZ:
		return fmt.Errorf("interface name %q is longer than %d bytes: %w", name, unix.IFNAMSIZ-1, unix.EINVAL)
	case name == "." || name == "..":
		return fmt.Errorf("interface name %q is not allowed: %w", name, unix.EINVAL)
	case strings.ContainsAny(name, "/: \t\n\v\f\r"):
		return fmt.Errorf("interface name %q contains '/', ':' or white space: %w", name, unix.EINVAL)
	}
	return nil
}
