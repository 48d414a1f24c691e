package sim

import (
	"flag"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kshaka-io/kshaka/membership/change"
)

var flagFaults = flag.String("faults", "", "negative control to replay with TestSeedTrace (a name from negativeControls)")

// controlBudget is how many seeds a negative control may take before the
// test declares the checker blind to it.
const controlBudget = 3000

// negativeControls are broken drivers the checker must catch (docs/design.md §8:
// "Negative controls … must be caught, or the checker proves nothing").
// None touches the rules; each breaks the simulated proposer or operator,
// except VolatilePromises, the acceptor core's own negative-control switch.
var negativeControls = []struct {
	name    string
	options func(seed uint64) Options
}{
	// (1) Three acceptors with qp = qa = 1.
	{"QuorumOfOne", func(s uint64) Options { return NewOptions(s, Faults{QuorumOfOne: true}) }},
	// (2) Joint to final without the rescan.
	{"SkipRescan", func(s uint64) Options { return NewOptions(s, Faults{Operator: change.Controls{SkipRescan: true}}) }},
	// (3) A fence that waits for a majority, in the scenario shaped after
	// the explorer's counterexample. Since the rescan touches every key it
	// loses no acknowledged write there (the touch carries the straddling
	// write forward or has its late accept refused); the fence check
	// catches the late accept itself.
	{"MajorityFence", func(s uint64) Options {
		return FenceStraddle(s, Faults{Operator: change.Controls{MajorityFence: true}})
	}},
	// (4) A 1RTT ballot used again after an accept with an unknown outcome.
	{"KeepCacheOnUnknown", func(s uint64) Options { return NewOptions(s, Faults{KeepCacheOnUnknown: true}) }},
	// (5) Quorum reads without the agreement of docs/design.md §2.5.
	{"ReadFirstReply", func(s uint64) Options { return NewOptions(s, Faults{BrokenRead: ReadFirstReply}) }},
	{"ReadPrepareQuorum", func(s uint64) Options { return NewOptions(s, Faults{BrokenRead: ReadPrepareQuorum}) }},
	// (6) A blind retry after an unknown outcome: the changes are applied
	// again whatever the prepare found, so a proposal that landed is
	// applied twice (round.Settle is what the real proposer uses).
	{"BlindRetry", func(s uint64) Options { return NewOptions(s, Faults{BlindRetry: true}) }},
	// (7) Settling that finishes its own proposal but re-applies the
	// changes when another round may have built on it.
	{"IgnoreAmbiguous", func(s uint64) Options { return NewOptions(s, Faults{IgnoreAmbiguous: true}) }},
	// (8) Promises kept only in memory, with no floor after a restart (the
	// acceptor core's VolatilePromises, the same core package acceptor
	// runs): a crash forgets a promise and the acceptor accepts below it.
	// Scripted (LostPromise): random seeds rarely crash an acceptor between
	// a promise and the late accept it must refuse.
	{"VolatilePromises", func(s uint64) Options { return LostPromise(s, Faults{VolatilePromises: true}) }},
	// (9) A rescan that skips keys agreeing on qa − 1 members of the
	// joint accept set (a weaker form of the withdrawn skip rule).
	{"SkipBelowAcceptQuorum", func(s uint64) Options {
		return NewOptions(s, Faults{Operator: change.Controls{SkipBelowAcceptQuorum: true}})
	}},
	// (10) The withdrawn skip rule itself: a rescan that skips keys
	// agreeing on qa members of the joint accept set. Scripted
	// (SurvivingBallot, five members, every seed caught): random seeds
	// rarely leave a higher ballot on one member beside an agreeing
	// quorum across two changes.
	{"RescanSkip", func(s uint64) Options { return SurvivingBallot(s, Faults{Operator: change.Controls{RescanSkip: true}}) }},
	// (11) Accepts refused for a stale epoch or as not admitted counted
	// as definite failures, as proposer/batch.go did (defect F4): with
	// duplicated accepts around epoch switches, a chosen write is reported
	// as failed and retried, so it is applied twice.
	// Scripted (StaleDuplicate): random seeds rarely lose every reply of
	// an accept and duplicate it across an epoch switch.
	{"StaleRefusalDefinite", func(s uint64) Options { return StaleDuplicate(s, Faults{StaleRefusalDefinite: true}) }},
	// (13) A rolled-back volume that the operator does not notice: it
	// keeps serving without the accepts it lost (scripted: RolledBack).
	{"IgnoreRolledBack", func(s uint64) Options {
		return RolledBack(s, Faults{Operator: change.Controls{IgnoreRolledBack: true}})
	}},
	// (12) Every accept refusal counted as definite, whatever the
	// acceptor had accepted (round.TestRefusalOfDuplicateAccept).
	// Scripted (DuplicateAccept): random seeds with duplication catch it
	// in about one seed in 300 only.
	{"RefusalAlwaysDefinite", func(s uint64) Options { return DuplicateAccept(s, Faults{RefusalAlwaysDefinite: true}) }},
	// (14) Tombstone GC without the floor epoch (docs/design.md §10): the
	// records are removed while the acceptors' configuration still has the
	// old floors, so a key without a record promises nothing and a
	// proposer's stale ballot below the GC's is accepted on it; and a
	// recreated key restarts its versions. Random GC runs catch it (three
	// members, one key are enough).
	{"GCWithoutFloorEpoch", func(s uint64) Options { return GCOptions(s, Faults{GCWithoutFloorEpoch: true}) }},
	// (15) Removal while a promise above the GC's ballot is outstanding.
	// Scripted (CollectPromisedScenario): it needs a proposer whose
	// prepare reached a quorum that misses one member, with its accept
	// still out, and a second writer whose clock is behind; random GC
	// runs hit it about once in a thousand seeds.
	{"CollectPromised", func(s uint64) Options { return CollectPromisedScenario(s, Faults{CollectPromised: true}) }},
	// (16) Versions restarting at zero: the proposer ignores the
	// configuration's version floor, so a key recreated after its
	// tombstone was collected reuses versions it had (the history records
	// versions in GC runs).
	{"VersionsFromZero", func(s uint64) Options { return GCOptions(s, Faults{VersionsFromZero: true}) }},
	// (17) A lineage that does not reach back to a pending proposal taken
	// as proof that nobody built on it: the changes are applied again
	// (docs/design.md §11). Seeds keep 1 to 3 links or 16 (Options.Lineage).
	{"LineageMissIsFresh", func(s uint64) Options { return NewOptions(s, Faults{LineageMissIsFresh: true}) }},
	// (18) A re-proposal that takes a new identity in the lineage instead
	// of keeping the original proposal's: another proposer's re-accept of
	// a pending proposal makes it look dead to its own proposer.
	{"RestampIdentity", func(s uint64) Options { return NewOptions(s, Faults{RestampIdentity: true}) }},
}

