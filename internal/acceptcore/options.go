package acceptcore

import (
	"errors"
	"fmt"
	"time"

	"github.com/kshaka-io/kshaka/register"
)

// Defaults of the options, which package acceptor fills in (its Options
// document them) and the simulation uses. Sizes are in bytes.
const (
	DefaultMaxKeySize       = 1 << 10 // 1 KiB
	DefaultMaxValueSize     = 1 << 20 // 1 MiB
	DefaultMaxBatchItems    = 4096
	DefaultPromiseFloorStep = 1 << 20
	DefaultMaxBallotLead    = register.DefaultMaxLead // ten minutes
)

// ErrOptions is wrapped by every error Options.Validate returns.
var ErrOptions = errors.New("invalid acceptor core options")

// Options configure a Core. Package acceptor fills them from its own
// Options (which hold the defaults and the user-facing validation); the
// simulation sets them directly.
type Options struct {
	// MaxKeySize is the largest key, in bytes; at least 1.
	MaxKeySize int
	// MaxValueSize is the largest value data, in bytes; at least 0.
	MaxValueSize int
	// MaxBatchItems is the most items (or keys) one request may carry; at
	// least 1.
	MaxBatchItems int

	// PromiseFloorStep is how far past a prepare's ballot counter the
	// durable promise floor is raised when the prepare reaches it. 0 raises
	// the floor to the counter itself, so that only prepares below the
	// highest promised counter go unsynced. At most MaxBallotLead in
	// microseconds (unless LogicalCounters): proposers jump past the floor
	// after a restart, and a jump past the lead would be refused.
	PromiseFloorStep uint64

	// MaxBallotLead bounds ballots (docs/design.md §2.1): a ballot counter, or an
	// accept's next ballot counter, more than MaxBallotLead ahead of the
	// driver's clock reading in microseconds refuses the request. At least
	// 1µs unless LogicalCounters.
	MaxBallotLead time.Duration

	// LogicalCounters says the driver's ballot counters are not wall-clock
	// microseconds, so there is no clock to bound them by: no lead is
	// checked and the clock readings passed in are ignored. The
	// simulation's proposers count ballots from 1 (round.NewClock) while
	// its acceptors count ticks; package acceptor never sets it.
	LogicalCounters bool

	// VolatilePromises breaks the durability policy on purpose. It exists
	// only for the simulation's negative control (test/sim
	// Faults.VolatilePromises), which must be caught; package acceptor
	// never sets it. With it no prepare is synced, the floor is never
	// raised, and Restart forgets the floor: a crash may lose a promise and
	// the restarted acceptor then accepts below it.
	VolatilePromises bool

	// IgnoreCollectPromise breaks the GC's removal rule on purpose, for the
	// simulation's negative control (test/sim Faults.CollectPromised) only;
	// package acceptor never sets it. With it Collect removes a tombstone
	// accepted at the GC's ballot even when a higher ballot is promised on
	// it: the absent key then promises only R, and an accept below the lost
	// promise but above R is taken (docs/design.md §10, the counterexample).
	IgnoreCollectPromise bool

	// IgnoreCollectFloors breaks the other half of the rule, for the
	// negative control "GC without the fence" (test/sim, with
	// gc.Controls.SkipFloorEpoch) only; package acceptor never sets it.
	// With it Collect removes a record whose ballot and version the
	// installed configuration's floors do not cover, so the absent key
	// promises nothing and a stale proposer's ballot below the GC's is
	// accepted on it.
	IgnoreCollectFloors bool
}

// Validate reports every problem of o at once, each wrapped with ErrOptions.
func (o Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrOptions, fmt.Sprintf(format, args...)))
	}
	if o.MaxKeySize < 1 {
		bad("MaxKeySize %d must be at least 1", o.MaxKeySize)
	}
	if o.MaxValueSize < 0 {
		bad("MaxValueSize %d is negative", o.MaxValueSize)
	}
	if o.MaxBatchItems < 1 {
		bad("MaxBatchItems %d must be at least 1", o.MaxBatchItems)
	}
	if !o.LogicalCounters {
		switch lead := o.MaxBallotLead; {
		case lead < time.Microsecond:
			bad("MaxBallotLead %v must be at least 1µs", lead)
		case o.PromiseFloorStep > uint64(lead.Microseconds()):
			bad("PromiseFloorStep %d is more than MaxBallotLead %v (%d µs)", o.PromiseFloorStep, lead, lead.Microseconds())
		}
	}
	return errors.Join(errs...)
}
