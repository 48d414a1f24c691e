package sim

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kshaka-io/kshaka/internal/acceptcore"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/membership/gc"
	"github.com/kshaka-io/kshaka/register"
)

// acceptor is one acceptor node (a pod with its volume), a driver of the
// acceptor core (internal/acceptcore) that package acceptor runs over
// Pebble. The core validates each request, applies the register rules,
// decides whether the write needs a sync and whether the promise floor
// rises, and at a restart gives the floor every promise counts as at least.
// Nothing here decides any of that; this file keeps only what the core
// hands its driver to keep, and models the disk under it:
//
//   - A write the core commits with Sync is durable. Its reply goes out
//     after a short fsync delay; a crash in that window leaves the request
//     applied but unreplied. A request that arrives while the node is down
//     is not applied at all.
//   - A write the core lets go without a sync (a prepare below the durable
//     floor) changes the key at once, and a crash loses it with probability
//     Options.LoseUnsynced per key, back to the key's last synced state.
//     A sync keeps only its own key: the disk is harsher than Pebble's
//     write-ahead log, whose sync keeps everything written before it.
//   - The durable floor is what the core's synced commits raised it to,
//     and a crash keeps it; the restarted node runs with the restart floor
//     the core's Restart derives from it.
//
// The negative control Faults.VolatilePromises is the core's own switch
// (acceptcore.Options.VolatilePromises), so the control breaks the code
// that ships, not a copy.
type acceptor struct {
	w    *world
	name string
	up   bool
	// life counts restarts; replies scheduled by an earlier life are dropped.
	life int
	// deleted: the operator retired the member and deleted the pod.
	deleted bool
	core    *acceptcore.Core

	// Durable: the storage identity, the configuration, the registers and
	// the promise floor.
	incarnation uint64
	cfg         *membership.Config
	keys        map[string]register.State // lookups only
	floor       uint64
	// restartFloor is the core's restart floor for this life. unsynced
	// holds, for each key written without a sync since its last synced
	// write, that last synced state (zero: none).
	restartFloor uint64
	unsynced     map[string]register.State
}

// coreOptions are the acceptor core's options for a run: package
// acceptor's default limits, the run's floor step and the negative control.
//
// The ballot-lead bound (docs/design.md §2.1) is not modelled: the simulation's
// proposers count ballots from 1 (round.NewClock) and its acceptors count
// ticks, so there is no pair of wall clocks for a lead to bound, and the
// core is told so (LogicalCounters). A lead refusal changes no state (the
// whole request is refused before anything is read), so leaving it out
// removes no durability behaviour; the bound itself is checked by the
// core's scripts (internal/acceptcore/testdata/validate.txt) and package
// acceptor's lead tests, and the proposer's handling of the refusal by
// package round's tests.
func coreOptions(o Options) acceptcore.Options {
	return acceptcore.Options{
		MaxKeySize:       acceptcore.DefaultMaxKeySize,
		MaxValueSize:     acceptcore.DefaultMaxValueSize,
		MaxBatchItems:    acceptcore.DefaultMaxBatchItems,
		PromiseFloorStep: o.PromiseFloorStep,
		LogicalCounters:  true,
		VolatilePromises: o.Faults.VolatilePromises,
		// The tombstone GC's negative controls (docs/design.md §10).
		IgnoreCollectPromise: o.Faults.CollectPromised,
		IgnoreCollectFloors:  o.Faults.GCWithoutFloorEpoch,
	}
}

func newAcceptor(w *world, name string) *acceptor {
	core, err := acceptcore.New(coreOptions(w.opts))
	if err != nil {
		panic(fmt.Sprintf("sim: acceptor core options: %v", err))
	}
	a := &acceptor{w: w, name: name, up: true, core: core}
	a.wipe()
	return a
}

// wipe gives the node an empty disk: a new incarnation, no configuration,
// no registers, no floor (docs/design.md §4).
func (a *acceptor) wipe() {
	a.incarnation = a.w.randID()
	a.cfg = nil
	a.keys = map[string]register.State{}
	a.unsynced = map[string]register.State{}
	a.floor, a.restartFloor = 0, 0
}

func (a *acceptor) epoch() uint64 {
	if a.cfg == nil {
		return 0
	}
	return a.cfg.Epoch
}

