package membership

import (
	"errors"
	"fmt"
	"math/bits"
	"testing"
)

func stableOf(epoch uint64, n int) Config {
	var ms []Member
	for i := 0; i < n; i++ {
		ms = append(ms, Member{ID: fmt.Sprintf("m%d", 2*i+1), Addr: fmt.Sprintf("m%d:7000", 2*i+1), Incarnation: uint64(100 + i)})
	}
	return Stable(epoch, ms...)
}

// masks returns the P and S bitmasks of a and b over the union of their
// members, indexed by incarnation in order of first appearance.
func masks(a, b Config) (pa, sa, pb, sb uint) {
	idx := map[uint64]int{}
	bit := func(m Member) uint {
		if _, ok := idx[m.Incarnation]; !ok {
			idx[m.Incarnation] = len(idx)
		}
		return 1 << idx[m.Incarnation]
	}
	for _, m := range a.Members {
		if m.Prepare {
			pa |= bit(m)
		}
		if m.Accept {
			sa |= bit(m)
		}
	}
	for _, m := range b.Members {
		if m.Prepare {
			pb |= bit(m)
		}
		if m.Accept {
			sb |= bit(m)
		}
	}
	return pa, sa, pb, sb
}

// bruteCompatible checks, by subset enumeration, that every prepare quorum
// of each configuration meets every accept quorum of the other and of
// itself.
func bruteCompatible(a, b Config) bool {
	pa, sa, pb, sb := masks(a, b)
	return bruteIntersect(pa, sb, a.PrepareQuorum, b.AcceptQuorum) &&
		bruteIntersect(pb, sa, b.PrepareQuorum, a.AcceptQuorum) &&
		bruteIntersect(pa, sa, a.PrepareQuorum, a.AcceptQuorum) &&
		bruteIntersect(pb, sb, b.PrepareQuorum, b.AcceptQuorum)
}

func setIDs(ms []Member) string {
	s := ""
	for _, m := range ms {
		s += m.ID + ","
	}
	return s
}

