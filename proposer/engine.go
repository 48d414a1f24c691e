package proposer

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// The engine. Every key with work has a queue and one driver goroutine that
// runs its rounds one after another. Changes that arrive while a round is in
// flight wait in the queue and go into the next round together (same-key
// combining, DESIGN §2.6). A group of changes stays together until each of
// them has an answer: success, a definite failure after retries, or an
// unknown outcome.

// op states, guarded by the key queue's mu.
const (
	opQueued    = iota // not yet part of any proposed value
	opProposed         // part of a proposed value that may land
	opDone             // answered
	opAbandoned        // the caller left
)

// op is one caller's change of one key.
type op struct {
	q      *keyQueue
	change round.Change
	// identity: the change never alters the value (Get's fallback, Touch),
	// so leaving early never leaves an unknown outcome behind.
	identity bool
	// fresh: run a prepare with a fresh ballot even if a 1RTT promise is
	// cached (Touch, the operator's rescan).
	fresh bool
	// above: the round must not propose below a ballot its prepare replies
	// showed (Touch, the operator's rescan: round.Write.Outranked). An
	// outranked attempt is given up before its accept and retried above.
	above bool
	// resolve: settle the proposals of an unknown outcome (Client.Resolve).
	resolve *UnknownOutcomeError

	res      chan opResult // capacity 1
	state    int           // guarded by q.mu
	failures int           // driver only
}

type opResult struct {
	value      register.Value
	err        error
	resolution Resolution
}

// keyQueue is the work of one key.
type keyQueue struct {
	key []byte
	ops []*op // guarded by Client.keys

	// mu guards op states and the proposals of the group being run, so a
	// caller that leaves sees a consistent picture of what may have landed.
	mu       sync.Mutex
	pending  []proposal // ended Unknown; written under mu by the driver
	inflight *proposal  // accept being sent; written under mu by the driver
}

// submit queues o and starts the key's driver if it is not running. The
// caller must hold a reference (c.enter).
func (c *Client) submit(key []byte, o *op) {
	c.keys.Lock()
	defer c.keys.Unlock()
	q := c.keys.m[string(key)]
	if q == nil {
		q = &keyQueue{key: key}
		c.keys.m[string(key)] = q
		c.wg.Add(1)
		go c.drive(q)
	}
	o.q = q
	q.ops = append(q.ops, o)
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
	switch o.state {
	case opDone:
		q.mu.Unlock()
		return <-o.res
	case opQueued:
		o.state = opAbandoned
		q.mu.Unlock()
		return opResult{err: ctx.Err()}
	}
	o.state = opAbandoned
	err := ctx.Err()
	if !o.identity && o.resolve == nil {
		if u := q.unknownLocked(o, ctx.Err()); u != nil {
			err = u
		}
	}
	q.mu.Unlock()
	return opResult{err: err}
}

// unknownLocked builds o's unknown-outcome error from the proposals that may
// have landed, or returns nil when there are none. q.mu is held.
func (q *keyQueue) unknownLocked(o *op, cause error) *UnknownOutcomeError {
	ps := q.pending
	if q.inflight != nil {
		ps = append(ps[:len(ps):len(ps)], *q.inflight)
	}
	var mine []proposal
	u := &UnknownOutcomeError{Key: q.key, Cause: cause}
	for _, p := range ps {
		for i, po := range p.ops {
			if po != o {
				continue
			}
			mine = append(mine, p)
			if p.applied[i].err == nil {
				u.Intended = userValue(p.applied[i].value)
			}
		}
	}
	if len(mine) == 0 {
		return nil
	}
	u.pending = stripOps(ps)
	return u
}

// stripOps copies proposals without their ops (which an error must not keep
// alive).
func stripOps(ps []proposal) []proposal {
	out := make([]proposal, len(ps))
	for i, p := range ps {
		out[i] = proposal{ballot: p.ballot, value: p.value}
	}
	return out
}

// answer delivers r to o unless the caller has left. q.mu is held.
func answerLocked(o *op, r opResult) {
	if o.state == opDone || o.state == opAbandoned {
		return
	}
	o.state = opDone
	o.res <- r
}

