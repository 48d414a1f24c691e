package membership

import (
	"fmt"
)

// ChangeKind says what a membership change does.
type ChangeKind int

const (
	// Add grows the cluster by one member.
	Add ChangeKind = iota + 1
	// Remove shrinks the cluster by one member.
	Remove
)

func (k ChangeKind) String() string {
	switch k {
	case Add:
		return "add"
	case Remove:
		return "remove"
	}
	return fmt.Sprintf("ChangeKind(%d)", int(k))
}

// Change is one membership change. A replacement (disk loss) is a Remove of
// the old incarnation followed by an Add of the new one.
type Change struct {
	Kind ChangeKind
	// Member is the member to add (its ID, address and incarnation) or to
	// remove (matched by incarnation).
	Member Member
}

// Steps plans a change from the stable configuration cur (docs/design.md §5). It
// returns the two configurations to install in order, with epochs cur.Epoch+1
// and cur.Epoch+2:
//
//	add x:    joint: P = M, qp = q(n);     S = M+x, qa = q(n+1)   final: P = S = M+x
//	remove x: joint: P = M−x, qp = q(n−1); S = M,   qa = q(n)     final: P = S = M−x
//	          (n odd: joint: P = S = M−x, quorums q(n−1))
//
// Either way every accept quorum of joint holds an accept quorum of final,
// so after the rescan every key lives on an accept quorum of final.
//
// Both keep cur's GC floors (docs/design.md §10).
//
// The caller installs joint, waits until it is fenced, rescans every key
// under it, then installs final and waits until that is fenced. For an add,
// the new member gets joint before everyone else.
func Steps(cur Config, ch Change) (joint, final Config, err error) {
	if err := cur.Validate(); err != nil {
		return Config{}, Config{}, err
	}
	if !cur.IsStable() {
		return Config{}, Config{}, fmt.Errorf("%w: epoch %d is in the middle of a change", ErrInvalid, cur.Epoch)
	}
	n := len(cur.Members)
	switch ch.Kind {
	case Add:
		m := ch.Member
		if _, dup := cur.Member(m.Incarnation); dup {
			return Config{}, Config{}, fmt.Errorf("%w: incarnation %x is already a member", ErrInvalid, m.Incarnation)
		}
		if _, dup := cur.MemberByID(m.ID); dup {
			return Config{}, Config{}, fmt.Errorf("%w: member ID %q is already taken", ErrInvalid, m.ID)
		}
		joint = cur.Clone()
		joint.Epoch++
		m.Prepare, m.Accept = false, true
		joint.Members = append(joint.Members, m)
		sortMembers(joint.Members)
		joint.PrepareQuorum = Majority(n)
		joint.AcceptQuorum = Majority(n + 1)
		final = Stable(cur.Epoch+2, joint.Members...).WithFloorsOf(cur)
	case Remove:
		if _, ok := cur.Member(ch.Member.Incarnation); !ok {
			return Config{}, Config{}, fmt.Errorf("%w: incarnation %x is not a member", ErrInvalid, ch.Member.Incarnation)
		}
		if n <= 1 {
			return Config{}, Config{}, fmt.Errorf("%w: cannot remove the last member", ErrInvalid)
		}
		joint = cur.Clone()
		joint.Epoch++
		var rest []Member
		for i, m := range joint.Members {
			if m.Incarnation == ch.Member.Incarnation {
				joint.Members[i].Prepare = false
			} else {
				rest = append(rest, m)
			}
		}
		joint.PrepareQuorum = Majority(n - 1)
		joint.AcceptQuorum = Majority(n)
		if n%2 == 1 {
			// From an odd n, q(n)−1 < q(n−1): a key on an accept
			// quorum of M that includes x would be left on too few
			// members of M−x, and the next change could lose it. Drop
			// x from both sets at once (the paper's 2F+3 → 2F+2, "as if
			// it had always been down"), so the rescan and every write
			// of the joint phase land on q(n−1) members of M−x.
			joint = Stable(cur.Epoch+1, rest...).WithFloorsOf(cur)
		}
		final = Stable(cur.Epoch+2, rest...).WithFloorsOf(cur)
	default:
		return Config{}, Config{}, fmt.Errorf("%w: unknown change kind %d", ErrInvalid, ch.Kind)
	}
	if err := Compatible(cur, joint); err != nil {
		return Config{}, Config{}, fmt.Errorf("while planning %s %s: %w", ch.Kind, ch.Member.ID, err)
	}
	if err := Compatible(joint, final); err != nil {
		return Config{}, Config{}, fmt.Errorf("while planning %s %s: %w", ch.Kind, ch.Member.ID, err)
	}
	return joint, final, nil
}
