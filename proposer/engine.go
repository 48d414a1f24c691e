package proposer

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/register"
)

// The engine. Every key with work has a keyQueue: the key's
// keyproc.Machine, which holds the policy (groups, same-key combining, the
// 1RTT cache, settling, retries and backoff; the simulation drives the same
// machine), and one driver goroutine that does its I/O: it sends the
// machine's messages through the batchers, feeds it the replies and its
// timer, runs the change functions it asks for and hands the answers to the
// callers. The driver exits when the machine is idle.
//
// Every input to the machine is made under the key's mu, including a
// leaving caller's Abandon, and answers are delivered in the same critical
// section that produced them. Change functions run without mu.

// op is one caller's change of one key.
type op struct {
	keyproc.Op // guarded by q.mu
	q          *keyQueue
	res        chan opResult // capacity 1
}

type opResult struct {
	value      register.Value
	ballot     register.Ballot // of the successful proposal
	err        error
	resolution Resolution
}

// keyQueue is the work of one key.
type keyQueue struct {
	key []byte
	mu  sync.Mutex
	m   *keyproc.Machine // guarded by mu
	// gone: the driver has exited and q left Client.keys. Guarded by mu.
	gone bool
}

// submit hands o to its key's machine and starts the key's driver if it is
// not running. The caller must hold a reference (c.enter).
func (c *Client) submit(key []byte, o *op) {
	o.Ref = o
	for {
		q := c.keyQueue(key)
		q.mu.Lock()
		if q.gone { // its driver exited in between: use the next one
			q.mu.Unlock()
			continue
		}
		o.q = q
		q.m.Submit(c.now(), &o.Op)
		c.deliverLocked(q, q.m.TakeAnswers())
		q.mu.Unlock()
		return
	}
}

// keyQueue returns key's queue, and starts its driver if it has none.
func (c *Client) keyQueue(key []byte) *keyQueue {
	c.keys.Lock()
	defer c.keys.Unlock()
	q := c.keys.m[string(key)]
	if q == nil {
		k := string(key)
		q = &keyQueue{key: key, m: keyproc.New(k, c.kcfg, c.env, c.config())}
		c.keys.m[k] = q
		c.wg.Add(1)
		go c.drive(q)
	}
	return q
}

// wait returns o's result, or leaves when ctx ends: with ctx's error when o
// certainly had no effect, else with an *UnknownOutcomeError.
func (c *Client) wait(ctx context.Context, o *op) opResult {
	select {
	case r := <-o.res:
		return r
	case <-ctx.Done():
	}
	q := o.q
	q.mu.Lock()
	a, left := q.m.Abandon(&o.Op, ctx.Err())
	q.mu.Unlock()
	if !left {
		return <-o.res // answered under mu, so it is there
	}
	return c.result(q, a)
}

// deliverLocked hands answers to their callers. q.mu is held.
func (c *Client) deliverLocked(q *keyQueue, as []keyproc.Answer) {
	for _, a := range as {
		a.Op.Ref.(*op).res <- c.result(q, a)
	}
}

// result is what a caller gets for a machine's answer.
func (c *Client) result(q *keyQueue, a keyproc.Answer) opResult {
	switch a.Outcome {
	case round.Success:
		return opResult{value: a.Value, ballot: a.Ballot, err: a.Err, resolution: resolution(a.Resolution)}
	case round.Unknown:
		u := &UnknownOutcomeError{Key: q.key, Cause: a.Err, Sealed: a.Sealed, pending: a.Pending}
		if a.HasIntended {
			u.Intended = userValue(a.Intended)
		}
		return opResult{err: u}
	}
	if a.NoQuorum {
		return opResult{err: c.noQuorum(a.Attempts, a.Err)}
	}
	if a.Contention {
		return opResult{err: fmt.Errorf("%w: %d attempts lost to other proposers: %w", ErrContention, a.Attempts, a.Err)}
	}
	return opResult{err: a.Err}
}

func resolution(r keyproc.Resolution) Resolution {
	switch r {
	case keyproc.Applied:
		return Applied
	case keyproc.NotApplied:
		return NotApplied
	}
	return Undecided
}

