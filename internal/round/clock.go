package round

import "github.com/kshaka-io/kshaka/register"

// Clock issues a proposer's ballots: (counter, id), with one counter for all
// keys. Every ballot it returns is new (DESIGN §2.1). Not safe for concurrent
// use; the caller serialises access.
type Clock struct {
	id      uint64
	counter uint64
}

// NewClock returns a clock for the proposer with the given non-zero ID,
// whose first ballot has counter 1.
func NewClock(id uint64) *Clock { return NewClockAt(id, 0) }

// NewClockAt returns a clock whose first ballot has counter start+1. A
// process that starts its counter at the wall clock in microseconds issues
// ballots above those of an earlier process with the same ID (which cannot
// have used a counter per microsecond), unless the wall clock went back.
func NewClockAt(id, start uint64) *Clock {
	if id == 0 {
		panic("round: proposer ID 0")
	}
	return &Clock{id: id, counter: start}
}

// ID is the proposer ID.
func (c *Clock) ID() uint64 { return c.id }

// Next returns a ballot never returned before.
func (c *Clock) Next() register.Ballot {
	c.counter++
	return register.Ballot{Counter: c.counter, Proposer: c.id}
}

// Observe fast-forwards the clock so that the next ballot is higher than b.
func (c *Clock) Observe(b register.Ballot) {
	c.counter = max(c.counter, b.Counter)
}
