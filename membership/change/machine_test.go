package change

import (
	"testing"
)

// TestNextAck checks the record of the highest acknowledged epoch (docs/design.md §4
// "Rolled-back disks"): kept while unreachable, never lowered for the same
// incarnation, kept for a member in play whose slot answers with another
// incarnation, replaced otherwise.
func TestNextAck(t *testing.T) {
	rec := func(inc, e uint64) Ack { return Ack{Incarnation: inc, Epoch: e} }
	answer := func(inc, e uint64) Slot { return Slot{Reachable: true, Incarnation: inc, Epoch: e} }
	down := Slot{Why: "x is unreachable: connection refused"}
	inPlay := map[uint64]bool{0xa1: true}
	for _, tc := range []struct {
		name     string
		old      Ack
		had      bool
		a        Slot
		want     Ack
		wantHave bool
	}{
		{"first answer", Ack{}, false, answer(0xa1, 0), rec(0xa1, 0), true},
		{"raised", rec(0xa1, 2), true, answer(0xa1, 3), rec(0xa1, 3), true},
		{"never lowered", rec(0xa1, 3), true, answer(0xa1, 1), rec(0xa1, 3), true},
		{"kept while unreachable", rec(0xa1, 3), true, down, rec(0xa1, 3), true},
		{"nothing to keep", Ack{}, false, down, Ack{}, false},
		{"member in play answers with another incarnation", rec(0xa1, 3), true, answer(0xb1, 1), rec(0xa1, 3), true},
		{"another incarnation once the old one is out of play", rec(0xa9, 3), true, answer(0xb1, 0), rec(0xb1, 0), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, have := NextAck(tc.old, tc.had, tc.a, inPlay)
			if got != tc.want || have != tc.wantHave {
				t.Fatalf("NextAck = %+v, %v, want %+v, %v", got, have, tc.want, tc.wantHave)
			}
		})
	}
}

// TestNextDoesNotModifyItsInput: a decision never writes into the intent
// it was given (the caller keeps it as the recorded state).
func TestNextDoesNotModifyItsInput(t *testing.T) {
	obs := Observation{Slots: []string{"a", "b", "c"}, Size: 3, Seen: map[string]Slot{}}
	for i, s := range obs.Slots {
		obs.Seen[s] = Slot{Exists: true, Running: true, HasStorage: true, Addr: s, Reachable: true, Incarnation: uint64(i + 1), Healthy: true}
	}
	var in Intent
	d := Machine{}.Next(in, obs)
	if d.Intent.Config == nil || in.Config != nil || in.Transition != nil {
		t.Fatalf("bootstrap: decision %+v, input %+v", d.Intent, in)
	}
	rec := d.Intent.Clone()
	obs.Size = 4
	obs.Slots = append(obs.Slots, "d")
	for _, s := range []string{"a", "b", "c"} {
		seen := obs.Seen[s]
		seen.Epoch, seen.Admitted = 1, true
		obs.Seen[s] = seen
	}
	d2 := Machine{}.Next(rec, obs)
	if rec.Transition == nil || rec.Transition.Kind != Bootstrap {
		t.Fatalf("the recorded intent changed: %+v", rec.Transition)
	}
	if d2.Intent.Transition != nil {
		t.Fatalf("bootstrap not finished: %+v", d2.Intent.Transition)
	}
}