// TestStepsExhaustive plans every add (at every position in ID order) and
// every remove from stable configurations of 1..9 members and checks the
// shapes of docs/design.md §5 and Compatible in both directions, by brute force
// (docs/design.md §3; paper "Cluster membership change").
func TestStepsExhaustive(t *testing.T) {
	transitions := 0
	for n := 1; n <= 9; n++ {
		cur := stableOf(7, n)
		check := func(ch Change, joint, final Config) {
			t.Helper()
			if joint.Epoch != 8 || final.Epoch != 9 {
				t.Fatalf("%s %s: epochs %d, %d", ch.Kind, ch.Member.ID, joint.Epoch, final.Epoch)
			}
			for _, pair := range [][2]Config{{cur, joint}, {joint, cur}, {joint, final}, {final, joint}} {
				if err := Compatible(pair[0], pair[1]); err != nil {
					t.Fatalf("%s %s from %v: Compatible(%v, %v) = %v", ch.Kind, ch.Member.ID, cur, pair[0], pair[1], err)
				}
				if !bruteCompatible(pair[0], pair[1]) {
					t.Fatalf("%s %s from %v: %v and %v fail the brute-force check", ch.Kind, ch.Member.ID, cur, pair[0], pair[1])
				}
			}
			if !final.IsStable() || final.Validate() != nil {
				t.Fatalf("final %v is not a valid stable configuration", final)
			}
			transitions++
		}
		// Add: before, between and after the existing IDs.
		for pos := 0; pos <= n; pos++ {
			x := Member{ID: fmt.Sprintf("m%d", 2*pos), Addr: "new:7000", Incarnation: 999}
			joint, final, err := Steps(cur, Change{Kind: Add, Member: x})
			if err != nil {
				t.Fatalf("add to %d: %v", n, err)
			}
			// joint: P = M, qp = q(n); S = M+x, qa = q(n+1).
			if got, want := setIDs(joint.PrepareSet()), setIDs(cur.Members); got != want {
				t.Fatalf("add: joint P = %s, want %s", got, want)
			}
			if len(joint.AcceptSet()) != n+1 || joint.PrepareQuorum != Majority(n) || joint.AcceptQuorum != Majority(n+1) {
				t.Fatalf("add: joint %v", joint)
			}
			if m, ok := joint.Member(999); !ok || m.Prepare || !m.Accept {
				t.Fatalf("add: new member in joint is %+v", m)
			}
			if len(final.Members) != n+1 || final.PrepareQuorum != Majority(n+1) {
				t.Fatalf("add: final %v", final)
			}
			check(Change{Kind: Add, Member: x}, joint, final)
		}
		if n == 1 {
			continue
		}
		for _, x := range cur.Members {
			joint, final, err := Steps(cur, Change{Kind: Remove, Member: Member{Incarnation: x.Incarnation}})
			if err != nil {
				t.Fatalf("remove from %d: %v", n, err)
			}
			if n%2 == 0 {
				// joint: P = M−x, qp = q(n−1); S = M, qa = q(n).
				if len(joint.PrepareSet()) != n-1 || len(joint.AcceptSet()) != n ||
					joint.PrepareQuorum != Majority(n-1) || joint.AcceptQuorum != Majority(n) {
					t.Fatalf("remove: joint %v", joint)
				}
				if m, _ := joint.Member(x.Incarnation); m.Prepare || !m.Accept {
					t.Fatalf("remove: leaving member in joint is %+v", m)
				}
			} else {
				// n odd: joint: P = S = M−x, quorums q(n−1) (paper
				// 2F+3 → 2F+2).
				if _, ok := joint.Member(x.Incarnation); ok || !joint.IsStable() || len(joint.Members) != n-1 {
					t.Fatalf("remove from odd %d: joint %v", n, joint)
				}
			}
			if _, ok := final.Member(x.Incarnation); ok || len(final.Members) != n-1 {
				t.Fatalf("remove: final %v still has %s", final, x.ID)
			}
			check(Change{Kind: Remove, Member: x}, joint, final)
		}
	}
	t.Logf("%d transitions checked", transitions)
}

// TestStepsDoNotAliasInput: planning must not modify the current
// configuration (the operator keeps it in status).
func TestStepsDoNotAliasInput(t *testing.T) {
	cur := stableOf(1, 3)
	before := cur.Clone()
	joint, _, err := Steps(cur, Change{Kind: Remove, Member: cur.Members[0]})
	if err != nil {
		t.Fatal(err)
	}
	joint.Members[1].ID = "changed"
	for i := range cur.Members {
		if cur.Members[i] != before.Members[i] {
			t.Fatalf("Steps changed its input: %v", cur)
		}
	}
}

func TestStepsRefuses(t *testing.T) {
	cur := stableOf(1, 3)
	joint, _, _ := Steps(cur, Change{Kind: Add, Member: Member{ID: "z", Addr: "z:1", Incarnation: 5}})
	for _, tc := range []struct {
		name string
		cur  Config
		ch   Change
	}{
		{"invalid current", Config{}, Change{Kind: Add, Member: Member{ID: "z", Addr: "z:1", Incarnation: 5}}},
		{"in the middle of a change", joint, Change{Kind: Add, Member: Member{ID: "y", Addr: "y:1", Incarnation: 6}}},
		{"incarnation already a member", cur, Change{Kind: Add, Member: Member{ID: "z", Addr: "z:1", Incarnation: 100}}},
		{"ID already taken", cur, Change{Kind: Add, Member: Member{ID: "m1", Addr: "z:1", Incarnation: 5}}},
		{"remove a non-member", cur, Change{Kind: Remove, Member: Member{Incarnation: 5}}},
		{"remove the last member", stableOf(1, 1), Change{Kind: Remove, Member: Member{Incarnation: 100}}},
		{"unknown kind", cur, Change{Kind: 9}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, _, err := Steps(tc.cur, tc.ch); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Steps = %v, want ErrInvalid", err)
			}
		})
	}
	if Add.String() != "add" || Remove.String() != "remove" || ChangeKind(9).String() != "ChangeKind(9)" {
		t.Fatal("ChangeKind.String")
	}
}

