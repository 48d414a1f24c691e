package keyproc

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// errGaveUp is why the machine answers a group with an unknown outcome when
// round.Settle finds it ambiguous.
var errGaveUp = errors.New("other writers changed the key more often than its lineage records before the outcome could be settled")

// errContention is why the machine gives up on a group whose attempts kept
// losing to other proposers (Config.MaxConflicts).
var errContention = errors.New("other proposers kept winning the key")

// maxFreezeTries is how many attempts a freeze gets when other proposers
// outrun it.
const maxFreezeTries = 3

// errLeftOut answers an op that is in its group but not in the proposal
// that succeeded; the group's rules never let that happen.
var errLeftOut = errors.New("keyproc: change left out of the proposal")

// Machine is the procedure for one key (see the package doc).
type Machine struct {
	key    string
	cfg    Config
	env    Env
	conf   membership.Config // the newest configuration
	closed error             // set by Close

	queue []*Op  // submitted, not yet in the group
	g     *group // nil: no group
	seq   uint64 // attempt IDs
	out   Ready
}

// group is a set of ops run together until each has an answer.
type group struct {
	ops      []*Op
	resolve  bool
	failures int // a Resolve's; changes count their own
	lastErr  error
	// pending are the group's proposals that ended Unknown and changed
	// something, oldest first; inflight is the proposal whose accepts are
	// out. A caller that leaves builds its unknown outcome from them.
	pending  []*Proposal
	inflight *Proposal
	a        *attempt // nil between attempts
	// backoff: waiting until retryAt before the next attempt.
	backoff bool
	retryAt time.Duration
	// conflicts counts the attempts lost to other proposers (contention);
	// they do not use up MaxRetries.
	conflicts int
	// freeze: the group gave up; its attempts are identity rounds that seal
	// the fate of its pending proposals before it answers (docs/design.md
	// §11). freezeErr and freezeContention say why it gave up; freezeTries
	// counts the freeze's attempts.
	freeze           bool
	freezeErr        error
	freezeContention bool
	freezeTries      int
}

// attempt is one try of a group under one configuration.
type attempt struct {
	id        uint64
	conf      membership.Config
	w         *round.Write
	fast      bool
	entry     round.CacheEntry // fast: the promise used
	start     time.Duration
	deadline  time.Duration // of the phase waiting for replies
	cur       register.Value
	own       int
	ambiguous bool
	settle    Settle
	applying  []*Op     // handed to the driver in Ready.Apply
	p         *Proposal // sent
	// sealing: the proposal is an identity that, once chosen, seals the
	// fate of the group's pending proposals (an ambiguous settle, or the
	// group's freeze).
	sealing bool
	// heard counts the replies of the current phase that came from an
	// acceptor that looked at the key (an ack, or a refusal because of
	// another ballot); contended is set by such a refusal. A failed
	// attempt that heard a quorum and was refused for a ballot lost to
	// contention, not to unreachable acceptors.
	heard     int
	contended bool
}

// New returns the machine of key under the configuration conf.
func New(key string, cfg Config, env Env, conf membership.Config) *Machine {
	return &Machine{key: key, cfg: cfg, env: env, conf: conf}
}

// Key is the machine's key.
func (m *Machine) Key() string { return m.key }

// Epoch is the epoch of the newest configuration the machine knows.
func (m *Machine) Epoch() uint64 { return m.conf.Epoch }

// Idle reports whether the machine has no op and no output left: its
// driver may drop it.
func (m *Machine) Idle() bool { return m.g == nil && len(m.queue) == 0 && m.out.Empty() }

// Ready returns the outputs collected since the last call.
func (m *Machine) Ready() Ready {
	r := m.out
	m.out = Ready{}
	return r
}

// TakeAnswers returns the answers collected since the last call and leaves
// the other outputs for Ready.
func (m *Machine) TakeAnswers() []Answer {
	a := m.out.Answers
	m.out.Answers = nil
	return a
}

// Wake is when the machine wants Tick: the end of the phase in flight or of
// the backoff. ok is false when it has no deadline.
func (m *Machine) Wake() (at time.Duration, ok bool) {
	if m.g != nil && m.g.backoff {
		return m.g.retryAt, true
	}
	if _, _, waiting := m.Awaiting(); waiting {
		return m.g.a.deadline, true
	}
	return 0, false
}

