package register

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// DefaultMaxLead is how far a ballot counter may run ahead of the wall clock
// of the node that checks it, by default (docs/design.md §2.1, "Ballots are
// bounded"): ten minutes of microseconds. Proposers start their counters at
// the wall clock in microseconds and only fast-forward past ballots they
// were shown, so an honest counter stays close to the clocks; one far ahead
// is a broken clock or a broken sender, and taking it would let a single
// request make a key (through the promise floor, every key) unwritable.
const DefaultMaxLead = 10 * time.Minute

// ErrTooFarAhead is wrapped by every LeadError.
var ErrTooFarAhead = errors.New("ballot counter too far ahead of the clock")

// TooFarAheadReason and ErrorDomain name a LeadError on the wire: the
// acceptor attaches them as a google.rpc.ErrorInfo to its INVALID_ARGUMENT
// status. Unlike a malformed request, the refusal depends on the time: a
// later delivery of the same accept may be taken, so a proposer counts it
// as a lost reply, not as proof that the accept never landed.
const (
	TooFarAheadReason = "BALLOT_TOO_FAR_AHEAD"
	ErrorDomain       = "kshaka.io"
)

// ClockCounter is the ballot counter of wall-clock time t: microseconds since
// the Unix epoch, 0 before it.
func ClockCounter(t time.Time) uint64 {
	if us := t.UnixMicro(); us > 0 {
		return uint64(us)
	}
	return 0
}

// MaxCounter is the highest ballot counter allowed at time now with the
// given lead: ClockCounter(now) plus lead in microseconds (a negative lead
// counts as zero), saturating at 2^64-1 instead of wrapping. It is a bound
// to compare against, never stored.
func MaxCounter(now time.Time, lead time.Duration) uint64 {
	c, l := ClockCounter(now), uint64(max(lead.Microseconds(), 0))
	if c > math.MaxUint64-l {
		return math.MaxUint64
	}
	return c + l
}

// LeadError reports a ballot counter more than Lead ahead of a clock that
// read Now. Clock names whose clock it is, e.g. "this acceptor's".
type LeadError struct {
	Counter uint64
	Now     time.Time
	Lead    time.Duration
	Clock   string
}

func (e *LeadError) Error() string {
	clock := ClockCounter(e.Now)
	var ahead string
	switch d := e.Counter - clock; {
	case e.Counter < clock:
		ahead = "not"
	case d < math.MaxInt64/uint64(time.Microsecond):
		ahead = (time.Duration(d) * time.Microsecond).String()
	default:
		ahead = fmt.Sprintf("%.3g s", float64(d)/1e6)
	}
	return fmt.Sprintf("counter %d is %s ahead of %s clock (%s, counter %d); at most %v is allowed",
		e.Counter, ahead, e.Clock, e.Now.UTC().Format(time.RFC3339), clock, e.Lead)
}

// Unwrap makes errors.Is(err, ErrTooFarAhead) true.
func (e *LeadError) Unwrap() error { return ErrTooFarAhead }

// CheckLead returns a *LeadError when counter is more than lead ahead of the
// clock that reads now, and nil otherwise. clock names whose clock it is,
// for the message.
func CheckLead(counter uint64, now time.Time, lead time.Duration, clock string) error {
	if counter <= MaxCounter(now, lead) {
		return nil
	}
	return &LeadError{Counter: counter, Now: now, Lead: lead, Clock: clock}
}
