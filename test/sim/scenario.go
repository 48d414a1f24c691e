package sim

import (
	"math/rand/v2"

	"github.com/kshaka-io/kshaka/internal/round"
)

// FenceStraddle returns the options of a scripted run shaped after the
// explorer's counterexample to a fence that waits for a majority (docs/design.md
// §3): acceptors a1..a3, one key; the operator adds a4, then removes a2.
//
//   - p1 writes the key under epoch 1 while the operator installs the joint
//     configuration: a1 switches first and refuses p1's accept, a2 accepts
//     it just before switching, and a3's install is slow (it lags) and so
//     are p1's messages to it.
//   - With a fence that waits for a majority, the rescan runs while p1's
//     accept to the lagging a3 is still on its way, and the accept lands
//     after the fence: the broken guarantee, which TestSim's fence check
//     sees.
//   - Removing a2, the rescan prepares on {a1, a4} (a3 answers the operator
//     slowly), and p2 reads the key.
//
// When the rescan skipped keys (the withdrawn rule), its read agreed on the
// empty register at a1, a3 and a4, p1 was acknowledged by {a2, a3} and the
// removal's rescan wrote the empty register over a3: the write was lost.
// The rescan's touch of every key prevents that loss on its own (its
// prepare quorum meets p1's accept quorum: it carries p1's write forward or
// has the late accept refused), so the majority fence is caught by the
// fence check, not by porcupine. With the real fence the operator waits
// for a3 and p1's late accept lands before the rescan. The seed draws the
// delays, so some seeds miss the interleaving.
func FenceStraddle(seed uint64, f Faults) Options {
	r := rand.New(rand.NewPCG(seed, 0x73747264))
	o := Options{
		Seed: seed, Acceptors: 3, MinMembers: 3, MaxMembers: 4,
		Proposers: 2, Clients: 1, Keys: 1,
		Duration: 600, Drain: 1200,
		Timeout: 400, Backoff: 10, OperatorTick: 1, OperatorTimeout: 40,
		MaxTries: 3, CacheSize: 16, QuorumReads: true,
		Net:    NetFaults{MaxDelay: 2},
		Faults: f,
	}
	lateInstall := int64(150 + r.IntN(100)) // a3 lags
	a2Install := int64(r.IntN(12))          // a2 switches a little late
	slowToA3 := int64(20 + r.IntN(100))     // p1's requests to a3
	writeAt := int64(r.IntN(8))
	o.Scenario = func(w *world) {
		p1, p2 := w.proposers[0], w.proposers[1]
		w.installDelay["a3"] = lateInstall
		w.installDelay["a2"] = a2Install
		w.slow = append(w.slow, slowLink{from: p1.name, to: "a3", delay: slowToA3, until: 400})
		w.op.wantAdd(w.addAcceptor().name)
		w.after(writeAt, func() { w.scriptOp(p1, opPut, "k0", "x1") })
		// Once the add is done: remove a2, with a3 slow to answer the
		// operator, then read the key.
		var removeA2 func()
		removeA2 = func() {
			if w.op.busy() {
				w.after(5, removeA2)
				return
			}
			w.op.wantRemove("a2")
			w.slow = append(w.slow, slowLink{from: opName, to: "a3", delay: 30, until: w.now + 400})
			var read func()
			read = func() {
				if w.op.busy() {
					w.after(5, read)
					return
				}
				w.scriptOp(p2, opGet, "k0", "")
			}
			w.after(5, read)
		}
		w.after(lateInstall+50, removeA2)
	}
	return o
}

