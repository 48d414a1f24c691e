package sim

import (
	"bytes"
	"slices"
	"time"

	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/membership/change"
)

const opName = "operator"

// The operator's status probe (Admin.Status): a request that any acceptor
// answers with its incarnation, its configuration's epoch and whether that
// configuration lists it, without changing anything. Answered by the world
// (statusReply), not by the acceptor's request handler.
const (
	mStatus msgKind = iota + 100
	mStatusReply
)

// probeEvery is how often, in ticks, the operator asks an acceptor for its
// status (Admin.Status) while no change is in progress; during a change it
// asks again as soon as the last answer is in. probeTimeout is how long it
// waits for an answer before it asks again.
const (
	probeEvery   = 20
	probeTimeout = 60
)

// probe is the one status request outstanding at an acceptor: only its
// answer counts, so answers come in the order the acceptor gave them (the
// next request is sent after the last answer arrived) and the view never
// goes back in time — an epoch that goes down is a rolled-back volume, not
// a reordered reply.
type probe struct {
	id     uint64
	sentAt int64
	// answeredAt is when the last answer came.
	answeredAt int64
}

// spec is what a person asks of the cluster (the KshakaCluster's spec): a
// size, and the order of the acceptors as slots (change.Observation.Slots:
// an add takes the first acceptor that is no member, a removal the member
// that comes last).
type spec struct {
	size  int
	order []string
}

// answer is the operator's latest view of one acceptor.
type answer struct {
	incarnation, epoch uint64
	admitted           bool
}

// operator drives change.Machine, the operator's transition procedure, over
// the simulated network: it observes the acceptors through status probes,
// asks the machine for the next step, records the
// intent, and carries out the one action (installs, the rescan's touches,
// stopping a removed node). A crash loses only its volatile state: the
// intent, like the KshakaCluster's status, survives.
type operator struct {
	w    *world
	up   bool
	life int
	m    change.Machine
	// Durable: the intent, and what the person asked for.
	in   change.Intent
	spec spec
	// straddled is the last joint epoch at which straddleAtChange ran
	// (scenario state, not the operator's).
	straddled uint64

	// Volatile.
	env    *keyproc.Shared   // what the rescan's machines share: its ballot clock, above all
	view   map[string]answer // by acceptor name
	probes map[string]*probe
	rescan *touch // the key being rescanned
	// burst counts immediate decisions at time burstAt.
	burst   int
	burstAt int64
	// gc is the tombstone GC batch in progress (gc.go), nextGC when the
	// next one is due.
	gc     *gcRun
	nextGC int64
}

func newOperator(w *world, cur membership.Config) *operator {
	c := cur.Clone()
	o := &operator{w: w, up: true, m: change.Machine{Controls: w.opts.Faults.Operator}, in: change.Intent{Config: &c}}
	for _, m := range cur.Members {
		o.spec.order = append(o.spec.order, m.ID)
	}
	o.spec.size = len(cur.Members)
	o.resetVolatile()
	return o
}

func (o *operator) resetVolatile() {
	o.env = &keyproc.Shared{Clock: round.NewClock(o.w.randID()), Cache: round.NewCache(o.w.opts.CacheSize), Rand: o.w.rng.Float64}
	o.view = map[string]answer{}
	o.probes = map[string]*probe{}
	o.rescan = nil
	o.gc = nil
}

// current is the configuration the operator installed last (or is
// installing).
func (o *operator) current() membership.Config {
	if o.in.Config == nil {
		return membership.Config{}
	}
	return o.in.Config.Clone()
}

// isRetired reports whether inc is retired.
func (o *operator) isRetired(inc uint64) bool { return slices.Contains(o.in.Retired, inc) }

// wantAdd asks for one more member: the acceptor name, which must exist.
func (o *operator) wantAdd(name string) {
	o.spec.order = append(slices.DeleteFunc(o.spec.order, func(s string) bool { return s == name }), name)
	o.spec.size++
	o.w.note("want add "+name, uint64(o.spec.size))
}

