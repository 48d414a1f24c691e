package round

import (
	"fmt"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/register"
)

// Outcome is where a round stands.
type Outcome int

const (
	// Pending: the round needs more replies.
	Pending Outcome = iota
	// Success: a quorum confirmed.
	Success
	// Failed: definite failure; nothing of this attempt was accepted.
	Failed
	// Unknown: an accept was sent and no quorum confirmed it.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case Pending:
		return "pending"
	case Success:
		return "success"
	case Failed:
		return "failed"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Reply classifies one acceptor's answer to a request.
type Reply int

const (
	// Ack: the acceptor promised (prepare) or accepted (accept).
	Ack Reply = iota + 1
	// Nack: the acceptor definitely did not promise or accept. For a
	// prepare: a ballot conflict, a stale epoch or not admitted; for an
	// accept, only what ClassifyAccept says proves it.
	Nack
	// Lost: no answer (timeout, transport error, unavailable). For an accept
	// the acceptor may have accepted.
	Lost
)

// AcceptAnswer is what one acceptor's answer to an accept of one key says,
// as far as the wire carries it. The zero AcceptAnswer is an answer that
// says nothing about the key: no answer at all, a transport error, a stale
// epoch, not admitted (another incarnation), or a refused caller.
type AcceptAnswer struct {
	// OK: the acceptor accepted.
	OK bool
	// Conflict: the register rule refused the ballot, and Accepted is the
	// ballot the acceptor had accepted for the key when it refused.
	Conflict bool
	Accepted register.Ballot
	// Invalid: the acceptor refused the request as malformed before it
	// looked at any key; every delivery of the request gets this answer.
	Invalid bool
}

// ClassifyAccept is the one rule that turns an acceptor's answer to an
// accept at ballot into a Reply; the proposer and the simulation both use
// it. A refusal is definite (Nack) only when it proves that no delivery of
// the accept ever landed: the request was invalid, or the acceptor's
// accepted ballot is below ballot (accepted ballots only grow). Everything
// else counts as Lost: a stale-epoch or not-admitted refusal, or a
// conflict at or above ballot, may answer a duplicate whose first delivery
// was accepted before the acceptor moved on. Counting those as Nack
// reported a value chosen by a quorum as a definite failure, and the retry
// applied the change twice (docs/design.md, "An accept refusal
// proves nothing landed only below the accepted ballot").
func ClassifyAccept(ballot register.Ballot, a AcceptAnswer) Reply {
	switch {
	case a.OK:
		return Ack
	case a.Invalid:
		return Nack
	case a.Conflict && a.Accepted.Less(ballot):
		return Nack
	}
	return Lost
}

// Phase is the step a Write is in.
type Phase int

const (
	// Preparing: waiting for a prepare quorum.
	Preparing Phase = iota + 1
	// Proposing: the prepare quorum is in; the caller computes the new value
	// from Current and calls Propose.
	Proposing
	// Accepting: waiting for an accept quorum.
	Accepting
	// Done: the outcome is final.
	Done
)

// Write is one attempt of a change of one key under one configuration: a
// prepare to P (skipped with a 1RTT promise), then an accept to S.
type Write struct {
	cfg    *membership.Config
	ballot register.Ballot
	phase  Phase

	outcome  Outcome
	conflict register.Ballot // highest ballot shown by a conflict

	replied  map[uint64]Reply // by incarnation, for the current phase
	best     register.Ballot  // highest accepted ballot among promises
	current  register.Value
	proposed register.Value
	next     register.Ballot
	ackedInP int
	acks     int
	nacks    int
	lost     int
	promises int
	refusedP int
	setSize  int
	quorum   int
	all      bool
	fast     bool
}

// NewWrite starts an attempt with a fresh ballot; the first phase is the
// prepare, sent to PrepareTargets.
func NewWrite(cfg *membership.Config, ballot register.Ballot) *Write {
	w := &Write{cfg: cfg, ballot: ballot, phase: Preparing, replied: map[uint64]Reply{}}
	w.setSize = len(cfg.PrepareSet())
	w.quorum = cfg.PrepareQuorum
	return w
}

// NewFastWrite starts a one-round-trip attempt (docs/design.md §2.4): ballot is a
// cached promise taken from the Cache (used exactly once) and cur the value
// cached with it. The round starts in Proposing.
func NewFastWrite(cfg *membership.Config, ballot register.Ballot, cur register.Value) *Write {
	return &Write{cfg: cfg, ballot: ballot, phase: Proposing, current: cur, replied: map[uint64]Reply{}, fast: true}
}

// Ballot is the attempt's ballot.
func (w *Write) Ballot() register.Ballot { return w.ballot }

// Phase is the round's current phase.
func (w *Write) Phase() Phase { return w.phase }

// Outcome is the round's outcome; Pending until Phase is Done.
func (w *Write) Outcome() Outcome { return w.outcome }

// Conflict is the highest ballot any conflict reply showed (zero if none).
// The caller fast-forwards its clock past it.
func (w *Write) Conflict() register.Ballot { return w.conflict }

// Outranked reports whether a reply so far showed a ballot above the
// attempt's: some acceptor promised or accepted a higher ballot. The rescan
// of a membership change needs its identity change to end above every
// ballot it sees (docs/design.md §5): a touch that is outranked once its
// prepare quorum is in does not propose, it goes again with a ballot above
// Conflict. Otherwise a proposal of the higher ballot with an unknown
// outcome, accepted on a member outside the touch's quorum, could later be
// found by a prepare and win over values acknowledged after the touch.
func (w *Write) Outranked() bool { return w.ballot.Less(w.conflict) }

// PrepareTargets are the members to send the prepare to.
func (w *Write) PrepareTargets() []membership.Member { return w.cfg.PrepareSet() }

// AcceptTargets are the members to send the accept to.
func (w *Write) AcceptTargets() []membership.Member { return w.cfg.AcceptSet() }

// Current is the value with the highest accepted ballot in the prepare
// quorum (or the cached value of a 1RTT attempt), under the configuration's
// version floor (Floored). Valid from Proposing on.
func (w *Write) Current() register.Value {
	_, cur := Floored(w.cfg, w.best, w.current)
	return cur
}

// CurrentBallot is the accepted ballot of Current as the prepare quorum
// reported it, under the configuration's GC floor (Floored); zero for a
// 1RTT attempt, which skipped the prepare.
func (w *Write) CurrentBallot() register.Ballot {
	if w.fast {
		return register.Ballot{}
	}
	best, _ := Floored(w.cfg, w.best, w.current)
	return best
}

// Reported is the highest accepted ballot and its value exactly as the
// prepare quorum reported them, without the GC floors. Only a negative
// control proposes from it (keyproc.Broken.IgnoreVersionFloor).
func (w *Write) Reported() (register.Ballot, register.Value) { return w.best, w.current }

// Floored is what a prepare quorum's highest accepted ballot best and value
// cur stand for under cfg's GC floors (docs/design.md §10):
//
//   - a value that is not live (never written, or a tombstone) with a
//     version below cfg.VersionFloor stands for the tombstone at
//     VersionFloor: the key may have been collected, and its versions must
//     continue above every version it had, so a recreated key's first
//     version is VersionFloor+1;
//   - no accepted ballot at all stands for cfg.RemovedBallot: a collected
//     record was the tombstone accepted at a ballot ≤ R on every member, so
//     a pending proposal below R may be what it derived from (round.Settle
//     then finds it ambiguous).
//
// With zero floors (no GC yet) it returns best and cur unchanged.
func Floored(cfg *membership.Config, best register.Ballot, cur register.Value) (register.Ballot, register.Value) {
	if best.IsZero() {
		best = cfg.RemovedBallot
	}
	if !cur.Exists() && cur.Version < cfg.VersionFloor {
		cur = register.Value{Version: cfg.VersionFloor, Tombstone: true}
	}
	return best, cur
}

// Proposed is the value passed to Propose.
func (w *Write) Proposed() register.Value { return w.proposed }

// Next is the 1RTT promise passed to Propose.
func (w *Write) Next() register.Ballot { return w.next }

func (w *Write) member(incarnation uint64, inPrepare bool) bool {
	m, ok := w.cfg.Member(incarnation)
	if !ok {
		return false
	}
	if inPrepare {
		return m.Prepare
	}
	return m.Accept
}

// OnPrepare feeds one acceptor's prepare reply. accepted and v are the
// acceptor's accepted ballot and value (meaningful for an Ack); conflict is
// the ballot a Nack showed. Replies from non-members, repeated replies and
// replies that arrive after the prepare phase are ignored.
func (w *Write) OnPrepare(incarnation uint64, r Reply, accepted register.Ballot, v register.Value, conflict register.Ballot) {
	w.conflict = w.conflict.Max(conflict)
	if w.phase != Preparing || !w.member(incarnation, true) {
		return
	}
	if _, dup := w.replied[incarnation]; dup {
		return
	}
	w.replied[incarnation] = r
	switch r {
	case Ack:
		w.promises++
		if w.promises == 1 || w.best.Less(accepted) {
			w.best, w.current = accepted, v
		}
		if w.promises >= w.quorum {
			w.phase = Proposing
		}
	default:
		w.refusedP++
		if w.setSize-w.refusedP < w.quorum {
			w.finish(Failed)
		}
	}
}

// Propose moves a Proposing round to Accepting with the new value and an
// optional 1RTT promise next (zero for none; when set it must be a ballot
// taken from the Clock for this purpose and never used otherwise).
func (w *Write) Propose(v register.Value, next register.Ballot) {
	if w.phase != Proposing {
		panic(fmt.Sprintf("round: Propose in phase %d", w.phase))
	}
	w.phase = Accepting
	w.proposed = v
	w.next = next
	w.replied = map[uint64]Reply{}
	w.setSize = len(w.cfg.AcceptSet())
	w.quorum = w.cfg.AcceptQuorum
	if w.all {
		w.quorum = w.setSize
	}
}

// RequireAll makes the accept phase succeed only when every member of S
// accepted (the tombstone GC's write, docs/design.md §10); a missing or
// refused member makes it fail or end unknown. Call it before Propose.
func (w *Write) RequireAll() { w.all = true }

// OnAccept feeds one acceptor's accept reply.
func (w *Write) OnAccept(incarnation uint64, r Reply, conflict register.Ballot) {
	w.conflict = w.conflict.Max(conflict)
	if w.phase != Accepting || !w.member(incarnation, false) {
		return
	}
	if _, dup := w.replied[incarnation]; dup {
		return
	}
	w.replied[incarnation] = r
	switch r {
	case Ack:
		w.acks++
		if w.member(incarnation, true) {
			w.ackedInP++
		}
	case Nack:
		w.nacks++
	default:
		w.lost++
	}
	w.decideAccept(false)
}

func (w *Write) decideAccept(expired bool) {
	pending := w.setSize - w.acks - w.nacks - w.lost
	switch {
	case w.acks >= w.quorum:
		w.finish(Success)
	case w.nacks == w.setSize:
		w.finish(Failed)
	case w.acks+pending < w.quorum && (w.acks > 0 || w.lost > 0):
		w.finish(Unknown)
	case expired:
		// Replies still missing may be accepts that landed.
		w.finish(Unknown)
	}
}

// Expire ends a round whose replies did not all come in time.
func (w *Write) Expire() {
	switch w.phase {
	case Preparing, Proposing:
		w.finish(Failed)
	case Accepting:
		w.decideAccept(true)
	}
}

func (w *Write) finish(o Outcome) {
	w.phase = Done
	w.outcome = o
}

// Cacheable reports whether the 1RTT promise of a successful accept may be
// used for the next change of the key: the accept succeeded and the
// acceptors that acknowledged it, and so now promise Next, include a prepare
// quorum of P (with P ≠ S an accept quorum alone is not enough).
func (w *Write) Cacheable() bool {
	return w.outcome == Success && !w.next.IsZero() && w.ackedInP >= w.cfg.PrepareQuorum
}
