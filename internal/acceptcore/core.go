package acceptcore

import (
	"fmt"
	"math"
	"time"

	"github.com/kshaka-io/kshaka/register"
)

// Core is the acceptor's decision logic. It holds only its Options: the
// state it decides on (the per-key records, the floors) is handed in by the
// driver with every call, and what to persist is handed back. Its methods
// are pure, so one Core may be shared by concurrent requests; the driver
// keeps requests on the same key apart (package acceptor's striped locks)
// and serializes floor raises.
type Core struct {
	opts Options
}

// New returns the core for o, or o's problems (Options.Validate).
func New(o Options) (*Core, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &Core{opts: o}, nil
}

// Options returns the options the core was created with.
func (c *Core) Options() Options { return c.opts }

// PrepareItem is one key of a prepare.
type PrepareItem struct {
	Key    []byte
	Ballot register.Ballot
}

// PrepareOutcome is the answer for one PrepareItem.
type PrepareOutcome struct {
	OK bool
	// Conflict is the highest ballot the key has seen, when not OK.
	Conflict register.Ballot
	// Accepted and Value are the key's accepted ballot and value (both
	// when OK and when not).
	Accepted register.Ballot
	Value    register.Value
}

// AcceptItem is one key of an accept.
type AcceptItem struct {
	Key    []byte
	Ballot register.Ballot
	Value  register.Value
	// HasValue tells a missing value (malformed) from the empty one.
	HasValue bool
	// Next is the optional one-round-trip promise; zero when absent.
	Next register.Ballot
}

// AcceptOutcome is the answer for one AcceptItem.
type AcceptOutcome struct {
	OK bool
	// Conflict is the highest ballot the key has seen, when not OK.
	Conflict register.Ballot
	// Accepted is the key's accepted ballot afterwards: the item's ballot
	// when OK, the one that stays when not.
	Accepted register.Ballot
}

// ReadOutcome is the answer for one key of a read.
type ReadOutcome struct {
	Accepted register.Ballot
	Value    register.Value
}

// Ready is what a batch asks its driver to persist before it replies.
type Ready struct {
	// States holds, for every item, the key's state after the batch.
	States []register.State
	// Write lists the items whose state changed, in ascending order: the
	// driver writes States[i] for each i in Write, all in one atomic batch
	// committed as Durability says. Empty: nothing to commit.
	Write []int
	// Promised is the highest ballot counter a prepare of the batch
	// promised; 0 when none.
	Promised uint64
	// Accepts is set when an item accepted a value.
	Accepts bool
}

// Durability is how the writes of a Ready are committed.
type Durability struct {
	// Sync: commit with Sync and reply only once the commit is durable.
	// Otherwise the commit need not wait for the disk, and a crash may
	// lose it.
	Sync bool
	// Floor, when not 0, is the new durable promise floor, higher than the
	// one the decision was made against: the driver writes it in the same
	// batch as the states (Sync is then set) and, once committed, uses it
	// as the durable floor.
	Floor uint64
}

// Floors are what the rules floor a key's state with, besides the record:
// the restart floor of this life and the GC floor of the installed
// configuration.
type Floors struct {
	// Restart is the restart floor (Restart): every key's promise counts as
	// at least (Restart, 0).
	Restart uint64
	// Removed is the installed configuration's RemovedBallot (R,
	// docs/design.md §10): a key without a record counts as promised R, so
	// no ballot ≤ R is promised or accepted on it. A collected tombstone was
	// accepted at a ballot ≤ R on every member, and its record behaves as
	// if it were still there: promise ≥ R, accepted ≤ R, a tombstone.
	Removed register.Ballot
	// Version is the installed configuration's VersionFloor (VF); only
	// Collect uses it.
	Version uint64
}

// absent reports whether st is the state of a key without a record: every
// record the rules write holds a promise.
func absent(st register.State) bool { return st.Promise.IsZero() && st.Accepted.IsZero() }

// floored returns st as the rules see it in a life that started with the
// restart floor, under the GC floor: its promise at least (restart, 0), and
// at least Removed when the key has no record.
func floored(st register.State, f Floors) register.State {
	if absent(st) {
		st = st.AtLeast(f.Removed)
	}
	return st.AtLeast(register.Ballot{Counter: f.Restart})
}

func checkLen(items, states int) {
	if items != states {
		panic(fmt.Sprintf("acceptcore: %d items with %d states", items, states))
	}
}