// wantRemove asks for one member less: the member name, which the machine
// then removes (its slot comes last).
func (o *operator) wantRemove(name string) {
	o.spec.order = append(slices.DeleteFunc(o.spec.order, func(s string) bool { return s == name }), name)
	o.spec.size--
	o.w.note("want remove "+name, uint64(o.spec.size))
}

func (o *operator) crash(down int64) {
	o.up = false
	o.life++
	o.w.stats.OperatorCrashes++
	o.w.note("crash operator", o.epoch())
	o.resetVolatile()
	o.w.after(down, func() {
		o.up = true
		o.w.note("restart operator", o.epoch())
		o.tick()
	})
}

func (o *operator) epoch() uint64 {
	if o.in.Config == nil {
		return 0
	}
	return o.in.Config.Epoch
}

func (o *operator) schedule() {
	life := o.life
	o.w.after(o.w.opts.OperatorTick, func() {
		if o.life == life && o.up {
			o.tick()
		}
	})
}

// busy reports whether a change is in progress or asked for: a transition
// is recorded, the size differs from the spec, or a member is retired and
// waiting for its replacement.
func (o *operator) busy() bool {
	if o.in.Transition != nil || len(o.current().Members) != o.spec.size {
		return true
	}
	for _, m := range o.current().Members {
		if o.isRetired(m.Incarnation) {
			return true
		}
	}
	return false
}

// inPlay lists the configurations whose members the operator watches.
func (o *operator) inPlay() []membership.Config {
	out := []membership.Config{o.current()}
	if tr := o.in.Transition; tr != nil && tr.From != nil {
		out = append(out, tr.From.Clone())
	}
	return out
}

func (o *operator) tick() {
	o.schedule()
	o.probe()
	o.act()
}

// probe asks every acceptor for its status that has no request
// outstanding (or one that timed out) and was not heard from lately.
func (o *operator) probe() {
	every := int64(probeEvery)
	if o.busy() || o.gc != nil {
		every = 0
	}
	for _, a := range o.w.acceptors {
		if a.deleted {
			continue
		}
		p := o.probes[a.name]
		switch {
		case p == nil:
			p = &probe{answeredAt: -probeEvery}
			o.probes[a.name] = p
		case p.id != 0 && o.w.now-p.sentAt < probeTimeout:
			continue // outstanding
		case p.id == 0 && o.w.now-p.answeredAt < every:
			continue
		}
		p.id, p.sentAt = o.w.id(), o.w.now
		o.w.send(&message{kind: mStatus, from: opName, to: a.name, attempt: p.id})
	}
}

// statusReply is an acceptor's answer to the operator's status probe.
func (w *world) statusReply(a *acceptor, m *message) {
	if !a.up || a.deleted {
		return
	}
	r := &message{kind: mStatusReply, from: a.name, to: m.from, attempt: m.attempt, incarnation: a.incarnation, epoch: a.epoch()}
	if a.cfg != nil {
		_, r.ok = a.cfg.Member(a.incarnation)
	}
	w.send(r)
}

// heard records the answer to the outstanding status request at acceptor
// name; answers to other requests are stale and ignored.
func (o *operator) heard(name string, id, inc, epoch uint64, admitted bool) {
	p := o.probes[name]
	if p == nil || p.id == 0 || p.id != id || inc == 0 {
		return
	}
	p.id, p.answeredAt = 0, o.w.now
	o.view[name] = answer{incarnation: inc, epoch: epoch, admitted: admitted}
}

