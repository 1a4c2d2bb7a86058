package engine

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ConfigVersion is the config file format this code reads.
const ConfigVersion = 1

// Config tunes the engine; docs/config.md documents every field. The zero
// value is not valid: start from DefaultConfig.
type Config struct {
	Version int `yaml:"version"`
	// Hysteresis: intervals a workload must match the same rule (and want
	// the same arrangement) before sculpt acts, and stop matching before
	// sculpt undoes what it did.
	Hysteresis int `yaml:"hysteresis"`
	// Release: intervals an arranged workload must match no rule before
	// what sculpt did to it is undone (at least Hysteresis). Longer than
	// Hysteresis, because an arrangement changes the genes that led to it:
	// an I/O writer in the idle class may write less for a while.
	Release int `yaml:"release"`
	// Cooldown: intervals after changing a workload's arrangement before it
	// may be changed to a different one.
	Cooldown int `yaml:"cooldown"`
	// Budget: actions applied per interval at most, over all workloads.
	Budget int `yaml:"budget"`
	// ReserveSharedCPUs: CPUs never dedicated to anyone (at least 1).
	ReserveSharedCPUs int `yaml:"reserve_shared_cpus"`
	// MigrateMiB: MiB of memory sculpt moves between NUMA nodes per
	// interval at most, over all workloads (0: no limit). A move that does
	// not fit waits for a later interval; the first of an interval goes
	// even when larger.
	MigrateMiB int            `yaml:"migrate_mib_per_interval"`
	Rollback   RollbackConfig `yaml:"rollback"`
	PingPong   PingPongConfig `yaml:"ping_pong"`
	Protected  Protected      `yaml:"protected"`
	Metrics    []MetricConfig `yaml:"metrics"`
	Objectives []Objective    `yaml:"objectives"`
	Agent      AgentConfig    `yaml:"agent"`
}

// RollbackConfig says when a change is judged and undone.
type RollbackConfig struct {
	// After: intervals after a change before its reward is compared with
	// the reward before it.
	After int `yaml:"after"`
	// Tolerance: how much a latency reward may drop (absolute) before the
	// change is undone.
	Tolerance float64 `yaml:"tolerance"`
	// ProgressFloor: a workload demoted on purpose (shared cores, batch)
	// is rolled back only when its CPU progress falls below this fraction
	// of what it had before.
	ProgressFloor float64 `yaml:"progress_floor"`
}

// PingPongConfig says when a workload that keeps being undone and redone
// is frozen.
type PingPongConfig struct {
	Flips  int `yaml:"flips"`  // redos (after an undo) that freeze it
	Window int `yaml:"window"` // within this many intervals
}

// Protected lists what sculpt never touches, beyond PID 1, kernel threads
// and sculpt itself.
type Protected struct {
	PIDs      []int    `yaml:"pids"`
	Names     []string `yaml:"names"`     // workload names or process comms (glob)
	Workloads []string `yaml:"workloads"` // workload IDs (glob), e.g. unit:sshd.service
	Cgroups   []string `yaml:"cgroups"`   // cgroup path prefixes, e.g. /system.slice
	// Ancestors protects the workloads holding the processes that started
	// sculpt (its shell, terminal multiplexer, ssh session or supervisor);
	// default true.
	Ancestors bool `yaml:"ancestors"`
}

// MetricConfig names a workload's own metric to scrape for its reward.
type MetricConfig struct {
	Workload string            `yaml:"workload"` // workload name or ID (glob)
	URL      string            `yaml:"url"`      // Prometheus text endpoint
	Metric   string            `yaml:"metric"`   // metric name
	Labels   map[string]string `yaml:"labels"`   // labels the sample must have
	Target   float64           `yaml:"target"`   // e.g. 0.001 (seconds)
	Better   string            `yaml:"better"`   // lower (default) or higher
}

// DefaultConfig is the configuration used without --config; a config file
// overrides only the fields it sets.
func DefaultConfig() Config {
	return Config{
		Version:           ConfigVersion,
		Hysteresis:        2,
		Release:           5,
		Cooldown:          3,
		Budget:            32,
		ReserveSharedCPUs: 1,
		MigrateMiB:        256,
		Rollback:          RollbackConfig{After: 2, Tolerance: 0.25, ProgressFloor: 0.4},
		PingPong:          PingPongConfig{Flips: 2, Window: 30},
		Protected:         Protected{Ancestors: true},
		Agent:             AgentConfig{Levels: 10, Judge: 3, StepBack: 2, ProbeEvery: 20, Slack: 0.1, MinGain: 0.1, FloorCPU: 0.05, FloorIOMBps: 1},
	}
}

// ConfigError names the field of a config file that is wrong.
type ConfigError struct {
	Source string
	Field  string
	Line   int
	Reason string
}

func (e *ConfigError) Error() string {
	loc := e.Source
	if e.Line > 0 {
		loc = fmt.Sprintf("%s:%d", e.Source, e.Line)
	}
	if e.Field == "" {
		return fmt.Sprintf("config %s: %s", loc, e.Reason)
	}
	return fmt.Sprintf("config %s: %s: %s", loc, e.Field, e.Reason)
}

