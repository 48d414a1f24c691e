package sim

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

// contentionOptions is a fault-free run aimed at contention: no lost,
// duplicated or long-delayed messages, no crashes, partitions or
// membership changes, three proposers with three clients each on one or
// two hot keys, and full lineages (docs/design.md §11).
func contentionOptions(seed uint64) Options {
	o := NewOptions(seed, Faults{})
	o.Net = NetFaults{MaxDelay: o.Net.MaxDelay, MaxFsync: o.Net.MaxFsync}
	o.Nemesis = Nemesis{Every: 1 << 40}
	o.ChangeEvery = 0
	o.Proposers, o.Clients = 3, 3
	o.Keys, o.HotKeys = 2, 1+int(seed%2)
	o.Think = 5
	o.Lineage = 0
	o.Timeout = 1000 // far above any delay: no reply is late
	return o
}

// TestNoUnknownOutcomesWithoutFaults: without faults, contention alone
// never makes a change give up (issue 14: it used to end in "no quorum"),
// and it leaves an outcome unknown only when the key's lineage and the
// witnesses gathered do not reach back to the pending proposal
// (docs/design.md §11); such an outcome is sealed. Counted over fixed
// seeds, not timed: the simulation is deterministic.
func TestNoUnknownOutcomesWithoutFaults(t *testing.T) {
	const seeds = 200
	var total Stats
	for seed := uint64(1); seed <= seeds; seed++ {
		res := Run(contentionOptions(seed))
		addStats(&total, res.Stats)
		if chk := Check(res.Operations, checkTimeout); chk == porcupine.Illegal {
			t.Fatalf("seed %d: not linearizable", seed)
		}
		if res.Stats.Failed > 0 || res.Stats.Unknown > res.Stats.Sealed {
			t.Errorf("seed %d: %d failures and %d unknown outcomes (%d sealed) without faults (%+v)",
				seed, res.Stats.Failed, res.Stats.Unknown, res.Stats.Sealed, res.Stats)
		}
	}
	t.Logf("%d seeds: %d operations, %d unknown outcomes (all sealed), %d attempts ended unknown and were settled (%d ops settled, %d ambiguous), %d retries",
		seeds, total.Ops, total.Unknown, total.SettleRetries, total.Settled, total.SettleAmbiguous, total.Retries)
	// The lineage keeps register.MaxLineage links: rarely more proposals
	// than that come between an unknown outcome and its settling.
	if perTenK := total.Unknown * 10000 / max(total.Ops, 1); perTenK > 5 {
		t.Errorf("%d unknown outcomes in %d operations (%d per 10,000): more than the lineage should leave", total.Unknown, total.Ops, perTenK)
	}
	if total.SettleRetries == 0 {
		t.Error("no attempt ended unknown: the seeds exercise no contention worth the name")
	}
}
