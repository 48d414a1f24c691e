package sim

import (
	"math/rand/v2"
	"slices"

	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership/gc"
	"github.com/kshaka-io/kshaka/register"
)

// The operator's tombstone GC (docs/design.md §10): the GC machine of
// package membership/gc, which proposer.Client.CollectTombstones drives in
// production, driven here over the simulated network. The GC write of a
// key is the proposer library's keyproc.Machine running keyproc.GCOp (the
// touch's pump of rescan.go), the floor epoch is installed like the
// transition machine's configurations and fenced on the status probes, and
// Collect is a message the acceptors answer with the acceptor core's
// decision. GC runs only while no membership change is in progress or
// asked for, and a change waits until the GC batch is over.

// The GC's Collect request and its reply.
const (
	mCollect msgKind = iota + 110
	mCollectReply
)

// gcRun is the GC batch in progress (volatile: an operator crash abandons
// it, which is safe at every step).
type gcRun struct {
	m *gc.Machine
	// collect is the attempt ID of the Collect requests out, sentAt when
	// they went.
	collect uint64
	sentAt  int64
	// installedAt is when the floor epoch's installs last went out.
	installedAt int64
}

// gcControls are the GC machine's negative controls in this run.
func (w *world) gcControls() gc.Controls {
	return gc.Controls{SkipFloorEpoch: w.opts.Faults.GCWithoutFloorEpoch}
}

// gcAct runs the GC when it is due and the cluster is stable, and carries
// out its next step; it reports whether it acted (the transition machine
// then waits).
func (o *operator) gcAct() bool {
	if o.gc == nil {
		if o.w.opts.GCEvery == 0 || o.w.now < o.nextGC || o.busy() {
			return false
		}
		o.nextGC = o.w.now + o.w.between(o.w.opts.GCEvery/2, o.w.opts.GCEvery*3/2)
		keys := make([][]byte, len(o.w.keys))
		for i, k := range o.w.keys {
			keys[i] = []byte(k)
		}
		m, err := gc.New(o.current(), keys, o.w.gcControls())
		if err != nil {
			return false
		}
		o.gc = &gcRun{m: m}
		o.w.note("gc start", o.epoch())
	}
	o.gcStep()
	return true
}

func (o *operator) gcStep() {
	g := o.gc
	a := g.m.Next()
	switch a.Step {
	case gc.StepWrite:
		key := string(a.Keys[0])
		if t := o.rescan; t != nil && t.gc && t.key == key {
			return // in flight
		}
		t := &touch{key: key, cfg: o.current(), gc: true}
		o.rescan = t
		o.startTouch(t)
	case gc.StepInstall:
		if o.epoch() < a.Config.Epoch {
			c := a.Config.Clone()
			o.in.Config = &c // the durable intent, like the status of the cluster
			o.w.note("gc install", c.Epoch, c.RemovedBallot.Counter, c.VersionFloor)
		}
		for _, mem := range a.Targets {
			if v, ok := o.view[mem.ID]; ok && v.incarnation == mem.Incarnation {
				g.m.Acked(mem.Incarnation, v.epoch)
			}
		}
		if g.m.Next().Step != gc.StepInstall {
			o.w.fenced = max(o.w.fenced, a.Config.Epoch)
			o.w.note("gc fenced", a.Config.Epoch)
			o.act0()
			return
		}
		if g.installedAt != 0 && o.w.now-g.installedAt < probeTimeout {
			return
		}
		g.installedAt = o.w.now
		for _, mem := range a.Targets {
			c := a.Config.Clone()
			o.w.send(&message{kind: mInstall, from: opName, to: mem.ID, cfg: &c, incarnation: mem.Incarnation})
		}
	case gc.StepCollect:
		d := o.w.opts.OperatorTimeout
		if d == 0 {
			d = o.w.opts.Timeout
		}
		switch {
		case g.collect == 0:
			g.collect, g.sentAt = o.w.id(), o.w.now
			for _, mem := range a.Targets {
				o.w.send(&message{kind: mCollect, from: opName, to: mem.ID, attempt: g.collect, items: slices.Clone(a.Items)})
			}
		case o.w.now-g.sentAt >= d:
			for _, mem := range a.Targets {
				g.m.Collected(mem.Incarnation, nil) // no answer: it keeps them
			}
			o.act0()
		}
	case gc.StepDone:
		st := g.m.Stats()
		o.w.stats.GC++
		o.w.stats.GCCollected += st.Collected
		o.w.note("gc done", uint64(st.Collected), uint64(st.Kept), uint64(st.Live), uint64(st.Unreached))
		o.gc = nil
		o.act0()
	}
}

// gcWritten feeds the GC write's answer to the machine.
func (o *operator) gcWritten(t *touch, a keyproc.Answer) {
	o.dropRescan()
	if o.gc == nil {
		return
	}
	r := gc.WriteResult{OK: a.Outcome == round.Success}
	if r.OK {
		r.Value, r.Ballot = a.Value, a.Ballot
	}
	o.gc.m.Written([]byte(t.key), r)
	o.act0()
}

