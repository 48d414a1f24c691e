package sim

import (
	"errors"
	"slices"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// acceptor is one acceptor node (a pod with its volume). Its durable state
// is what it synced: a request changes the state and the state is synced
// before the reply is sent, after a short fsync delay. A crash in that
// window leaves the request applied but unreplied; a request that arrives
// while the node is down is not applied at all. The exception, as in
// package acceptor, is a prepare below the promise floor: it changes only
// memory, and a crash loses it (with probability Options.LoseUnsynced per
// key); the restarted node counts every promise as at least the floor.
type acceptor struct {
	w    *world
	name string
	up   bool
	// life counts restarts; replies scheduled by an earlier life are dropped.
	life int
	// deleted: the operator retired the member and deleted the pod.
	deleted bool

	// Durable: the storage identity, the configuration and the registers.
	incarnation uint64
	cfg         *membership.Config
	keys        map[string]register.State // lookups only
	// floor is the durable promise floor; restartFloor is the floor this
	// life started with. unsynced holds, for each key with a promise not
	// synced yet, its last synced state (zero: none).
	floor, restartFloor uint64
	unsynced            map[string]register.State
}

func newAcceptor(w *world, name string) *acceptor {
	a := &acceptor{w: w, name: name, up: true}
	a.wipe()
	return a
}

// wipe gives the node an empty disk: a new incarnation, no configuration,
// no registers (DESIGN §4).
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
	if !a.w.opts.Faults.VolatilePromises {
		a.restartFloor = a.floor
	}
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
		if m.cfg.Epoch > a.epoch() {
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

// serve applies the admission and epoch gate, then the register rule.
func (a *acceptor) serve(m, r *message) {
	st := a.keys[m.key].AtLeast(register.Ballot{Counter: a.restartFloor})
	if err := a.cfg.Check(a.incarnation, m.epoch); err != nil {
		// Like the real acceptor's: the whole request is refused, with
		// nothing about the key.
		r.stale = errors.Is(err, membership.ErrStaleEpoch)
		r.notAdmitted = errors.Is(err, membership.ErrNotAdmitted)
		r.cfg = a.cfgCopy()
		if r.notAdmitted {
			a.w.stats.NotAdmitted++
		}
		return
	}
	r.accepted = st.Accepted
	switch m.kind {
	case mPrepare:
		next, ok := st.Prepare(m.ballot)
		if !ok {
			r.conflict = st.Highest()
			return
		}
		a.promise(m.key, next, m.ballot.Counter)
		r.ok, r.accepted, r.value = true, next.Accepted, next.Value.Clone()
	case mAccept:
		next, ok := st.Accept(m.ballot, m.value.Clone(), m.next)
		if !ok {
			r.conflict = st.Highest()
			return
		}
		a.keys[m.key] = next
		delete(a.unsynced, m.key)
		a.w.acceptedRounds[m.round] = true
		if m.epoch < a.w.fenced {
			// DESIGN §3: after the fence no acceptor accepts anything
			// from an older configuration.
			a.w.stats.AcceptsAfterFence++
			a.w.lateRounds[m.round] = true
			a.w.note("accepted after the fence "+a.name+" "+m.key, m.epoch, a.w.fenced, m.round)
		}
		r.ok, r.accepted = true, next.Accepted
		a.w.note("accepted "+a.name+" "+m.key, m.ballot.Counter, m.round)
	case mRead:
		r.ok, r.accepted, r.value = true, st.Accepted, st.Value.Clone()
	}
}

// promise stores the state of a successful prepare with ballot counter c:
// in memory only when c is below the durable floor, else synced after
// raising the floor past c.
func (a *acceptor) promise(key string, next register.State, c uint64) {
	step := a.w.opts.PromiseFloorStep
	volatile := a.w.opts.Faults.VolatilePromises || (step > 0 && c < a.floor)
	if !volatile {
		if step > 0 {
			a.floor = max(a.floor, c+step)
		}
		delete(a.unsynced, key)
		a.keys[key] = next
		return
	}
	if _, ok := a.unsynced[key]; !ok {
		a.unsynced[key] = a.keys[key]
	}
	a.keys[key] = next
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
