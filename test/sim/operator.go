package sim

import (
	"fmt"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

const opName = "operator"

type opStep int

const (
	stIdle opStep = iota
	stInstallJointNew
	stInstallJoint
	stRescan
	stInstallFinal
	stRetire
)

type plannedChange struct {
	kind membership.ChangeKind
	node string
	inc  uint64 // remove: the member's incarnation
}

// intent is the operator's durable state: the current configuration, the
// retired incarnations, the queue of changes and the step in progress with
// its rescan cursor (DESIGN §5, §6: recorded in status before acting).
type intent struct {
	cur     membership.Config
	retired map[uint64]bool // lookups only
	plan    []plannedChange
	step    opStep
	change  plannedChange
	removed uint64 // incarnation leaving in this change (remove)
	joint   membership.Config
	final   membership.Config
	cursor  int
}

// operator carries out membership changes with membership.Steps, the fence
// and the rescan. A crash loses only its volatile state.
type operator struct {
	w    *world
	up   bool
	life int
	in   intent

	// Volatile.
	clock    *round.Clock
	acks     map[uint64]uint64 // incarnation → epoch it acknowledged
	attempts map[uint64]*attempt
	rescan   *attempt
}

func newOperator(w *world, cur membership.Config) *operator {
	o := &operator{w: w, up: true, in: intent{cur: cur.Clone(), retired: map[uint64]bool{}}}
	o.resetVolatile()
	return o
}

func (o *operator) resetVolatile() {
	o.clock = round.NewClock(o.w.randID())
	o.acks = map[uint64]uint64{}
	o.attempts = map[uint64]*attempt{}
	o.rescan = nil
}

func (o *operator) crash(down int64) {
	o.up = false
	o.life++
	o.w.stats.OperatorCrashes++
	o.w.note("crash operator", uint64(o.in.step), uint64(o.in.cursor))
	o.resetVolatile()
	o.w.after(down, func() {
		o.up = true
		o.w.note("restart operator", uint64(o.in.step), uint64(o.in.cursor))
		o.tick()
	})
}

func (o *operator) schedule() {
	life := o.life
	o.w.after(o.w.opts.OperatorTick, func() {
		if o.life == life && o.up {
			o.tick()
		}
	})
}

func (o *operator) busy() bool { return o.in.step != stIdle || len(o.in.plan) > 0 }

// inPlay lists the configurations whose members the operator watches.
func (o *operator) inPlay() []membership.Config {
	if o.in.step == stIdle {
		return []membership.Config{o.in.cur}
	}
	return []membership.Config{o.in.cur, o.in.joint, o.in.final}
}

// observe notices members whose pod came back with a new incarnation: the
// old incarnation is retired and replaced by remove + add (DESIGN §4).
func (o *operator) observe() {
	for _, c := range o.inPlay() {
		for _, m := range c.Members {
			a := o.w.byName[m.ID]
			if a == nil || !a.up || a.incarnation == m.Incarnation || o.in.retired[m.Incarnation] {
				continue
			}
			o.in.retired[m.Incarnation] = true
			o.w.note("retire "+m.ID, m.Incarnation)
			o.in.plan = append(o.in.plan,
				plannedChange{kind: membership.Remove, node: m.ID, inc: m.Incarnation},
				plannedChange{kind: membership.Add, node: m.ID})
		}
	}
}

func (o *operator) tick() {
	o.schedule()
	o.act()
}

// act does what the current step needs. Every step is idempotent, so a
// restarted operator simply acts again from its durable intent.
func (o *operator) act() {
	o.observe()
	switch o.in.step {
	case stIdle:
		o.plan()
	case stInstallJointNew:
		// The new member gets the joint configuration first.
		if o.install(o.in.joint, []membership.Member{o.newMember()}, false) {
			o.w.straddleAtChange()
			o.setStep(stInstallJoint)
			o.tick0()
		}
	case stInstallJoint:
		if o.install(o.in.joint, o.fenceSet(o.in.cur, o.in.joint), true) {
			if o.w.opts.Faults.SkipRescan {
				o.setStep(stInstallFinal)
			} else {
				o.in.cursor = 0
				o.setStep(stRescan)
			}
			o.tick0()
		}
	case stRescan:
		o.rescanStep()
	case stInstallFinal:
		if o.install(o.in.final, o.fenceSet(o.in.joint, o.in.final), true) {
			o.setStep(stRetire)
			o.tick0()
		}
	case stRetire:
		if o.in.removed != 0 {
			o.in.retired[o.in.removed] = true
			if a := o.w.byName[o.in.change.node]; a != nil && a.incarnation == o.in.removed {
				a.deleted, a.up = true, false
				o.w.note("delete "+a.name, a.incarnation)
			}
		}
		o.in.cur = o.in.final
		o.in.plan = o.in.plan[1:]
		o.w.stats.Changes++
		o.w.note("stable", o.in.cur.Epoch, uint64(len(o.in.cur.Members)))
		o.setStep(stIdle)
	}
}

// tick0 goes on with the next step right away instead of at the next tick.
func (o *operator) tick0() {
	life := o.life
	o.w.after(0, func() {
		if o.life == life && o.up {
			o.act()
		}
	})
}

func (o *operator) setStep(s opStep) {
	o.in.step = s
	o.w.note("step", uint64(s), o.in.joint.Epoch)
}

// newMember is the member an add brings in.
func (o *operator) newMember() membership.Member {
	for _, m := range o.in.joint.Members {
		if _, ok := o.in.cur.Member(m.Incarnation); !ok {
			return m
		}
	}
	return membership.Member{}
}

// plan starts the next queued change.
func (o *operator) plan() {
	for len(o.in.plan) > 0 {
		pc := o.in.plan[0]
		ch := membership.Change{Kind: pc.kind}
		switch pc.kind {
		case membership.Remove:
			m, ok := o.in.cur.Member(pc.inc)
			if !ok {
				o.in.plan = o.in.plan[1:]
				continue
			}
			ch.Member = m
		case membership.Add:
			a := o.w.byName[pc.node]
			if a == nil || a.deleted {
				o.in.plan = o.in.plan[1:]
				continue
			}
			if !a.up {
				return // wait until it reports its incarnation
			}
			if _, ok := o.in.cur.Member(a.incarnation); ok {
				o.in.plan = o.in.plan[1:]
				continue
			}
			pc.inc = a.incarnation
			ch.Member = membership.Member{ID: a.name, Addr: a.name, Incarnation: a.incarnation}
		}
		joint, final, err := membership.Steps(o.in.cur, ch)
		if err != nil {
			o.w.note("plan refused: " + err.Error())
			o.in.plan = o.in.plan[1:]
			continue
		}
		o.in.change, o.in.joint, o.in.final = pc, joint, final
		o.in.removed = 0
		if pc.kind == membership.Remove {
			o.in.removed = pc.inc
		}
		o.acks = map[uint64]uint64{}
		o.w.note(fmt.Sprintf("plan %s %s", pc.kind, pc.node), joint.Epoch)
		if pc.kind == membership.Add {
			o.setStep(stInstallJointNew)
		} else {
			o.w.straddleAtChange()
			o.setStep(stInstallJoint)
		}
		return
	}
}

// fenceSet is every member of prev and next that has not been retired
// (DESIGN §3).
func (o *operator) fenceSet(prev, next membership.Config) []membership.Member {
	var out []membership.Member
	seen := map[uint64]bool{}
	for _, c := range []membership.Config{prev, next} {
		for _, m := range c.Members {
			if seen[m.Incarnation] || o.in.retired[m.Incarnation] {
				continue
			}
			seen[m.Incarnation] = true
			out = append(out, m)
		}
	}
	return out
}

// install sends cfg to every member of set that has not acknowledged it and
// reports whether the fence holds: every member acknowledged an epoch >=
// cfg's — or, with Faults.MajorityFence (negative control 3), a majority.
func (o *operator) install(cfg membership.Config, set []membership.Member, fence bool) bool {
	acked := 0
	for _, m := range set {
		if o.acks[m.Incarnation] >= cfg.Epoch {
			acked++
			continue
		}
		c := cfg.Clone()
		o.w.send(&message{kind: mInstall, from: opName, to: m.ID, cfg: &c, incarnation: m.Incarnation})
	}
	ok := acked == len(set)
	if fence && o.w.opts.Faults.MajorityFence {
		ok = acked >= membership.Majority(len(set))
	}
	if ok && fence {
		o.w.fenced = max(o.w.fenced, cfg.Epoch)
	}
	return ok
}

func (o *operator) receive(m *message) {
	if !o.up {
		return
	}
	if m.kind == mInstallReply {
		if m.epoch > o.acks[m.incarnation] {
			o.acks[m.incarnation] = m.epoch
		}
		return
	}
	att := o.attempts[m.attempt]
	if att == nil || att != o.rescan {
		return
	}
	if !m.conflict.IsZero() {
		observe(o.clock, m.conflict)
	}
	switch m.kind {
	case mReadReply:
		if att.skip == nil {
			return
		}
		att.skip.OnRead(m.incarnation, m.ok, m.accepted)
		o.rescanProgress()
	case mPrepareReply:
		if att.w == nil || att.w.Phase() != round.Preparing {
			return
		}
		r := round.Ack
		if !m.ok {
			r = round.Nack
		}
		att.w.OnPrepare(m.incarnation, r, m.accepted, m.value, m.conflict)
		o.rescanProgress()
	case mAcceptReply:
		if att.w == nil || att.w.Phase() != round.Accepting {
			return
		}
		att.w.OnAccept(m.incarnation, o.w.acceptReply(att.w.Ballot(), m), m.conflict)
		o.rescanProgress()
	}
}

// rescanStep runs the identity change on every key under the joint
// configuration, resuming at the durable cursor (DESIGN §5 step 3, as the
// real proposer's Rescan does). With Faults.RescanSkip or
// SkipBelowAcceptQuorum (negative controls) the operator first reads the key
// from every member of the joint accept set S and skips it when the
// withdrawn rule (skipRule) says so.
func (o *operator) rescanStep() {
	if o.rescan != nil {
		return
	}
	if o.in.cursor >= len(o.w.keys) {
		o.setStep(stInstallFinal)
		o.tick0()
		return
	}
	key := o.w.keys[o.in.cursor]
	cfg := o.in.joint.Clone()
	att := &attempt{key: key, cfg: &cfg, id: o.w.id()}
	o.attempts = map[uint64]*attempt{att.id: att}
	o.rescan = att
	if f := o.w.opts.Faults; f.RescanSkip || f.SkipBelowAcceptQuorum {
		att.skip = newSkipRule(o.skipConfig(att.cfg))
		for _, m := range att.skip.Targets() {
			o.w.send(&message{kind: mRead, from: opName, to: m.ID, attempt: att.id, key: key, epoch: cfg.Epoch})
		}
	} else {
		o.identity(att)
	}
	o.armRescan(att)
}

// skipConfig is the configuration the skip rule is checked against: cfg
// itself (Faults.RescanSkip), or with Faults.SkipBelowAcceptQuorum a copy
// whose accept quorum is one smaller, so that keys agreeing on qa − 1
// members of S are skipped.
func (o *operator) skipConfig(cfg *membership.Config) *membership.Config {
	if !o.w.opts.Faults.SkipBelowAcceptQuorum || cfg.AcceptQuorum <= 1 {
		return cfg
	}
	weak := cfg.Clone()
	weak.AcceptQuorum--
	return &weak
}

func (o *operator) identity(att *attempt) {
	att.skip = nil
	att.id = o.w.id() // late read replies must not reach the write
	o.attempts = map[uint64]*attempt{att.id: att}
	att.round = o.w.id()
	att.w = round.NewWrite(att.cfg, nextBallot(o.clock))
	for _, m := range att.w.PrepareTargets() {
		o.w.send(&message{kind: mPrepare, from: opName, to: m.ID, attempt: att.id, key: att.key, epoch: att.cfg.Epoch, ballot: att.w.Ballot()})
	}
}

func (o *operator) armRescan(att *attempt) {
	life := o.life
	d := o.w.opts.OperatorTimeout
	if d == 0 {
		d = o.w.opts.Timeout
	}
	o.w.after(d, func() {
		if o.life != life || o.rescan != att {
			return
		}
		if att.skip != nil {
			att.skip.Expire()
		} else {
			att.w.Expire()
		}
		o.rescanProgress()
	})
}

func (o *operator) rescanProgress() {
	att := o.rescan
	if att.skip != nil {
		switch att.skip.Outcome() {
		case round.Success:
			o.w.stats.RescanSkips++
			o.keyDone()
		case round.Failed:
			o.identity(att)
			o.armRescan(att)
		}
		return
	}
	switch att.w.Phase() {
	case round.Proposing:
		if att.w.Outranked() {
			// A member showed a ballot above the touch's: go again above
			// it instead of proposing (proposer.Client.Touch does the same).
			att.w.Expire()
			observe(o.clock, att.w.Conflict())
			o.rescan = nil
			o.attempts = map[uint64]*attempt{}
			return
		}
		v, _ := round.ApplyAll(att.w.Current(), []round.Change{round.Identity})
		att.w.Propose(v, register.Ballot{})
		for _, m := range att.w.AcceptTargets() {
			o.w.send(&message{kind: mAccept, from: opName, to: m.ID, attempt: att.id, round: att.round, key: att.key,
				epoch: att.cfg.Epoch, ballot: att.w.Ballot(), value: v.Clone()})
		}
		o.armRescan(att)
	case round.Done:
		observe(o.clock, att.w.Conflict())
		if att.w.Outcome() == round.Success {
			o.w.stats.RescanWrites++
			o.keyDone()
			return
		}
		// Failed or unknown: try the key again with a new ballot.
		o.rescan = nil
		o.attempts = map[uint64]*attempt{}
	}
}

func (o *operator) keyDone() {
	o.rescan = nil
	o.attempts = map[uint64]*attempt{}
	o.in.cursor++
	o.w.note("rescanned", o.in.joint.Epoch, uint64(o.in.cursor))
}
