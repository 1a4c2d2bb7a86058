package telemetry

import (
	"os"
	"testing"

	"sculpt/internal/testload"
)

func TestMain(m *testing.M) { testload.MaybeRun(); os.Exit(m.Run()) }
