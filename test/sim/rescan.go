package sim

import (
	"time"

	"github.com/kshaka-io/kshaka/internal/keyproc"
	"github.com/kshaka-io/kshaka/internal/round"
	"github.com/kshaka-io/kshaka/membership"
)

// The operator's rescan of one key (docs/design.md §5), driven the way the
// simulated proposers drive their keys: the touch is the proposer
// library's keyproc.Machine running the op proposer.Client.Touch submits
// (an identity change with a fresh ballot that goes again above any higher
// ballot its prepare shows), and this file is only its message pump. The
// one decision made here is the withdrawn skip rule's (skipRule), which
// only the negative controls RescanSkip and SkipBelowAcceptQuorum run.

// touch is the rescan of one key under the joint configuration: after the
// reads of the withdrawn skip rule (negative controls only), the key's
// machine with its one Touch op.
type touch struct {
	key string
	cfg membership.Config
	// skip is the skip rule's read (negative controls only), readID the
	// attempt ID its read requests carry.
	skip   *skipRule
	readID uint64
	m      *keyproc.Machine // nil until the touch starts
	op     keyproc.Op
	// wire maps a request's attempt ID to the machine's attempt it
	// belongs to.
	wire map[uint64]uint64
	wake int64 // the Tick on the event queue, -1 for none
	// round is the ground-truth ID of the proposal whose accepts are out.
	round uint64
	// gc: the tombstone GC's write of the key (keyproc.GCOp), not a touch.
	gc bool
}

// rescanConfig is the policy of the operator's rescan machine: the
// proposer library's, as the simulated proposers run it (the operator's
// rescan is a proposer.Client), with the operator's request timeout. The
// library's faults of the negative controls break it too: it is the same
// library.
func (w *world) rescanConfig() keyproc.Config {
	c := w.libraryConfig()
	if w.opts.OperatorTimeout > 0 {
		c.RequestTimeout = time.Duration(w.opts.OperatorTimeout)
	}
	return c
}

// libraryConfig is the proposer library's policy in this run.
func (w *world) libraryConfig() keyproc.Config {
	return keyproc.Config{
		MaxRetries:      max(w.opts.MaxTries-1, 0),
		MaxConflicts:    w.opts.MaxConflicts,
		RequestTimeout:  time.Duration(w.opts.Timeout),
		BackoffBase:     1,
		BackoffMax:      time.Duration(w.opts.Backoff),
		RediscoverAfter: 2,
		OneRTT:          w.opts.OneRTT,
		Lineage:         w.opts.Lineage,
		Broken:          w.opts.Faults.broken(),
	}
}

func (o *operator) now() time.Duration { return time.Duration(o.w.now) }

// startTouch hands the key to a new machine under the joint configuration.
func (o *operator) startTouch(t *touch) {
	t.skip = nil
	t.wire, t.wake = map[uint64]uint64{}, -1
	t.m = keyproc.New(t.key, o.w.rescanConfig(), o.env, t.cfg.Clone())
	t.op = keyproc.TouchOp()
	if t.gc {
		t.op = keyproc.GCOp()
	}
	t.m.Submit(o.now(), &t.op)
	o.pump(t)
}

// pump does what the touch's machine asks until it asks nothing more. The
// machine's Rediscover is ignored: the operator's configuration is the
// one its transition machine gives.
func (o *operator) pump(t *touch) {
	for {
		rd := t.m.Ready()
		for _, r := range rd.Rounds {
			o.w.note("outcome "+opName+" "+t.key+" "+r.Outcome.String(), r.Ballot.Counter)
		}
		if rd.Proposal != nil {
			t.round = o.w.id()
		}
		if len(rd.Send.To) > 0 {
			o.sendTouch(t, rd.Send)
		}
		for _, a := range rd.Answers {
			o.touched(t, a)
		}
		if o.rescan != t {
			return // answered
		}
		if rd.Apply == nil {
			break
		}
		t.m.OnApplied(o.now(), rd.Apply.Run())
	}
	o.armTouch(t)
}

func (o *operator) sendTouch(t *touch, s keyproc.Send) {
	id := o.w.id()
	t.wire[id] = s.Attempt
	o.w.sendMachine(opName, t.key, id, t.round, s)
}

// armTouch puts the machine's next Tick on the event queue.
func (o *operator) armTouch(t *touch) {
	at, ok := t.m.Wake()
	if !ok || int64(at) == t.wake {
		return
	}
	t.wake = int64(at)
	life := o.life
	o.w.after(int64(at)-o.w.now, func() {
		if o.life != life || o.rescan != t {
			return
		}
		if t.wake == int64(at) {
			t.wake = -1
		}
		t.m.Tick(o.now())
		o.pump(t)
	})
}

// touched acts on the touch's answer: a key done, or (a definite failure
// after the library's retries) the next Rescan action tries it again.
func (o *operator) touched(t *touch, a keyproc.Answer) {
	if t.gc {
		o.gcWritten(t, a)
		return
	}
	if a.Outcome == round.Success {
		o.w.stats.RescanWrites++
		o.keyDone(t)
		return
	}
	o.w.note("touch failed "+t.key, t.cfg.Epoch)
	o.dropRescan()
}

// onTouchReply feeds a reply to the touch's machine, as the simulated
// proposers feed theirs.
func (o *operator) onTouchReply(t *touch, m *message) {
	attempt, ok := t.wire[m.attempt]
	if !ok || t.m == nil {
		return
	}
	switch m.kind {
	case mPrepareReply:
		reply := round.Ack
		if !m.ok {
			reply = round.Nack
		}
		t.m.OnPrepare(o.now(), keyproc.PrepareReply{
			Attempt: attempt, Incarnation: m.incarnation, Reply: reply, Accepted: m.accepted, Value: m.value, Conflict: m.conflict,
		})
	case mAcceptReply:
		a, refused := acceptAnswer(m)
		t.m.OnAccept(o.now(), keyproc.AcceptReply{
			Attempt: attempt, Incarnation: m.incarnation, Answer: a, Refused: refused, Conflict: m.conflict,
		})
	default:
		return
	}
	o.pump(t)
}
