package round

import (
	"testing"

	"github.com/kshaka-io/kshaka/register"
)

// TestSettle checks the rules that decide what an attempt may do after
// earlier attempts of the same changes ended unknown (docs/design.md §2.3; the
// paper's invariant that a value accepted above a chosen one derives from
// it).
func TestSettle(t *testing.T) {
	b := func(c uint64) register.Ballot { return bl(c, 7) }
	// Our unknown proposal: version 5 "x" at ballot 10, made from version 4.
	ours := []Proposal{{Ballot: b(10), Value: val("x", 5)}}
	two := append(ours[:1:1], Proposal{Ballot: b(20), Value: val("y", 6)})
	for _, tc := range []struct {
		name      string
		pending   []Proposal
		m         register.Ballot
		cur       register.Value
		own       int
		ambiguous bool
	}{
		{name: "ours is the newest value", pending: ours, m: b(10), cur: val("x", 5), own: 0},
		{name: "second of two is newest", pending: two, m: b(20), cur: val("y", 6), own: 1},
		{name: "older ballot: ours never reached the quorum", pending: ours, m: b(9), cur: val("w", 4), own: -1},
		{name: "older ballot, even with a high version", pending: ours, m: b(9), cur: val("z", 9), own: -1},
		{name: "newer ballot, lower version: not derived", pending: ours, m: b(11), cur: val("w", 4), own: -1},
		{name: "newer ballot, same version, other data: a rival", pending: ours, m: b(11), cur: val("r", 5), own: -1},
		{name: "newer ballot, same value: may be ours re-accepted", pending: ours, m: b(11), cur: val("x", 5), own: -1, ambiguous: true},
		{name: "newer ballot, higher version: may build on ours", pending: ours, m: b(11), cur: val("q", 6), own: -1, ambiguous: true},
		{name: "tombstone with the same version is not ours", pending: ours, m: b(11), cur: register.Value{Version: 5, Tombstone: true}, own: -1},
		{name: "ambiguous about the second proposal", pending: two, m: b(21), cur: val("q", 7), own: -1, ambiguous: true},
		{name: "between the two: not derived from either", pending: two, m: b(15), cur: val("r", 5), own: -1},
		{name: "between the two: may derive from the first", pending: two, m: b(15), cur: val("x", 5), own: -1, ambiguous: true},
		{name: "nothing pending", m: b(15), cur: val("x", 5), own: -1},
		{name: "empty register, never written", pending: ours, m: register.Ballot{}, cur: register.Value{}, own: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			own, amb := Settle(tc.pending, tc.m, tc.cur)
			if own != tc.own || amb != tc.ambiguous {
				t.Errorf("Settle = (%d, %v), want (%d, %v)", own, amb, tc.own, tc.ambiguous)
			}
		})
	}
}