// Awaiting names the phase whose replies the machine wants: the attempt
// and Prepare or Accept. ok is false when it wants none; a driver may then
// stop sending what is still queued of earlier phases.
func (m *Machine) Awaiting() (attempt uint64, kind Kind, ok bool) {
	if m.g == nil || m.g.a == nil {
		return 0, 0, false
	}
	switch a := m.g.a; a.w.Phase() {
	case round.Preparing:
		return a.id, Prepare, true
	case round.Accepting:
		return a.id, Accept, true
	}
	return 0, 0, false
}

// Submit queues o. A machine without a group starts one at once.
func (m *Machine) Submit(now time.Duration, o *Op) {
	if o.state != opNew {
		panic("keyproc: op submitted twice")
	}
	if m.closed != nil {
		o.state = opQueued
		m.answer(o, Answer{Outcome: round.Failed, Err: m.closed})
		return
	}
	o.state = opQueued
	m.queue = append(m.queue, o)
	m.advance(now)
}

// Abandon records that o's caller left with cause (its context's error).
// It returns o's answer: a definite failure with cause when o is in no
// proposal that may land (or never alters the value), else an unknown
// outcome with every proposal of its group that may land. ok is false when
// o already has an answer (in Ready, or delivered).
func (m *Machine) Abandon(o *Op, cause error) (a Answer, ok bool) {
	if !o.live() {
		return Answer{}, false
	}
	proposed := o.state == opProposed
	o.state = opAbandoned
	if i := slices.Index(m.queue, o); i >= 0 {
		m.queue = slices.Delete(m.queue, i, i+1)
	}
	if proposed && !o.Identity && o.Resolve == nil {
		if u, ok := m.unknown(o, cause); ok {
			return u, true
		}
	}
	return Answer{Op: o, Outcome: round.Failed, Err: cause}, true
}

// OnPrepare feeds one member's reply to the prepare of attempt r.Attempt;
// replies to other attempts or phases are ignored.
func (m *Machine) OnPrepare(now time.Duration, r PrepareReply) {
	if m.g != nil && r.Err == nil && !r.Accepted.IsZero() {
		// Whatever attempt it answers, and whether it promised or not
		// (a refusal carries the accepted value too), a value is a fact:
		// it may witness the fate of a pending proposal
		// (round.Proposal.Observe).
		for _, p := range m.g.pending {
			p.Observe(r.Accepted, r.Value)
		}
	}
	if id, kind, ok := m.Awaiting(); !ok || kind != Prepare || id != r.Attempt {
		return
	}
	m.noteErr(r.Err, r.Reply, r.Conflict)
	if a := m.g.a; r.Err == nil && (r.Reply == round.Ack || !r.Conflict.IsZero()) {
		a.heard++
		a.contended = a.contended || r.Reply != round.Ack
	}
	m.g.a.w.OnPrepare(r.Incarnation, r.Reply, r.Accepted, r.Value, r.Conflict)
	m.afterPrepare(now)
	m.advance(now)
}

// OnAccept feeds one member's reply to the accept of attempt r.Attempt;
// replies to other attempts or phases are ignored.
func (m *Machine) OnAccept(now time.Duration, r AcceptReply) {
	if id, kind, ok := m.Awaiting(); !ok || kind != Accept || id != r.Attempt {
		return
	}
	a := m.g.a
	reply := m.classifyAccept(a.w.Ballot(), r)
	m.noteErr(r.Err, reply, r.Conflict)
	if r.Err == nil && !r.Refused && (r.Answer.OK || r.Answer.Conflict) {
		a.heard++
		a.contended = a.contended || r.Answer.Conflict
	}
	a.w.OnAccept(r.Incarnation, reply, r.Conflict)
	if a.w.Phase() == round.Done {
		m.acceptDone(now)
	}
	m.advance(now)
}

