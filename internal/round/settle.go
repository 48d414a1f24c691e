package round

import "github.com/kshaka-io/kshaka/register"

// Proposal is an accept that ended Unknown: it may have landed on some
// acceptors, so its value may become chosen later (docs/design.md §2.3).
type Proposal struct {
	Ballot register.Ballot
	Value  register.Value
}

// Settle decides what a new attempt of the same changes may do about
// earlier attempts that ended Unknown (pending, oldest first). The attempt's
// prepare phase (never a 1RTT one) found cur, accepted at ballot m, as the
// highest accepted value of a prepare quorum (Write.Current and
// Write.CurrentBallot).
//
// It returns own, the index of the pending proposal that is cur itself
// (m is its ballot), or -1; and ambiguous, true when cur may have been
// derived from a pending proposal by someone else's round.
//
// The reasoning (the CASPaxos invariant: a value accepted at a ballot higher
// than a chosen one is derived from the chosen one; versions never decrease
// along a derivation, and only rejected or identity changes keep them):
//
//   - own ≥ 0: the proposal is the newest value of the quorum; proposing it
//     again (identity) and succeeding makes its changes take effect once.
//   - otherwise, when for every pending proposal p either m < p.Ballot, or
//     cur's version is below p's, or equal to it with a different value, cur
//     is not derived from any p. A new proposal derived from cur that
//     succeeds then shuts every p out for good (its prepare quorum refuses
//     them, and everything chosen later derives from it), so re-applying
//     the changes to cur applies them exactly once.
//   - else cur may contain a pending proposal's changes: ambiguous, and the
//     outcome stays unknown.
//
// Settle is only sound if every pending proposal of the changes is passed:
// one left out may be what cur derives from.
func Settle(pending []Proposal, m register.Ballot, cur register.Value) (own int, ambiguous bool) {
	for i, p := range pending {
		if p.Ballot == m {
			return i, false
		}
	}
	for _, p := range pending {
		if mayDerive(p, m, cur) {
			return -1, true
		}
	}
	return -1, false
}

// mayDerive reports whether cur, accepted at ballot m, may have been derived
// from proposal p.
func mayDerive(p Proposal, m register.Ballot, cur register.Value) bool {
	if !p.Ballot.Less(m) {
		return false
	}
	switch {
	case cur.Version > p.Value.Version:
		return true
	case cur.Version == p.Value.Version:
		return cur.Equal(p.Value)
	}
	return false
}
