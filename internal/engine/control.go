package engine

import (
	"context"
	"errors"
	"fmt"
)

// ErrUnknownWorkload is returned (wrapped) by RevertWorkload for a workload
// the engine has changed nothing of.
var ErrUnknownWorkload = errors.New("unknown workload")

// Mode returns the mode in force.
func (e *Engine) Mode() Mode { return e.opts.Mode }

// SetMode changes what the engine does with its plans from the next Step.
// Leaving apply undoes, through the HAL, everything the engine applied
// (returned), so that advise and observe plan against the machine as it
// was. Apply needs the HAL the engine was built with.
func (e *Engine) SetMode(ctx context.Context, m Mode) ([]AppliedAction, error) {
	switch m {
	case ModeObserve, ModeAdvise, ModeApply:
	default:
		return nil, fmt.Errorf("mode %q: want observe, advise or apply", m)
	}
	if m == ModeApply && e.opts.HAL == nil {
		return nil, errors.New("mode apply: the engine has no HAL to apply through")
	}
	if m == e.opts.Mode {
		return nil, nil
	}
	var undone []AppliedAction
	if e.opts.Mode == ModeApply {
		st := &Step{}
		for _, id := range sortedIDs(e.ledger) {
			e.undoWorkload(ctx, st, id, "", "undone", fmt.Sprintf("mode changed from apply to %s", m))
		}
		undone = st.Undone
	}
	e.audit(AuditRecord{Event: "mode", Reason: fmt.Sprintf("mode %s -> %s", e.opts.Mode, m)})
	e.opts.Mode = m
	return undone, nil
}

// RevertWorkload undoes, newest first and through the HAL, everything the
// engine applied to workload id; ErrUnknownWorkload when it applied
// nothing to it.
func (e *Engine) RevertWorkload(ctx context.Context, id, why string) ([]AppliedAction, error) {
	if _, ok := e.ledger[id]; !ok {
		return nil, fmt.Errorf("revert %q: %w: sculpt changed nothing of it", id, ErrUnknownWorkload)
	}
	st := &Step{}
	e.undoWorkload(ctx, st, id, "", "undone", why)
	return st.Undone, nil
}

// Arranged returns the IDs of the workloads the engine has changes applied
// to, sorted.
func (e *Engine) Arranged() []string { return sortedIDs(e.ledger) }

// SetConfig replaces the engine's config (a reload) from the next Step:
// objectives, metrics, guard limits, rollback. The agent keeps the
// settings it was built with. cfg must have passed ParseConfig.
func (e *Engine) SetConfig(cfg Config) {
	e.opts.Config = cfg
	e.guard.cfg = cfg
	e.audit(AuditRecord{Event: "config", Reason: "config reloaded"})
}