// OnApplied feeds the result of Ready.Apply. If an op it used has been
// abandoned meanwhile, the machine asks again without it.
func (m *Machine) OnApplied(now time.Duration, r ApplyResult) {
	g := m.g
	if g == nil || g.a == nil || g.a.id != r.Attempt || g.a.applying == nil {
		return
	}
	a := g.a
	if slices.ContainsFunc(r.Ops, func(o *Op) bool { return !o.live() }) {
		m.apply() // someone left while the changes ran: leave them out
		m.advance(now)
		return
	}
	for _, o := range r.Ops {
		o.state = opProposed
	}
	a.applying = nil
	v := m.stamp(r.Value, a.cur, a.w.Ballot())
	p := &Proposal{Proposal: round.Proposal{Ballot: a.w.Ballot(), Value: v}, Ops: r.Ops, Results: r.Results}
	g.inflight = p
	m.propose(now, p)
	m.advance(now)
}

// Tick tells the machine that now has come; it ends a phase past its
// timeout and a backoff that is over.
func (m *Machine) Tick(now time.Duration) {
	at, ok := m.Wake()
	if !ok || now < at {
		return
	}
	g := m.g
	if g.backoff {
		m.startAttempt(now)
		m.advance(now)
		return
	}
	g.a.w.Expire()
	if g.a.p != nil {
		m.acceptDone(now)
	} else {
		m.afterPrepare(now)
	}
	m.advance(now)
}

// SetConfig installs a newer configuration (an older or equal epoch is
// ignored). A prepare in flight ends (nothing of it was accepted) and so
// does a backoff: the group is tried again at once under the new epoch.
// Accepts in flight go on; their attempt is retried at once if it fails.
func (m *Machine) SetConfig(now time.Duration, conf membership.Config) {
	if conf.Epoch <= m.conf.Epoch {
		return
	}
	m.conf = conf
	g := m.g
	switch {
	case g == nil:
	case g.backoff:
		m.startAttempt(now)
	default:
		if _, kind, ok := m.Awaiting(); ok && kind == Prepare {
			g.a.w.Expire()
			m.afterPrepare(now)
		}
	}
	m.advance(now)
}

// Close ends the machine: the phase in flight expires, and every op is
// answered, with an unknown outcome if one of its proposals may land, else
// with the definite failure cause. Later Submits are answered with cause.
func (m *Machine) Close(now time.Duration, cause error) {
	if m.closed != nil {
		return
	}
	m.closed = cause
	if g := m.g; g != nil {
		switch {
		case g.a == nil:
			m.endGroup(cause)
		case g.a.p != nil:
			g.a.w.Expire()
			m.acceptDone(now)
		case g.a.applying != nil:
			g.a.w.Expire()
			m.roundEnded(now, round.Failed, len(g.ops))
			m.endGroup(cause)
		default:
			g.a.w.Expire()
			m.afterPrepare(now)
		}
	}
	for _, o := range m.queue {
		m.answer(o, Answer{Outcome: round.Failed, Err: cause})
	}
	m.queue = nil
}

// advance starts the next group when there is none and ops are queued.
func (m *Machine) advance(now time.Duration) {
	for m.g == nil && len(m.queue) > 0 {
		m.startGroup()
		m.startAttempt(now)
	}
}

// startGroup takes the next group from the queue: a Resolve alone, or every
// change up to the next Resolve.
func (m *Machine) startGroup() {
	n := 1
	if m.queue[0].Resolve == nil {
		n = m.changesQueued()
	}
	g := &group{ops: m.queue[:n:n]}
	m.queue = m.queue[n:]
	if r := g.ops[0].Resolve; r != nil {
		g.resolve = true
		for _, p := range r {
			p.Seen = slices.Clone(p.Seen)
			g.pending = append(g.pending, &Proposal{Proposal: p})
		}
	}
	m.g = g
}

// changesQueued is the number of changes at the head of the queue, up to
// the first Resolve.
func (m *Machine) changesQueued() int {
	n := 0
	for n < len(m.queue) && m.queue[n].Resolve == nil {
		n++
	}
	return n
}

