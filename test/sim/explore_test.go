package sim

import (
	"strings"
	"testing"
	"time"
)

func explore(t *testing.T, o ExploreOptions) ExploreResult {
	t.Helper()
	t0 := time.Now()
	res, err := Explore(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d states, %d transitions, depth %d, %v", res.States, res.Transitions, res.MaxDepth, time.Since(t0).Round(time.Millisecond))
	if res.Truncated {
		t.Fatalf("the search hit MaxStates %d", o.MaxStates)
	}
	return res
}

// TestExploreMembership explores every interleaving of the bounded model
// of DESIGN §3–§5 (3 → 4 → 3 acceptors with one disk loss, two proposers
// on one key, messages delayed, reordered, lost, replies lost) and checks
// that no acknowledged value is lost, that acknowledged values form a
// chain (paper, "Cluster membership change") and that nothing of an older
// epoch is accepted after the fence (DESIGN §3).
func TestExploreMembership(t *testing.T) {
	o := ExploreOptions{Keys: 1, Writes: 1, Tries: 1, Proposers: 2, SyncProposer2: true}
	if testing.Short() {
		o.Proposers = 1
	}
	if res := explore(t, o); res.Violation != "" {
		t.Fatalf("%s\n  %s", res.Violation, strings.Join(res.Trace, "\n  "))
	}
}

// TestExploreDiskLossDuringChange lets the disk loss happen at any point
// of the first change (one proposer, to stay in budget).
func TestExploreDiskLossDuringChange(t *testing.T) {
	if res := explore(t, ExploreOptions{Keys: 1, Writes: 1, Tries: 1, Proposers: 1, DiskLossAnytime: true}); res.Violation != "" {
		t.Fatalf("%s\n  %s", res.Violation, strings.Join(res.Trace, "\n  "))
	}
}

// TestExploreBrokenProcedures: the explorer finds a counterexample to a
// fence that waits for a majority (DESIGN §3), to a change without the
// rescan (DESIGN §5) and to a rescan that skips keys agreeing on qa − 1
// members of S. One proposer suffices for each. The majority fence loses
// no acknowledged value in this model now that the rescan touches every
// key (the touch's prepare quorum meets the straddling write's accept
// quorum: it carries the write forward or has the late accept refused);
// what the explorer finds is the broken guarantee itself, an old epoch's
// accept landing after the fence.
func TestExploreBrokenProcedures(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    ExploreOptions
	}{
		{"MajorityFence", ExploreOptions{Keys: 1, Writes: 1, Tries: 1, Proposers: 1, MajorityFence: true}},
		{"SkipRescan", ExploreOptions{Keys: 1, Writes: 1, Tries: 1, Proposers: 1, SkipRescan: true}},
		{"SkipBelowAcceptQuorum", ExploreOptions{Keys: 1, Writes: 1, Tries: 1, Proposers: 1, SkipBelowAcceptQuorum: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := explore(t, tc.o)
			if res.Violation == "" {
				t.Fatal("no counterexample")
			}
			t.Logf("counterexample: %s\n  %s", res.Violation, strings.Join(res.Trace, "\n  "))
		})
	}
}
