package acceptcore

import (
	"fmt"
	"time"

	"github.com/kshaka-io/kshaka/register"
)

// CollectItem is one key of a Collect (docs/design.md §10): the GC wrote the
// tombstone at Version to every member with an identity change at Ballot,
// and asks that the record be removed.
type CollectItem struct {
	Key     []byte
	Ballot  register.Ballot
	Version uint64
}

// CollectVerdict is what Collect decided for one key.
type CollectVerdict uint8

const (
	// CollectRemoved: remove the record.
	CollectRemoved CollectVerdict = iota + 1
	// CollectAbsent: there is no record; nothing to do.
	CollectAbsent
	// CollectChanged: the record is not exactly the tombstone at the
	// item's ballot and version with nothing promised above it (written,
	// promised or prepared since, or never was): keep it.
	CollectChanged
	// CollectFloorsNotInstalled: the installed configuration's floors do not
	// cover the item (RemovedBallot < Ballot or VersionFloor < Version):
	// keep it; the GC epoch must be installed (and fenced) first.
	CollectFloorsNotInstalled
)

func (v CollectVerdict) String() string {
	switch v {
	case CollectRemoved:
		return "removed"
	case CollectAbsent:
		return "absent"
	case CollectChanged:
		return "changed since"
	case CollectFloorsNotInstalled:
		return "floors not installed"
	}
	return fmt.Sprintf("CollectVerdict(%d)", int(v))
}

// CheckCollect validates a Collect whole, like CheckPrepare: keys, ballots
// (within the lead of now) and versions (a tombstone's is at least 1).
func (c *Core) CheckCollect(items []CollectItem, now time.Time) error {
	var p problems
	c.checkKeys(&p, len(items), func(i int) []byte { return items[i].Key })
	if len(items) > c.opts.MaxBatchItems {
		return p.err()
	}
	for i, it := range items {
		c.checkBallot(&p, i, "ballot", it.Ballot, now)
		if it.Version == 0 {
			p.add("item %d: version 0 is not a tombstone's", i)
		}
	}
	return p.err()
}

// Collect decides, for each item, whether the driver removes the key's
// record (docs/design.md §10). states are the records as stored (without
// the restart floor: a promise the record does not hold was made below the
// restart floor, which still holds for the absent key), zero for a key
// without a record; f holds the installed configuration's floors. A record
// is removed only when
//
//   - its promise and accepted ballot both equal the item's ballot bg and
//     its value is a tombstone at the item's version v: nothing was
//     promised or accepted on it since the GC's write, so the absent key,
//     which counts as promised R ≥ bg, refuses everything the record
//     would have refused; and
//   - the floors cover it: R ≥ bg and VF ≥ v.
//
// A record that fails either is kept, which is always safe: the tombstone
// is the chosen value. The driver deletes the records whose verdict is
// CollectRemoved in one atomic, synced batch and replies afterwards.
func (c *Core) Collect(f Floors, items []CollectItem, states []register.State) []CollectVerdict {
	checkLen(len(items), len(states))
	out := make([]CollectVerdict, len(items))
	for i, it := range items {
		st := states[i]
		switch {
		case absent(st):
			out[i] = CollectAbsent
		case st.Accepted != it.Ballot || !st.Value.Tombstone || st.Value.Version != it.Version,
			st.Promise != it.Ballot && !c.opts.IgnoreCollectPromise:
			out[i] = CollectChanged
		case (f.Removed.Less(it.Ballot) || f.Version < it.Version) && !c.opts.IgnoreCollectFloors:
			out[i] = CollectFloorsNotInstalled
		default:
			out[i] = CollectRemoved
		}
	}
	return out
}
