package sim

import (
	"math/rand/v2"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// diskCopy is a copy of an acceptor's durable state: a volume snapshot.
type diskCopy struct {
	incarnation uint64
	cfg         *membership.Config
	keys        map[string]register.State
	floor       uint64
}

// copyDisk copies the acceptor's durable state, as a volume snapshot does.
func (a *acceptor) copyDisk() diskCopy {
	c := diskCopy{incarnation: a.incarnation, cfg: a.cfgCopy(), keys: map[string]register.State{}, floor: a.floor}
	for _, k := range sortedKeys(a.keys) {
		st := a.keys[k]
		if old, ok := a.unsynced[k]; ok {
			st = old // a promise not synced yet is not on the disk
		}
		st.Value = st.Value.Clone()
		c.keys[k] = st
	}
	return c
}

// restoreDisk crashes the acceptor and puts the copy back on its volume:
// when it restarts it has the copy's incarnation, configuration, registers
// and promise floor (docs/design.md §4 "Rolled-back disks").
func (a *acceptor) restoreDisk(c diskCopy) {
	a.crash()
	a.incarnation = c.incarnation
	a.cfg = nil
	if c.cfg != nil {
		cfg := c.cfg.Clone()
		a.cfg = &cfg
	}
	a.keys = map[string]register.State{}
	for k, st := range c.keys {
		st.Value = st.Value.Clone()
		a.keys[k] = st
	}
	a.floor, a.restartFloor = c.floor, c.floor
	a.w.note("disk restored "+a.name, a.incarnation, a.epoch())
}

// waitFor runs then once cond holds, polling every few ticks.
func (w *world) waitFor(cond func() bool, then func()) {
	if !cond() {
		w.after(5, func() { w.waitFor(cond, then) })
		return
	}
	then()
}

// RolledBack returns the options of a scripted run of a rolled-back volume
// (docs/design.md §4 "Rolled-back disks"): acceptors a1..a3, one key.
//
//   - a2's volume is copied at epoch 1. The operator adds a4 and removes it
//     again: epoch 5, a1..a3.
//   - p1 puts v; its requests to a3 are cut, so v is accepted on a1 and a2
//     only, an accept quorum, and acknowledged.
//   - a2 crashes and comes back from the copy: its own incarnation, epoch
//     1, and nothing of v. The operator's record says a2's incarnation
//     acknowledged epoch 5, so it retires it, recycles the volume and
//     replaces the member (the removal's rescan carries v from a1 to a3).
//   - Later p2, cut from a1, reads the key from a2 and a3: it finds v.
//
// With the machine's IgnoreRolledBack control the rolled-back a2 keeps
// serving as the member it was, and p2's read finds nothing on a2 and a3:
// the acknowledged v is lost. The seed draws the delays and whether reads
// are quorum reads.
func RolledBack(seed uint64, f Faults) Options {
	r := rand.New(rand.NewPCG(seed, 0x726f6c6c))
	o := Options{
		Seed: seed, Acceptors: 3, MinMembers: 3, MaxMembers: 4,
		Proposers: 2, Clients: 1, Keys: 1,
		Duration: 3000, Drain: 2000,
		Timeout: 100, Backoff: 10, OperatorTick: 1,
		MaxTries: 8, CacheSize: 16, QuorumReads: r.IntN(2) == 0,
		Net:    NetFaults{MaxDelay: int64(1 + r.IntN(4))},
		Faults: f,
	}
	down := int64(5 + r.IntN(20))
	settle := int64(300 + r.IntN(200))
	o.Scenario = func(w *world) {
		p1, p2 := w.proposers[0], w.proposers[1]
		a2 := w.byName["a2"]
		snap := a2.copyDisk()
		idle := func() bool { return !w.op.busy() }
		a4 := w.addAcceptor()
		w.op.wantAdd(a4.name)
		read := func() {
			w.cuts = append(w.cuts, cut{from: set(p2.name), to: set("a1"), until: w.now + 2000})
			w.scriptOp(p2, opGet, "k0", "")
		}
		rollback := func() {
			a2.restoreDisk(snap)
			w.after(down, a2.restart)
			w.after(down+settle, func() { w.waitFor(idle, read) })
		}
		write := func() {
			w.cuts = append(w.cuts, cut{from: set(p1.name), to: set("a3"), until: w.now + 4000})
			v := w.scriptOp(p1, opPut, "k0", "v")
			w.waitFor(func() bool { return v.done }, rollback)
		}
		w.after(10, func() {
			w.waitFor(idle, func() {
				w.op.wantRemove(a4.name)
				w.after(10, func() { w.waitFor(idle, write) })
			})
		})
	}
	return o
}