// noQuorum is the definite failure after attempts failed attempts (0: the
// client gave up settling an unknown outcome).
func (c *Client) noQuorum(attempts int, cause error) error {
	switch {
	case attempts == 0:
		return fmt.Errorf("%w: %w", ErrNoQuorum, cause)
	case cause == nil:
		return fmt.Errorf("%w: %d attempts failed", ErrNoQuorum, attempts)
	}
	return fmt.Errorf("%w: %d attempts failed, the last with: %w", ErrNoQuorum, attempts, cause)
}

// driver is the state of one key's driver goroutine.
type driver struct {
	c *Client
	q *keyQueue
	// ph collects the replies of the phase the machine waits for: attempt
	// and kind name it.
	ph      *phase
	attempt uint64
	kind    keyproc.Kind
	timer   *time.Timer
	armed   bool          // the timer runs, set for at
	at      time.Duration // on the client's clock (Client.now)
}

// input is one input for the machine: a reply of the driver's phase, the
// results of change functions, the timer, the client's Close, or none.
type input struct {
	kind    inputKind
	reply   memberReply
	applied keyproc.ApplyResult
}

type inputKind uint8

const (
	inNone inputKind = iota
	inReply
	inApplied
	inTimer
	inClose
)

// state is what the driver needs to know of the machine after a step.
type state struct {
	idle     bool
	awaiting bool
	attempt  uint64
	kind     keyproc.Kind
	wake     time.Duration
	hasWake  bool
}

func (c *Client) drive(q *keyQueue) {
	defer c.wg.Done()
	d := &driver{c: c, q: q, timer: time.NewTimer(time.Hour)}
	d.timer.Stop()
	defer d.timer.Stop()
	in := input{}
	for {
		st := d.step(in)
		if st.idle {
			if c.exitIfIdle(q) {
				return
			}
			in = input{} // ops came in meanwhile
			continue
		}
		in = d.next(st)
	}
}

// step feeds in to the machine (after a newer configuration, if there is
// one), delivers the answers, and does what the machine asked: events,
// rediscovery, messages, and change functions, whose results it feeds back.
func (d *driver) step(in input) state {
	c, q := d.c, d.q
	for {
		q.mu.Lock()
		now := c.now()
		if c.epoch.Load() > q.m.Epoch() {
			q.m.SetConfig(now, c.config())
		}
		d.feed(now, in)
		rd := q.m.Ready()
		c.deliverLocked(q, rd.Answers)
		var st state
		st.attempt, st.kind, st.awaiting = q.m.Awaiting()
		st.wake, st.hasWake = q.m.Wake()
		st.idle = q.m.Idle()
		q.mu.Unlock()

		d.events(rd)
		if d.ph != nil && (!st.awaiting || st.attempt != d.attempt || st.kind != d.kind) {
			d.ph.dead.Store(true) // its items not yet sent are dropped
			d.ph = nil
		}
		if len(rd.Send.To) > 0 {
			d.send(rd.Send)
		}
		if rd.Apply == nil {
			return st
		}
		// The callers' change functions, without q.mu.
		in = input{kind: inApplied, applied: rd.Apply.Run()}
	}
}

func (d *driver) feed(now time.Duration, in input) {
	m := d.q.m
	switch in.kind {
	case inReply:
		r := in.reply
		if d.kind == keyproc.Prepare {
			m.OnPrepare(now, keyproc.PrepareReply{
				Attempt: d.attempt, Incarnation: r.inc, Reply: r.reply, Accepted: r.accepted, Value: r.value, Conflict: r.conflict, Err: r.err,
			})
		} else {
			m.OnAccept(now, keyproc.AcceptReply{
				Attempt: d.attempt, Incarnation: r.inc, Answer: r.answer, Refused: r.refused, Conflict: r.conflict, Err: r.err,
			})
		}
	case inApplied:
		m.OnApplied(now, in.applied)
	case inTimer:
		m.Tick(now)
	case inClose:
		m.Close(now, ErrClosed)
	}
}

// events reports the machine's ended attempts and asks for rediscovery.
func (d *driver) events(rd keyproc.Ready) {
	if f := d.c.cfg.Events.RoundDone; f != nil {
		for _, r := range rd.Rounds {
			f(RoundInfo{Key: d.q.key, FastPath: r.Fast, Changes: r.Changes, Outcome: r.Outcome.String(), Duration: r.Duration})
		}
	}
	if rd.Rediscover {
		d.c.rediscover()
	}
}