// startAttempt runs one attempt of the group under the newest
// configuration: a 1RTT attempt with the cached promise when one is valid,
// else a prepare with a fresh ballot. Changes queued behind the group join
// it, unless it has proposals to settle (round.Settle needs every pending
// proposal to be of the same changes).
func (m *Machine) startAttempt(now time.Duration) {
	g := m.g
	g.backoff = false
	if m.closed != nil {
		m.endGroup(m.closed)
		return
	}
	g.ops = liveOps(g.ops)
	if len(g.ops) == 0 {
		m.g = nil
		return
	}
	if len(g.pending) == 0 && !g.resolve {
		n := m.changesQueued()
		g.ops = append(g.ops, m.queue[:n]...)
		m.queue = m.queue[n:]
	}
	m.seq++
	a := &attempt{id: m.seq, conf: m.conf, start: now, own: -1}
	g.a, g.lastErr = a, nil
	e, cached := m.env.CacheTake(m.key)
	fresh := g.resolve || g.freeze || len(g.pending) > 0 || slices.ContainsFunc(g.ops, func(o *Op) bool { return o.Fresh || o.All })
	if cached && !fresh && e.Epoch == a.conf.Epoch {
		a.fast, a.entry = true, e
		a.w = round.NewFastWrite(&a.conf, e.Ballot, e.Value)
		m.decide(now)
		return
	}
	b, err := m.env.NextBallot()
	if err != nil { // nothing was sent
		g.lastErr = err
		a.w = round.NewWrite(&a.conf, register.Ballot{})
		a.w.Expire()
		m.roundEnded(now, round.Failed, len(g.ops))
		m.endGroup(err)
		return
	}
	a.w = round.NewWrite(&a.conf, b)
	m.send(Send{Kind: Prepare, Attempt: a.id, Epoch: a.conf.Epoch, Ballot: b, To: a.w.PrepareTargets()}, nil)
	a.deadline = now + m.cfg.RequestTimeout
}

// afterPrepare acts on the prepare phase's end: the decision once a quorum
// promised, the failure handling when it cannot.
func (m *Machine) afterPrepare(now time.Duration) {
	a := m.g.a
	switch a.w.Phase() {
	case round.Proposing:
		m.decide(now)
	case round.Done:
		m.observe(a.w.Conflict())
		m.roundEnded(now, round.Failed, len(m.g.ops))
		m.attemptFailed(now)
	}
}

// decide chooses what the attempt proposes, from the value the prepare
// quorum (or the cached promise) showed and the group's pending proposals.
func (m *Machine) decide(now time.Duration) {
	g, a := m.g, m.g.a
	best := a.w.CurrentBallot()
	a.cur = a.w.Current()
	if m.cfg.Broken.IgnoreVersionFloor && !a.fast {
		best, a.cur = a.w.Reported()
	}
	if len(g.pending) > 0 {
		a.own, a.ambiguous = m.settle(g.pending, best, a.cur)
		switch {
		case a.own >= 0:
			a.settle = SettleOwn
		case a.ambiguous:
			a.settle = SettleAmbiguous
		default:
			a.settle = SettleFresh
		}
	}
	if a.w.Outranked() && slices.ContainsFunc(g.ops, func(o *Op) bool { return o.Above }) {
		// Nothing was sent for this ballot yet: a definite failure, and the
		// next attempt's ballot is above the one shown.
		a.w.Expire()
		m.observe(a.w.Conflict())
		m.g.lastErr = fmt.Errorf("an acceptor holds ballot %v, above the touch's %v", a.w.Conflict(), a.w.Ballot())
		m.roundEnded(now, round.Failed, len(g.ops))
		m.attemptFailed(now)
		return
	}
	switch {
	case g.resolve:
		m.propose(now, &Proposal{Proposal: round.Proposal{Ballot: a.w.Ballot(), Value: m.stamp(a.cur, a.cur, a.w.Ballot())}})
	case a.own < 0 && (a.ambiguous || g.freeze):
		// Freeze (docs/design.md §11): accept the newest value unchanged
		// at this ballot, above every pending proposal. Once chosen, each
		// pending proposal has taken effect already or never will.
		a.sealing = true
		m.propose(now, &Proposal{Proposal: round.Proposal{Ballot: a.w.Ballot(), Value: m.stamp(a.cur, a.cur, a.w.Ballot())}})
	case a.own >= 0:
		// The newest value contains one of the group's proposals: accept
		// it again, unchanged (it keeps its lineage), and answer with that
		// proposal's results.
		own := g.pending[a.own]
		p := &Proposal{Proposal: round.Proposal{Ballot: a.w.Ballot(), Value: m.stamp(a.cur, a.cur, a.w.Ballot())}, Ops: own.Ops, Results: own.Results}
		g.inflight = p
		m.propose(now, p)
	default:
		m.apply()
	}
}