// gcCollected feeds one member's Collect reply.
func (o *operator) gcCollected(m *message) {
	g := o.gc
	if g == nil || m.attempt != g.collect {
		return
	}
	var vs []gc.Verdict
	if m.ok {
		vs = m.verdicts
	}
	g.m.Collected(m.incarnation, vs)
	if g.m.Next().Step != gc.StepCollect {
		o.act0()
	}
}

// GCOptions is NewOptions with the operator's tombstone GC running beside
// the workload, the nemesis and the membership changes: frequent GC
// batches, more deletes' worth of keys, and the versions clients see in
// the history, so that a version that goes backwards after a record is
// gone is caught.
func GCOptions(seed uint64, f Faults) Options {
	o := NewOptions(seed, f)
	o.GCEvery = 40 + int64(seed%5)*40
	o.Versions = true
	return o
}

// CollectPromisedScenario returns the options of a scripted run shaped
// after the counterexample to removing a tombstone while a promise above
// the GC's ballot is outstanding (docs/design.md §10): acceptors a1..a3,
// one key, three proposers.
//
//   - p3 writes x to k0 and deletes it: a tombstone.
//   - The operator's GC writes the tombstone at ballot bg to a1..a3.
//   - p1, whose clock runs ahead, compare-and-swaps k0 from absent to y: its
//     prepare at b2 > bg reaches a1 and a2 (its link to a3 is slow), which
//     promise b2 and show the tombstone; its accepts are slow everywhere.
//   - The GC installs the floor epoch (R = bg) and collects. Correctly, a1
//     and a2 keep the record: they promised b2, above bg. With
//     Faults.CollectPromised they remove it, and with it the promise.
//   - p2, whose clock is behind, writes z: its first prepare is refused at
//     R, the next one, just above R, is promised by a1..a3, and z is
//     acknowledged. (Correctly a1 and a2 refuse it up to b2, and p2 goes
//     above b2.)
//   - p1's accepts at b2 land: with the control they are taken above p2's
//     promise, y is chosen over the acknowledged z, and p1's CAS from
//     absent succeeded although z was there. Correctly they are refused.
//   - p3 reads k0.
//
// The seed draws the delays.
func CollectPromisedScenario(seed uint64, f Faults) Options {
	r := rand.New(rand.NewPCG(seed, 0x67636f6c))
	o := Options{
		Seed: seed, Acceptors: 3, MinMembers: 3, MaxMembers: 3,
		Proposers: 3, Clients: 1, Keys: 1,
		Duration: 1500, Drain: 2500,
		Timeout: 1200, Backoff: 10, OperatorTick: 1, OperatorTimeout: 40,
		MaxTries: 4, CacheSize: 16,
		GCEvery: 1 << 40, Versions: true,
		Net:    NetFaults{MaxDelay: int64(1 + r.IntN(3))},
		Faults: f,
	}
	acceptDelay := int64(300 + r.IntN(100))
	lead := uint64(100 + r.IntN(100))
	o.Scenario = func(w *world) {
		p1, p2, p3 := w.proposers[0], w.proposers[1], w.proposers[2]
		w.op.nextGC = 1 << 40 // not before the script says
		w.scriptOp(p3, opPut, "k0", "x")
		w.after(30, func() { w.scriptOp(p3, opDelete, "k0", "") })
		w.after(60, func() { w.op.nextGC = w.now })
		step := func(s gc.Step) bool { return w.op.gc != nil && w.op.gc.m.Next().Step == s }
		var casP1, writeP2 func()
		casP1 = func() {
			if !step(gc.StepInstall) {
				w.after(1, casP1)
				return
			}
			// The GC write is done; hold the floor epoch back so that p1's
			// prepare lands first.
			w.slow = append(w.slow, slowLink{from: opName, kind: mInstall, delay: 20, until: w.now + 5})
			for _, a := range []string{"a1", "a2", "a3"} {
				w.slow = append(w.slow, slowLink{from: p1.name, to: a, kind: mAccept, delay: acceptDelay, until: w.now + 2000})
			}
			w.slow = append(w.slow, slowLink{from: p1.name, to: "a3", kind: mPrepare, delay: 3000, until: w.now + 2000})
			_ = p1.env.Clock.Observe(register.Ballot{Counter: 1000 + lead, Proposer: 1})
			w.scriptCAS(p1, "k0", "", "y")
			w.after(1, writeP2)
		}
		writeP2 = func() {
			if w.op.gc != nil {
				w.after(1, writeP2)
				return
			}
			w.scriptOp(p2, opPut, "k0", "z")
			w.after(acceptDelay+600, func() { w.scriptOp(p3, opGet, "k0", "") })
		}
		w.after(61, casP1)
	}
	return o
}