// observation is what the operator sees: every acceptor that has not been
// deleted is a slot, reachable once it answered. One that was never in a
// configuration counts as started only once a transition adds it (as a
// StatefulSet creates a new ordinal's pod when it grows).
func (o *operator) observation() change.Observation {
	obs := change.Observation{Size: o.spec.size, Seen: map[string]change.Slot{}, Now: time.Unix(o.w.now, 0)}
	for _, a := range o.w.acceptors {
		if a.deleted {
			continue
		}
		started := o.started(a.name)
		s := change.Slot{Exists: started, Running: started, HasStorage: true, Addr: a.name, Healthy: true}
		if v, ok := o.view[a.name]; ok {
			s.Reachable, s.Incarnation, s.Epoch, s.Admitted = true, v.incarnation, v.epoch, v.admitted
		} else {
			s.Why = a.name + " has not answered"
		}
		obs.Seen[a.name] = s
	}
	for _, name := range o.spec.order {
		if _, ok := obs.Seen[name]; ok {
			obs.Slots = append(obs.Slots, name)
		}
	}
	return obs
}

// started reports whether acceptor name counts as started: it is a member
// of a configuration in play, or the member a transition adds.
func (o *operator) started(name string) bool {
	if tr := o.in.Transition; tr != nil && tr.Member.ID == name {
		return true
	}
	for _, c := range o.inPlay() {
		if _, ok := c.MemberByID(name); ok {
			return true
		}
	}
	return false
}

// act asks the machine for the next step, records the intent and carries
// out the action. Every action is idempotent, so a restarted operator
// simply acts again from its durable intent.
func (o *operator) act() {
	if o.gcAct() {
		return
	}
	dec := o.m.Next(o.in, o.observation())
	o.record(dec.Intent, dec.Events)
	if dec.Fenced > 0 {
		o.w.fenced = max(o.w.fenced, dec.Fenced)
	}
	a := dec.Action
	switch a.Kind {
	case change.Install:
		o.install(a)
	case change.Rescan:
		o.rescanStep(a)
	case change.Stop:
		if n := o.w.byName[a.Slot]; n != nil && !n.deleted {
			n.deleted, n.up = true, false
			o.w.note("delete "+n.name, n.incarnation)
			o.act0()
		}
	case change.Recycle:
		// Like deleting a volume claim and its pod: only the storage of
		// the retired incarnation goes, and what the operator saw of it.
		if n := o.w.byName[a.Slot]; n != nil && !n.deleted && n.incarnation == a.Incarnation {
			n.loseDisk()
			delete(o.view, n.name)
			o.w.after(1, n.restart)
		}
	}
	if dec.Pace == change.PaceNow && a.Kind == change.None {
		o.act0()
	}
}

// act0 decides and acts again right away instead of at the next tick, at
// most a few times at one instant (a step that keeps asking to go on at
// once without changing anything waits for the next tick).
func (o *operator) act0() {
	if o.burstAt != o.w.now {
		o.burstAt, o.burst = o.w.now, 0
	}
	if o.burst++; o.burst > 20 {
		return
	}
	life := o.life
	o.w.after(0, func() {
		if o.life == life && o.up {
			o.act()
		}
	})
}

// record makes in the durable intent and notes the events.
func (o *operator) record(in change.Intent, events []change.Event) {
	o.in = in
	for _, e := range events {
		o.w.note("step "+e.Reason, o.epoch())
		if e.Reason == change.EventFinalInstalled {
			o.w.stats.Changes++
		}
	}
}

// install sends the configuration to the action's targets. The first time
// a joint configuration goes to the members other than a new one, the
// straddle faults of Options.StraddleChanges start.
func (o *operator) install(a change.Action) {
	tr := o.in.Transition
	if tr != nil && tr.Step == change.StepInstallJoint && o.straddled < a.Config.Epoch &&
		(tr.Kind == change.Remove || !slices.ContainsFunc(a.Targets, func(t change.Target) bool { return t.Slot == tr.Member.ID })) {
		o.straddled = a.Config.Epoch
		o.w.straddleAtChange(a.Config)
	}
	for _, t := range a.Targets {
		c := a.Config.Clone()
		o.w.send(&message{kind: mInstall, from: opName, to: t.Slot, cfg: &c, incarnation: t.Incarnation})
	}
}