// settle is round.Settle (each pending proposal judged by round.Judge), or
// a broken rule of a negative control.
func (m *Machine) settle(pending []*Proposal, best register.Ballot, cur register.Value) (derived int, ambiguous bool) {
	b := m.cfg.Broken
	if b.BlindRetry {
		return -1, false
	}
	for i, p := range pending {
		f := round.Judge(p.Proposal, best, cur)
		if f == round.Ambiguous && b.LineageMissIsFresh && len(cur.Lineage) > 0 && len(p.Value.Lineage) > 0 {
			f = round.Dead // broken: a lineage that does not reach back taken as proof
		}
		switch f {
		case round.Derived:
			return i, false
		case round.Ambiguous:
			ambiguous = true
		}
	}
	return -1, ambiguous && !b.IgnoreAmbiguous
}

// stamp gives the value a proposal at ballot b made from cur its lineage
// (register.Stamp, the one place lineages are written), or a broken rule
// of a negative control.
func (m *Machine) stamp(v, cur register.Value, b register.Ballot) register.Value {
	v = register.Stamp(v, cur, b, m.cfg.Lineage)
	if m.cfg.Broken.RestampIdentity && v.Version == cur.Version && len(v.Lineage) > 0 && v.Lineage[0].Ballot.Less(b) {
		v.Lineage[0].Ballot = b // broken: the re-proposal takes a new identity
	}
	return v
}

// apply asks the driver to run the live ops' changes on the current value.
// With none left the group is over.
func (m *Machine) apply() {
	g, a := m.g, m.g.a
	g.ops = liveOps(g.ops)
	if len(g.ops) == 0 {
		a.w.Expire()
		a.applying = nil
		m.g = nil
		return
	}
	a.applying = slices.Clone(g.ops) // a proposal's ops never share g.ops' array
	m.out.Apply = &Apply{Attempt: a.id, Ops: a.applying, Cur: a.cur}
}

// propose sends the attempt's accepts of p.
func (m *Machine) propose(now time.Duration, p *Proposal) {
	a := m.g.a
	a.p = p
	var next register.Ballot
	switch {
	case slices.ContainsFunc(m.g.ops, func(o *Op) bool { return o.All }):
		a.w.RequireAll() // and no 1RTT promise: promise == accepted everywhere
	case m.cfg.OneRTT:
		next, _ = m.env.NextBallot() // none left: no promise, the next prepare says why
	}
	a.w.Propose(p.Value, next)
	a.heard, a.contended = 0, false
	m.send(Send{Kind: Accept, Attempt: a.id, Epoch: a.conf.Epoch, Ballot: p.Ballot, Next: next, Value: p.Value, To: a.w.AcceptTargets()}, p)
	a.deadline = now + m.cfg.RequestTimeout
}

// send asks for the request of a new phase (carrying p, for an accept). It
// replaces one of an earlier phase that no driver took yet: that phase is
// over, and a request never sent cannot land.
func (m *Machine) send(s Send, p *Proposal) {
	m.out.Send, m.out.Proposal = s, p
}

// classifyAccept is round.ClassifyAccept, or a broken rule of a negative
// control. A refusal is an answer the acceptor sent that is not an accept.
func (m *Machine) classifyAccept(ballot register.Ballot, r AcceptReply) round.Reply {
	refusal := !r.Answer.OK && (r.Refused || r.Answer.Conflict || r.Answer.Invalid)
	switch b := m.cfg.Broken; {
	case refusal && b.RefusalAlwaysDefinite, refusal && r.Refused && b.StaleRefusalDefinite:
		return round.Nack
	}
	return round.ClassifyAccept(ballot, r.Answer)
}

