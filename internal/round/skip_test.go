package round

import (
	"fmt"
	"testing"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// TestSkip: the rescan skips a key when qa members of S report the same
// accepted ballot (DESIGN §5 step 3) and touches it otherwise.
func TestSkip(t *testing.T) {
	b1, b2, b3 := bl(1, 1), bl(2, 1), bl(3, 1)
	for _, tc := range []struct {
		name    string
		cfg     func() *membership.Config
		replies []readReply
		expire  bool
		want    Outcome
		ballot  register.Ballot
	}{
		{"stable, two agree", stable3, []readReply{{a, true, b1}, {b, true, b1}}, false, Success, b1},
		{"stable, agreement after a disagreement", stable3, []readReply{{a, true, b1}, {b, true, b2}, {c, true, b1}}, false, Success, b1},
		{"stable, three ballots", stable3, []readReply{{a, true, b1}, {b, true, b2}, {c, true, b3}}, false, Failed, zb},
		{"stable, one reply then two errors", stable3, []readReply{{a, true, b1}, {b, false, zb}, {c, false, zb}}, false, Failed, zb},
		{"stable, errors do not agree on the zero ballot", stable3, []readReply{{a, false, zb}, {b, false, zb}}, false, Failed, zb},
		{"stable, nothing accepted anywhere", stable3, []readReply{{a, true, zb}, {c, true, zb}}, false, Success, zb},
		{"stable, first reply alone is not enough", stable3, []readReply{{a, true, b3}}, false, Pending, zb},
		{"stable, duplicates count once", stable3, []readReply{{a, true, b1}, {a, true, b1}}, false, Pending, zb},
		{"stable, non-members ignored", stable3, []readReply{{a, true, b1}, {stranger, true, b1}}, false, Pending, zb},
		{"stable, expired", stable3, []readReply{{a, true, b1}}, true, Failed, zb},
		{"flexible, qa − 1 is not enough", flexible, []readReply{{a, true, b2}, {b, true, b2}, {c, true, b1}, {d, true, b1}}, false, Failed, zb},
		{"flexible, accept quorum", flexible, []readReply{{a, true, b2}, {b, true, b2}, {d, true, b2}}, false, Success, b2},
		// The add step: S = {a,b,c,d}, qa = 3. The new member d is empty
		// until the rescan writes to it; a key on the old quorum {a,b}
		// only must be touched.
		{"joint add, old accept quorum only", addJoint, []readReply{{a, true, b2}, {b, true, b2}, {c, true, b1}, {d, true, zb}}, false, Failed, zb},
		{"joint add, P agrees, S short of qa", addJoint, []readReply{{a, true, b2}, {b, true, b2}, {d, false, zb}, {c, true, b1}}, false, Failed, zb},
		{"joint add, qa of S via the new member", addJoint, []readReply{{a, true, b2}, {d, true, b2}, {b, true, b2}}, false, Success, b2},
		{"joint add, qa of S without the new member", addJoint, []readReply{{a, true, b2}, {b, true, b2}, {c, true, b2}}, false, Success, b2},
		{"joint add, S agrees with one of P", addJoint, []readReply{{a, true, b2}, {d, true, b2}, {c, true, b2}, {b, true, b1}}, false, Success, b2},
		// The remove step of an even cluster: the leaving member c is in
		// S, not in P, and its reply counts.
		{"joint remove, leaving member counts in S", removeJoint, []readReply{{a, true, b2}, {c, true, b2}}, false, Success, b2},
		{"joint remove, no agreement", removeJoint, []readReply{{a, true, b2}, {c, true, b1}, {b, true, b3}}, false, Failed, zb},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSkip(tc.cfg())
			var rs []SkipReply
			for _, rep := range tc.replies {
				s.OnRead(rep.inc, rep.ok, rep.acc)
				rs = append(rs, SkipReply{Incarnation: rep.inc, OK: rep.ok, Accepted: rep.acc})
			}
			if tc.expire {
				s.Expire()
			}
			if s.Outcome() != tc.want {
				t.Fatalf("outcome %v, want %v", s.Outcome(), tc.want)
			}
			if tc.want == Success && s.Ballot() != tc.ballot {
				t.Fatalf("agreed on %v, want %v", s.Ballot(), tc.ballot)
			}
			if got := Skippable(tc.cfg(), rs...); got != (tc.want == Success) {
				t.Fatalf("Skippable = %v, want %v", got, tc.want == Success)
			}
		})
	}
}

func TestSkipTargetsAcceptSet(t *testing.T) {
	for _, tc := range []struct {
		cfg  *membership.Config
		want []uint64
	}{{addJoint(), []uint64{a, b, c, d}}, {removeJoint(), []uint64{a, b, c}}} {
		var got []uint64
		for _, m := range NewSkip(tc.cfg).Targets() {
			got = append(got, m.Incarnation)
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Fatalf("%v: targets %v, want S = %v", tc.cfg, got, tc.want)
		}
	}
	// A prepare-only member is no target and its replies do not count.
	cfg := &membership.Config{Epoch: 2, PrepareQuorum: 2, AcceptQuorum: 2, Members: []membership.Member{
		mem("a", a, true, true), mem("b", b, true, true), mem("c", c, true, false)}}
	s := NewSkip(cfg)
	s.OnRead(c, true, bl(1, 1))
	s.OnRead(a, true, bl(1, 1))
	if s.Outcome() != Pending {
		t.Fatalf("a reply from outside S counted: %v", s.Outcome())
	}
}

// TestSkipPremise checks the premise of the skip rule for every change
// membership.Steps plans, up to nine members: every accept quorum of the
// configuration before the change meets every qa-subset of the joint
// accept set, so qa members of S that agree on a ballot have seen every
// value chosen before the fence.
func TestSkipPremise(t *testing.T) {
	for n := 1; n <= 9; n++ {
		var ms []membership.Member
		for i := range n {
			ms = append(ms, mem(fmt.Sprintf("m%d", i), uint64(i+1), true, true))
		}
		cur := membership.Stable(1, ms...)
		changes := []membership.Change{{Kind: membership.Add, Member: mem("z", 999, false, false)}}
		if n > 1 {
			for _, m := range cur.Members {
				changes = append(changes, membership.Change{Kind: membership.Remove, Member: m})
			}
		}
		for _, ch := range changes {
			joint, _, err := membership.Steps(cur, ch)
			if err != nil {
				t.Fatal(err)
			}
			// Intersect checks prepare quorums of its first argument:
			// present cur's accept quorums as prepare quorums.
			old := cur.Clone()
			for i := range old.Members {
				old.Members[i].Prepare = old.Members[i].Accept
			}
			old.PrepareQuorum = old.AcceptQuorum
			if !membership.Intersect(old, joint) {
				t.Errorf("%s %s from %d members: an accept quorum of %v misses a qa-subset of joint %v", ch.Kind, ch.Member.ID, n, cur, joint)
			}
		}
	}
}
