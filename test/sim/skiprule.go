package sim

import (
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// skipRule is the withdrawn rescan skip rule, kept only for the negative
// controls RescanSkip and SkipBelowAcceptQuorum of the operator's machine
// (change.Controls): when one is set, the machine's Rescan action carries
// SkipAgreeing and the simulated operator's and the explorer's rescan
// apply this rule. IT IS NOT SAFE, and nothing outside this package uses
// it: the shipping rescan (proposer.Client.Rescan) and the simulation's
// correct operator touch every key, and the operator refuses a rescan that
// asks to skip.
//
// The rule, as docs/design.md §5 used to allow it: the rescan under the fenced
// joint configuration cfg reads the key from every member of S (Targets);
// when qa members of S report the same accepted ballot, the key is skipped
// (Success), otherwise it is touched (Failed). Agreement counts only
// replies that were served (ok): an error, a lost reply or a stale-epoch
// refusal counts as no reply.
//
// Why it is wrong: agreement of qa members of S says nothing about a
// higher ballot B promised on other members and accepted on one (an
// unknown outcome). B survives beside the skipped key; after two changes
// the members that promised B no longer block a lower ballot, a write below
// B is acknowledged on members that never saw B, and a later prepare that
// reaches B's acceptor brings B's value back over it (SurvivingBallot). A
// touch is forced above B, which is what makes the touch safe.
type skipRule struct {
	cfg     *membership.Config
	replied map[uint64]bool
	byBal   map[register.Ballot]int
	pending int // members of S that have not replied
	outcome round.Outcome
	ballot  register.Ballot
}

// newSkipRule starts the skip decision for one key under cfg.
func newSkipRule(cfg *membership.Config) *skipRule {
	return &skipRule{
		cfg:     cfg,
		replied: map[uint64]bool{},
		byBal:   map[register.Ballot]int{},
		pending: len(cfg.AcceptSet()),
	}
}

// Targets are the members to send the read to: S.
func (s *skipRule) Targets() []membership.Member { return s.cfg.AcceptSet() }

// Outcome is Pending, Success (skip the key) or Failed (touch it).
func (s *skipRule) Outcome() round.Outcome { return s.outcome }

// Ballot is the accepted ballot qa members of S agree on, valid on Success
// (zero when they agree that nothing was accepted).
func (s *skipRule) Ballot() register.Ballot { return s.ballot }

// OnRead feeds one acceptor's reply: ok with its accepted ballot, or !ok
// for an error, a refusal or a lost reply. Members outside S and repeated
// replies are ignored.
func (s *skipRule) OnRead(incarnation uint64, ok bool, accepted register.Ballot) {
	if s.outcome != round.Pending || s.replied[incarnation] {
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
			s.outcome, s.ballot = round.Success, accepted
			return
		}
	}
	if !s.possible() {
		s.outcome = round.Failed
	}
}

func (s *skipRule) possible() bool {
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
func (s *skipRule) Expire() {
	if s.outcome == round.Pending {
		s.outcome = round.Failed
	}
}