// acceptDone acts on the accept phase's end.
func (m *Machine) acceptDone(now time.Duration) {
	g, a := m.g, m.g.a
	p := a.p
	m.observe(a.w.Conflict())
	outcome := a.w.Outcome()
	m.roundEnded(now, outcome, len(p.Ops))
	g.inflight = nil
	switch outcome {
	case round.Success:
		m.env.NoteRoundTime(now - a.start)
		if a.w.Cacheable() && !m.sawRival(a) {
			m.env.CachePut(m.key, round.CacheEntry{Epoch: a.conf.Epoch, Ballot: a.w.Next(), Value: p.Value})
		}
		if a.sealing && !g.resolve {
			m.sealed()
			return
		}
		m.succeed(p)
		return
	case round.Unknown:
		// Only proposals that change something need settling; an identity
		// proposal that lands changes nothing.
		if a.own >= 0 || p.Value.Version != a.cur.Version {
			g.pending = append(g.pending, p)
		}
		g.lastErr = fmt.Errorf("no accept quorum confirmed ballot %v (last error: %v)", p.Ballot, g.lastErr)
		if m.cfg.Broken.KeepCacheOnUnknown && a.fast {
			m.env.CachePut(m.key, a.entry) // broken: the ballot will be used again
		}
	default:
		if g.lastErr == nil {
			g.lastErr = errors.New("accept refused by every acceptor")
		}
	}
	m.attemptFailed(now)
}

// attemptFailed counts a failed attempt against the group's ops, answers
// those without retries left, and schedules the next attempt: at once when
// a newer configuration arrived meanwhile, else after a backoff.
func (m *Machine) attemptFailed(now time.Duration) {
	g := m.g
	epoch := g.a.conf.Epoch
	contended := m.contention(g.a)
	unknown := g.a.p != nil && g.a.w.Outcome() == round.Unknown && len(g.pending) > 0 && g.pending[len(g.pending)-1] == g.a.p
	g.a = nil
	if m.closed != nil {
		m.endGroup(m.closed)
		return
	}
	switch {
	case g.freeze:
		g.freezeTries++
		if !contended || g.freezeTries >= maxFreezeTries {
			m.unsealed()
			return
		}
	case contended && !g.resolve && m.cfg.MaxConflicts > 0:
		// Lost to other proposers: not a failure to reach a quorum
		// (docs/design.md §11), so it does not use up MaxRetries.
		g.conflicts++
		if g.conflicts > m.cfg.MaxConflicts && !m.giveUpFreezing(errContention, true) {
			return // answered; a group that freezes goes on below
		}
	default:
		if m.exhausted() {
			m.g = nil
			return
		}
	}
	if m.conf.Epoch != epoch {
		m.startAttempt(now) // refreshed: retry under the new configuration at once
		return
	}
	n := g.maxFailures()
	if m.cfg.RediscoverAfter > 0 && n >= m.cfg.RediscoverAfter && !contended {
		m.out.Rediscover = true
	}
	// The window grows with every failure, conflicts included: proposers
	// that keep colliding spread out until one round fits between them.
	d := Backoff(n+g.conflicts+g.freezeTries, max(m.cfg.BackoffBase, m.env.RoundTime()), m.cfg.BackoffMax, m.env.Jitter())
	switch {
	case !contended:
		// Unreachable members: back off as usual, whatever is pending.
	case unknown:
		// Settle at once: the sooner the next prepare looks, the fewer
		// proposals stand between the pending one and what it finds, and
		// the more likely the lineage still reaches back to it.
		d = 0
	case len(g.pending) > 0 && !g.freeze:
		// Settling while other proposers write: every prepare carries
		// the evidence forward (round.Proposal.Observe), so look again
		// within about a round.
		d = Backoff(1, max(m.cfg.BackoffBase, m.env.RoundTime()), m.cfg.BackoffMax, m.env.Jitter())
	}
	if d <= 0 {
		m.startAttempt(now)
		return
	}
	g.backoff, g.retryAt = true, now+d
}

// exhausted counts a failed attempt against every op of the group and
// answers those that have no retries left. It reports whether the group is
// finished.
func (m *Machine) exhausted() bool {
	g := m.g
	if g.resolve {
		g.failures++
		if g.failures > m.cfg.MaxRetries {
			m.answer(g.ops[0], Answer{Outcome: round.Failed, NoQuorum: true, Attempts: g.failures, Err: g.lastErr})
			return true
		}
		return false
	}
	out := g.ops[:0]
	spent := false
	for _, o := range g.ops {
		if !o.live() {
			continue
		}
		o.failures++
		spent = spent || o.failures > m.cfg.MaxRetries
		out = append(out, o)
	}
	g.ops = out
	if spent && m.giveUpFreezing(g.lastErr, false) {
		return false
	}
	out = g.ops[:0]
	for _, o := range g.ops {
		if o.failures <= m.cfg.MaxRetries {
			out = append(out, o)
			continue
		}
		m.fail(o, Answer{Outcome: round.Failed, NoQuorum: true, Attempts: o.failures, Err: g.lastErr})
	}
	g.ops = out
	return len(out) == 0
}

