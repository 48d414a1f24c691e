package round

import "github.com/kshaka-io/kshaka/register"

// Proposal is an accept that ended Unknown: it may have landed on some
// acceptors, so its value may become chosen later (docs/design.md §2.3).
//
// Seen is evidence about it gathered since: values some acceptor reported
// whose lineage told whether they contain the proposal (Observe).
type Proposal struct {
	Ballot register.Ballot
	Value  register.Value
	Seen   []Witness
}

// Witness is a value some acceptor reported, accepted at AcceptedAt, of
// version Version created by Creator, whose lineage told whether it
// contains a pending proposal's changes (Contains). Any value derived from
// it agrees: it contains them if and only if the witness does, however
// many proposals came in between. Witnesses extend the reach of the
// lineage (docs/design.md §11).
type Witness struct {
	AcceptedAt register.Ballot
	Version    uint64
	Creator    register.Ballot
	Contains   bool
}

// maxWitnesses bounds the witnesses kept per proposal (the newest).
const maxWitnesses = 4

// Observe records what v, accepted at ballot accepted and reported by an
// acceptor, says about p: a witness when v's lineage names the creator of
// p's version, or when v is or derives from an earlier witness (so each
// observation carries the evidence forward, and the lineage only has to
// reach from one observation to the next). It reports whether it recorded
// one. Any reply will do (not only the prepare quorum's newest value):
// what a value's lineage says is a fact about the value, whichever
// acceptor holds it.
func (p *Proposal) Observe(accepted register.Ballot, v register.Value) bool {
	creator, ok := p.Value.Creator()
	if !ok || accepted.IsZero() || register.CheckLineage(v) != nil || register.CheckLineage(p.Value) != nil {
		return false
	}
	vc, ok := v.Creator()
	if !ok {
		return false
	}
	c, known := v.CreatedBy(p.Value.Version)
	contains := known && c == creator
	for i := len(p.Seen) - 1; !known && i >= 0; i-- {
		if o := p.Seen[i]; o.descends(accepted, v) {
			known, contains = true, o.Contains
		}
	}
	if !known {
		return false
	}
	w := Witness{AcceptedAt: accepted, Version: v.Version, Creator: vc, Contains: contains}
	for _, o := range p.Seen {
		if o == w {
			return false
		}
	}
	if len(p.Seen) == maxWitnesses {
		p.Seen = append(p.Seen[:0:0], p.Seen[1:]...)
	}
	p.Seen = append(p.Seen, w)
	return true
}

// descends reports whether cur, accepted at m, is w's value or provably
// derived from it.
func (w Witness) descends(m register.Ballot, cur register.Value) bool {
	if m == w.AcceptedAt {
		return true
	}
	c, known := cur.CreatedBy(w.Version)
	return known && c == w.Creator
}

// Fate is what the newest value a prepare quorum showed says about one
// pending proposal (Judge).
type Fate uint8

const (
	// Dead: the value does not contain the proposal's changes. Once a
	// proposal made from that value is chosen, the pending one never takes
	// effect.
	Dead Fate = iota + 1
	// Derived: the value contains the proposal's changes, once; the
	// changes took effect as soon as the value is chosen.
	Derived
	// Ambiguous: the value may or may not contain them.
	Ambiguous
)

func (f Fate) String() string {
	switch f {
	case Dead:
		return "dead"
	case Derived:
		return "derived"
	case Ambiguous:
		return "ambiguous"
	}
	return "Fate(?)"
}

// Judge decides what cur, accepted at ballot m and the highest accepted
// value of a prepare quorum that promised a ballot above p's, says about
// the pending proposal p (docs/design.md §2.3, §11). The creator of p is
// the ballot of p's value's newest link: a re-accept of a value keeps the
// proposal that made it. With top = p.Value.Version:
//
//   - m == p.Ballot: cur is p's value. Derived.
//   - m < p.Ballot: no member of the quorum accepted p. Dead.
//   - cur.Version < top: versions never fall along a derivation. Dead.
//   - cur's lineage names the creator of version top: Derived when it is
//     p's creator, Dead otherwise (a ballot makes one proposal, and a link
//     is only copied from the value it was stamped on).
//   - otherwise, when cur is or derives from one of p's witnesses
//     (p.Seen), what the witness says: Derived if it contains p, else
//     Dead.
//   - otherwise (cur has no lineage, or more proposals than its lineage
//     holds came after top and after every witness, or p's value has
//     none): the comparison without lineage. cur.Version > top is
//     Ambiguous; an equal version is Ambiguous when cur equals p's value,
//     else Dead.
func Judge(p Proposal, m register.Ballot, cur register.Value) Fate {
	switch {
	case p.Ballot == m:
		return Derived
	case m.Less(p.Ballot):
		return Dead
	}
	top := p.Value.Version
	if cur.Version < top {
		return Dead
	}
	if creator, ok := p.Value.Creator(); ok && register.CheckLineage(p.Value) == nil && register.CheckLineage(cur) == nil {
		if c, known := cur.CreatedBy(top); known {
			if c == creator {
				return Derived
			}
			return Dead
		}
		for i := len(p.Seen) - 1; i >= 0; i-- {
			if w := p.Seen[i]; w.descends(m, cur) {
				if w.Contains {
					return Derived
				}
				return Dead
			}
		}
	}
	if cur.Version > top || cur.Equal(p.Value) {
		return Ambiguous
	}
	return Dead
}

// Settle decides what a new attempt of the same changes may do about
// earlier attempts that ended Unknown (pending, oldest first). The
// attempt's prepare phase (never a 1RTT one) found cur, accepted at ballot
// m, as the highest accepted value of a prepare quorum (Write.Current and
// Write.CurrentBallot).
//
// It returns derived, the index of the first pending proposal whose
// changes cur contains (Judge), or -1; and ambiguous, true when no
// proposal is derived and cur may contain one's changes.
//
// The reasoning (the CASPaxos invariant: a value accepted at a ballot
// higher than a chosen one is derived from the chosen one):
//
//   - derived ≥ 0: proposing cur again (identity) and succeeding makes
//     the changes take effect once; the attempt answers with the results
//     of that proposal.
//   - otherwise, when every p is Dead, a new proposal derived from cur that
//     succeeds shuts every p out for good (its prepare quorum refuses
//     them, and everything chosen later derives from it), so re-applying
//     the changes to cur applies them exactly once. Until it succeeds the
//     dead proposals stay pending: a later prepare quorum may still find
//     one of them as its newest value.
//   - else ambiguous: the outcome stays unknown.
//
// Settle is only sound if every pending proposal of the changes is passed:
// one left out may be what cur derives from.
func Settle(pending []Proposal, m register.Ballot, cur register.Value) (derived int, ambiguous bool) {
	for i, p := range pending {
		switch Judge(p, m, cur) {
		case Derived:
			return i, false
		case Ambiguous:
			ambiguous = true
		}
	}
	return -1, ambiguous
}
