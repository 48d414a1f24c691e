package sim

import (
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// attempt is one try of the operator's rescan of a key under the joint
// configuration: the identity change (round.Write), after the reads of the
// withdrawn skip rule with the negative controls that bring it back.
type attempt struct {
	id    uint64
	key   string
	cfg   *membership.Config
	w     *round.Write
	skip  *skipRule // the operator's rescan read (negative controls only)
	round uint64
}

// acceptReply classifies an acceptor's answer to the rescan's accept at
// ballot with round.ClassifyAccept, from what the real wire carries. (The
// proposers' machines classify their own replies; the negative controls
// that break the rule break it there.)
func (w *world) acceptReply(ballot register.Ballot, m *message) round.Reply {
	a, _ := acceptAnswer(m)
	return round.ClassifyAccept(ballot, a)
}

// nextBallot is Clock.Next for the operator, whose clock starts at counter
// 1 and cannot run out.
func nextBallot(c *round.Clock) register.Ballot {
	b, err := c.Next()
	if err != nil {
		panic(err)
	}
	return b
}

// observe is Clock.Observe for the operator's clock, which is unbounded
// (round.NewClock) and so never refuses a ballot.
func observe(c *round.Clock, b register.Ballot) {
	if err := c.Observe(b); err != nil {
		panic(err)
	}
}