// LostPromise returns the options of a scripted run aimed at the promise
// floor (package acceptor, "Promises and the floor"): acceptors a1..a3, one
// key, three proposers.
//
//   - p0 puts x with ballot a: its prepare reaches every acceptor, its
//     accept reaches a3 at once and a1, a2 only much later.
//   - p1 compare-and-swaps the absent key to y with ballot b > a: its
//     prepare is promised by a1 and a2 (a3 is slow from p1), and a1 crashes
//     right after answering, losing the promise if it was not synced. p1's
//     accept is chosen on {a2, a3}.
//   - a1 restarts; p0's late accept reaches it. Without the floor a1 has
//     forgotten b and accepts a, so p0 is acknowledged on {a1, a3}: both the
//     put and the CAS succeeded, and p2's read shows y, which no order of
//     the two explains. With the floor a1 refuses a.
//
// The seed draws the delays and the floor step.
func LostPromise(seed uint64, f Faults) Options {
	r := rand.New(rand.NewPCG(seed, 0x70726f6d))
	o := Options{
		Seed: seed, Acceptors: 3, MinMembers: 3, MaxMembers: 3,
		Proposers: 3, Clients: 1, Keys: 1,
		Duration: 400, Drain: 1200,
		Timeout: 300, Backoff: 10, OperatorTick: 1,
		MaxTries: 3, CacheSize: 16,
		PromiseFloorStep: uint64(1 + r.IntN(20)),
		LoseUnsynced:     1,
		Net:              NetFaults{MaxDelay: 2},
		Faults:           f,
	}
	casAt := int64(6 + r.IntN(8))
	down := int64(10 + r.IntN(30))
	lateAccept := down + 30 + int64(r.IntN(30)) // p0's accept to a1 lands after a1 is back
	slowA3 := int64(10 + r.IntN(20))            // p1 to a3: after p0's accept there
	o.Scenario = func(w *world) {
		p0, p1, p2 := w.proposers[0], w.proposers[1], w.proposers[2]
		w.slow = append(w.slow,
			slowLink{from: p0.name, to: "a1", kind: mAccept, delay: lateAccept, until: 1000},
			slowLink{from: p0.name, to: "a2", kind: mAccept, delay: lateAccept, until: 1000},
			slowLink{from: p1.name, to: "a3", delay: slowA3, until: 1000})
		crashed := false
		w.served = func(a *acceptor, m, reply *message) {
			if crashed || a.name != "a1" || m.kind != mPrepare || m.from != p1.name || !reply.ok {
				return
			}
			crashed = true
			w.after(1, func() { // once the reply is out
				a.crash()
				w.after(down, a.restart)
			})
		}
		w.scriptOp(p0, opPut, "k0", "x")
		w.after(casAt, func() { w.scriptCAS(p1, "k0", "", "y") })
		w.after(casAt+lateAccept+200, func() { w.scriptOp(p2, opGet, "k0", "") })
	}
	return o
}