func controlFaults(name string) Faults {
	for _, nc := range negativeControls {
		if nc.name == name {
			return nc.options(1).Faults
		}
	}
	return Faults{}
}

// TestNegativeControls asserts that TestSim's checks fail a run of each
// broken driver within the budget — porcupine finds a non-linearizable
// history, or (MajorityFence) the fence check sees an older epoch's accept
// after the fence — and reports the first failing seed and how it failed.
func TestNegativeControls(t *testing.T) {
	for _, nc := range negativeControls {
		t.Run(nc.name, func(t *testing.T) {
			t0 := time.Now()
			caught, how := uint64(0), ""
			ran := runSeeds(1, controlBudget, nc.options, func(o outcome) bool {
				var why string
				switch {
				case o.check == porcupine.Illegal:
					why = "not linearizable"
				case o.res.Stats.AcceptsAfterFence > 0:
					why = "accepted after the fence"
				}
				if why != "" && (caught == 0 || o.seed < caught) {
					caught, how = o.seed, why
				}
				return caught != 0
			})
			if caught == 0 {
				t.Fatalf("no violation in %d seeds: the checker cannot see this bug", ran)
			}
			t.Logf("caught: first failing seed %d, %s (%v)", caught, how, time.Since(t0).Round(time.Millisecond))
		})
	}
}

