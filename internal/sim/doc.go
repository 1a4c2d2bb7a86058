// Package sim is a modelled server for sculpt's engine: a topology (sockets,
// NUMA nodes, cores with SMT siblings, shared last-level caches, memory
// bandwidth per node, a NIC with its interrupts), modelled workloads with
// demands that change in phases, a performance model that turns an
// arrangement into each workload's latency, throughput and hardware
// counters, a HAL (Server) the real engine applies its actions to, frames of
// telemetry in the schema of internal/telemetry, scenarios from YAML, and an
// oracle that searches the arrangements for the best one.
//
// It exists for what the development machine lacks (several NUMA nodes,
// hardware counters, devices worth arranging) and to measure the engine
// against the best it could do. Everything it reports is simulated and says
// so. It never touches the machine it runs on and is not imported by the
// real path (only cmd/sculpt's sim and bench engine commands use it). Every
// result is a function of the scenario and its seed.
//
// The model and the source of every parameter are in docs/sim.md.
package sim
