package proposer

import (
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/register"
)

// settle decides what a new attempt may do about the proposals of the same
// changes that may have landed: see round.Settle, which holds the rules
// (the deterministic simulation drives the same function).
func settle(pending []proposal, m register.Ballot, cur register.Value) (own int, ambiguous bool) {
	ps := make([]round.Proposal, len(pending))
	for i, p := range pending {
		ps[i] = round.Proposal{Ballot: p.ballot, Value: p.value}
	}
	return round.Settle(ps, m, cur)
}
