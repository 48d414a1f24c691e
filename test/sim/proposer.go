package sim

import (
	"errors"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

type opKind uint8

const (
	opGet opKind = iota
	opPut
	opCAS
	opDelete
)

var errCASMismatch = errors.New("cas: value mismatch")

// clientOp is one client operation; its writes carry a unique value.
type clientOp struct {
	cl       *client
	clientID int
	kind     opKind
	key      string
	val      string // put, cas: the new value (unique)
	from     string // cas: the expected value ("" = absent)
	call     int64
	rounds   []uint64 // proposals this op was part of
	done     bool
}

// change is the op's change function (DESIGN §2.3); reads that fall back
// to a full round use the identity.
func (o *clientOp) change() round.Change {
	switch o.kind {
	case opPut:
		return func(cur register.Value) (register.Value, error) { return cur.Put([]byte(o.val)), nil }
	case opDelete:
		return func(cur register.Value) (register.Value, error) { return cur.Delete(), nil }
	case opCAS:
		return func(cur register.Value) (register.Value, error) {
			if visible(cur) != o.from {
				return cur, errCASMismatch
			}
			return cur.Put([]byte(o.val)), nil
		}
	}
	return round.Identity
}

// visible is what a client sees of a register: its data, or "" when absent.
func visible(v register.Value) string {
	if !v.Exists() {
		return ""
	}
	return string(v.Data)
}

// client issues operations one after another through its proposer.
type client struct {
	p    *proposer
	id   int // porcupine client ID; a new one after each open-ended op
	n    int
	left int
	busy bool
	gen  int               // scheduling token: only the latest wake-up issues
	cur  *clientOp         // the operation in flight
	seen map[string]string // last value observed per key; lookups only
}

// attempt is one try of a change (round.Write) or of a quorum read
// (round.Read) under one configuration.
type attempt struct {
	id    uint64
	key   string
	cfg   *membership.Config
	w     *round.Write
	r     *round.Read
	skip  *skipRule // the operator's rescan read (negative controls only)
	ops   []*clientOp
	res   []round.Applied
	tries int
	round uint64
	fast  bool
	entry round.CacheEntry
	// tally is the broken read's own count of P members per ballot.
	tally map[register.Ballot]int
	// pending are the proposals of earlier tries that ended Unknown and
	// changed something, oldest first, with their changes' results
	// (SettleUnknown); own is the index of the one this try finishes, or -1.
	pending    []round.Proposal
	pendingRes [][]round.Applied
	own        int
}

type keyState struct {
	queue    []*clientOp
	inflight *attempt
}

// proposer is one application process linking the proposer library.
type proposer struct {
	w           *world
	name        string
	up          bool
	life        int
	clock       *round.Clock
	cache       *round.Cache
	cfg         membership.Config
	keys        map[string]*keyState // lookups only
	attempts    map[uint64]*attempt  // lookups only
	clients     []*client
	pausedUntil int64
}

func newProposer(w *world, name string, cfg membership.Config) *proposer {
	p := &proposer{w: w, name: name, up: true, cfg: cfg.Clone()}
	p.reset()
	return p
}

// nextBallot is Clock.Next for the simulation, whose clocks start at
// counter 1 and cannot run out.
func nextBallot(c *round.Clock) register.Ballot {
	b, err := c.Next()
	if err != nil {
		panic(err)
	}
	return b
}

// observe is Clock.Observe for the simulation's clocks, which are unbounded
// (round.NewClock) and so never refuse a ballot.
func observe(c *round.Clock, b register.Ballot) {
	if err := c.Observe(b); err != nil {
		panic(err)
	}
}

// reset starts a new process incarnation: a new proposer ID, an empty
// cache, no rounds in flight (DESIGN §2.1).
func (p *proposer) reset() {
	p.clock = round.NewClock(p.w.randID())
	p.cache = round.NewCache(p.w.opts.CacheSize)
	p.keys = map[string]*keyState{}
	p.attempts = map[uint64]*attempt{}
}

func (p *proposer) ks(key string) *keyState {
	k := p.keys[key]
	if k == nil {
		k = &keyState{}
		p.keys[key] = k
	}
	return k
}

// adopt takes a configuration learned from a reply if it is newer
// (DESIGN §3: proposers always adopt the highest epoch they see).
func (p *proposer) adopt(c *membership.Config) bool {
	if c == nil || c.Epoch <= p.cfg.Epoch {
		return false
	}
	p.cfg = c.Clone()
	p.w.note("adopt "+p.name, c.Epoch)
	return true
}

// submit starts a client operation.
func (p *proposer) submit(o *clientOp) {
	if o.kind == opGet && p.w.opts.QuorumReads {
		p.startRead(o)
		return
	}
	p.enqueue(o)
}

func (p *proposer) enqueue(o *clientOp) {
	k := p.ks(o.key)
	k.queue = append(k.queue, o)
	if k.inflight == nil {
		p.startWrite(o.key)
	}
}

func (p *proposer) startWrite(key string) {
	k := p.ks(key)
	n := min(len(k.queue), max(1, p.w.opts.MaxBatch))
	if n == 0 {
		return
	}
	att := &attempt{key: key, ops: append([]*clientOp(nil), k.queue[:n]...)}
	k.queue = k.queue[n:]
	k.inflight = att
	p.tryWrite(att)
}

func (p *proposer) register(att *attempt) {
	delete(p.attempts, att.id)
	att.id = p.w.id()
	p.attempts[att.id] = att
}

// tryWrite sends one attempt with a ballot never used before: a cached
// 1RTT promise for this epoch, or a fresh ballot and a prepare.
func (p *proposer) tryWrite(att *attempt) {
	att.tries++
	att.round = p.w.id()
	for _, o := range att.ops {
		o.rounds = append(o.rounds, att.round)
	}
	cfg := p.cfg.Clone()
	att.cfg = &cfg
	p.register(att)
	// Settling needs a prepare: its quorum's highest accepted value and
	// ballot are what round.Settle reasons about.
	if p.w.opts.OneRTT && len(att.pending) == 0 {
		if e, ok := p.cache.Take(att.key); ok && e.Epoch == cfg.Epoch {
			att.fast, att.entry = true, e
			att.w = round.NewFastWrite(att.cfg, e.Ballot, e.Value)
			p.w.stats.FastWrites++
			p.propose(att)
			return
		}
	}
	att.fast = false
	att.w = round.NewWrite(att.cfg, nextBallot(p.clock))
	p.w.note("prepare "+p.name+" "+att.key, att.w.Ballot().Counter)
	for _, m := range att.w.PrepareTargets() {
		p.w.send(&message{kind: mPrepare, from: p.name, to: m.ID, attempt: att.id, key: att.key, epoch: cfg.Epoch, ballot: att.w.Ballot()})
	}
	p.arm(att, round.Preparing)
}

func (p *proposer) propose(att *attempt) {
	cur := att.w.Current()
	att.own = -1
	ambiguous := false
	if len(att.pending) > 0 {
		att.own, ambiguous = p.settle(att)
	}
	var v register.Value
	switch {
	case ambiguous:
		// Someone else's round may have built on a pending proposal: the
		// outcome stays unknown (the real proposer's giveUp).
		att.w.Expire()
		delete(p.attempts, att.id)
		p.w.stats.SettleAmbiguous += len(att.ops)
		p.w.note("settle ambiguous "+p.name+" "+att.key, att.round)
		for _, o := range att.ops {
			p.complete(o, statusUnknown, round.Applied{})
		}
		p.nextWrite(att.key)
		return
	case att.own >= 0:
		// Our own proposal is the newest value: accept it again.
		v, att.res = cur, att.pendingRes[att.own]
		p.w.note("settle own "+p.name+" "+att.key, att.round, uint64(att.own))
	default:
		changes := make([]round.Change, len(att.ops))
		for i, o := range att.ops {
			changes[i] = o.change()
		}
		v, att.res = round.ApplyAll(cur, changes)
		if len(att.pending) > 0 {
			p.w.note("settle fresh "+p.name+" "+att.key, att.round)
		}
	}
	var next register.Ballot
	if p.w.opts.OneRTT {
		next = nextBallot(p.clock)
	}
	att.w.Propose(v, next)
	for _, m := range att.w.AcceptTargets() {
		p.w.send(&message{kind: mAccept, from: p.name, to: m.ID, attempt: att.id, round: att.round, key: att.key,
			epoch: att.cfg.Epoch, ballot: att.w.Ballot(), next: next, value: v.Clone()})
	}
	p.arm(att, round.Accepting)
}

// settle applies round.Settle to the prepare's highest accepted value, as
// the real proposer does. The BlindRetry fault ignores it and re-applies the
// changes whatever the value derives from; IgnoreAmbiguous re-applies them
// when it is ambiguous.
func (p *proposer) settle(att *attempt) (own int, ambiguous bool) {
	if p.w.opts.Faults.BlindRetry {
		return -1, false
	}
	own, ambiguous = round.Settle(att.pending, att.w.CurrentBallot(), att.w.Current())
	return own, ambiguous && !p.w.opts.Faults.IgnoreAmbiguous
}

func (p *proposer) arm(att *attempt, phase round.Phase) {
	id, life := att.id, p.life
	p.w.after(p.w.opts.Timeout, func() {
		if p.life != life || p.attempts[id] != att {
			return
		}
		if att.r != nil {
			att.r.Expire()
			p.readDone(att)
			return
		}
		if att.w.Phase() == phase {
			att.w.Expire()
			p.writeProgress(att)
		}
	})
}

// acceptReply classifies an acceptor's answer to an accept at ballot with
// round.ClassifyAccept, from what the real wire carries: the proposer's
// batcher and this simulation share the rule. The faults StaleRefusalDefinite
// and RefusalAlwaysDefinite put back the broken rules of the negative
// controls.
func (w *world) acceptReply(ballot register.Ballot, m *message) round.Reply {
	refusedWhole := m.stale || m.notAdmitted
	switch f := w.opts.Faults; {
	case m.ok:
	case f.RefusalAlwaysDefinite, f.StaleRefusalDefinite && refusedWhole:
		return round.Nack
	}
	a := round.AcceptAnswer{OK: m.ok}
	if !m.ok && !refusedWhole {
		a.Conflict, a.Accepted = true, m.accepted
	}
	return round.ClassifyAccept(ballot, a)
}

func (p *proposer) receive(m *message) {
	if !p.up {
		return
	}
	learned := p.adopt(m.cfg)
	if !m.conflict.IsZero() {
		observe(p.clock, m.conflict)
	}
	if m.kind == mGetConfigReply {
		return
	}
	att := p.attempts[m.attempt]
	if att == nil {
		return
	}
	reply := round.Ack
	if !m.ok {
		reply = round.Nack
	}
	switch m.kind {
	case mPrepareReply:
		if att.w.Phase() != round.Preparing {
			return
		}
		att.w.OnPrepare(m.incarnation, reply, m.accepted, m.value, m.conflict)
		if learned && att.w.Phase() == round.Preparing {
			// A newer configuration: nothing was accepted yet, so
			// give up this try and retry under the new epoch.
			att.w.Expire()
		}
		p.writeProgress(att)
	case mAcceptReply:
		if att.w.Phase() != round.Accepting {
			return
		}
		reply = p.w.acceptReply(att.w.Ballot(), m)
		p.w.note("accept reply "+p.name+" "+m.from+" "+m.key, uint64(reply), att.round, m.accepted.Counter)
		att.w.OnAccept(m.incarnation, reply, m.conflict)
		p.writeProgress(att)
	case mReadReply:
		p.onRead(att, m)
	}
}

func (p *proposer) writeProgress(att *attempt) {
	switch att.w.Phase() {
	case round.Proposing:
		p.propose(att)
	case round.Done:
		p.finishWrite(att)
	}
}

func (p *proposer) finishWrite(att *attempt) {
	delete(p.attempts, att.id)
	observe(p.clock, att.w.Conflict())
	out := att.w.Outcome()
	p.w.note("outcome "+p.name+" "+att.key+" "+out.String(), att.round)
	switch out {
	case round.Success:
		if p.w.lateRounds[att.round] {
			p.w.stats.LateAcked++
			p.w.note("acknowledged after the fence "+p.name+" "+att.key, att.round)
		}
		if att.w.Cacheable() {
			p.cache.Put(att.key, round.CacheEntry{Epoch: att.cfg.Epoch, Ballot: att.w.Next(), Value: att.w.Proposed().Clone()})
		} else {
			p.cache.Drop(att.key)
		}
		if len(att.pending) > 0 {
			p.w.stats.Settled += len(att.ops)
			if att.own >= 0 {
				p.w.stats.SettledOwn += len(att.ops)
			}
		}
		for i, o := range att.ops {
			p.complete(o, statusOK, att.res[i])
		}
	case round.Failed:
		p.cache.Drop(att.key)
		p.w.stats.Retries++
		if att.tries < p.w.opts.MaxTries {
			p.retry(att)
			return
		}
		st := statusFail
		if len(att.pending) > 0 {
			st = statusUnknown // an earlier try may still land
		}
		for _, o := range att.ops {
			p.complete(o, st, round.Applied{})
		}
	case round.Unknown:
		p.cache.Drop(att.key)
		if p.w.opts.Faults.KeepCacheOnUnknown && att.fast {
			// Negative control 4: the ballot just used goes back
			// into the cache and will be used again.
			p.cache.Put(att.key, att.entry)
		}
		if p.w.opts.SettleUnknown && att.tries < p.w.opts.MaxTries {
			// Keep the proposal and settle it in the next try, like
			// the real proposer. An identity proposal (nothing
			// changed, or every change rejected) has nothing to
			// settle: landing or not, the value is the same.
			if att.own >= 0 || att.w.Proposed().Version != att.w.Current().Version {
				att.pending = append(att.pending, round.Proposal{Ballot: att.w.Ballot(), Value: att.w.Proposed().Clone()})
				att.pendingRes = append(att.pendingRes, att.res)
			}
			p.w.stats.SettleRetries++
			p.retry(att)
			return
		}
		for _, o := range att.ops {
			p.complete(o, statusUnknown, round.Applied{})
		}
	}
	p.nextWrite(att.key)
}

// nextWrite starts the key's next queued change, if any.
func (p *proposer) nextWrite(key string) {
	k := p.ks(key)
	k.inflight = nil
	if len(k.queue) > 0 {
		p.startWrite(key)
	}
}

// retry runs att again after a random backoff, with a new ballot.
func (p *proposer) retry(att *attempt) {
	p.register(att) // keep late replies of this try out
	life := p.life
	p.w.after(p.w.between(1, p.w.opts.Backoff), func() {
		if p.life == life && p.attempts[att.id] == att {
			p.tryWrite(att)
		}
	})
	p.bootstrap()
}

// bootstrap asks a random acceptor for its configuration, as the real
// proposer does through the cluster's client Service.
func (p *proposer) bootstrap() {
	as := p.w.acceptors
	a := as[p.w.rng.IntN(len(as))]
	p.w.send(&message{kind: mGetConfig, from: p.name, to: a.name})
}

func (p *proposer) startRead(o *clientOp) {
	cfg := p.cfg.Clone()
	att := &attempt{key: o.key, ops: []*clientOp{o}, cfg: &cfg}
	att.r = round.NewRead(att.cfg)
	att.tally = map[register.Ballot]int{}
	p.register(att)
	for _, m := range att.r.Targets() {
		p.w.send(&message{kind: mRead, from: p.name, to: m.ID, attempt: att.id, key: o.key, epoch: cfg.Epoch})
	}
	p.arm(att, 0)
}

func (p *proposer) onRead(att *attempt, m *message) {
	switch p.w.opts.Faults.BrokenRead {
	case ReadFirstReply:
		if m.ok {
			p.readSuccess(att, m.value)
			return
		}
	case ReadPrepareQuorum:
		// Negative control 5: agreement of a prepare quorum alone.
		if mem, ok := att.cfg.Member(m.incarnation); ok && m.ok && mem.Prepare {
			att.tally[m.accepted]++
			if att.tally[m.accepted] >= att.cfg.PrepareQuorum {
				p.readSuccess(att, m.value)
				return
			}
		}
	}
	att.r.OnRead(m.incarnation, m.ok, m.accepted, m.value)
	p.readDone(att)
}

func (p *proposer) readDone(att *attempt) {
	switch att.r.Outcome() {
	case round.Success:
		p.readSuccess(att, att.r.Value())
	case round.Failed:
		// Fall back to a full identity change (DESIGN §2.5).
		delete(p.attempts, att.id)
		p.w.stats.ReadFallbacks++
		p.enqueue(att.ops[0])
	}
}

func (p *proposer) readSuccess(att *attempt, v register.Value) {
	delete(p.attempts, att.id)
	p.w.stats.QuorumReads++
	p.complete(att.ops[0], statusOK, round.Applied{Value: v})
}

// complete reports an operation's outcome to its client and records it.
func (p *proposer) complete(o *clientOp, st status, res round.Applied) {
	if o.done {
		return
	}
	o.done = true
	p.w.hist.record(o, st, res, p.w.nextStamp())
	cl := o.cl
	if st == statusOK {
		cl.seen[o.key] = visible(res.Value)
	}
	if st == statusUnknown {
		cl.id = p.w.hist.newClient()
	}
	cl.busy = false
	p.w.scheduleClient(cl)
}

// crash ends the process: every operation in flight has an unknown
// outcome (pruned later if the ground truth shows it was accepted
// nowhere); clients start again with new IDs after the restart.
func (p *proposer) crash(down int64) {
	p.up = false
	p.life++
	p.w.note("crash "+p.name, uint64(p.life))
	for _, key := range p.w.keys {
		k := p.keys[key]
		if k == nil {
			continue
		}
		if k.inflight != nil {
			for _, o := range k.inflight.ops {
				p.complete(o, statusUnknown, round.Applied{})
			}
		}
		for _, o := range k.queue {
			p.complete(o, statusUnknown, round.Applied{})
		}
	}
	// Reads in flight had no effect; their clients just stop waiting.
	for _, cl := range p.clients {
		if cl.busy {
			cl.busy = false
			cl.id = p.w.hist.newClient()
		}
	}
	p.reset()
	p.w.after(down, func() {
		p.up = true
		p.w.note("restart "+p.name, 0)
		p.bootstrap()
		for _, cl := range p.clients {
			p.w.scheduleClient(cl)
		}
	})
}
