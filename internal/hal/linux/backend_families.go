package linux

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"sculpt/internal/hal"
)

// This file wires the memory (memory.go) and network (irq.go, netdev.go,
// sriov.go, vnic.go) families to hal actions: each prepare reads the
// current value through the family's Read function and plans the Write.

// prepareFamily plans the actions implemented by the memory and network
// files of this package.
func (b *Backend) prepareFamily(a hal.Action) (plan, error) {
	switch a := a.(type) {
	case hal.MemMigrate:
		return b.prepareMemMigrate(a)
	case hal.IRQAffinity:
		old, err := ReadIRQAffinity(b.roots, a.IRQ)
		if err != nil {
			return plan{}, err
		}
		return plan{undo: hal.IRQAffinity{IRQ: a.IRQ, CPUs: old}, do: func(context.Context) error {
			return WriteIRQAffinity(b.roots, a.IRQ, a.CPUs)
		}}, nil
	case hal.QueueMask:
		kind := QueueRPS
		if a.Type == hal.QueueXPS {
			kind = QueueXPS
		}
		old, err := ReadQueueMask(b.roots, a.Iface, kind, a.Queue)
		if err != nil {
			return plan{}, err
		}
		undo := a
		undo.Mask = old
		return plan{undo: undo, do: func(context.Context) error {
			return WriteQueueMask(b.roots, a.Iface, kind, a.Queue, a.Mask)
		}}, nil
	case hal.Channels:
		cur, err := ReadChannels(a.Iface)
		if err != nil {
			return plan{}, err
		}
		undo := hal.Channels{Iface: a.Iface}
		next := cur
		set := func(want *int, field *uint32, old **int) {
			if want != nil {
				v := int(*field)
				*old = &v
				*field = uint32(*want)
			}
		}
		set(a.Combined, &next.Combined, &undo.Combined)
		set(a.RX, &next.RX, &undo.RX)
		set(a.TX, &next.TX, &undo.TX)
		return plan{undo: undo, do: func(context.Context) error { return WriteChannels(a.Iface, next) }}, nil
	case hal.SetVFs:
		old, err := ReadNumVFs(b.roots, a.PCIAddr)
		if err != nil {
			return plan{}, err
		}
		return plan{undo: hal.SetVFs{PCIAddr: a.PCIAddr, Count: old}, do: func(context.Context) error {
			return WriteNumVFs(b.roots, a.PCIAddr, a.Count)
		}}, nil
	case hal.CreateVNIC:
		s := a.Spec
		return plan{undo: hal.DeleteVNIC{Netns: s.Netns, Name: s.Name}, do: func(context.Context) error {
			return CreateVNIC(VNICSpec{Kind: s.Kind, Name: s.Name, Peer: s.Peer, PeerNetns: s.PeerNetns,
				Parent: s.Parent, Queues: s.Queues, Netns: s.Netns, Mode: s.Mode, MTU: s.MTU})
		}}, nil
	case hal.DeleteVNIC:
		list, err := ListVNICs(a.Netns)
		if err != nil {
			return plan{}, err
		}
		i := slices.IndexFunc(list, func(s VNICSpec) bool { return s.Name == a.Name })
		if i < 0 {
			// Not a virtual NIC: either it is gone (a revert after a crash:
			// nothing to do) or it is a physical or loopback interface,
			// which sculpt never deletes.
			exists, err := VNICExists(a.Netns, a.Name)
			if err != nil {
				return plan{}, err
			}
			if exists {
				return plan{}, fmt.Errorf("delete %s: not a virtual interface sculpt may remove: %w", a.Name, unix.EPERM)
			}
			return plan{undo: hal.Steps{}, do: func(context.Context) error { return nil }}, nil
		}
		s := list[i]
		undo := hal.CreateVNIC{Spec: hal.VNICSpec{Kind: s.Kind, Name: s.Name, Peer: s.Peer, PeerNetns: s.PeerNetns,
			Parent: s.Parent, Queues: s.Queues, Netns: s.Netns, Mode: s.Mode, MTU: s.MTU}}
		return plan{undo: undo, do: func(context.Context) error {
			_, err := DeleteVNIC(a.Netns, a.Name)
			if errors.Is(err, unix.ENODEV) {
				return nil
			}
			return err
		}}, nil
	}
	return plan{}, fmt.Errorf("apply %s: no Linux implementation", a.Kind())
}

// prepareMemMigrate reads where the process's pages are (numa_maps) and
// plans the move. The undo moves the pages back to the node that held most
// of them: page-by-page placement across several nodes is not restored.
//
// A chunked move that moved some pages and not others (busy, pinned, or
// shared pages with Shared set) succeeds with a note counting them: page
// placement is best effort, and failing would leave the journal entry
// pending and fail the exit revert over a few pages. A move where pages
// failed and none moved is an error. A move that fails half way (the target
// cannot be read, the call errs) is left for revert (the pages are split),
// so the journal keeps it pending.
func (b *Backend) prepareMemMigrate(a hal.MemMigrate) (plan, error) {
	counts, err := PageNodes(a.PID, b.roots)
	if err != nil {
		if _, gerr := processIdentity(b.roots, a.PID); errors.Is(gerr, hal.ErrGone) {
			return plan{}, gerr
		}
		return plan{}, err
	}
	home, most := -1, -1
	for n, c := range counts {
		if c > most || (c == most && n < home) {
			home, most = n, c
		}
	}
	if home < 0 {
		home = b.nodes[0]
	}
	undo := hal.MemMigrate{PID: a.PID, FromNodes: a.ToNodes, ToNodes: []int{home}, Chunked: a.Chunked, Shared: a.Shared}
	from := a.FromNodes
	if len(from) == 0 {
		from = b.nodes
	}
	var note string
	return plan{undo: undo, note: func() string { return note }, do: func(ctx context.Context) error {
		var err error
		if a.Chunked {
			var st MoveStats
			st, err = MovePages(ctx, a.PID, a.ToNodes[0], MoveOptions{Shared: a.Shared})
			note = moveNote(st)
			if err == nil && st.Failed > 0 && st.Moved == 0 {
				return fmt.Errorf("move pages of pid %d to node %d: none of %d pages could be moved (errno counts %v)", a.PID, a.ToNodes[0], st.Failed, st.Errors)
			}
		} else {
			var left int
			left, err = MigrateProcess(a.PID, from, a.ToNodes)
			if err == nil && left > 0 {
				note = fmt.Sprintf("%d pages could not be moved", left)
			}
		}
		if err == nil {
			return nil
		}
		if errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("%w: %w", err, hal.ErrGone)
		}
		return &partialError{err: err, rollback: errors.New("pages may be split between nodes")}
	}}, nil
}

// moveNote says what a move left behind: pages that could not move and
// shared pages left in place; "" when every page moved.
func moveNote(st MoveStats) string {
	var parts []string
	if st.Failed > 0 {
		errs := make([]string, 0, len(st.Errors))
		for _, e := range slices.Sorted(maps.Keys(st.Errors)) {
			errs = append(errs, fmt.Sprintf("%s %d", unix.ErrnoName(unix.Errno(e)), st.Errors[e]))
		}
		parts = append(parts, fmt.Sprintf("%d of %d pages could not be moved (%s)", st.Failed, st.Pages, strings.Join(errs, ", ")))
	}
	if st.Shared > 0 {
		parts = append(parts, fmt.Sprintf("%d pages mapped by other processes too left in place", st.Shared))
	}
	if len(parts) == 0 {
		return ""
	}
	return fmt.Sprintf("moved %d pages; ", st.Moved) + strings.Join(parts, "; ")
}