// crash stops the node: each write not synced is lost with probability
// LoseUnsynced, and the next life starts with the core's restart floor.
func (a *acceptor) crash() {
	a.up = false
	a.life++
	for _, k := range sortedKeys(a.unsynced) {
		if a.w.chance(a.w.opts.LoseUnsynced) {
			a.w.note("promise lost "+a.name+" "+k, a.keys[k].Promise.Counter)
			if old := a.unsynced[k]; old.Promise.IsZero() && old.Accepted.IsZero() {
				delete(a.keys, k) // the record itself was never synced
			} else {
				a.keys[k] = old
			}
		}
	}
	clear(a.unsynced)
	// Logical counters: the core checks no lead, so there is no warning.
	a.restartFloor, _ = a.core.Restart(a.floor, time.Time{})
	a.w.note("crash "+a.name, uint64(a.life))
}

func (a *acceptor) restart() {
	if a.deleted {
		return
	}
	a.up = true
	a.w.note("restart "+a.name, a.incarnation)
}

// loseDisk crashes the node and brings it back, later, empty.
func (a *acceptor) loseDisk() {
	a.crash()
	a.wipe()
	a.w.stats.DiskLosses++
	a.w.note("disk lost "+a.name, a.incarnation)
}

func (a *acceptor) receive(m *message) {
	if !a.up || a.deleted {
		return
	}
	r := &message{from: a.name, to: m.from, attempt: m.attempt, key: m.key, incarnation: a.incarnation}
	switch m.kind {
	case mInstall:
		r.kind = mInstallReply
		// Like package acceptor's SetConfig: a higher epoch, and floors
		// that do not go down (membership.CheckFloors).
		if m.cfg.Epoch > a.epoch() && (a.cfg == nil || membership.CheckFloors(*a.cfg, *m.cfg) == nil) {
			c := m.cfg.Clone()
			a.cfg = &c
			a.w.note("install "+a.name, c.Epoch)
		}
		r.epoch = a.epoch()
		r.ok = true
	case mGetConfig:
		r.kind = mGetConfigReply
		r.cfg = a.cfgCopy()
		r.ok = r.cfg != nil
	case mCollect:
		r.kind = mCollectReply
		a.collect(m, r)
	case mPrepare, mAccept, mRead:
		r.kind = m.kind + (mPrepareReply - mPrepare)
		a.serve(m, r)
		if a.w.served != nil {
			a.w.served(a, m, r)
		}
	default:
		return
	}
	life := a.life
	a.w.after(a.w.between(0, a.w.opts.Net.MaxFsync), func() {
		if a.life == life && a.up {
			a.w.send(r)
		}
	})
}

func (a *acceptor) cfgCopy() *membership.Config {
	if a.cfg == nil {
		return nil
	}
	c := a.cfg.Clone()
	return &c
}

// floors are the core's floors: this life's restart floor and the installed
// configuration's GC floors (admit passed, so a configuration is there).
func (a *acceptor) floors() acceptcore.Floors {
	return acceptcore.Floors{Restart: a.restartFloor, Removed: a.cfg.RemovedBallot, Version: a.cfg.VersionFloor}
}

// serve runs a data request as package acceptor does: the core's
// validation, the admission and epoch gate, the core's rule on the key's
// state, and the commit the core asks for.
func (a *acceptor) serve(m, r *message) {
	key := []byte(m.key)
	states := []register.State{a.keys[m.key]}
	switch m.kind {
	case mPrepare:
		items := []acceptcore.PrepareItem{{Key: key, Ballot: m.ballot}}
		if !a.admit(m, r, a.core.CheckPrepare(items, time.Time{})) {
			return
		}
		out, ready := a.core.Prepare(a.floors(), items, states)
		a.commit(m.key, ready)
		o := out[0]
		// Like package acceptor, a refusal carries the accepted value too.
		r.ok, r.accepted, r.conflict, r.value = o.OK, o.Accepted, o.Conflict, o.Value.Clone()
	case mAccept:
		items := []acceptcore.AcceptItem{{Key: key, Ballot: m.ballot, Value: m.value.Clone(), HasValue: true, Next: m.next}}
		if !a.admit(m, r, a.core.CheckAccept(items, time.Time{})) {
			return
		}
		out, ready := a.core.Accept(a.floors(), items, states)
		a.commit(m.key, ready)
		o := out[0]
		r.ok, r.accepted, r.conflict = o.OK, o.Accepted, o.Conflict
		if o.OK {
			a.accepted(m)
		}
	case mRead:
		if !a.admit(m, r, a.core.CheckRead([][]byte{key})) {
			return
		}
		o := a.core.Read(states)[0]
		r.ok, r.accepted, r.value = true, o.Accepted, o.Value.Clone()
	}
}