// ParseConfig reads a config file over DefaultConfig and validates it. An
// unknown field, a wrong type or a bad value is a *ConfigError (errors
// joined when there are several) naming the field.
func ParseConfig(source string, data []byte) (Config, error) {
	cfg := DefaultConfig()
	var probe yaml.Node
	if err := yaml.Unmarshal(data, &probe); err != nil {
		line, msg := yamlSyntaxError(data, err)
		return cfg, &ConfigError{Source: source, Line: line, Reason: "not valid YAML: " + msg}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			byLine := map[int]string{}
			for f, l := range fieldLines(&probe) {
				if prev, ok := byLine[l]; !ok || len(f) > len(prev) {
					byLine[l] = f
				}
			}
			var errs []error
			for _, msg := range te.Errors {
				ce := &ConfigError{Source: source, Reason: strings.Replace(msg, "engine.", "", 1)}
				var line int
				if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil {
					ce.Line, ce.Field = line, byLine[line]
					ce.Reason = strings.TrimSpace(strings.SplitN(ce.Reason, ":", 2)[1])
				}
				errs = append(errs, ce)
			}
			return cfg, errors.Join(errs...)
		}
		return cfg, &ConfigError{Source: source, Reason: err.Error()}
	}
	lines := fieldLines(&probe)
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, &ConfigError{Source: source, Field: field, Line: lines[field], Reason: fmt.Sprintf(format, args...)})
	}
	if cfg.Version != ConfigVersion {
		bad("version", "%d: this sculpt reads version %d", cfg.Version, ConfigVersion)
	}
	if cfg.Hysteresis < 1 {
		bad("hysteresis", "%d: want at least 1 interval", cfg.Hysteresis)
	}
	if cfg.Release < cfg.Hysteresis {
		bad("release", "%d: want at least hysteresis (%d) intervals", cfg.Release, cfg.Hysteresis)
	}
	if cfg.Cooldown < 0 {
		bad("cooldown", "%d: want 0 or more intervals", cfg.Cooldown)
	}
	if cfg.Budget < 1 {
		bad("budget", "%d: want at least 1 action per interval", cfg.Budget)
	}
	if cfg.ReserveSharedCPUs < 1 {
		bad("reserve_shared_cpus", "%d: want at least 1 (sculpt never gives away every CPU)", cfg.ReserveSharedCPUs)
	}
	if cfg.MigrateMiB < 0 {
		bad("migrate_mib_per_interval", "%d: want 0 (no limit) or more MiB", cfg.MigrateMiB)
	}
	if cfg.Rollback.After < 1 {
		bad("rollback.after", "%d: want at least 1 interval", cfg.Rollback.After)
	}
	if cfg.Rollback.Tolerance < 0 {
		bad("rollback.tolerance", "%g: want 0 or more", cfg.Rollback.Tolerance)
	}
	if cfg.Rollback.ProgressFloor < 0 || cfg.Rollback.ProgressFloor > 1 {
		bad("rollback.progress_floor", "%g: want a fraction 0..1", cfg.Rollback.ProgressFloor)
	}
	if cfg.PingPong.Flips < 1 {
		bad("ping_pong.flips", "%d: want at least 1", cfg.PingPong.Flips)
	}
	if cfg.PingPong.Window < 1 {
		bad("ping_pong.window", "%d: want at least 1 interval", cfg.PingPong.Window)
	}
	for i, p := range cfg.Protected.PIDs {
		if p <= 0 {
			bad(fmt.Sprintf("protected.pids[%d]", i), "%d: want a positive PID", p)
		}
	}
	for i, g := range append(append([]string{}, cfg.Protected.Names...), cfg.Protected.Workloads...) {
		if _, err := path.Match(g, ""); err != nil {
			bad("protected", "pattern %d %q: %v", i, g, err)
		}
	}
	for i, c := range cfg.Protected.Cgroups {
		if !strings.HasPrefix(c, "/") {
			bad(fmt.Sprintf("protected.cgroups[%d]", i), "%q: want an absolute cgroup path", c)
		}
	}
	for i, m := range cfg.Metrics {
		f := func(name string) string { return fmt.Sprintf("metrics[%d].%s", i, name) }
		if m.Workload == "" {
			bad(f("workload"), "missing: want the workload's name or ID")
		}
		if u, err := url.Parse(m.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad(f("url"), "%q: want an http(s) URL of a Prometheus text endpoint", m.URL)
		}
		if m.Metric == "" {
			bad(f("metric"), "missing: want a metric name")
		}
		if m.Target <= 0 {
			bad(f("target"), "%g: want a positive target", m.Target)
		}
		switch m.Better {
		case "":
			cfg.Metrics[i].Better = "lower"
		case "lower", "higher":
		default:
			bad(f("better"), "%q: want lower or higher", m.Better)
		}
	}
	validateObjectives(cfg, bad)
	return cfg, errors.Join(errs...)
}

// fieldLines maps dotted field names of a YAML mapping to their lines.
func fieldLines(doc *yaml.Node) map[string]int {
	out := map[string]int{}
	var walk func(n *yaml.Node, prefix string)
	walk = func(n *yaml.Node, prefix string) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, prefix)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := prefix + n.Content[i].Value
				out[k] = n.Content[i].Line
				walk(n.Content[i+1], k+".")
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				k := fmt.Sprintf("%s[%d]", strings.TrimSuffix(prefix, "."), i)
				out[k] = c.Line
				walk(c, k+".")
			}
		}
	}
	walk(doc, "")
	return out
}
