package sim

import (
	"container/heap"
	"encoding/binary"
	"hash"
	"hash/fnv"
	"math/rand/v2"

	"github.com/kshaka-io/kshaka/membership"
	"github.com/kshaka-io/kshaka/membership/gc"
	"github.com/kshaka-io/kshaka/register"
)

// msgKind is the type of a simulated RPC message.
type msgKind uint8

const (
	mPrepare msgKind = iota + 1
	mAccept
	mRead
	mInstall
	mGetConfig
	mPrepareReply
	mAcceptReply
	mReadReply
	mInstallReply
	mGetConfigReply
)

func (k msgKind) isRequest() bool { return k <= mGetConfig }

// message is one simulated RPC, request or reply.
type message struct {
	kind     msgKind
	from, to string
	// attempt correlates a reply with the sender's attempt; round names the
	// proposal whose value an accept carries (ground truth for pruning).
	attempt uint64
	round   uint64

	key    string
	epoch  uint64
	ballot register.Ballot
	next   register.Ballot
	value  register.Value
	cfg    *membership.Config // install request; config in a rejection or GetConfig reply
	// items are a Collect's keys (tombstone GC); verdicts its reply.
	items    []gc.Item
	verdicts []gc.Verdict

	// Reply fields.
	ok          bool
	stale       bool
	notAdmitted bool
	incarnation uint64
	accepted    register.Ballot
	conflict    register.Ballot
}

type event struct {
	at  int64
	seq uint64
	fn  func()
}

type eventQueue []*event

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*event)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

// cut blocks messages from one set of nodes to another until it heals.
type cut struct {
	from, to map[string]bool
	until    int64
}

// world is one simulation run.
type world struct {
	opts Options
	rng  *rand.Rand
	now  int64
	seq  uint64
	q    eventQueue

	// stamp orders calls and returns of client operations strictly.
	stamp int64

	trace     hash.Hash64
	traceBuf  []byte
	acceptors []*acceptor
	byName    map[string]*acceptor // lookups only
	proposers []*proposer
	op        *operator
	cuts      []cut
	slow      []slowLink
	hist      *history
	keys      []string
	// acceptedRounds is the ground truth of which proposals were accepted
	// by at least one acceptor, by round ID.
	acceptedRounds map[uint64]bool
	nextID         uint64
	// fenced is the highest epoch the operator declared fenced (ghost
	// state for checks, not visible to the simulated nodes).
	fenced     uint64
	lateRounds map[uint64]bool // rounds accepted somewhere after the fence
	// installDelay delays the operator's installs to some acceptors
	// (scripted scenarios): they switch epochs late.
	installDelay map[string]int64
	// served, when set, is called after an acceptor served a request
	// (scripted scenarios: crash a node at an exact step).
	served func(a *acceptor, m, reply *message)
	stats  Stats
}

func (w *world) after(d int64, fn func()) {
	if d < 0 {
		d = 0
	}
	w.seq++
	heap.Push(&w.q, &event{at: w.now + d, seq: w.seq, fn: fn})
}

func (w *world) id() uint64 {
	w.nextID++
	return w.nextID
}

// randID draws a non-zero random 64-bit ID (proposer IDs, incarnations).
func (w *world) randID() uint64 {
	for {
		if v := w.rng.Uint64(); v != 0 {
			return v
		}
	}
}

func (w *world) chance(p float64) bool { return p > 0 && w.rng.Float64() < p }

func (w *world) between(lo, hi int64) int64 {
	if hi <= lo {
		return lo
	}
	return lo + w.rng.Int64N(hi-lo+1)
}

// note feeds the event trace hash (and the log with Options.Log).
func (w *world) note(what string, nums ...uint64) {
	b := w.traceBuf[:0]
	b = binary.AppendVarint(b, w.now)
	b = append(b, what...)
	for _, n := range nums {
		b = binary.AppendUvarint(b, n)
	}
	w.traceBuf = b
	w.trace.Write(b)
	if w.opts.Log != nil {
		w.opts.Log(w.now, what, nums)
	}
}

func (w *world) blocked(from, to string) bool {
	for _, c := range w.cuts {
		if c.until > w.now && (c.from["*"] || c.from[from]) && (c.to["*"] || c.to[to]) {
			return true
		}
	}
	return false
}

// send puts m on the simulated network: it may be lost, duplicated,
// delayed and reordered; a cut in force at delivery time drops it.
func (w *world) send(m *message) {
	f := &w.opts.Net
	copies := 1
	if w.chance(f.Duplicate) && (m.kind != mAccept || !w.opts.Net.NoAcceptDuplicates) {
		copies = 2
	}
	for i := 0; i < copies; i++ {
		loss := f.ReplyLoss
		if m.kind.isRequest() {
			loss = f.RequestLoss
		}
		if w.chance(loss) {
			w.stats.Lost++
			continue
		}
		d := w.between(1, f.MaxDelay)
		if w.chance(f.LongDelay) {
			d = w.between(f.MaxDelay, f.MaxLongDelay)
		}
		d += w.slowness(m)
		if m.kind == mInstall {
			d += w.between(0, w.opts.InstallJitter) + w.installDelay[m.to]
		}
		mm := *m
		w.after(d, func() { w.deliver(&mm) })
	}
}

// slowness is extra delay for messages from a paused sender (a proposer
// stuck in a long GC pause, say: its requests land long after it sent
// them) or over a slow link.
func (w *world) slowness(m *message) int64 {
	from, to := m.from, m.to
	var d int64
	for _, p := range w.proposers {
		if p.name == from && p.pausedUntil > w.now {
			d = p.pausedUntil - w.now
		}
	}
	for _, l := range w.slow {
		if l.until > w.now && l.from == from && l.to == to && (l.kind == 0 || l.kind == m.kind) {
			d = max(d, l.delay)
		}
	}
	return d
}

// slowLink delays every message from one node to another, or only those
// of one kind.
type slowLink struct {
	from, to     string
	delay, until int64
	kind         msgKind // 0: all
}

func (w *world) deliver(m *message) {
	if w.blocked(m.from, m.to) {
		w.stats.Cut++
		return
	}
	if a := w.byName[m.to]; a != nil {
		if m.kind == mStatus {
			w.statusReply(a, m)
			return
		}
		a.receive(m)
		return
	}
	if m.to == opName {
		w.op.receive(m)
		return
	}
	for _, p := range w.proposers {
		if p.name == m.to {
			p.receive(m)
			return
		}
	}
}

// run processes events until the queue is empty or the time limit.
func (w *world) run(limit int64) {
	for w.q.Len() > 0 {
		e := heap.Pop(&w.q).(*event)
		if e.at > limit {
			heap.Push(&w.q, e)
			return
		}
		w.now = e.at
		e.fn()
	}
}

func newTraceHash() hash.Hash64 { return fnv.New64a() }