// SurvivingBallot returns the options of a scripted run of the
// counterexample to the rescan's old skip rule (docs/design.md §5, corrected
// 2026-12-02): five acceptors a1..a5, qp = qa = 3, one key.
//
//   - p1 puts s; it lands on all five at a low ballot.
//   - p2, whose clock runs far ahead (a clock offset), compare-and-swaps s
//     to y with ballot B: a3, a4 and a5 promise (p2's requests to a1 and a2
//     crawl), its accept lands on a3 only (those to a4 and a5 crawl too) and
//     p2 crashes: an unknown outcome. Its late requests arrive after the
//     fence and are refused as stale.
//   - The operator takes a5 out: removed then replaced by a new member a6
//     (even seeds), or its disk is lost and the new incarnation replaces
//     the old one (odd seeds). Both rescans see a1, a2 and a4 agree on s's
//     ballot, qa members of S.
//   - p1, whose counter is below B, compare-and-swaps s to z: a1, a2 and the
//     new member never saw B; they promise and accept, and z is
//     acknowledged.
//   - p3, clock also ahead, reads the key with a full round; its requests to
//     a1 and a2 crawl, so its prepare quorum is a3, a4 and the new member:
//     (B, y) is the highest ballot, and the read returns y. The acknowledged
//     z is lost; no order of the operations explains the history.
//
// A rescan that touches every key with a ballot above B (the prepare is
// refused by a3 and a4 until it is) settles y or s before z's CAS, and the
// history is linearizable. With Faults.Operator.RescanSkip (the old rule) every seed
// is caught. The seed draws the delays, p2's and p3's clock offsets and the
// variant.
func SurvivingBallot(seed uint64, f Faults) Options {
	r := rand.New(rand.NewPCG(seed, 0x73757276))
	o := Options{
		Seed: seed, Acceptors: 5, MinMembers: 5, MaxMembers: 5,
		Proposers: 3, Clients: 1, Keys: 1,
		Duration: 3000, Drain: 2000,
		Timeout: 100, Backoff: 10, OperatorTick: 1,
		MaxTries: 8, CacheSize: 16,
		Net:    NetFaults{MaxDelay: int64(1 + r.IntN(4))},
		Faults: f,
	}
	offsetY := uint64(1000 + r.IntN(1000))        // p2's clock: B is far above everyone else's
	offsetR := offsetY + uint64(1000+r.IntN(100)) // p3's clock, above B
	crawl := int64(600 + r.IntN(200))             // p2's late requests: past every fence
	diskLoss := seed%2 == 1
	down := int64(5 + r.IntN(20))
	o.Scenario = func(w *world) {
		p1, p2, p3 := w.proposers[0], w.proposers[1], w.proposers[2]
		p2.env.Clock = round.NewClockAt(p2.env.Clock.ID(), offsetY)
		p3.env.Clock = round.NewClockAt(p3.env.Clock.ID(), offsetR)
		// waitFor runs then once cond holds, polling.
		var waitFor func(cond func() bool, then func())
		waitFor = func(cond func() bool, then func()) {
			if !cond() {
				w.after(5, func() { waitFor(cond, then) })
				return
			}
			then()
		}
		var replaceA5, startZ, startRead func()
		put := w.scriptOp(p1, opPut, "k0", "s")
		// Y: a3, a4, a5 promise; the accept lands on a3 only; Y stops.
		startY := func() {
			for _, to := range []string{"a1", "a2"} {
				w.slow = append(w.slow, slowLink{from: p2.name, to: to, delay: crawl, until: w.now + 400})
			}
			for _, to := range []string{"a4", "a5"} {
				w.slow = append(w.slow, slowLink{from: p2.name, to: to, kind: mAccept, delay: crawl, until: w.now + 400})
			}
			crashed := false
			w.served = func(a *acceptor, m, reply *message) {
				if crashed || a.name != "a3" || m.kind != mAccept || m.from != p2.name || !reply.ok {
					return
				}
				crashed = true
				w.after(0, func() {
					p2.crash(1 << 40)
					w.after(1, replaceA5)
				})
			}
			w.scriptCAS(p2, "k0", "s", "y")
		}
		// Two membership changes take a5 out and bring a new member in.
		replaceA5 = func() {
			a5 := w.byName["a5"]
			changes := w.stats.Changes + 2
			done := func() bool { return w.stats.Changes >= changes && !w.op.busy() }
			if diskLoss {
				a5.loseDisk()
				w.after(down, a5.restart)
				waitFor(done, startZ)
				return
			}
			a6 := w.addAcceptor()
			w.op.wantRemove("a5")
			waitFor(func() bool { return !w.op.busy() }, func() {
				w.op.wantAdd(a6.name)
				waitFor(done, startZ)
			})
		}
		startZ = func() {
			z := w.scriptCAS(p1, "k0", "s", "z")
			waitFor(func() bool { return z.done }, startRead)
		}
		startRead = func() {
			for _, to := range []string{"a1", "a2"} {
				w.slow = append(w.slow, slowLink{from: p3.name, to: to, delay: 500, until: w.now + 1000})
			}
			w.scriptOp(p3, opGet, "k0", "")
		}
		waitFor(func() bool { return put.done }, func() { w.after(10, startY) })
	}
	return o
}

