package sim

import (
	"testing"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// TestSkipRule checks that the negative controls' skipRule is the withdrawn
// rule (skip when qa members of S report the same accepted ballot, touch
// otherwise), so that RescanSkip breaks the rescan exactly the way the old
// code did. It asserts nothing about safety: the rule is unsafe
// (SurvivingBallot).
func TestSkipRule(t *testing.T) {
	mem := func(id string, inc uint64, p, s bool) membership.Member {
		return membership.Member{ID: id, Addr: id, Incarnation: inc, Prepare: p, Accept: s}
	}
	stable3 := func() *membership.Config {
		c := membership.Stable(1, mem("a", 1, true, true), mem("b", 2, true, true), mem("c", 3, true, true))
		return &c
	}
	// Adding d to {a,b,c}: P = {a,b,c}, qp = 2; S = {a,b,c,d}, qa = 3.
	addJoint := func() *membership.Config {
		return &membership.Config{Epoch: 2, PrepareQuorum: 2, AcceptQuorum: 3, Members: []membership.Member{
			mem("a", 1, true, true), mem("b", 2, true, true), mem("c", 3, true, true), mem("d", 4, false, true)}}
	}
	bl := func(c uint64) register.Ballot { return register.Ballot{Counter: c, Proposer: 1} }
	type reply struct {
		inc uint64
		ok  bool
		acc register.Ballot
	}
	for _, tc := range []struct {
		name    string
		cfg     func() *membership.Config
		replies []reply
		want    round.Outcome
	}{
		{"stable, two agree", stable3, []reply{{1, true, bl(1)}, {2, true, bl(1)}}, round.Success},
		{"stable, three ballots", stable3, []reply{{1, true, bl(1)}, {2, true, bl(2)}, {3, true, bl(3)}}, round.Failed},
		{"stable, errors do not agree on the zero ballot", stable3, []reply{{1, false, bl(0)}, {2, false, bl(0)}}, round.Failed},
		{"stable, duplicates count once", stable3, []reply{{1, true, bl(1)}, {1, true, bl(1)}}, round.Pending},
		{"joint add, old accept quorum only", addJoint, []reply{{1, true, bl(2)}, {2, true, bl(2)}, {3, true, bl(1)}, {4, true, bl(0)}}, round.Failed},
		{"joint add, qa of S", addJoint, []reply{{1, true, bl(2)}, {4, true, bl(2)}, {2, true, bl(2)}}, round.Success},
		// The counterexample's shape: qa agree on s's ballot while one
		// member holds a higher accepted ballot. The rule skips.
		{"joint add, a higher ballot beside the agreement", addJoint, []reply{{3, true, bl(9)}, {1, true, bl(2)}, {2, true, bl(2)}, {4, true, bl(2)}}, round.Success},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSkipRule(tc.cfg())
			for _, r := range tc.replies {
				s.OnRead(r.inc, r.ok, r.acc)
			}
			if s.Outcome() != tc.want {
				t.Fatalf("outcome %v, want %v", s.Outcome(), tc.want)
			}
		})
	}
}