// giveUpFreezing starts the group's freeze when it gives up with pending
// proposals that may land (docs/design.md §11): its next attempts are
// identity rounds above them, and it answers once one succeeds or the
// freeze fails. Without pending proposals, a group giving up for
// contention answers with definite failures. It reports whether the group
// goes on (freezing).
func (m *Machine) giveUpFreezing(cause error, contention bool) bool {
	g := m.g
	if len(g.pending) > 0 {
		g.freeze, g.freezeErr, g.freezeContention = true, cause, contention
		return true
	}
	if contention {
		for _, o := range g.ops {
			m.fail(o, Answer{Outcome: round.Failed, Contention: true, Attempts: o.failures + g.conflicts, Err: cause})
		}
		m.g = nil
	}
	return false
}

// sealed answers a group whose sealing identity proposal succeeded: its
// pending proposals have taken effect or never will. One that the newest
// value derived from was finished by the normal path (succeed); so here
// they are dead (a definite failure with the reason the group gave up) or
// the newest value hides their fate (an unknown outcome that says so).
func (m *Machine) sealed() {
	g, a := m.g, m.g.a
	cause := g.freezeErr
	if cause == nil {
		cause = errGaveUp
	}
	for _, o := range g.ops {
		if !o.live() {
			continue
		}
		if a.ambiguous && !o.Identity {
			if u, ok := m.unknown(o, cause); ok {
				u.Sealed = true
				m.answer(o, u)
				continue
			}
		}
		def := Answer{Outcome: round.Failed, Attempts: o.failures + g.conflicts, Err: cause}
		if g.freezeContention {
			def.Contention = true
		} else {
			def.NoQuorum = true
		}
		m.answer(o, def)
	}
	m.g = nil
}

// unsealed answers a group whose freeze failed: unknown outcomes where a
// proposal may land, else definite failures.
func (m *Machine) unsealed() {
	g := m.g
	for _, o := range g.ops {
		def := Answer{Outcome: round.Failed, Attempts: o.failures + g.conflicts, Err: g.freezeErr}
		if g.freezeContention {
			def.Contention = true
		} else {
			def.NoQuorum = true
		}
		m.fail(o, def)
	}
	m.g = nil
}

// contention reports whether a failed attempt lost to other proposers: at
// least one refused because of another ballot, and enough members of its
// phase answered after looking at the key to decide it (a quorum, or
// enough to rule one out), so it did not fail for want of replies.
func (m *Machine) contention(a *attempt) bool {
	if !a.contended {
		return false
	}
	q, n := a.conf.PrepareQuorum, len(a.conf.PrepareSet())
	if a.p != nil {
		q, n = a.conf.AcceptQuorum, len(a.conf.AcceptSet())
	}
	return a.heard >= min(q, n-q+1)
}

// sawRival reports whether a successful attempt saw another proposer at
// the key: a refusal showed another proposer's ballot above its own, or
// its prepare found the newest value accepted at another proposer's ballot.
// Its 1RTT promise is then not cached (docs/design.md §2.4): the rival
// would most likely outrun it, and a 1RTT accept that loses to it ends
// unknown.
func (m *Machine) sawRival(a *attempt) bool {
	own := a.w.Ballot().Proposer
	if c := a.w.Conflict(); !c.IsZero() && c.Proposer != own && a.w.Ballot().Less(c) {
		return true
	}
	cb := a.w.CurrentBallot()
	return !a.fast && !cb.IsZero() && cb.Proposer != own
}

func (g *group) maxFailures() int {
	n := g.failures
	for _, o := range g.ops {
		n = max(n, o.failures)
	}
	return n
}