// collect runs Admin Collect as package acceptor does: the core's
// validation, admission under the installed configuration, the core's
// decision on the stored records, and the removal of the records it
// decided to remove in one synced batch before the reply.
func (a *acceptor) collect(m, r *message) {
	items := make([]acceptcore.CollectItem, len(m.items))
	for i, it := range m.items {
		items[i] = acceptcore.CollectItem{Key: it.Key, Ballot: it.Ballot, Version: it.Version}
	}
	if err := a.core.CheckCollect(items, time.Time{}); err != nil {
		panic(fmt.Sprintf("sim: %s sent %s an invalid collect: %v", m.from, a.name, err))
	}
	if a.cfg == nil {
		return
	}
	if _, ok := a.cfg.Member(a.incarnation); !ok {
		return
	}
	states := make([]register.State, len(items))
	for i, it := range items {
		states[i] = a.keys[string(it.Key)]
	}
	for i, v := range a.core.Collect(a.floors(), items, states) {
		if v == acceptcore.CollectRemoved {
			k := string(items[i].Key)
			delete(a.keys, k)
			delete(a.unsynced, k)
			a.w.stats.GCRemoved++
			a.w.note("collected "+a.name+" "+k, items[i].Ballot.Counter)
		}
		r.verdicts = append(r.verdicts, gcVerdict(v))
	}
	r.ok = true
}

func gcVerdict(v acceptcore.CollectVerdict) gc.Verdict {
	switch v {
	case acceptcore.CollectRemoved:
		return gc.Removed
	case acceptcore.CollectAbsent:
		return gc.Absent
	case acceptcore.CollectFloorsNotInstalled:
		return gc.FloorsNotInstalled
	}
	return gc.Changed
}

// admit reports whether the request may reach the rules: invalid is the
// core's validation, which no simulated proposer should ever fail, then
// the configuration's gate refuses the whole request, like the real
// acceptor's, with nothing about the key.
func (a *acceptor) admit(m, r *message, invalid error) bool {
	if invalid != nil {
		panic(fmt.Sprintf("sim: %s sent %s an invalid request: %v", m.from, a.name, invalid))
	}
	if err := a.cfg.Check(a.incarnation, m.epoch); err != nil {
		r.stale = errors.Is(err, membership.ErrStaleEpoch)
		r.notAdmitted = errors.Is(err, membership.ErrNotAdmitted)
		r.cfg = a.cfgCopy()
		if r.notAdmitted {
			a.w.stats.NotAdmitted++
		}
		return false
	}
	return true
}

// commit keeps the key's write on the disk as the core's Durability says
// against the durable floor (see the type's doc).
func (a *acceptor) commit(key string, ready acceptcore.Ready) {
	d, err := a.core.Durability(ready, a.floor)
	if err != nil {
		// Only a floor raise past 2^64-1, which logical counters never reach.
		panic(fmt.Sprintf("sim: %s: %v", a.name, err))
	}
	if len(ready.Write) == 0 {
		return
	}
	if !d.Sync {
		if _, ok := a.unsynced[key]; !ok {
			a.unsynced[key] = a.keys[key]
		}
	} else {
		delete(a.unsynced, key)
	}
	a.keys[key] = ready.States[0]
	if d.Floor != 0 {
		a.floor = d.Floor
	}
}

// accepted records the ground truth of an accept the core took.
func (a *acceptor) accepted(m *message) {
	a.w.acceptedRounds[m.round] = true
	if m.epoch < a.w.fenced {
		// docs/design.md §3: after the fence no acceptor accepts anything from an
		// older configuration.
		a.w.stats.AcceptsAfterFence++
		a.w.lateRounds[m.round] = true
		a.w.note("accepted after the fence "+a.name+" "+m.key, m.epoch, a.w.fenced, m.round)
	}
	a.w.note("accepted "+a.name+" "+m.key, m.ballot.Counter, m.round)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
