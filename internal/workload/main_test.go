package workload

import (
	"os"
	"testing"

	"sculpt/internal/testload"
)

func TestMain(m *testing.M) {
	maybeSpawn()
	testload.MaybeRun()
	os.Exit(m.Run())
}
