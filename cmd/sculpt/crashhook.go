package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
)

// crashEnv is the fault-injection hook of the crash torture (docs/reliability.md):
// SCULPT_TEST_CRASH_AT=STAGE:N makes sculpt SIGKILL itself the Nth time an
// action reaches STAGE — "recorded" (journaled, not yet changed) or "changed"
// (changed, not yet marked applied). Unset, nothing is hooked.
const crashEnv = "SCULPT_TEST_CRASH_AT"

// parseCrashAt parses the value of $SCULPT_TEST_CRASH_AT.
func parseCrashAt(v string) (stage string, n int64, err error) {
	stage, num, ok := strings.Cut(v, ":")
	if !ok {
		num = "1"
	}
	if stage != "recorded" && stage != "changed" {
		return "", 0, fmt.Errorf("$%s=%q: stage must be recorded or changed", crashEnv, v)
	}
	n, err = strconv.ParseInt(num, 10, 64)
	if err != nil || n < 1 {
		return "", 0, fmt.Errorf("$%s=%q: the count after the colon must be 1 or more", crashEnv, v)
	}
	return stage, n, nil
}

// crashHook returns the backend's Pause hook for $SCULPT_TEST_CRASH_AT, or
// nil when it is unset.
func crashHook() (func(string), error) {
	v := os.Getenv(crashEnv)
	if v == "" {
		return nil, nil
	}
	stage, n, err := parseCrashAt(v)
	if err != nil {
		return nil, usagef("%v", err)
	}
	var seen atomic.Int64
	return func(s string) {
		if s == stage && seen.Add(1) == n {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}, nil
}
