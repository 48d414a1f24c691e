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

// TestSettleWithLineage: with lineages, settling tells exactly whether a
// pending proposal was built upon (docs/design.md §11), up to MaxLineage
// proposals later; beyond that, and for values without lineage, it falls
// back to the comparison of TestSettle.
func TestSettleWithLineage(t *testing.T) {
	us := func(c uint64) register.Ballot { return bl(c, 7) }
	them := func(c uint64) register.Ballot { return bl(c, 9) }
	// base: version 4, made by them at 5.
	base := register.Stamp(val("w", 4), register.Value{Version: 3}, them(5), 0)
	// Ours: version 5 "x" at ballot 10, made from base.
	ours := register.Stamp(val("x", 5), base, us(10), 0)
	pending := []Proposal{{Ballot: us(10), Value: ours}}
	// chainBy stamps n more versions by proposer who onto v, each at the
	// next counter above v's creator.
	chainBy := func(v register.Value, n, keep int, who uint64) register.Value {
		for i := range n {
			top, _ := v.Creator()
			v = register.Stamp(v.Put([]byte{byte('a' + i)}), v, bl(top.Counter+1, who), keep)
		}
		return v
	}
	chain := func(v register.Value, n, keep int) register.Value { return chainBy(v, n, keep, 9) }
	rival := register.Stamp(val("r", 5), base, them(10), 0) // another version 5, from base (10.9 is above our 10.7)
	// A re-accept of ours at ballot 12 keeps our creator (identity).
	reaccept := []Proposal{{Ballot: us(10), Value: ours}, {Ballot: us(12), Value: register.Stamp(ours, ours, us(12), 0)}}
	for _, tc := range []struct {
		name      string
		pending   []Proposal
		m         register.Ballot
		cur       register.Value
		derived   int
		ambiguous bool
	}{
		{name: "ours is the newest", pending: pending, m: us(10), cur: ours, derived: 0},
		{name: "ours re-accepted by them", pending: pending, m: them(11), cur: register.Stamp(ours, ours, them(11), 0), derived: 0},
		{name: "built on ours", pending: pending, m: them(13), cur: chain(ours, 3, 0), derived: 0},
		{name: "built on ours, MaxLineage-1 later proposals: still in the lineage", pending: pending, m: them(40), cur: chain(ours, register.MaxLineage-1, 0), derived: 0},
		{name: "MaxLineage later proposals: out of the lineage", pending: pending, m: them(40), cur: chain(ours, register.MaxLineage, 0), derived: -1, ambiguous: true},
		{name: "out of the lineage, but a witness saw ours built on", pending: witnessed(pending, chain(ours, 8, 0), them(18)), m: them(40),
			cur: chain(ours, register.MaxLineage+3, 0), derived: 0},
		{name: "out of the lineage, a witness saw a rival", pending: witnessed(pending, chainBy(rival, 8, 0, 8), bl(18, 8)), m: them(40),
			cur: chain(chainBy(rival, 8, 0, 8), register.MaxLineage-2, 0), derived: -1},
		{name: "out of the lineage, the witness is on another branch", pending: witnessed(pending, chainBy(rival, 8, 0, 8), bl(18, 8)), m: them(40),
			cur: chain(ours, register.MaxLineage, 0), derived: -1, ambiguous: true},
		{name: "lineage of 2, 1 later: ours is the oldest link", pending: pending, m: them(12), cur: chain(ours, 1, 2), derived: 0},
		{name: "lineage of 2, 2 later: beyond it", pending: pending, m: them(12), cur: chain(ours, 2, 2), derived: -1, ambiguous: true},
		{name: "a rival version 5", pending: pending, m: them(11), cur: rival, derived: -1},
		{name: "built on a rival version 5", pending: pending, m: them(16), cur: chain(rival, 4, 0), derived: -1},
		{name: "a rival creating versions 5 and 6 at once", pending: pending, m: them(11),
			cur: register.Stamp(val("r", 6), base, them(11), 0), derived: -1},
		{name: "lower version", pending: pending, m: them(11), cur: base, derived: -1},
		{name: "lower ballot, whatever the lineage", pending: pending, m: us(9), cur: chain(ours, 2, 0), derived: -1},
		{name: "re-accepted, then built on", pending: reaccept, m: them(14), cur: chain(reaccept[1].Value, 2, 0), derived: 0},
		{name: "re-accepted, then a rival", pending: reaccept, m: them(13), cur: rival, derived: -1},
		{name: "no lineage in cur: old comparison", pending: pending, m: them(11), cur: val("q", 6), derived: -1, ambiguous: true},
		{name: "no lineage in ours: old comparison", pending: []Proposal{{Ballot: us(10), Value: val("x", 5)}}, m: them(11),
			cur: chain(ours, 2, 0), derived: -1, ambiguous: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, amb := Settle(tc.pending, tc.m, tc.cur)
			if d != tc.derived || amb != tc.ambiguous {
				t.Errorf("Settle = (%d, %v), want (%d, %v); cur %v lineage %v", d, amb, tc.derived, tc.ambiguous, tc.cur, tc.cur.Lineage)
			}
		})
	}
}

// witnessed returns pending with what v, accepted at ballot at, says about
// each proposal recorded (round.Proposal.Observe).
func witnessed(pending []Proposal, v register.Value, at register.Ballot) []Proposal {
	out := make([]Proposal, len(pending))
	for i, p := range pending {
		p.Seen = nil
		p.Observe(at, v)
		out[i] = p
	}
	return out
}
