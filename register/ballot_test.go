package register

import (
	"math"
	"math/rand/v2"
	"testing"
	"testing/quick"
)

// naiveCompare orders ballots as the pair (counter, proposer) in
// lexicographic order, written the long way (docs/design.md §2.1).
func naiveCompare(a, b Ballot) int {
	ta := [2]uint64{a.Counter, a.Proposer}
	tb := [2]uint64{b.Counter, b.Proposer}
	for i := range ta {
		if ta[i] != tb[i] {
			if ta[i] < tb[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// edgeBallot draws ballots that hit the edges often: zero, one, max and
// near-equal fields, so ties on the counter are exercised.
func edgeBallot(r *rand.Rand) Ballot {
	pick := func() uint64 {
		switch r.IntN(5) {
		case 0:
			return 0
		case 1:
			return 1
		case 2:
			return math.MaxUint64
		case 3:
			return uint64(r.IntN(4))
		}
		return r.Uint64()
	}
	return Ballot{Counter: pick(), Proposer: pick()}
}

// TestBallotOrderMatchesReference checks Compare, Less and Max against the
// naive lexicographic order (docs/design.md §2.1: by counter, then proposer ID).
func TestBallotOrderMatchesReference(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 200000; i++ {
		a, b := edgeBallot(r), edgeBallot(r)
		want := naiveCompare(a, b)
		if got := a.Compare(b); got != want {
			t.Fatalf("%v.Compare(%v) = %d, want %d", a, b, got, want)
		}
		if got := a.Less(b); got != (want < 0) {
			t.Fatalf("%v.Less(%v) = %v", a, b, got)
		}
		wantMax := a
		if want < 0 {
			wantMax = b
		}
		if got := a.Max(b); got != wantMax {
			t.Fatalf("%v.Max(%v) = %v, want %v", a, b, got, wantMax)
		}
	}
}

// TestBallotOrderProperties: antisymmetry, transitivity and totality, with
// testing/quick's generator on top of the edge generator above.
func TestBallotOrderProperties(t *testing.T) {
	antisym := func(a, b Ballot) bool { return a.Compare(b) == -b.Compare(a) }
	total := func(a, b Ballot) bool { return (a.Compare(b) == 0) == (a == b) }
	trans := func(a, b, c Ballot) bool {
		if a.Less(b) && b.Less(c) {
			return a.Less(c)
		}
		return true
	}
	maxIsUpperBound := func(a, b Ballot) bool {
		m := a.Max(b)
		return !m.Less(a) && !m.Less(b) && (m == a || m == b)
	}
	for _, f := range []any{antisym, total, trans, maxIsUpperBound} {
		if err := quick.Check(f, &quick.Config{MaxCount: 20000, Rand: nil}); err != nil {
			t.Error(err)
		}
	}
	// Ties on the counter, which quick's uniform draws almost never produce.
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 50000; i++ {
		a, b, c := edgeBallot(r), edgeBallot(r), edgeBallot(r)
		if !antisym(a, b) || !total(a, b) || !trans(a, b, c) || !trans(c, b, a) || !maxIsUpperBound(a, b) {
			t.Fatalf("order property fails for %v %v %v", a, b, c)
		}
	}
}

func TestBallotZeroAndValid(t *testing.T) {
	for _, tc := range []struct {
		b           Ballot
		zero, valid bool
	}{
		{Ballot{}, true, false},
		{Ballot{Counter: 1}, false, false},
		{Ballot{Proposer: 1}, false, false},
		{Ballot{Counter: 1, Proposer: 1}, false, true},
		{Ballot{Counter: math.MaxUint64, Proposer: math.MaxUint64}, false, true},
	} {
		if got := tc.b.IsZero(); got != tc.zero {
			t.Errorf("%v.IsZero() = %v", tc.b, got)
		}
		if got := tc.b.Valid(); got != tc.valid {
			t.Errorf("%v.Valid() = %v", tc.b, got)
		}
		// The zero ballot is the lowest ballot (docs/design.md §2.1: "none").
		if !tc.zero && !(Ballot{}).Less(tc.b) {
			t.Errorf("zero ballot is not below %v", tc.b)
		}
	}
	if got := (Ballot{Counter: 3, Proposer: 0xab}).String(); got != "3.ab" {
		t.Errorf("String() = %q", got)
	}
}