// Prepare applies a prepare (docs/design.md §2.2) to the keys' current states
// (one per item, the zero State for a key without a record), under the
// floors f (the restart floor of this life, Restart, and the installed
// configuration's RemovedBallot). Call it only for a request that passed
// CheckPrepare.
func (c *Core) Prepare(f Floors, items []PrepareItem, states []register.State) ([]PrepareOutcome, Ready) {
	checkLen(len(items), len(states))
	out := make([]PrepareOutcome, len(items))
	r := Ready{States: make([]register.State, len(items)), Write: make([]int, 0, len(items))}
	for i, it := range items {
		st := floored(states[i], f)
		next, ok := st.Prepare(it.Ballot)
		out[i] = PrepareOutcome{OK: ok, Accepted: st.Accepted, Value: st.Value}
		r.States[i] = next
		if !ok {
			out[i].Conflict = st.Highest()
			continue
		}
		r.Write = append(r.Write, i)
		r.Promised = max(r.Promised, it.Ballot.Counter)
	}
	return out, r
}

// Accept applies an accept (docs/design.md §2.2, with the 1RTT next promise of
// §2.4) like Prepare. On a key without a record a ballot ≤ f.Removed is
// refused, even R itself: it stands for a collected tombstone's accepted
// ballot. Call it only for a request that passed CheckAccept.
func (c *Core) Accept(f Floors, items []AcceptItem, states []register.State) ([]AcceptOutcome, Ready) {
	checkLen(len(items), len(states))
	out := make([]AcceptOutcome, len(items))
	r := Ready{States: make([]register.State, len(items)), Write: make([]int, 0, len(items))}
	for i, it := range items {
		st := floored(states[i], f)
		next, ok := st.Accept(it.Ballot, it.Value, it.Next)
		if ok && absent(states[i]) && !f.Removed.Less(it.Ballot) {
			next, ok = st, false
		}
		r.States[i] = next
		out[i] = AcceptOutcome{OK: ok, Accepted: next.Accepted}
		if !ok {
			out[i].Conflict = st.Highest()
			continue
		}
		r.Write = append(r.Write, i)
		r.Accepts = true
	}
	return out, r
}

// Read answers a read (docs/design.md §2.5) from the keys' current states; it
// changes nothing, so there is nothing to commit. The restart floor plays
// no part: it is a promise, and a read shows only what was accepted. Call
// it only for a request that passed CheckRead.
func (c *Core) Read(states []register.State) []ReadOutcome {
	out := make([]ReadOutcome, len(states))
	for i, st := range states {
		out[i] = ReadOutcome{Accepted: st.Accepted, Value: st.Value}
	}
	return out
}

// Durability decides how r's writes are committed when the durable
// promise floor is durable (see the package doc for the policy). It
// refuses, with ErrInvalidRequest, a floor raise past 2^64-1 (docs/design.md §2.1:
// no durable counter saturates); the request must then commit nothing.
// CheckPrepare keeps counters within the lead, so that cannot happen with
// wall-clock counters.
//
// A driver that commits batches concurrently may decide with the floor it
// last saw, and must decide again, with the floor on disk, under the lock
// that serializes raises when the first answer raises the floor or
// refuses: the floor only grows, so the second answer can only need less.
func (c *Core) Durability(r Ready, durable uint64) (Durability, error) {
	if len(r.Write) == 0 {
		return Durability{}, nil
	}
	d := Durability{Sync: r.Accepts}
	if r.Promised == 0 || c.opts.VolatilePromises || r.Promised < durable {
		return d, nil
	}
	step := c.opts.PromiseFloorStep
	if r.Promised > math.MaxUint64-step {
		return Durability{}, fmt.Errorf("%w: ballot counter %d leaves no room to raise the promise floor by %d",
			ErrInvalidRequest, r.Promised, step)
	}
	d = Durability{Sync: true}
	if floor := r.Promised + step; floor > durable {
		d.Floor = floor
	}
	return d, nil
}

// Restart returns the restart floor of a life that starts with durable,
// the durable promise floor read from disk: for the whole life, every
// key's promise counts as at least (restart, 0), which keeps any promise
// the last life made below its floor and lost with unsynced writes.
//
// ahead is a *register.LeadError when durable is more than MaxBallotLead
// ahead of the clock reading now (a store that took a far-future ballot
// before ballots were bounded): every ballot below it is refused until the
// clocks catch up. The floor is kept all the same (lowering it could break
// a promise); the driver reports it.
func (c *Core) Restart(durable uint64, now time.Time) (restart uint64, ahead error) {
	if c.opts.VolatilePromises {
		return 0, nil
	}
	if !c.opts.LogicalCounters {
		ahead = register.CheckLead(durable, now, c.opts.MaxBallotLead, "this acceptor's")
	}
	return durable, ahead
}