// succeed answers the ops of a successful proposal and ends the group.
func (m *Machine) succeed(p *Proposal) {
	g, a := m.g, m.g.a
	m.g = nil
	if g.resolve {
		r := NotApplied
		switch {
		case a.own >= 0:
			r = Applied
		case a.ambiguous:
			r = Undecided
		}
		m.answer(g.ops[0], Answer{Outcome: round.Success, Value: p.Value, Ballot: p.Ballot, Resolution: r})
		return
	}
	m.out.Answers = slices.Grow(m.out.Answers, len(p.Ops))
	for i, o := range p.Ops {
		m.answer(o, Answer{Outcome: round.Success, Value: p.Results[i].Value, Ballot: p.Ballot, Err: p.Results[i].Err})
	}
	for _, o := range g.ops {
		m.answer(o, Answer{Outcome: round.Failed, Err: errLeftOut})
	}
}

// endGroup answers every op of the group with cause (unknown outcomes where
// a proposal may land) and ends it.
func (m *Machine) endGroup(cause error) {
	for _, o := range m.g.ops {
		m.fail(o, Answer{Outcome: round.Failed, Err: cause})
	}
	m.g = nil
}

// fail answers o with an unknown outcome if one of its proposals may land,
// else with the definite failure def. Identity changes have nothing unknown
// about them.
func (m *Machine) fail(o *Op, def Answer) {
	if !o.live() {
		return
	}
	if !o.Identity {
		if u, ok := m.unknown(o, def.Err); ok {
			m.answer(o, u)
			return
		}
	}
	m.answer(o, def)
}

// unknown builds o's unknown outcome from the group's proposals that may
// land; ok is false when o is in none of them.
func (m *Machine) unknown(o *Op, cause error) (u Answer, ok bool) {
	g := m.g
	if g == nil {
		return Answer{}, false
	}
	ps := g.pending
	if g.inflight != nil {
		ps = append(ps[:len(ps):len(ps)], g.inflight)
	}
	u = Answer{Op: o, Outcome: round.Unknown, Err: cause}
	for _, p := range ps {
		for i, po := range p.Ops {
			if po != o {
				continue
			}
			ok = true
			if p.Results[i].Err == nil {
				u.Intended, u.HasIntended = p.Results[i].Value, true
			}
		}
	}
	if !ok {
		return Answer{}, false
	}
	u.Pending = make([]round.Proposal, len(ps))
	for i, p := range ps {
		u.Pending[i] = p.Proposal
		u.Pending[i].Seen = slices.Clone(p.Seen)
	}
	return u, true
}

// answer gives o its final answer, unless it has one or its caller left.
func (m *Machine) answer(o *Op, a Answer) {
	if !o.live() {
		return
	}
	o.state = opDone
	a.Op = o
	m.out.Answers = append(m.out.Answers, a)
}

func (m *Machine) noteErr(err error, r round.Reply, conflict register.Ballot) {
	switch {
	case err != nil:
		m.g.lastErr = err
	case r == round.Nack:
		m.g.lastErr = fmt.Errorf("ballot conflict (acceptor has seen %v)", conflict)
	}
}

// observe fast-forwards the clock past a conflict; when the clock will not
// follow (a ballot too far ahead of the wall clock, docs/design.md §2.1), the
// attempt failed because of it, which the error then says.
func (m *Machine) observe(b register.Ballot) {
	if b.IsZero() {
		return
	}
	if err := m.env.Observe(b); err != nil {
		if m.g.a != nil {
			// Not contention: the attempts would fail the same way again.
			m.g.a.contended = false
		}
		m.g.lastErr = fmt.Errorf("key %q holds a ballot this client will not follow (check the clocks of the acceptors and proposers): %w", m.key, err)
	}
}

func (m *Machine) roundEnded(now time.Duration, o round.Outcome, changes int) {
	a := m.g.a
	m.out.Rounds = append(m.out.Rounds, Round{
		Ballot: a.w.Ballot(), Fast: a.fast, Changes: changes, Outcome: o, Settle: a.settle, Duration: now - a.start,
	})
}

// liveOps drops the ops that are answered or whose callers left, in place.
func liveOps(ops []*Op) []*Op {
	out := ops[:0]
	for _, o := range ops {
		if o.live() {
			out = append(out, o)
		}
	}
	return out
}
