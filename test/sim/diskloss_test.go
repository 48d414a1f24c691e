package sim

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"

	"github.com/kshaka-io/kshaka/membership"
)

// TestDiskLossReplacement: an acceptor that comes back empty with a new
// incarnation is not admitted by the configuration that lists its old one
// — the gate refuses every request — and the operator replaces it by
// remove + add (docs/design.md §4, "Replace"). The write made before the loss
// survives it.
func TestDiskLossReplacement(t *testing.T) {
	var w *world
	var oldInc uint64
	var servedBeforeJoin []string
	o := Options{
		Seed: 42, Acceptors: 3, MinMembers: 3, MaxMembers: 4, Proposers: 2, Clients: 1, Keys: 1,
		Duration: 1500, Drain: 1500, Timeout: 60, Backoff: 10, OperatorTick: 5,
		MaxTries: 5, CacheSize: 16, QuorumReads: true,
		Net: NetFaults{MaxDelay: 3},
	}
	o.Scenario = func(ww *world) {
		w = ww
		p1, p2 := w.proposers[0], w.proposers[1]
		w.scriptOp(p1, opPut, "k0", "before")
		w.after(100, func() {
			a := w.byName["a1"]
			oldInc = a.incarnation
			a.loseDisk()
			a.restart()
			// Proposers still on epoch 1 talk to it at once.
			w.scriptOp(p2, opPut, "k0", "during")
		})
		// Watch a1: until a configuration lists its new incarnation, it
		// must hold nothing.
		var watch func()
		watch = func() {
			a := w.byName["a1"]
			if a.incarnation != oldInc && oldInc != 0 {
				listed := a.cfg != nil
				if listed {
					_, listed = a.cfg.Member(a.incarnation)
				}
				if st := a.keys["k0"]; !listed && (st.Promise.Counter != 0 || st.Accepted.Counter != 0) {
					servedBeforeJoin = append(servedBeforeJoin, st.Promise.String())
				}
			}
			w.after(1, watch)
		}
		w.after(1, watch)
		w.after(1200, func() { w.scriptOp(p1, opGet, "k0", "") })
	}
	res := Run(o)
	if len(servedBeforeJoin) > 0 {
		t.Fatalf("the new incarnation served requests before it was admitted: %v", servedBeforeJoin)
	}
	if res.Stats.NotAdmitted == 0 {
		t.Fatal("the gate never refused the empty acceptor")
	}
	cur := w.op.current()
	m, ok := cur.MemberByID("a1")
	if !ok || m.Incarnation == oldInc || !cur.IsStable() || len(cur.Members) != 3 {
		t.Fatalf("a1 was not replaced: %v (old incarnation %x)", cur, oldInc)
	}
	if !w.op.isRetired(oldInc) {
		t.Fatal("the old incarnation is not retired")
	}
	if (&cur).Check(oldInc, cur.Epoch) != membership.ErrNotAdmitted {
		t.Fatal("the old incarnation is admitted")
	}
	if Check(res.Operations, time.Minute) != porcupine.Ok {
		t.Fatal("history is not linearizable")
	}
	t.Logf("%d refusals by the gate; final %v after %d changes", res.Stats.NotAdmitted, cur, res.Stats.Changes)
}
