package proposer

import "github.com/kshaka-io/kshaka/register"

// settle decides what a new attempt may do about earlier proposals of the
// same changes that may have landed (their rounds ended Unknown). The
// attempt's prepare phase found cur, accepted at ballot m, as the highest
// accepted value of a prepare quorum.
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
//   - otherwise, when for every pending proposal p either m < p.ballot, or
//     cur's version is below p's, or equal to it with a different value, cur
//     is not derived from any p. A new proposal derived from cur that
//     succeeds then shuts every p out for good (its prepare quorum refuses
//     them, and everything chosen later derives from it), so re-applying
//     the changes to cur applies them exactly once.
//   - else cur may contain a pending proposal's changes: ambiguous.
func settle(pending []proposal, m register.Ballot, cur register.Value) (own int, ambiguous bool) {
	for i, p := range pending {
		if p.ballot == m {
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
func mayDerive(p proposal, m register.Ballot, cur register.Value) bool {
	if !p.ballot.Less(m) {
		return false
	}
	switch {
	case cur.Version > p.value.Version:
		return true
	case cur.Version == p.value.Version:
		return cur.Equal(p.value)
	}
	return false
}
