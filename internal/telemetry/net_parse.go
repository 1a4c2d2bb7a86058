package telemetry

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
)

// netDevTotals sums /proc/PID/net/dev over the non-loopback interfaces.
type netDevTotals struct{ rxBytes, txBytes uint64 }

// parseNetDev parses /proc/PID/net/dev: two header lines, then
// "  eth0: rxbytes rxpackets ... (8 receive fields) txbytes ...".
// The loopback interface "lo" is left out.
func parseNetDev(b []byte) (netDevTotals, error) {
	var t netDevTotals
	for n, line := range bytes.Split(b, []byte{'\n'}) {
		if n < 2 || len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		name, rest, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return t, fmt.Errorf("line %d: no \"iface:\" in %q", n+1, truncate(line))
		}
		f := bytes.Fields(rest)
		if len(f) < 16 {
			return t, fmt.Errorf("line %d: %d fields, want 16", n+1, len(f))
		}
		if string(bytes.TrimSpace(name)) == "lo" {
			continue
		}
		rx, err1 := strconv.ParseUint(string(f[0]), 10, 64)
		tx, err2 := strconv.ParseUint(string(f[8]), 10, 64)
		if err1 != nil || err2 != nil {
			return t, fmt.Errorf("line %d: bytes %q/%q are not unsigned numbers", n+1, f[0], f[8])
		}
		t.rxBytes += rx
		t.txBytes += tx
	}
	return t, nil
}

// sockKind classifies a socket inode.
type sockKind uint8

const (
	sockTCP sockKind = iota + 1
	sockUDP
	sockUnix
)

// sockInfo is one socket of a network namespace's tables.
type sockInfo struct {
	kind          sockKind
	state         uint8 // TCP state (1 established, 10 listen)
	queue         uint64
	local, remote netip.AddrPort // tcp/udp only, IPv4-mapped addresses unmapped
}

// tcpListen is the TCP_LISTEN state in /proc/net/tcp.
const tcpListen = 0x0A

// parseInetSockets parses /proc/PID/net/{tcp,tcp6,udp,udp6}:
//
//	sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...
//
// calling fn for each socket with a non-zero inode (TIME_WAIT entries have
// none).
func parseInetSockets(b []byte, kind sockKind, fn func(inode uint64, si sockInfo)) error {
	for n, line := range bytes.Split(b, []byte{'\n'}) {
		if n == 0 || len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f := bytes.Fields(line)
		if len(f) < 10 {
			return fmt.Errorf("line %d: %d fields, want at least 10", n+1, len(f))
		}
		inode, err := strconv.ParseUint(string(f[9]), 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: inode %q is not a number", n+1, f[9])
		}
		if inode == 0 {
			continue
		}
		local, err := parseHexAddrPort(f[1])
		if err != nil {
			return fmt.Errorf("line %d: local address: %w", n+1, err)
		}
		remote, err := parseHexAddrPort(f[2])
		if err != nil {
			return fmt.Errorf("line %d: remote address: %w", n+1, err)
		}
		st, err := strconv.ParseUint(string(f[3]), 16, 8)
		if err != nil {
			return fmt.Errorf("line %d: state %q is not hex", n+1, f[3])
		}
		txs, rxs, ok := bytes.Cut(f[4], []byte{':'})
		tx, err1 := strconv.ParseUint(string(txs), 16, 64)
		rx, err2 := strconv.ParseUint(string(rxs), 16, 64)
		if !ok || err1 != nil || err2 != nil {
			return fmt.Errorf("line %d: queues %q, want hex tx:rx", n+1, f[4])
		}
		fn(inode, sockInfo{kind: kind, state: uint8(st), queue: tx + rx, local: local, remote: remote})
	}
	return nil
}

// parseHexAddrPort parses the kernel's "0100007F:1F90" (IPv4, one
// host-order word) or 32-hex-digit IPv6 (four host-order words) endpoint.
func parseHexAddrPort(b []byte) (netip.AddrPort, error) {
	a, p, ok := bytes.Cut(b, []byte{':'})
	if !ok {
		return netip.AddrPort{}, fmt.Errorf("%q: want ADDR:PORT", b)
	}
	port, err := strconv.ParseUint(string(p), 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: bad port", b)
	}
	var raw [16]byte
	if len(a) != 8 && len(a) != 32 {
		return netip.AddrPort{}, fmt.Errorf("%q: address of %d hex digits", b, len(a))
	}
	n, err := hex.Decode(raw[:], a)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("%q: %w", b, err)
	}
	// Each 32-bit word is in host order: turn it to network order.
	for w := 0; w < n; w += 4 {
		binary.BigEndian.PutUint32(raw[w:], binary.NativeEndian.Uint32(raw[w:]))
	}
	var addr netip.Addr
	if n == 4 {
		addr = netip.AddrFrom4([4]byte(raw[:4]))
	} else {
		addr = netip.AddrFrom16(raw).Unmap()
	}
	return netip.AddrPortFrom(addr, uint16(port)), nil
}

// parseUnixSockets parses /proc/PID/net/unix
// ("Num RefCount Protocol Flags Type St Inode [Path]") and calls fn with
// each inode.
func parseUnixSockets(b []byte, fn func(inode uint64)) error {
	for n, line := range bytes.Split(b, []byte{'\n'}) {
		if n == 0 || len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		f := bytes.Fields(line)
		if len(f) < 7 {
			return fmt.Errorf("line %d: %d fields, want at least 7", n+1, len(f))
		}
		inode, err := strconv.ParseUint(string(f[6]), 10, 64)
		if err != nil {
			return fmt.Errorf("line %d: inode %q is not a number", n+1, f[6])
		}
		fn(inode)
	}
	return nil
}

// parseFDLink classifies a /proc/PID/fd link: "socket:[123]" or
// "pipe:[456]". Anything else returns kind 0.
func parseFDLink(l []byte) (kind byte, inode uint64) {
	var rest []byte
	switch {
	case bytes.HasPrefix(l, []byte("socket:[")):
		kind, rest = 's', l[len("socket:["):]
	case bytes.HasPrefix(l, []byte("pipe:[")):
		kind, rest = 'p', l[len("pipe:["):]
	default:
		return 0, 0
	}
	if len(rest) < 2 || rest[len(rest)-1] != ']' {
		return 0, 0
	}
	v, err := strconv.ParseUint(string(rest[:len(rest)-1]), 10, 64)
	if err != nil {
		return 0, 0
	}
	return kind, v
}

// parseNSLink returns the inode of a namespace link ("net:[4026531840]").
func parseNSLink(l string) (uint64, bool) {
	i := bytes.IndexByte([]byte(l), '[')
	if i < 0 || len(l) < i+3 || l[len(l)-1] != ']' {
		return 0, false
	}
	v, err := strconv.ParseUint(l[i+1:len(l)-1], 10, 64)
	return v, err == nil
}
