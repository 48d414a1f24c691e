package register

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func bal(c, p uint64) Ballot { return Ballot{Counter: c, Proposer: p} }

func st(promise, accepted Ballot) State {
	return State{Promise: promise, Accepted: accepted, Value: Value{Version: accepted.Counter, Data: []byte("x")}}
}

// TestPrepareTable checks the prepare rule of docs/design.md §2.2: conflict if
// b <= promise or b <= accepted; otherwise promise b and leave the accepted
// ballot and value alone.
func TestPrepareTable(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    State
		b    Ballot
		ok   bool
	}{
		{"empty state, first ballot", State{}, bal(1, 1), true},
		{"zero ballot is never proposed", State{}, Ballot{}, false},
		{"ballot without proposer", State{}, bal(1, 0), false},
		{"ballot with counter 0", State{}, bal(0, 7), false},
		{"above promise", st(bal(2, 1), Ballot{}), bal(3, 1), true},
		{"equal to promise", st(bal(2, 1), Ballot{}), bal(2, 1), false},
		{"below promise", st(bal(2, 1), Ballot{}), bal(1, 9), false},
		{"same counter, higher proposer", st(bal(2, 1), Ballot{}), bal(2, 2), true},
		{"same counter, lower proposer", st(bal(2, 2), Ballot{}), bal(2, 1), false},
		// Promise and accepted are checked separately: a state whose
		// accepted ballot is above its promise (not reachable through
		// the rules, but the rule must not rely on it) still conflicts.
		{"equal to accepted, promise lower", st(bal(1, 1), bal(5, 1)), bal(5, 1), false},
		{"below accepted, above promise", st(bal(1, 1), bal(5, 1)), bal(4, 1), false},
		{"above both", st(bal(5, 2), bal(5, 1)), bal(6, 1), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.s.Prepare(tc.b)
			if ok != tc.ok {
				t.Fatalf("Prepare(%v) on %+v: ok = %v, want %v", tc.b, tc.s, ok, tc.ok)
			}
			want := tc.s
			if ok {
				want.Promise = tc.b
			}
			if !sameState(got, want) {
				t.Fatalf("Prepare(%v) on %+v = %+v, want %+v", tc.b, tc.s, got, want)
			}
		})
	}
}

// TestAcceptTable checks the accept rule of docs/design.md §2.2 and the 1RTT
// promise of §2.4: conflict if b < promise or b <= accepted; an accepted
// "next" must be above b and becomes the promise.
func TestAcceptTable(t *testing.T) {
	v := Value{Version: 9, Data: []byte("new")}
	for _, tc := range []struct {
		name        string
		s           State
		b, next     Ballot
		ok          bool
		wantPromise Ballot
	}{
		{"empty state", State{}, bal(1, 1), Ballot{}, true, bal(1, 1)},
		{"zero ballot", State{}, Ballot{}, Ballot{}, false, Ballot{}},
		{"invalid ballot", State{}, bal(0, 1), Ballot{}, false, Ballot{}},
		{"equal to promise (the prepared ballot)", st(bal(3, 1), bal(1, 1)), bal(3, 1), Ballot{}, true, bal(3, 1)},
		{"above promise (a skipped prepare)", st(bal(3, 1), bal(1, 1)), bal(4, 1), Ballot{}, true, bal(4, 1)},
		{"below promise", st(bal(3, 1), bal(1, 1)), bal(2, 9), Ballot{}, false, bal(3, 1)},
		{"equal to accepted (a duplicate)", st(bal(3, 1), bal(3, 1)), bal(3, 1), Ballot{}, false, bal(3, 1)},
		{"below accepted, above promise (scylladb#6139)", st(bal(1, 1), bal(5, 1)), bal(4, 1), Ballot{}, false, bal(1, 1)},
		{"with next", st(bal(3, 1), bal(1, 1)), bal(3, 1), bal(4, 1), true, bal(4, 1)},
		{"next equal to b", st(bal(3, 1), bal(1, 1)), bal(3, 1), bal(3, 1), false, bal(3, 1)},
		{"next below b", st(bal(3, 1), bal(1, 1)), bal(3, 1), bal(2, 1), false, bal(3, 1)},
		{"next without proposer", st(bal(3, 1), bal(1, 1)), bal(3, 1), bal(4, 0), false, bal(3, 1)},
		{"next of another proposer, higher", State{}, bal(3, 1), bal(3, 2), true, bal(3, 2)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := tc.s.Accept(tc.b, v, tc.next)
			if ok != tc.ok {
				t.Fatalf("Accept(%v, next %v) on %+v: ok = %v, want %v", tc.b, tc.next, tc.s, ok, tc.ok)
			}
			want := tc.s
			if ok {
				want = State{Promise: tc.wantPromise, Accepted: tc.b, Value: v}
			}
			if !sameState(got, want) {
				t.Fatalf("Accept(%v, next %v) on %+v = %+v, want %+v", tc.b, tc.next, tc.s, got, want)
			}
		})
	}
}