// TestWhyRescan documents, with the quorum math alone, why every key must be
// rescanned between steps (docs/design.md §5; research memo §2.5.4): after
// 3 → 4 (add d) → 3 (remove a) without a rescan, a value on an accept quorum
// of the first configuration ({a,c}) misses a prepare quorum of the last
// ({b,d}), although each adjacent pair is compatible.
func TestWhyRescan(t *testing.T) {
	mk := func(id string, inc uint64) Member { return Member{ID: id, Addr: id + ":1", Incarnation: inc} }
	c1 := Stable(1, mk("a", 1), mk("b", 2), mk("c", 3))
	j1, f1, err := Steps(c1, Change{Kind: Add, Member: mk("d", 4)})
	if err != nil {
		t.Fatal(err)
	}
	j2, f2, err := Steps(f1, Change{Kind: Remove, Member: mk("a", 1)})
	if err != nil {
		t.Fatal(err)
	}
	for _, pair := range [][2]Config{{c1, j1}, {j1, f1}, {f1, j2}, {j2, f2}} {
		if err := Compatible(pair[0], pair[1]); err != nil {
			t.Fatal(err)
		}
	}
	if Intersect(f2, c1) {
		t.Fatalf("%v and %v intersect; the rescan would be unnecessary", f2, c1)
	}
	pa, _, _, sb := masks(f2, c1)
	if bruteIntersect(pa, sb, f2.PrepareQuorum, c1.AcceptQuorum) || bits.OnesCount(pa) != 3 {
		t.Fatal("brute force disagrees")
	}
}

// TestStepsKeepKeysOnFinalAcceptQuorum checks the invariant the rescan is
// for (docs/design.md §5: "each key lives on an accept quorum of the current
// configuration"): the rescan and every write during the joint phase land
// on an accept quorum of the joint configuration, so every such quorum must
// hold an accept quorum of the final one once the leaving member is gone.
// Otherwise a later change's prepare quorum can miss the key: after
// 5 → 4 (remove x), a key on {x,a,b} sits on {a,b} only, and removing a
// next gives a joint prepare quorum {c,d} that misses it (the paper's
// caveat for 2F+3 → 2F+2: "a rescan is required before any later
// expansion"). Brute force over the accept quorums of the joint
// configuration, for stable configurations of 1..9 members.
func TestStepsKeepKeysOnFinalAcceptQuorum(t *testing.T) {
	for n := 1; n <= 9; n++ {
		cur := stableOf(1, n)
		var changes []Change
		changes = append(changes, Change{Kind: Add, Member: Member{ID: "z", Addr: "z:1", Incarnation: 999}})
		if n > 1 {
			for _, m := range cur.Members {
				changes = append(changes, Change{Kind: Remove, Member: m})
			}
		}
		for _, ch := range changes {
			joint, final, err := Steps(cur, ch)
			if err != nil {
				t.Fatal(err)
			}
			_, sj, _, sf := masks(joint, final)
			worst := bits.OnesCount(sj) // fewest final accept members in a joint accept quorum
			for a := sj; ; a = (a - 1) & sj {
				if bits.OnesCount(a) == joint.AcceptQuorum {
					worst = min(worst, bits.OnesCount(a&sf))
				}
				if a == 0 {
					break
				}
			}
			if worst < final.AcceptQuorum {
				t.Errorf("%s %s from %d members: joint %v lets a key sit on %d members of final %v",
					ch.Kind, ch.Member.ID, n, joint, worst, final)
			}
		}
	}
}