// TestGCIsExercised: the GC runs of TestSim collect records, on every
// member and on some, and recreate collected keys, so the GC's checks and
// its negative controls have something to break.
func TestGCIsExercised(t *testing.T) {
	var total Stats
	for seed := uint64(1); seed <= 100; seed++ {
		addStats(&total, Run(GCOptions(seed, Faults{})).Stats)
	}
	t.Logf("100 seeds: %d GC batches, %d keys collected from every member, %d records removed", total.GC, total.GCCollected, total.GCRemoved)
	if total.GCCollected == 0 || total.GCRemoved <= total.GCCollected {
		t.Fatalf("the GC collects too little to check: %+v", total)
	}
}

// TestMajorityFenceBreaksTheFence: with a majority fence, random runs show
// acceptances from an older epoch after the fence — the guarantee docs/design.md
// §3 relies on, which TestSim checks on every correct run.
func TestMajorityFenceBreaksTheFence(t *testing.T) {
	for seed := uint64(1); seed <= 300; seed++ {
		if Run(NewOptions(seed, Faults{Operator: change.Controls{MajorityFence: true}})).Stats.AcceptsAfterFence > 0 {
			t.Logf("first seed with an acceptance after the fence: %d", seed)
			return
		}
	}
	t.Fatal("no acceptance after the fence in 300 seeds")
}

// TestSettleIsExercised: the default options settle unknown outcomes in
// all three ways round.Settle allows (finish the own proposal, re-apply
// the changes, give up as ambiguous), so TestSim checks each of them and
// the BlindRetry and IgnoreAmbiguous controls have something to break.
func TestSettleIsExercised(t *testing.T) {
	var total Stats
	for seed := uint64(1); seed <= 200; seed++ {
		addStats(&total, Run(NewOptions(seed, Faults{})).Stats)
	}
	fresh := total.Settled - total.SettledOwn
	t.Logf("200 seeds: %d retries after an unknown outcome; %d operations settled (%d own, %d fresh), %d ambiguous",
		total.SettleRetries, total.Settled, total.SettledOwn, fresh, total.SettleAmbiguous)
	if total.SettledOwn == 0 || fresh == 0 || total.SettleAmbiguous == 0 {
		t.Fatalf("a way of settling is never exercised: %+v", total)
	}
}

// TestRescanSkipLosesEverySeed: the SurvivingBallot scenario is built so
// that the withdrawn skip rule loses the acknowledged write on every seed,
// not just on some (TestSim checks that every seed is linearizable with the
// rescan that touches every key).
func TestRescanSkipLosesEverySeed(t *testing.T) {
	for seed := uint64(1); seed <= scenarioSeeds; seed++ {
		if chk := Check(Run(SurvivingBallot(seed, Faults{Operator: change.Controls{RescanSkip: true}})).Operations, checkTimeout); chk != porcupine.Illegal {
			t.Fatalf("seed %d: %v with the skip rule; the scenario misses the counterexample", seed, chk)
		}
	}
}

// TestIgnoreRolledBackLosesEverySeed: the RolledBack scenario loses the
// acknowledged write on every seed when the operator's machine does not
// compare a member's epoch with its record (TestSim checks that every seed
// is linearizable with the check).
func TestIgnoreRolledBackLosesEverySeed(t *testing.T) {
	for seed := uint64(1); seed <= scenarioSeeds; seed++ {
		res := Run(RolledBack(seed, Faults{Operator: change.Controls{IgnoreRolledBack: true}}))
		if chk := Check(res.Operations, checkTimeout); chk != porcupine.Illegal {
			t.Fatalf("seed %d: %v without the rolled-back check; the scenario misses the loss", seed, chk)
		}
	}
}
