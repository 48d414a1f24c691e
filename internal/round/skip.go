package round

import (
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// Skip decides whether the rescan of a membership change may skip one key
// (DESIGN §5 step 3): the rescan runs under the joint configuration cfg,
// after its epoch is fenced, and a key whose accepted ballot already agrees
// on qa members of the accept set S is valid for cfg as it is. The caller
// sends Read requests to Targets (the members of S) under cfg's epoch and
// feeds the replies; Success means skip, Failed means run the identity
// change (Client.Touch) as usual.
//
// Why it is safe. Before the fence every chosen value of the key sits on an
// accept quorum of the previous configuration, and every such quorum meets
// every qa-subset of the new S (membership.Steps plans them so). After the
// fence nothing from an older epoch lands, so the reads, sent after it, see
// every value chosen before it. When qa members of S report the same
// ballot b, none of them has accepted anything newer, so no value with a
// higher ballot was chosen before the fence, and b's value itself is on an
// accept quorum of cfg: exactly what the identity change would have made
// true. Values chosen later are chosen under cfg or a later epoch, on their
// own accept quorums. A replica set that agrees on nothing accepted (the
// zero ballot: a key that only holds a promise, or that the member does not
// store) is skipped the same way: no value was chosen before the fence.
//
// Agreement counts only replies that were served (ok): an error, a lost
// reply or a stale-epoch refusal counts as no reply. A prepare quorum of P
// agreeing is not enough, and neither is agreement short of qa members of S
// (the simulation's negative control SkipBelowAcceptQuorum).
type Skip struct {
	cfg     *membership.Config
	replied map[uint64]bool
	byBal   map[register.Ballot]int
	pending int // members of S that have not replied
	outcome Outcome
	ballot  register.Ballot
}

// NewSkip starts the skip decision for one key under cfg.
func NewSkip(cfg *membership.Config) *Skip {
	return &Skip{
		cfg:     cfg,
		replied: map[uint64]bool{},
		byBal:   map[register.Ballot]int{},
		pending: len(cfg.AcceptSet()),
	}
}

// Targets are the members to send the read to: S.
func (s *Skip) Targets() []membership.Member { return s.cfg.AcceptSet() }

// Outcome is Pending, Success (skip the key) or Failed (touch it).
func (s *Skip) Outcome() Outcome { return s.outcome }

// Ballot is the accepted ballot qa members of S agree on, valid on Success
// (zero when they agree that nothing was accepted).
func (s *Skip) Ballot() register.Ballot { return s.ballot }

// OnRead feeds one acceptor's reply: ok with its accepted ballot, or !ok
// for an error, a refusal or a lost reply. Members outside S and repeated
// replies are ignored.
func (s *Skip) OnRead(incarnation uint64, ok bool, accepted register.Ballot) {
	if s.outcome != Pending || s.replied[incarnation] {
		return
	}
	m, member := s.cfg.Member(incarnation)
	if !member || !m.Accept {
		return
	}
	s.replied[incarnation] = true
	s.pending--
	if ok {
		s.byBal[accepted]++
		if s.byBal[accepted] >= s.cfg.AcceptQuorum {
			s.outcome, s.ballot = Success, accepted
			return
		}
	}
	if !s.possible() {
		s.outcome = Failed
	}
}

func (s *Skip) possible() bool {
	if s.pending >= s.cfg.AcceptQuorum {
		return true
	}
	for _, n := range s.byBal {
		if n+s.pending >= s.cfg.AcceptQuorum {
			return true
		}
	}
	return false
}

// Expire ends a decision whose replies did not all come in time: the key
// is touched.
func (s *Skip) Expire() {
	if s.outcome == Pending {
		s.outcome = Failed
	}
}

// SkipReply is one member's answer to a rescan read, for Skippable.
type SkipReply struct {
	Incarnation uint64
	OK          bool
	Accepted    register.Ballot
}

// Skippable reports whether the replies let the rescan under cfg skip the
// key: the decision of Skip over a complete set of replies.
func Skippable(cfg *membership.Config, replies ...SkipReply) bool {
	s := NewSkip(cfg)
	for _, r := range replies {
		s.OnRead(r.Incarnation, r.OK, r.Accepted)
	}
	s.Expire()
	return s.Outcome() == Success
}
