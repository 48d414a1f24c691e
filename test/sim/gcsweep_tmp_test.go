package sim

import (
	"testing"

	"github.com/anishathalye/porcupine"
)

func TestGCSweepTmp(t *testing.T) {
	for _, f := range []Faults{{}, {GCWithoutFloorEpoch: true}, {CollectPromised: true}, {VersionsFromZero: true}} {
		var total Stats
		bad, first := 0, uint64(0)
		for seed := uint64(1); seed <= 1000; seed++ {
			res := Run(GCOptions(seed, f))
			addStats(&total, res.Stats)
			if chk := Check(res.Operations, checkTimeout); chk != porcupine.Ok || res.Stats.AcceptsAfterFence > 0 {
				bad++
				if first == 0 {
					first = seed
				}
			}
		}
		t.Logf("%+v: bad %d first %d; GC %d collected %d removed %d ops %d changes %d", f, bad, first, total.GC, total.GCCollected, total.GCRemoved, total.Ops, total.Changes)
	}
}