// scriptOp issues one operation from a new client of p.
func (w *world) scriptOp(p *proposer, kind opKind, key, val string) *clientOp {
	return w.scriptOpFrom(p, kind, key, "", val)
}

// scriptCAS issues a compare-and-swap of key from the visible value from to
// val, from a new client of p.
func (w *world) scriptCAS(p *proposer, key, from, val string) *clientOp {
	return w.scriptOpFrom(p, opCAS, key, from, val)
}

func (w *world) scriptOpFrom(p *proposer, kind opKind, key, from, val string) *clientOp {
	cl := &client{p: p, id: w.hist.newClient(), n: len(p.clients), seen: map[string]string{}}
	p.clients = append(p.clients, cl)
	cl.busy = true
	o := &clientOp{cl: cl, clientID: cl.id, kind: kind, key: key, val: val, from: from, call: w.nextStamp()}
	cl.cur = o
	w.stats.Ops++
	w.note("call "+p.name+" "+key+" "+val, uint64(kind))
	p.submit(o)
	return o
}

// StaleDuplicate returns the options of a scripted run aimed at the
// classification of accept refusals (round.ClassifyAccept, defect F4):
// acceptors a1..a3, one key, two proposers.
//
//   - p1 compare-and-swaps the absent key to x. Its accept lands on every
//     acceptor, and every reply is lost.
//   - The operator then adds a4: the joint epoch reaches a1..a3.
//   - A duplicate of p1's accept reaches each acceptor after the switch and
//     is refused for its stale epoch. Counted as definite failures, the
//     three refusals make p1 retry a CAS that was chosen: the retry finds x
//     and reports the CAS failed, which no order explains once p2 reads x.
//     Counted as lost replies, p1's outcome is unknown or settled, and the
//     history is linearizable.
//
// The seed draws when the duplicates arrive.
func StaleDuplicate(seed uint64, f Faults) Options { return duplicateAccept(seed, f, true) }

// DuplicateAccept is StaleDuplicate without the epoch switch: the
// duplicates of p1's accept are refused by the register rule, at the ballot
// each acceptor already accepted (round.TestRefusalOfDuplicateAccept). A
// proposer that counts those refusals as definite reports the chosen CAS as
// failed.
func DuplicateAccept(seed uint64, f Faults) Options { return duplicateAccept(seed, f, false) }

func duplicateAccept(seed uint64, f Faults, switchEpoch bool) Options {
	r := rand.New(rand.NewPCG(seed, 0x64757073))
	o := Options{
		Seed: seed, Acceptors: 3, MinMembers: 3, MaxMembers: 4,
		Proposers: 2, Clients: 1, Keys: 1,
		Duration: 600, Drain: 1200,
		Timeout: 400, Backoff: 10, OperatorTick: 1,
		MaxTries: 3, CacheSize: 16,
		Net:    NetFaults{MaxDelay: 2},
		Faults: f,
	}
	dupDelay := int64(60 + r.IntN(80))
	o.Scenario = func(w *world) {
		p1, p2 := w.proposers[0], w.proposers[1]
		a4 := w.addAcceptor()
		landed := map[string]bool{}
		w.served = func(a *acceptor, m, reply *message) {
			if m.kind != mAccept || m.from != p1.name || landed[a.name] || !reply.ok {
				return
			}
			landed[a.name] = true
			reply.to = "" // the reply is lost: no node has that name
			dup := *m
			w.after(dupDelay, func() { w.deliver(&dup) })
			if len(landed) == 3 && switchEpoch {
				w.op.wantAdd(a4.name)
			}
		}
		w.scriptCAS(p1, "k0", "", "x")
		w.after(dupDelay+400, func() { w.scriptOp(p2, opGet, "k0", "") })
	}
	return o
}
