//go:build !linux || !amd64

package telemetry

import (
	"context"
	"runtime"

	"sculpt/internal/host"
)

// EBPFCollector is only built on linux/amd64 (its syscall table is x86_64's).
type EBPFCollector struct{}

// NewEBPFCollector returns a *NotSupportedError on this platform.
func NewEBPFCollector(EBPFOptions) (*EBPFCollector, error) {
	return nil, &NotSupportedError{Source: "ebpf", Reason: "eBPF collector is built for linux/amd64 only, not " + runtime.GOOS + "/" + runtime.GOARCH}
}

// Name returns "ebpf".
func (c *EBPFCollector) Name() string { return "ebpf" }

// Collect does nothing.
func (c *EBPFCollector) Collect(context.Context, *Sample) error { return nil }

// Close does nothing.
func (c *EBPFCollector) Close() error { return nil }

// Stats is empty.
func (c *EBPFCollector) Stats() EBPFStats { return EBPFStats{} }

func probeEBPF(host.Roots) SourceStatus {
	return SourceStatus{Name: "ebpf", Reason: "eBPF collector is built for linux/amd64 only, not " + runtime.GOOS + "/" + runtime.GOARCH}
}

// MeasureEBPFOverhead returns a *NotSupportedError on this platform.
func MeasureEBPFOverhead(context.Context, EBPFBenchOptions) (EBPFOverhead, error) {
	_, err := NewEBPFCollector(EBPFOptions{})
	return EBPFOverhead{}, err
}
