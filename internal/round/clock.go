package round

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/kshaka-io/kshaka/register"
)

// ErrClockExhausted: the clock issued the ballot with counter 2^64-1 and
// has no higher one left. It never wraps (docs/design.md §2.1).
var ErrClockExhausted = errors.New("ballot clock exhausted")

// Clock issues a proposer's ballots: (counter, id), with one counter for all
// keys. Every ballot it returns is higher than every ballot it returned
// before, so it is new (docs/design.md §2.1); when no higher counter is left, Next
// fails instead of wrapping. Not safe for concurrent use; the caller
// serialises access.
//
// The clock alone does not make ballots new across processes: a process
// that starts again with the same ID may issue its earlier life's ballots,
// because Observe moves the counter ahead of any wall clock. Proposers pick
// a fresh random ID for every clock (package proposer).
type Clock struct {
	id      uint64
	counter uint64
	// now and lead bound Observe (NewWallClock); now is nil when unbounded.
	now  func() time.Time
	lead time.Duration
}

// NewClock returns a clock for the proposer with the given non-zero ID,
// whose first ballot has counter 1.
func NewClock(id uint64) *Clock { return NewClockAt(id, 0) }

// NewClockAt returns a clock whose first ballot has counter start+1 and
// whose Observe is unbounded (tests and the simulation, whose counters are
// not wall clocks).
func NewClockAt(id, start uint64) *Clock {
	if id == 0 {
		panic("round: proposer ID 0")
	}
	return &Clock{id: id, counter: start}
}

// NewWallClock returns a proposer's clock: its counter is at least now() in
// microseconds (it starts there, and Next never issues a counter below the
// time), and Observe does not fast-forward to a ballot more than lead
// ahead of now() (docs/design.md §2.1: acceptors refuse such ballots, and one
// counter serves every key, so following one would make every key fail).
func NewWallClock(id uint64, now func() time.Time, lead time.Duration) *Clock {
	c := NewClockAt(id, register.ClockCounter(now()))
	c.now, c.lead = now, lead
	return c
}

// ID is the proposer ID.
func (c *Clock) ID() uint64 { return c.id }

// Next returns a ballot higher than every ballot returned before, or
// ErrClockExhausted (and the zero ballot) when the last one had counter
// 2^64-1.
func (c *Clock) Next() (register.Ballot, error) {
	if c.counter == math.MaxUint64 {
		return register.Ballot{}, fmt.Errorf("%w: proposer %x is at counter 2^64-1 and cannot issue a higher ballot", ErrClockExhausted, c.id)
	}
	c.counter++
	if c.now != nil {
		// A wall clock follows the time: a proposer that waited (a backoff
		// after losing to another one) comes back above every ballot the
		// other issued meanwhile, instead of just above the stale conflict
		// it saw, which the other had long passed (docs/design.md §2.1).
		c.counter = max(c.counter, register.ClockCounter(c.now()))
	}
	return register.Ballot{Counter: c.counter, Proposer: c.id}, nil
}

// Observe fast-forwards the clock so that the next ballot is higher than b.
// A wall clock (NewWallClock) refuses a ballot whose counter is more than
// its lead ahead of now: it returns a *register.LeadError and leaves the
// counter where it was. That is safe: this proposer just keeps losing on
// the key that holds b, with that error, instead of pushing its counter
// for every key out of the acceptors' bounds or to the end of the counter
// space.
func (c *Clock) Observe(b register.Ballot) error {
	if c.now != nil {
		if err := register.CheckLead(b.Counter, c.now(), c.lead, "this proposer's"); err != nil {
			return fmt.Errorf("not fast-forwarding to ballot %v: %w", b, err)
		}
	}
	c.counter = max(c.counter, b.Counter)
	return nil
}