// send hands the request of one phase to the batchers, one item per member.
func (d *driver) send(s keyproc.Send) {
	ph := newPhase(len(s.To))
	if s.Kind == keyproc.Accept {
		ph.keep = true // a late accept still brings a slow acceptor up to date
	}
	for _, t := range s.To {
		d.c.batcher(t.Addr, s.Kind).add(&item{
			epoch: s.Epoch, key: d.q.key, ballot: s.Ballot, next: s.Next, value: s.Value, inc: t.Incarnation, ph: ph,
		})
	}
	d.ph, d.attempt, d.kind = ph, s.Attempt, s.Kind
}

// next waits for the machine's next input: a reply of its phase, its
// timer, or the client's Close.
func (d *driver) next(st state) input {
	var timeout <-chan time.Time
	switch {
	case st.hasWake:
		if !d.armed || d.at != st.wake {
			d.timer.Reset(max(0, st.wake-d.c.now()))
			d.armed, d.at = true, st.wake
		}
		timeout = d.timer.C
	case d.armed:
		d.timer.Stop()
		d.armed = false
	}
	var replies chan memberReply
	if d.ph != nil {
		replies = d.ph.ch
	}
	select {
	case r := <-replies:
		return input{kind: inReply, reply: r}
	case <-timeout:
		d.armed = false
		return input{kind: inTimer}
	case <-d.c.ctx.Done():
		return input{kind: inClose}
	}
}

// await feeds a phase's replies to feed until it reports the phase over, and
// calls expire when the replies do not all come within RequestTimeout, when
// ctx ends or when the client closes. Then the phase is dead: its items not
// yet sent are dropped. Quorum reads use it; changes go through the key's
// driver.
func (c *Client) await(ctx context.Context, ph *phase, n int, feed func(memberReply) bool, expire func()) {
	defer ph.dead.Store(true)
	t := time.NewTimer(c.cfg.RequestTimeout)
	defer t.Stop()
	for range n {
		select {
		case r := <-ph.ch:
			if feed(r) {
				return
			}
		case <-t.C:
			expire()
			return
		case <-ctx.Done():
			expire()
			return
		case <-c.ctx.Done():
			expire()
			return
		}
	}
	expire() // every reply is in; the read has decided already
}

// exitIfIdle drops q when its machine has nothing left to do, and reports
// whether it did.
func (c *Client) exitIfIdle(q *keyQueue) bool {
	c.keys.Lock()
	defer c.keys.Unlock()
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.m.Idle() {
		return false
	}
	q.gone = true
	delete(c.keys.m, string(q.key))
	return true
}

// now is the client's clock for the machines: the time since New.
func (c *Client) now() time.Duration { return time.Since(c.start) }

// env is the keyproc.Env the client's machines share.
type env struct{ c *Client }

// NextBallot returns a new ballot, or an error once the clock has none left
// (it never wraps; a new client starts again at the wall clock).
func (e env) NextBallot() (register.Ballot, error) {
	e.c.clock.Lock()
	defer e.c.clock.Unlock()
	b, err := e.c.clock.c.Next()
	if err != nil {
		return b, fmt.Errorf("kshaka: no ballot left, create a new client: %w", err)
	}
	return b, nil
}

// Observe fast-forwards the clock, unless the ballot is too far ahead of
// the wall clock (Config.MaxBallotLead).
func (e env) Observe(b register.Ballot) error {
	e.c.clock.Lock()
	defer e.c.clock.Unlock()
	return e.c.clock.c.Observe(b)
}

func (e env) CacheTake(key string) (round.CacheEntry, bool) {
	e.c.cache.Lock()
	defer e.c.cache.Unlock()
	return e.c.cache.c.Take(key)
}

func (e env) CachePut(key string, ce round.CacheEntry) {
	e.c.cache.Lock()
	defer e.c.cache.Unlock()
	e.c.cache.c.Put(key, ce)
}

func (e env) RoundTime() time.Duration { return time.Duration(e.c.roundTime.Load()) }

func (e env) NoteRoundTime(d time.Duration) {
	for {
		old := e.c.roundTime.Load()
		if e.c.roundTime.CompareAndSwap(old, int64(keyproc.Average(time.Duration(old), d))) {
			return
		}
	}
}

func (e env) Jitter() float64 { return rand.Float64() }