func (c *Client) drive(q *keyQueue) {
	defer c.wg.Done()
	for {
		c.keys.Lock()
		if len(q.ops) == 0 {
			delete(c.keys.m, string(q.key))
			c.keys.Unlock()
			return
		}
		g := takeGroup(&q.ops)
		c.keys.Unlock()
		c.runGroup(q, g)
		q.mu.Lock()
		q.pending, q.inflight = nil, nil
		q.mu.Unlock()
	}
}

// takeGroup takes the next group from a queue: a Resolve alone, or every
// change up to the next Resolve.
func takeGroup(ops *[]*op) []*op {
	all := *ops
	n := 1
	if all[0].resolve == nil {
		for n < len(all) && all[n].resolve == nil {
			n++
		}
	}
	g := all[:n:n]
	*ops = all[n:]
	return g
}

// more takes the changes queued behind a running group, to combine them
// into its next attempt.
func (c *Client) more(q *keyQueue) []*op {
	c.keys.Lock()
	defer c.keys.Unlock()
	n := 0
	for n < len(q.ops) && q.ops[n].resolve == nil {
		n++
	}
	g := q.ops[:n:n]
	q.ops = q.ops[n:]
	return g
}

// group is the driver's state for one group of changes of one key.
type group struct {
	q       *keyQueue
	ops     []*op
	resolve *UnknownOutcomeError
	// failures of a Resolve; changes count their own.
	failures int
	lastErr  error
}

func (c *Client) runGroup(q *keyQueue, ops []*op) {
	g := &group{q: q, ops: ops}
	if ops[0].resolve != nil {
		g.resolve = ops[0].resolve
		q.mu.Lock()
		q.pending = ops[0].resolve.pending
		q.mu.Unlock()
	}
	for {
		if err := c.ctx.Err(); err != nil {
			c.endGroup(g, ErrClosed)
			return
		}
		g.ops = c.live(g)
		if len(g.ops) == 0 {
			return
		}
		if len(q.pending) == 0 && g.resolve == nil {
			g.ops = append(g.ops, c.more(q)...)
		}
		epoch := c.config().Epoch
		if c.attempt(g) {
			return
		}
		if c.exhausted(g) {
			return
		}
		if c.config().Epoch != epoch {
			continue // refreshed: retry under the new configuration at once
		}
		if c.maxFailures(g) >= rediscoverAfter {
			c.rediscover()
		}
		base := max(backoffBase, time.Duration(c.roundTime.Load()))
		if !c.sleep(backoff(c.maxFailures(g), base, backoffMax, rand.Float64())) {
			c.endGroup(g, ErrClosed)
			return
		}
	}
}

// above reports whether an op of g needs its round above every ballot the
// prepare shows (op.above). A group that combines such an op with other
// changes is held to the same rule; retrying before the accept is safe.
func (g *group) above() bool {
	for _, o := range g.ops {
		if o.above {
			return true
		}
	}
	return false
}

// live drops the ops whose callers have left.
func (c *Client) live(g *group) []*op {
	g.q.mu.Lock()
	defer g.q.mu.Unlock()
	out := g.ops[:0]
	for _, o := range g.ops {
		if o.state != opAbandoned && o.state != opDone {
			out = append(out, o)
		}
	}
	return out
}

func (c *Client) maxFailures(g *group) int {
	n := g.failures
	for _, o := range g.ops {
		n = max(n, o.failures)
	}
	return n
}

// exhausted counts a failed attempt against every op of g and answers those
// that have no retries left. It reports whether the group is finished.
func (c *Client) exhausted(g *group) bool {
	q := g.q
	q.mu.Lock()
	defer q.mu.Unlock()
	if g.resolve != nil {
		g.failures++
		if g.failures > c.cfg.MaxRetries {
			answerLocked(g.ops[0], opResult{err: c.noQuorum(g.failures, g.lastErr)})
			return true
		}
		return false
	}
	out := g.ops[:0]
	for _, o := range g.ops {
		o.failures++
		if o.failures <= c.cfg.MaxRetries {
			out = append(out, o)
			continue
		}
		failLocked(o, q.unknownLocked(o, g.lastErr), c.noQuorum(o.failures, g.lastErr))
	}
	g.ops = out
	return len(out) == 0
}