func sameState(a, b State) bool {
	return a.Promise == b.Promise && a.Accepted == b.Accepted && a.Value.Equal(b.Value) && slices.Equal(a.Value.Lineage, b.Value.Lineage)
}

// TestRulesInvariants runs random sequences of prepares and accepts from the
// empty state and checks the invariants stated in the package doc: promise
// and accepted only grow, accepted never exceeds the promise, a conflict
// leaves the state unchanged, and every success is exactly what the rule
// allows.
func TestRulesInvariants(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	ballot := func() Ballot {
		if r.IntN(20) == 0 {
			return Ballot{Counter: uint64(r.IntN(2)), Proposer: uint64(r.IntN(2))}
		}
		return bal(uint64(1+r.IntN(12)), uint64(1+r.IntN(3)))
	}
	for run := 0; run < 3000; run++ {
		var s State
		for step := 0; step < 40; step++ {
			before := s
			var ok bool
			if r.IntN(2) == 0 {
				b := ballot()
				s, ok = s.Prepare(b)
				allowed := b.Valid() && before.Promise.Less(b) && before.Accepted.Less(b)
				if ok != allowed {
					t.Fatalf("Prepare(%v) on %+v: ok = %v, rule says %v", b, before, ok, allowed)
				}
			} else {
				b := ballot()
				var next Ballot
				if r.IntN(2) == 0 {
					next = ballot()
				}
				v := Value{Version: uint64(step), Data: []byte{byte(step)}}
				s, ok = s.Accept(b, v, next)
				allowed := b.Valid() && !b.Less(before.Promise) && before.Accepted.Less(b) &&
					(next.IsZero() || (next.Valid() && b.Less(next)))
				if ok != allowed {
					t.Fatalf("Accept(%v, next %v) on %+v: ok = %v, rule says %v", b, next, before, ok, allowed)
				}
				if ok && (s.Accepted != b || !s.Value.Equal(v)) {
					t.Fatalf("Accept(%v) did not store the value: %+v", b, s)
				}
			}
			if !ok && !sameState(s, before) {
				t.Fatalf("conflict changed the state: %+v -> %+v", before, s)
			}
			if s.Promise.Less(before.Promise) || s.Accepted.Less(before.Accepted) {
				t.Fatalf("a ballot went down: %+v -> %+v", before, s)
			}
			if s.Promise.Less(s.Accepted) {
				t.Fatalf("accepted above promise: %+v", s)
			}
			if s.Highest() != s.Promise.Max(s.Accepted) {
				t.Fatalf("Highest() = %v for %+v", s.Highest(), s)
			}
		}
	}
}

// TestConflictCarriesHighest: the ballot a conflict reply carries lets the
// proposer pass it (docs/design.md §2.1, peterbourgon/caspaxos PR #6).
func TestConflictCarriesHighest(t *testing.T) {
	s := State{Promise: bal(4, 2), Accepted: bal(3, 9)}
	if got := s.Highest(); got != bal(4, 2) {
		t.Fatalf("Highest() = %v", got)
	}
	next := bal(s.Highest().Counter+1, 1)
	if _, ok := s.Prepare(next); !ok {
		t.Fatalf("a ballot above Highest() was refused")
	}
}

func TestValue(t *testing.T) {
	var empty Value
	if empty.Exists() || empty.String() != "v0:empty" {
		t.Fatalf("empty value: exists %v, %q", empty.Exists(), empty.String())
	}
	a := empty.Put([]byte("a"))
	if !a.Exists() || a.Version != 1 || a.String() != `v1:"a"` {
		t.Fatalf("put: %+v", a)
	}
	d := a.Delete()
	if d.Exists() || d.Version != 2 || !d.Tombstone || d.String() != "v2:deleted" {
		t.Fatalf("delete: %+v", d)
	}
	if d.Equal(empty) || !d.Equal(Value{Version: 2, Tombstone: true}) {
		t.Fatal("Equal on tombstones")
	}
	// Equal treats nil and empty data alike; Clone shares no memory.
	if !(Value{Version: 1}).Equal(Value{Version: 1, Data: []byte{}}) {
		t.Fatal("nil and empty data differ")
	}
	c := a.Clone()
	c.Data[0] = 'z'
	if string(a.Data) != "a" {
		t.Fatal("Clone shares memory")
	}
}
