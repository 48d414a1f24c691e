package register

import (
	"errors"
	"fmt"
)

// MaxLineage is the most links a value carries (docs/design.md §11): the
// creators of the last MaxLineage proposals that changed the register.
const MaxLineage = 16

// ErrLineage is wrapped by CheckLineage's refusals.
var ErrLineage = errors.New("register: malformed lineage")

// Link is one entry of a value's lineage: the proposal at Ballot created
// the versions above the next-older link's Version, up to and including
// Version.
type Link struct {
	Ballot  Ballot
	Version uint64
}

// CreatedBy returns the ballot of the proposal that created version x of
// the register, as far as v's lineage tells. known is true only when x lies
// in a link's range and that range's lower bound is known: the range of
// link i is (Lineage[i+1].Version, Lineage[i].Version]; the oldest link's
// lower bound is unknown (older proposals fell off), so of its range only
// its own Version is known.
func (v Value) CreatedBy(x uint64) (creator Ballot, known bool) {
	l := v.Lineage
	for i, k := range l {
		if x > k.Version {
			return Ballot{}, false
		}
		if i+1 < len(l) {
			if x > l[i+1].Version {
				return k.Ballot, true
			}
			continue
		}
		if x == k.Version {
			return k.Ballot, true
		}
	}
	return Ballot{}, false
}

// Creator is the ballot of the proposal that created v's version (its
// newest link), and false when v carries no lineage.
func (v Value) Creator() (Ballot, bool) {
	if len(v.Lineage) == 0 {
		return Ballot{}, false
	}
	return v.Lineage[0].Ballot, true
}

// CheckLineage reports what is wrong with v's lineage, wrapping
// ErrLineage, or nil. An empty lineage is valid (a value written before
// lineages existed). Otherwise: at most MaxLineage links, the newest link's
// Version is v.Version, versions and ballots strictly decrease from the
// newest link to the oldest, every ballot is one a proposer can send and
// no version is 0.
func CheckLineage(v Value) error {
	l := v.Lineage
	if len(l) == 0 {
		return nil
	}
	if len(l) > MaxLineage {
		return fmt.Errorf("%w: %d links, more than the limit of %d", ErrLineage, len(l), MaxLineage)
	}
	if l[0].Version != v.Version {
		return fmt.Errorf("%w: newest link has version %d, the value %d", ErrLineage, l[0].Version, v.Version)
	}
	for i, k := range l {
		switch {
		case !k.Ballot.Valid():
			return fmt.Errorf("%w: link %d: ballot %v is invalid (or the lineage is not whole links)", ErrLineage, i, k.Ballot)
		case k.Version == 0:
			return fmt.Errorf("%w: link %d: version 0 was never created", ErrLineage, i)
		case i > 0 && k.Version >= l[i-1].Version:
			return fmt.Errorf("%w: link %d: version %d is not below %d", ErrLineage, i, k.Version, l[i-1].Version)
		case i > 0 && !k.Ballot.Less(l[i-1].Ballot):
			return fmt.Errorf("%w: link %d: ballot %v is not below %v", ErrLineage, i, k.Ballot, l[i-1].Ballot)
		}
	}
	return nil
}

// Stamp returns next, the value a proposal at ballot b made from base, with
// its lineage (docs/design.md §11): unchanged from base when next keeps
// base's version (an identity proposal, a rejected change: a re-proposal
// keeps the original proposal's identity), else b's link followed by
// base's lineage, at most keep links (MaxLineage when keep is not in
// 1…MaxLineage). Change functions return values without lineage; the
// proposer stamps in this one place. A base lineage that b does not
// outrank, or a version that does not grow, starts a new lineage.
func Stamp(next, base Value, b Ballot, keep int) Value {
	if keep < 1 || keep > MaxLineage {
		keep = MaxLineage
	}
	if next.Version == base.Version {
		next.Lineage = cloneLinks(base.Lineage)
		return next
	}
	if next.Version == 0 || !b.Valid() {
		next.Lineage = nil
		return next
	}
	old := base.Lineage
	if len(old) > 0 && (old[0].Version >= next.Version || !old[0].Ballot.Less(b)) {
		old = nil
	}
	n := min(len(old)+1, keep)
	l := make([]Link, 0, n)
	l = append(l, Link{Ballot: b, Version: next.Version})
	next.Lineage = append(l, old[:n-1]...)
	return next
}

func cloneLinks(l []Link) []Link {
	if l == nil {
		return nil
	}
	return append([]Link(nil), l...)
}