func (c *Client) noQuorum(attempts int, cause error) error {
	if cause == nil {
		return fmt.Errorf("%w: %d attempts failed", ErrNoQuorum, attempts)
	}
	return fmt.Errorf("%w: %d attempts failed, the last with: %w", ErrNoQuorum, attempts, cause)
}

// endGroup answers every op of g when the client closes.
func (c *Client) endGroup(g *group, cause error) {
	q := g.q
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, o := range g.ops {
		failLocked(o, q.unknownLocked(o, cause), cause)
	}
}

// failLocked answers o with u when its change may have landed, else with the
// definite error. Identity changes (Get, Touch) have nothing unknown about
// them. q.mu is held.
func failLocked(o *op, u *UnknownOutcomeError, definite error) {
	if u != nil && !o.identity {
		answerLocked(o, opResult{err: u})
		return
	}
	answerLocked(o, opResult{err: definite})
}

func (c *Client) sleep(d time.Duration) bool {
	if d <= 0 {
		return c.ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// attempt runs one round for g under the current configuration. It reports
// whether the group is finished (every op answered); otherwise the attempt
// failed and g.lastErr says why.
func (c *Client) attempt(g *group) bool {
	cfg := c.config()
	q := g.q
	start := time.Now()
	g.lastErr = nil
	w, fast, m := c.prepare(&cfg, g)
	done := func(outcome string, changes int) {
		if f := c.cfg.Events.RoundDone; f != nil {
			f(RoundInfo{Key: q.key, FastPath: fast, Changes: changes, Outcome: outcome, Duration: time.Since(start)})
		}
	}
	if w == nil { // no ballot left: nothing was sent
		done("failed", len(g.ops))
		c.endGroup(g, g.lastErr)
		return true
	}
	if w.Outcome() == round.Failed {
		c.observe(g, w.Conflict())
		done("failed", len(g.ops))
		return false
	}
	if g.above() && w.Outranked() {
		// Nothing was sent for this ballot yet: a definite failure, and
		// the next attempt's ballot is above the one shown.
		w.Expire()
		c.observe(g, w.Conflict())
		g.lastErr = fmt.Errorf("an acceptor holds ballot %v, above the touch's %v", w.Conflict(), w.Ballot())
		done("failed", len(g.ops))
		return false
	}

	// Decide what to propose.
	cur := w.Current()
	own, ambiguous := -1, false
	if len(q.pending) > 0 {
		own, ambiguous = settle(q.pending, m, cur)
	}
	var p proposal
	switch {
	case g.resolve != nil:
		p = proposal{ballot: w.Ballot(), value: cur}
	case ambiguous:
		w.Expire()
		done("failed", len(g.ops))
		c.giveUp(g, errors.New("other writers changed the key before the outcome could be settled"))
		return true
	case own >= 0:
		// The newest value is one of our proposals: accept it again.
		p = q.pending[own]
		p.ballot, p.value = w.Ballot(), cur
		q.mu.Lock()
		q.inflight = &p
		q.mu.Unlock()
	default:
		p = c.apply(g, w.Ballot(), cur)
		if len(p.ops) == 0 {
			w.Expire()
			return true
		}
	}
	var next register.Ballot
	if c.cfg.CacheSize > 0 {
		// None left: no one-round-trip promise; the next prepare says why.
		next, _ = c.nextBallot()
	}
	w.Propose(p.value, next)

	c.accept(&cfg, g, w)
	c.observe(g, w.Conflict())
	outcome := w.Outcome()
	switch outcome {
	case round.Success:
		done("success", len(p.ops))
		c.noteRoundTime(time.Since(start))
	case round.Unknown:
		done("unknown", len(p.ops))
	default:
		done("failed", len(p.ops))
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.inflight = nil
	switch outcome {
	case round.Success:
		if w.Cacheable() {
			c.cachePut(q.key, round.CacheEntry{Epoch: cfg.Epoch, Ballot: w.Next(), Value: p.value})
		}
		c.succeed(g, p, own, ambiguous)
		return true
	case round.Unknown:
		// Only proposals that change something need settling; an identity
		// proposal that lands changes nothing.
		if own >= 0 || p.value.Version != cur.Version {
			q.pending = append(q.pending, p)
		}
		g.lastErr = fmt.Errorf("no accept quorum confirmed ballot %v (last error: %v)", p.ballot, g.lastErr)
	default:
		if g.lastErr == nil {
			g.lastErr = errors.New("accept refused by every acceptor")
		}
	}
	return false
}

// prepare starts a round: a 1RTT attempt with a cached promise when one is
// valid, else a prepare with a fresh ballot. It returns the round, whether
// it is a fast one, and the accepted ballot of w.Current() (prepare only);
// no round, with g.lastErr set, when the clock has no ballot left.
func (c *Client) prepare(cfg *membership.Config, g *group) (w *round.Write, fast bool, m register.Ballot) {
	q := g.q
	e, ok := c.cacheTake(q.key)
	fresh := g.resolve != nil || len(q.pending) > 0
	for _, o := range g.ops {
		fresh = fresh || o.fresh
	}
	if ok && !fresh && e.Epoch == cfg.Epoch {
		return round.NewFastWrite(cfg, e.Ballot, e.Value), true, register.Ballot{}
	}
	b, err := c.nextBallot()
	if err != nil {
		g.lastErr = err
		return nil, false, register.Ballot{}
	}
	w = round.NewWrite(cfg, b)
	targets := w.PrepareTargets()
	ph := newPhase(len(targets))
	for _, t := range targets {
		c.batcher(t.Addr, methodPrepare).add(&item{epoch: cfg.Epoch, key: q.key, ballot: w.Ballot(), inc: t.Incarnation, ph: ph})
	}
	c.await(context.Background(), ph, len(targets), func(r memberReply) bool {
		g.noteErr(r)
		w.OnPrepare(r.inc, r.reply, r.accepted, r.value, r.conflict)
		return w.Phase() != round.Preparing
	}, w.Expire)
	return w, false, w.CurrentBallot()
}

func (c *Client) accept(cfg *membership.Config, g *group, w *round.Write) {
	targets := w.AcceptTargets()
	ph := newPhase(len(targets))
	ph.keep = true // a late accept still brings a slow acceptor up to date
	for _, t := range targets {
		c.batcher(t.Addr, methodAccept).add(&item{
			epoch: cfg.Epoch, key: g.q.key, ballot: w.Ballot(), next: w.Next(), value: w.Proposed(),
			inc: t.Incarnation, ph: ph,
		})
	}
	c.await(context.Background(), ph, len(targets), func(r memberReply) bool {
		g.noteErr(r)
		w.OnAccept(r.inc, r.reply, r.conflict)
		return w.Phase() == round.Done
	}, w.Expire)
}

func (g *group) noteErr(r memberReply) {
	switch {
	case r.err != nil:
		g.lastErr = r.err
	case r.reply == round.Nack:
		g.lastErr = fmt.Errorf("ballot conflict (acceptor has seen %v)", r.conflict)
	}
}

// await feeds a phase's replies to feed until it reports the phase over, and
// calls expire when the replies do not all come within RequestTimeout, when
// ctx ends or when the client closes. Then the phase is dead:
// its items not yet sent are dropped.
func (c *Client) await(ctx context.Context, ph *phase, n int, feed func(memberReply) bool, expire func()) {
	defer ph.dead.Store(true)
	t := time.NewTimer(c.cfg.RequestTimeout)
	defer t.Stop()
	ctxDone := ctx.Done()
	for range n {
		select {
		case r := <-ph.ch:
			if feed(r) {
				return
			}
		case <-t.C:
			expire()
			return
		case <-ctxDone:
			expire()
			return
		case <-c.ctx.Done():
			expire()
			return
		}
	}
	expire() // every reply is in; the round has decided already
}

// apply computes a new proposal at ballot b: every live change of g applied
// in order to cur. The change functions are the caller's code and may be
// slow, so they run without q.mu: a caller that leaves meanwhile must not
// wait for them. Its op is still queued then, so it leaves with a definite
// error, and apply computes the proposal again without it. Once every op
// it used is still live, apply marks them proposed and records the
// proposal as in flight in one critical section, so a caller that leaves
// either was not included or sees the proposal. The caller must send it.
func (c *Client) apply(g *group, b register.Ballot, cur register.Value) proposal {
	q := g.q
	for {
		g.ops = c.live(g)
		ops := slices.Clone(g.ops) // p.ops must not share g.ops' array
		p := proposal{ballot: b}
		if len(ops) == 0 {
			return p
		}
		changes := make([]round.Change, len(ops))
		for i, o := range ops {
			changes[i] = o.change
		}
		v, applied := round.ApplyAll(cur, changes)

		q.mu.Lock()
		if slices.ContainsFunc(ops, func(o *op) bool { return o.state == opAbandoned || o.state == opDone }) {
			q.mu.Unlock()
			continue // someone left while the changes ran: leave them out
		}
		p.ops, p.value = ops, v
		p.applied = make([]changeResult, len(applied))
		for i, a := range applied {
			ops[i].state = opProposed
			p.applied[i] = changeResult{value: a.Value, err: a.Err}
		}
		q.inflight = &p
		q.mu.Unlock()
		return p
	}
}

// succeed answers the ops of a successful round. q.mu is held.
func (c *Client) succeed(g *group, p proposal, own int, ambiguous bool) {
	if g.resolve != nil {
		r := NotApplied
		switch {
		case own >= 0:
			r = Applied
		case ambiguous:
			r = Undecided
		}
		answerLocked(g.ops[0], opResult{value: p.value, resolution: r})
		return
	}
	for i, o := range p.ops {
		answerLocked(o, opResult{value: p.applied[i].value, err: p.applied[i].err})
	}
	for _, o := range g.ops { // not in the proposal: left before it was made
		answerLocked(o, opResult{err: context.Canceled})
	}
}

// giveUp answers every op of g with an unknown outcome.
func (c *Client) giveUp(g *group, cause error) {
	q := g.q
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, o := range g.ops {
		failLocked(o, q.unknownLocked(o, cause), fmt.Errorf("%w: %w", ErrNoQuorum, cause))
	}
}

// noteRoundTime folds a successful round's duration into a moving average.
// Retries back off in multiples of it: competing proposers of one key only
// stop colliding when their retries are spread over more than a round.
func (c *Client) noteRoundTime(d time.Duration) {
	for {
		old := c.roundTime.Load()
		nw := int64(d)
		if old != 0 {
			nw = old - old/8 + int64(d)/8
		}
		if c.roundTime.CompareAndSwap(old, nw) {
			return
		}
	}
}

// nextBallot returns a new ballot, or an error once the clock has none left
// (it never wraps; a new client starts again at the wall clock).
func (c *Client) nextBallot() (register.Ballot, error) {
	c.clock.Lock()
	defer c.clock.Unlock()
	b, err := c.clock.c.Next()
	if err != nil {
		return b, fmt.Errorf("kshaka: no ballot left, create a new client: %w", err)
	}
	return b, nil
}

// observe fast-forwards the clock past the conflict b of g's round. When b
// is too far ahead of the wall clock to follow, g's attempt failed because
// of it, which g.lastErr then says.
func (c *Client) observe(g *group, b register.Ballot) {
	if b.IsZero() {
		return
	}
	c.clock.Lock()
	defer c.clock.Unlock()
	if err := c.clock.c.Observe(b); err != nil {
		g.lastErr = fmt.Errorf("key %q holds a ballot this client will not follow (check the clocks of the acceptors and proposers): %w", g.q.key, err)
	}
}

func (c *Client) cacheTake(key []byte) (round.CacheEntry, bool) {
	c.cache.Lock()
	defer c.cache.Unlock()
	return c.cache.c.Take(string(key))
}

func (c *Client) cachePut(key []byte, e round.CacheEntry) {
	c.cache.Lock()
	defer c.cache.Unlock()
	c.cache.c.Put(string(key), e)
}
