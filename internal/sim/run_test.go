package sim

import (
	"context"
	"testing"
)

func TestRunPolicies(t *testing.T) {
	sc := Random(3)
	for _, p := range Policies {
		r, err := Run(context.Background(), sc, p, 40)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		t.Logf("%s %s: mean %.3f violations %d actions %d", sc.Topology, p, r.MeanReward, r.Violations, r.Actions)
	}
}
