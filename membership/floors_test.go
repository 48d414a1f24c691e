package membership

import (
	"errors"
	"strings"
	"testing"

	"github.com/kshaka-io/kshaka/register"
)

// TestFloorsOnlyGrow: the tombstone GC's floors (docs/design.md §10) may stay or
// rise from one epoch to the next, never go down, and Compatible says so.
func TestFloorsOnlyGrow(t *testing.T) {
	b := func(c uint64) register.Ballot { return register.Ballot{Counter: c, Proposer: 1} }
	base := Stable(3, Member{ID: "a", Addr: "a:1", Incarnation: 1}, Member{ID: "b", Addr: "b:1", Incarnation: 2},
		Member{ID: "c", Addr: "c:1", Incarnation: 3})
	base.RemovedBallot, base.VersionFloor = b(10), 5
	for _, tt := range []struct {
		name    string
		removed register.Ballot
		version uint64
		bad     []string
	}{
		{"kept", b(10), 5, nil},
		{"raised", b(11), 9, nil},
		{"same counter, higher proposer", register.Ballot{Counter: 10, Proposer: 2}, 5, nil},
		{"ballot lowered", b(9), 5, []string{"removed ballot 9.1 is below 10.1"}},
		{"version lowered", b(10), 4, []string{"version floor 4 is below 5"}},
		{"both lowered", register.Ballot{}, 0, []string{"removed ballot", "version floor 0 is below 5"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			next := base.Clone()
			next.Epoch++
			next.RemovedBallot, next.VersionFloor = tt.removed, tt.version
			err := CheckFloors(base, next)
			if cerr := Compatible(base, next); (cerr == nil) != (err == nil) {
				t.Fatalf("Compatible = %v, CheckFloors = %v", cerr, err)
			}
			if tt.bad == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, ErrFloorsLowered) || !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrFloorsLowered and ErrInvalid", err)
			}
			for _, s := range tt.bad {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("err = %v, want it to say %q", err, s)
				}
			}
		})
	}
}

// TestStepsKeepFloors: a membership change carries the floors forward, so
// an acceptor never sees them lowered.
func TestStepsKeepFloors(t *testing.T) {
	cur := Stable(4, Member{ID: "a", Addr: "a:1", Incarnation: 1}, Member{ID: "b", Addr: "b:1", Incarnation: 2},
		Member{ID: "c", Addr: "c:1", Incarnation: 3})
	cur.RemovedBallot, cur.VersionFloor = register.Ballot{Counter: 7, Proposer: 3}, 12
	for _, ch := range []Change{
		{Kind: Add, Member: Member{ID: "d", Addr: "d:1", Incarnation: 4}},
		{Kind: Remove, Member: Member{ID: "c", Incarnation: 3}},
	} {
		joint, final, err := Steps(cur, ch)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []Config{joint, final} {
			if c.RemovedBallot != cur.RemovedBallot || c.VersionFloor != cur.VersionFloor {
				t.Errorf("%v %s: epoch %d has floors %v/%d, want %v/%d", ch.Kind, ch.Member.ID, c.Epoch,
					c.RemovedBallot, c.VersionFloor, cur.RemovedBallot, cur.VersionFloor)
			}
		}
	}
	if !strings.Contains(cur.String(), "R=7.3 VF=12") {
		t.Errorf("String() = %q does not show the floors", cur.String())
	}
}
