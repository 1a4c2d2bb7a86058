package main

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"

	nrilog "github.com/containerd/nri/pkg/log"

	"sculpt/internal/engine"
	"sculpt/internal/hal/topology"
	"sculpt/internal/nri"
)

// nriBridge hands the engine's decisions for containers to sculpt's NRI
// plugin, which applies them through the container runtime.
type nriBridge struct {
	log    *slog.Logger
	p      *nri.Plugin
	mem    *nri.Memory
	topo   *topology.Topology
	socket string
	closed atomic.Bool
}

// startNRI registers sculpt as an NRI plugin with the runtime serving
// socket.
func startNRI(ctx context.Context, log *slog.Logger, socket string, topo *topology.Topology) (*nriBridge, error) {
	nrilog.Set(nriLogger{log})
	b := &nriBridge{log: log, mem: nri.NewMemory(), topo: topo, socket: socket}
	p, err := nri.New(b.mem.Arrange, nri.Options{Socket: socket, OnClose: func() { b.closed.Store(true) }})
	if err != nil {
		return nil, err
	}
	b.p = p
	if err := p.Start(ctx); err != nil {
		return nil, fmt.Errorf("--nri: %w (is NRI enabled in the runtime? containerd 2.x serves %s)", err, nri.DefaultSocket)
	}
	log.Info("registered with the container runtime through NRI: containers' CPUs, CPU weight and quota are applied through it", "socket", socket)
	return b, nil
}

// apply records the step's decisions for containers and sends the
// runtime the updates they make.
func (b *nriBridge) apply(ctx context.Context, step *engine.Step) {
	if b == nil || step == nil {
		return
	}
	if b.closed.Load() {
		if err := b.p.Start(ctx); err != nil {
			b.log.Warn("NRI connection lost; reconnecting failed: container arrangements wait", "socket", b.socket, "err", err)
			return
		}
		b.closed.Store(false)
		b.log.Info("NRI connection re-established", "socket", b.socket)
	}
	current := map[string]nri.Arrangement{}
	kinds := map[string]string{}
	for _, d := range step.Plan.Decisions {
		prefix, ok := strings.CutPrefix(d.Workload, "ctr:")
		if !ok {
			continue
		}
		current[prefix] = nri.FromDecision(d, b.topo)
		if c, ok := b.p.Lookup(prefix); ok {
			kinds[prefix] = c.Kind
		}
	}
	b.mem.Set(current, kinds)
	ups, err := b.p.Refresh()
	if err != nil {
		b.log.Warn("NRI container updates", "err", err)
	}
	for _, u := range ups {
		b.log.Info("container updated through NRI", "container", u.GetContainerId(), "cpus", u.GetLinux().GetResources().GetCpu().GetCpus())
	}
}

// stop disconnects from the runtime (containers keep their settings).
func (b *nriBridge) stop() {
	if b != nil {
		b.p.Stop()
	}
}

// nriLogger sends the NRI library's log lines to sculpt's logger: its
// routine messages at debug level, warnings and errors as such.
type nriLogger struct{ log *slog.Logger }

func (l nriLogger) Debugf(ctx context.Context, format string, args ...any) {
	l.log.DebugContext(ctx, "nri: "+fmt.Sprintf(format, args...))
}

func (l nriLogger) Infof(ctx context.Context, format string, args ...any) {
	l.log.DebugContext(ctx, "nri: "+fmt.Sprintf(format, args...))
}

func (l nriLogger) Warnf(ctx context.Context, format string, args ...any) {
	l.log.WarnContext(ctx, "nri: "+fmt.Sprintf(format, args...))
}

func (l nriLogger) Errorf(ctx context.Context, format string, args ...any) {
	l.log.ErrorContext(ctx, "nri: "+fmt.Sprintf(format, args...))
}
