package sim

import (
	"errors"
	"time"

	"github.com/kshaka-io/kshaka/internal/keyproc"
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

var (
	errCASMismatch = errors.New("cas: value mismatch")
	errCrashed     = errors.New("proposer crashed")
)

// clientOp is one client operation; its writes carry a unique value.
type clientOp struct {
	cl       *client
	clientID int
	kind     opKind
	key      string
	val      string // put, cas: the new value (unique)
	from     string // cas: the expected value ("" = absent)
	call     int64
	rounds   []uint64   // the proposals this op was part of (ground truth)
	kop      keyproc.Op // the op handed to the key's machine
	done     bool
}

// change is the op's change function (docs/design.md §2.3); reads that fall back
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

// proposer is one application process linking the proposer library. Its
// policy is the library's: a keyproc.Machine per key and keyproc.QuorumRead
// for Gets. This type is only their pump: it puts their messages on the
// simulated network, feeds them the replies and their timers from the
// event queue, and records the answers in the history.
type proposer struct {
	w           *world
	name        string
	up          bool
	life        int
	env         *keyproc.Shared // clock, 1RTT cache, round time of this life
	kcfg        keyproc.Config
	cfg         membership.Config
	keys        map[string]*keyState // lookups only
	wire        map[uint64]wireRef   // by message attempt ID; lookups only
	clients     []*client
	pausedUntil int64
}

// keyState is one key's machine and what the pump keeps for it.
type keyState struct {
	m    *keyproc.Machine
	wake int64 // the Tick on the event queue, -1 for none
	// round is the ground-truth ID of the proposal whose accepts are out
	// (acceptors record the IDs they accept), ballot its ballot.
	round  uint64
	ballot register.Ballot
}

// wireRef is what a message's attempt ID stands for: an attempt of a key's
// machine, or a try of a quorum read.
type wireRef struct {
	k       *keyState
	read    *quorumRead
	attempt uint64
}

// quorumRead is a Get in flight as a quorum read.
type quorumRead struct {
	o    *clientOp
	rd   *keyproc.QuorumRead
	id   uint64 // attempt ID of the try in flight
	done bool
}

func newProposer(w *world, name string, cfg membership.Config) *proposer {
	p := &proposer{w: w, name: name, up: true, cfg: cfg.Clone()}
	p.kcfg = w.libraryConfig()
	p.reset()
	return p
}

// broken is the rule each proposer fault of a negative control breaks in
// the library's machine.
func (f Faults) broken() keyproc.Broken {
	return keyproc.Broken{
		KeepCacheOnUnknown:    f.KeepCacheOnUnknown,
		BlindRetry:            f.BlindRetry,
		IgnoreAmbiguous:       f.IgnoreAmbiguous,
		LineageMissIsFresh:    f.LineageMissIsFresh,
		RestampIdentity:       f.RestampIdentity,
		StaleRefusalDefinite:  f.StaleRefusalDefinite,
		RefusalAlwaysDefinite: f.RefusalAlwaysDefinite,
		ReadFirstReply:        f.BrokenRead == ReadFirstReply,
		ReadPrepareQuorum:     f.BrokenRead == ReadPrepareQuorum,
		IgnoreVersionFloor:    f.VersionsFromZero,
	}
}

// reset starts a new process incarnation: a new proposer ID, an empty
// cache, no rounds in flight (docs/design.md §2.1).
func (p *proposer) reset() {
	p.env = &keyproc.Shared{
		Clock: round.NewClock(p.w.randID()),
		Cache: round.NewCache(p.w.opts.CacheSize),
		Rand:  p.w.rng.Float64,
	}
	p.keys = map[string]*keyState{}
	p.wire = map[uint64]wireRef{}
}

func (p *proposer) now() time.Duration { return time.Duration(p.w.now) }

func (p *proposer) ks(key string) *keyState {
	k := p.keys[key]
	if k == nil {
		k = &keyState{m: keyproc.New(key, p.kcfg, p.env, p.cfg.Clone()), wake: -1}
		p.keys[key] = k
	}
	return k
}

// adopt takes a configuration learned from a reply if it is newer
// (docs/design.md §3: proposers always adopt the highest epoch they see) and tells
// every key's machine.
func (p *proposer) adopt(c *membership.Config) {
	if c == nil || c.Epoch <= p.cfg.Epoch {
		return
	}
	p.cfg = c.Clone()
	p.w.note("adopt "+p.name, c.Epoch)
	for _, key := range p.w.keys {
		if k := p.keys[key]; k != nil {
			k.m.SetConfig(p.now(), p.cfg.Clone())
			p.pump(k)
		}
	}
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
	o.kop = keyproc.Op{Change: o.change(), Identity: o.kind == opGet, Ref: o}
	k.m.Submit(p.now(), &o.kop)
	p.pump(k)
}

// pump does what a key's machine asks until it asks nothing more.
func (p *proposer) pump(k *keyState) {
	for {
		rd := k.m.Ready()
		for _, r := range rd.Rounds {
			p.noteRound(k, r)
		}
		for _, a := range rd.Answers {
			p.answer(a)
		}
		if rd.Proposal != nil {
			k.round, k.ballot = p.w.id(), rd.Proposal.Ballot
			for _, op := range rd.Proposal.Ops {
				o := op.Ref.(*clientOp)
				o.rounds = append(o.rounds, k.round)
			}
		}
		if len(rd.Send.To) > 0 {
			p.send(k, rd.Send)
		}
		if rd.Rediscover {
			p.bootstrap()
		}
		if rd.Apply == nil {
			break
		}
		k.m.OnApplied(p.now(), rd.Apply.Run())
	}
	p.arm(k)
}

func (p *proposer) send(k *keyState, s keyproc.Send) {
	id := p.w.id()
	p.wire[id] = wireRef{k: k, attempt: s.Attempt}
	p.w.sendMachine(p.name, k.m.Key(), id, k.round, s)
}

// sendMachine puts one of a key machine's sends on the network, from a
// simulated proposer or the operator's rescan: one message per target,
// tagged with the wire attempt id that routes the replies back.
func (w *world) sendMachine(from, key string, id, round uint64, s keyproc.Send) {
	kind := mPrepare
	if s.Kind == keyproc.Accept {
		kind = mAccept
	} else {
		w.note("prepare "+from+" "+key, s.Ballot.Counter)
	}
	for _, t := range s.To {
		w.send(&message{kind: kind, from: from, to: t.ID, attempt: id, round: round, key: key,
			epoch: s.Epoch, ballot: s.Ballot, next: s.Next, value: s.Value.Clone()})
	}
}

// arm puts the machine's next Tick on the event queue.
func (p *proposer) arm(k *keyState) {
	at, ok := k.m.Wake()
	if !ok || int64(at) == k.wake {
		return
	}
	k.wake = int64(at)
	life := p.life
	p.w.after(int64(at)-p.w.now, func() {
		if p.life != life || p.keys[k.m.Key()] != k {
			return
		}
		if k.wake == int64(at) {
			k.wake = -1
		}
		k.m.Tick(p.now())
		p.pump(k)
	})
}

// noteRound traces an attempt that ended and counts it.
func (p *proposer) noteRound(k *keyState, r keyproc.Round) {
	s := &p.w.stats
	p.w.note("outcome "+p.name+" "+k.m.Key()+" "+r.Outcome.String(), r.Ballot.Counter, uint64(r.Settle))
	if r.Fast {
		s.FastWrites++
	}
	if r.Settle == keyproc.SettleAmbiguous {
		s.SettleAmbiguous++
	}
	switch r.Outcome {
	case round.Success:
		if r.Ballot == k.ballot && p.w.lateRounds[k.round] {
			s.LateAcked++
			p.w.note("acknowledged after the fence "+p.name+" "+k.m.Key(), k.round)
		}
		if r.Settle != keyproc.SettleNone {
			s.Settled += r.Changes
			if r.Settle == keyproc.SettleOwn {
				s.SettledOwn += r.Changes
			}
		}
	case round.Failed:
		s.Retries++
	case round.Unknown:
		s.SettleRetries++
	}
}

// answer records a machine's answer to a client operation.
func (p *proposer) answer(a keyproc.Answer) {
	st := statusOK
	switch a.Outcome {
	case round.Failed:
		st = statusFail
	case round.Unknown:
		st = statusUnknown
		if a.Sealed {
			p.w.stats.Sealed++
		}
	}
	p.complete(a.Op.Ref.(*clientOp), st, round.Applied{Value: a.Value, Err: a.Err})
}

// acceptAnswer is what an acceptor's answer to an accept says as the real
// wire carries it (round.AcceptAnswer), and whether the request was
// refused as a whole (a stale epoch, not admitted).
func acceptAnswer(m *message) (a round.AcceptAnswer, refused bool) {
	refused = m.stale || m.notAdmitted
	a.OK = m.ok
	if !m.ok && !refused {
		a.Conflict, a.Accepted = true, m.accepted
	}
	return a, refused
}

func (p *proposer) receive(m *message) {
	if !p.up {
		return
	}
	p.adopt(m.cfg)
	if m.kind == mGetConfigReply {
		return
	}
	ref, ok := p.wire[m.attempt]
	if !ok {
		return
	}
	now := p.now()
	switch m.kind {
	case mPrepareReply:
		reply := round.Ack
		if !m.ok {
			reply = round.Nack
		}
		ref.k.m.OnPrepare(now, keyproc.PrepareReply{
			Attempt: ref.attempt, Incarnation: m.incarnation, Reply: reply, Accepted: m.accepted, Value: m.value, Conflict: m.conflict,
		})
		p.pump(ref.k)
	case mAcceptReply:
		a, refused := acceptAnswer(m)
		p.w.note("accept reply "+p.name+" "+m.from+" "+m.key, boolNum(m.ok), boolNum(refused), m.accepted.Counter)
		ref.k.m.OnAccept(now, keyproc.AcceptReply{
			Attempt: ref.attempt, Incarnation: m.incarnation, Answer: a, Refused: refused, Conflict: m.conflict,
		})
		p.pump(ref.k)
	case mReadReply:
		ref.read.rd.OnRead(keyproc.ReplyRead{Attempt: ref.attempt, Incarnation: m.incarnation, OK: m.ok, Accepted: m.accepted, Value: m.value})
		p.readProgress(ref.read)
	}
}

func boolNum(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// bootstrap asks a random acceptor for its configuration, as the real
// proposer asks its bootstrap endpoints (the cluster's client Service).
func (p *proposer) bootstrap() {
	as := p.w.acceptors
	a := as[p.w.rng.IntN(len(as))]
	p.w.send(&message{kind: mGetConfig, from: p.name, to: a.name})
}

func (p *proposer) startRead(o *clientOp) {
	p.sendRead(&quorumRead{o: o, rd: keyproc.NewQuorumRead(p.kcfg, p.cfg.Clone())})
}

// sendRead sends the read's try in flight and arms its timeout.
func (p *proposer) sendRead(qr *quorumRead) {
	delete(p.wire, qr.id)
	qr.id = p.w.id()
	p.wire[qr.id] = wireRef{read: qr, attempt: qr.rd.Attempt()}
	s := qr.rd.Send()
	for _, t := range s.To {
		p.w.send(&message{kind: mRead, from: p.name, to: t.ID, attempt: qr.id, key: qr.o.key, epoch: s.Epoch})
	}
	id, life := qr.id, p.life
	p.w.after(p.w.opts.Timeout, func() {
		if p.life == life && qr.id == id && !qr.done {
			qr.rd.Expire()
			p.readProgress(qr)
		}
	})
}

// readProgress acts on a read's decision (keyproc.QuorumRead): the value,
// another try under a newer configuration, or the fall back to an identity
// change through the key's machine (docs/design.md §2.5).
func (p *proposer) readProgress(qr *quorumRead) {
	if qr.done {
		return
	}
	switch qr.rd.State() {
	case keyproc.ReadDone:
		qr.done = true
		p.w.stats.QuorumReads++
		p.complete(qr.o, statusOK, round.Applied{Value: qr.rd.Value()})
	case keyproc.ReadFailed:
		if qr.rd.Retry(p.cfg.Clone()) {
			p.sendRead(qr)
			return
		}
		qr.done = true
		p.w.stats.ReadFallbacks++
		p.enqueue(qr.o)
	}
}

// complete reports an operation's outcome to its client and records it.
func (p *proposer) complete(o *clientOp, st status, res round.Applied) {
	if o.done {
		return
	}
	o.done = true
	p.w.hist.record(o, st, res, p.w.nextStamp(), p.w.opts.Versions)
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

// crash ends the process: every change in flight is answered as the
// library's Close answers it (unknown when a proposal of it may land,
// pruned later if the ground truth shows it was accepted nowhere); clients
// start again with new IDs after the restart.
func (p *proposer) crash(down int64) {
	p.up = false
	p.life++
	p.w.note("crash "+p.name, uint64(p.life))
	for _, key := range p.w.keys {
		if k := p.keys[key]; k != nil {
			k.m.Close(p.now(), errCrashed)
			for _, a := range k.m.Ready().Answers {
				p.answer(a)
			}
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
