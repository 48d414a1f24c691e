package register

import "fmt"

// Ballot orders proposals: by Counter, then by Proposer. Every attempt of a
// change uses a ballot that was never used before (docs/design.md §2.1); the
// proposer ID makes ballots of different proposers distinct. The zero Ballot
// is lower than every ballot a proposer issues and means "none".
type Ballot struct {
	Counter  uint64
	Proposer uint64
}

// Compare returns -1, 0 or +1 as b is lower than, equal to or higher than o.
func (b Ballot) Compare(o Ballot) int {
	switch {
	case b.Counter < o.Counter:
		return -1
	case b.Counter > o.Counter:
		return 1
	case b.Proposer < o.Proposer:
		return -1
	case b.Proposer > o.Proposer:
		return 1
	}
	return 0
}

// Less reports whether b orders before o.
func (b Ballot) Less(o Ballot) bool { return b.Compare(o) < 0 }

// IsZero reports whether b is the zero ballot ("none").
func (b Ballot) IsZero() bool { return b == Ballot{} }

// Max returns the higher of b and o.
func (b Ballot) Max(o Ballot) Ballot {
	if b.Less(o) {
		return o
	}
	return b
}

// Valid reports whether b can be proposed: a proposer never sends the zero
// ballot nor a ballot without a proposer ID.
func (b Ballot) Valid() bool { return b.Counter != 0 && b.Proposer != 0 }

func (b Ballot) String() string { return fmt.Sprintf("%d.%x", b.Counter, b.Proposer) }