func (o *operator) receive(m *message) {
	if !o.up {
		return
	}
	switch m.kind {
	case mInstallReply:
		// Not part of the view: an install's answer may arrive after a
		// status answer that saw a later state.
		return
	case mStatusReply:
		o.heard(m.from, m.attempt, m.incarnation, m.epoch, m.ok)
		if o.gc != nil {
			o.act0()
		}
		return
	case mCollectReply:
		o.gcCollected(m)
		return
	}
	t := o.rescan
	if t == nil {
		return
	}
	if m.kind == mReadReply {
		if t.skip == nil || m.attempt != t.readID {
			return
		}
		t.skip.OnRead(m.incarnation, m.ok, m.accepted)
		o.skipProgress(t)
		return
	}
	o.onTouchReply(t, m)
}

// nextKey is the first key after cursor, in key order.
func (o *operator) nextKey(cursor []byte) (string, bool) {
	keys := slices.Clone(o.w.keys)
	slices.Sort(keys)
	for _, k := range keys {
		if bytes.Compare([]byte(k), cursor) > 0 {
			return k, true
		}
	}
	return "", false
}

// rescanStep carries out the machine's Rescan action one key at a time:
// the touch of the first key after the cursor under the joint
// configuration, proposer.Client.Touch's op run by the library's key
// machine (rescan.go; docs/design.md §5). When the action asks to skip keys
// (only the negative controls RescanSkip and SkipBelowAcceptQuorum do), the
// key is first read from every member of the joint accept set S and left
// alone when the withdrawn rule (skipRule) says so. Each key done is
// reported to the machine (Machine.Rescanned), which moves the cursor.
func (o *operator) rescanStep(a change.Action) {
	key, ok := o.nextKey(a.Cursor)
	if !ok {
		o.rescanned(change.Progress{Done: true})
		return
	}
	if t := o.rescan; t != nil && t.key == key && t.cfg.Epoch == a.Config.Epoch {
		return // in flight
	}
	t := &touch{key: key, cfg: a.Config.Clone()}
	o.rescan = t
	if a.SkipAgreeing == 0 {
		o.startTouch(t)
		return
	}
	weak := t.cfg.Clone()
	weak.AcceptQuorum = a.SkipAgreeing
	t.skip, t.readID = newSkipRule(&weak), o.w.id()
	for _, m := range t.skip.Targets() {
		o.w.send(&message{kind: mRead, from: opName, to: m.ID, attempt: t.readID, key: key, epoch: t.cfg.Epoch})
	}
	life := o.life
	d := o.w.opts.OperatorTimeout
	if d == 0 {
		d = o.w.opts.Timeout
	}
	o.w.after(d, func() {
		if o.life == life && o.rescan == t && t.skip != nil {
			t.skip.Expire()
			o.skipProgress(t)
		}
	})
}

// skipProgress acts on the skip rule's decision: skip the key, or touch it.
func (o *operator) skipProgress(t *touch) {
	switch t.skip.Outcome() {
	case round.Success:
		o.w.stats.RescanSkips++
		o.keyDone(t)
	case round.Failed:
		o.startTouch(t)
	}
}

func (o *operator) dropRescan() { o.rescan = nil }

// keyDone reports a rescanned key to the machine.
func (o *operator) keyDone(t *touch) {
	o.dropRescan()
	_, more := o.nextKey([]byte(t.key))
	o.rescanned(change.Progress{Cursor: []byte(t.key), Keys: 1, Done: !more})
	o.w.note("rescanned "+t.key, t.cfg.Epoch)
}

// rescanned records the rescan's progress through the machine, then goes
// on at once.
func (o *operator) rescanned(p change.Progress) {
	in, events, err := o.m.Rescanned(o.in, p)
	if err != nil {
		return // the transition moved on meanwhile
	}
	o.record(in, events)
	o.act0()
}
