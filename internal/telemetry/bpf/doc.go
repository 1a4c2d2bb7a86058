// Package bpf holds sculpt's eBPF programs and the Go bindings bpf2go
// generates for them. The C source is csrc/sculpt.bpf.c (in a subdirectory
// so that cgo-less builds of this package accept it); the compiled object
// sculpt_x86_bpfel.o is committed so that building sculpt needs no clang.
// Regenerate after editing the C source:
//
//	go generate ./internal/telemetry/bpf
//
// which needs clang and the libbpf headers (Debian: clang llvm libbpf-dev).
// The telemetry package's eBPF collector loads and attaches the programs.
package bpf

//go:generate go run github.com/cilium/ebpf/cmd/bpf2go@v0.22.0 -target amd64 -cc clang -cflags "-O2 -g -Wall -D__TARGET_ARCH_x86" Sculpt csrc/sculpt.bpf.c
